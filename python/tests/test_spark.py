"""churnseg.spark (issue 18): Spark's scored rows equal the CLI's row for row, a task that
fails on its first attempt leaves no duplicate and no missing row, and training on a
hash sample fits what churnseg.train fits on the same rows.

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


def test_training_on_the_whole_sample_fits_what_churnseg_train_fits(spark, data):
    subs, events = _inputs(spark, data)
    settings = dict(horizon=60, trees=10, name="spark")
    model = churnseg.spark.train(subs, events, "2026-03-01", sample=1.0, **settings)
    table = pq.read_table(data["subscribers"]).sort_by("subscriber_id")
    direct = churnseg.train(table, data["interactions"], as_of="2026-03-01", **settings)
    assert model.to_json() == direct.to_json()
    half = churnseg.spark.train(subs, events, "2026-03-01", sample=0.5, **settings)
    again = churnseg.spark.train(subs, events, "2026-03-01", sample=0.5, **settings)
    assert half.to_json() == again.to_json(), "the same sample, the same model"
    assert half.to_json() != model.to_json()
