"""Python `Model.score` against the CLI's `score` on the same data: the binding's overhead.

    python python/bench_score.py DATA_DIR MODEL_DIR AS_OF [--rounds 3] [--cli target/release/churnseg]

Alternates the two (the CLI writing scored.parquet, Python returning the table) and
prints each run and the medians' ratio.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import churnseg

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("model")
p.add_argument("as_of")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--cli", default="target/release/churnseg")
a = p.parse_args()
subs, events = str(Path(a.data) / "subscribers.parquet"), str(Path(a.data) / "interactions.parquet")
model = churnseg.Model.load(a.model)
cli, py = [], []
with tempfile.TemporaryDirectory() as tmp:
    for r in range(a.rounds):
        start = time.perf_counter()
        subprocess.run([a.cli, "-q", "score", "--subscribers", subs, "--interactions", events, "--as-of", a.as_of,
                        "--model", a.model, "--out", f"{tmp}/scored.parquet"], check=True)
        cli.append(time.perf_counter() - start)
        start = time.perf_counter()
        rows = model.score(subs, events, as_of=a.as_of).num_rows
        py.append(time.perf_counter() - start)
        print(f"round {r + 1}: cli {cli[-1]:.2f}s, python {py[-1]:.2f}s ({rows} rows)", flush=True)
print(f"median cli {statistics.median(cli):.2f}s, python {statistics.median(py):.2f}s, "
      f"python / cli {statistics.median(py) / statistics.median(cli):.3f}")
