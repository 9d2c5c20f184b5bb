//! One scan, several snapshots (issue 16): `features::build_snapshots` gives, for each
//! `as_of`, exactly the table `features::build` gives for it alone; the result does not
//! depend on the thread count or on the order of the events in the file; string ids read
//! as a dictionary map to the same rows as plain strings.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{DictionaryArray, Int32Array, StringArray};
use arrow::datatypes::Int32Type;
use churnseg::asof::AsOf;
use churnseg::features::{self, FeatureParams, FeatureTable};
use churnseg::generate::{GenerateParams, Layout, generate};
use churnseg::load::{IdIndex, InputSpec, Inputs};

fn data(dir: &Path, string_ids: bool, layout: Layout) -> Inputs {
    let mut params = GenerateParams::new(1500, 200, 9);
    params.string_ids = string_ids;
    params.layout = layout;
    generate(&params, dir, &|_| {}).unwrap();
    Inputs::load(&InputSpec {
        subscribers: dir.join("subscribers.parquet"),
        interactions: Some(dir.join("interactions.parquet")),
        taxonomy: Some(dir.join("taxonomy.toml")),
        ..Default::default()
    })
    .unwrap()
}

fn params(as_of: &str, extended: bool, touchpoint_use: bool) -> FeatureParams {
    FeatureParams {
        as_of: as_of.parse::<AsOf>().unwrap(),
        extended,
        touchpoint_use,
    }
}

fn one(inputs: &Inputs, p: FeatureParams) -> FeatureTable {
    features::build(
        &inputs.subscribers,
        inputs.interactions.as_ref(),
        &inputs.taxonomy,
        p,
        &|_| {},
    )
    .unwrap()
}

fn same(a: &FeatureTable, b: &FeatureTable) {
    assert_eq!(a.as_of, b.as_of);
    assert_eq!(a.batch, b.batch, "feature batches differ at {}", a.as_of);
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.events, b.events);
    match (&a.touchpoint_use, &b.touchpoint_use) {
        (Some(x), Some(y)) => {
            assert_eq!(x.uses, y.uses);
            assert_eq!(
                x.mean_cost
                    .iter()
                    .map(|c| c.map(f64::to_bits))
                    .collect::<Vec<_>>(),
                y.mean_cost
                    .iter()
                    .map(|c| c.map(f64::to_bits))
                    .collect::<Vec<_>>()
            );
        }
        (None, None) => {}
        _ => panic!("touchpoint use built for one and not the other"),
    }
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn several_snapshots_in_one_scan_equal_separate_calls() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = data(dir.path(), true, Layout::TimeOrdered);
    let asked = [
        params("2026-03-01", true, true),
        params("2026-04-01", false, false),
        params("2026-05-15", true, false),
        params("2026-07-01", false, true),
    ];
    let together = in_pool(3, || {
        features::build_snapshots(
            &inputs.subscribers,
            inputs.interactions.as_ref(),
            &inputs.taxonomy,
            &asked,
            &|_| {},
        )
        .unwrap()
    });
    assert_eq!(together.len(), asked.len());
    for (t, p) in together.iter().zip(asked) {
        same(t, &one(&inputs, p));
        assert!(
            t.events.used > 0,
            "the snapshot at {} used no event",
            p.as_of
        );
    }
    // later snapshots see more of the history
    assert!(together[0].events.used < together[3].events.used);
}

#[test]
fn thread_count_and_layout_do_not_change_the_features() {
    let dir = tempfile::tempdir().unwrap();
    for string_ids in [false, true] {
        let by_time = data(
            &dir.path().join(format!("t{string_ids}")),
            string_ids,
            Layout::TimeOrdered,
        );
        let by_sub = data(
            &dir.path().join(format!("s{string_ids}")),
            string_ids,
            Layout::BySubscriber,
        );
        let p = params("2026-05-01", true, true);
        let reference = in_pool(1, || one(&by_sub, p));
        for threads in [1, 2, 5] {
            same(&in_pool(threads, || one(&by_time, p)), &reference);
            same(&in_pool(threads, || one(&by_sub, p)), &reference);
        }
    }
}

#[test]
fn dictionary_and_plain_string_ids_map_to_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = data(dir.path(), true, Layout::TimeOrdered);
    let rows: Vec<u32> = (0..inputs.subscribers.len() as u32).collect();
    let index = IdIndex::new(&inputs.subscribers.ids, &rows);
    let ids = vec![
        Some("S0000003"),
        None,
        Some("nobody"),
        Some("S0000001"),
        Some("S0000003"),
    ];
    let plain = StringArray::from(ids.clone());
    let dict: DictionaryArray<Int32Type> = ids.into_iter().collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    index.lookup_into(&plain, &mut a);
    index.lookup_into(&dict, &mut b);
    assert_eq!(a, b);
    assert_eq!(a[0], 2);
    assert_eq!(a[3], 0);
    assert_eq!(a[0], a[4]);
    assert_eq!(a[1], a[2], "null and unknown ids are both missing");
    assert!(a[1] >= inputs.subscribers.len() as u32);
    // a dictionary whose keys point at a shared, larger dictionary
    let values = Arc::new(StringArray::from(vec!["S0000002", "zzz", "S0000001"]));
    let keys = Int32Array::from(vec![Some(2), Some(0), None, Some(1)]);
    let shared = DictionaryArray::<Int32Type>::try_new(keys, values).unwrap();
    index.lookup_into(&shared, &mut b);
    assert_eq!(&b[..2], &[0, 1]);
    assert!(b[2] >= inputs.subscribers.len() as u32 && b[3] >= inputs.subscribers.len() as u32);
}

/// Counts the feature passes a stage starts (each is one scan of the events).
#[derive(Default)]
struct CountScans(std::sync::atomic::AtomicUsize);

impl churnseg::progress::Progress for CountScans {
    fn say(&self, _: &str) {}
    fn step(&self, _: u64, name: &str, _: &str) -> Box<dyn churnseg::progress::Step> {
        if name == "features" {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Box::new(churnseg::progress::Silent)
    }
}

/// Issue 16: train's stacked snapshots and its out-of-time validation snapshots come
/// from one scan of the events (it scanned once per snapshot before).
#[test]
fn train_scans_the_events_once_for_every_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = data(dir.path(), true, Layout::TimeOrdered);
    let mut params = churnseg::train::TrainParams::new("2026-05-01".parse().unwrap(), "one-scan");
    params.horizon_days = 30;
    params.churn.n_trees = 10;
    let scans = CountScans::default();
    let (artifact, _) = churnseg::train::train(&inputs, &params, &scans).unwrap();
    let m = &artifact.metrics;
    assert_eq!(m.validation.method, "out_of_time");
    assert!(m.snapshots >= 2, "{} snapshots stacked", m.snapshots);
    assert_eq!(scans.0.load(std::sync::atomic::Ordering::Relaxed), 1);
}
