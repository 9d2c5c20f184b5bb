//! Row order (issue 18): Spark hands a shard's rows over in no particular order and
//! retries tasks, so a subscriber's scored row must not depend on where its rows sit in
//! the inputs. Shuffling the subscriber rows and the event rows gives the same scored rows
//! (keyed by `subscriber_id`), whole and shard by shard; ties in every ranking are broken
//! by `subscriber_id`, not by position.

use std::path::Path;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};

mod common;
use common::{ok, read, s};

/// A seeded permutation of `0..n` (xorshift Fisher–Yates).
fn permutation(n: usize, mut seed: u64) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        p.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    p
}

/// Writes `batch` with its rows in a seeded random order, in row groups of `group` rows.
fn write_shuffled(batch: &RecordBatch, seed: u64, group: usize, path: &Path) {
    let order = UInt32Array::from(permutation(batch.num_rows(), seed));
    let shuffled = take_record_batch(batch, &order).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, shuffled.schema(), Some(props)).unwrap();
    w.write(&shuffled).unwrap();
    w.close().unwrap();
}

/// The rows of a scored file (one file or part files) sorted by `subscriber_id`.
fn by_id(path: &Path) -> RecordBatch {
    let batch = if path.is_dir() {
        let mut parts: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        parts.sort();
        let batches: Vec<RecordBatch> = parts.iter().map(|p| read(p)).collect();
        concat_batches(&batches[0].schema(), &batches).unwrap()
    } else {
        read(path)
    };
    let order = sort_to_indices(batch.column(0), Some(SortOptions::default()), None).unwrap();
    take_record_batch(&batch, &order).unwrap()
}

fn score(data: &Path, model: &Path, out: &Path, extra: &[&str]) -> RecordBatch {
    let (subscribers, interactions) = (
        data.join("subscribers.parquet"),
        data.join("interactions.parquet"),
    );
    let mut args = vec![
        "-q",
        "score",
        "--subscribers",
        s(&subscribers),
        "--interactions",
        s(&interactions),
        "--as-of",
        "2026-06-01",
        "--model",
        s(model),
        "--out",
        s(out),
        "--budget",
        "1500",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    by_id(out)
}

#[test]
fn shuffled_rows_give_the_same_scored_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (data, shuffled, model) = (
        dir.path().join("data"),
        dir.path().join("shuffled"),
        dir.path().join("model"),
    );
    ok(&[
        "-q",
        "generate",
        "--subscribers",
        "1200",
        "--days",
        "200",
        "--seed",
        "5",
        "--string-ids",
        "--out",
        s(&data),
    ]);
    // few trees: many subscribers share a probability, so the decile cuts run through ties
    ok(&[
        "-q",
        "train",
        "--subscribers",
        s(&data.join("subscribers.parquet")),
        "--interactions",
        s(&data.join("interactions.parquet")),
        "--as-of",
        "2026-03-01",
        "--horizon",
        "60",
        "--trees",
        "3",
        "--candidate",
        "gbdt",
        "--out",
        s(&model),
    ]);
    std::fs::create_dir_all(&shuffled).unwrap();
    let subscribers = read(&data.join("subscribers.parquet"));
    write_shuffled(&subscribers, 11, 500, &shuffled.join("subscribers.parquet"));
    let events = read(&data.join("interactions.parquet"));
    write_shuffled(&events, 12, 20_000, &shuffled.join("interactions.parquet"));

    let whole = score(&data, &model, &dir.path().join("a.parquet"), &[]);
    let probs = whole
        .column_by_name("churn_probability")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap()
        .values()
        .to_vec();
    let mut distinct = probs.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    assert!(
        distinct.len() * 2 < probs.len(),
        "the test needs tied probabilities: {} distinct of {}",
        distinct.len(),
        probs.len()
    );
    let again = score(&shuffled, &model, &dir.path().join("b.parquet"), &[]);
    assert_eq!(whole, again, "shuffled inputs, one piece");
    let sharded = score(
        &shuffled,
        &model,
        &dir.path().join("c/"),
        &["--shards", "3"],
    );
    assert_eq!(whole, sharded, "shuffled inputs, three shards");
}
