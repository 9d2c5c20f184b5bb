//! churnseg: churn risk, 80/20/30 value segments and loyalty targets from subscriber
//! records and touchpoint history. The modules follow the pipeline's stages.

pub mod asof;
pub mod cli;
pub mod console;
pub mod custom_features;
pub mod features;
pub mod generate;
pub mod guard;
pub mod json_f64;
pub mod load;
pub mod manifest;
pub mod model;
pub mod names;
pub mod pipeline;
pub mod prefetch;
pub mod progress;
pub mod realised;
pub mod report;
pub mod score;
pub mod segment;
pub mod shard;
pub mod taxonomy;
pub mod train;
pub mod write;

/// The text of a caught panic's payload (a `&str` or a `String`, as `panic!` makes them).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
