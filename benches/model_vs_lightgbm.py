#!/usr/bin/env python3
"""churnseg's churn model against LightGBM and logistic regression, end to end.

Two protocols, both through the `churnseg` binary, so what is measured is what users run:

* `synthetic`: `churnseg generate` data. Both sides train on the snapshot at T1 with
  labels `churn_date ∈ [T1, T1 + 90)` and are judged on the snapshot at T2 = T1 + 57
  against realised churn in `[T2, T2 + 90)`. LightGBM and logistic regression get the
  features `churnseg features` writes (the same rows and columns the churn model sees);
  churnseg gets `churnseg train` then `churnseg score`.
* `real`: the subscriber-only data sets of shared/datasets, stratified 80/20 split with
  seed 42; churnseg trains on the 80% file and scores the 20% file.

Prints one JSON line per data set and model (test ROC AUC, ECE over 10 bins, Brier, fit
seconds) and the AUC gaps. Fit seconds: LightGBM's `fit`; churnseg's `fit` step of
`train` (the final churn model with its calibration and baselines, as logged).

  python3 -m venv .venv && .venv/bin/pip install lightgbm scikit-learn pandas pyarrow
  cargo build --release
  .venv/bin/python benches/model_vs_lightgbm.py --bin target/release/churnseg --threads 2

`--fit-rounds N` also times the fits on the synthetic training rows (see `fit_timing`).
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"


def ece(p, y, bins=10):
    p, y = np.asarray(p, float), np.asarray(y, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return total


def judge(name, model, p, y, fit_s, fit_rows):
    from sklearn.metrics import brier_score_loss, roc_auc_score

    row = {"data": name, "model": model, "test_rows": int(len(y)),
           "test_auc": round(float(roc_auc_score(y, p)), 5),
           "ece": round(float(ece(p, y)), 5),
           "brier": round(float(brier_score_loss(y, p)), 5),
           "fit_s": None if fit_s is None else round(fit_s, 3),
           "fit_rows": fit_rows}
    print(json.dumps(row), flush=True)
    return row


def sh(args, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{r.stderr}")
    return r.stderr + r.stdout


def fit_seconds(log):
    """The churn model's fit step as `train` logs it ("fit  churn model on N rows ... in
    12.3s"): (seconds, rows), on the rows of every stacked snapshot."""
    for line in log.splitlines():
        if re.match(r"^\s*fit\b", line):
            m = re.search(r"([0-9.]+) ?s\b", line)
            rows = re.search(r"on ([0-9]+) rows", line)
            if m:
                return float(m.group(1)), rows and int(rows.group(1))
    return None, None


def text_columns(x):
    """The text columns of a feature frame: LightGBM takes them as categoricals."""
    return [c for c in x.columns if x[c].dtype == object or pd.api.types.is_string_dtype(x[c].dtype)]


def peers(name, xtr, ytr, xte, yte, threads):
    from lightgbm_peer import logistic_pipeline

    cats = text_columns(xtr)
    for c in cats:
        xtr[c] = xtr[c].astype("category")
        xte[c] = pd.Categorical(xte[c], categories=xtr[c].cat.categories)
    model = lgb_model(threads)
    t0 = time.perf_counter()
    model.fit(xtr, ytr)
    fit = time.perf_counter() - t0
    rows = [judge(name, "lightgbm", model.predict_proba(xte)[:, 1], yte, fit, len(ytr))]
    nums = [c for c in xtr.columns if c not in cats]
    logit = logistic_pipeline(nums, cats, max_iter=2000)
    t0 = time.perf_counter()
    logit.fit(xtr, ytr)
    fit = time.perf_counter() - t0
    rows.append(judge(name, "logistic", logit.predict_proba(xte)[:, 1], yte, fit, len(ytr)))
    return rows


def lgb_model(threads):
    import lightgbm as lgb

    return lgb.LGBMClassifier(objective="binary", n_estimators=300, learning_rate=0.05,
                              num_leaves=31, n_jobs=threads, verbose=-1, random_state=42)


def fit_timing(args, work, x, y):
    """Training time on the same rows, rounds alternating between the two sides.

    churnseg: `benches/churn_fit.rs` (`ChurnModel::fit` on this table: `boosting` = 300
    trees on every row, no calibration; `calibrated` = the default fit). LightGBM: its
    `fit` (`lightgbm`), and the same calibration protocol around it (`lightgbm_calibrated`:
    fit on a stratified 80%, isotonic regression on the other 20%, refit on every row).
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import train_test_split

    x = x.copy()
    for c in text_columns(x):
        x[c] = x[c].astype("category")
    table = work / "fit_table.parquet"
    x.assign(label=y).to_parquet(table, index=False)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), CHURNSEG_FIT_ROUNDS="1")
    times = {}
    for _ in range(args.fit_rounds):
        r = subprocess.run(["cargo", "bench", "--quiet", "--bench", "churn_fit", "--", str(table)],
                           cwd=ROOT, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"churn_fit failed:\n{r.stderr}")
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                times.setdefault(row["model"], []).append(row["fit_s"])
        t0 = time.perf_counter()
        lgb_model(args.threads).fit(x, y)
        times.setdefault("lightgbm", []).append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fit, cal = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=42)
        first = lgb_model(args.threads).fit(x.iloc[fit], y[fit])
        raw = first.predict(x.iloc[cal], raw_score=True)
        IsotonicRegression(out_of_bounds="clip").fit(raw, y[cal])
        lgb_model(args.threads).fit(x, y)
        times.setdefault("lightgbm_calibrated", []).append(time.perf_counter() - t0)
    median = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in times.items():
        print(json.dumps({"data": "synthetic", "timing": k, "rows": int(len(y)), "threads": args.threads,
                          "median_s": round(median[k], 3), "rounds_s": [round(t, 3) for t in v]}), flush=True)
    print(f"fit time, {len(y)} rows, {args.threads} threads, medians of {args.fit_rounds} alternating rounds: "
          f"boosting {median['churnseg_boosting']:.2f} s = "
          f"{median['churnseg_boosting'] / median['lightgbm']:.2f}x LightGBM's fit ({median['lightgbm']:.2f} s); "
          f"calibrated {median['churnseg_calibrated']:.2f} s = "
          f"{median['churnseg_calibrated'] / median['lightgbm_calibrated']:.2f}x LightGBM with the same "
          f"calibration ({median['lightgbm_calibrated']:.2f} s), "
          f"{median['churnseg_calibrated'] / median['lightgbm']:.2f}x LightGBM's fit alone", flush=True)


def labels(subs, ids, start, horizon):
    s = subs.set_index("subscriber_id")["churn_date"].reindex(ids)
    s = pd.to_datetime(s)
    start = pd.Timestamp(start)
    return ((s >= start) & (s < start + pd.Timedelta(days=horizon))).to_numpy()


def synthetic(args, work):
    data = work / "synthetic"
    t1 = pd.Timestamp(args.t1)
    t2 = t1 + pd.Timedelta(days=57)
    if not (data / "subscribers.parquet").exists():
        sh([args.bin, "generate", "--subscribers", args.subscribers, "--days", 365,
            "--seed", args.seed, "--out", data, "--end", "2026-07-01"], args.threads)
    inputs = ["--subscribers", data / "subscribers.parquet", "--interactions",
              data / "interactions.parquet", "--taxonomy", data / "taxonomy.toml"]
    subs = pd.read_parquet(data / "subscribers.parquet")
    frames = {}
    for t in (t1, t2):
        out = work / f"features_{t.date()}.parquet"
        sh([args.bin, "features", *inputs, "--as-of", t.date(), "--out", out, "--extended"], args.threads)
        f = pd.read_parquet(out)
        frames[t] = (f.drop(columns=["subscriber_id"]), labels(subs, f["subscriber_id"], t, 90),
                     f["subscriber_id"])
    xtr, ytr, _ = frames[t1]
    xte, yte, ids = frames[t2]
    if args.fit_rounds:
        fit_timing(args, work, xtr, ytr)
    rows = peers("synthetic", xtr.copy(), ytr, xte.copy(), yte, args.threads)
    model = work / "model_synthetic"
    log = sh([args.bin, "train", *inputs, "--as-of", t1.date(), "--horizon", 90, "--out", model],
             args.threads)
    scored = work / "scored_synthetic.parquet"
    sh([args.bin, "score", *inputs, "--as-of", t2.date(), "--model", model, "--out", scored], args.threads)
    s = pd.read_parquet(scored).set_index("subscriber_id").reindex(ids)
    rows.append(judge("synthetic", "churnseg", s["churn_probability"].to_numpy(), yte, *fit_seconds(log)))
    drivers(data, s, yte)
    return rows


def drivers(data, scored, churned):
    """`churn_driver` against the true driver of those who churn within the horizon."""
    truth = pd.read_parquet(data / "truth.parquet").set_index("subscriber_id")["churn_driver"]
    true = truth.reindex(scored.index)[churned]
    got = scored["churn_driver"][churned]
    accuracy = float((true == got).mean())
    majority = float(true.value_counts(normalize=True).iloc[0])
    print(json.dumps({"data": "synthetic", "churners": int(churned.sum()),
                      "driver_accuracy": round(accuracy, 4), "majority_share": round(majority, 4),
                      "confusion": pd.crosstab(true, got).to_dict()}), flush=True)


def real(args, work, name, file, seeds):
    """Repeated stratified 80/20 splits, one per seed; one row per split and model."""
    rows = []
    for seed in seeds:
        rows += real_split(args, work, name, file, seed)
    return rows


def real_split(args, work, name, file, seed):
    from sklearn.model_selection import train_test_split

    df = pd.read_parquet(DATASETS / file)
    y = df["churn_date"].notna().to_numpy()
    train, test = train_test_split(df, test_size=0.2, stratify=y, random_state=seed)
    tag = f"{name}_s{seed}"
    trp, tep = work / f"{tag}_train.parquet", work / f"{tag}_test.parquet"
    train.to_parquet(trp, index=False)
    test.to_parquet(tep, index=False)
    # The peers see what churnseg sees: its feature table of each file.
    frames = []
    for p in (trp, tep):
        out = work / f"{tag}_features_{p.stem}.parquet"
        sh([args.bin, "features", "--subscribers", p, "--as-of", "2026-01-01", "--out", out], args.threads)
        f = pd.read_parquet(out)
        sub = pd.read_parquet(p)
        frames.append((f.drop(columns=["subscriber_id"]), labels(sub, f["subscriber_id"], "2026-01-01", 30),
                       f["subscriber_id"]))
    (xtr, ytr, _), (xte, yte, ids) = frames
    rows = peers(name, xtr.copy(), ytr, xte.copy(), yte, args.threads)
    for candidate in ["auto"] + (CANDIDATES if args.candidates else []):
        model = work / f"model_{tag}_{candidate}"
        log = sh([args.bin, "train", "--subscribers", trp, "--as-of", "2026-01-01", "--horizon", 30,
                  "--out", model, "--candidate", candidate], args.threads)
        scored = work / f"scored_{tag}_{candidate}.parquet"
        sh([args.bin, "score", "--subscribers", tep, "--as-of", "2026-01-01", "--model", model,
            "--out", scored], args.threads)
        s = pd.read_parquet(scored).set_index("subscriber_id").reindex(ids)
        label = "churnseg" if candidate == "auto" else f"churnseg:{candidate}"
        row = judge(name, label, s["churn_probability"].to_numpy(), yte, *fit_seconds(log))
        if candidate == "auto":
            metrics = json.loads((model / "metrics.json").read_text())
            row["shipped"] = metrics["metrics"]["validation"]["chosen"]
            print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


CANDIDATES = ["gbdt", "logistic", "blend"]


def mean_rows(results):
    """One row per data set and model: the mean over splits."""
    out = {}
    for r in results:
        out.setdefault((r["data"], r["model"]), []).append(r)
    means = []
    for (data, model), rs in out.items():
        m = dict(rs[0])
        for k in ("test_auc", "ece", "brier"):
            m[k] = float(np.mean([r[k] for r in rs]))
        m["splits"] = len(rs)
        if "shipped" in m:
            m["shipped"] = ",".join(r["shipped"] for r in rs)
        means.append(m)
    return means


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "churnseg"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--t1", default="2026-01-01")
    ap.add_argument("--work", type=Path, default=None, help="keep data here (default: a temp dir)")
    ap.add_argument("--only", nargs="*", default=["synthetic", "iranian", "bank", "attrition"])
    ap.add_argument("--splits", type=int, default=5,
                    help="repeated stratified 80/20 splits (seeds 0..N-1) of the attrition set")
    ap.add_argument("--real-seeds", type=int, nargs="*", default=[42],
                    help="split seeds of the Iranian and bank sets")
    ap.add_argument("--candidates", action="store_true",
                    help="also train and score each churnseg candidate forced (`--candidate`)")
    ap.add_argument("--fit-rounds", type=int, default=0,
                    help="also time the fits on the synthetic training rows, this many alternating rounds")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="churnseg-model-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    if "iranian" in args.only:
        results += real(args, work, "iranian", "iranian_telecom_subscribers.parquet", args.real_seeds)
    if "bank" in args.only:
        results += real(args, work, "bank", "bank_card_subscribers.parquet", args.real_seeds)
    if "attrition" in args.only:
        results += real(args, work, "attrition", "ibm_hr_attrition_subscribers.parquet",
                        range(args.splits))
    if "synthetic" in args.only:
        results += synthetic(args, work)
    results = mean_rows(results)
    for r in results:
        if r["model"].startswith("churnseg:"):
            print(f"{r['data']}: {r['model']} AUC {r['test_auc']:.4f} (mean of {r['splits']})")
    for name in dict.fromkeys(r["data"] for r in results):
        by = {r["model"]: r for r in results if r["data"] == name}
        best = max(by["lightgbm"]["test_auc"], by["logistic"]["test_auc"])
        c = by["churnseg"]
        print(f"{name}: churnseg AUC {c['test_auc']:.4f}, LightGBM {by['lightgbm']['test_auc']:.4f}, "
              f"logistic {by['logistic']['test_auc']:.4f}, gap to best {c['test_auc'] - best:+.4f}; "
              f"splits {c['splits']}, shipped {c.get('shipped')}; "
              f"ECE {c['ece']:.4f}; `train`'s fit step {c['fit_s']} s on {c['fit_rows']} rows vs LightGBM "
              f"{by['lightgbm']['fit_s']} s on {by['lightgbm']['fit_rows']} (`--fit-rounds` times both on the same rows)")


if __name__ == "__main__":
    main()
