"""churnseg: churn risk, 80/20/30 value segments and loyalty targets, from Python.

The same Rust code as the ``churnseg`` command line, so the same bytes on the same
inputs: :func:`features` is ``churnseg features``, :func:`train` is ``churnseg train``
(the model stays in memory until :meth:`Model.save`), :meth:`Model.score` is
``churnseg score``.

Inputs (``subscribers``, ``interactions``) may be

* a path (``str`` or :class:`os.PathLike`): a Parquet file, a directory of them
  (hive-partitioned layouts included) or a glob in the last component, as the CLI
  takes them;
* a ``pyarrow.Table`` or ``pyarrow.RecordBatchReader``, a polars ``DataFrame`` (or
  ``LazyFrame``, collected) or any object with the Arrow C stream interface
  (``__arrow_c_stream__``): handed over without copying;
* a pandas ``DataFrame``, converted with ``pyarrow.Table.from_pandas`` (index dropped).

Results are ``pyarrow.Table`` objects; ``to="polars"`` gives a polars DataFrame and
``to="pandas"`` a pandas one. The work runs with the GIL released, on ``threads``
worker threads when given (a pool of the call's own; results do not depend on it).

Example::

    import churnseg
    model = churnseg.train("data/demo/subscribers.parquet", "data/demo/interactions.parquet",
                           as_of="2026-04-01", horizon=90, name="demo")
    scored = model.score("data/demo/subscribers.parquet", "data/demo/interactions.parquet",
                         as_of="2026-07-01", budget=5000, to="polars")
    model.save("models/demo")
    model.version, model.metrics["validation"]["churn"]["roc_auc"]

Errors: bad input raises :class:`InputError` (a ``ValueError``) with the CLI's message,
naming the file (or table), the column and an example row; a health guard that stops
the run raises :class:`GuardError`; any other failure :class:`ChurnsegError`. Settings
out of range raise ``ValueError``.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import os as _os
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence, Union

from . import _churnseg
from ._churnseg import ChurnsegError, GuardError, InputError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow

__all__ = [
    "ChurnsegError",
    "GuardError",
    "InputError",
    "Model",
    "features",
    "train",
    "__version__",
]

__version__: str = _churnseg.__version__

Date = Union[str, _dt.date]
"""An ``as_of`` date: ``"YYYY-MM-DD"``, or a :class:`datetime.date`."""


def _as_of(value: Date) -> str:
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"`as_of` must be a 'YYYY-MM-DD' string or a datetime.date, not {type(value).__name__}")


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__.split(".")[0]
    return f"{module}.{cls.__qualname__}"


def _table(value: Any, role: str) -> Optional[tuple]:
    """An input as the extension takes it: ``(path or Arrow stream, label)``."""
    if value is None:
        return None
    if isinstance(value, (str, _os.PathLike)):
        return (_os.fspath(value), role)
    label = f"{role} ({_type_name(value)})"
    module = type(value).__module__
    if module.startswith("pandas"):
        import pyarrow as pa

        return (pa.Table.from_pandas(value, preserve_index=False), label)
    if module.startswith("polars") and hasattr(value, "collect") and not hasattr(value, "__arrow_c_stream__"):
        value = value.collect()  # a LazyFrame
    if hasattr(value, "__arrow_c_stream__"):
        return (value, label)
    import pyarrow as pa

    if isinstance(value, pa.RecordBatchReader):
        return (value, label)
    if isinstance(value, pa.RecordBatch):
        return (pa.Table.from_batches([value]), label)
    raise TypeError(
        f"`{role}` must be a path, a pyarrow Table or RecordBatchReader, a polars or pandas "
        f"DataFrame, or an object with __arrow_c_stream__; found {_type_name(value)}"
    )


def _bytes(value: Optional[bytes]) -> Optional[bytes]:
    return None if value is None else bytes(value)


def _inputs(subscribers, interactions, taxonomy, exclude_columns, strict, allow) -> tuple:
    """The inputs argument of the extension's data calls."""
    return (
        _table(subscribers, "subscribers"),
        _table(interactions, "interactions"),
        _path(taxonomy),
        _names(exclude_columns, "exclude_columns"),
        bool(strict),
        _names(allow, "allow"),
    )


def _path(value: Any) -> Optional[str]:
    return None if value is None else _os.fspath(value)


def _names(value: Optional[Iterable[str]], what: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"`{what}` must be column names (str)")
    return names


def _result(table: "pyarrow.Table", to: Optional[str]) -> Any:
    if to is None or to == "pyarrow":
        return table
    if to == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if to == "pandas":
        return table.to_pandas()
    raise ValueError(f"`to` must be None, 'pyarrow', 'polars' or 'pandas', not {to!r}")


def features(
    subscribers: Any,
    interactions: Any = None,
    *,
    as_of: Date,
    taxonomy: Union[str, "_os.PathLike[str]", None] = None,
    extended: bool = False,
    exclude_columns: Optional[Sequence[str]] = None,
    strict: bool = False,
    allow: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    to: Optional[str] = None,
) -> Any:
    """The feature table at ``as_of``: ``churnseg features``.

    One row per subscriber active at ``as_of`` (``signup_date < as_of`` and
    ``churn_date`` null or on/after it), from the events before the start of that day
    (UTC), in the subscriber table's row order; every SPEC core feature, then the
    subscriber columns passed through.

    Args:
        subscribers: the subscriber table (a path, or an Arrow / polars / pandas table).
        interactions: the touchpoint events, or ``None`` for subscriber columns alone.
        as_of: the snapshot date, ``"YYYY-MM-DD"`` or a :class:`datetime.date`.
        taxonomy: a taxonomy TOML file (default: the shipped one).
        extended: also the extended features the churn model reads (``--extended``).
        exclude_columns: subscriber columns not to pass through (``--exclude-columns``).
        strict: fail on touchpoints missing from the taxonomy (``--strict``).
        allow: health guards that may fail without stopping (``--allow``; ``"all"``).
        threads: worker threads (default: every core); results do not depend on it.
        to: ``None``/``"pyarrow"`` (a ``pyarrow.Table``), ``"polars"`` or ``"pandas"``.

    Example:
        >>> feats = churnseg.features("data/demo/subscribers.parquet",
        ...                           "data/demo/interactions.parquet", as_of="2026-07-01")
        >>> feats.num_rows, feats.column_names[:3]   # doctest: +SKIP
        (16873, ['subscriber_id', 'tenure_days', 'events_7d'])
    """
    table = _churnseg.features(
        _inputs(subscribers, interactions, taxonomy, exclude_columns, strict, allow),
        _as_of(as_of),
        bool(extended),
        threads,
    )
    return _result(table, to)


def train(
    subscribers: Any,
    interactions: Any = None,
    *,
    as_of: Date,
    horizon: int = 90,
    name: str = "model",
    seed: int = 42,
    trees: int = 300,
    snapshots: int = 3,
    snapshot_step: int = 30,
    candidate: str = "auto",
    touchpoint_windows: Sequence[int] = (90,),
    taxonomy: Union[str, "_os.PathLike[str]", None] = None,
    exclude_columns: Optional[Sequence[str]] = None,
    strict: bool = False,
    allow: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
) -> "Model":
    """Trains the churn and value-segment models: ``churnseg train``.

    The final churn model is fit at ``as_of`` with labels ``churn_date`` in
    ``[as_of, as_of + horizon)``, validated out of time (or by cross-validation when
    the history is too short), exactly as the CLI does; the model is the same bytes as
    ``churnseg train --out DIR`` writes when ``name`` is ``DIR``'s last component.

    Args:
        subscribers, interactions: as for :func:`features` (training needs
            ``churn_date``).
        as_of: the snapshot of the final model.
        horizon: churn horizon in days (``--horizon``).
        name: the model's name, the first part of its version (the CLI uses the
            ``--out`` directory's name).
        seed, trees, snapshots, snapshot_step, candidate, touchpoint_windows: as the
            CLI's ``--seed``, ``--trees``, ``--snapshots``, ``--snapshot-step``,
            ``--candidate`` (``auto``, ``gbdt``, ``logistic``, ``blend``) and
            ``--touchpoint-windows``.
        taxonomy, exclude_columns, strict, allow, threads: as for :func:`features`.

    Example:
        >>> model = churnseg.train("data/demo/subscribers.parquet",
        ...                        "data/demo/interactions.parquet",
        ...                        as_of="2026-04-01", horizon=90, name="demo")
        >>> model.version                       # doctest: +SKIP
        'demo-20260401-1a2b3c4d'
        >>> model.metrics["validation"]["method"]   # doctest: +SKIP
        'out_of_time'
    """
    inner = _churnseg.train(
        _inputs(subscribers, interactions, taxonomy, exclude_columns, strict, allow),
        _as_of(as_of),
        int(horizon),
        str(name),
        int(seed),
        int(trees),
        int(snapshots),
        int(snapshot_step),
        str(candidate),
        [int(w) for w in touchpoint_windows],
        threads,
    )
    return Model._wrap(inner)


class Model:
    """A trained churnseg model: the CLI's artifact (``models/NAME/model.json``).

    Made by :func:`train` or read with :meth:`Model.load`; applied with :meth:`score`;
    written with :meth:`save` in the CLI's format (so ``churnseg score --model DIR``
    reads it, and :meth:`Model.load` reads what ``churnseg train --out DIR`` wrote).
    Models pickle (as their ``model.json`` bytes), so they can be shipped to workers.

    Example:
        >>> model = churnseg.Model.load("models/demo")
        >>> scored = model.score("data/demo/subscribers.parquet",
        ...                      "data/demo/interactions.parquet", as_of="2026-07-01")
    """

    __slots__ = ("_model",)

    def __init__(self) -> None:
        raise TypeError("a Model comes from churnseg.train(...) or churnseg.Model.load(path)")

    @classmethod
    def _wrap(cls, inner: "_churnseg.Model") -> "Model":
        model = object.__new__(cls)
        object.__setattr__(model, "_model", inner)
        return model

    @classmethod
    def load(cls, path: Union[str, "_os.PathLike[str]"]) -> "Model":
        """Reads a model directory (or its ``model.json``), checked as the CLI checks it.

        Example:
            >>> model = churnseg.Model.load("models/demo")
        """
        return cls._wrap(_churnseg.Model.load(_os.fspath(path)))

    @classmethod
    def from_json(cls, json: bytes, metrics: Optional[bytes] = None, manifest: Optional[bytes] = None) -> "Model":
        """A model from the bytes of its ``model.json`` (see :meth:`to_json`), and
        optionally of its ``metrics.json`` and ``manifest.json`` (for :meth:`save`)."""
        return cls._wrap(_churnseg.Model.from_json(bytes(json), _bytes(metrics), _bytes(manifest)))

    def to_json(self) -> bytes:
        """The ``model.json`` bytes, as :meth:`save` writes them."""
        return self._model.to_json()

    def save(self, dir: Union[str, "_os.PathLike[str]"]) -> None:
        """Writes ``model.json``, ``metrics.json`` and ``manifest.json`` into ``dir``,
        together (all or nothing), as ``churnseg train --out dir`` does.

        Example:
            >>> model.save("models/demo")
        """
        self._model.save(_os.fspath(dir))

    @property
    def version(self) -> str:
        """``NAME-YYYYMMDD-HASH``: the name, the training snapshot and a digest."""
        return self._model.version

    @property
    def metrics(self) -> dict:
        """The training metrics (``metrics.json``'s ``metrics``): validation method,
        every candidate's ROC AUC, PR AUC, Brier and ECE, the choice, the backtest."""
        return _json.loads(self._model.metrics_json())

    @property
    def window(self) -> dict:
        """The training window: ``as_of``, ``horizon_days``, ``validation_as_of``,
        ``label_end``."""
        return _json.loads(self._model.window_json())

    def score(
        self,
        subscribers: Any,
        interactions: Any = None,
        *,
        as_of: Date,
        budget: Optional[float] = None,
        high_risk_deciles: int = 3,
        max_touchpoints: int = 2,
        offer_cost: float = 10.0,
        save_rate: float = 0.3,
        taxonomy: Union[str, "_os.PathLike[str]", None] = None,
        exclude_columns: Optional[Sequence[str]] = None,
        strict: bool = False,
        allow: Optional[Sequence[str]] = None,
        threads: Optional[int] = None,
        to: Optional[str] = None,
    ) -> Any:
        """Scores the subscribers active at ``as_of``: ``churnseg score``.

        The scored table as the CLI writes it to ``scored.parquet``: the features, the
        churn probability, risk decile, value segment, drivers, loyalty action,
        recommended touchpoints and (with a ``budget``) the targeting.

        Args:
            subscribers, interactions: as for :func:`features`.
            as_of: the snapshot to score.
            budget: retention budget: marks ``targeted`` the subscribers with the best
                expected return (``--budget``); ``None`` targets nobody.
            high_risk_deciles, max_touchpoints, offer_cost, save_rate: the CLI's
                ``--high-risk-deciles``, ``--max-touchpoints``, ``--offer-cost``,
                ``--save-rate``.
            taxonomy, exclude_columns, strict, allow, threads, to: as for
                :func:`features`.

        Example:
            >>> scored = model.score(subs, events, as_of="2026-07-01", budget=5000,
            ...                      to="polars")
            >>> scored.filter(scored["targeted"]).height   # doctest: +SKIP
            500
        """
        table = self._model.score(
            _inputs(subscribers, interactions, taxonomy, exclude_columns, strict, allow),
            _as_of(as_of),
            None if budget is None else float(budget),
            int(high_risk_deciles),
            int(max_touchpoints),
            float(offer_cost),
            float(save_rate),
            threads,
        )
        return _result(table, to)

    def __reduce__(self):
        files = (self.to_json(), self._model.metrics_file(), self._model.manifest_json())
        return (Model.from_json, files)

    def __repr__(self) -> str:
        return f"churnseg.Model({self.version!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())
