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

The health guards judge the whole input, as the CLI's do: each kernel task also returns
the guards' measure of its shard (counts only: events read, matched, dated, recent;
subscribers active, with events), the driver sums them and judges the sum — the whole
input's measure — before the population step; a guard that fails raises
:class:`churnseg.GuardError` with the CLI's message (``allow=`` as ``--allow``; allowed
failures become warnings). Only the guards that compare with the previous night's run
(``--previous``) are not run.

Nothing a task computes depends on the order of its rows, so a retried or speculative
task gives the same rows, and the result equals the CLI's ``score`` row for row (sorted
by ``subscriber_id``).

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
import warnings as _warnings
from typing import Any, Callable, Optional, Sequence

from . import Model, _as_of, _churnseg, _names

__all__ = ["score", "train", "shard_column"]

ID = "subscriber_id"
SHARD = "__shard"
_GAIN = "__gain"
_CATALOGUE = "__catalogue"
_GUARD = "__guard"
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


def _shard_inputs(subs, events, taxonomy_text, exclude) -> tuple:
    """A shard's tables as the library's data calls take them (the guards are judged on
    the driver, so none is allowed here)."""
    return (
        (subs, "subscribers (Spark shard)"),
        None if events is None else (events, "interactions (Spark shard)"),
        _taxonomy_path(taxonomy_text),
        exclude,
        False,
        [],
    )


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
    allow: Optional[Sequence[str]] = None,
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
        allow: health guards allowed to fail (``--allow``; ``["all"]`` for every one).
        threads: worker threads of the Rust code per task (Spark gives a task one core).
        on_shard: called with the shard number at the start of each kernel task (for
            tests and instrumentation; it runs on the executors).

    Example:
        >>> scored = churnseg.spark.score(subs, events, model, "2026-07-01", budget=5000)
        >>> scored.filter("targeted").count()   # doctest: +SKIP
        500
    """
    from pyspark import StorageLevel

    F = _functions()
    spark = subscribers_df.sparkSession
    as_of = _as_of(as_of)
    params = _params_json(budget, offer_cost, save_rate, high_risk_deciles, max_touchpoints)
    exclude = _names(exclude_columns, "exclude_columns")
    allowed = _names(allow, "allow")
    text = _taxonomy_text(taxonomy)
    k_shards = int(shards or int(spark.conf.get("spark.sql.shuffle.partitions")))

    # The kernel's columns: the library on no rows of these inputs' schemas.
    empty_subs = subscribers_df.limit(0).toArrow()
    empty_events = None if interactions_df is None else interactions_df.limit(0).toArrow()

    def run_kernel(subs, events):
        inputs = _shard_inputs(subs, events, text, exclude)
        return _churnseg.spark_kernel(model._model, inputs, as_of, params, threads)

    kernel_out = run_kernel(empty_subs, empty_events).schema
    kernel_schema = _spark_schema(kernel_out)
    # the kernel rows' columns, without the guards' measure
    kernel_arrow = kernel_out.remove(kernel_out.get_field_index(_GUARD))

    def kernel(subs, events=None):
        shard = subs[SHARD][0].as_py() if subs.num_rows else (events[SHARD][0].as_py() if events is not None and events.num_rows else None)
        if on_shard is not None and shard is not None:
            on_shard(shard)
        # a shard without subscribers runs too: its events count in the guards' measure
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
    # kept for the guards, the population step and the finishing pass (recomputing it
    # gives the same rows)
    rows = rows.withColumn(_PROFIT, profit_key).persist(StorageLevel.MEMORY_AND_DISK)
    measures = [r[_GUARD] for r in rows.filter(F.col(_GUARD).isNotNull()).select(_GUARD).collect()]
    for warning in _churnseg.spark_guards(measures, allowed):
        _warnings.warn(warning, stacklevel=2)
    rows = rows.filter(F.col(_GUARD).isNull()).drop(_GUARD)
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


def _sample_cut(subscribers_df, n: int) -> tuple:
    """The hash sample of ``n`` subscribers (``train --sample N``): ``(asked, of,
    max_hash)``, the cut being the largest of the ``n`` smallest
    ``xxhash64(subscriber_id)``."""
    from . import InputError

    F = _functions()
    hashes = subscribers_df.select(_hashed_id(subscribers_df).alias("__h"))
    cut = hashes.orderBy("__h").limit(n).agg(F.max("__h").alias("cut")).first()["cut"]
    if cut is None:
        raise InputError("the subscriber table is empty: there is nothing to sample")
    return n, hashes.count(), int(cut)


def train(
    subscribers_df,
    interactions_df,
    as_of,
    horizon: int = 90,
    *,
    sample: Optional[int] = None,
    shards: Optional[int] = None,
    name: str = "model",
    seed: int = 42,
    trees: int = 300,
    snapshots: int = 3,
    snapshot_step: int = 30,
    candidate: str = "auto",
    touchpoint_windows: Sequence[int] = (90,),
    taxonomy=None,
    exclude_columns: Optional[Sequence[str]] = None,
    allow: Optional[Sequence[str]] = None,
    threads: int = 1,
    fit_threads: Optional[int] = None,
    on_shard: Optional[Callable[[int], None]] = None,
) -> Model:
    """Trains on Spark: ``churnseg train --shards K [--sample N]``, the training
    features built shard by shard on the executors, the models fit on the driver.

    1. **sample** (with ``sample=N``) — the N subscribers with the smallest
       ``xxhash64(subscriber_id)`` (the CLI's ``train --sample N``: the same subscribers
       in any engine, any run and any number of shards), and their events, kept by a
       filter on the hash;
    2. **map** — both inputs get the shard column of :func:`score`, and
       ``groupBy(shard).cogroup(...).applyInArrow(...)`` builds, in one scan of each
       shard's events, every snapshot training plans (the stacked snapshots, the
       validation's anchor and the backtest's), returned as Arrow: a row per active
       subscriber and snapshot (its features, label and touchpoint use) and a row of
       each snapshot's counts;
    3. **fit** — the rows are collected to the driver (they are what the fits need,
       every row of every snapshot: size the sample to the driver), put in
       ``subscriber_id`` order and joined as ``train --shards K`` joins its shards;
       the health guards judge the shards' summed counts, and the models are fit by the
       CLI's code.

    ``model.json`` and ``metrics.json`` are the bytes ``churnseg train --sample N`` (or
    ``--shards K`` without a sample) writes on the same data when the subscriber input
    is in ``subscriber_id`` order (the CLI fits in input order), for any ``shards``.

    Args:
        subscribers_df, interactions_df: Spark DataFrames with the CLI's columns
            (``interactions_df`` may be ``None``).
        as_of, horizon, name, seed, trees, snapshots, snapshot_step, candidate,
            touchpoint_windows, exclude_columns, allow: as for :func:`churnseg.train`.
        sample: train on the hash sample of this many subscribers; ``None``: all.
        shards: how many shards (groups) build the snapshots; ``None``:
            ``spark.sql.shuffle.partitions``. The model does not depend on it.
        taxonomy: a taxonomy TOML file on the driver (its text is shipped).
        threads: worker threads of the Rust code per task; ``fit_threads``: on the
            driver (``None``: every core).
        on_shard: called with the shard number at the start of each task (tests).

    Example:
        >>> model = churnseg.spark.train(subs, events, "2026-04-01", sample=200_000,
        ...                              name="nightly")
        >>> model.metrics["sample"]["sampled"]   # doctest: +SKIP
        200000
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if sample is not None and (isinstance(sample, bool) or int(sample) != sample or int(sample) < 1):
        raise ValueError(f"`sample` must be a whole number of subscribers (1 or more), not {sample!r}")
    F = _functions()
    spark = subscribers_df.sparkSession
    settings = _json.dumps(
        {
            "as_of": _as_of(as_of),
            "horizon": int(horizon),
            "name": str(name),
            "seed": int(seed),
            "trees": int(trees),
            "snapshots": int(snapshots),
            "snapshot_step": int(snapshot_step),
            "candidate": str(candidate),
            "touchpoint_windows": [int(w) for w in touchpoint_windows],
            "allow": _names(allow, "allow"),
        }
    )
    exclude = _names(exclude_columns, "exclude_columns")
    text = _taxonomy_text(taxonomy)
    k_shards = int(shards or int(spark.conf.get("spark.sql.shuffle.partitions")))

    def build(subs, events):
        return _churnseg.spark_train_shard(_shard_inputs(subs, events, text, exclude), settings, threads)

    empty_subs = subscribers_df.limit(0).toArrow()
    empty_events = None if interactions_df is None else interactions_df.limit(0).toArrow()
    reference = build(empty_subs, empty_events)
    fields = list(reference.schema) + [pa.field(SHARD, pa.int64())]
    out_arrow = pa.schema(fields)

    def shard_rows(subs, events=None):
        shard = subs[SHARD][0].as_py() if subs.num_rows else (events[SHARD][0].as_py() if events is not None and events.num_rows else None)
        if shard is None:
            return pa.Table.from_batches([], out_arrow)
        if on_shard is not None:
            on_shard(shard)
        subs = subs.drop_columns([SHARD])
        if events is not None:
            events = events.drop_columns([SHARD])
        t = build(subs, events)
        return t.append_column(pa.field(SHARD, pa.int64()), pa.array([shard] * t.num_rows, pa.int64()))

    summary = None
    subs, events = subscribers_df, interactions_df
    if sample is not None:
        summary = _sample_cut(subscribers_df, int(sample))
        cut = F.lit(summary[2])
        subs = subs.filter(_hashed_id(subs) <= cut)
        if events is not None:
            events = events.filter(_hashed_id(events) <= cut)
    subs = subs.withColumn(SHARD, shard_column(subs, k_shards))
    schema = _spark_schema(out_arrow)
    if events is None:
        rows = subs.groupBy(SHARD).applyInArrow(lambda t: shard_rows(t), schema)
    else:
        events = events.withColumn(SHARD, shard_column(events, k_shards))
        rows = subs.groupBy(SHARD).cogroup(events.groupBy(SHARD)).applyInArrow(shard_rows, schema)
    collected = rows.toArrow()
    column = collected[SHARD]
    parts = []
    for k in sorted(pc.unique(column).to_pylist()):
        part = collected.filter(pc.equal(column, k)).drop_columns([SHARD]).combine_chunks()
        parts.append(part.to_batches())
    inner = _churnseg.spark_train_fit(parts, reference.schema, _taxonomy_path(text), settings, summary, fit_threads)
    return Model._wrap(inner)
