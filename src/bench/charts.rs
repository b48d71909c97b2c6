//! SVG charts of a benchmark, drawn with plotters into strings (the caller writes the files).
//!
//! - `bars.svg`: one panel per case with the default and custom mean makespans, ±σ whiskers, and
//!   the optimal makespan from the bound as a dashed line, so "how far from perfect" is visible
//!   next to "how much faster".
//! - `timeline-<case>.svg`: the 40 tasks of one default and one custom run as start–end bars on
//!   the same time axis, long task on top in red: the long tail and where the scheduler moved it.
//!
//! Only the SVG backend is compiled and no font crate: the SVG holds `<text>` elements that the
//! viewer renders with its own fonts, so drawing needs no font files on the machine. Panels get
//! their own y axis because cases differ in makespan by orders of magnitude.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::result::{Arm, BenchResult, CaseBench, RunSample};
use super::table::wrap;
use crate::workload::result::Group;

pub const BARS_FILE: &str = "bars.svg";

const DEFAULT_COLOR: RGBColor = RGBColor(0x4c, 0x72, 0xb0);
const CUSTOM_COLOR: RGBColor = RGBColor(0xdd, 0x84, 0x52);
const DEFAULT_SHORT: RGBColor = RGBColor(0x9d, 0xb4, 0xd8);
const CUSTOM_SHORT: RGBColor = RGBColor(0xf0, 0xb8, 0x94);
const ABLATION_SHORT: RGBColor = RGBColor(0xb8, 0xd8, 0xa4);
const INCUMBENT_SHORT: RGBColor = RGBColor(0xd8, 0xc4, 0xe8);
const LONG_COLOR: RGBColor = RGBColor(0xc0, 0x1c, 0x28);
const OPTIMAL_COLOR: RGBColor = RGBColor(0x1f, 0x8a, 0x4c);
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);

const FONT: &str = "sans-serif";
const PANEL_W: u32 = 320;
const PANEL_H: u32 = 290;
const LEGEND_H: u32 = 56;

/// The file name of a case's timeline, when it has a run to draw.
pub fn timeline_file(c: &CaseBench) -> Option<String> {
    let (d, u) = timeline_runs(c);
    (d.is_some() || u.is_some()).then(|| format!("timeline-{}.svg", file_safe(&c.test_id)))
}

/// The runs a timeline shows: the first valid, measured (not warm-up) run of each arm.
pub fn timeline_runs(c: &CaseBench) -> (Option<&RunSample>, Option<&RunSample>) {
    let first = |arm: Arm| {
        c.runs
            .iter()
            .find(|r| r.arm == arm && r.valid && !r.warmup && !r.tasks.is_empty())
    };
    (first(Arm::Default), first(Arm::Custom))
}

/// Whether the bar chart has anything to show.
pub fn has_bars(r: &BenchResult) -> bool {
    r.cases.iter().any(|c| c.default.n + c.custom.n > 0)
}

fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Every chart of the benchmark as `(file name, SVG text)`.
pub fn render_all(r: &BenchResult) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if has_bars(r) {
        out.push((BARS_FILE.to_string(), bars_svg(r)?));
    }
    for c in &r.cases {
        if let Some(name) = timeline_file(c) {
            out.push((name, timeline_svg(c)?));
        }
    }
    Ok(out)
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {what}: {e}")
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// A row of coloured keys and labels: `(colour, dashed line instead of a box, label)`.
fn legend(area: &DrawingArea<SVGBackend, Shift>, y: i32, keys: &[(RGBColor, bool, &str)]) {
    let style = (FONT, 13).into_font().color(&INK);
    let mut x = 12;
    for (color, line, label) in keys {
        if *line {
            for k in 0..3 {
                let x0 = x + k * 7;
                let _ = area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 4, y)],
                    color.stroke_width(2),
                ));
            }
        } else {
            let _ = area.draw(&Rectangle::new(
                [(x, y - 6), (x + 18, y + 6)],
                color.filled(),
            ));
        }
        let text = style.pos(Pos::new(HPos::Left, VPos::Center));
        let _ = area.draw(&Text::new(label.to_string(), (x + 24, y), text));
        // The naive text metrics are estimates; leave generous room.
        x += 24 + 7 * label.chars().count() as i32 + 22;
    }
}

/// Default vs custom mean makespan per case, with ±σ and the optimal makespan.
pub fn bars_svg(r: &BenchResult) -> Result<String> {
    let cases: Vec<&CaseBench> = r.cases.iter().collect();
    let cols = cases.len().clamp(1, 3) as u32;
    let rows = cases.len().div_ceil(3).max(1) as u32;
    let width = (cols * PANEL_W).max(2 * PANEL_W);
    let height = LEGEND_H + rows * PANEL_H;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err("bars"))?;
        let (top, grid) = root.split_vertically(LEGEND_H);
        top.draw(&Text::new(
            format!(
                "Mean makespan per case ({} CPUs, {} runs per arm), ±σ",
                r.cpus, r.runs_per_arm
            ),
            (12, 16),
            (FONT, 16).into_font().color(&INK),
        ))
        .map_err(err("bars"))?;
        legend(
            &top,
            40,
            &[
                (DEFAULT_COLOR, false, "default"),
                (CUSTOM_COLOR, false, "custom"),
                (OPTIMAL_COLOR, true, "optimal makespan (bound)"),
            ],
        );
        let grid = grid.margin(0, 0, 0, 0);
        let panels = grid.split_evenly((rows as usize, cols as usize));
        for (panel, c) in panels.iter().zip(&cases) {
            bar_panel(panel, c)?;
        }
    }
    Ok(svg)
}

fn bar_panel(area: &DrawingArea<SVGBackend, Shift>, c: &CaseBench) -> Result<()> {
    let caption = match (&c.cut, &c.bound, c.default.n > 0 && c.custom.n > 0) {
        (Some(e), Some(b), true) => format!(
            "{}: cut {} (best {})",
            c.test_id,
            pct(e.cut),
            pct(b.model.best_cut)
        ),
        (Some(e), None, true) => format!("{}: cut {}", c.test_id, pct(e.cut)),
        _ => c.test_id.clone(),
    };
    if c.default.n + c.custom.n == 0 {
        return empty_panel(area, &caption, c.error.as_deref());
    }
    let optimal = c.bound.as_ref().map(|b| b.model.optimal_makespan_s);
    let top = [
        c.default.mean + c.default.sd,
        c.custom.mean + c.custom.sd,
        optimal.unwrap_or(0.0),
    ]
    .into_iter()
    .filter(|v| v.is_finite())
    .fold(0.0, f64::max);
    let y_max = if top > 0.0 { top * 1.18 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 14).into_font().color(&INK))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(24)
        .y_label_area_size(48)
        .build_cartesian_2d((0..200).with_key_points(vec![50, 150]), 0.0..y_max)
        .map_err(err("bars"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_labels(6)
        .y_desc("makespan (s)")
        .x_label_formatter(&|x| if *x < 100 { "default" } else { "custom" }.to_string())
        .label_style((FONT, 12).into_font().color(&INK))
        .axis_desc_style((FONT, 12).into_font().color(&INK))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(err("bars"))?;
    for (x, s, color) in [
        (50, &c.default, DEFAULT_COLOR),
        (150, &c.custom, CUSTOM_COLOR),
    ] {
        if s.n == 0 {
            continue;
        }
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 32, 0.0), (x + 32, s.mean)],
                color.filled(),
            )))
            .map_err(err("bars"))?;
        let (lo, hi) = (s.mean - s.sd, s.mean + s.sd);
        let whisker = INK.stroke_width(1);
        for path in [
            vec![(x, lo), (x, hi)],
            vec![(x - 7, lo), (x + 7, lo)],
            vec![(x - 7, hi), (x + 7, hi)],
        ] {
            chart
                .draw_series(std::iter::once(PathElement::new(path, whisker)))
                .map_err(err("bars"))?;
        }
        let label = (FONT, 12)
            .into_font()
            .color(&INK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{:.2} s", s.mean),
                (x, hi + y_max * 0.02),
                label,
            )))
            .map_err(err("bars"))?;
    }
    if let Some(o) = optimal {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0, o), (200, o)],
                6,
                4,
                OPTIMAL_COLOR.stroke_width(2),
            ))
            .map_err(err("bars"))?;
    }
    Ok(())
}

/// A panel for a case without runs: its name and why, no axes.
fn empty_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    error: Option<&str>,
) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let center = Pos::new(HPos::Center, VPos::Center);
    area.draw(&Text::new(
        caption.to_string(),
        (w / 2, 16),
        (FONT, 14).into_font().color(&INK).pos(center),
    ))
    .map_err(err("bars"))?;
    let why = error.unwrap_or("no valid runs");
    let style = (FONT, 12).into_font().color(&LONG_COLOR).pos(center);
    for (i, line) in wrap(why, 40).iter().take(6).enumerate() {
        area.draw(&Text::new(
            line.clone(),
            (w / 2, h / 3 + 18 * i as i32),
            style.clone(),
        ))
        .map_err(err("bars"))?;
    }
    Ok(())
}

/// The 40 tasks of one default and one custom run as start–end bars, long task on top.
pub fn timeline_svg(c: &CaseBench) -> Result<String> {
    let (d, u) = timeline_runs(c);
    let runs = [(Arm::Default, d), (Arm::Custom, u)];
    let end = runs
        .iter()
        .filter_map(|(_, r)| *r)
        .flat_map(|r| r.tasks.iter().map(|t| t.end_s).chain([r.makespan_s]))
        .chain(c.bound.as_ref().map(|b| b.model.optimal_makespan_s))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let start = runs
        .iter()
        .filter_map(|(_, r)| *r)
        .flat_map(|r| r.tasks.iter().map(|t| t.start_s))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min);
    let x_range = start..(if end > start { end * 1.03 } else { start + 1.0 });
    let (width, panel_h) = (960, 330);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (width, LEGEND_H + 2 * panel_h)).into_drawing_area();
        root.fill(&WHITE).map_err(err("timeline"))?;
        let (top, rest) = root.split_vertically(LEGEND_H);
        top.draw(&Text::new(
            format!("{}: every task of one run per arm, start to end", c.test_id),
            (12, 16),
            (FONT, 16).into_font().color(&INK),
        ))
        .map_err(err("timeline"))?;
        let mut keys = vec![
            (DEFAULT_SHORT, false, "short task (default)"),
            (CUSTOM_SHORT, false, "short task (custom)"),
            (LONG_COLOR, false, "long task"),
            (INK, true, "makespan"),
        ];
        if c.bound.is_some() {
            keys.push((OPTIMAL_COLOR, true, "optimal makespan (bound)"));
        }
        legend(&top, 40, &keys);
        let (a, b) = rest.split_vertically(panel_h);
        for ((arm, run), area) in runs.into_iter().zip([a, b]) {
            timeline_panel(&area, c, arm, run, x_range.clone())?;
        }
    }
    Ok(svg)
}

fn timeline_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    c: &CaseBench,
    arm: Arm,
    run: Option<&RunSample>,
    x_range: std::ops::Range<f64>,
) -> Result<()> {
    let (name, short_color) = match arm {
        Arm::Default => ("default", DEFAULT_SHORT),
        Arm::Custom => ("custom", CUSTOM_SHORT),
        Arm::Ablation => ("ablation", ABLATION_SHORT),
        Arm::Incumbent => ("incumbent", INCUMBENT_SHORT),
        Arm::Production(_) => ("production", INCUMBENT_SHORT),
    };
    let caption = match run {
        Some(r) if r.scheduler == name => {
            format!("{name}, run #{}: makespan {:.2} s", r.order, r.makespan_s)
        }
        Some(r) => format!(
            "{name} ({}), run #{}: makespan {:.2} s",
            r.scheduler, r.order, r.makespan_s
        ),
        None => format!("{name}: no valid measured run"),
    };
    let rows = run.map_or(40, |r| r.tasks.len()).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 14).into_font().color(&INK))
        .margin(8)
        .margin_right(24)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(
            x_range,
            (0..rows as i32 * 10)
                .with_key_points(vec![rows as i32 * 10 - 5, (rows as i32 - 1) * 5]),
        )
        .map_err(err("timeline"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(12)
        .x_desc("seconds since the tasks started")
        .y_label_formatter(&|y| {
            if *y > (rows as i32 - 1) * 10 {
                "long".to_string()
            } else {
                format!("short ×{}", rows - 1)
            }
        })
        .label_style((FONT, 12).into_font().color(&INK))
        .axis_desc_style((FONT, 12).into_font().color(&INK))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(err("timeline"))?;
    let Some(run) = run else {
        return Ok(());
    };
    // Long tasks on top, then the short ones by index, so a row is the same task in both panels.
    let mut tasks: Vec<_> = run.tasks.iter().collect();
    tasks.sort_by_key(|t| (t.group != Group::Long, t.index));
    chart
        .draw_series(tasks.iter().enumerate().map(|(i, t)| {
            let y = (rows - 1 - i) as i32 * 10;
            let color = if t.group == Group::Long {
                LONG_COLOR
            } else {
                short_color
            };
            Rectangle::new([(t.start_s, y + 1), (t.end_s, y + 9)], color.filled())
        }))
        .map_err(err("timeline"))?;
    let mut lines = vec![(run.makespan_s, INK)];
    if let Some(b) = &c.bound {
        lines.push((b.model.optimal_makespan_s, OPTIMAL_COLOR));
    }
    for (x, color) in lines {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, 0), (x, rows as i32 * 10)],
                5,
                4,
                color.stroke_width(2),
            ))
            .map_err(err("timeline"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixture;

    fn rects_filled(svg: &str, color: RGBColor) -> usize {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.split("<rect")
            .skip(1)
            .filter(|r| r.split("/>").next().unwrap().contains(&fill))
            .count()
    }

    #[test]
    fn bars_name_every_case() {
        let r = fixture::bench();
        let svg = bars_svg(&r).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for c in &r.cases {
            assert!(svg.contains(&c.test_id), "{}", c.test_id);
        }
        assert!(svg.contains("cut 24.6% (best 25.5%)"));
        assert!(svg.contains("9.20 s") && svg.contains("6.94 s"));
        assert!(svg.contains("tshark not found"));
        // Two bars for each of the two measured cases, plus the two legend keys.
        let bars = rects_filled(&svg, DEFAULT_COLOR) + rects_filled(&svg, CUSTOM_COLOR);
        assert_eq!(bars, 2 * 2 + 2);
    }

    #[test]
    fn timeline_draws_forty_tasks_per_run() {
        let r = fixture::bench();
        let c = &r.cases[0];
        assert_eq!(
            timeline_file(c).as_deref(),
            Some("timeline-ctest_suite.svg")
        );
        let (d, u) = timeline_runs(c);
        assert_eq!((d.unwrap().order, u.unwrap().order), (2, 3));
        let svg = timeline_svg(c).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("ctest_suite"));
        // 39 short tasks per panel, one long task per panel; one legend key each.
        assert_eq!(rects_filled(&svg, DEFAULT_SHORT), 39 + 1);
        assert_eq!(rects_filled(&svg, CUSTOM_SHORT), 39 + 1);
        assert_eq!(rects_filled(&svg, LONG_COLOR), 2 + 1);
    }

    #[test]
    fn timeline_skips_the_ejected_run_and_errored_cases() {
        let r = fixture::bench();
        let (_, u) = timeline_runs(&r.cases[1]);
        assert!(u.unwrap().valid);
        assert_eq!(timeline_file(&r.cases[2]), None);
        let names: Vec<String> = render_all(&r)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "bars.svg",
                "timeline-ctest_suite.svg",
                "timeline-log_processing.svg"
            ]
        );
    }
}
