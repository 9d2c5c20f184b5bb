"""Spark ``local[2]`` ``churnseg.spark.score``, Python ``Model.score`` and the CLI's
``score`` on the same data, alternating: wall time and peak memory of each run.

    python python/bench_spark.py DATA_DIR MODEL_DIR AS_OF [--rounds 3] [--cli churnseg]
        [--shards 8] [--only cli,python,spark]

Each run is a fresh process in a session of its own; its peak memory is the largest sum
of the resident sets of the session's processes (the JVM and its Python workers, for
Spark), sampled every 0.2 s from /proc. The CLI and Spark write ``scored.parquet`` (Spark a
directory of parts); Python returns the table. Prints each run and the medians' ratios
to the CLI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPARK_RUN = r"""
import sys, churnseg, churnseg.spark
from pyspark.sql import SparkSession
subs, events, model_dir, as_of, out, shards = sys.argv[1:7]
spark = (SparkSession.builder.master("local[2]").appName("churnseg-bench")
         .config("spark.sql.shuffle.partitions", shards)
         .config("spark.driver.memory", "6g")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .getOrCreate())
model = churnseg.Model.load(model_dir)
scored = churnseg.spark.score(spark.read.parquet(subs), spark.read.parquet(events), model, as_of,
                              shards=int(shards))
scored.write.mode("overwrite").parquet(out)
print(spark.read.parquet(out).count(), "rows")
spark.stop()
"""

PYTHON_RUN = r"""
import sys, churnseg
subs, events, model_dir, as_of = sys.argv[1:5]
model = churnseg.Model.load(model_dir)
print(model.score(subs, events, as_of=as_of).num_rows, "rows")
"""


def session_rss(sid: int) -> int:
    """Bytes resident in the processes of session ``sid``."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != sid:  # field 6 of stat: the session id
                continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def measure(cmd: list) -> tuple:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, session_rss(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    out = proc.stdout.read()
    if proc.returncode != 0:
        sys.exit(f"{cmd[:3]} failed ({proc.returncode}):\n{out[-3000:]}")
    rows = next((line for line in out.splitlines() if line.endswith(" rows")), "?")
    return wall, peak, rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("model")
    p.add_argument("as_of")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cli", default="churnseg")
    p.add_argument("--shards", default="8")
    p.add_argument("--only", default="cli,python,spark")
    a = p.parse_args()
    subs, events = str(Path(a.data) / "subscribers.parquet"), str(Path(a.data) / "interactions.parquet")
    kinds = a.only.split(",")
    runs: dict = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        commands = {
            "cli": [a.cli, "-q", "score", "--subscribers", subs, "--interactions", events, "--as-of", a.as_of,
                    "--model", a.model, "--out", f"{tmp}/scored.parquet"],
            "python": [sys.executable, "-c", PYTHON_RUN, subs, events, a.model, a.as_of],
            "spark": [sys.executable, "-c", SPARK_RUN, subs, events, a.model, a.as_of, f"{tmp}/spark-scored",
                      a.shards],
        }
        for r in range(a.rounds):
            for kind in kinds:
                wall, peak, rows = measure(commands[kind])
                runs[kind].append((wall, peak))
                print(f"round {r + 1} {kind}: {wall:.1f} s, peak {peak / 2**30:.2f} GiB ({rows}), "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    median = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v)) for k, v in runs.items()}
    for k, (w, m) in median.items():
        line = f"median {k}: {w:.1f} s, {m / 2**30:.2f} GiB"
        if "cli" in median and k != "cli":
            line += f" ({w / median['cli'][0]:.2f}x the CLI's time, {m / median['cli'][1]:.2f}x its memory)"
        print(line)


if __name__ == "__main__":
    main()
