"""churnseg.spark (issue 18): Spark's scored rows equal the CLI's row for row, a task that
fails on its first attempt leaves no duplicate and no missing row, and training on a
hash sample writes the model and metrics ``churnseg train --sample N`` writes, byte for
byte, for any number of shards.

Spark runs in ``local[2,2]``: two threads, as ``local[2]``, and two attempts per task
(``local[N]`` never retries a failed task, so the retry test needs the second figure).
The generated data and the CLI's model and scores are made once, with the ``churnseg``
binary (``CHURNSEG_BIN``, else ``churnseg`` on the PATH or in the cargo target dir).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pyspark = pytest.importorskip("pyspark")

import churnseg  # noqa: E402
import churnseg.spark  # noqa: E402

AS_OF = "2026-06-01"
BUDGET = 1500.0


def _binary() -> str:
    candidates = [os.environ.get("CHURNSEG_BIN"), shutil.which("churnseg")]
    root = Path(__file__).resolve().parents[2]
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    candidates += [str(target / p / "churnseg") for p in ("release", "debug")]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    raise RuntimeError("the tests need the churnseg binary: build it (cargo build) or set CHURNSEG_BIN")


def _cli(*args: str) -> None:
    subprocess.run([_binary(), "-q", *args], check=True)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """Generated data (string ids), a model trained on it and the CLI's scored rows."""
    d = tmp_path_factory.mktemp("spark")
    _cli("generate", "--subscribers", "1200", "--days", "200", "--seed", "3", "--string-ids", "--out", str(d / "data"))
    subs, events = str(d / "data" / "subscribers.parquet"), str(d / "data" / "interactions.parquet")
    _cli("train", "--subscribers", subs, "--interactions", events, "--as-of", "2026-03-01", "--horizon", "60",
         "--trees", "20", "--out", str(d / "model"))
    _cli("score", "--subscribers", subs, "--interactions", events, "--as-of", AS_OF, "--model", str(d / "model"),
         "--out", str(d / "scored.parquet"), "--budget", str(BUDGET))
    return {"subscribers": subs, "interactions": events, "model": str(d / "model"), "scored": str(d / "scored.parquet")}


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    # the workers run this interpreter, with this package and pyarrow
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2,2]")
        .appName("churnseg-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield session
    session.stop()


def _rows(table):
    """Columns as Python values, rows sorted by subscriber_id."""
    table = table.sort_by("subscriber_id")
    return {name: table.column(name).to_pylist() for name in table.column_names}


def _assert_same_rows(spark_rows, cli_rows):
    assert list(spark_rows) == list(cli_rows), "the same columns in the same order"
    for name in cli_rows:
        differ = [i for i, (a, b) in enumerate(zip(spark_rows[name], cli_rows[name])) if a != b]
        assert len(spark_rows[name]) == len(cli_rows[name]), name
        assert not differ, f"{name}: {len(differ)} rows differ, e.g. row {differ[0]}: " \
            f"{spark_rows[name][differ[0]]!r} against the CLI's {cli_rows[name][differ[0]]!r}"


def _inputs(spark, data):
    return spark.read.parquet(data["subscribers"]), spark.read.parquet(data["interactions"])


def test_spark_scores_equal_the_clis_row_for_row(spark, data):
    subs, events = _inputs(spark, data)
    model = churnseg.Model.load(data["model"])
    scored = churnseg.spark.score(subs, events, model, AS_OF, budget=BUDGET, shards=3)
    expected = pq.read_table(data["scored"])
    got = scored.toArrow()
    assert [f.type for f in got.schema] == [f.type for f in expected.schema]
    rows = _rows(got)
    _assert_same_rows(rows, _rows(expected))
    assert sum(rows["targeted"]) > 0, "the budget targets someone"


def _fail_first_attempt(shard: int) -> None:
    from pyspark import TaskContext

    if shard == 1 and TaskContext.get().attemptNumber() == 0:
        raise RuntimeError("injected failure on the first attempt of shard 1")


def test_a_retried_task_leaves_no_duplicate_and_no_missing_row(spark, data):
    subs, events = _inputs(spark, data)
    model = churnseg.Model.load(data["model"])
    # the workers cannot import this file: the hook travels by value
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    scored = churnseg.spark.score(subs, events, model, AS_OF, budget=BUDGET, shards=4,
                                  on_shard=_fail_first_attempt)
    rows = _rows(scored.toArrow())
    ids = rows["subscriber_id"]
    assert len(ids) == len(set(ids)), "no duplicate"
    _assert_same_rows(rows, _rows(pq.read_table(data["scored"])))


TRAIN = dict(horizon=60, trees=10)
SAMPLE = 700


@pytest.fixture(scope="session")
def sampled(data, tmp_path_factory):
    """The CLI's model trained on the hash sample of SAMPLE subscribers."""
    out = tmp_path_factory.mktemp("sampled") / "sampled"
    _cli("train", "--subscribers", data["subscribers"], "--interactions", data["interactions"],
         "--as-of", "2026-03-01", "--horizon", str(TRAIN["horizon"]), "--trees", str(TRAIN["trees"]),
         "--sample", str(SAMPLE), "--out", str(out))
    return out


def _files(model, directory):
    model.save(directory)
    return {name: (directory / name).read_bytes() for name in ("model.json", "metrics.json")}


def _cli_files(directory):
    return {name: (Path(directory) / name).read_bytes() for name in ("model.json", "metrics.json")}


def test_the_generated_subscribers_are_in_id_order(data):
    # spark.train fits in subscriber_id order, the CLI in input order: the same here
    ids = pq.read_table(data["subscribers"], columns=["subscriber_id"]).column(0).to_pylist()
    assert ids == sorted(ids)


@pytest.mark.parametrize("shards", [1, 3])
def test_training_on_a_hash_sample_writes_the_clis_model_and_metrics(spark, data, sampled, shards, tmp_path):
    subs, events = _inputs(spark, data)
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # with 3 shards, shard 1's task fails on its first attempt and is retried
    model = churnseg.spark.train(subs, events, "2026-03-01", sample=SAMPLE, shards=shards, name="sampled",
                                 on_shard=_fail_first_attempt if shards == 3 else None, **TRAIN)
    got = _files(model, tmp_path / "spark")
    expected = _cli_files(sampled)
    assert got["metrics.json"] == expected["metrics.json"]
    assert got["model.json"] == expected["model.json"]
    assert model.metrics["sample"]["sampled"] == SAMPLE


def test_training_on_every_subscriber_writes_the_clis_model(spark, data, tmp_path):
    subs, events = _inputs(spark, data)
    model = churnseg.spark.train(subs, events, "2026-03-01", shards=2, name="model", horizon=60, trees=20)
    assert _files(model, tmp_path / "spark") == _cli_files(data["model"])


def test_a_sample_is_a_count_of_subscribers(spark, data):
    subs, events = _inputs(spark, data)
    for bad in (0, 0.5, True):
        with pytest.raises(ValueError, match="sample"):
            churnseg.spark.train(subs, events, "2026-03-01", sample=bad, **TRAIN)


def test_the_health_guards_judge_the_whole_input_as_the_clis_do(spark, data):
    subs, events = _inputs(spark, data)
    model = churnseg.Model.load(data["model"])
    night = "2027-06-01"  # far after the history: no subscriber has a recent event
    with pytest.raises(churnseg.GuardError) as local:
        model.score(data["subscribers"], data["interactions"], as_of=night)
    with pytest.raises(churnseg.GuardError) as on_spark:
        churnseg.spark.score(subs, events, model, night, shards=3)
    # the same checks fail with the same figures: the CLI's message, naming the shards'
    # tables where it names the files
    expected = str(local.value).replace(data["interactions"], "interactions (Spark shard)")
    assert str(on_spark.value) == expected.replace(data["subscribers"], "subscribers (Spark shard)")
