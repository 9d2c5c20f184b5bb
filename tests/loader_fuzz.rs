//! Property test: random schemas and values fed to the loader and the feature pass never
//! panic — they either load or fail with an error.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use churnseg::features::{self, FeatureParams};
use churnseg::load::{InputSpec, Inputs};
use proptest::prelude::*;

const NAMES: [&str; 10] = [
    "subscriber_id",
    "signup_date",
    "churn_date",
    "monthly_revenue",
    "monthly_cost",
    "ts",
    "touchpoint",
    "channel",
    "satisfaction",
    "resolved",
];

/// A column of one of several types, with nulls and odd values.
fn column(rows: usize) -> impl Strategy<Value = ArrayRef> {
    prop_oneof![
        prop::collection::vec(prop::option::of(-3i64..5), rows)
            .prop_map(|v| Arc::new(Int64Array::from(v)) as ArrayRef),
        prop::collection::vec(prop::option::of(-3i32..5), rows)
            .prop_map(|v| Arc::new(Int32Array::from(v)) as ArrayRef),
        prop::collection::vec(
            prop::option::of(prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                -1e6..1e6f64
            ]),
            rows
        )
        .prop_map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
        prop::collection::vec(prop::option::of("[a-c]{0,2}"), rows)
            .prop_map(|v| Arc::new(StringArray::from(v)) as ArrayRef),
        prop::collection::vec(prop::option::of(any::<bool>()), rows)
            .prop_map(|v| Arc::new(BooleanArray::from(v)) as ArrayRef),
        prop::collection::vec(prop::option::of(19_000i32..21_000), rows)
            .prop_map(|v| Arc::new(Date32Array::from(v)) as ArrayRef),
        prop::collection::vec(
            prop::option::of(1_600_000_000_000i64..1_800_000_000_000),
            rows
        )
        .prop_map(|v| Arc::new(TimestampMillisecondArray::from(v)) as ArrayRef),
    ]
}

fn table() -> impl Strategy<Value = RecordBatch> {
    (0usize..12).prop_flat_map(|rows| {
        prop::collection::vec((prop::sample::select(NAMES.to_vec()), column(rows)), 1..8).prop_map(
            |cols| {
                let mut seen = std::collections::HashSet::new();
                let cols: Vec<(&str, ArrayRef)> =
                    cols.into_iter().filter(|(n, _)| seen.insert(*n)).collect();
                RecordBatch::try_from_iter(cols).expect("columns of one length")
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_never_panic(subs in table(), events in table()) {
        let dir = tempfile::tempdir().unwrap();
        let (s, e) = (dir.path().join("s.parquet"), dir.path().join("e.parquet"));
        churnseg::write::write_parquet(&s, &subs).unwrap();
        churnseg::write::write_parquet(&e, &events).unwrap();
        let spec = InputSpec { subscribers: s, interactions: Some(e), ..InputSpec::default() };
        if let Ok(inputs) = Inputs::load(&spec) {
            let params = FeatureParams { as_of: "2025-06-01".parse().unwrap(), extended: true, touchpoint_use: true };
            let _ = features::build(&inputs.subscribers, inputs.interactions.as_ref(), &inputs.taxonomy, params, &|_| {});
        }
    }
}
