//! The HTML report (SPEC §6): one self-contained page — whom to contact tonight, lift and
//! calibration from the validation, the model candidates, realised performance of past
//! nights, the whale curve with its 80/20/30 marks, the value × risk matrix, lifecycle
//! stages, feature importance, churn drivers, loyalty actions, touchpoints and movement.
//! No scripts, fonts or images are fetched: it reads offline.
//!
//! How it is built: the page is a minijinja template (`page.html`, embedded in the
//! binary, HTML auto-escaped); each section is a block of that template fed by one data
//! function here (`*_section`), and charts are SVG drawn by plotters ([`charts`]), whose
//! axis ticks fall on round numbers. To add a section: write its data function, add its
//! field to [`Page`], and its block to `page.html`. Money is shown with thousands
//! separators and the currency symbol of [`ReportOptions::currency`] (`report.currency`
//! in the pipeline TOML).

mod error;
pub use error::ReportError;
pub mod charts;
pub mod contacts;
pub mod format;

use std::path::Path;

use arrow::array::RecordBatch;
use serde::Serialize;

use crate::asof::AsOf;
use crate::features::{column_f64, column_strings};
use crate::realised::Realised;
use crate::segment::movement::{RISK_BANDS, risk_band};
use crate::segment::{LifecycleStage, Movement, ValueSegment, WhaleCurve};
use crate::train::artifact::ModelArtifact;
use crate::write::write_bytes;
use charts::{Axes, Line, Mark, colour};
use contacts::{Contact, ContactRule};
use format::{grouped, money, percent, thousands};

/// The page template.
const PAGE: &str = include_str!("page.html");

/// Rows of the contact list shown on the page (the CSV has them all).
pub const CONTACTS_SHOWN: usize = 25;

/// What the report shows besides the scored table and its model.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions<'a> {
    /// Symbol put before money amounts (`report.currency`); default none.
    pub currency: &'a str,
    /// An earlier scored table, for segment and risk movement.
    pub previous: Option<&'a RecordBatch>,
    /// The night scored and its previous one, when known (`run`).
    pub as_of: Option<AsOf>,
    pub previous_as_of: Option<AsOf>,
    /// Realised performance of past nights, oldest first (`run` with dated outputs).
    pub realised: &'a [Realised],
    /// The contact list's CSV file name, linked from the page when written beside it.
    pub contacts_csv: Option<&'a str>,
}

/// A chart section: its SVG and the sentence under it.
#[derive(Debug, Serialize)]
struct Chart {
    svg: String,
    note: String,
}

/// A table: header cells and rows of text cells.
#[derive(Debug, Serialize)]
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Index of a row to emphasise (the shipped candidate).
    strong: Option<usize>,
}

/// The value × risk matrix: cells with a shade of red for the value at risk.
#[derive(Debug, Serialize)]
struct Matrix {
    risk_groups: Vec<String>,
    rows: Vec<MatrixRow>,
}

#[derive(Debug, Serialize)]
struct MatrixRow {
    segment: String,
    cells: Vec<MatrixCell>,
}

#[derive(Debug, Serialize)]
struct MatrixCell {
    subscribers: String,
    value_at_risk: String,
    shade: String,
}

#[derive(Debug, Serialize)]
struct Kpi {
    label: String,
    value: String,
}

/// The contact section.
#[derive(Debug, Serialize)]
struct ContactSection {
    table: Table,
    total: String,
    note: String,
    csv: Option<String>,
}

/// A section made of tables and a note (candidates, movement, realised).
#[derive(Debug, Serialize)]
struct TableSection {
    tables: Vec<(String, Table)>,
    chart: Option<String>,
    note: String,
}

/// Everything the template reads.
#[derive(Debug, Serialize)]
struct Page {
    model_version: String,
    subtitle: String,
    kpis: Vec<Kpi>,
    contacts: ContactSection,
    lift: Chart,
    calibration: Chart,
    candidates: Option<TableSection>,
    realised: Option<TableSection>,
    whale: Chart,
    matrix: (Matrix, String),
    lifecycle: Chart,
    importance: Chart,
    drivers: Chart,
    actions: Chart,
    touchpoints: Option<Chart>,
    movement: Option<TableSection>,
}

/// Builds the report page.
pub fn render(
    scored: &RecordBatch,
    artifact: &ModelArtifact,
    options: &ReportOptions,
) -> Result<String, ReportError> {
    let page = Page {
        model_version: artifact.model_version.clone(),
        subtitle: subtitle(scored, artifact, options),
        kpis: kpis(scored, artifact, options),
        contacts: contact_section(scored, options),
        lift: lift_chart(artifact)?,
        calibration: calibration_chart(artifact)?,
        candidates: candidates_section(artifact),
        realised: realised_section(artifact, options)?,
        whale: whale_chart(scored, artifact)?,
        matrix: matrix_section(scored, options),
        lifecycle: lifecycle_chart(scored)?,
        importance: importance_chart(artifact)?,
        drivers: drivers_chart(scored)?,
        actions: actions_chart(scored, options)?,
        touchpoints: touchpoints_chart(artifact)?,
        movement: movement_section(scored, options),
    };
    let mut env = minijinja::Environment::new();
    env.add_template("page.html", PAGE)
        .map_err(|e| ReportError::Template(e.to_string()))?;
    let template = env
        .get_template("page.html")
        .map_err(|e| ReportError::Template(e.to_string()))?;
    let mut html = template
        .render(minijinja::value::Serde(&page))
        .map_err(|e| ReportError::Template(e.to_string()))?;
    html.push('\n');
    Ok(html)
}

/// Renders the report and writes it atomically.
pub fn write_report(
    path: &Path,
    scored: &RecordBatch,
    artifact: &ModelArtifact,
    options: &ReportOptions,
) -> Result<(), ReportError> {
    write_bytes(path, render(scored, artifact, options)?.as_bytes())?;
    Ok(())
}

fn subtitle(scored: &RecordBatch, artifact: &ModelArtifact, options: &ReportOptions) -> String {
    let night = options
        .as_of
        .map(|d| format!("night {d} · "))
        .unwrap_or_default();
    format!(
        "{night}model {} · trained on {} with a {}-day horizon · {} subscribers scored",
        artifact.model_version,
        artifact.window.as_of,
        artifact.window.horizon_days,
        thousands(scored.num_rows() as f64)
    )
}

fn kpis(scored: &RecordBatch, artifact: &ModelArtifact, options: &ReportOptions) -> Vec<Kpi> {
    let v = &artifact.metrics.validation;
    let whale = WhaleCurve::from_profit(&column_f64(scored, "profit_90d"));
    let var: f64 = column_f64(scored, "value_at_risk").iter().flatten().sum();
    let kpi = |label: String, value: String| Kpi { label, value };
    let mut out = vec![
        kpi(
            format!("ROC AUC ({})", v.method.replace('_', "-")),
            format!("{:.3}", v.churn.roc_auc),
        ),
        kpi("PR AUC".into(), format!("{:.3}", v.churn.pr_auc)),
        kpi(
            "top-decile lift".into(),
            format!("{:.2}×", v.churn.lift_top_decile),
        ),
        kpi(
            "top20 profit share".into(),
            format!("{:.0}%", 100.0 * whale.top20_profit_share),
        ),
        kpi("value at risk".into(), money(var, options.currency)),
    ];
    if let Some(r) = options.realised.last()
        && let Some(auc) = r.roc_auc
    {
        out.push(kpi(
            format!("realised ROC AUC (night {})", r.judged_as_of),
            format!("{auc:.3}"),
        ));
    }
    out
}

fn contact_section(scored: &RecordBatch, options: &ReportOptions) -> ContactSection {
    let (rule, list) = contacts::contacts(scored);
    let cur = options.currency;
    let rows = list
        .iter()
        .take(CONTACTS_SHOWN)
        .enumerate()
        .map(|(rank, c): (usize, &Contact)| {
            vec![
                (rank + 1).to_string(),
                c.subscriber_id.clone(),
                c.value_segment.clone(),
                c.risk_decile.map(|d| d.to_string()).unwrap_or_default(),
                format!("{:.3}", c.churn_probability),
                money(c.value_at_risk, cur),
                c.expected_return.map(|v| money(v, cur)).unwrap_or_default(),
                c.churn_driver.clone(),
                c.reasons.join("; "),
                c.recommended_touchpoints.join(", "),
            ]
        })
        .collect();
    let total = thousands(list.len() as f64);
    let note = match rule {
        ContactRule::Targeted => format!(
            "The {total} subscribers the retention budget targets, by expected net return (the offer's expected saved profit minus its cost); the first {} are shown.",
            CONTACTS_SHOWN.min(list.len())
        ),
        ContactRule::Retain => format!(
            "No retention budget was given: the {total} subscribers whose action is retain (valuable and at risk), by value at risk; the first {} are shown.",
            CONTACTS_SHOWN.min(list.len())
        ),
    };
    ContactSection {
        table: Table {
            head: [
                "#",
                "subscriber",
                "segment",
                "risk decile",
                "churn probability",
                "value at risk",
                "expected return",
                "driver",
                "top reasons",
                "recommended touchpoints",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            strong: None,
        },
        total,
        note,
        csv: options.contacts_csv.map(str::to_string),
    }
}

fn lift_chart(artifact: &ModelArtifact) -> Result<Chart, ReportError> {
    let v = &artifact.metrics.validation;
    let base = v.churn.positives as f64 / v.churn.rows.max(1) as f64;
    let lift: Vec<(String, f64)> = v
        .deciles
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let lift = if base > 0.0 { d.observed / base } else { 0.0 };
            ((i + 1).to_string(), lift)
        })
        .collect();
    Ok(Chart {
        svg: charts::bars(
            "risk decile (1 = riskiest)",
            "churn rate ÷ average",
            &lift,
            colour::RISK,
        )?,
        note: format!(
            "Validation ({}): the riskiest tenth churns {:.1}× as often as average.",
            v.method, v.churn.lift_top_decile
        ),
    })
}

fn calibration_chart(artifact: &ModelArtifact) -> Result<Chart, ReportError> {
    let v = &artifact.metrics.validation;
    let points: Vec<(f64, f64)> = v
        .calibration
        .iter()
        .filter(|c| c.rows > 0)
        .map(|c| (c.predicted, c.observed))
        .collect();
    let axes = Axes {
        x: 0.0..1.0,
        y: 0.0..1.0,
        x_desc: "predicted churn probability",
        y_desc: "observed churn rate",
        x_label: &charts::tick,
    };
    let svg = charts::lines(
        &axes,
        &[
            Line {
                label: "perfect".into(),
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                colour: colour::GUIDE,
                dashed: true,
                dots: false,
            },
            Line {
                label: "model".into(),
                points,
                colour: colour::MODEL,
                dashed: false,
                dots: true,
            },
        ],
        &[],
    )?;
    Ok(Chart {
        svg,
        note: format!(
            "Points on the dashed line are perfectly calibrated. Expected calibration error {:.4}, Brier score {:.4}.",
            v.churn.ece, v.churn.brier
        ),
    })
}

fn candidates_section(artifact: &ModelArtifact) -> Option<TableSection> {
    let v = &artifact.metrics.validation;
    if v.candidates.is_empty() {
        return None;
    }
    let mut strong = None;
    let rows: Vec<Vec<String>> = v
        .candidates
        .iter()
        .map(|c| (c.name.clone(), &c.churn, c.name == v.chosen))
        .chain(
            v.baselines
                .iter()
                .map(|(n, m)| (format!("baseline {n}"), m, false)),
        )
        .enumerate()
        .map(|(i, (name, m, shipped))| {
            if shipped {
                strong = Some(i);
            }
            vec![
                format!("{name}{}", if shipped { " (shipped)" } else { "" }),
                format!("{:.4}", m.roc_auc),
                format!("{:.4}", m.pr_auc),
                format!("{:.4}", m.brier),
                format!("{:.4}", m.ece),
            ]
        })
        .collect();
    Some(TableSection {
        tables: vec![(
            String::new(),
            Table {
                head: ["candidate", "ROC AUC", "PR AUC", "Brier", "ECE"]
                    .map(String::from)
                    .to_vec(),
                rows,
                strong,
            },
        )],
        chart: None,
        note: format!(
            "Every candidate judged on the same rows, none of which it was fit on ({}{}). Shipped: {} ({}).",
            v.method,
            v.note
                .as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default(),
            v.chosen,
            v.choice
        ),
    })
}

/// Realised performance over time: one point and one table row per judged night.
fn realised_section(
    artifact: &ModelArtifact,
    options: &ReportOptions,
) -> Result<Option<TableSection>, ReportError> {
    let nights = options.realised;
    if nights.is_empty() {
        return Ok(None);
    }
    let day = |r: &Realised| r.judged_as_of.days() as f64;
    let (first, last) = (day(&nights[0]), day(&nights[nights.len() - 1]));
    // one night alone still needs an axis some days wide
    let x = (first - 7.0).min(first)..(last + 7.0).max(last + 1.0);
    let auc: Vec<(f64, f64)> = nights
        .iter()
        .filter_map(|r| Some((day(r), r.roc_auc?)))
        .collect();
    let validation = artifact.metrics.validation.churn.roc_auc;
    let as_date = |v: f64| AsOf::from_days(v.round() as i32).to_string();
    let axes = Axes {
        x,
        y: 0.5..1.0,
        x_desc: "night judged",
        y_desc: "ROC AUC",
        x_label: &as_date,
    };
    let lines = [
        Line {
            label: "realised".into(),
            points: auc,
            colour: colour::MODEL,
            dashed: false,
            dots: true,
        },
        Line {
            label: "shipped model's validation".into(),
            points: vec![(axes.x.start, validation), (axes.x.end, validation)],
            colour: colour::GUIDE,
            dashed: true,
            dots: false,
        },
    ];
    let chart = charts::lines(&axes, &lines, &[])?;
    let f = |v: Option<f64>, d: usize| v.map_or("n/a".to_string(), |v| grouped(v, d));
    let rows = nights
        .iter()
        .map(|r| {
            vec![
                r.judged_as_of.to_string(),
                r.observed_until.to_string(),
                thousands((r.scored - r.unmatched) as f64),
                f(r.roc_auc, 3),
                f(r.lift_top_decile, 2),
                format!("{:.3} / {:.3}", r.mean_predicted, r.observed_rate),
                f(r.ece, 4),
                format!(
                    "{} of {}",
                    thousands(r.targeted.churned as f64),
                    thousands(r.targeted.subscribers as f64)
                ),
                money(r.targeted.value_kept, options.currency),
            ]
        })
        .collect();
    Ok(Some(TableSection {
        tables: vec![(
            String::new(),
            Table {
                head: [
                    "night",
                    "observed until",
                    "labelled",
                    "ROC AUC",
                    "top-decile lift",
                    "predicted / observed churn",
                    "ECE",
                    "targeted who churned",
                    "value kept among targeted",
                ]
                .map(String::from)
                .to_vec(),
                rows,
                strong: None,
            },
        )],
        chart: Some(chart),
        note: "Each past night whose horizon has elapsed, judged against the churn observed since (the training label: churn_date within the horizon). Value kept is the expected horizon profit of the targeted subscribers who stayed; without a control group it says what happened to them, not what the offers caused.".into(),
    }))
}

fn whale_chart(scored: &RecordBatch, artifact: &ModelArtifact) -> Result<Chart, ReportError> {
    let whale = WhaleCurve::from_profit(&column_f64(scored, "profit_90d"));
    let y_max = whale.curve.iter().copied().fold(1.0, f64::max) * 1.1;
    let y_min = whale.curve.iter().copied().fold(0.0, f64::min);
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        whale
            .curve
            .iter()
            .enumerate()
            .map(|(i, &c)| ((i + 1) as f64 / 100.0, c)),
    );
    let axes = Axes {
        x: 0.0..1.0,
        y: y_min..y_max,
        x_desc: "share of customers, most profitable first",
        y_desc: "cumulative share of profit",
        x_label: &charts::tick,
    };
    let svg = charts::lines(
        &axes,
        &[
            Line {
                label: "whale curve".into(),
                points,
                colour: colour::VALUE,
                dashed: false,
                dots: false,
            },
            Line {
                label: "total profit".into(),
                points: vec![(0.0, 1.0), (1.0, 1.0)],
                colour: colour::GUIDE,
                dashed: true,
                dots: false,
            },
        ],
        &[
            Mark {
                x: 0.2,
                label: "top 20%".into(),
            },
            Mark {
                x: 0.7,
                label: "bottom 30% →".into(),
            },
        ],
    )?;
    Ok(Chart {
        svg,
        note: format!(
            "Ranked by profit: {}. Profit peaks at {:.0}% of total with the best {:.0}% of customers; {:.0}% are unprofitable. Forecast of the next period — {}.",
            whale.summary(),
            100.0 * whale.peak_profit_share,
            100.0 * whale.peak_customer_share,
            100.0 * whale.unprofitable_share,
            artifact.metrics.value_segments.summary()
        ),
    })
}

fn matrix_section(scored: &RecordBatch, options: &ReportOptions) -> (Matrix, String) {
    let seg = column_strings(scored, "value_segment");
    let decile = column_f64(scored, "risk_decile");
    let var = column_f64(scored, "value_at_risk");
    let mut counts = [[0usize; 3]; 3];
    let mut at_risk = [[0.0f64; 3]; 3];
    for i in 0..scored.num_rows() {
        let Some(s) = ValueSegment::parse(&seg[i]) else {
            continue;
        };
        // a missing decile counts as low risk
        let g = risk_band(decile[i]).unwrap_or(2);
        counts[s.index()][g] += 1;
        at_risk[s.index()][g] += var[i].unwrap_or(0.0);
    }
    let max_var = at_risk
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(1e-9);
    let rows = ValueSegment::ALL
        .iter()
        .map(|s| MatrixRow {
            segment: s.name().to_string(),
            cells: (0..3)
                .map(|g| MatrixCell {
                    subscribers: thousands(counts[s.index()][g] as f64),
                    value_at_risk: money(at_risk[s.index()][g], options.currency),
                    shade: format!(
                        "{:.2}",
                        (at_risk[s.index()][g] / max_var * 0.8).clamp(0.0, 0.8)
                    ),
                })
                .collect(),
        })
        .collect();
    (
        Matrix {
            risk_groups: ["high risk (deciles 1–3)", "medium (4–7)", "low (8–10)"]
                .map(String::from)
                .to_vec(),
            rows,
        },
        "Where the money at risk sits: retention spend belongs in the dark cells of the top rows."
            .into(),
    )
}

/// Subscribers per value of a text column, in the order of `values`.
fn count_of(scored: &RecordBatch, name: &str, values: &[&str]) -> Vec<(String, f64)> {
    let col = column_strings(scored, name);
    values
        .iter()
        .map(|v| (v.to_string(), col.iter().filter(|c| c == v).count() as f64))
        .collect()
}

fn lifecycle_chart(scored: &RecordBatch) -> Result<Chart, ReportError> {
    let stages = LifecycleStage::ALL.map(LifecycleStage::name);
    let counts = count_of(scored, "lifecycle_stage", &stages);
    let total: f64 = counts.iter().map(|c| c.1).sum::<f64>().max(1.0);
    let shares: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{s} {}", percent(n / total)))
        .collect();
    Ok(Chart {
        svg: charts::bars("lifecycle stage", "subscribers", &counts, colour::STAGE)?,
        note: format!(
            "Where each subscriber stands in the relationship, from first contact to loyalty: {}.",
            shares.join(", ")
        ),
    })
}

fn importance_chart(artifact: &ModelArtifact) -> Result<Chart, ReportError> {
    let importance: Vec<(String, f64)> = artifact
        .churn
        .feature_importance()
        .into_iter()
        .take(15)
        .collect();
    Ok(Chart {
        svg: charts::hbars("share of split gain", &importance, colour::IMPORTANCE)?,
        note: "What the churn model leans on most, by total split gain.".into(),
    })
}

fn drivers_chart(scored: &RecordBatch) -> Result<Chart, ReportError> {
    let drivers = count_of(scored, "churn_driver", &["service", "price", "product"]);
    Ok(Chart {
        svg: charts::bars("driver", "subscribers", &drivers, colour::DRIVER)?,
        note: "Why subscribers are at risk, read from the footprint in their last 90 days: complaints and bad ratings (service), price cancellations and tariff enquiries (price), fading use (product). About 70% service, 15% price and 15% product is typical of those who leave.".into(),
    })
}

fn actions_chart(scored: &RecordBatch, options: &ReportOptions) -> Result<Chart, ReportError> {
    let actions = count_of(
        scored,
        "loyalty_action",
        &["retain", "reward", "upsell", "nurture", "reduce_cost"],
    );
    let targeted = column_strings(scored, "targeted")
        .iter()
        .filter(|t| t.as_str() == "true")
        .count();
    let expected: f64 = column_f64(scored, "expected_return").iter().flatten().sum();
    let budget_note = if targeted > 0 {
        format!(
            " Within the budget, {} subscribers are targeted for an expected net return of {}.",
            thousands(targeted as f64),
            money(expected, options.currency)
        )
    } else {
        " No retention budget was given, so nobody is targeted.".to_string()
    };
    Ok(Chart {
        svg: charts::bars("action", "subscribers", &actions, colour::ACTION)?,
        note: format!(
            "Retain the valuable at risk, reward the loyal, upsell the middle, and spend no retention money on the unprofitable.{budget_note}"
        ),
    })
}

fn touchpoints_chart(artifact: &ModelArtifact) -> Result<Option<Chart>, ReportError> {
    if artifact.touchpoints.is_empty() {
        return Ok(None);
    }
    let lifts: Vec<(String, f64)> = artifact
        .touchpoints
        .touchpoints
        .iter()
        .filter(|t| t.users > 0)
        .map(|t| (t.touchpoint.clone(), 100.0 * t.retention_lift))
        .collect();
    Ok(Some(Chart {
        svg: charts::hbars("retention lift (points)", &lifts, colour::TOUCHPOINT)?,
        note: format!(
            "How much less often those who used a touchpoint in the 90 days before a training snapshot churned than the {:.1}% average (points, shrunk toward zero for rare touchpoints). An association, not an experiment: recommended touchpoints are the well-lifted ones each subscriber already uses and rates well, never one tied to their churn driver.",
            100.0 * artifact.touchpoints.churn_rate
        ),
    }))
}

fn movement_section(scored: &RecordBatch, options: &ReportOptions) -> Option<TableSection> {
    let previous = options.previous?;
    let mv = Movement::between(previous, scored);
    let table = |names: &[&str], counts: &[[u64; 3]; 3]| Table {
        head: std::iter::once("previous \\ now")
            .chain(names.iter().copied())
            .map(String::from)
            .collect(),
        rows: names
            .iter()
            .enumerate()
            .map(|(r, name)| {
                std::iter::once(name.to_string())
                    .chain(counts[r].iter().map(|c| thousands(*c as f64)))
                    .collect()
            })
            .collect(),
        strong: None,
    };
    let segments = ValueSegment::ALL.map(|s| s.name());
    let since = match options.previous_as_of {
        Some(d) => format!("Since the previous night ({d})"),
        None => "Since the previous run".to_string(),
    };
    Some(TableSection {
        tables: vec![
            ("value segment".into(), table(&segments, &mv.segments)),
            ("risk band".into(), table(&RISK_BANDS, &mv.risk_bands)),
        ],
        chart: None,
        note: format!(
            "{since}: {}. Risk bands: high = deciles 1–3, medium 4–7, low 8–10.",
            mv.summary()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses() {
        let mut env = minijinja::Environment::new();
        env.add_template("page.html", PAGE).unwrap();
    }
}
