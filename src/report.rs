//! The HTML report (SPEC §6): one self-contained page with inline SVG charts — lift and
//! calibration from the out-of-time validation, the whale curve with its 80/20/30 marks,
//! the value × risk matrix, feature importance, churn drivers and loyalty actions.
//! No scripts, fonts or images are fetched: it reads offline.

use std::fmt::Write as _;
use std::path::Path;

use arrow::array::RecordBatch;

use crate::features::{column_f64, column_strings};
use crate::segment::movement::{RISK_BANDS, risk_band};
use crate::segment::{Movement, ValueSegment, WhaleCurve};
use crate::train::artifact::ModelArtifact;
use crate::write::write_bytes;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 560.0;
const H: f64 = 300.0;
const PAD: f64 = 48.0;

/// An SVG frame with axes from (0,0) to (x_max, y_max); returns the opening markup and a
/// function mapping data to pixels. `x_ticks` is false for bar charts, whose bars carry
/// their own labels.
fn frame(
    title: &str,
    x_label: &str,
    y_label: &str,
    x_max: f64,
    y_max: f64,
    x_ticks: bool,
) -> (String, impl Fn(f64, f64) -> (f64, f64)) {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    let (x0, y0, x1, y1) = (PAD, H - PAD, W - 16.0, 16.0);
    let _ = write!(
        s,
        r##"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>"##
    );
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let y = y0 - f * (y0 - y1);
        let x = x0 + f * (x1 - x0);
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#555">{}</text>"##,
            x0 - 4.0,
            y + 3.0,
            tick(f * y_max)
        );
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/>"##
        );
        if !x_ticks {
            continue;
        }
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{}</text>"##,
            y0 + 14.0,
            tick(f * x_max)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
        (x0 + x1) / 2.0,
        H - 8.0,
        esc(x_label)
    );
    let _ = write!(
        s,
        r##"<text x="12" y="{:.1}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {:.1})">{}</text>"##,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        esc(y_label)
    );
    let map = move |x: f64, y: f64| {
        (
            x0 + x / x_max.max(1e-12) * (x1 - x0),
            y0 - y / y_max.max(1e-12) * (y0 - y1),
        )
    };
    (s, map)
}

fn tick(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let k = v / 1000.0;
        if (k - k.round()).abs() < 1e-9 {
            format!("{k:.0}k")
        } else {
            format!("{k:.1}k")
        }
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn polyline(points: &[(f64, f64)], color: &str, dash: bool) -> String {
    let pts: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let dash = if dash {
        r#" stroke-dasharray="4 3""#
    } else {
        ""
    };
    format!(
        r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
        pts.join(" ")
    )
}

/// Vertical bars with labels under them.
fn bar_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    bars: &[(String, f64)],
    color: &str,
) -> String {
    let y_max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let (mut s, map) = frame(title, x_label, y_label, bars.len() as f64, y_max, false);
    for (i, (label, v)) in bars.iter().enumerate() {
        let (xa, ya) = map(i as f64 + 0.15, *v);
        let (xb, yb) = map(i as f64 + 0.85, 0.0);
        let _ = write!(
            s,
            r#"<rect x="{xa:.1}" y="{ya:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{}: {}</title></rect>"#,
            xb - xa,
            (yb - ya).max(0.0),
            esc(label),
            tick(*v)
        );
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#222">{}</text>"##,
            (xa + xb) / 2.0,
            yb + 26.0,
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars (for long labels such as feature names); negative values grow left
/// of the zero line, in red.
fn hbar_chart(title: &str, bars: &[(String, f64)], color: &str) -> String {
    let row = 20.0;
    let height = 30.0 + row * bars.len() as f64;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let min = bars.iter().map(|b| b.1).fold(0.0, f64::min);
    let scale = (W - 260.0) / (max - min).max(1e-12);
    let zero = 200.0 - min * scale;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let (x, w) = (zero + v.min(0.0) * scale, v.abs() * scale);
        let fill = if *v < 0.0 { "#c0392b" } else { color };
        let _ = write!(
            s,
            r##"<text x="196" y="{:.1}" font-size="11" text-anchor="end">{}</text><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{fill}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#333">{}</text>"##,
            y + 13.0,
            esc(label),
            row - 6.0,
            zero + v.max(0.0) * scale + 4.0,
            y + 12.0,
            tick(*v)
        );
    }
    s.push_str("</svg>");
    s
}

/// Builds the report page.
pub fn render(
    scored: &RecordBatch,
    artifact: &ModelArtifact,
    previous: Option<&RecordBatch>,
) -> String {
    let m = &artifact.metrics;
    let v = &m.validation;
    let mut charts = Vec::new();

    // Lift by decile.
    let base = v.churn.positives as f64 / v.churn.rows.max(1) as f64;
    let lift: Vec<(String, f64)> = v
        .deciles
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                (i + 1).to_string(),
                if base > 0.0 { d.observed / base } else { 0.0 },
            )
        })
        .collect();
    charts.push((
        "lift",
        "Lift by risk decile",
        bar_chart(
            "Lift by risk decile",
            "risk decile (1 = riskiest)",
            "churn rate ÷ average",
            &lift,
            "#c0392b",
        ),
        format!(
            "Validation ({}): the riskiest tenth churns {:.1}× as often as average.",
            v.method, v.churn.lift_top_decile
        ),
    ));

    // Calibration.
    let (mut cal, map) = frame(
        "Calibration",
        "predicted churn probability",
        "observed churn rate",
        1.0,
        1.0,
        true,
    );
    cal.push_str(&polyline(&[map(0.0, 0.0), map(1.0, 1.0)], "#999", true));
    let pts: Vec<(f64, f64)> = v
        .calibration
        .iter()
        .filter(|c| c.rows > 0)
        .map(|c| map(c.predicted, c.observed))
        .collect();
    cal.push_str(&polyline(&pts, "#2c7fb8", false));
    for (c, (x, y)) in v.calibration.iter().filter(|c| c.rows > 0).zip(&pts) {
        let _ = write!(
            cal,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#2c7fb8"><title>{} rows: predicted {:.3}, observed {:.3}</title></circle>"##,
            c.rows, c.predicted, c.observed
        );
    }
    cal.push_str("</svg>");
    charts.push(("calibration", "Calibration", cal, format!("Points on the dashed line are perfectly calibrated. Expected calibration error {:.4}, Brier score {:.4}.", v.churn.ece, v.churn.brier)));

    // Model candidates.
    if !v.candidates.is_empty() {
        let mut t = String::from(
            r#"<table class="matrix"><tr><th>candidate</th><th>ROC AUC</th><th>PR AUC</th><th>Brier</th><th>ECE</th></tr>"#,
        );
        let rows = v
            .candidates
            .iter()
            .map(|c| (c.name.clone(), &c.churn, c.name == v.chosen))
            .chain(
                v.baselines
                    .iter()
                    .map(|(n, m)| (format!("baseline {n}"), m, false)),
            );
        for (name, m, shipped) in rows {
            let style = if shipped {
                r#" style="font-weight: bold""#
            } else {
                ""
            };
            let _ = write!(
                t,
                "<tr{style}><th>{}{}</th><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                esc(&name),
                if shipped { " (shipped)" } else { "" },
                m.roc_auc,
                m.pr_auc,
                m.brier,
                m.ece
            );
        }
        t.push_str("</table>");
        charts.push((
            "candidates",
            "Model candidates",
            t,
            format!(
                "Every candidate judged on the same rows, none of which it was fit on ({}{}). Shipped: {} ({}).",
                v.method,
                v.note.as_deref().map(|n| format!("; {n}")).unwrap_or_default(),
                v.chosen,
                v.choice
            ),
        ));
    }

    // Whale curve.
    let profit = column_f64(scored, "profit_90d");
    let whale = WhaleCurve::from_profit(&profit);
    let y_max = whale.curve.iter().copied().fold(1.0, f64::max) * 1.1;
    let (mut wsvg, map) = frame(
        "Whale curve",
        "share of customers, most profitable first",
        "cumulative share of profit",
        1.0,
        y_max,
        true,
    );
    let mut pts = vec![map(0.0, 0.0)];
    pts.extend(
        whale
            .curve
            .iter()
            .enumerate()
            .map(|(i, &c)| map((i + 1) as f64 / 100.0, c)),
    );
    wsvg.push_str(&polyline(&pts, "#2d6a4f", false));
    wsvg.push_str(&polyline(&[map(0.0, 1.0), map(1.0, 1.0)], "#999", true));
    for (x, label) in [(0.2, "top 20%"), (0.7, "bottom 30% →")] {
        let (px, py0) = map(x, 0.0);
        let (_, py1) = map(x, y_max);
        let _ = write!(
            wsvg,
            r##"<line x1="{px:.1}" y1="{py0:.1}" x2="{px:.1}" y2="{py1:.1}" stroke="#e67e22" stroke-dasharray="3 3"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#e67e22">{label}</text>"##,
            px + 4.0,
            py1 + 12.0
        );
    }
    wsvg.push_str("</svg>");
    charts.push(("whale", "Whale curve", wsvg, format!(
        "Ranked by profit: {}. Profit peaks at {:.0}% of total with the best {:.0}% of customers; {:.0}% are unprofitable. Forecast of the next period — {}.",
        whale.summary(), 100.0 * whale.peak_profit_share, 100.0 * whale.peak_customer_share, 100.0 * whale.unprofitable_share, artifact.metrics.value_segments.summary())));

    // Value × risk matrix.
    let seg = column_strings(scored, "value_segment");
    let decile = column_f64(scored, "risk_decile");
    let var = column_f64(scored, "value_at_risk");
    let risk_groups = ["high risk (deciles 1–3)", "medium (4–7)", "low (8–10)"];
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
    let mut matrix = String::from(r#"<table class="matrix"><tr><th>value \ risk</th>"#);
    for g in risk_groups {
        let _ = write!(matrix, "<th>{g}</th>");
    }
    matrix.push_str("</tr>");
    for s in ValueSegment::ALL {
        let _ = write!(matrix, "<tr><th>{}</th>", s.name());
        for g in 0..3 {
            let shade = (at_risk[s.index()][g] / max_var * 0.8).clamp(0.0, 0.8);
            let _ = write!(
                matrix,
                r#"<td style="background: rgba(192,57,43,{shade:.2})">{} subscribers<br>value at risk {:.0}</td>"#,
                counts[s.index()][g],
                at_risk[s.index()][g]
            );
        }
        matrix.push_str("</tr>");
    }
    matrix.push_str("</table>");
    charts.push((
        "matrix",
        "Value × risk",
        matrix,
        "Where the money at risk sits: retention spend belongs in the dark cells of the top rows."
            .into(),
    ));

    // Feature importance.
    let importance: Vec<(String, f64)> = artifact
        .churn
        .feature_importance()
        .into_iter()
        .take(15)
        .collect();
    charts.push((
        "importance",
        "Feature importance",
        hbar_chart("Feature importance (gain)", &importance, "#6c5ce7"),
        "What the churn model leans on most, by total split gain.".into(),
    ));

    // Drivers and actions.
    let count_of = |name: &str, values: &[&str]| -> Vec<(String, f64)> {
        let col = column_strings(scored, name);
        values
            .iter()
            .map(|v| (v.to_string(), col.iter().filter(|c| c == v).count() as f64))
            .collect()
    };
    let drivers = count_of("churn_driver", &["service", "price", "product"]);
    charts.push(("drivers", "Churn drivers", bar_chart("Churn drivers", "driver", "subscribers", &drivers, "#d35400"), "Why subscribers are at risk, read from the footprint in their last 90 days: complaints and bad ratings (service), price cancellations and tariff enquiries (price), fading use (product). About 70% service, 15% price and 15% product is typical of those who leave.".into()));
    let actions = count_of(
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
            " Within the budget, {targeted} subscribers are targeted for an expected net return of {expected:.0}."
        )
    } else {
        " No retention budget was given, so nobody is targeted.".to_string()
    };
    charts.push((
        "actions",
        "Loyalty actions",
        bar_chart("Loyalty actions", "action", "subscribers", &actions, "#16a085"),
        format!(
            "Retain the valuable at risk, reward the loyal, upsell the middle, and spend no retention money on the unprofitable.{budget_note}"
        ),
    ));

    if !artifact.touchpoints.is_empty() {
        let lifts: Vec<(String, f64)> = artifact
            .touchpoints
            .touchpoints
            .iter()
            .filter(|t| t.users > 0)
            .map(|t| (t.touchpoint.clone(), 100.0 * t.retention_lift))
            .collect();
        charts.push((
            "touchpoints",
            "Touchpoints and retention",
            hbar_chart("Retention lift by touchpoint (points)", &lifts, "#2e86de"),
            format!(
                "How much less often those who used a touchpoint in the 90 days before a training snapshot churned than the {:.1}% average (points, shrunk toward zero for rare touchpoints). An association, not an experiment: recommended touchpoints are the well-lifted ones each subscriber already uses and rates well, never one tied to their churn driver.",
                100.0 * artifact.touchpoints.churn_rate
            ),
        ));
    }

    if let Some(prev) = previous {
        let mv = Movement::between(prev, scored);
        let matrix = |title: &str, names: &[&str], counts: &[[u64; 3]; 3]| {
            let mut t = format!("<table class=\"matrix\"><tr><th>{title}: previous \\ now</th>");
            for n in names {
                let _ = write!(t, "<th>{n}</th>");
            }
            t.push_str("</tr>");
            for (r, name) in names.iter().enumerate() {
                let _ = write!(t, "<tr><th>{name}</th>");
                for count in &counts[r][..3] {
                    let _ = write!(t, "<td>{count}</td>");
                }
                t.push_str("</tr>");
            }
            t.push_str("</table>");
            t
        };
        let segments = ValueSegment::ALL.map(|s| s.name());
        charts.push((
            "movement",
            "Segment and risk movement",
            format!(
                "{}{}",
                matrix("value segment", &segments, &mv.segments),
                matrix("risk band", &RISK_BANDS, &mv.risk_bands)
            ),
            format!(
                "Since the previous run: {}. Risk bands: high = deciles 1–3, medium 4–7, low 8–10.",
                esc(&mv.summary())
            ),
        ));
    }

    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>churnseg report — {ver}</title><style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}}
h1{{font-size:1.6rem;margin-bottom:.2rem}} .sub{{color:#666;margin-top:0}}
.kpis{{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}} .kpi{{background:#f5f6f8;border-radius:8px;padding:.7rem 1rem;min-width:140px}}
.kpi b{{display:block;font-size:1.3rem}} .grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1.5rem}}
section{{border:1px solid #e3e3e3;border-radius:8px;padding:1rem}} section h2{{font-size:1.1rem;margin-top:0}} section p{{color:#444;font-size:.9rem}}
table.matrix{{border-collapse:collapse;width:100%}} table.matrix td,table.matrix th{{border:1px solid #ddd;padding:.5rem;font-size:.85rem;text-align:center}}
</style></head><body><h1>churnseg report</h1><p class="sub">model {ver} · trained on {asof} with a {h}-day horizon · {rows} subscribers scored</p><div class="kpis">"#,
        ver = esc(&artifact.model_version),
        asof = artifact.window.as_of,
        h = artifact.window.horizon_days,
        rows = scored.num_rows()
    );
    let kpis = [
        (
            "ROC AUC (".to_string() + &v.method.replace('_', "-") + ")",
            format!("{:.3}", v.churn.roc_auc),
        ),
        ("PR AUC".into(), format!("{:.3}", v.churn.pr_auc)),
        (
            "top-decile lift".into(),
            format!("{:.2}×", v.churn.lift_top_decile),
        ),
        (
            "top20 profit share".into(),
            format!("{:.0}%", 100.0 * whale.top20_profit_share),
        ),
        (
            "value at risk".into(),
            format!("{:.0}", var.iter().flatten().sum::<f64>()),
        ),
    ];
    for (k, val) in kpis {
        let _ = write!(
            html,
            "<div class=\"kpi\">{}<b>{}</b></div>",
            esc(&k),
            esc(&val)
        );
    }
    html.push_str("</div><div class=\"grid\">");
    for (id, title, body, note) in charts {
        let _ = write!(
            html,
            "<section id=\"{id}\"><h2>{title}</h2>{body}<p>{}</p></section>",
            esc(&note)
        );
    }
    html.push_str("</div></body></html>\n");
    html
}

/// Renders the report and writes it atomically.
pub fn write_report(
    path: &Path,
    scored: &RecordBatch,
    artifact: &ModelArtifact,
    previous: Option<&RecordBatch>,
) -> anyhow::Result<()> {
    write_bytes(path, render(scored, artifact, previous).as_bytes())?;
    Ok(())
}
