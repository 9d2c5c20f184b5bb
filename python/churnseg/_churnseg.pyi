"""Type stubs of the extension module (the documented API is in ``churnseg``)."""

from typing import Any, Optional, Sequence, Tuple

import pyarrow

__version__: str

class ChurnsegError(RuntimeError): ...
class InputError(ValueError): ...
class GuardError(ChurnsegError): ...

# A table argument: (path string or Arrow C stream object, label for messages).
_Table = Tuple[Any, str]

def features(
    subscribers: _Table,
    interactions: Optional[_Table],
    as_of: str,
    taxonomy: Optional[str],
    extended: bool,
    exclude_columns: Sequence[str],
    strict: bool,
    allow: Sequence[str],
    threads: Optional[int],
) -> pyarrow.Table: ...
def train(
    subscribers: _Table,
    interactions: Optional[_Table],
    as_of: str,
    horizon: int,
    name: str,
    seed: int,
    trees: int,
    snapshots: int,
    snapshot_step: int,
    candidate: str,
    touchpoint_windows: Sequence[int],
    taxonomy: Optional[str],
    exclude_columns: Sequence[str],
    strict: bool,
    allow: Sequence[str],
    threads: Optional[int],
) -> Model: ...

class Model:
    @staticmethod
    def load(path: str) -> Model: ...
    @staticmethod
    def from_json(json: bytes, manifest: Optional[bytes] = None) -> Model: ...
    def to_json(self) -> bytes: ...
    def manifest_json(self) -> Optional[bytes]: ...
    def save(self, dir: str) -> None: ...
    @property
    def version(self) -> str: ...
    def metrics_json(self) -> str: ...
    def window_json(self) -> str: ...
    def score(
        self,
        subscribers: _Table,
        interactions: Optional[_Table],
        as_of: str,
        budget: Optional[float],
        high_risk_deciles: int,
        max_touchpoints: int,
        offer_cost: float,
        save_rate: float,
        taxonomy: Optional[str],
        exclude_columns: Sequence[str],
        strict: bool,
        allow: Sequence[str],
        threads: Optional[int],
    ) -> pyarrow.Table: ...
