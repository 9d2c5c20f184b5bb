//! What a command shows while it works: progress bars on a terminal, plain log lines
//! otherwise, nothing but errors under `--quiet`; and the closing summary.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a command reports to the person running it (on stderr, so stdout stays clean).
#[derive(Debug, Clone, Copy)]
pub struct Console {
    quiet: bool,
    terminal: bool,
}

impl Console {
    pub fn new(quiet: bool) -> Console {
        Console {
            quiet,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// One log line.
    pub fn say(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A progress bar over `total` units (a spinner when `total` is 0), shown only on a
    /// terminal; the finished step is logged as one line either way.
    pub fn progress(&self, total: u64, message: &str, unit: &str) -> Progress {
        let bar = if self.quiet || !self.terminal {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
        } else if total == 0 {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            let bar = ProgressBar::new(total);
            let template = format!(
                "{{msg:>12}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{eta}} left)"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        };
        bar.set_message(message.to_string());
        Progress {
            bar,
            console: *self,
            message: message.to_string(),
            start: std::time::Instant::now(),
        }
    }
}

/// A running step; [`Progress::finish`] logs what it did and how long it took.
pub struct Progress {
    bar: ProgressBar,
    console: Console,
    message: String,
    start: std::time::Instant,
}

impl Progress {
    pub fn set(&self, position: u64) {
        self.bar.set_position(position);
    }

    pub fn finish(self, what: impl AsRef<str>) {
        self.bar.finish_and_clear();
        self.console.say(format!(
            "{:>12}  {} in {:.2}s",
            self.message,
            what.as_ref(),
            self.start.elapsed().as_secs_f64()
        ));
    }
}

/// Formats a byte count for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl crate::progress::Progress for Console {
    fn say(&self, message: &str) {
        Console::say(self, message);
    }

    fn step(&self, total: u64, name: &str, unit: &str) -> Box<dyn crate::progress::Step> {
        Box::new(self.progress(total, name, unit))
    }
}

impl crate::progress::Step for Progress {
    fn set(&self, position: u64) {
        Progress::set(self, position);
    }

    fn finish(self: Box<Self>, what: String) {
        Progress::finish(*self, what);
    }
}
