//! The terminal summary of a benchmark: one row per case, hyperfine-style `mean ± σ`, the cut
//! with its interval, the bound, and the verdict.
//!
//! The cells are computed once by [`cells`] and shared with the Markdown report, so the two
//! never disagree on a number. Colour is applied after padding (escape codes have no width) and
//! only when the caller says the output is a terminal.

use std::fmt::Write;
use std::io::IsTerminal;

use super::result::{Arm, BenchResult, CaseBench, RunSample};
use crate::stats::{ArmStats, CutEstimate, IntervalMethod};

/// Column headers, in the order of [`Cells::columns`].
pub const HEADERS: [&str; 11] = [
    "case",
    "runs",
    "default (s)",
    "custom (s)",
    "cut [95% CI]",
    "p",
    "ablation (s)",
    "policy [95% CI]",
    "best cut",
    "captured",
    "verdict",
];
const VERDICT_COLUMN: usize = 10;

/// What each column means, printed under the table and in the report.
pub const LEGEND: &str = "runs: valid measured runs default/custom/ablation (warm-ups excluded) · \
default, custom: mean ± σ makespan · cut: 1 − custom/default with its 95% interval \
(Welch's t on the ratio of means; a bootstrap from 20 runs per arm) · p: Mann–Whitney U, two-sided · \
ablation: the same scheduler with every process in one class (it cannot tell the long task) · \
policy: 1 − custom/ablation, the part of the cut that knowing the long task gives · \
best cut: the most any scheduler could cut on these CPUs (the bound) · captured: cut / best cut";

/// A default arm this much slower than the fair-share model means the model is missing costs.
const MODEL_GAP: f64 = 0.15;

/// The long task alone waiting this share of its wall time is worth a note.
const WAITING_SHARE: f64 = 0.1;

/// A run whose tasks used this many times the CPU of their arm's median run did the same work on
/// a slower machine.
const SLOW_MACHINE: f64 = 1.3;

/// Said when a run's tasks took far more CPU than the same arm's other runs for the same work
/// (measured 2026-12-07: one compiler_build run in which every task used 1.7 times its usual
/// CPU, its schedule as good as the others'). The emulated CPUs ran slower for that run; its
/// makespan stays in the means, so only the interval shows it unless the report says so.
pub fn slow_machine_note(c: &CaseBench) -> Option<String> {
    let measured: Vec<(&RunSample, f64)> = c
        .runs
        .iter()
        .filter(|r| r.valid && !r.warmup)
        .map(|r| (r, r.tasks.iter().map(|t| t.cpu_s).sum::<f64>()))
        .collect();
    let median = |arm: Arm| {
        let mut same: Vec<f64> = measured
            .iter()
            .filter(|(r, _)| r.arm == arm)
            .map(|(_, cpu)| *cpu)
            .collect();
        same.sort_by(f64::total_cmp);
        (same.len() >= 3).then(|| same[same.len() / 2])
    };
    let slow: Vec<String> = measured
        .iter()
        .filter_map(|(r, cpu)| {
            let ratio = cpu / median(r.arm).filter(|m| *m > 0.0)?;
            (ratio >= SLOW_MACHINE).then(|| {
                format!(
                    "run {} ({}, {:.3} s) used {ratio:.2}× the task CPU of its arm's median run",
                    r.order + 1,
                    r.arm.label(),
                    r.makespan_s
                )
            })
        })
        .collect();
    (!slow.is_empty()).then(|| {
        format!(
            "{}: the same work took more CPU, so the emulated machine ran slower then, whatever \
             the scheduler did; it counts in the means and widens the intervals",
            slow.join("; ")
        )
    })
}

/// Said when the long task, run alone, spent a good part of its time waiting (I/O): the
/// CPU-time bound assumes it never waits, so its best cut is more than any order can reach.
pub fn waiting_note(c: &CaseBench) -> Option<String> {
    let b = c.bound.as_ref()?;
    let wall = b.long_alone_wall_s?;
    let waited = wall - b.long_alone_s;
    if wall <= 0.0 || waited < WAITING_SHARE * wall {
        return None;
    }
    Some(format!(
        "run alone, the long task took {wall:.3} s, {:.0}% of it waiting ({:.3} s of CPU): no \
         order ends before it would, which the CPU-time bound does not count; counting it, the \
         best possible cut is {:.1}% (the bound's {:.1}%)",
        waited / wall * 100.0,
        b.long_alone_s,
        b.best_cut_with_waiting().unwrap_or(0.0) * 100.0,
        b.model.best_cut * 100.0
    ))
}

/// Said when the default arm ran well above the fair-share prediction. The bound counts CPU
/// seconds only; tasks that also slow each other down (memory, caches, start-up) leave room for
/// a scheduler to gain more than the "best possible" cut, and a reader should know why
/// "captured" then exceeds 100%.
pub fn model_gap_note(c: &CaseBench) -> Option<String> {
    let gap = c.default_over_model().filter(|g| *g >= MODEL_GAP)?;
    let b = c.bound.as_ref()?;
    Some(format!(
        "the default arm took {:.1}% longer than fair sharing predicts ({:.3} s vs {:.3} s): \
         the tasks slow each other down beyond sharing CPU time, which the bound does not count, \
         so it understates what a scheduler can gain here",
        gap * 100.0,
        c.default.mean,
        b.model.fair_share_makespan_s
    ))
}

/// Whether stdout should get colours: a terminal, and `NO_COLOR` unset.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// One case's row, as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Cells {
    pub case: String,
    pub runs: String,
    pub default: String,
    pub custom: String,
    pub cut: String,
    pub p: String,
    pub ablation: String,
    pub policy: String,
    pub best: String,
    pub captured: String,
    pub pass: bool,
    /// The verdict's reason (or the case's error), on one line.
    pub reason: String,
}

impl Cells {
    /// The cells in [`HEADERS`] order, the verdict as plain `PASS`/`FAIL`.
    pub fn columns(&self) -> [&str; 11] {
        [
            &self.case,
            &self.runs,
            &self.default,
            &self.custom,
            &self.cut,
            &self.p,
            &self.ablation,
            &self.policy,
            &self.best,
            &self.captured,
            verdict_word(self.pass),
        ]
    }
}

pub fn verdict_word(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Shown where there is no number.
pub const NONE: &str = "—";

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        NONE.into()
    }
}

fn mean_sd(s: &ArmStats) -> String {
    if s.n == 0 {
        NONE.into()
    } else {
        format!("{:.3} ± {:.3}", s.mean, s.sd)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A cut with its interval: `24.6% [22.1%, 27.0%]`.
pub fn cut_cell(e: Option<&CutEstimate>) -> String {
    match e {
        Some(e) => {
            let ci = if e.method == IntervalMethod::None
                || !e.ci_low.is_finite()
                || !e.ci_high.is_finite()
            {
                format!("[{NONE}]")
            } else {
                format!("[{}, {}]", pct(e.ci_low), pct(e.ci_high))
            };
            format!("{} {ci}", pct(e.cut))
        }
        None => NONE.into(),
    }
}

/// The classifier's numbers for a case, on one line, when it ran.
pub fn classifier_line(c: &CaseBench) -> Option<String> {
    let k = c.classifier.as_ref()?;
    let ms = |x: Option<f64>| x.map_or_else(|| NONE.to_string(), |v| format!("{v:.1} ms"));
    let list = |v: &[usize]| {
        v.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    Some(format!(
        "classifier: exec to class p50 {} / p99 {} (worst run), {:.2}% of a CPU; in each of its {} runs, short tasks taken for long [{}] and long ones missed [{}]{}",
        ms(k.latency_p50_ms),
        ms(k.latency_p99_ms),
        k.cpu_share * 100.0,
        k.runs,
        list(&k.short_as_long),
        list(&k.long_as_short),
        if k.dropped > 0 {
            format!(", {} events dropped", k.dropped)
        } else {
            String::new()
        }
    ))
}

/// Memory reclaim during the measured runs, on one line, when any run had to reclaim: the
/// kernel time it costs lands on whichever task allocated, so it can move a makespan more than
/// the schedule does.
pub fn reclaim_line(c: &CaseBench) -> Option<String> {
    let measured: Vec<&RunSample> = c.runs.iter().filter(|r| !r.warmup && r.valid).collect();
    if !measured
        .iter()
        .any(|r| r.machine_memory.is_some_and(|m| m.reclaimed()))
    {
        return None;
    }
    let mut arms: Vec<String> = Vec::new();
    for arm in [Arm::Default, Arm::Custom, Arm::Ablation, Arm::Incumbent] {
        let runs: Vec<_> = measured
            .iter()
            .filter(|r| r.arm == arm)
            .filter_map(|r| r.machine_memory)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let hit = runs.iter().filter(|m| m.reclaimed()).count();
        let direct = runs.iter().map(|m| m.direct_scanned).sum::<u64>() / runs.len() as u64;
        let faults = runs.iter().map(|m| m.major_faults).sum::<u64>() / runs.len() as u64;
        arms.push(format!(
            "{} {hit} of {} runs ({direct} pages scanned in direct reclaim, {faults} major faults a run)",
            arm.label(),
            runs.len()
        ));
    }
    Some(format!(
        "memory: the guest reclaimed memory during runs: {} (`--memory` sets how much the VM has)",
        arms.join("; ")
    ))
}

/// The head-to-head against the incumbent, on one line, when it ran.
pub fn incumbent_line(c: &CaseBench) -> Option<String> {
    if c.incumbent.n == 0 {
        return None;
    }
    let verdict = match c.beats_incumbent() {
        Some(true) => "beats it",
        _ => match c.vs_incumbent {
            Some(v) if v.ci_high < 0.0 => "slower than it",
            _ => "not shown to be better",
        },
    };
    Some(format!(
        "incumbent {}: {} s over {} runs; the candidate against it, head to head: {} ({verdict})",
        c.incumbent_path.as_deref().unwrap_or("?"),
        mean_sd(&c.incumbent),
        c.incumbent.n,
        cut_cell(c.vs_incumbent.as_ref())
    ))
}

/// One line per production scheduler that ran: its makespan, its own cut against the default,
/// and the candidate's cut against it.
pub fn production_lines(c: &CaseBench) -> Vec<String> {
    c.production
        .iter()
        .map(|p| {
            format!(
                "scx_{} {}: {} s over {} runs, cut {} against the default; the candidate against it: {}",
                p.name,
                p.version,
                mean_sd(&p.stats),
                p.stats.n,
                cut_cell(p.cut.as_ref()),
                cut_cell(p.candidate_vs.as_ref())
            )
        })
        .collect()
}

/// The text of one case's row.
pub fn cells(c: &CaseBench) -> Cells {
    let measured = c.default.n + c.custom.n > 0;
    let cut = if measured {
        cut_cell(c.cut.as_ref())
    } else {
        NONE.into()
    };
    let p = match &c.cut {
        Some(e) if measured && e.p_value.is_finite() => format!("{:.3}", e.p_value),
        _ => NONE.into(),
    };
    let reason = match (&c.error, c.verdict.reason.is_empty()) {
        (Some(e), _) => one_line(e),
        (None, false) => one_line(&c.verdict.reason),
        (None, true) => String::new(),
    };
    Cells {
        case: c.test_id.clone(),
        runs: match (measured || !c.runs.is_empty(), c.ablation.n > 0) {
            (false, _) => NONE.into(),
            (true, false) => format!("{}/{}", c.default.n, c.custom.n),
            (true, true) => format!("{}/{}/{}", c.default.n, c.custom.n, c.ablation.n),
        },
        default: mean_sd(&c.default),
        custom: mean_sd(&c.custom),
        cut,
        p,
        ablation: mean_sd(&c.ablation),
        policy: if c.ablation.n > 0 {
            cut_cell(c.policy_cut.as_ref())
        } else {
            NONE.into()
        },
        best: c
            .bound
            .as_ref()
            .map_or_else(|| NONE.into(), |b| pct(b.model.best_cut)),
        captured: c.captured.map_or_else(|| NONE.into(), pct),
        pass: c.verdict.pass,
        reason,
    }
}

/// The line above the table: where and how the benchmark ran.
pub fn heading(r: &BenchResult) -> String {
    format!(
        "{} · kernel {} · {} CPUs · {} runs per arm{} + {} warm-up · order seed {} · target cut {}",
        r.place,
        r.kernel_release,
        r.cpus,
        r.runs_per_arm,
        if r.min_runs > 0 && r.min_runs < r.runs_per_arm {
            format!(" (from {} when settled)", r.min_runs)
        } else {
            String::new()
        },
        r.warmup,
        r.order_seed,
        pct(r.target)
    )
}

/// The whole table: heading, header, one row per case, legend, and a count of passes.
pub fn render(r: &BenchResult, color: bool) -> String {
    let rows: Vec<Cells> = r.cases.iter().map(cells).collect();
    let mut width = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row.columns()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let pad = |s: &str, w: usize, right: bool| {
        let fill = " ".repeat(w.saturating_sub(s.chars().count()));
        if right {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    // Numbers right-aligned, names and words left-aligned.
    let right = [
        false, true, true, true, true, true, true, true, true, true, false,
    ];
    let mut out = String::new();
    let _ = writeln!(out, "{}", heading(r));
    let header: Vec<String> = HEADERS
        .iter()
        .zip(width)
        .zip(right)
        .map(|((h, w), r)| pad(h, w, r))
        .collect();
    let _ = writeln!(out, "{}", paint(&header.join("  "), Paint::Bold, color));
    for row in &rows {
        let mut line: Vec<String> = Vec::new();
        for (i, cell) in row.columns().into_iter().enumerate() {
            if i == VERDICT_COLUMN {
                let look = if row.pass { Paint::Pass } else { Paint::Fail };
                line.push(paint(cell, look, color));
            } else {
                line.push(pad(cell, width[i], right[i]));
            }
        }
        if !row.reason.is_empty() {
            line.push(row.reason.clone());
        }
        let _ = writeln!(out, "{}", line.join("  "));
    }
    for line in wrap(LEGEND, 100) {
        let _ = writeln!(out, "{}", paint(&line, Paint::Dim, color));
    }
    for c in &r.cases {
        for note in model_gap_note(c)
            .into_iter()
            .chain(waiting_note(c))
            .chain(slow_machine_note(c))
            .map(|n| format!("note: {}: {n}", c.test_id))
            .chain(classifier_line(c).map(|l| format!("{}: {l}", c.test_id)))
            .chain(
                c.data
                    .as_ref()
                    .map(|d| format!("{}: {}", c.test_id, d.describe())),
            )
            .chain(
                c.programs
                    .as_ref()
                    .map(|p| format!("{}: {}", c.test_id, p.describe())),
            )
            .chain(
                c.efficiency
                    .iter()
                    .flat_map(super::efficiency::describe)
                    .map(|l| format!("{}: {l}", c.test_id)),
            )
            .chain(incumbent_line(c).map(|l| format!("{}: {l}", c.test_id)))
            .chain(reclaim_line(c).map(|l| format!("{}: {l}", c.test_id)))
            .chain(
                production_lines(c)
                    .into_iter()
                    .map(|l| format!("{}: {l}", c.test_id)),
            )
        {
            for line in wrap(&note, 100) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let passed = rows.iter().filter(|c| c.pass).count();
    let _ = writeln!(out, "{passed} of {} cases passed", rows.len());
    out
}

/// Split text into lines of at most `width` characters at spaces.
pub(crate) fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

#[derive(Clone, Copy)]
enum Paint {
    Bold,
    Dim,
    Pass,
    Fail,
}

fn paint(s: &str, how: Paint, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match how {
        Paint::Bold => "1",
        Paint::Dim => "2",
        Paint::Pass => "1;32",
        Paint::Fail => "1;31",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixture;

    fn row<'a>(table: &'a str, case: &str) -> &'a str {
        table
            .lines()
            .find(|l| l.starts_with(case))
            .unwrap_or_else(|| panic!("no row for {case} in\n{table}"))
    }

    #[test]
    fn a_default_far_above_the_model_gets_a_note() {
        let mut r = fixture::bench();
        // The fixture's default arm sits within 3% of its fair-share prediction.
        assert!(!render(&r, false).contains("note:"));
        let fair = r.cases[0]
            .bound
            .as_ref()
            .unwrap()
            .model
            .fair_share_makespan_s;
        r.cases[0].default.mean = fair * 1.5;
        let t = render(&r, false);
        assert!(
            t.contains("note: ctest_suite: the default arm took 50.0% longer"),
            "{t}"
        );
        let md = crate::bench::markdown::render(&r);
        assert!(
            md.contains("- Note: the default arm took 50.0% longer"),
            "{md}"
        );
    }

    #[test]
    fn a_long_task_that_waited_alone_gets_a_note_with_the_lower_best_cut() {
        let mut r = fixture::bench();
        let b = r.cases[0].bound.as_mut().unwrap();
        // The fixture's long task: 4.8 s of CPU. Alone in 5.0 s it barely waited: no note.
        b.long_alone_wall_s = Some(5.0);
        assert!(waiting_note(&r.cases[0]).is_none());
        let b = r.cases[0].bound.as_mut().unwrap();
        b.long_alone_wall_s = Some(6.4);
        let note = waiting_note(&r.cases[0]).unwrap();
        let best = r.cases[0].bound.as_ref().unwrap().best_cut_with_waiting();
        assert!(note.contains("6.400 s, 25% of it waiting"), "{note}");
        assert!(
            note.contains(&format!("{:.1}%", best.unwrap() * 100.0)),
            "{note}"
        );
        assert!(render(&r, false).contains("note: ctest_suite: run alone, the long task"));
        assert!(crate::bench::markdown::render(&r).contains("- Note: run alone, the long task"));
    }

    #[test]
    fn a_run_whose_tasks_took_far_more_cpu_than_its_arm_s_others_gets_a_note() {
        let mut r = fixture::bench();
        assert!(
            slow_machine_note(&r.cases[0]).is_none(),
            "the fixture's runs are alike"
        );
        let c = &mut r.cases[0];
        let i = c
            .runs
            .iter()
            .position(|x| x.arm == Arm::Custom && !x.warmup)
            .unwrap();
        for t in &mut c.runs[i].tasks {
            t.cpu_s *= 1.7;
        }
        let note = slow_machine_note(c).unwrap();
        assert!(
            note.contains(&format!("run {} (custom", c.runs[i].order + 1))
                && note.contains("1.70×"),
            "{note}"
        );
        for t in &mut c.runs[i].tasks {
            t.cpu_s = t.cpu_s / 1.7 * 1.2;
        }
        assert!(
            slow_machine_note(c).is_none(),
            "20% more is within a run's spread"
        );
        for t in &mut c.runs[i].tasks {
            t.cpu_s = t.cpu_s / 1.2 * 1.7;
        }
        assert!(render(&r, false).contains("the emulated machine ran slower then"));
        assert!(crate::bench::markdown::render(&r).contains("- Note: run "));
    }

    #[test]
    fn reclaim_gets_a_line_only_when_a_run_reclaimed() {
        use crate::workload::machine_memory::MachineMemory;
        let mut r = fixture::bench();
        assert!(reclaim_line(&r.cases[0]).is_none());
        let quiet = MachineMemory {
            major_faults: 3,
            ..Default::default()
        };
        for run in r.cases[0].runs.iter_mut() {
            run.machine_memory = Some(quiet);
        }
        assert!(reclaim_line(&r.cases[0]).is_none());
        let custom = r.cases[0]
            .runs
            .iter()
            .position(|run| run.arm == Arm::Custom && !run.warmup)
            .unwrap();
        r.cases[0].runs[custom].machine_memory = Some(MachineMemory {
            direct_scanned: 5000,
            kswapd_scanned: 100,
            major_faults: 40,
        });
        let line = reclaim_line(&r.cases[0]).unwrap();
        assert!(line.contains("default 0 of 5 runs"), "{line}");
        assert!(line.contains("custom 1 of 5 runs (1000 pages"), "{line}");
        assert!(render(&r, false).contains("ctest_suite: memory: the guest reclaimed"));
    }

    #[test]
    fn rows_carry_the_numbers_and_verdicts() {
        let r = fixture::bench();
        let t = render(&r, false);
        assert!(t.starts_with("vm · kernel 6.12.0-sched-ext · 2 CPUs · 5 runs per arm"));
        let pass = row(&t, "ctest_suite");
        assert!(pass.contains("5/5"), "{pass}");
        assert!(pass.contains("9.200 ± 0.158"), "{pass}");
        assert!(pass.contains("6.940 ± 0.114"), "{pass}");
        assert!(pass.contains("24.6% ["), "{pass}");
        assert!(pass.contains("25.5%"), "{pass}"); // best cut of 0.22 s ×39 + 4.8 s on 2 CPUs
        assert!(pass.contains("96.3%"), "{pass}");
        assert!(pass.contains("0.008"), "{pass}"); // exact Mann–Whitney, 5 vs 5, no overlap
        assert!(pass.contains("PASS"), "{pass}");

        let fail = row(&t, "log_processing");
        assert!(
            fail.contains("5/4"),
            "the ejected run is not counted: {fail}"
        );
        assert!(fail.contains("FAIL  run 7 invalid"), "{fail}");
        // No bound: best cut and captured are dashes; no ablation arm: two more.
        assert_eq!(fail.matches(NONE).count(), 4, "{fail}");

        let err = row(&t, "ddos_log_analysis");
        assert!(
            err.contains("FAIL  setup failed: tshark not found (install it"),
            "{err}"
        );
        assert!(t.contains("1 of 3 cases passed"));
        let words = t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("captured: cut / best cut"), "{t}");
        assert!(words.contains("policy: 1 − custom/ablation"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() < 240), "{t}");
        assert!(!t.contains('\x1b'));
    }

    #[test]
    fn columns_line_up() {
        let t = render(&fixture::bench(), false);
        let lines: Vec<&str> = t.lines().collect();
        let at = |l: &str| {
            l.find("PASS")
                .or_else(|| l.find("FAIL"))
                .map(|b| l[..b].chars().count())
        };
        let header_at = lines[1].find("verdict").unwrap();
        for l in &lines[2..5] {
            assert_eq!(at(l), Some(header_at), "{l}");
        }
    }

    #[test]
    fn colour_only_on_request() {
        let t = render(&fixture::bench(), true);
        assert!(t.contains("\x1b[1;32mPASS\x1b[0m"));
        assert!(t.contains("\x1b[1;31mFAIL\x1b[0m"));
    }

    #[test]
    fn an_interval_that_could_not_be_computed_is_a_dash() {
        let mut r = fixture::bench();
        let c = r.cases[0].cut.as_mut().unwrap();
        c.method = IntervalMethod::None;
        c.ci_low = f64::NAN;
        c.ci_high = f64::NAN;
        let cells = cells(&r.cases[0]);
        assert_eq!(cells.cut, "24.6% [—]");
        assert!(!render(&r, false).contains("NaN"));
    }
}
