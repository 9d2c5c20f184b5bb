//! Seeded synthetic data for the model's unit tests.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `rows × features` standard normals; churn drawn from a logistic model of the first
/// five features (about 20% churners).
pub fn logistic_truth(rows: usize, features: usize, seed: u64) -> (Array2<f64>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let beta = [1.5, -1.0, 0.8, 0.5, -0.6];
    let mut x = Array2::zeros((rows, features));
    let mut y = Vec::with_capacity(rows);
    for i in 0..rows {
        let mut z = -1.8;
        for j in 0..features {
            let v: f64 = rng.sample(StandardNormal);
            x[[i, j]] = v;
            if let Some(b) = beta.get(j) {
                z += b * v;
            }
        }
        y.push(rng.random::<f64>() < sigmoid(z));
    }
    (x, y)
}

/// A feature table like the features stage writes, with its labels: Int64 ids, counts
/// with nulls, a float with NaN, a text `plan` (one rare level), a Boolean, a constant,
/// an all-null column and a date. Churn rises with complaints and low satisfaction, falls
/// with tenure, and is higher on `prepaid`.
pub fn churn_table(rows: usize, seed: u64) -> (RecordBatch, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tenure = Vec::with_capacity(rows);
    let mut complaints = Vec::with_capacity(rows);
    let mut satisfaction = Vec::with_capacity(rows);
    let mut plan = Vec::with_capacity(rows);
    let mut autopay = Vec::with_capacity(rows);
    let mut labels = Vec::with_capacity(rows);
    for i in 0..rows {
        let t: f64 = rng.random_range(10.0..2000.0);
        let c = (rng.random::<f64>().powi(3) * 6.0).floor();
        let s: Option<f64> = (rng.random::<f64>() < 0.85).then(|| rng.random_range(1.0..5.0));
        let p = match rng.random_range(0..10) {
            0..=4 => "postpaid",
            5..=7 => "prepaid",
            _ => {
                if i % 500 == 0 {
                    "legacy"
                } else {
                    "family"
                }
            }
        };
        let a = rng.random::<f64>() < 0.5;
        let z = -2.0 + 0.9 * c - 0.0012 * t
            + s.map_or(0.4, |s| -0.5 * (s - 3.0))
            + if p == "prepaid" { 0.8 } else { 0.0 }
            + if a { -0.4 } else { 0.0 };
        labels.push(rng.random::<f64>() < sigmoid(z));
        tenure.push((i % 97 != 0).then_some(t.round() as i64));
        complaints.push(Some(c as i64));
        satisfaction.push(Some(s.unwrap_or(f64::NAN)));
        plan.push((i % 53 != 0).then_some(p));
        autopay.push(Some(a));
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "subscriber_id",
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        ),
        ("tenure_days", Arc::new(Int64Array::from(tenure))),
        (
            "complaints_unresolved_90d",
            Arc::new(Int64Array::from(complaints)),
        ),
        (
            "satisfaction_mean_90d",
            Arc::new(Float64Array::from(satisfaction)),
        ),
        ("plan", Arc::new(StringArray::from(plan))),
        ("autopay", Arc::new(BooleanArray::from(autopay))),
        ("constant", Arc::new(Int64Array::from(vec![7i64; rows]))),
        (
            "always_null",
            Arc::new(Float64Array::from(vec![None::<f64>; rows])),
        ),
        (
            "signup_date",
            Arc::new(Date32Array::from_iter_values(
                (0..rows as i32).map(|i| 18000 + i),
            )),
        ),
    ];
    (batch(columns), labels)
}

/// A record batch from named columns.
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    match RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    ) {
        Ok(b) => b,
        Err(e) => panic!("test batch: {e}"),
    }
}
