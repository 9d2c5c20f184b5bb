//! Model quality on generated data whose truth is known (`truth.parquet`: churn date and
//! true churn driver): train at one date, score 57 days later with a 90-day horizon, and
//! judge the scores against what really happened — the protocol the issues check with.

use std::collections::HashMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Float64Type, Int32Type, Int64Type};
use churnseg::segment::ChurnDriver;
use churnseg::segment::touchpoints::allowed;
use churnseg::taxonomy::Taxonomy;

mod common;
use common::{ok, read, strings};

/// ROC AUC by the rank-sum formula (ties get average ranks).
fn roc_auc(p: &[f64], y: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut ranks = vec![0.0; p.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && p[order[j + 1]] == p[order[i]] {
            j += 1;
        }
        for k in i..=j {
            ranks[order[k]] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|&&v| v).count() as f64;
    let neg = y.len() as f64 - pos;
    let sum: f64 = (0..y.len()).filter(|&i| y[i]).map(|i| ranks[i]).sum();
    (sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[test]
fn out_of_time_scores_drivers_and_targets_hold_up_against_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    ok(&[
        "generate",
        "--subscribers",
        "20000",
        "--days",
        "365",
        "--seed",
        "11",
        "--out",
        &s(&data),
    ]);
    let (subs, events) = (
        s(&data.join("subscribers.parquet")),
        s(&data.join("interactions.parquet")),
    );
    let model = s(&dir.path().join("model"));
    let scored = dir.path().join("scored.parquet");
    let inputs = ["--subscribers", &subs, "--interactions", &events];
    ok(&[
        &["train"][..],
        &inputs,
        &[
            "--as-of",
            "2026-01-01",
            "--horizon",
            "90",
            "--snapshots",
            "3",
            "--out",
            &model,
        ],
    ]
    .concat());
    // Three snapshots 30 days apart, each with 90 days of history before it, were stacked.
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&model).join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["metrics"]["snapshots"], 3, "{}", metrics["metrics"]);
    // Retention by touchpoint was learned on the same snapshots: some touchpoints go
    // with staying, complaints with leaving.
    let retention = metrics["touchpoint_retention"]["touchpoints"]
        .as_array()
        .unwrap();
    let lift = |name: &str| {
        retention
            .iter()
            .find(|t| t["touchpoint"] == name)
            .and_then(|t| t["retention_lift"].as_f64())
            .unwrap()
    };
    assert!(retention[0]["retention_lift"].as_f64().unwrap() > 0.0);
    assert!(lift("complaint_ticket") < 0.0);
    ok(&[
        &["score"][..],
        &inputs,
        &[
            "--as-of",
            "2026-02-27",
            "--model",
            &model,
            "--out",
            &s(&scored),
        ],
    ]
    .concat());

    // What really happened in [as_of, as_of + 90 days).
    let truth = read(&data.join("truth.parquet"));
    let ids = truth.column(0).as_primitive::<Int64Type>();
    let churn = truth.column(1).as_primitive::<Date32Type>();
    let drivers = strings(&truth, "churn_driver");
    let start = chrono::NaiveDate::from_ymd_opt(2026, 2, 27).unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let day0 = (start - epoch).num_days() as i32;
    let fate: HashMap<i64, (bool, Option<String>)> = (0..ids.len())
        .map(|i| {
            let churned = churn.is_valid(i) && (day0..day0 + 90).contains(&churn.value(i));
            (ids.value(i), (churned, drivers[i].clone()))
        })
        .collect();

    let batch = read(&scored);
    let n = batch.num_rows();
    let sid = batch
        .column_by_name("subscriber_id")
        .unwrap()
        .as_primitive::<Int64Type>();
    let prob = batch
        .column_by_name("churn_probability")
        .unwrap()
        .as_primitive::<Float64Type>();
    let decile = batch
        .column_by_name("risk_decile")
        .unwrap()
        .as_primitive::<Int32Type>();
    let got_driver = strings(&batch, "churn_driver");
    let evidence = strings(&batch, "driver_evidence");
    let segment = strings(&batch, "value_segment");
    let action = strings(&batch, "loyalty_action");
    let touch = batch
        .column_by_name("recommended_touchpoints")
        .unwrap()
        .as_list::<i32>();

    let labels: Vec<bool> = (0..n).map(|i| fate[&sid.value(i)].0).collect();
    let auc = roc_auc(prob.values(), &labels);
    assert!(auc >= 0.70, "out-of-time ROC AUC {auc:.3}");

    // Expected calibration error over 10 bins.
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for (i, &label) in labels.iter().enumerate().take(n) {
        let b = ((prob.value(i) * 10.0) as usize).min(9);
        bins[b].0 += prob.value(i);
        bins[b].1 += label as u8 as f64;
        bins[b].2 += 1;
    }
    let ece: f64 = bins.iter().map(|(p, y, _)| (p - y).abs()).sum::<f64>() / n as f64;
    assert!(ece <= 0.02, "expected calibration error {ece:.4}");

    // churn_driver agrees with the true driver of churners more often than always
    // answering the most common driver would.
    let mut hits = 0usize;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut churners = 0usize;
    for i in 0..n {
        let (churned, truth) = &fate[&sid.value(i)];
        if let (true, Some(t)) = (churned, truth) {
            churners += 1;
            *counts.entry(t.clone()).or_default() += 1;
            hits += (got_driver[i].as_deref() == Some(t.as_str())) as usize;
        }
    }
    // Every driver says what it rests on: `none` only for the prior, and otherwise
    // features of the driver's own footprint.
    let footprint = |d: &str| -> &[&str] {
        match d {
            "service" => &[
                "complaints_unresolved_90d",
                "low_satisfaction_90d",
                "complain_30d",
            ],
            "price" => &["reason_price_90d", "shopping_30d"],
            _ => &["use_trend", "reason_product_90d"],
        }
    };
    let mut without = 0;
    for i in 0..n {
        let (d, e) = (
            got_driver[i].as_deref().unwrap(),
            evidence[i].as_deref().unwrap(),
        );
        if e == "none" {
            without += 1;
            assert_eq!(d, churnseg::segment::driver::PRIOR.name(), "row {i}");
        } else {
            for clue in e.split(", ") {
                let feature = clue.split(" = ").next().unwrap();
                assert!(
                    footprint(d).contains(&feature),
                    "{d} driver with evidence {e}"
                );
            }
        }
    }
    assert!(
        without > 0 && without < n,
        "{without} of {n} drivers without evidence"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scored.manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["scored"]["drivers_without_evidence"], without,
        "{}",
        manifest["scored"]
    );

    let accuracy = hits as f64 / churners as f64;
    let majority = *counts.values().max().unwrap() as f64 / churners as f64;
    assert!(
        accuracy > majority,
        "driver accuracy {accuracy:.3} vs majority share {majority:.3} ({counts:?})"
    );

    // Exact 20/50/30 segments; an action for everyone; at most 3 touchpoints, at least
    // one for every top20 subscriber in the riskiest decile, all from the taxonomy and
    // none tied to the subscriber's churn driver.
    let share = |name: &str| {
        segment
            .iter()
            .filter(|s| s.as_deref() == Some(name))
            .count()
    };
    assert_eq!(share("top20"), (n as f64 * 0.2).round() as usize);
    assert_eq!(share("bottom30"), (n as f64 * 0.3).round() as usize);
    assert!(action.iter().all(Option::is_some));
    let taxonomy = Taxonomy::shipped();
    for i in 0..n {
        let picks = touch.value(i);
        let k = picks.len();
        assert!(k <= 3);
        let driver = match got_driver[i].as_deref() {
            Some("price") => ChurnDriver::Price,
            Some("product") => ChurnDriver::Product,
            _ => ChurnDriver::Service,
        };
        for p in picks.as_string::<i32>().iter().flatten() {
            let class = taxonomy.classify(p).expect("a taxonomy touchpoint");
            assert!(allowed(class, driver), "{p} for {driver:?}");
            // a way the company reaches the subscriber, never an act of their own
            assert!(class.reach, "{p} is the subscriber's own act");
            // the unprofitable are moved towards self-service, never to staff
            if action[i].as_deref() == Some("reduce_cost") {
                assert!(!class.staffed, "reduce_cost through staffed {p}");
            }
        }
        if segment[i].as_deref() == Some("top20") && decile.value(i) == 1 {
            assert!(
                k >= 1,
                "top20 subscriber {} in decile 1 has no touchpoint",
                sid.value(i)
            );
        }
    }
}
