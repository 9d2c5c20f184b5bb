//! What the benches share: seeded generated data, made once per size.

use churnseg::generate::{GenerateParams, generate};
use churnseg::load::{InputSpec, Inputs};

/// Inputs of `subscribers` generated subscribers (seed 42, a year of history up to
/// 2026-06-30), written once to the temp directory and loaded.
pub fn generated(subscribers: usize) -> Inputs {
    let dir = std::env::temp_dir().join(format!("churnseg-bench-{subscribers}"));
    if !dir.join("interactions.parquet").exists() {
        let params = GenerateParams::new(subscribers, 365, 42);
        generate(&params, &dir, &|_| {}).expect("generate bench data");
    }
    let spec = InputSpec {
        subscribers: dir.join("subscribers.parquet"),
        interactions: Some(dir.join("interactions.parquet")),
        ..InputSpec::default()
    };
    Inputs::load(&spec).expect("load bench data")
}
