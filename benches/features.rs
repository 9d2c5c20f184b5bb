//! Criterion benchmarks of the feature hot path (`features::build`) on seeded synthetic
//! data at three sizes, reported per event. Run with
//! `cargo bench --bench features`.

mod common;

use churnseg::asof::AsOf;
use churnseg::features::{self, FeatureParams};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn hot_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("features");
    group.sample_size(10);
    for subscribers in [2_000usize, 10_000, 50_000] {
        let inputs = common::generated(subscribers);
        let events = inputs.interactions.as_ref().map_or(0, |e| e.rows);
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
