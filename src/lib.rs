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

/// Runs `f`, returning a panic inside it as its message, and without the report the
/// panic hook would write on stderr: for a library call whose panic is expected and
/// handled (linfa-trees asserts on some data), where that report would only alarm.
/// Panics on other threads, or outside `f`, are reported as usual.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    use std::cell::Cell;
    thread_local!(static QUIET: Cell<bool> = const { Cell::new(false) });
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                report(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| panic_message(payload.as_ref()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_quiet_catch_returns_the_panic_as_its_message() {
        assert_eq!(super::catch_quietly(|| 7), Ok(7));
        let caught = super::catch_quietly(|| -> u8 { panic!("n_samples > {}", 0) });
        assert_eq!(caught, Err("n_samples > 0".to_string()));
        // the hook is restored to reporting outside a quiet catch
        let loud = std::panic::catch_unwind(|| panic!("outside"));
        assert!(loud.is_err());
    }
}
