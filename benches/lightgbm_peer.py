#!/usr/bin/env python3
"""LightGBM (and scikit-learn logistic regression) as the peer of churnseg's churn model.

Prepares the data sets both sides train on, then fits and times the peers:

  python3 -m venv /tmp/lgbvenv
  /tmp/lgbvenv/bin/pip install lightgbm numpy pandas pyarrow scikit-learn
  /tmp/lgbvenv/bin/python benches/lightgbm_peer.py prepare --out /tmp/churn-bench
  /tmp/lgbvenv/bin/python benches/lightgbm_peer.py peer --data /tmp/churn-bench --threads 2

`prepare` writes, for each data set, `<name>.train.parquet` and `<name>.test.parquet`
(features, `subscriber_id`, and a Boolean `label`):

- `iranian`, `bank`: the real data sets of shared/datasets, subscriber columns only;
  `tenure_days` = 2026-01-01 − `signup_date`; label = `churn_date` not null; stratified
  80/20 split, seed 42 (as in shared/datasets/README.md).
- `synthetic`: 200 000 + 50 000 seeded rows, 30 numeric features (counts, heavy tails,
  missing values) and 3 text columns, churn from a non-linear logistic truth; the test
  rows are drawn with a small drift, standing in for a later `as_of`.

`peer` fits LightGBM with the churn model's defaults (300 trees, learning rate 0.05, 31
leaves, 20 rows per leaf; once with LightGBM's `lambda_l2` 0, once with the churn
model's 1) on the train file, and prints test ROC AUC and fit wall time as JSON lines,
plus a standardised, median-imputed, one-hot logistic regression for reference. Text
columns go to LightGBM as pandas categoricals (its native categorical splits).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

AS_OF = pd.Timestamp("2026-01-01")
DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def real(name: str, path: Path, out: Path) -> None:
    from sklearn.model_selection import train_test_split

    df = pd.read_parquet(path)
    label = df["churn_date"].notna()
    df = df.drop(columns=["churn_date"])
    df["tenure_days"] = (AS_OF - pd.to_datetime(df["signup_date"])).dt.days.astype("int64")
    df = df.drop(columns=["signup_date"])
    df["label"] = label
    train, test = train_test_split(df, test_size=0.2, stratify=label, random_state=42)
    train.to_parquet(out / f"{name}.train.parquet", index=False)
    test.to_parquet(out / f"{name}.test.parquet", index=False)


def synthetic_frame(rows: int, rng: np.random.Generator, drift: float) -> pd.DataFrame:
    cols = {}
    for j in range(30):
        kind = j % 5
        if kind == 0:
            v = rng.poisson(2.0 + j / 10, rows).astype("float64")
        elif kind == 1:
            v = rng.lognormal(3.0, 1.0, rows)
        elif kind == 2:
            v = rng.normal(drift * 0.2, 1.0, rows)
        elif kind == 3:
            v = rng.uniform(0, 365, rows)
        else:
            v = rng.exponential(5.0, rows)
        if j % 4 == 1:
            v[rng.random(rows) < 0.15] = np.nan
        cols[f"f{j:02d}"] = v
    plans = np.array(["basic", "family", "premium", "prepaid", "student"])
    regions = np.array([f"region_{k:02d}" for k in range(20)])
    channels = np.array(["app", "call_centre", "email", "field_sales", "sms", "social", "store", "web"])
    plan = plans[rng.integers(0, len(plans), rows)]
    region = regions[np.minimum(rng.geometric(0.15, rows) - 1, len(regions) - 1)]
    channel = channels[rng.integers(0, len(channels), rows)]
    f = cols
    z = (
        -3.0
        + 0.35 * f["f00"]
        - 0.4 * np.log1p(np.nan_to_num(f["f01"], nan=20.0))
        + 0.8 * np.tanh(f["f02"])
        - 0.004 * f["f03"]
        + 0.6 * (f["f04"] > 8)
        + 0.5 * np.isnan(f["f05"])
        + 0.3 * f["f10"] * (f["f12"] > 0)
        + 0.5 * np.sin(f["f13"] / 60.0)
        + 0.7 * (plan == "prepaid")
        - 0.4 * (plan == "family")
        + 0.05 * (np.char.str_len(region.astype(str)) + np.array([int(r[-2:]) for r in region]) % 7)
        + 0.4 * ((channel == "call_centre") & (f["f20"] > 3))
        + drift * 0.2
    )
    p = 1.0 / (1.0 + np.exp(-z))
    df = pd.DataFrame(cols)
    df.insert(0, "subscriber_id", np.arange(rows, dtype="int64"))
    df["plan"] = plan
    df["region"] = region
    df["channel"] = channel
    df["label"] = rng.random(rows) < p
    return df


def synthetic(out: Path) -> None:
    rng = np.random.default_rng(20260101)
    synthetic_frame(200_000, rng, 0.0).to_parquet(out / "synthetic.train.parquet", index=False)
    synthetic_frame(50_000, rng, 1.0).to_parquet(out / "synthetic.test.parquet", index=False)


def prepare(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    real("iranian", DATASETS / "iranian_telecom_subscribers.parquet", out)
    real("bank", DATASETS / "bank_card_subscribers.parquet", out)
    synthetic(out)


def split_xy(df: pd.DataFrame):
    y = df["label"].to_numpy().astype(int)
    x = df.drop(columns=["label", "subscriber_id"])
    for c in x.columns:
        if x[c].dtype == object or pd.api.types.is_string_dtype(x[c].dtype):
            x[c] = x[c].astype("category")
    return x, y


def logistic_pipeline(nums, cats, max_iter: int):
    """The logistic-regression peer: median-imputed (with missing indicators) and
    standardised numeric columns, one-hot text columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), nums),
        ("cat", OneHotEncoder(handle_unknown="ignore"), cats),
    ])
    return make_pipeline(pre, LogisticRegression(max_iter=max_iter))


def peer(data: Path, threads: int, names) -> None:
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    for name in names:
        train = pd.read_parquet(data / f"{name}.train.parquet")
        test = pd.read_parquet(data / f"{name}.test.parquet")
        xtr, ytr = split_xy(train)
        xte, yte = split_xy(test)
        cats = [c for c in xtr.columns if str(xtr[c].dtype) == "category"]
        for c in cats:
            xte[c] = pd.Categorical(xte[c], categories=xtr[c].cat.categories)
        for lam in (0.0, 1.0):
            params = dict(
                objective="binary", n_estimators=300, learning_rate=0.05, num_leaves=31,
                min_child_samples=20, reg_lambda=lam, n_jobs=threads, verbose=-1, random_state=42,
            )
            best = None
            for _ in range(3):  # best of three wall times
                model = lgb.LGBMClassifier(**params)
                t0 = time.perf_counter()
                model.fit(xtr, ytr)
                dt = time.perf_counter() - t0
                best = dt if best is None else min(best, dt)
            auc = roc_auc_score(yte, model.predict_proba(xte)[:, 1])
            print(json.dumps({"data": name, "model": f"lightgbm_l2_{lam:g}", "rows": len(ytr),
                              "features": xtr.shape[1], "test_auc": round(auc, 5), "fit_s": round(best, 3)}))
        nums = [c for c in xtr.columns if c not in cats]
        logit = logistic_pipeline(nums, cats, max_iter=1000)
        t0 = time.perf_counter()
        logit.fit(xtr, ytr)
        dt = time.perf_counter() - t0
        auc = roc_auc_score(yte, logit.predict_proba(xte)[:, 1])
        print(json.dumps({"data": name, "model": "sklearn_logistic", "rows": len(ytr),
                          "features": xtr.shape[1], "test_auc": round(auc, 5), "fit_s": round(dt, 3)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, required=True)
    q = sub.add_parser("peer")
    q.add_argument("--data", type=Path, required=True)
    q.add_argument("--threads", type=int, default=2)
    q.add_argument("--only", nargs="*", default=["iranian", "bank", "synthetic"])
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.out)
    else:
        peer(args.data, args.threads, args.only)


if __name__ == "__main__":
    main()
