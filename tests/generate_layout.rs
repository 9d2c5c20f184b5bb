//! `churnseg generate --layout`: time order across subscribers by default, each
//! subscriber's events together with `by-subscriber`; `--ts-unit` sets the unit.

mod common;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use common::{ok, read, s};

fn generate(dir: &std::path::Path, extra: &[&str]) -> arrow::array::RecordBatch {
    let mut args = vec![
        "--quiet",
        "generate",
        "--subscribers",
        "600",
        "--days",
        "90",
        "--seed",
        "3",
        "--out",
        s(dir),
        "--ts-unit",
        "ms",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    read(&dir.join("interactions.parquet"))
}

#[test]
fn layout_flag_orders_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let by_time = generate(&dir.path().join("t"), &[]);
    let by_sub = generate(&dir.path().join("s"), &["--layout", "by-subscriber"]);
    assert_eq!(by_time.num_rows(), by_sub.num_rows());
    assert_eq!(
        by_time.schema().field(1).data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    let ts = |b: &arrow::array::RecordBatch| {
        b.column(1)
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec()
    };
    let ids =
        |b: &arrow::array::RecordBatch| b.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert!(ts(&by_time).windows(2).all(|w| w[0] <= w[1]));
    assert!(!ids(&by_time).windows(2).all(|w| w[0] <= w[1]));
    assert!(ids(&by_sub).windows(2).all(|w| w[0] <= w[1]));
    assert!(!ts(&by_sub).windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(by_time.column(0).null_count(), 0);
    assert!(
        common::churnseg(&[
            "generate",
            "--subscribers",
            "5",
            "--days",
            "5",
            "--out",
            s(&dir.path().join("x")),
            "--layout",
            "sideways"
        ])
        .status
        .code()
            == Some(2)
    );
}
