"""Fixtures: a small generated data set, and the CLI's outputs on it to compare with.

The CLI binary is ``$CHURNSEG_BIN`` when set (the repository's ``./test`` sets it to the
debug build it has just tested), else it is built here with ``cargo build``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Small enough to keep the suite fast, large enough for the out-of-time validation
# (90 days of history before as_of - horizon, churners on both snapshots).
SUBSCRIBERS = 1500
SEED = 11
TRAIN_AS_OF = "2026-04-01"
SCORE_AS_OF = "2026-07-01"
TREES = 40
# one snapshot per model (`--snapshots 1`): the stacking is tested in Rust
SNAPSHOTS = 1
BUDGET = 2000.0


def _binary() -> Path:
    given = os.environ.get("CHURNSEG_BIN")
    if given:
        return Path(given)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    subprocess.run(["cargo", "build", "--quiet", "--bin", "churnseg"], cwd=REPO, check=True)
    return target / "debug" / "churnseg"


@pytest.fixture(scope="session")
def cli():
    """Runs the churnseg CLI quietly; fails the test with its stderr on error."""
    binary = _binary()

    def run(*args: str) -> None:
        done = subprocess.run([str(binary), "--quiet", *args], capture_output=True, text=True)
        assert done.returncode == 0, f"churnseg {' '.join(args)} failed:\n{done.stderr}"

    return run


@pytest.fixture(scope="session")
def data(tmp_path_factory, cli) -> dict:
    """The generated inputs, with the CLI's features, model and scores on them."""
    root = tmp_path_factory.mktemp("churnseg")
    inputs = root / "data"
    cli("generate", "--subscribers", str(SUBSCRIBERS), "--days", "365", "--seed", str(SEED), "--out", str(inputs))
    d = {
        "root": root,
        "subscribers": inputs / "subscribers.parquet",
        "interactions": inputs / "interactions.parquet",
        "taxonomy": inputs / "taxonomy.toml",
    }
    io = ["--subscribers", str(d["subscribers"]), "--interactions", str(d["interactions"])]
    d["features"] = root / "features.parquet"
    cli("features", *io, "--as-of", SCORE_AS_OF, "--out", str(d["features"]))
    d["model"] = root / "models" / "demo"
    cli("train", *io, "--as-of", TRAIN_AS_OF, "--horizon", "90", "--trees", str(TREES), "--snapshots", str(SNAPSHOTS), "--out", str(d["model"]))
    d["scored"] = root / "scored.parquet"
    cli("score", *io, "--as-of", SCORE_AS_OF, "--model", str(d["model"]), "--budget", str(BUDGET), "--out", str(d["scored"]))
    return d


def assert_same_table(got, expected) -> None:
    """Column by column, names, types and values (nulls and NaN included)."""
    assert got.column_names == expected.column_names
    for name in expected.column_names:
        a, b = got.column(name), expected.column(name)
        assert a.type == b.type, f"column {name}: {a.type} != {b.type}"
        assert a.combine_chunks().equals(b.combine_chunks()), f"column {name} differs"
    assert got.num_rows == expected.num_rows
