//! Feature values as a person reads them, for reason codes and the report.

use serde::{Deserialize, Serialize};

/// A value of one feature for one row, for reason codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureValue {
    /// Null, NaN, or a level the model does not know.
    Missing,
    /// A flag.
    Flag(bool),
    /// A number.
    Number(f64),
    /// A categorical level.
    Level(String),
}

impl std::fmt::Display for FeatureValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeatureValue::Missing => write!(f, "missing"),
            FeatureValue::Flag(b) => write!(f, "{b}"),
            FeatureValue::Number(v) => write!(f, "{}", format_number(*v)),
            FeatureValue::Level(s) => write!(f, "{s}"),
        }
    }
}

/// A number as a person reads it: integers plainly, others with at most three decimals.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return "missing".to_string();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    if v.abs() < 1e-3 {
        return format!("{v:.2e}");
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}
