"""churnseg on Spark (Spark 4.0 or later): scoring a population too large for one
machine, and training on a deterministic sample of it.

:func:`score` is ``churnseg score --shards K`` with Spark doing the shuffles:

1. **map** — both inputs get a shard column, ``pmod(xxhash64(subscriber_id), K)`` (the
   function the CLI's ``--shards`` uses, so shard k here holds the CLI's shard k; integer
   ids are hashed as ``bigint``), and ``groupBy(shard).cogroup(...).applyInArrow(...)``
   runs the library's kernel on each shard (features, churn probability, reasons,
   lifecycle, profit) in a Python worker, the shard's two tables handed over as Arrow;
2. **population** — Spark sorts the few columns that need everyone (profit, probability,
   net gain and the three footprint columns whose medians drivers use, each ranking's
   ties broken by ``subscriber_id``), reads the subscribers at the ranks the library
   names, and the library turns them into the cut-offs (``Cutoffs``, JSON); each
   subscriber's profit percentile (which the value forecast reads) comes from the span of
   its profit tie, joined back as a column. Only those few rows, the medians' values and
   each shard's touchpoint catalogue reach the driver;
3. **map** — ``mapInArrow`` finishes any batch of kernel rows with the cut-offs
   (value segment, risk decile, driver, loyalty action, touchpoints, targeting).

Nothing a task computes depends on the order of its rows, so a retried or speculative
task gives the same rows, and the result equals the CLI's ``score`` row for row (sorted
by ``subscriber_id``). The health guards are not run here: they judge the whole input
(run ``churnseg validate`` on the extract, or :func:`churnseg.features` on a sample).

Example::

    from pyspark.sql import SparkSession
    import churnseg, churnseg.spark

    spark = SparkSession.builder.getOrCreate()
    subs = spark.read.parquet("s3://bucket/subscribers/")
    events = spark.read.parquet("s3://bucket/interactions/")
    model = churnseg.Model.load("models/demo")
    scored = churnseg.spark.score(subs, events, model, as_of="2026-07-01", budget=5000)
    (scored.write.partitionBy("as_of").mode("overwrite")
           .parquet("s3://bucket/scored/"))   # with partitionOverwriteMode=dynamic
"""

from __future__ import annotations

import hashlib as _hashlib
import json as _json
import os as _os
import tempfile as _tempfile
from typing import Any, Callable, Optional, Sequence

from . import Model, _as_of, _churnseg, _names

__all__ = ["score", "train", "shard_column"]

ID = "subscriber_id"
SHARD = "__shard"
_GAIN = "__gain"
_CATALOGUE = "__catalogue"
_PROFIT = "__profit_key"
_RANK_START = "__profit_rank_start"
_RANK_END = "__profit_rank_end"
_PROBABILITY = "__kernel_churn_probability"
_TYPICAL = ("complain_30d", "shopping_30d", "use_trend")


def _functions():
    from pyspark.sql import functions as F

    return F


def _hashed_id(df):
    """``xxhash64(subscriber_id)``, an integer id hashed as a ``bigint``."""
    from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType

    F = _functions()
    column = F.col(ID)
    if isinstance(df.schema[ID].dataType, (ByteType, ShortType, IntegerType, LongType)):
        column = column.cast("long")
    return F.xxhash64(column)


def shard_column(df, shards: int):
    """``pmod(xxhash64(subscriber_id), shards)``: the shard of each row, as the CLI's
    ``--shards`` computes it (``src/shard.rs``)."""
    F = _functions()
    return F.pmod(_hashed_id(df), F.lit(int(shards)))


def _taxonomy_text(taxonomy) -> Optional[str]:
    if taxonomy is None:
        return None
    with open(_os.fspath(taxonomy), encoding="utf-8") as f:
        return f.read()


def _taxonomy_path(text: Optional[str]) -> Optional[str]:
    """The taxonomy as a file on this worker (written once per process and text)."""
    if text is None:
        return None
    digest = _hashlib.sha256(text.encode()).hexdigest()[:16]
    path = _os.path.join(_tempfile.gettempdir(), f"churnseg-taxonomy-{digest}.toml")
    if not _os.path.exists(path):
        tmp = f"{path}.{_os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        _os.replace(tmp, path)
    return path


def _spark_schema(arrow_schema):
    """The Spark schema of an Arrow schema, every column nullable."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, f.dataType, True) for f in from_arrow_schema(arrow_schema).fields])


class _Ranked:
    """A DataFrame sorted by ``order`` (a total order), materialised once
    (``localCheckpoint``) so that every read sees the same partitions, with each
    partition's row count: enough to find the row at any rank without moving the rows."""

    def __init__(self, df, order):
        F = _functions()
        self.df = df.orderBy(*order).withColumn("__mono", F.monotonically_increasing_id()).localCheckpoint(eager=True)
        # monotonically_increasing_id: the partition in the upper 31 bits, the row within
        # it (in sorted order) in the lower 33
        counts = (
            self.df.groupBy(F.shiftright("__mono", 33).alias("__pid"))
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
        )
        self.offsets = []
        total = 0
        for row in sorted(counts, key=lambda r: r["__pid"]):
            self.offsets.append((row["__pid"], total, row["n"]))
            total += row["n"]
        self.rows = total

    def _mono(self, rank: int) -> int:
        for pid, offset, n in self.offsets:
            if offset <= rank < offset + n:
                return (pid << 33) + rank - offset
        raise IndexError(rank)

    def at(self, ranks) -> dict:
        """The rows at these ranks (those inside the ranking), by rank."""
        F = _functions()
        wanted = {self._mono(r): r for r in ranks if r is not None and 0 <= r < self.rows}
        if not wanted:
            return {}
        rows = self.df.filter(F.col("__mono").isin(list(wanted))).collect()
        return {wanted[row["__mono"]]: row for row in rows}

    def with_rank(self):
        """The sorted rows with their rank (from 0) in ``__rank``."""
        F = _functions()
        spark = self.df.sparkSession
        offsets = spark.createDataFrame([(pid, offset) for pid, offset, _ in self.offsets], "__pid long, __offset long")
        return (
            self.df.withColumn("__pid", F.shiftright("__mono", 33))
            .join(F.broadcast(offsets), "__pid")
            .withColumn("__rank", F.col("__offset") + F.col("__mono") - F.shiftleft(F.col("__pid"), 33))
        )


def _params_json(budget, offer_cost, save_rate, high_risk_deciles, max_touchpoints) -> str:
    return _json.dumps(
        {
            "budget": None if budget is None else float(budget),
            "offer_cost": float(offer_cost),
            "save_rate": float(save_rate),
            "high_risk_deciles": int(high_risk_deciles),
            "max_touchpoints": int(max_touchpoints),
        }
    )


def score(
    subscribers_df,
    interactions_df,
    model: Model,
    as_of,
    taxonomy=None,
    shards: Optional[int] = None,
    budget: Optional[float] = None,
    *,
    offer_cost: float = 10.0,
    save_rate: float = 0.3,
    high_risk_deciles: int = 3,
    max_touchpoints: int = 2,
    exclude_columns: Optional[Sequence[str]] = None,
    threads: int = 1,
    on_shard: Optional[Callable[[int], None]] = None,
):
    """Scores the subscribers active at ``as_of`` on Spark: the rows ``churnseg score``
    writes, as a Spark DataFrame (in no particular order).

    Args:
        subscribers_df, interactions_df: Spark DataFrames with the CLI's columns
            (``interactions_df`` may be ``None``: subscriber columns only).
        model: a :class:`churnseg.Model`; it travels to the executors as its
            ``model.json`` bytes.
        as_of: the night to score (``"YYYY-MM-DD"`` or a date).
        taxonomy: a taxonomy TOML file on the driver (its text is shipped); ``None`` for
            the shipped one.
        shards: how many shards (groups) the kernel runs in; ``None``:
            ``spark.sql.shuffle.partitions``. The result does not depend on it.
        budget, offer_cost, save_rate, high_risk_deciles, max_touchpoints: as for
            :meth:`churnseg.Model.score`.
        exclude_columns: subscriber columns not to use as features.
        threads: worker threads of the Rust code per task (Spark gives a task one core).
        on_shard: called with the shard number at the start of each kernel task (for
            tests and instrumentation; it runs on the executors).

    Example:
        >>> scored = churnseg.spark.score(subs, events, model, "2026-07-01", budget=5000)
        >>> scored.filter("targeted").count()   # doctest: +SKIP
        500
    """
    import pyarrow as pa
    from pyspark import StorageLevel

    F = _functions()
    spark = subscribers_df.sparkSession
    as_of = _as_of(as_of)
    params = _params_json(budget, offer_cost, save_rate, high_risk_deciles, max_touchpoints)
    exclude = _names(exclude_columns, "exclude_columns")
    text = _taxonomy_text(taxonomy)
    k_shards = int(shards or int(spark.conf.get("spark.sql.shuffle.partitions")))

    # The kernel's columns: the library on no rows of these inputs' schemas.
    empty_subs = subscribers_df.limit(0).toArrow()
    empty_events = None if interactions_df is None else interactions_df.limit(0).toArrow()

    def run_kernel(subs, events):
        inputs = (
            (subs, "subscribers (Spark shard)"),
            None if events is None else (events, "interactions (Spark shard)"),
            _taxonomy_path(text),
            exclude,
            False,
            [],
        )
        return _churnseg.spark_kernel(model._model, inputs, as_of, params, threads)

    kernel_arrow = run_kernel(empty_subs, empty_events).schema
    kernel_schema = _spark_schema(kernel_arrow)

    def kernel(subs, events=None):
        shard = subs[SHARD][0].as_py() if subs.num_rows else (events[SHARD][0].as_py() if events is not None and events.num_rows else None)
        if on_shard is not None and shard is not None:
            on_shard(shard)
        if subs.num_rows == 0:
            return pa.Table.from_batches([], kernel_arrow)
        subs = subs.drop_columns([SHARD])
        if events is not None:
            events = events.drop_columns([SHARD])
        return run_kernel(subs, events)

    subs = subscribers_df.withColumn(SHARD, shard_column(subscribers_df, k_shards))
    if interactions_df is None:
        rows = subs.groupBy(SHARD).applyInArrow(lambda t: kernel(t), kernel_schema)
    else:
        events = interactions_df.withColumn(SHARD, shard_column(interactions_df, k_shards))
        rows = subs.groupBy(SHARD).cogroup(events.groupBy(SHARD)).applyInArrow(kernel, kernel_schema)
    profit_key = F.when(F.isnan("profit_90d"), F.lit(None)).otherwise(F.col("profit_90d") + F.lit(0.0))
    # kept for the population step and the finishing pass (recomputing it gives the same rows)
    rows = rows.withColumn(_PROFIT, profit_key).persist(StorageLevel.MEMORY_AND_DISK)
    return _finish(rows, model, as_of, params, threads, kernel_arrow)


def _population(rows, params: str) -> tuple:
    """The cut-offs (JSON), the count of known profits, and each profit's tie span."""
    F = _functions()
    n = rows.count()
    id_asc = F.col(ID).asc()
    by_profit = _Ranked(rows.select(ID, _PROFIT), [F.col(_PROFIT).desc_nulls_last(), id_asc])
    by_risk = _Ranked(rows.select(ID, _PROBABILITY), [F.col(_PROBABILITY).desc(), id_asc])
    by_gain = _Ranked(rows.filter(F.col(_GAIN) > 0).select(ID, _GAIN), [F.col(_GAIN).desc(), id_asc])
    ranks = _json.loads(_churnseg.spark_cut_ranks(n, by_gain.rows, params))

    def exact(x):
        # floats as text (repr: the shortest form that reads back to the same bits), which
        # the library reads exactly; a JSON number may be read an ulp away
        return None if x is None else repr(float(x))

    def cut(ranked, rank, value, name):
        row = ranked.at([rank]).get(rank)
        return None if row is None else {name: exact(row[value]), "key": row[ID]}

    typical = []
    for column in _TYPICAL:
        if column not in rows.columns:
            typical.append([])
            continue
        v = F.col(column).cast("double")
        finite = rows.select(v.alias("__v")).filter(v.isNotNull() & (F.abs(v) < F.lit(float("inf"))))
        ranked = _Ranked(finite, [F.col("__v").asc()])
        at = _churnseg.spark_median_ranks(ranked.rows)
        found = ranked.at(at)
        typical.append([exact(found[r]["__v"]) for r in at])
    catalogues = [
        _json.loads(r[_CATALOGUE]) for r in rows.filter(F.col(_CATALOGUE).isNotNull()).select(_CATALOGUE).collect()
    ]
    reads = {
        "rows": n,
        "profit": [cut(by_profit, r, _PROFIT, "profit") for r in ranks["profit"]],
        "risk": [cut(by_risk, r, _PROBABILITY, "value") for r in ranks["risk"]],
        "gain": None if ranks["gain"] is None else cut(by_gain, ranks["gain"], _GAIN, "value"),
        "typical": typical,
        "catalogues": catalogues,
    }
    cutoffs = _churnseg.spark_cutoffs(_json.dumps(reads))
    spans = (
        by_profit.with_rank()
        .filter(F.col(_PROFIT).isNotNull())
        .groupBy(_PROFIT)
        .agg(F.min("__rank").alias(_RANK_START), (F.max("__rank") + 1).alias(_RANK_END))
    )
    known = by_profit.rows - rows.filter(F.col(_PROFIT).isNull()).count()
    return cutoffs, known, spans


def _finish(rows, model, as_of, params, threads, kernel_arrow):
    import pyarrow as pa

    cutoffs, known, spans = _population(rows, params)
    # The scored columns: the finishing pass on no rows.
    fields = list(kernel_arrow) + [pa.field(_RANK_START, pa.int64()), pa.field(_RANK_END, pa.int64())]
    nothing = pa.RecordBatch.from_pylist([], schema=pa.schema(fields))
    no_cutoffs = _json.dumps(
        {"rows": 0, "profit": [None, None], "risk": [None] * 9, "gain": None, "typical": [[], [], []], "catalogues": []}
    )
    empty = _churnseg.spark_finish(model._model, nothing, _churnseg.spark_cutoffs(no_cutoffs), 0, as_of, params, threads)
    scored_schema = _spark_schema(empty.schema)

    def finish(batches):
        for batch in batches:
            if batch.num_rows == 0:
                continue
            out = _churnseg.spark_finish(model._model, batch, cutoffs, known, as_of, params, threads)
            yield from out.to_batches()

    return rows.join(spans, on=_PROFIT, how="left").mapInArrow(finish, scored_schema)


def train(
    subscribers_df,
    interactions_df,
    as_of,
    horizon: int = 90,
    *,
    sample: float = 1.0,
    **kwargs: Any,
) -> Model:
    """Trains on a deterministic hash sample of the subscribers, fitted on the driver.

    The sample is the subscribers whose ``pmod(xxhash64(subscriber_id), 1000000)`` is
    below ``sample × 1000000`` (the same subscribers in any engine, any run and any
    number of partitions); their rows and events are filtered on Spark, collected to the
    driver (subscribers in ``subscriber_id`` order) and fitted there by
    :func:`churnseg.train` with ``kwargs`` (``name``, ``seed``, ``trees``, …).

    Example:
        >>> model = churnseg.spark.train(subs, events, "2026-04-01", sample=0.1)
    """
    import churnseg

    if not 0.0 < float(sample) <= 1.0:
        raise ValueError(f"`sample` must be in (0, 1], not {sample!r}")
    F = _functions()
    threshold = int(round(float(sample) * 1_000_000))

    def keep(df):
        return df.filter(F.pmod(_hashed_id(df), F.lit(1_000_000)) < F.lit(threshold))

    subs = keep(subscribers_df).orderBy(ID).toArrow()
    events = None if interactions_df is None else keep(interactions_df).toArrow()
    return churnseg.train(subs, events, as_of=as_of, horizon=horizon, **kwargs)
