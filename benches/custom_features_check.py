#!/usr/bin/env python3
"""Custom features (issue 20) against an independent DuckDB computation.

usage: benches/custom_features_check.py [--churnseg BIN] [--subscribers N] [--days D]
                                        [--seed S] [--string-ids] [--keep DIR]
                                        [--data DIR] [--threads T]

Generates a data set with `churnseg generate` (or takes DIR's `subscribers.parquet` and
`interactions.parquet` with `--data`), adds an extra numeric event column with
pyarrow (`data_mb`: megabytes of a data session, null on other touchpoints and on a
tenth of the sessions), writes a set of `[[features.custom]]` definitions (every
window, filter and aggregate shape, one over the subscriber table), runs
`churnseg features --custom`, and computes the same definitions with DuckDB SQL from the
Parquet files: `ts >= as_of - window AND ts < as_of`, the filter in `WHERE`, the value
per `GROUP BY subscriber_id`, `default` for subscribers with no such event. Every custom
column must equal DuckDB's (relative tolerance 1e-9, nulls where DuckDB has nulls).
Exit status 1 on any difference.

Needs duckdb, pyarrow and numpy (/work/venv has them).
"""
import argparse, os, subprocess, sys, tempfile

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))

AS_OF = "2026-07-01"

# name, window_days, where, value, default; from = "subscribers" when window is "subscribers"
DEFINITIONS = [
    ("data_mb_30d", 30, None, "sum(data_mb)", 0.0),
    ("data_mb_app_30d", 30, "channel = 'app'", "sum(data_mb) / 1024", 0.0),
    ("data_mb_mean_90d", 90, None, "avg(data_mb)", None),
    ("big_sessions_7d", 7, "data_mb > 500", "count(*)", 0.0),
    ("sessions_with_data_90d", 90, None, "count(data_mb)", None),
    ("data_mb_max_ever", None, None, "max(data_mb)", None),
    ("data_mb_spread_90d", 90, "data_mb IS NOT NULL", "max(data_mb) - min(data_mb)", -1.0),
    ("channels_30d", 30, None, "count(DISTINCT channel)", 0.0),
    ("low_rating_share_90d", 90, "satisfaction IS NOT NULL",
     "avg(CASE WHEN satisfaction <= 2 THEN 1.0 ELSE 0.0 END)", None),
    ("revenue_per_call_30d", 30, "channel IN ('call_centre', 'store')",
     "sum(revenue) / count(*)", None),
    ("data_mb_std_90d", 90, None, "stddev(data_mb)", None),
    ("complaint_minutes_median_90d", 90, "touchpoint = 'complaint_ticket'",
     "median(duration_s) / 60", 0.0),
    ("revenue_per_tenure_day", "subscribers", None, "monthly_revenue / (tenure_days + 1)", None),
]


def toml_of(defs):
    out = []
    for name, window, where, value, default in defs:
        out.append("[[features.custom]]")
        out.append(f'name = "{name}"')
        if window == "subscribers":
            out.append('from = "subscribers"')
        elif window is not None:
            out.append(f"window_days = {window}")
        if where is not None:
            out.append(f'where = "{where}"')
        out.append(f'value = "{value}"')
        if default is not None:
            out.append(f"default = {default}")
        out.append("")
    return "\n".join(out)


def add_data_mb(src, dst, seed):
    """The interactions of `src` with a `data_mb` column, written to `dst` row group by
    row group (a 50M-event file need not fit in memory)."""
    source = pq.ParquetFile(src)
    rng = np.random.default_rng(seed)
    writer = None
    for batch in source.iter_batches(batch_size=200_000):
        n = batch.num_rows
        values = rng.lognormal(mean=4.0, sigma=1.2, size=n)
        session = pc.equal(batch.column("touchpoint"), "data_session").to_numpy(
            zero_copy_only=False)
        keep = session & (rng.random(n) >= 0.1)
        column = pa.array(np.where(keep, values, 0.0), mask=~keep, type=pa.float64())
        table = pa.Table.from_batches([batch]).append_column("data_mb", column)
        if writer is None:
            writer = pq.ParquetWriter(dst, table.schema)
        writer.write_table(table, row_group_size=200_000)
    writer.close()


def duckdb_features(data, interactions, ids, threads):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {threads}")
    con.execute(f"CREATE TABLE ids AS SELECT * FROM read_parquet('{ids}')")
    out = {}
    for name, window, where, value, default in DEFINITIONS:
        if window == "subscribers":
            sql = f"""
                SELECT i.subscriber_id, ({value})::DOUBLE AS v
                FROM ids i JOIN (
                    SELECT *, (DATE '{AS_OF}' - signup_date) AS tenure_days
                    FROM read_parquet('{data}/subscribers.parquet')) s USING (subscriber_id)"""
        else:
            start = "TIMESTAMPTZ '1900-01-01 00:00:00+00'" if window is None else (
                f"TIMESTAMPTZ '{AS_OF} 00:00:00+00' - INTERVAL {window} DAY")
            cond = f"ts >= {start} AND ts < TIMESTAMPTZ '{AS_OF} 00:00:00+00'"
            if where is not None:
                cond += f" AND ({where})"
            default_sql = "NULL" if default is None else repr(default)
            sql = f"""
                WITH g AS (
                    SELECT subscriber_id, ({value})::DOUBLE AS v
                    FROM read_parquet('{interactions}') WHERE {cond}
                    GROUP BY subscriber_id)
                SELECT i.subscriber_id,
                       CASE WHEN g.subscriber_id IS NULL THEN {default_sql} ELSE g.v END AS v
                FROM ids i LEFT JOIN g USING (subscriber_id)"""
        rows = con.execute(sql).fetchall()
        out[name] = {str(k): v for k, v in rows}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--churnseg", default=os.path.join(HERE, "..", "target", "release", "churnseg"))
    ap.add_argument("--subscribers", type=int, default=5000)
    ap.add_argument("--days", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--string-ids", action="store_true")
    ap.add_argument("--keep", help="directory to keep the data and outputs in")
    ap.add_argument("--data", help="a generated data set to check on instead of a new one")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="custom-check-")
    os.makedirs(work, exist_ok=True)
    if args.data:
        data = os.path.abspath(args.data)
    else:
        data = os.path.join(work, "data")
        gen = [args.churnseg, "--quiet", "generate", "--subscribers", str(args.subscribers),
               "--days", str(args.days), "--seed", str(args.seed), "--out", data]
        if args.string_ids:
            gen.append("--string-ids")
        subprocess.run(gen, check=True)
    interactions = os.path.join(work, "interactions_data_mb.parquet")
    add_data_mb(os.path.join(data, "interactions.parquet"), interactions, args.seed)
    custom = os.path.join(work, "custom.toml")
    with open(custom, "w") as f:
        f.write(toml_of(DEFINITIONS))
    out = os.path.join(work, "features.parquet")
    subprocess.run([args.churnseg, "--quiet", "--threads", str(args.threads), "features",
                    "--subscribers", os.path.join(data, "subscribers.parquet"),
                    "--interactions", interactions, "--as-of", AS_OF, "--out", out,
                    "--custom", custom], check=True)
    ours = pq.read_table(out)
    ids = os.path.join(work, "ids.parquet")
    pq.write_table(ours.select(["subscriber_id"]), ids)
    names = [d[0] for d in DEFINITIONS]
    assert ours.column_names[-len(names):] == names, ours.column_names[-len(names):]
    theirs = duckdb_features(data, interactions, ids, args.threads)
    keys = [str(k) for k in ours["subscriber_id"].to_pylist()]
    problems, checked, nulls = [], 0, 0
    for name in names:
        mine = ours[name].to_pylist()
        bad = 0
        for k, x in zip(keys, mine):
            y = theirs[name][k]
            checked += 1
            if x is None or y is None:
                nulls += x is None
                ok = x is None and y is None
            else:
                ok = abs(x - y) <= 1e-9 * max(abs(y), 1.0)
            if not ok:
                if bad < 3:
                    problems.append(f"{name} of {k}: churnseg {x!r}, duckdb {y!r}")
                bad += 1
        if bad:
            problems.append(f"{name}: {bad} of {len(keys)} rows differ")
    print(f"{len(names)} custom features x {len(keys)} subscribers = {checked} values "
          f"({nulls} null) compared with DuckDB; data in {work}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("all equal (relative tolerance 1e-9, nulls where DuckDB has nulls)")


if __name__ == "__main__":
    main()
