//! The report's SVG plots, drawn with plotters' SVG backend into strings.
//! Each returns the `<svg>` element, or why it could not be drawn.

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::super::histogram;
use super::super::summary::{Summary, TimelinePoint};
use super::super::thresholds::Wave;

const W: u32 = 1180;
const H: u32 = 330;
/// Plotters writes font sizes / 1.24 into the SVG: 16 here is 13 px.
const FONT: &str = "sans-serif";
/// SBC line colours: no red nor green, which mark the fault waves.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(90, 90, 90),
];
const FAILOVER: RGBColor = RGBColor(214, 39, 40);
const FAILBACK: RGBColor = RGBColor(44, 160, 44);
const GRID: RGBColor = RGBColor(235, 238, 242);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Plot<'a, 'b, Y> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws into a fresh SVG string with `draw`, turning any error into text.
fn svg(draw: impl FnOnce(&Area) -> DrawResult) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn seconds(t_ms: u64) -> f64 {
    t_ms as f64 / 1000.0
}

/// The time axis: 0 to the last point (at least one second).
fn x_max(s: &Summary) -> f64 {
    s.timeline
        .iter()
        .map(|p| seconds(p.t_ms))
        .fold(1.0, f64::max)
}

fn chart<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    x_max: f64,
    y_max: f64,
    y_desc: &str,
) -> Result<Plot<'a, 'b, plotters::coord::types::RangedCoordf64>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 24))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(78)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .x_desc("time from start (s)")
        .y_desc(y_desc)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 16))
        .x_labels(16)
        .y_labels(8)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .draw()?;
    Ok(chart)
}

/// Axis numbers without noise: 12k rather than 12000.000, 2.5 rather
/// than 2 (a tick between two integers keeps its decimals).
fn short(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        let k = format!("{:.1}", v / 1000.0);
        format!("{}k", k.trim_end_matches(".0"))
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Rows of wave labels at most, from the top of a plot.
const LABEL_ROWS: usize = 4;

/// Failover and failback waves: a band from first to last move, a line
/// at the first, and a label on top; a label that would overlap the
/// previous one goes down a row, and past [`LABEL_ROWS`] rows it is left
/// out (the waves table has them all).
fn markers(
    chart: &mut Plot<'_, '_, plotters::coord::types::RangedCoordf64>,
    waves: &[Wave],
    x_max: f64,
    y_max: f64,
) -> DrawResult {
    let plot_px = f64::from(W) - 100.0;
    let per_px = x_max / plot_px;
    let mut row_ends: Vec<f64> = Vec::new();
    // Waves outside the timeline (a summary whose faults outlast it) would
    // be drawn past the axis.
    for w in waves.iter().filter(|w| seconds(w.start_ms) <= x_max) {
        let color = if w.kind == "failover" {
            FAILOVER
        } else {
            FAILBACK
        };
        let start = seconds(w.start_ms);
        let end = seconds(w.end_ms).max(start + 2.0 * per_px).min(x_max);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(start, 0.0), (end, y_max)],
            color.mix(0.12).filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(start, 0.0), (start, y_max)],
            color.stroke_width(1),
        )))?;
        let label = format!("{} {:.0} s", w.kind, start);
        let width = label.len() as f64 * 7.0 * per_px;
        let row = match row_ends.iter().position(|&e| e < start) {
            Some(r) => r,
            None if row_ends.len() < LABEL_ROWS => {
                row_ends.push(f64::MIN);
                row_ends.len() - 1
            }
            // A flapping SBC: the band says it, the table lists them.
            None => continue,
        };
        row_ends[row] = start + width + 8.0 * per_px;
        let y = y_max * (0.985 - 0.075 * row as f64);
        chart.draw_series(std::iter::once(Text::new(
            label,
            (start + 4.0 * per_px, y),
            TextStyle::from((FONT, 16).into_font()).color(&color),
        )))?;
    }
    Ok(())
}

fn legend<'a, 'b: 'a>(
    chart: &mut Plot<'a, 'b, plotters::coord::types::RangedCoordf64>,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 205, 212))
        .label_font((FONT, 16))
        .draw()?;
    Ok(())
}

/// (a) Registered lines per SBC, and all of them, at each interval's end.
pub fn registered(s: &Summary, waves: &[Wave]) -> Result<String, String> {
    let sbcs: BTreeSet<&String> = s
        .timeline
        .iter()
        .flat_map(|p| p.registered_by_sbc.keys())
        .collect();
    let top = s
        .timeline
        .iter()
        .map(|p| p.registered)
        .chain([s.lines.configured])
        .max()
        .unwrap_or(0);
    let y_max = (top as f64 * 1.1).max(1.0);
    let x_max = x_max(s);
    svg(|root| {
        let mut chart = chart(
            root,
            "Registered lines per SBC",
            x_max,
            y_max,
            "lines registered",
        )?;
        markers(&mut chart, waves, x_max, y_max)?;
        for (i, sbc) in sbcs.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    s.timeline.iter().map(|p| {
                        let n = p.registered_by_sbc.get(*sbc).copied().unwrap_or(0);
                        (seconds(p.t_ms), n as f64)
                    }),
                    color.stroke_width(3),
                ))?
                .label(sbc.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        // Drawn last, over the per-SBC lines it would hide under when one
        // SBC holds every line.
        let total = RGBColor(40, 40, 40);
        chart
            .draw_series(LineSeries::new(
                s.timeline
                    .iter()
                    .map(|p| (seconds(p.t_ms), p.registered as f64)),
                total.stroke_width(2),
            ))?
            .label("all SBCs")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], total.stroke_width(2))
            });
        legend(&mut chart)
    })
}

/// (b) REGISTER transactions started per second, per interval.
pub fn register_rate(s: &Summary, waves: &[Wave]) -> Result<String, String> {
    let rate = |r: f64| if r.is_finite() { r } else { 0.0 };
    let top = s
        .timeline
        .iter()
        .map(|p| rate(p.register_rate))
        .fold(0.0, f64::max);
    let y_max = (top * 1.15).max(1.0);
    let x_max = x_max(s);
    svg(|root| {
        let mut chart = chart(root, "REGISTER rate", x_max, y_max, "REGISTERs per second")?;
        markers(&mut chart, waves, x_max, y_max)?;
        let color = PALETTE[0];
        chart.draw_series(
            AreaSeries::new(
                s.timeline
                    .iter()
                    .map(|p| (seconds(p.t_ms), rate(p.register_rate))),
                0.0,
                color.mix(0.25),
            )
            .border_style(color.stroke_width(2)),
        )?;
        Ok(())
    })
}

/// Runs of consecutive points where `f` has a value (not 0): a gap in the
/// line where no attempt ended rather than a fall to 0.
fn runs(s: &Summary, f: impl Fn(&TimelinePoint) -> u64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![];
    let mut current: Vec<(f64, f64)> = vec![];
    for p in &s.timeline {
        let v = f(p);
        if v == 0 {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push((seconds(p.t_ms), v as f64));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Reads one figure of a timeline point.
type Field = fn(&TimelinePoint) -> u64;

/// (c) Registration latency p50 and p99 of the attempts that ended in
/// each interval.
pub fn latency(s: &Summary, waves: &[Wave]) -> Result<String, String> {
    let top = s
        .timeline
        .iter()
        .map(|p| p.latency_p99_ms.max(p.latency_p50_ms))
        .max()
        .unwrap_or(0);
    let y_max = (top as f64 * 1.15).max(1.0);
    let x_max = x_max(s);
    svg(|root| {
        let mut chart = chart(
            root,
            "Registration latency per interval",
            x_max,
            y_max,
            "ms",
        )?;
        markers(&mut chart, waves, x_max, y_max)?;
        let series: [(&str, RGBColor, Field); 2] = [
            ("p99", PALETTE[1], |p| p.latency_p99_ms),
            ("p50", PALETTE[0], |p| p.latency_p50_ms),
        ];
        for (name, color, f) in series {
            let mut first = true;
            for run in runs(s, f) {
                let dots = run.clone();
                let line = chart.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
                if first {
                    line.label(name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                    first = false;
                }
                // A lone point draws no line: mark every point.
                chart.draw_series(
                    dots.into_iter()
                        .map(|xy| Circle::new(xy, 2, color.filled())),
                )?;
            }
        }
        legend(&mut chart)
    })
}

/// Bars of the whole run's latency histogram.
const BARS: u64 = 60;

/// (d) The registration latency histogram: `BARS` bars from 0 to the
/// largest value, or to 1.5 x p99.9 when a few outliers would squash the
/// rest (how many are beyond is said on the plot).
pub fn histogram(s: &Summary) -> Result<String, String> {
    let h = histogram::decode(&s.register_latency_ms).map_err(|e| e.to_string())?;
    if h.is_empty() {
        return Err("no registration completed, so there is no latency to show".into());
    }
    let (p50, p99, p999, max) = (
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
    );
    let shown = if max <= p999.saturating_mul(2) {
        max
    } else {
        p999 + p999 / 2
    }
    .max(BARS);
    let step = shown.div_ceil(BARS).max(1);
    let mut bars = vec![0u64; BARS as usize];
    let mut beyond = 0u64;
    for v in h.iter_recorded() {
        let i = (v.value_iterated_to() / step) as usize;
        match bars.get_mut(i) {
            Some(b) => *b += v.count_at_value(),
            None => beyond += v.count_at_value(),
        }
    }
    let top = bars.iter().copied().max().unwrap_or(0);
    let y_max = (top as f64 * 1.15).max(1.0);
    let x_max = (step * BARS) as f64;
    svg(|root| {
        let title = format!("Registration latency, {} registrations", h.len());
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(78)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_desc("latency (ms)")
            .y_desc("registrations")
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 16))
            .x_labels(16)
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .draw()?;
        let color = PALETTE[0];
        chart.draw_series(bars.iter().enumerate().map(|(i, &n)| {
            let x0 = (i as u64 * step) as f64;
            Rectangle::new(
                [(x0, 0.0), (x0 + step as f64 * 0.9, n as f64)],
                color.filled(),
            )
        }))?;
        for (name, v, c) in [("p50", p50, FAILBACK), ("p99", p99, FAILOVER)] {
            let x = v as f64;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, y_max)],
                c.stroke_width(2),
            )))?;
            // Near the right edge the label goes left of its line, not
            // off the plot.
            let label = format!("{name} {v} ms");
            let at = if x > x_max * 0.8 {
                x - x_max * (label.len() as f64 * 0.011 + 0.01)
            } else {
                x + x_max / 300.0
            };
            let row = if name == "p50" { 0.97 } else { 0.90 };
            chart.draw_series(std::iter::once(Text::new(
                label,
                (at, y_max * row),
                TextStyle::from((FONT, 16).into_font()).color(&c),
            )))?;
        }
        if beyond > 0 {
            chart.draw_series(std::iter::once(Text::new(
                format!("{beyond} beyond {} ms, up to {max} ms", step * BARS),
                (x_max * 0.7, y_max * 0.85),
                TextStyle::from((FONT, 16).into_font()).color(&BLACK),
            )))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn axis_numbers_are_short_and_distinct() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(1.25), "1.25");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(250.0), "250");
        assert_eq!(short(10_000.0), "10k");
        assert_eq!(short(12_500.0), "12.5k");
    }
}
