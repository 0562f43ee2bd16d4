//! Small, dependency-free SVG charts for the HTML report.
//!
//! Two kinds are enough for a run report: a [`LineChart`] of per-second
//! series with optional horizontal reference lines (Firehose's quota, drawn
//! red and dashed like the console's), and a [`BarChart`] (a latency
//! distribution by percentile). Axes get "nice" ticks (1, 2, 5 × 10ⁿ) and
//! labels; every text is escaped. Output is deterministic for a given
//! input, so reports diff cleanly.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) name: String,
    pub(crate) color: &'static str,
    pub(crate) points: Vec<(f64, f64)>,
}

/// A horizontal, dashed reference line: a quota (red) or a finding.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) color: &'static str,
}

/// A shaded stretch of the x axis: a fault's window, labelled at its top.
#[derive(Debug, Clone)]
pub(crate) struct Band {
    pub(crate) label: String,
    pub(crate) from: f64,
    pub(crate) until: f64,
}

/// The fill of fault bands: a light red that lines stay readable over.
const BAND_FILL: &str = "#f4b6b6";

/// A reference more than this many times the largest value is named, not drawn.
const OFF_SCALE: f64 = 5.0;

/// The colour of quota lines, as in the Firehose console.
pub(crate) const QUOTA_RED: &str = "#d62728";

/// A line chart over time.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) lines: Vec<Line>,
    pub(crate) references: Vec<Reference>,
    /// Fault windows, shaded behind the lines.
    pub(crate) bands: Vec<Band>,
}

/// A bar chart of labelled values.
#[derive(Debug, Clone)]
pub(crate) struct BarChart {
    pub(crate) title: String,
    pub(crate) y_label: String,
    pub(crate) bars: Vec<(String, f64)>,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 66.0;

/// Escapes text for XML content and attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Tick values covering `0..=max` at a 1, 2 or 5 × 10ⁿ step.
pub(crate) fn nice_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= rough).unwrap_or(10.0 * magnitude);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A tick label: 1.5k, 2M, 0.25.
pub(crate) fn short_number(v: f64) -> String {
    let a = v.abs();
    let (n, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if n.fract() == 0.0 { format!("{n:.0}") } else { format!("{n:.2}") };
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text };
    format!("{text}{suffix}")
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{t}" font-family="sans-serif" font-size="12">"#,
        t = escape(title)
    );
    let _ = write!(
        out,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="{x}" y="20" font-size="15" font-weight="bold" text-anchor="middle">{t}</text>"##,
        x = WIDTH / 2.0,
        t = escape(title)
    );
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y}" text-anchor="middle">{l}</text>"#,
        x = LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        y = HEIGHT - 6.0,
        l = escape(x_label)
    );
    let _ = write!(
        out,
        r#"<text transform="translate(16 {y}) rotate(-90)" text-anchor="middle">{l}</text>"#,
        y = TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        l = escape(y_label)
    );
}

fn y_axis(out: &mut String, ticks: &[f64], y_of: impl Fn(f64) -> f64) {
    for &t in ticks {
        let y = y_of(t);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            v = short_number(t)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#333"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/>"##,
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT
    );
}

impl LineChart {
    /// The chart as a standalone `<svg>` element.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        frame(&mut out, &self.title, &self.x_label, &self.y_label);
        let points = self.lines.iter().flat_map(|l| l.points.iter());
        let band_end = self.bands.iter().map(|b| b.until).fold(0.0, f64::max);
        let x_max = points.clone().map(|p| p.0).fold(band_end, f64::max).max(1.0);
        let data_max = points.map(|p| p.1).fold(0.0, f64::max);
        // A reference far above the data (a quota 100× the load) would
        // flatten every line onto the axis: it is named at the top instead.
        let off_scale = |r: &&Reference| data_max > 0.0 && r.value > data_max * OFF_SCALE;
        let y_max = self.references.iter().filter(|r| !off_scale(r)).map(|r| r.value).fold(data_max, f64::max) * 1.08;
        let y_ticks = nice_ticks(y_max);
        let y_top = y_ticks.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let x_of = |x: f64| LEFT + x / x_max * plot_w;
        let y_of = |y: f64| TOP + plot_h - y / y_top * plot_h;
        y_axis(&mut out, &y_ticks, y_of);
        for b in &self.bands {
            // A window shorter than a pixel (a crash that restarts at once) stays visible.
            let (x1, x2) = (x_of(b.from.max(0.0)), x_of(b.until.max(b.from)));
            let _ = write!(
                out,
                r#"<rect x="{x1:.1}" y="{TOP}" width="{w:.1}" height="{plot_h:.1}" fill="{BAND_FILL}" fill-opacity="0.45"><title>{l}</title></rect><text x="{tx:.1}" y="{ty}" fill="{QUOTA_RED}" font-size="10">{l}</text>"#,
                w = (x2 - x1).max(2.0),
                tx = x1 + 2.0,
                ty = TOP + 10.0,
                l = escape(&b.label)
            );
        }
        for t in nice_ticks(x_max) {
            if t > x_max {
                break;
            }
            let _ = write!(
                out,
                r#"<text x="{x:.1}" y="{y}" text-anchor="middle">{v}</text>"#,
                x = x_of(t),
                y = HEIGHT - BOTTOM + 16.0,
                v = short_number(t)
            );
        }
        for r in self.references.iter().filter(off_scale) {
            let _ = write!(
                out,
                r#"<text x="{tx}" y="{ty}" fill="{c}" text-anchor="end">↑ {l} (above the chart)</text>"#,
                tx = WIDTH - RIGHT - 4.0,
                ty = TOP + 12.0,
                c = r.color,
                l = escape(&r.label)
            );
        }
        for r in self.references.iter().filter(|r| !off_scale(r)) {
            let y = y_of(r.value);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="{c}" stroke-width="2" stroke-dasharray="6 4"/><text x="{tx}" y="{ty:.1}" fill="{c}" text-anchor="end">{l}</text>"##,
                c = r.color,
                x2 = WIDTH - RIGHT,
                tx = WIDTH - RIGHT - 4.0,
                ty = y - 5.0,
                l = escape(&r.label)
            );
        }
        for line in &self.lines {
            if line.points.is_empty() {
                continue;
            }
            let path: Vec<String> =
                line.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", x_of(x), y_of(y))).collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"><title>{n}</title></polyline>"#,
                c = line.color,
                p = path.join(" "),
                n = escape(&line.name)
            );
        }
        // Legend under the x axis labels.
        let mut x = LEFT;
        for line in &self.lines {
            let _ = write!(
                out,
                r#"<rect x="{x}" y="{y}" width="12" height="4" fill="{c}"/><text x="{tx}" y="{ty}">{n}</text>"#,
                y = HEIGHT - BOTTOM + 27.0,
                c = line.color,
                tx = x + 16.0,
                ty = HEIGHT - BOTTOM + 32.0,
                n = escape(&line.name)
            );
            x += 24.0 + 7.0 * line.name.chars().count() as f64;
        }
        out.push_str("</svg>");
        out
    }
}

impl BarChart {
    /// The chart as a standalone `<svg>` element.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        frame(&mut out, &self.title, "", &self.y_label);
        let y_max = self.bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.08;
        let y_ticks = nice_ticks(y_max);
        let y_top = y_ticks.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let y_of = |y: f64| TOP + plot_h - y / y_top * plot_h;
        y_axis(&mut out, &y_ticks, y_of);
        let slot = plot_w / self.bars.len().max(1) as f64;
        for (i, (label, value)) in self.bars.iter().enumerate() {
            let x = LEFT + slot * i as f64 + slot * 0.2;
            let y = y_of(*value);
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#1f77b4"/><text x="{cx:.1}" y="{ly:.1}" text-anchor="middle">{v}</text><text x="{cx:.1}" y="{lb}" text-anchor="middle">{l}</text>"##,
                w = slot * 0.6,
                h = (HEIGHT - BOTTOM - y).max(0.0),
                cx = x + slot * 0.3,
                ly = y - 4.0,
                v = short_number(*value),
                lb = HEIGHT - BOTTOM + 16.0,
                l = escape(label)
            );
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_cover_the_maximum() {
        assert_eq!(nice_ticks(9.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(540_000.0).last(), Some(&600_000.0));
        assert_eq!(nice_ticks(0.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert!(nice_ticks(f64::NAN).len() > 1);
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(500_000.0), "500k");
        assert_eq!(short_number(5_242_880.0), "5.24M");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(12.0), "12");
    }

    #[test]
    fn line_chart_draws_lines_quota_and_escaped_labels() {
        let chart = LineChart {
            title: "Incoming <records>/s".into(),
            x_label: "seconds".into(),
            y_label: "records/s".into(),
            lines: vec![Line { name: "accepted".into(), color: "#1f77b4", points: vec![(0.0, 1.0), (1.0, 2.0)] }],
            references: vec![Reference { label: "quota 500k/s".into(), value: 3.0, color: QUOTA_RED }],
            bands: vec![],
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Incoming &lt;records&gt;/s"));
        assert!(svg.contains("stroke-dasharray"), "quota line");
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("quota 500k/s"));
    }

    #[test]
    fn a_quota_far_above_the_data_is_named_not_drawn() {
        let chart = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            lines: vec![Line { name: "accepted".into(), color: "#1f77b4", points: vec![(0.0, 2000.0), (1.0, 2100.0)] }],
            references: vec![Reference { label: "quota 500k records/s".into(), value: 500_000.0, color: QUOTA_RED }],
            bands: vec![],
        };
        let svg = chart.render();
        assert!(svg.contains("↑ quota 500k records/s (above the chart)"), "{svg}");
        assert!(!svg.contains("stroke-dasharray"), "no line drawn at 500k");
        assert!(!svg.contains(">600k<"), "the axis follows the data, not the quota");
    }

    #[test]
    fn a_fault_band_is_shaded_over_its_window_with_its_label() {
        let chart = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            lines: vec![Line { name: "a".into(), color: "#000", points: vec![(0.0, 1.0), (10.0, 1.0)] }],
            references: vec![],
            bands: vec![Band { label: "registry_down <refuse>".into(), from: 2.0, until: 4.0 }],
        };
        let svg = chart.render();
        // x 2..4 of 0..10 over the 662-pixel plot from x = 78.
        assert!(svg.contains(r#"<rect x="210.4" y="36" width="132.4""#), "{svg}");
        assert!(svg.contains("registry_down &lt;refuse&gt;"), "{svg}");
    }

    #[test]
    fn empty_charts_still_render() {
        let chart = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            lines: vec![Line { name: "none".into(), color: "#000", points: vec![] }],
            references: vec![],
            bands: vec![Band { label: "processor_crash".into(), from: 0.0, until: 0.0 }],
        };
        assert!(!chart.render().contains("NaN"));
        let bars = BarChart { title: "b".into(), y_label: "ms".into(), bars: vec![] };
        assert!(!bars.render().contains("NaN"));
    }
}
