//! Criterion benchmarks of the feature hot path (`features::build`) on seeded synthetic
//! data at three sizes, reported per event. Run with
//! `cargo bench --bench features`.

use std::path::PathBuf;

use churnseg::asof::AsOf;
use churnseg::features::{self, FeatureParams};
use churnseg::generate::{GenerateParams, generate};
use churnseg::load::{InputSpec, Inputs};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn dataset(subscribers: usize) -> (PathBuf, u64) {
    let dir = std::env::temp_dir().join(format!("churnseg-bench-{subscribers}"));
    let params = GenerateParams::new(subscribers, 365, 42);
    if !dir.join("interactions.parquet").exists() {
        generate(&params, &dir, &|_| {}).expect("generate bench data");
    }
    let spec = InputSpec {
        subscribers: dir.join("subscribers.parquet"),
        interactions: Some(dir.join("interactions.parquet")),
        ..InputSpec::default()
    };
    let rows = Inputs::load(&spec)
        .ok()
        .and_then(|i| i.interactions.map(|e| e.rows))
        .unwrap_or(0);
    (dir, rows)
}

fn hot_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("features");
    group.sample_size(10);
    for subscribers in [2_000usize, 10_000, 50_000] {
        let (dir, events) = dataset(subscribers);
        let spec = InputSpec {
            subscribers: dir.join("subscribers.parquet"),
            interactions: Some(dir.join("interactions.parquet")),
            ..InputSpec::default()
        };
        let inputs = Inputs::load(&spec).expect("load bench data");
        let as_of: AsOf = "2026-06-01".parse().expect("date");
        for extended in [false, true] {
            group.throughput(Throughput::Elements(events));
            let name = if extended { "core+extended" } else { "core" };
            group.bench_with_input(
                BenchmarkId::new(name, format!("{subscribers}subs-{events}events")),
                &inputs,
                |b, inputs| {
                    b.iter(|| {
                        features::build(
                            &inputs.subscribers,
                            inputs.interactions.as_ref(),
                            &inputs.taxonomy,
                            FeatureParams {
                                as_of,
                                extended,
                                touchpoint_use: false,
                            },
                            &|_| {},
                        )
                        .expect("features")
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
