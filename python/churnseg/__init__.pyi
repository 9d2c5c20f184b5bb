"""Type stubs of the churnseg package."""

import datetime
import os
from typing import Any, Literal, Optional, Sequence, Union, overload

import pyarrow

from ._churnseg import ChurnsegError as ChurnsegError
from ._churnseg import GuardError as GuardError
from ._churnseg import InputError as InputError

__version__: str

Date = Union[str, datetime.date]
PathLike = Union[str, "os.PathLike[str]"]
# A path (file, directory, glob), a pyarrow Table / RecordBatchReader, a polars or
# pandas DataFrame, or any object with __arrow_c_stream__.
TableLike = Any
To = Optional[Literal["pyarrow", "polars", "pandas"]]

def features(
    subscribers: TableLike,
    interactions: TableLike = None,
    *,
    as_of: Date,
    taxonomy: Optional[PathLike] = None,
    extended: bool = False,
    exclude_columns: Optional[Sequence[str]] = None,
    strict: bool = False,
    allow: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    to: To = None,
) -> Any: ...
def train(
    subscribers: TableLike,
    interactions: TableLike = None,
    *,
    as_of: Date,
    horizon: int = 90,
    name: str = "model",
    seed: int = 42,
    trees: int = 300,
    snapshots: int = 3,
    snapshot_step: int = 30,
    candidate: Literal["auto", "gbdt", "logistic", "blend"] = "auto",
    touchpoint_windows: Sequence[int] = (90,),
    taxonomy: Optional[PathLike] = None,
    exclude_columns: Optional[Sequence[str]] = None,
    strict: bool = False,
    allow: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
) -> Model: ...

class Model:
    @classmethod
    def load(cls, path: PathLike) -> Model: ...
    @classmethod
    def from_json(cls, json: bytes, metrics: Optional[bytes] = None, manifest: Optional[bytes] = None) -> Model: ...
    def to_json(self) -> bytes: ...
    def save(self, dir: PathLike) -> None: ...
    @property
    def version(self) -> str: ...
    @property
    def metrics(self) -> dict[str, Any]: ...
    @property
    def window(self) -> dict[str, Any]: ...
    def score(
        self,
        subscribers: TableLike,
        interactions: TableLike = None,
        *,
        as_of: Date,
        budget: Optional[float] = None,
        high_risk_deciles: int = 3,
        max_touchpoints: int = 2,
        offer_cost: float = 10.0,
        save_rate: float = 0.3,
        taxonomy: Optional[PathLike] = None,
        exclude_columns: Optional[Sequence[str]] = None,
        strict: bool = False,
        allow: Optional[Sequence[str]] = None,
        threads: Optional[int] = None,
        to: To = None,
    ) -> Any: ...
