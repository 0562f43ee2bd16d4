//! Small, dependency-free SVG charts for the HTML report.
//!
//! Three kinds are enough for a run report: a [`LineChart`] of per-second
//! series with optional horizontal reference lines (Firehose's quota, drawn
//! red and dashed like the console's), fault windows (red) and phases
//! (grey) shaded behind; a [`PercentileChart`], latency against percentile
//! on HdrHistogram's log-scaled "1 − quantile" axis (p0 … p99.99, then the
//! maximum), one line per measure or run; and a [`BarChart`]. Axes get
//! "nice" ticks (1, 2, 5 × 10ⁿ) and labels; every text is escaped.
//!
//! Labels never overlap: each free label (a band's, a phase's, a
//! reference's) is placed by [`Labels`], which moves it down a row until
//! its estimated box is clear of those placed before (or leaves it to the
//! tooltip when there is no room), and legends wrap onto more rows, the
//! chart growing to hold them. Values are in tooltips (SVG `<title>`):
//! every line has hover points (at most [`HOVER_POINTS`] a line) naming the
//! series, the time and the value. `tests/peers/test_report_charts.py`
//! checks the real boxes in headless Chromium. Output is deterministic for
//! a given input, so reports diff cleanly.

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

/// The fills of phases, alternating: light greys under the fault bands.
const PHASE_FILLS: [&str; 2] = ["#eeeeee", "#f8f8f8"];

/// Hover points (tooltips) drawn on one line at most; a longer line gets every n-th.
pub(crate) const HOVER_POINTS: usize = 150;

/// Boxes of the free labels placed so far, so that none is drawn over another.
#[derive(Debug, Default)]
pub(crate) struct Labels {
    placed: Vec<(f64, f64, f64, f64)>,
}

/// A label's estimated width: sans-serif averages about 0.6 em a character.
fn text_width(text: &str, font: f64) -> f64 {
    text.chars().count() as f64 * font * 0.62
}

impl Labels {
    /// Where to put a label `size` = (width, font size) whose baseline
    /// would be at `at` = (x, y), anchored at its start (or its `end`, then
    /// x is its right end): the first baseline from y in `tries` = (step,
    /// rows) whose box is clear, or `None` when every row is taken.
    pub(crate) fn place(&mut self, at: (f64, f64), size: (f64, f64), end: bool, tries: (f64, usize)) -> Option<f64> {
        let ((x, y), (width, font), (step, rows)) = (at, size, tries);
        let left = if end { x - width } else { x };
        for row in 0..rows {
            let base = y + step * row as f64;
            let b = (left - 1.0, base - font, left + width + 1.0, base + 2.0);
            let clear = self.placed.iter().all(|p| b.2 <= p.0 || p.2 <= b.0 || b.3 <= p.1 || p.3 <= b.1);
            if clear {
                self.placed.push(b);
                return Some(base);
            }
        }
        None
    }
}

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
    /// The run's phases (and drain), shaded grey behind everything.
    pub(crate) phases: Vec<Band>,
    /// The unit the tooltips give the values in (`records/s`, `ms`).
    pub(crate) unit: String,
    /// The unit of x in the tooltips: `s` over time, `records/s` in a sweep.
    pub(crate) x_unit: String,
}

/// Latency against percentile, HdrHistogram style: x is
/// log10(1 / (1 − quantile)) from p0 to p99.99, then the maximum.
#[derive(Debug, Clone)]
pub(crate) struct PercentileChart {
    pub(crate) title: String,
    pub(crate) y_label: String,
    /// Each line's points are `(percentile 0–100, value)`; 100 is the maximum.
    pub(crate) lines: Vec<Line>,
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
    frame_of(out, HEIGHT, title, x_label, y_label);
}

/// The frame of a chart `height` tall (taller than [`HEIGHT`] when its legend needs rows).
fn frame_of(out: &mut String, height: f64, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{t}" font-family="sans-serif" font-size="12" style="max-width:100%;height:auto">"#,
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
        y = height - 6.0,
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

/// Legend entries laid out left to right, wrapping at the plot's right
/// edge: each entry's (x, row).
fn legend_layout(names: &[&str]) -> Vec<(f64, usize)> {
    let mut out = Vec::with_capacity(names.len());
    let (mut x, mut row) = (LEFT, 0);
    for name in names {
        let w = 24.0 + text_width(name, 12.0);
        if x > LEFT && x + w > WIDTH - RIGHT {
            (x, row) = (LEFT, row + 1);
        }
        out.push((x, row));
        x += w + 8.0;
    }
    out
}

/// Legend rows below the x axis' tick labels, [`LEGEND_ROW`] apart.
const LEGEND_ROW: f64 = 16.0;

fn legend(out: &mut String, lines: &[Line]) -> usize {
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    let layout = legend_layout(&names);
    for (line, (x, row)) in lines.iter().zip(&layout) {
        let y = HEIGHT - BOTTOM + 27.0 + LEGEND_ROW * *row as f64;
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{y}" width="12" height="4" fill="{c}"/><text x="{tx:.1}" y="{ty}">{n}</text>"#,
            c = line.color,
            tx = x + 16.0,
            ty = y + 5.0,
            n = escape(&line.name)
        );
    }
    layout.last().map_or(1, |(_, row)| row + 1)
}

/// How much taller than [`HEIGHT`] a chart with these lines' legend is.
fn extra_height(lines: &[Line]) -> f64 {
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    let rows = legend_layout(&names).last().map_or(1, |(_, row)| row + 1);
    LEGEND_ROW * (rows.saturating_sub(1)) as f64
}

/// Invisible hover points with a tooltip each, at most [`HOVER_POINTS`] a line.
fn hover_points(out: &mut String, line: &Line, at: impl Fn(f64, f64) -> (f64, f64), tip: impl Fn(f64, f64) -> String) {
    let stride = line.points.len().div_ceil(HOVER_POINTS).max(1);
    for &(x, y) in line.points.iter().step_by(stride) {
        let (cx, cy) = at(x, y);
        let _ = write!(
            out,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="{c}" fill-opacity="0"><title>{t}</title></circle>"#,
            c = line.color,
            t = escape(&tip(x, y))
        );
    }
}

/// A value for a tooltip: `1,234`, `0.25`, `12.5`.
fn tip_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = format!("{}", v.abs() as u64);
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if v < 0.0 { format!("-{grouped}") } else { grouped }
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl LineChart {
    /// The chart as a standalone `<svg>` element.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let height = HEIGHT + extra_height(&self.lines);
        frame_of(&mut out, height, &self.title, &self.x_label, &self.y_label);
        let mut labels = Labels::default();
        let points = self.lines.iter().flat_map(|l| l.points.iter());
        let band_end = self.bands.iter().chain(&self.phases).map(|b| b.until).fold(0.0, f64::max);
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
        let bottom = HEIGHT - BOTTOM;
        for (i, p) in self.phases.iter().enumerate() {
            let (x1, x2) = (x_of(p.from.max(0.0)), x_of(p.until.max(p.from)));
            let _ = write!(
                out,
                r#"<rect x="{x1:.1}" y="{TOP}" width="{w:.1}" height="{plot_h:.1}" fill="{f}"><title>{l}: {a}–{b} s</title></rect>"#,
                w = (x2 - x1).max(1.0),
                f = PHASE_FILLS[i % 2],
                l = escape(&p.label),
                a = tip_number((p.from * 10.0).round() / 10.0),
                b = tip_number((p.until * 10.0).round() / 10.0),
            );
        }
        y_axis(&mut out, &y_ticks, y_of);
        for p in &self.phases {
            // Named at the foot of its stretch when the name fits there; the tooltip names it always.
            let (x1, x2) = (x_of(p.from.max(0.0)), x_of(p.until.max(p.from)));
            let w = text_width(&p.label, 10.0);
            if w + 4.0 <= x2 - x1
                && let Some(y) = labels.place((x1 + 2.0, bottom - 4.0), (w, 10.0), false, (-12.0, 2))
            {
                let _ = write!(
                    out,
                    r##"<text x="{x:.1}" y="{y:.1}" fill="#666" font-size="10">{l}</text>"##,
                    x = x1 + 2.0,
                    l = escape(&p.label)
                );
            }
        }
        for b in &self.bands {
            // A window shorter than a pixel (a crash that restarts at once) stays visible.
            let (x1, x2) = (x_of(b.from.max(0.0)), x_of(b.until.max(b.from)));
            let _ = write!(
                out,
                r#"<rect x="{x1:.1}" y="{TOP}" width="{w:.1}" height="{plot_h:.1}" fill="{BAND_FILL}" fill-opacity="0.45"><title>{l}: {a}–{c} s</title></rect>"#,
                w = (x2 - x1).max(2.0),
                l = escape(&b.label),
                a = tip_number((b.from * 10.0).round() / 10.0),
                c = tip_number((b.until * 10.0).round() / 10.0),
            );
            let width = text_width(&b.label, 10.0);
            // Kept inside the plot: a band near the right edge is labelled leftwards.
            let x = (x1 + 2.0).min(WIDTH - RIGHT - width - 2.0).max(LEFT + 2.0);
            if let Some(y) = labels.place((x, TOP + 10.0), (width, 10.0), false, (12.0, 4)) {
                let _ = write!(
                    out,
                    r#"<text x="{x:.1}" y="{y:.1}" fill="{QUOTA_RED}" font-size="10">{l}</text>"#,
                    l = escape(&b.label)
                );
            }
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
        let above: Vec<String> = self.references.iter().filter(off_scale).map(|r| r.label.clone()).collect();
        if !above.is_empty() {
            // Between the title and the plot, all in one line: they cannot overlap each other.
            let _ = write!(
                out,
                r#"<text x="{tx}" y="{ty}" fill="{QUOTA_RED}" text-anchor="end">↑ {l} (above the chart)</text>"#,
                tx = WIDTH - RIGHT - 4.0,
                ty = TOP - 4.0,
                l = escape(&above.join(", "))
            );
        }
        let mut drawn: Vec<&Reference> = self.references.iter().filter(|r| !off_scale(r)).collect();
        drawn.sort_by(|a, b| b.value.total_cmp(&a.value));
        for r in drawn {
            let y = y_of(r.value);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="{c}" stroke-width="2" stroke-dasharray="6 4"><title>{l}</title></line>"##,
                c = r.color,
                x2 = WIDTH - RIGHT,
                l = escape(&r.label)
            );
            let width = text_width(&r.label, 12.0);
            // Above its line, or the next free row below when another label is there.
            let first = (y - 5.0).max(TOP + 12.0);
            if let Some(ty) = labels.place((WIDTH - RIGHT - 4.0, first), (width, 12.0), true, (14.0, 6)) {
                let _ = write!(
                    out,
                    r#"<text x="{tx}" y="{ty:.1}" fill="{c}" text-anchor="end">{l}</text>"#,
                    c = r.color,
                    tx = WIDTH - RIGHT - 4.0,
                    l = escape(&r.label)
                );
            }
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
        for line in &self.lines {
            hover_points(
                &mut out,
                line,
                |x, y| (x_of(x), y_of(y)),
                |x, y| format!("{} at {} {}: {} {}", line.name, tip_number(x), self.x_unit, tip_number(y), self.unit),
            );
        }
        legend(&mut out, &self.lines);
        out.push_str("</svg>");
        out
    }
}

/// Where a percentile sits on the curve's x axis: log10(1 / (1 − q)),
/// p99.99 at 4; the maximum (100) at [`MAX_AT`].
fn percentile_x(p: f64) -> f64 {
    if p >= 100.0 { MAX_AT } else { (1.0 / (1.0 - p / 100.0)).log10().clamp(0.0, 4.0) }
}

/// The maximum's place on a percentile curve, a half decade past p99.99.
const MAX_AT: f64 = 4.5;

/// A percentile as its label says it: `p99.9`, `p50`.
fn percentile_label(p: f64) -> String {
    if p >= 100.0 { "max".to_owned() } else { format!("p{}", tip_number((p * 100.0).round() / 100.0)) }
}

impl PercentileChart {
    /// The chart as a standalone `<svg>` element.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let height = HEIGHT + extra_height(&self.lines);
        frame_of(&mut out, height, &self.title, "percentile (log scale of 1 / (1 − quantile))", &self.y_label);
        let y_max = self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max) * 1.08;
        let y_ticks = nice_ticks(y_max);
        let y_top = y_ticks.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let x_of = |p: f64| LEFT + percentile_x(p) / MAX_AT * plot_w;
        let y_of = |y: f64| TOP + plot_h - y / y_top * plot_h;
        y_axis(&mut out, &y_ticks, y_of);
        for (p, label) in
            [(0.0, "p0"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9"), (99.99, "p99.99"), (100.0, "max")]
        {
            let x = x_of(p);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{b}" stroke="#e3e3e3"/><text x="{x:.1}" y="{ty}" text-anchor="middle">{label}</text>"##,
                b = HEIGHT - BOTTOM,
                ty = HEIGHT - BOTTOM + 16.0,
            );
        }
        for line in &self.lines {
            if line.points.is_empty() {
                continue;
            }
            let path: Vec<String> =
                line.points.iter().map(|&(p, y)| format!("{:.1},{:.1}", x_of(p), y_of(y))).collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"><title>{n}</title></polyline>"#,
                c = line.color,
                p = path.join(" "),
                n = escape(&line.name)
            );
            hover_points(
                &mut out,
                line,
                |p, y| (x_of(p), y_of(y)),
                |p, y| format!("{} {}: {} {}", line.name, percentile_label(p), tip_number(y), self.y_label),
            );
        }
        legend(&mut out, &self.lines);
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
            phases: vec![],
            unit: "records/s".into(),
            x_unit: "s".into(),
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
            phases: vec![],
            unit: "records/s".into(),
            x_unit: "s".into(),
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
            phases: vec![],
            unit: String::new(),
            x_unit: "s".into(),
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
            phases: vec![Band { label: "drain".into(), from: 0.0, until: 0.0 }],
            unit: String::new(),
            x_unit: "s".into(),
        };
        assert!(!chart.render().contains("NaN"));
        let bars = BarChart { title: "b".into(), y_label: "ms".into(), bars: vec![] };
        assert!(!bars.render().contains("NaN"));
    }

    #[test]
    fn labels_move_to_a_free_row_or_give_up() {
        let mut labels = Labels::default();
        assert_eq!(labels.place((100.0, 50.0), (60.0, 10.0), false, (12.0, 3)), Some(50.0));
        // Overlapping the first: one row down.
        assert_eq!(labels.place((130.0, 50.0), (60.0, 10.0), false, (12.0, 3)), Some(62.0));
        // Right-anchored, ending at 170: still over both, so the third row.
        assert_eq!(labels.place((170.0, 50.0), (40.0, 10.0), true, (12.0, 3)), Some(74.0));
        assert_eq!(labels.place((120.0, 50.0), (10.0, 10.0), false, (12.0, 3)), None, "every row taken");
        // Clear of them all: where asked.
        assert_eq!(labels.place((400.0, 50.0), (60.0, 10.0), false, (12.0, 3)), Some(50.0));
    }

    #[test]
    fn phases_are_shaded_and_named_when_they_fit_and_lines_have_tooltips() {
        let chart = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            lines: vec![Line {
                name: "accepted".into(),
                color: "#000",
                points: (0..400).map(|t| (t as f64, 5.0)).collect(),
            }],
            references: vec![
                Reference { label: "quota 10 records/s".into(), value: 10.0, color: QUOTA_RED },
                Reference { label: "highest rate without throttling 9.9/s".into(), value: 9.9, color: "#2ca02c" },
            ],
            bands: vec![],
            phases: vec![
                Band { label: "w".into(), from: 0.0, until: 0.5 },
                Band { label: "steady".into(), from: 0.5, until: 300.0 },
                Band { label: "drain".into(), from: 300.0, until: 399.0 },
            ],
            unit: "records/s".into(),
            x_unit: "s".into(),
        };
        let svg = chart.render();
        assert_eq!(svg.matches("<title>steady: 0.5–300 s</title>").count(), 1, "{svg}");
        assert!(svg.contains(">steady</text>") && svg.contains(">drain</text>"));
        assert!(!svg.contains(">w</text>"), "too narrow to name: the tooltip does");
        // 400 points: every 3rd gets a hover point.
        assert_eq!(svg.matches("<title>accepted at ").count(), 134);
        assert!(svg.contains("<title>accepted at 3 s: 5 records/s</title>"));
        // Two references a pixel apart: their labels on two rows.
        let y = |label: &str| {
            let at = svg.find(&format!(">{label}</text>")).unwrap();
            let start = svg[..at].rfind(" y=\"").unwrap() + 4;
            svg[start..start + svg[start..].find('"').unwrap()].parse::<f64>().unwrap()
        };
        assert!((y("highest rate without throttling 9.9/s") - y("quota 10 records/s")).abs() >= 12.0);
    }

    #[test]
    fn a_legend_too_wide_for_one_row_wraps_and_the_chart_grows() {
        let lines: Vec<Line> = (0..8)
            .map(|i| Line { name: format!("run-{i} of the candidate side"), color: "#000", points: vec![(0.0, 1.0)] })
            .collect();
        let chart = PercentileChart { title: "e2e".into(), y_label: "ms".into(), lines };
        let svg = chart.render();
        let height: f64 = svg.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(height > HEIGHT, "{height}");
        let rows = legend_layout(&["run-0 of the candidate side"; 8]);
        assert!(rows.iter().all(|(x, _)| *x + 24.0 + text_width("run-0 of the candidate side", 12.0) <= WIDTH - RIGHT));
    }

    #[test]
    fn percentiles_sit_on_a_log_scale_of_one_over_one_minus_q() {
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(90.0) - 1.0).abs() < 1e-9 && (percentile_x(99.99) - 4.0).abs() < 1e-6);
        assert_eq!(percentile_x(100.0), MAX_AT);
        let chart = PercentileChart {
            title: "put_record_batch latency".into(),
            y_label: "ms".into(),
            lines: vec![Line {
                name: "base".into(),
                color: "#000",
                points: vec![(0.0, 1.0), (99.9, 8.0), (100.0, 12.5)],
            }],
        };
        let svg = chart.render();
        for tick in [">p0<", ">p90<", ">p99<", ">p99.9<", ">p99.99<", ">max<"] {
            assert!(svg.contains(tick), "{tick}");
        }
        assert!(svg.contains("<title>base p99.9: 8 ms</title>") && svg.contains("<title>base max: 12.5 ms</title>"));
    }
}
