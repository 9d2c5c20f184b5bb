#!/usr/bin/env python3
"""The cost of five custom features over two windows (issue 20): `churnseg features`
without them (the fused core pass) and with them (`--custom`), and the same five as
DuckDB SQL, alternating in one run, each in its own process.

usage: benches/custom_features_bench.py DATA_DIR [--as-of 2026-07-01] [--threads 2]
                                        [--rounds 3] [--churnseg BIN]

DATA_DIR holds `subscribers.parquet` and `interactions.parquet` (`churnseg generate`).
Reported per round and as medians: wall time of each run; the fused pass (the `features`
step, as churnseg logs it) of the run without custom features; the `custom` stage of the
run with them (the polars queries and the join into the feature table, as churnseg logs
it); and the DuckDB query (two scans, one per window, the five aggregates with `FILTER`
clauses, joined to every subscriber, written to Parquet), timed inside its process and
as the whole process. The load average is printed before, after and with each round. Then the five columns of churnseg's output are
compared with DuckDB's (relative tolerance 1e-9, nulls where DuckDB has nulls).
"""
import argparse, os, re, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))

CUSTOM = """
[[features.custom]]
name = "app_minutes_30d"
window_days = 30
where = "channel = 'app'"
value = "sum(duration_s) / 60"
default = 0

[[features.custom]]
name = "calls_30d"
window_days = 30
where = "channel = 'call_centre'"
value = "count(*)"
default = 0

[[features.custom]]
name = "revenue_per_event_90d"
window_days = 90
value = "sum(revenue) / count(*)"

[[features.custom]]
name = "low_rating_share_90d"
window_days = 90
where = "satisfaction IS NOT NULL"
value = "avg(CASE WHEN satisfaction <= 2 THEN 1.0 ELSE 0.0 END)"

[[features.custom]]
name = "complaint_minutes_90d"
window_days = 90
where = "touchpoint = 'complaint_ticket'"
value = "sum(duration_s) / 60"
default = 0
"""

NAMES = ["app_minutes_30d", "calls_30d", "revenue_per_event_90d", "low_rating_share_90d",
         "complaint_minutes_90d"]


def duckdb_sql(data, as_of):
    events = f"read_parquet('{data}/interactions.parquet')"
    end = f"TIMESTAMPTZ '{as_of} 00:00:00+00'"
    return f"""
    WITH w30 AS (
        SELECT subscriber_id,
               sum(duration_s) FILTER (WHERE channel = 'app') / 60 AS app_minutes_30d,
               count(*) FILTER (WHERE channel = 'app') AS app_n,
               count(*) FILTER (WHERE channel = 'call_centre') AS calls_30d
        FROM {events} WHERE ts >= {end} - INTERVAL 30 DAY AND ts < {end}
        GROUP BY subscriber_id),
    w90 AS (
        SELECT subscriber_id,
               sum(revenue) / count(*) AS revenue_per_event_90d,
               avg(CASE WHEN satisfaction <= 2 THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE satisfaction IS NOT NULL) AS low_rating_share_90d,
               sum(duration_s) FILTER (WHERE touchpoint = 'complaint_ticket') / 60
                   AS complaint_minutes_90d,
               count(*) FILTER (WHERE touchpoint = 'complaint_ticket') AS complaint_n
        FROM {events} WHERE ts >= {end} - INTERVAL 90 DAY AND ts < {end}
        GROUP BY subscriber_id)
    SELECT s.subscriber_id,
           CASE WHEN coalesce(app_n, 0) = 0 THEN 0 ELSE app_minutes_30d END AS app_minutes_30d,
           coalesce(calls_30d, 0)::DOUBLE AS calls_30d,
           revenue_per_event_90d::DOUBLE AS revenue_per_event_90d,
           low_rating_share_90d::DOUBLE AS low_rating_share_90d,
           CASE WHEN coalesce(complaint_n, 0) = 0 THEN 0 ELSE complaint_minutes_90d END
               AS complaint_minutes_90d
    FROM read_parquet('{data}/subscribers.parquet') s
    LEFT JOIN w30 USING (subscriber_id) LEFT JOIN w90 USING (subscriber_id)
    """


DUCKDB_CHILD = """
import sys, time, duckdb
sql, out, threads = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute(f"SET threads = {threads}")
start = time.perf_counter()
con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
print(f"duckdb query in {time.perf_counter() - start:.3f}s")
"""


def load():
    """The 1-, 5- and 15-minute load averages."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def stage_seconds(name, text):
    """The time churnseg logged for its step `name` (`{name}  ... in 1.23s`)."""
    for line in text.splitlines():
        m = re.match(rf"\s*{name}\s\s.* in ([0-9.]+)s$", line)
        if m:
            return float(m.group(1))
    return float("nan")


def run(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = proc.communicate()
    wall = time.perf_counter() - start
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{text}")
    return wall, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--as-of", default="2026-07-01")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--churnseg", default=os.path.join(HERE, "..", "target", "release", "churnseg"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="custom-bench-")
    custom = os.path.join(work, "five.toml")
    with open(custom, "w") as f:
        f.write(CUSTOM)
    base = [args.churnseg, "--threads", str(args.threads), "features",
            "--subscribers", os.path.join(args.data, "subscribers.parquet"),
            "--interactions", os.path.join(args.data, "interactions.parquet"),
            "--as-of", args.as_of]
    core_out, custom_out = os.path.join(work, "core.parquet"), os.path.join(work, "custom.parquet")
    duck_out = os.path.join(work, "duckdb.parquet")
    sql = duckdb_sql(os.path.abspath(args.data), args.as_of)
    times = {"core run": [], "fused pass": [], "with custom run": [], "custom stage": [],
             "duckdb run": [], "duckdb query": []}
    print(f"load before: {load()}", flush=True)
    for r in range(args.rounds):
        t, text = run(base + ["--out", core_out])
        times["core run"].append(t)
        times["fused pass"].append(stage_seconds("features", text))
        t, text = run(base + ["--out", custom_out, "--custom", custom])
        times["with custom run"].append(t)
        times["custom stage"].append(stage_seconds("custom", text))
        t, text = run([sys.executable, "-c", DUCKDB_CHILD, sql, duck_out, str(args.threads)])
        times["duckdb run"].append(t)
        times["duckdb query"].append(float(re.search(r"duckdb query in ([0-9.]+)s", text).group(1)))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items())
              + f"; load {load()}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("medians: " + ", ".join(f"{k} {v:.2f}s" for k, v in med.items()))
    print(f"custom features add {med['with custom run'] - med['core run']:.2f}s to the run "
          f"({med['with custom run'] / med['core run']:.2f}x its wall); the custom stage is "
          f"{med['custom stage'] / med['fused pass']:.2f}x the fused pass's time and "
          f"{med['custom stage'] / med['duckdb query']:.2f}x DuckDB's query for the same five "
          f"({med['custom stage'] / med['duckdb run']:.2f}x its whole process)")
    print(f"load after: {load()}")
    import pyarrow.parquet as pq
    ours = pq.read_table(custom_out).select(["subscriber_id"] + NAMES).to_pydict()
    theirs = pq.read_table(duck_out).to_pydict()
    row = {str(k): i for i, k in enumerate(theirs["subscriber_id"])}
    bad = 0
    for name in NAMES:
        for k, x in zip(ours["subscriber_id"], ours[name]):
            y = theirs[name][row[str(k)]]
            ok = (x is None and y is None) or (
                x is not None and y is not None and abs(x - y) <= 1e-9 * max(abs(y), 1.0))
            if not ok:
                if bad < 5:
                    print(f"differs: {name} of {k}: churnseg {x!r}, duckdb {y!r}")
                bad += 1
    n = len(ours["subscriber_id"])
    print(f"{len(NAMES)} x {n} values compared with DuckDB: "
          + ("all equal (relative 1e-9, same nulls)" if bad == 0 else f"{bad} differ"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
