//! What a command shows while it works: progress bars on a terminal, plain log lines
//! otherwise, nothing but errors under `--quiet`; and the closing summary.
//!
//! Under `--log-format json` (for schedulers and log collectors) every line on stderr is
//! one JSON object: `{"level":"info","message":"…"}` for a log line, one
//! `{"level":"info","event":"summary","command":"run","seconds":1.23,"fields":{…}}` for the
//! closing summary, and `{"level":"error","message":"…","causes":[…],"exit_code":2}` for
//! a failure (written by `main`). No progress bars are drawn.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How log lines are written (`--log-format`): `text`, lines for people (progress bars on
/// a terminal), or `json`, one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    // (no doc comments on the variants: clap would then print every command's help in
    // its long form)
    #[default]
    Text,
    Json,
}

/// How a command reports to the person running it (on stderr, so stdout stays clean).
#[derive(Debug, Clone, Copy)]
pub struct Console {
    quiet: bool,
    terminal: bool,
    format: LogFormat,
}

impl Console {
    pub fn new(quiet: bool) -> Console {
        Console::with_format(quiet, LogFormat::Text)
    }

    /// A console writing log lines in `format`.
    pub fn with_format(quiet: bool, format: LogFormat) -> Console {
        Console {
            quiet,
            terminal: std::io::stderr().is_terminal() && format == LogFormat::Text,
            format,
        }
    }

    /// The closing summary of a command: `churnseg COMMAND done in …` and one line per
    /// field, or one JSON object.
    pub fn summary(&self, command: &str, seconds: f64, lines: &[(&str, String)]) {
        if self.quiet {
            return;
        }
        match self.format {
            LogFormat::Text => {
                eprintln!("churnseg {command} done in {seconds:.2}s");
                for (key, value) in lines {
                    eprintln!("  {key:<12} {value}");
                }
            }
            LogFormat::Json => {
                let fields: serde_json::Map<String, serde_json::Value> = lines
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                    .collect();
                let line = serde_json::json!({
                    "level": "info",
                    "event": "summary",
                    "command": command,
                    "seconds": (seconds * 1000.0).round() / 1000.0,
                    "fields": fields,
                });
                eprintln!("{line}");
            }
        }
    }

    /// One log line.
    pub fn say(&self, message: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        match self.format {
            LogFormat::Text => eprintln!("{}", message.as_ref()),
            LogFormat::Json => {
                let message = message.as_ref().trim_start();
                let level = if message.starts_with("warning:") {
                    "warning"
                } else {
                    "info"
                };
                let line = serde_json::json!({ "level": level, "message": message });
                eprintln!("{line}");
            }
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

/// An error and its causes on one line: `error: cause: cause`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
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
