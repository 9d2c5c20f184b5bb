#!/usr/bin/env python3
"""`predicted_value_segment` against persistence, on realised next-period segments.

End to end through the `churnseg` binary, so what is measured is what users run:

1. `churnseg generate` (unless `--data` already holds the files);
2. `churnseg train --as-of T --horizon H` (the value-segment model learns moves from the
   pairs (features at T − H, segment at T));
3. `churnseg score --as-of S` (S later than T, so nothing scored was seen in training);
4. `churnseg features --as-of S + H`: the realised segment of every subscriber active
   then is the exact 20/50/30 cut of that snapshot's `profit_90d` (the rule of
   `src/segment/value.rs`: most profitable first, ties in input order, unknown last).

Scored subscribers still active at S + H are judged: the accuracy of
`predicted_value_segment` and of persistence (`value_segment`, "next period = this
period") against the realised segment, overall, on the movers (realised ≠ current) and
on the stayers. Persistence is right on every stayer and wrong on every mover, so the
two subgroup figures say what the model buys on movers and what it pays on stayers.

  cargo build --release
  /work/venv/bin/python benches/value_forecast.py --bin target/release/churnseg
"""

import argparse
import datetime as dt
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

SEGMENTS = ["top20", "middle50", "bottom30"]


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{out.stderr}")
    return out.stderr


def segments_of(profit):
    """The exact 20/50/30 cut of `src/segment/value.rs::assign`."""
    profit = np.asarray(profit, dtype=float)
    n = len(profit)
    known = ~np.isnan(profit)
    # stable sort: most profitable first, ties keep input order, unknown last
    key = np.where(known, -profit, np.inf)
    order = np.argsort(key, kind="stable")
    top = int(np.floor(n * 0.2 + 0.5))
    bottom = min(int(np.floor(n * 0.3 + 0.5)), n - top)
    seg = np.empty(n, dtype=object)
    seg[order[:top]] = "top20"
    seg[order[top:n - bottom]] = "middle50"
    seg[order[n - bottom:]] = "bottom30"
    return seg


def accuracy(pred, actual):
    return float((pred == actual).mean()) if len(actual) else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/churnseg")
    ap.add_argument("--data", default="/tmp/vs100k", help="generated data directory")
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--train-as-of", default="2026-01-01")
    ap.add_argument("--score-as-of", default="2026-02-26")
    ap.add_argument("--horizon", type=int, default=90)
    ap.add_argument("--model", help="reuse this trained model directory (skips train)")
    ap.add_argument("--work", help="directory for the model, scores and features (default: a temp dir)")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()

    threads = ["--threads", str(args.threads)] if args.threads else []
    data = Path(args.data)
    if not (data / "subscribers.parquet").exists():
        run([args.bin, *threads, "generate", "--subscribers", str(args.subscribers),
             "--days", str(args.days), "--seed", str(args.seed), "--out", str(data)])
    inputs = ["--subscribers", str(data / "subscribers.parquet"),
              "--interactions", str(data / "interactions.parquet"),
              "--taxonomy", str(data / "taxonomy.toml")]
    work = Path(args.work or tempfile.mkdtemp(prefix="value-forecast-"))
    work.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else work / "model"
    if not (model / "model.json").exists():
        log = run([args.bin, *threads, "train", *inputs, "--as-of", args.train_as_of,
                   "--horizon", str(args.horizon), "--out", str(model)])
        for line in log.splitlines():
            if "segments" in line or "train done" in line:
                print(line.rstrip())
    scored = work / "scored.parquet"
    run([args.bin, *threads, "score", *inputs, "--as-of", args.score_as_of,
         "--model", str(model), "--out", str(scored)])
    later = (dt.date.fromisoformat(args.score_as_of)
             + dt.timedelta(days=args.horizon)).isoformat()
    features = work / f"features-{later}.parquet"
    run([args.bin, *threads, "features", *inputs, "--as-of", later, "--out", str(features)])

    s = pd.read_parquet(scored, columns=["subscriber_id", "value_segment",
                                         "predicted_value_segment"])
    f = pd.read_parquet(features, columns=["subscriber_id", "profit_90d"])
    f["realised"] = segments_of(f["profit_90d"].to_numpy(dtype=float, na_value=np.nan))
    j = s.merge(f[["subscriber_id", "realised"]], on="subscriber_id", how="inner")
    actual = j["realised"].to_numpy()
    model_pred = j["predicted_value_segment"].to_numpy()
    persist = j["value_segment"].to_numpy()
    movers = persist != actual
    metrics = json.loads((model / "metrics.json").read_text())
    report = metrics.get("metrics", {}).get("value_segments", {})
    row = {
        "train_as_of": args.train_as_of, "score_as_of": args.score_as_of, "realised_as_of": later,
        "judged": int(len(j)), "movers": int(movers.sum()),
        "shipped": report.get("shipped") or ("model" if report.get("method") == "holdout" else "persistence"),
        "margin": report.get("move_margin"),
        "predicted_moves": int((model_pred != persist).sum()),
        "model": {"overall": accuracy(model_pred, actual),
                  "movers": accuracy(model_pred[movers], actual[movers]),
                  "stayers": accuracy(model_pred[~movers], actual[~movers])},
        "persistence": {"overall": accuracy(persist, actual),
                        "movers": accuracy(persist[movers], actual[movers]),
                        "stayers": accuracy(persist[~movers], actual[~movers])},
    }
    print(json.dumps(row))
    print(f"{'':12} {'overall':>8} {'movers':>8} {'stayers':>8}")
    for name in ["model", "persistence"]:
        r = row[name]
        print(f"{name:12} {r['overall']:8.4f} {r['movers']:8.4f} {r['stayers']:8.4f}")
    print(f"judged {row['judged']} subscribers active at {args.score_as_of} and {later}; "
          f"{row['movers']} moved; the model predicted {row['predicted_moves']} moves "
          f"(shipped: {row['shipped']}, move margin {row['margin']})")


if __name__ == "__main__":
    main()
