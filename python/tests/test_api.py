"""The package against the CLI: same results on the same inputs, whatever the input
kind; errors with the CLI's messages; threads; the model artifact."""

from __future__ import annotations

import pickle
import shutil

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import churnseg
from conftest import BUDGET, SCORE_AS_OF, SNAPSHOTS, TRAIN_AS_OF, TREES, assert_same_table


def paths(data):
    return str(data["subscribers"]), str(data["interactions"])


def test_features_are_the_clis(data):
    subs, events = paths(data)
    got = churnseg.features(subs, events, as_of=SCORE_AS_OF)
    assert_same_table(got, pq.read_table(data["features"]))


def test_score_is_the_clis(data):
    subs, events = paths(data)
    model = churnseg.Model.load(data["model"])
    got = model.score(subs, events, as_of=SCORE_AS_OF, budget=BUDGET)
    assert_same_table(got, pq.read_table(data["scored"]))


def test_train_writes_the_clis_artifact(data, tmp_path):
    subs, events = paths(data)
    model = churnseg.train(subs, events, as_of=TRAIN_AS_OF, horizon=90, trees=TREES, snapshots=SNAPSHOTS, name="demo")
    cli_dir = data["model"]
    assert model.to_json() == (cli_dir / "model.json").read_bytes()
    model.save(tmp_path / "demo")
    for name in ["model.json", "metrics.json"]:
        assert (tmp_path / "demo" / name).read_bytes() == (cli_dir / name).read_bytes(), name
    assert (tmp_path / "demo" / "manifest.json").exists()
    assert model.version == churnseg.Model.load(cli_dir).version
    assert model.version.startswith("demo-20260401-")
    metrics = model.metrics
    assert metrics["validation"]["method"] == "out_of_time"
    assert 0.5 < metrics["validation"]["churn"]["roc_auc"] <= 1.0
    assert model.window["horizon_days"] == 90


def _kinds(path):
    """One table in every form the package takes."""
    table = pq.read_table(path)
    reader = pq.ParquetFile(path)
    return {
        "path": str(path),
        "pathlib": path,
        "directory": str(path.parent / "only" / ""),
        "glob": str(path.parent / "only" / "*.parquet"),
        "pyarrow": table,
        "pyarrow_chunked": pa.Table.from_batches(table.to_batches(max_chunksize=7777)),
        "reader": pa.RecordBatchReader.from_batches(reader.schema_arrow, reader.iter_batches(batch_size=5000)),
        "polars": pl.read_parquet(path),
        "polars_lazy": pl.scan_parquet(path),
        "pandas": pd.read_parquet(path, dtype_backend="pyarrow"),
    }


@pytest.fixture(scope="module")
def kinds(data, tmp_path_factory):
    """The subscribers and interactions in every form (the directory and glob forms
    point at a folder holding only that file)."""
    out = {}
    for role in ["subscribers", "interactions"]:
        folder = tmp_path_factory.mktemp(role)
        (folder / "only").mkdir()
        src = folder / f"{role}.parquet"
        shutil.copy(data[role], src)
        shutil.copy(data[role], folder / "only" / f"{role}.parquet")
        out[role] = _kinds(src)
    return out


KINDS = ["path", "pathlib", "directory", "glob", "pyarrow", "pyarrow_chunked", "reader", "polars", "polars_lazy", "pandas"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_input_kind_scores_alike(data, kinds, kind):
    model = churnseg.Model.load(data["model"])
    expected = pq.read_table(data["scored"])
    got = model.score(kinds["subscribers"][kind], kinds["interactions"][kind], as_of=SCORE_AS_OF, budget=BUDGET)
    assert_same_table(got, expected)


def test_pandas_with_numpy_dtypes_gives_the_same_features(data):
    subs = pd.read_parquet(data["subscribers"])
    events = pd.read_parquet(data["interactions"])
    got = churnseg.features(subs, events, as_of=SCORE_AS_OF)
    assert_same_table(got, pq.read_table(data["features"]))


def test_results_convert_to_polars_and_pandas(data):
    subs, events = paths(data)
    table = churnseg.features(subs, events, as_of=SCORE_AS_OF)
    frame = churnseg.features(subs, events, as_of=SCORE_AS_OF, to="polars")
    assert isinstance(frame, pl.DataFrame)
    assert frame.equals(pl.from_arrow(table))
    assert isinstance(churnseg.features(subs, None, as_of=SCORE_AS_OF, to="pandas"), pd.DataFrame)
    with pytest.raises(ValueError, match="`to`"):
        churnseg.features(subs, events, as_of=SCORE_AS_OF, to="csv")


def test_threads_do_not_change_results(data):
    subs, events = paths(data)
    model = churnseg.Model.load(data["model"])
    one = model.score(subs, events, as_of=SCORE_AS_OF, budget=BUDGET, threads=1)
    two = model.score(subs, events, as_of=SCORE_AS_OF, budget=BUDGET, threads=2)
    assert_same_table(one, two)
    assert_same_table(
        churnseg.features(subs, events, as_of=SCORE_AS_OF, threads=1),
        churnseg.features(subs, events, as_of=SCORE_AS_OF, threads=2),
    )
    with pytest.raises(ValueError, match="threads"):
        churnseg.features(subs, events, as_of=SCORE_AS_OF, threads=0)


def test_save_load_and_pickle_score_identically(data, tmp_path, cli):
    subs, events = paths(data)
    model = churnseg.Model.load(data["model"])
    model.save(tmp_path / "copy")
    for name in ["model.json", "metrics.json", "manifest.json"]:
        assert (tmp_path / "copy" / name).read_bytes() == (data["model"] / name).read_bytes(), name
    again = churnseg.Model.load(tmp_path / "copy")
    unpickled = pickle.loads(pickle.dumps(model))
    assert again == model and unpickled == model and unpickled.version == model.version
    expected = model.score(subs, events, as_of=SCORE_AS_OF)
    assert_same_table(again.score(subs, events, as_of=SCORE_AS_OF), expected)
    assert_same_table(unpickled.score(subs, events, as_of=SCORE_AS_OF), expected)
    # the CLI reads what save wrote
    out = tmp_path / "scored.parquet"
    cli("score", "--subscribers", subs, "--interactions", events, "--as-of", SCORE_AS_OF,
        "--model", str(tmp_path / "copy"), "--out", str(out))
    assert_same_table(pq.read_table(out), expected)


def test_a_bad_column_in_a_file_names_the_file_and_column(data, tmp_path):
    table = pq.read_table(data["subscribers"])
    bad = table.set_column(
        table.schema.get_field_index("signup_date"), "signup_date",
        pa.array([str(v) for v in table.column("signup_date").to_pylist()]),
    )
    path = tmp_path / "bad_subscribers.parquet"
    pq.write_table(bad, path)
    with pytest.raises(churnseg.InputError) as err:
        churnseg.features(str(path), str(data["interactions"]), as_of=SCORE_AS_OF)
    message = str(err.value)
    assert str(path) in message
    assert "column `signup_date`: expected Date, found Utf8" in message
    assert isinstance(err.value, ValueError)
    # the same problem in memory names the table instead of a file
    with pytest.raises(churnseg.InputError, match=r"(?s)subscribers \(pyarrow.Table\).*column `signup_date`: expected Date"):
        churnseg.features(bad, str(data["interactions"]), as_of=SCORE_AS_OF)


def test_bad_events_name_the_column_and_an_example_row(data):
    events = pq.read_table(data["interactions"])
    bad = events.set_column(events.schema.get_field_index("touchpoint"), "touchpoint", pa.array(range(events.num_rows)))
    with pytest.raises(churnseg.InputError, match=r"(?s)interactions \(pyarrow.Table\).*column `touchpoint`: expected Utf8, found Int64 \(example row 0: \"0\"\)"):
        churnseg.features(str(data["subscribers"]), bad, as_of=SCORE_AS_OF)
    missing = events.drop_columns(["ts"])
    with pytest.raises(churnseg.InputError, match="missing required column `ts`"):
        churnseg.features(str(data["subscribers"]), pl.from_arrow(missing), as_of=SCORE_AS_OF)


def test_duplicate_ids_and_missing_paths_are_input_errors(data, tmp_path):
    subs = pl.read_parquet(data["subscribers"])
    twice = pl.concat([subs, subs.head(1)])
    with pytest.raises(churnseg.InputError, match="duplicate subscriber id"):
        churnseg.features(twice, None, as_of=SCORE_AS_OF)
    with pytest.raises(churnseg.InputError, match="does not exist"):
        churnseg.features(str(tmp_path / "nowhere.parquet"), None, as_of=SCORE_AS_OF)
    with pytest.raises(churnseg.ChurnsegError, match="not found"):
        churnseg.Model.load(tmp_path / "no_model")
    with pytest.raises(TypeError, match="`subscribers` must be"):
        churnseg.features(42, None, as_of=SCORE_AS_OF)


def test_bad_settings_are_value_errors(data):
    subs, events = paths(data)
    model = churnseg.Model.load(data["model"])
    with pytest.raises(ValueError, match="as_of"):
        churnseg.features(subs, events, as_of="July")
    with pytest.raises(ValueError, match="budget"):
        model.score(subs, events, as_of=SCORE_AS_OF, budget=-1)
    with pytest.raises(ValueError, match="candidate"):
        churnseg.train(subs, events, as_of=TRAIN_AS_OF, candidate="forest")
    with pytest.raises(ValueError, match="allow"):
        churnseg.features(subs, events, as_of=SCORE_AS_OF, allow=["no_such_guard"])


def test_a_health_guard_raises_guard_error(data):
    subs, events = paths(data)
    # a night far after the history: no subscriber has a recent event
    with pytest.raises(churnseg.GuardError):
        churnseg.features(subs, events, as_of="2027-06-01")
    churnseg.features(subs, events, as_of="2027-06-01", allow=["all"])


def test_dates_may_be_date_objects(data):
    import datetime

    subs, events = paths(data)
    a = churnseg.features(subs, events, as_of=datetime.date(2026, 7, 1))
    assert_same_table(a, pq.read_table(data["features"]))


def test_the_gil_is_released_while_rust_works(data):
    """Python keeps running beside a call: the longest pause of a busy loop in the main
    thread stays well under the call's duration."""
    import threading
    import time

    subs, events = paths(data)
    model = churnseg.Model.load(data["model"])
    done = {}

    def work():
        start = time.perf_counter()
        model.score(subs, events, as_of=SCORE_AS_OF, threads=1)
        done["seconds"] = time.perf_counter() - start

    worker = threading.Thread(target=work)
    last, longest = time.perf_counter(), 0.0
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    assert done["seconds"] > 0.05
    assert longest < done["seconds"] / 2, (longest, done["seconds"])
