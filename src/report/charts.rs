//! The report's charts, drawn with plotters' SVG backend (only `svg_backend`, so no
//! fonts are loaded: text is left to the browser). plotters chooses the axis ticks, so
//! they fall on round numbers (0, 0.2, 0.4 … or 0, 500, 1,000 …). Each function returns
//! one `<svg>` element; the template places it.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::error::ReportError;
use super::format::grouped;

/// Width and height of every chart, in pixels.
const SIZE: (u32, u32) = (560, 300);

/// The colours the charts use, by role.
pub mod colour {
    use plotters::style::RGBColor;
    pub const RISK: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
    pub const MODEL: RGBColor = RGBColor(0x2c, 0x7f, 0xb8);
    pub const VALUE: RGBColor = RGBColor(0x2d, 0x6a, 0x4f);
    pub const MARK: RGBColor = RGBColor(0xe6, 0x7e, 0x22);
    pub const GUIDE: RGBColor = RGBColor(0x99, 0x99, 0x99);
    pub const IMPORTANCE: RGBColor = RGBColor(0x6c, 0x5c, 0xe7);
    pub const DRIVER: RGBColor = RGBColor(0xd3, 0x54, 0x00);
    pub const ACTION: RGBColor = RGBColor(0x16, 0xa0, 0x85);
    pub const STAGE: RGBColor = RGBColor(0x83, 0x4e, 0xa8);
    pub const TOUCHPOINT: RGBColor = RGBColor(0x2e, 0x86, 0xde);
}

fn chart_error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Chart(e.to_string())
}

/// A tick label: thousands grouped, at most four decimals, trailing zeros dropped.
pub fn tick(value: f64) -> String {
    let mut text = grouped(value, 4);
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    if text == "-0" { "0".to_string() } else { text }
}

/// Draws on a fresh SVG canvas and returns the markup.
fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), ReportError>,
) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        draw(&root)?;
        root.present().map_err(chart_error)?;
    }
    Ok(out)
}

/// The largest value of `values` and 0, padded by 10% for headroom (1 when all are 0).
fn headroom(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if max > 0.0 { max * 1.1 } else { 1.0 }
}

/// The label under (or beside) a bar: its name at the bar's centre, nothing elsewhere.
fn bar_label(bars: &[(String, f64)], at: &SegmentValue<u32>) -> String {
    match at {
        SegmentValue::CenterOf(i) => bars
            .get(*i as usize)
            .map(|b| b.0.clone())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Vertical bars, one per labelled value.
pub fn bars(
    x_desc: &str,
    y_desc: &str,
    bars: &[(String, f64)],
    fill: RGBColor,
) -> Result<String, ReportError> {
    let y_max = headroom(bars.iter().map(|b| b.1));
    let n = bars.len().max(1) as u32;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..y_max)
            .map_err(chart_error)?;
        let label = |v: &SegmentValue<u32>| bar_label(bars, v);
        chart
            .configure_mesh()
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 12))
            .disable_x_mesh()
            .x_labels(bars.len().max(1))
            .x_label_formatter(&label)
            .y_label_formatter(&|v| tick(*v))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let i = i as u32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), v.max(0.0)),
                    ],
                    fill.filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                bar
            }))
            .map_err(chart_error)?;
        Ok(())
    })
}

/// Horizontal bars for long labels (feature and touchpoint names); negative values grow
/// left of zero, in red.
pub fn hbars(x_desc: &str, bars: &[(String, f64)], fill: RGBColor) -> Result<String, ReportError> {
    let hi = bars
        .iter()
        .map(|b| b.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let lo = bars
        .iter()
        .map(|b| b.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min);
    let (lo, hi) = if hi - lo > 0.0 {
        (lo * 1.1, hi * 1.1)
    } else {
        (0.0, 1.0)
    };
    let n = bars.len().max(1) as u32;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(190)
            .build_cartesian_2d(lo..hi, (0..n).into_segmented())
            .map_err(chart_error)?;
        let label = |v: &SegmentValue<u32>| bar_label(bars, v);
        chart
            .configure_mesh()
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 12))
            .disable_y_mesh()
            .y_labels(bars.len().max(1))
            .y_label_formatter(&label)
            .x_label_formatter(&|v| tick(*v))
            .x_desc(x_desc)
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let i = i as u32;
                let colour = if *v < 0.0 { colour::RISK } else { fill };
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*v, SegmentValue::Exact(i + 1)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(chart_error)?;
        Ok(())
    })
}

/// One line of a line chart.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
    pub dashed: bool,
    /// Draw a dot at each point (for few points, such as one per night).
    pub dots: bool,
}

/// A vertical mark across a line chart, with a label at its top.
pub struct Mark {
    pub x: f64,
    pub label: String,
}

/// The axes of a line chart.
pub struct Axes<'a> {
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// How an x tick reads (e.g. a day number as a date).
    pub x_label: &'a dyn Fn(f64) -> String,
}

/// Lines on shared axes; a legend when more than one line is labelled.
pub fn lines(axes: &Axes, lines: &[Line], marks: &[Mark]) -> Result<String, ReportError> {
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(axes.x.clone(), axes.y.clone())
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 12))
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v| (axes.x_label)(*v))
            .y_label_formatter(&|v| tick(*v))
            .x_desc(axes.x_desc)
            .y_desc(axes.y_desc)
            .draw()
            .map_err(chart_error)?;
        for mark in marks {
            let top = axes.y.end;
            chart
                .draw_series(DashedLineSeries::new(
                    [(mark.x, axes.y.start), (mark.x, top)],
                    4,
                    3,
                    colour::MARK.stroke_width(1),
                ))
                .map_err(chart_error)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    mark.label.clone(),
                    (mark.x, top),
                    ("sans-serif", 12).into_font().color(&colour::MARK),
                )))
                .map_err(chart_error)?;
        }
        let mut labelled = 0;
        for line in lines {
            let style = line.colour.stroke_width(2);
            let series = if line.dashed {
                chart.draw_series(DashedLineSeries::new(
                    line.points.iter().copied(),
                    4,
                    3,
                    style,
                ))
            } else {
                chart.draw_series(LineSeries::new(line.points.iter().copied(), style))
            }
            .map_err(chart_error)?;
            if !line.label.is_empty() {
                labelled += 1;
                let colour = line.colour;
                series.label(line.label.clone()).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            }
            if line.dots {
                chart
                    .draw_series(
                        line.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, line.colour.filled())),
                    )
                    .map_err(chart_error)?;
            }
        }
        if labelled > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(colour::GUIDE)
                .draw()
                .map_err(chart_error)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_as_round_numbers() {
        assert_eq!(tick(0.2), "0.2");
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(2500.0), "2,500");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-0.00001), "0");
    }

    #[test]
    fn a_bar_chart_is_one_svg_with_round_ticks() {
        let svg = bars(
            "driver",
            "subscribers",
            &[("service".into(), 4340.0), ("price".into(), 1210.0)],
            colour::DRIVER,
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("service") && svg.contains("price"), "{svg}");
        // plotters picks round steps: 1,000 is a tick; 4.34-style fractions are not
        assert!(svg.contains("\n1,000\n"), "{svg}");
        assert!(!svg.contains("4.34"), "{svg}");
    }

    #[test]
    fn a_line_chart_draws_every_line_and_mark() {
        let axes = Axes {
            x: 0.0..1.0,
            y: 0.0..1.0,
            x_desc: "predicted",
            y_desc: "observed",
            x_label: &tick,
        };
        let svg = lines(
            &axes,
            &[Line {
                label: "model".into(),
                points: vec![(0.1, 0.2), (0.5, 0.4)],
                colour: colour::MODEL,
                dashed: false,
                dots: true,
            }],
            &[Mark {
                x: 0.2,
                label: "top 20%".into(),
            }],
        )
        .unwrap();
        assert!(svg.contains("top 20%"), "{svg}");
        assert!(svg.contains("<circle"), "{svg}");
    }
}
