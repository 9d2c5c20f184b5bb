//! The dates of one night of a pipeline, relative to the run (`score.as_of`,
//! `train.as_of`, `run --as-of`), and when to retrain (`train.retrain`).
//!
//! - `score.as_of` is `"today"`, `"yesterday"` (the UTC calendar day the run starts, or
//!   the one before) or a date `"YYYY-MM-DD"`; `run --as-of DATE` overrides it (what a
//!   scheduler passes, e.g. Airflow's `{{ ds }}`).
//! - `train.as_of` is a date or `"-Nd"`: N days before the scoring date. Either way, a
//!   run that trains refuses a training date whose horizon is not over by the scoring
//!   date (`train.as_of + horizon_days > score.as_of`), since its labels would not all be
//!   observed.
//!
//! Nothing is defaulted: both fields are required, and the resolved dates and the rule
//! each came from are in the summary and the manifest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::asof::AsOf;

/// Serialises a type as its `Display` text and reads it back with its `FromStr`, whose
/// error message becomes serde's.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A date as a pipeline TOML writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRule {
    Date(AsOf),
    /// The UTC day the run starts.
    Today,
    Yesterday,
    /// N days before the scoring date (`"-120d"`; `train.as_of` only).
    DaysBefore(u32),
}

impl FromStr for DateRule {
    type Err = String;

    fn from_str(text: &str) -> Result<DateRule, String> {
        let t = text.trim();
        match t {
            "today" => return Ok(DateRule::Today),
            "yesterday" => return Ok(DateRule::Yesterday),
            _ => {}
        }
        if let Some(days) = t.strip_prefix('-').and_then(|d| d.strip_suffix('d')) {
            return days
                .parse::<u32>()
                .ok()
                .filter(|&n| n <= 36_500)
                .map(DateRule::DaysBefore)
                .ok_or_else(|| {
                    format!("`{text}` is not a number of days before the scoring date like -120d")
                });
        }
        t.parse::<AsOf>().map(DateRule::Date).map_err(|_| {
            format!(
                "`{text}` is not a date: write YYYY-MM-DD (2026-07-01), today, yesterday, or -Nd (N days before the scoring date, for `train.as_of`)"
            )
        })
    }
}

impl fmt::Display for DateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateRule::Date(d) => write!(f, "{d}"),
            DateRule::Today => f.write_str("today"),
            DateRule::Yesterday => f.write_str("yesterday"),
            DateRule::DaysBefore(n) => write!(f, "-{n}d"),
        }
    }
}

serde_as_text!(DateRule);

/// Today's date in UTC, from the system clock.
pub fn today_utc() -> AsOf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    AsOf::from_days((secs / 86_400) as i32)
}

/// The dates of one night, resolved, with the rule each came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDates {
    /// The night scored.
    pub as_of: AsOf,
    /// Where it came from: `--as-of` or `score.as_of = "…"`.
    pub as_of_from: String,
    /// The final model's training snapshot.
    pub train_as_of: AsOf,
    /// `train.as_of` as written.
    pub train_as_of_rule: String,
    pub horizon_days: u32,
}

/// Why the dates of a night cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DateError {
    #[error(
        "`score.as_of = \"{rule}\"` is relative to the scoring date itself; write a date, today or yesterday (or pass --as-of)"
    )]
    ScoreRelative { rule: String },
    #[error(
        "`train.as_of = \"{rule}\"` resolves to {train}, whose {horizon}-day horizon ends on {end}, after the scoring date {score} ({from}): its churn labels would not all be observed; use a training date at least {horizon} days before the scoring date (e.g. `train.as_of = \"-{horizon}d\"`)"
    )]
    HorizonUnobserved {
        rule: String,
        train: AsOf,
        end: AsOf,
        score: AsOf,
        horizon: u32,
        from: String,
    },
}

impl DateRule {
    /// The date this rule names, given the run's day and (for `-Nd`) the scoring date.
    pub fn resolve(self, today: AsOf, score: AsOf) -> AsOf {
        match self {
            DateRule::Date(d) => d,
            DateRule::Today => today,
            DateRule::Yesterday => today.plus_days(-1),
            DateRule::DaysBefore(n) => score.plus_days(-(n as i32)),
        }
    }
}

/// Resolves a night's dates. `override_as_of` is `run --as-of`; `trains` says whether the
/// run may train (only then must the training horizon be over by the scoring date).
pub fn resolve(
    score_rule: DateRule,
    train_rule: DateRule,
    horizon_days: u32,
    override_as_of: Option<AsOf>,
    today: AsOf,
    trains: bool,
) -> Result<RunDates, DateError> {
    let (as_of, as_of_from) = match override_as_of {
        Some(d) => (d, "--as-of".to_string()),
        None => {
            if let DateRule::DaysBefore(_) = score_rule {
                return Err(DateError::ScoreRelative {
                    rule: score_rule.to_string(),
                });
            }
            (
                score_rule.resolve(today, today),
                format!("score.as_of = \"{score_rule}\""),
            )
        }
    };
    let train_as_of = train_rule.resolve(today, as_of);
    let end = train_as_of.plus_days(horizon_days as i32);
    if trains && end > as_of {
        return Err(DateError::HorizonUnobserved {
            rule: train_rule.to_string(),
            train: train_as_of,
            end,
            score: as_of,
            horizon: horizon_days,
            from: as_of_from,
        });
    }
    Ok(RunDates {
        as_of,
        as_of_from,
        train_as_of,
        train_as_of_rule: train_rule.to_string(),
        horizon_days,
    })
}

/// When to (re)train (`train.retrain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrain {
    /// Train every run.
    Always,
    /// Train only when the model directory has no model yet (default).
    IfMissing,
    /// Never train; the model must exist.
    Never,
    /// Train when the model's training snapshot is at least N days before tonight's
    /// (`"every 30d"`), or when there is no model.
    Every(u32),
}

impl FromStr for Retrain {
    type Err = String;

    fn from_str(text: &str) -> Result<Retrain, String> {
        let t = text.trim();
        match t {
            "always" => return Ok(Retrain::Always),
            "if_missing" => return Ok(Retrain::IfMissing),
            "never" => return Ok(Retrain::Never),
            _ => {}
        }
        t.strip_prefix("every")
            .map(str::trim)
            .and_then(|d| d.strip_suffix('d'))
            .and_then(|d| d.trim().parse::<u32>().ok())
            .filter(|&n| n > 0)
            .map(Retrain::Every)
            .ok_or_else(|| {
                format!("`{text}` is not a retraining rule: write always, if_missing, never or every Nd (e.g. every 30d)")
            })
    }
}

impl fmt::Display for Retrain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retrain::Always => f.write_str("always"),
            Retrain::IfMissing => f.write_str("if_missing"),
            Retrain::Never => f.write_str("never"),
            Retrain::Every(n) => write!(f, "every {n}d"),
        }
    }
}

serde_as_text!(Retrain);

/// Whether tonight trains, and why (for the summary and the manifest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrainDecision {
    pub rule: String,
    /// The realised-ROC-AUC floor (`train.retrain_below_auc`), when set.
    pub floor: Option<f64>,
    pub trained: bool,
    pub reason: String,
}

/// What the decision reads: whether a model exists, its training snapshot, and the
/// newest realised ROC AUC (and the night it judged).
pub struct ModelState {
    pub model_trained_as_of: Option<AsOf>,
    pub realised_auc: Option<(AsOf, f64)>,
}

/// Decides whether tonight trains, given tonight's training date.
pub fn decide(
    rule: Retrain,
    floor: Option<f64>,
    state: &ModelState,
    train_as_of: AsOf,
) -> RetrainDecision {
    let below_floor = match (floor, state.realised_auc) {
        (Some(f), Some((night, auc))) if auc < f => Some(format!(
            "the realised ROC AUC of night {night} ({auc:.3}) is below the floor {f:.3}"
        )),
        _ => None,
    };
    let (trained, reason) = match (rule, state.model_trained_as_of) {
        (Retrain::Always, _) => (true, "`retrain = \"always\"`".to_string()),
        (Retrain::Never, None) => (false, "`retrain = \"never\"`, and there is no model".into()),
        (Retrain::Never, Some(_)) => match &below_floor {
            Some(why) => (
                false,
                format!("{why}, but `retrain = \"never\"`: the existing model scores"),
            ),
            None => (
                false,
                "`retrain = \"never\"`: the existing model scores".into(),
            ),
        },
        (_, None) => (true, "there is no model yet".into()),
        (_, Some(_)) if below_floor.is_some() => (true, below_floor.clone().unwrap_or_default()),
        (Retrain::IfMissing, Some(d)) => (
            false,
            format!("`retrain = \"if_missing\"` and a model exists (trained on {d})"),
        ),
        (Retrain::Every(n), Some(d)) => {
            let age = train_as_of.days() - d.days();
            if age < 0 {
                // a backfill: the model has seen later data than tonight may
                (
                    true,
                    format!(
                        "the model was trained on {d}, after tonight's training date {train_as_of} (a backfill must not use later data)"
                    ),
                )
            } else if age >= n as i32 {
                (
                    true,
                    format!(
                        "the model was trained on {d}, {age} days before tonight's training date {train_as_of} (`every {n}d`)"
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "the model was trained on {d}, {age} days before tonight's training date {train_as_of}: under the {n} days of `every {n}d`"
                    ),
                )
            }
        }
    };
    RetrainDecision {
        rule: rule.to_string(),
        floor,
        trained,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> AsOf {
        s.parse().unwrap()
    }

    #[test]
    fn date_rules_parse_and_print_back() {
        for text in ["today", "yesterday", "-120d", "2026-07-01"] {
            let rule: DateRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        assert_eq!("-0d".parse::<DateRule>(), Ok(DateRule::DaysBefore(0)));
        for bad in ["tomorrow", "-12", "-xd", "120d", "2026-13-01", ""] {
            let err = bad.parse::<DateRule>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn relative_dates_resolve_against_the_run() {
        let today = d("2026-07-02");
        let r = resolve(
            DateRule::Yesterday,
            DateRule::DaysBefore(120),
            90,
            None,
            today,
            true,
        )
        .unwrap();
        assert_eq!(r.as_of, d("2026-07-01"));
        assert_eq!(r.train_as_of, d("2026-03-03"));
        assert_eq!(r.as_of_from, "score.as_of = \"yesterday\"");
        // --as-of overrides the TOML, and `-Nd` follows it
        let r = resolve(
            DateRule::Today,
            DateRule::DaysBefore(90),
            90,
            Some(d("2026-05-01")),
            today,
            true,
        )
        .unwrap();
        assert_eq!((r.as_of, r.train_as_of), (d("2026-05-01"), d("2026-01-31")));
        assert_eq!(r.as_of_from, "--as-of");
        let r = resolve(
            DateRule::Today,
            DateRule::Date(d("2026-01-01")),
            30,
            None,
            today,
            true,
        )
        .unwrap();
        assert_eq!((r.as_of, r.train_as_of), (today, d("2026-01-01")));
    }

    #[test]
    fn a_training_horizon_that_is_not_over_is_refused() {
        let today = d("2026-07-01");
        let err = resolve(
            DateRule::Today,
            DateRule::DaysBefore(60),
            90,
            None,
            today,
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("-60d") && err.contains("2026-05-02") && err.contains("-90d"),
            "{err}"
        );
        // exactly one horizon before is fine; a run that does not train is not judged
        assert!(
            resolve(
                DateRule::Today,
                DateRule::DaysBefore(90),
                90,
                None,
                today,
                true
            )
            .is_ok()
        );
        assert!(
            resolve(
                DateRule::Today,
                DateRule::DaysBefore(60),
                90,
                None,
                today,
                false
            )
            .is_ok()
        );
        assert!(
            resolve(
                DateRule::DaysBefore(1),
                DateRule::DaysBefore(90),
                90,
                None,
                today,
                true
            )
            .is_err()
        );
    }

    #[test]
    fn retrain_rules_parse_and_decide() {
        for text in ["always", "if_missing", "never", "every 30d"] {
            assert_eq!(text.parse::<Retrain>().unwrap().to_string(), text);
        }
        assert!("every 0d".parse::<Retrain>().is_err());
        assert!("weekly".parse::<Retrain>().is_err());
        let state = |trained: &str, auc: Option<f64>| ModelState {
            model_trained_as_of: Some(d(trained)),
            realised_auc: auc.map(|a| (d("2026-04-01"), a)),
        };
        let t = d("2026-05-01");
        assert!(decide(Retrain::Every(30), None, &state("2026-04-01", None), t).trained);
        assert!(!decide(Retrain::Every(31), None, &state("2026-04-01", None), t).trained);
        let backfill = decide(Retrain::Every(30), None, &state("2026-06-01", None), t);
        assert!(
            backfill.trained && backfill.reason.contains("backfill"),
            "{}",
            backfill.reason
        );
        let low = decide(
            Retrain::IfMissing,
            Some(0.7),
            &state("2026-04-30", Some(0.6)),
            t,
        );
        assert!(
            low.trained && low.reason.contains("below the floor"),
            "{}",
            low.reason
        );
        let ok = decide(
            Retrain::IfMissing,
            Some(0.7),
            &state("2026-04-30", Some(0.8)),
            t,
        );
        assert!(!ok.trained);
        let never = decide(
            Retrain::Never,
            Some(0.7),
            &state("2026-04-30", Some(0.6)),
            t,
        );
        assert!(!never.trained && never.reason.contains("never"));
        let none = ModelState {
            model_trained_as_of: None,
            realised_auc: None,
        };
        assert!(decide(Retrain::Every(30), None, &none, t).trained);
    }
}
