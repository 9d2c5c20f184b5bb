#!/usr/bin/env python3
"""Time `churnseg features` against the Python-polars and DuckDB peers
(../shared/bench/peer_features.py) on the same data, alternating, and print ratios.

usage: benches/compare_peers.py DATA_DIR AS_OF [--threads N] [--rounds R] [--churnseg BIN]
                                 [--peer PATH] [--memory-threads 2,8]

Each round runs churnseg, its decode floor (`features --decode-only`: the same columns
read by the same reader and dropped), polars and duckdb once, in that order, each in its
own process; wall time comes from the clock, peak memory from the child's rusage (wait4).
The medians over the rounds are reported, with ratios to the faster peer and to the
decode floor. With --memory-threads, churnseg then runs once at each thread count given
and its peak memory is reported against the first. Finally every SPEC §4 core column of
churnseg's output is compared with DuckDB's (relative tolerance 1e-9, nulls where it has
nulls).

Set up once: python3 -m venv .venv && .venv/bin/pip install polars duckdb pyarrow
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env=None):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss * 1024


def compare(ours, theirs):
    import polars as pl
    a = pl.read_parquet(ours)
    b = pl.read_parquet(theirs)
    if a.height != b.height:
        return [f"row count {a.height} vs {b.height}"]
    a = a.sort("subscriber_id")
    b = b.sort("subscriber_id")
    problems = []
    if a["subscriber_id"].cast(pl.Utf8).to_list() != b["subscriber_id"].cast(pl.Utf8).to_list():
        return ["subscriber ids differ"]
    for col in b.columns:
        if col == "subscriber_id":
            continue
        if col not in a.columns:
            problems.append(f"missing column {col}")
            continue
        x = a[col].cast(pl.Float64)
        y = b[col].cast(pl.Float64)
        if (x.is_null() != y.is_null()).any():
            problems.append(f"{col}: nulls differ")
            continue
        both = pl.DataFrame({"x": x, "y": y}).drop_nulls()
        bad = both.filter(((pl.col("x") - pl.col("y")).abs() > 1e-9 * pl.col("y").abs().clip(lower_bound=1.0))
                          & ~(pl.col("x").is_nan() & pl.col("y").is_nan()))
        if bad.height:
            problems.append(f"{col}: {bad.height} values differ, e.g. {bad.row(0)}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("as_of")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--memory-threads", default="", help="e.g. 2,8: churnseg's peak memory at each")
    ap.add_argument("--churnseg", default=os.path.join(HERE, "..", "target", "release", "churnseg"))
    ap.add_argument("--peer", default=os.path.join(HERE, "..", "..", "shared", "bench", "peer_features.py"))
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    d = args.data_dir
    out = tempfile.mkdtemp(prefix="churnseg-peers-")
    t = str(args.threads)
    def features(threads, *extra):
        return [args.churnseg, "--quiet", "--threads", str(threads), "features",
                "--subscribers", os.path.join(d, "subscribers.parquet"),
                "--interactions", os.path.join(d, "interactions.parquet"),
                "--taxonomy", os.path.join(d, "taxonomy.toml"),
                "--as-of", args.as_of, "--out", os.path.join(out, "churnseg.parquet"), *extra]
    cmds = {
        "churnseg": features(t),
        "decode": features(t, "--decode-only"),
        "polars": [args.python, args.peer, "polars", d, args.as_of, os.path.join(out, "polars.parquet"), t],
        "duckdb": [args.python, args.peer, "duckdb", d, args.as_of, os.path.join(out, "duckdb.parquet"), t],
    }
    env = dict(os.environ, POLARS_MAX_THREADS=t, RAYON_NUM_THREADS=t)
    times = {k: [] for k in cmds}
    mems = {k: [] for k in cmds}
    for r in range(args.rounds):
        for name, cmd in cmds.items():
            wall, rss = run(cmd, env)
            times[name].append(wall)
            mems[name].append(rss)
            print(f"round {r + 1} {name:9s} {wall:8.2f}s  peak {rss / 2**20:8.0f} MiB", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    mem = {k: max(v) for k, v in mems.items()}
    faster = min(("polars", "duckdb"), key=lambda k: med[k])
    print(f"\nthreads {args.threads}, {args.rounds} rounds, medians:")
    for k in cmds:
        print(f"  {k:9s} {med[k]:8.2f}s  peak {mem[k] / 2**20:8.0f} MiB")
    print(f"churnseg / {faster} (faster peer) wall time: {med['churnseg'] / med[faster]:.3f}")
    print(f"churnseg / decode floor wall time: {med['churnseg'] / med['decode']:.3f}")
    print(f"churnseg / duckdb peak memory: {mem['churnseg'] / mem['duckdb']:.3f}")
    if args.memory_threads:
        counts = [int(x) for x in args.memory_threads.split(",")]
        peaks = {}
        for n in counts:
            _, peaks[n] = run(features(n), dict(env, RAYON_NUM_THREADS=str(n)))
            print(f"churnseg --threads {n}: peak {peaks[n] / 2**20:8.0f} MiB", flush=True)
        for n in counts[1:]:
            print(f"churnseg peak memory, {n} threads / {counts[0]} threads: {peaks[n] / peaks[counts[0]]:.3f}")
    problems = compare(os.path.join(out, "churnseg.parquet"), os.path.join(out, "duckdb.parquet"))
    print("output vs duckdb:", "identical on every core column" if not problems else "; ".join(problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
