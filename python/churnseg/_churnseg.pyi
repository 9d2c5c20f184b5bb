"""Type stubs of the extension module (the documented API is in ``churnseg``)."""

from typing import Any, Optional, Sequence, Tuple

import pyarrow

__version__: str

class ChurnsegError(RuntimeError): ...
class InputError(ValueError): ...
class GuardError(ChurnsegError): ...

# A table argument: (path string or Arrow C stream object, label for messages).
_Table = Tuple[Any, str]
# The inputs of a data call: (subscribers, interactions, taxonomy, exclude_columns,
# strict, allow).
_Inputs = Tuple[_Table, Optional[_Table], Optional[str], Sequence[str], bool, Sequence[str]]

def features(inputs: _Inputs, as_of: str, extended: bool, threads: Optional[int]) -> pyarrow.Table: ...
def train(
    inputs: _Inputs,
    as_of: str,
    horizon: int,
    name: str,
    seed: int,
    trees: int,
    snapshots: int,
    snapshot_step: int,
    candidate: str,
    touchpoint_windows: Sequence[int],
    threads: Optional[int],
) -> Model: ...

class Model:
    @staticmethod
    def load(path: str) -> Model: ...
    @staticmethod
    def from_json(json: bytes, metrics: Optional[bytes] = None, manifest: Optional[bytes] = None) -> Model: ...
    def metrics_file(self) -> bytes: ...
    def to_json(self) -> bytes: ...
    def manifest_json(self) -> Optional[bytes]: ...
    def save(self, dir: str) -> None: ...
    @property
    def version(self) -> str: ...
    def metrics_json(self) -> str: ...
    def window_json(self) -> str: ...
    def score(
        self,
        inputs: _Inputs,
        as_of: str,
        budget: Optional[float],
        high_risk_deciles: int,
        max_touchpoints: int,
        offer_cost: float,
        save_rate: float,
        threads: Optional[int],
    ) -> pyarrow.Table: ...
