//! The contact list: whom the loyalty team should reach tonight, best first, with what
//! to say and where. The report shows its head; the whole list is written beside it as
//! CSV (`contacts.csv`) for a campaign tool.
//!
//! Who is on it: with a retention budget, the subscribers it targets (`targeted`), by
//! expected net return; without one, every subscriber whose loyalty action is `retain`
//! (valuable and at risk), by value at risk. Ties go to the smaller `subscriber_id`
//! (as text), so the order is the same on every run.
//!
//! The CSV is RFC 4180 (the `csv` crate): a header row, comma-separated, fields with
//! commas or quotes quoted; reasons and touchpoints are joined with `; ` inside one field.

use arrow::array::{Array, AsArray, RecordBatch};
use serde::Serialize;

use super::error::ReportError;
use crate::features::{column_f64, column_strings};

/// One subscriber to contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub subscriber_id: String,
    pub value_segment: String,
    pub risk_decile: Option<i64>,
    pub churn_probability: f64,
    pub value_at_risk: f64,
    /// Net return expected from an offer (targeted subscribers only).
    pub expected_return: Option<f64>,
    pub loyalty_action: String,
    pub churn_driver: String,
    /// The top reasons, in words.
    pub reasons: Vec<String>,
    pub recommended_touchpoints: Vec<String>,
}

/// How the list was chosen, for the report's note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactRule {
    /// Targeted within the budget, by expected net return.
    Targeted,
    /// No budget: every `retain` subscriber, by value at risk.
    Retain,
}

/// Which rows of a scored table are on its contact list, and by which rule (a sharded
/// run reads the reasons and touchpoints of these rows only).
pub fn listed(scored: &RecordBatch) -> (ContactRule, Vec<bool>) {
    let targeted = column_strings(scored, "targeted");
    if targeted.iter().any(|t| t == "true") {
        let on = targeted.iter().map(|t| t == "true").collect();
        return (ContactRule::Targeted, on);
    }
    let action = column_strings(scored, "loyalty_action");
    (
        ContactRule::Retain,
        action.iter().map(|a| a == "retain").collect(),
    )
}

/// The contact list of a scored table, best first.
pub fn contacts(scored: &RecordBatch) -> (ContactRule, Vec<Contact>) {
    let action = column_strings(scored, "loyalty_action");
    let expected = column_f64(scored, "expected_return");
    let var = column_f64(scored, "value_at_risk");
    let (rule, on) = listed(scored);
    let ids = column_strings(scored, "subscriber_id");
    let mut rows: Vec<usize> = (0..scored.num_rows()).filter(|&i| on[i]).collect();
    let key = |i: usize| match rule {
        ContactRule::Targeted => expected[i].unwrap_or(f64::NEG_INFINITY),
        ContactRule::Retain => var[i].unwrap_or(f64::NEG_INFINITY),
    };
    rows.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then_with(|| ids[a].cmp(&ids[b])));
    let (segment, decile, p, driver) = (
        column_strings(scored, "value_segment"),
        column_f64(scored, "risk_decile"),
        column_f64(scored, "churn_probability"),
        column_strings(scored, "churn_driver"),
    );
    let (reasons, touchpoints) = (
        column_lists(scored, "reasons"),
        column_lists(scored, "recommended_touchpoints"),
    );
    let list = rows
        .into_iter()
        .map(|i| Contact {
            subscriber_id: ids[i].clone(),
            value_segment: segment[i].clone(),
            risk_decile: decile[i].map(|d| d as i64),
            churn_probability: p[i].unwrap_or(f64::NAN),
            value_at_risk: var[i].unwrap_or(0.0),
            expected_return: expected[i],
            loyalty_action: action[i].clone(),
            churn_driver: driver[i].clone(),
            reasons: reasons[i].iter().map(|r| reason_in_words(r)).collect(),
            recommended_touchpoints: touchpoints[i].clone(),
        })
        .collect();
    (rule, list)
}

/// A list-of-strings column, one `Vec` per row (empty for nulls or a missing column).
fn column_lists(batch: &RecordBatch, name: &str) -> Vec<Vec<String>> {
    let empty = || vec![Vec::new(); batch.num_rows()];
    let Some(column) = batch.column_by_name(name) else {
        return empty();
    };
    let Some(list) = column.as_list_opt::<i32>() else {
        return empty();
    };
    (0..list.len())
        .map(|i| {
            if list.is_null(i) {
                return Vec::new();
            }
            let values = list.value(i);
            match arrow::compute::cast(&values, &arrow::datatypes::DataType::Utf8) {
                Ok(v) => v
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(str::to_string)
                    .collect(),
                Err(_) => Vec::new(),
            }
        })
        .collect()
}

/// The contact list as CSV bytes.
pub fn to_csv(list: &[Contact]) -> Result<Vec<u8>, ReportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| ReportError::Csv(e.to_string());
    writer
        .write_record([
            "rank",
            "subscriber_id",
            "value_segment",
            "risk_decile",
            "churn_probability",
            "value_at_risk",
            "expected_return",
            "loyalty_action",
            "churn_driver",
            "reasons",
            "recommended_touchpoints",
        ])
        .map_err(csv_error)?;
    for (rank, c) in list.iter().enumerate() {
        writer
            .write_record([
                (rank + 1).to_string(),
                c.subscriber_id.clone(),
                c.value_segment.clone(),
                c.risk_decile.map(|d| d.to_string()).unwrap_or_default(),
                format!("{:.6}", c.churn_probability),
                format!("{:.2}", c.value_at_risk),
                c.expected_return
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_default(),
                c.loyalty_action.clone(),
                c.churn_driver.clone(),
                c.reasons.join("; "),
                c.recommended_touchpoints.join("; "),
            ])
            .map_err(csv_error)?;
    }
    writer
        .into_inner()
        .map_err(|e| ReportError::Csv(e.error().to_string()))
}

/// A reason code (`complaints_unresolved_90d = 2 (typical 0)`) in words: `unresolved
/// complaints in the last 90 days: 2 (typical 0)`. A code of another shape is returned
/// with its underscores as spaces.
pub fn reason_in_words(code: &str) -> String {
    let Some((feature, rest)) = code.split_once(" = ") else {
        return code.replace('_', " ");
    };
    format!("{}: {rest}", feature_in_words(feature.trim()))
}

/// A feature name (SPEC §4 and the pass-through columns) as a phrase.
pub fn feature_in_words(feature: &str) -> String {
    let fixed = match feature {
        "tenure_days" => Some("days as a subscriber"),
        "days_since_last_event" => Some("days since the last touchpoint"),
        "satisfaction_mean_90d" => Some("mean satisfaction rating in the last 90 days"),
        "low_satisfaction_90d" => Some("ratings of 2 or less in the last 90 days"),
        "complaints_unresolved_90d" => Some("unresolved complaints in the last 90 days"),
        "use_trend" => Some("use in the last 30 days against the 60 before"),
        "channels_distinct_90d" => Some("channels used in the last 90 days"),
        "revenue_90d" => Some("revenue in the last 90 days"),
        "cost_90d" => Some("cost to serve in the last 90 days"),
        "profit_90d" => Some("profit in the last 90 days"),
        "personnel_duration_mean_90d" => Some("mean time with staff (s) in the last 90 days"),
        _ => None,
    };
    if let Some(words) = fixed {
        return words.to_string();
    }
    if let Some(kind) = feature.strip_prefix("days_since_last_") {
        return format!("days since the last {}", kind_in_words(kind, false));
    }
    // `{name}_{W}d` counts, `tp_{touchpoint}_{W}d` per-touchpoint counts
    if let Some((name, window)) = feature.rsplit_once('_')
        && let Some(days) = window.strip_suffix('d')
        && !days.is_empty()
        && days.bytes().all(|b| b.is_ascii_digit())
    {
        let what = match (name.strip_prefix("tp_"), name.strip_prefix("reason_")) {
            (Some(touchpoint), _) => format!("{} events", touchpoint.replace('_', " ")),
            (_, Some(reason)) => {
                format!("{} complaints or cancellations", reason.replace('_', " "))
            }
            _ if name == "events" => "touchpoint events".to_string(),
            _ => kind_in_words(name, true),
        };
        return format!("{what} in the last {days} days");
    }
    feature.replace('_', " ")
}

/// A lifecycle kind, category or stage as a noun; plural for counts.
fn kind_in_words(name: &str, plural: bool) -> String {
    let (one, many) = match name {
        "complain" => ("complaint", "complaints"),
        "unsubscribe" => ("unsubscribe request", "unsubscribe requests"),
        "subscribe" => ("subscription", "subscriptions"),
        "use" => ("use", "uses"),
        "trial" => ("trial", "trials"),
        "discover" => ("discovery touchpoint", "discovery touchpoints"),
        other => return format!("{} events", other.replace('_', " ")),
    };
    if plural { many } else { one }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(
            reason_in_words("complaints_unresolved_90d = 2 (typical 0)"),
            "unresolved complaints in the last 90 days: 2 (typical 0)"
        );
        assert_eq!(
            reason_in_words("complain_30d = 3 (typical 0)"),
            "complaints in the last 30 days: 3 (typical 0)"
        );
        assert_eq!(
            reason_in_words("tp_hotline_call_90d = 4 (typical 1)"),
            "hotline call events in the last 90 days: 4 (typical 1)"
        );
        assert_eq!(
            reason_in_words("days_since_last_use = 40.5 (typical 3.1)"),
            "days since the last use: 40.5 (typical 3.1)"
        );
        assert_eq!(
            reason_in_words("personnel_7d = 2 (typical 0)"),
            "personnel events in the last 7 days: 2 (typical 0)"
        );
        assert_eq!(
            reason_in_words("plan = basic (typical premium)"),
            "plan: basic (typical premium)"
        );
    }

    #[test]
    fn the_csv_reads_back_with_quoted_fields() {
        let c = Contact {
            subscriber_id: "S,1".into(),
            value_segment: "top20".into(),
            risk_decile: Some(1),
            churn_probability: 0.5,
            value_at_risk: 1234.5,
            expected_return: None,
            loyalty_action: "retain".into(),
            churn_driver: "service".into(),
            reasons: vec!["a: 1 (typical 0)".into(), "b \"x\"".into()],
            recommended_touchpoints: vec!["app_session".into()],
        };
        let bytes = to_csv(&[c]).unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][1], "S,1");
        assert_eq!(&rows[0][9], "a: 1 (typical 0); b \"x\"");
        assert_eq!(&rows[0][6], "");
    }
}
