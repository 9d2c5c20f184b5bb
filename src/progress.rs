//! How a stage tells the person running it what it is doing, without knowing who
//! listens: the conductor passes a [`Progress`] in (the console on a terminal, a silent
//! sink in tests and library use), and stages never import the console.

/// Where a stage's log lines and progress go.
pub trait Progress {
    /// One log line.
    fn say(&self, message: &str);
    /// A step over `total` units (`unit` names them; 0 when the total is unknown).
    fn step(&self, total: u64, name: &str, unit: &str) -> Box<dyn Step>;
}

/// A running step: [`Step::finish`] says what it did (and the sink adds how long it took).
pub trait Step: Send + Sync {
    fn set(&self, position: u64);
    fn finish(self: Box<Self>, what: String);
}

/// A sink that shows nothing (tests and library callers that want quiet).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn say(&self, _: &str) {}
    fn step(&self, _: u64, _: &str, _: &str) -> Box<dyn Step> {
        Box::new(Silent)
    }
}

impl Step for Silent {
    fn set(&self, _: u64) {}
    fn finish(self: Box<Self>, _: String) {}
}
