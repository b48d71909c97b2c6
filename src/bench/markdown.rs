//! The Markdown report of a benchmark: what ran where, the summary table, and per case the
//! sizes, the bound, every run in order and the charts.
//!
//! Every run is listed, warm-ups and invalid ones included, because a reviewer should be able to
//! see that nothing was dropped quietly: an ejected scheduler shows up with the kernel's exit
//! line next to the run it spoiled. Numbers in the summary come from [`table::cells`], so the
//! terminal and the report agree.

use std::fmt::Write;

use super::charts;
use super::efficiency;
use super::result::{Arm, BenchResult, CaseBench};
use super::table::{self, NONE};

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Make text safe inside a table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// An arm as a case's report names it: a production scheduler by its own name (a case may run
/// several), the others by their role.
fn arm_name(c: &CaseBench, a: Arm) -> String {
    match a {
        Arm::Production(i) => c
            .production
            .get(i as usize)
            .map(|p| format!("scx_{}", p.name))
            .unwrap_or_else(|| a.label().into()),
        _ => a.label().into(),
    }
}

/// The whole report.
pub fn render(r: &BenchResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# schedgen benchmark\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    for (k, v) in [
        ("Started", r.started_at.clone()),
        ("Finished", r.finished_at.clone()),
        ("Machine", r.place.clone()),
        ("Kernel", r.kernel_release.clone()),
        ("CPUs", r.cpus.to_string()),
        (
            "Runs",
            format!(
                "{} per arm{}, the arms in randomised order within each round (seed {}), after \
                 {} warm-up run(s)",
                r.runs_per_arm,
                if r.min_runs > 0 && r.min_runs < r.runs_per_arm {
                    format!(
                        " at most (a case stops from {} once its verdict is settled)",
                        r.min_runs
                    )
                } else {
                    String::new()
                },
                r.order_seed,
                // Counted, not taken from `warmup`: older results ran a warm-up round per arm.
                r.cases
                    .first()
                    .map_or(r.warmup, |c| c.runs.iter().filter(|x| x.warmup).count())
            ),
        ),
        ("Target cut", pct(r.target)),
    ] {
        let _ = writeln!(s, "| {k} | {} |", cell(&v));
    }
    let _ = writeln!(s, "\n## Summary\n");
    summary(&mut s, r);
    every_arm(&mut s, r);
    for c in &r.cases {
        case_section(&mut s, c);
    }
    s
}

fn summary(s: &mut String, r: &BenchResult) {
    let _ = writeln!(s, "| {} |", table::HEADERS.join(" | "));
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for c in &r.cases {
        let cells = table::cells(c);
        let mut cols: Vec<String> = cells.columns().iter().map(|v| cell(v)).collect();
        cols[0] = format!("[{0}](#{1})", cols[0], anchor(&c.test_id));
        let v = table::HEADERS.len() - 1;
        cols[v] = format!("**{}**", cols[v]);
        if !cells.reason.is_empty() {
            cols[v] = format!("{} {}", cols[v], cell(&cells.reason));
        }
        let _ = writeln!(s, "| {} |", cols.join(" | "));
    }
    let passed = r.cases.iter().filter(|c| c.verdict.pass).count();
    let _ = writeln!(
        s,
        "\n{passed} of {} cases passed. {}\n",
        r.cases.len(),
        table::LEGEND
    );
    if charts::has_bars(r) {
        let _ = writeln!(
            s,
            "![Mean makespan per case, default vs custom, with the optimal makespan]({})\n",
            charts::BARS_FILE
        );
    }
}

/// The columns of the every-arm table: the ablation, the incumbent (by file stem) and each
/// production scheduler, as far as any case ran them.
fn arm_columns(r: &BenchResult) -> Vec<String> {
    let mut cols = Vec::new();
    if r.cases.iter().any(|c| c.ablation.n > 0) {
        cols.push("ablation".to_string());
    }
    let incumbent = r.cases.iter().find_map(|c| c.incumbent_path.as_deref());
    if let Some(path) = incumbent {
        let stem = std::path::Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.split('.').next().unwrap_or(n).to_string())
            .unwrap_or_else(|| "incumbent".into());
        cols.push(format!("incumbent `{stem}`"));
    }
    let names = r.cases.iter().flat_map(|c| {
        c.production
            .iter()
            .map(|p| format!("scx_{} {}", p.name, p.version))
    });
    for n in names {
        if !cols.contains(&n) {
            cols.push(n);
        }
    }
    cols
}

/// Every arm's cut against the default, one row per case, when more than the candidate ran:
/// what a user could have picked instead, measured in the same boot.
fn every_arm(s: &mut String, r: &BenchResult) {
    let cols = arm_columns(r);
    if cols.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### Every arm against the default
"
    );
    let _ = writeln!(
        s,
        "Each arm's cut `1 − arm/default` with its 95% interval, from the same rounds.\n"
    );
    let _ = writeln!(
        s,
        "| case | default (s) | candidate | {} | best possible |",
        cols.join(" | ")
    );
    let _ = writeln!(s, "|---|--:|--:|{}--:|", "--:|".repeat(cols.len()));
    for c in &r.cases {
        let mut row = vec![
            c.test_id.clone(),
            table::cells(c).default,
            table::cut_cell(c.cut.as_ref()),
        ];
        for col in &cols {
            let est = if col == "ablation" {
                c.skeleton_cut.as_ref().filter(|_| c.ablation.n > 0)
            } else if col.starts_with("incumbent") {
                c.incumbent_cut.as_ref().filter(|_| c.incumbent.n > 0)
            } else {
                c.production
                    .iter()
                    .find(|p| &format!("scx_{} {}", p.name, p.version) == col)
                    .and_then(|p| p.cut.as_ref())
            };
            row.push(est.map_or_else(|| NONE.into(), |e| table::cut_cell(Some(e))));
        }
        row.push(
            c.bound
                .as_ref()
                .map_or_else(|| NONE.into(), |b| pct(b.model.best_cut)),
        );
        let row: Vec<String> = row.iter().map(|v| cell(v)).collect();
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    let _ = writeln!(s);
}

/// GitHub's heading anchor for a plain `## id` heading.
fn anchor(id: &str) -> String {
    id.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn case_section(s: &mut String, c: &CaseBench) {
    let _ = writeln!(s, "## {}\n", c.test_id);
    let _ = writeln!(s, "{}\n", c.test_name);
    let word = table::verdict_word(c.verdict.pass);
    if c.verdict.reason.is_empty() {
        let _ = writeln!(s, "**Verdict: {word}**\n");
    } else {
        let _ = writeln!(s, "**Verdict: {word}**: {}\n", cell(&c.verdict.reason));
    }
    if let Some(e) = &c.error {
        let _ = writeln!(
            s,
            "The case stopped with an error:\n\n```text\n{}\n```\n",
            e.trim_end()
        );
    }
    if let Some(why) = &c.stopped_early {
        let _ = writeln!(s, "Stopped early, {why}.\n");
    }
    for r in &c.retired {
        let because = if matches!(r.arm, Arm::Production(_)) {
            ""
        } else {
            " (its question answered, more runs of it could not change the verdict)"
        };
        let _ = writeln!(
            s,
            "The {} arm ran {} run{}, then no more: {}{because}.\n",
            arm_name(c, r.arm),
            r.from_round,
            if r.from_round == 1 { "" } else { "s" },
            r.why
        );
    }
    for done in &c.resumed_after {
        let _ = writeln!(
            s,
            "The guest crashed after {done} complete round(s); a new boot went on from there \
             (the interrupted round's runs are not counted).\n"
        );
    }
    let sched = &c.scheduler;
    let long = if sched.long_comms.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = sched.long_comms.iter().map(|n| format!("`{n}`")).collect();
        format!(", told the long tasks are {}", names.join(", "))
    };
    let _ = writeln!(s, "- Scheduler: {} `{}`{long}", sched.kind, sched.path);
    if let Some(d) = &c.data {
        let _ = writeln!(s, "- {}", cell(&d.describe()));
    }
    if let Some(p) = &c.programs {
        let _ = writeln!(s, "- {}", cell(&p.describe()));
    }
    if !sched.classes.is_empty() {
        let _ = writeln!(s, "- Task classes (learned from a profile at these sizes):");
        for line in sched.classes.describe() {
            let _ = writeln!(s, "  - {}", cell(&line));
        }
    }
    if c.ablation.n > 0 {
        let _ = writeln!(
            s,
            "- Ablation (every process in one class): {}; against it the candidate cut {}; the ablation against the default: {}",
            table::cut_cell(None).replace(table::NONE, &format!("{:.3} ± {:.3} s", c.ablation.mean, c.ablation.sd)),
            table::cut_cell(c.policy_cut.as_ref()),
            table::cut_cell(c.skeleton_cut.as_ref())
        );
    }
    if let Some(e) = &c.efficiency {
        for line in efficiency::describe(e) {
            let _ = writeln!(s, "- {}", cell(&line));
        }
    }
    if let Some(line) = table::classifier_line(c) {
        let _ = writeln!(s, "- {}", cell(&line));
    }
    if let Some(line) = table::incumbent_line(c) {
        let _ = writeln!(s, "- {}", cell(&line));
    }
    for line in table::production_lines(c) {
        let _ = writeln!(s, "- {}", cell(&line));
    }
    if c.long_scale == 1.0 {
        let _ = writeln!(s, "- Scale: {}", c.scale);
    } else {
        let _ = writeln!(
            s,
            "- Scale: {}, long task sizes ×{} more (auto-sizing for these CPUs)",
            c.scale, c.long_scale
        );
    }
    if c.sizes.is_empty() {
        let _ = writeln!(s, "- Sizes: {NONE}");
    } else {
        let sizes: Vec<String> = c
            .sizes
            .iter()
            .map(|(k, v)| format!("`{k}` = {v}"))
            .collect();
        let _ = writeln!(s, "- Sizes: {}", sizes.join(", "));
    }
    match &c.bound {
        Some(b) => {
            let m = &b.model;
            let _ = writeln!(
                s,
                "- Bound on {} CPUs: a short task alone takes {:.3} s and the long one {:.3} s{}, \
                 so fair sharing predicts {:.3} s, the best schedule reaches {:.3} s, and the \
                 best possible cut is {}{}",
                m.cpus,
                b.short_alone_s,
                b.long_alone_s,
                match (&b.long_free, b.long_width()) {
                    (Some(f), w) if w > 1.0 => format!(
                        " held to one CPU; free to use every CPU it took {:.3} s of CPU in \
                         {:.3} s, keeping {w:.2} CPUs busy, which is how the model runs it",
                        f.cpu_s, f.wall_s
                    ),
                    _ => String::new(),
                },
                m.fair_share_makespan_s,
                m.optimal_makespan_s,
                pct(m.best_cut),
                match c.captured {
                    Some(x) => format!("; this scheduler captured {} of it.", pct(x)),
                    None => ".".into(),
                }
            );
            if let (Some(best), Some(share)) = (c.ablation_best_cut, c.policy_of_best) {
                let _ = writeln!(
                    s,
                    "- Against the ablation ({:.3} s) that best schedule would cut {}; the \
                     candidate's policy cut {}, {} of it.",
                    c.ablation.mean,
                    pct(best),
                    c.policy_cut.map_or_else(|| NONE.into(), |p| pct(p.cut)),
                    pct(share)
                );
            }
            if let Some(l) = &b.list {
                let _ = writeln!(
                    s,
                    "- Run for real (the long task first, then the short ones, {} at a time, \
                     under the default scheduler) that order took {:.3} s: its long task used \
                     {:.3} s of CPU and a short one {:.3} s, {} and {} of their times alone.",
                    m.cpus,
                    l.makespan_s,
                    l.long_cpu_s,
                    l.short_cpu_s,
                    pct(l.long_cpu_s / b.long_alone_s.max(1e-9)),
                    pct(l.short_cpu_s / b.short_alone_s.max(1e-9)),
                );
                if let (Some(best), Some(share)) = (c.ablation_list_cut, c.policy_of_list) {
                    let _ = writeln!(
                        s,
                        "- Against the ablation that run cut {}; the policy's cut is {} of it.",
                        pct(best),
                        pct(share)
                    );
                }
            }
            if let Some(from) = &b.reused_from {
                let _ = writeln!(
                    s,
                    "- The bound was measured by {from} at the same sizes and reused here."
                );
            }
        }
        None => {
            let _ = writeln!(s, "- Bound: not measured, so no best cut to compare with.");
        }
    }
    for note in table::model_gap_note(c)
        .into_iter()
        .chain(table::waiting_note(c))
        .chain(table::slow_machine_note(c))
    {
        let _ = writeln!(s, "- Note: {note}.");
    }
    let _ = writeln!(s);
    if c.runs.is_empty() {
        let _ = writeln!(s, "No runs.\n");
        return;
    }
    let _ = writeln!(s, "### Runs\n");
    let _ = writeln!(
        s,
        "| # | arm | warm-up | makespan (s) | valid | scheduler | note |"
    );
    let _ = writeln!(s, "|--:|---|---|--:|---|---|---|");
    for r in &c.runs {
        let mut note: Vec<String> = Vec::new();
        if let Some(why) = &r.invalid_reason {
            note.push(cell(why));
        }
        if let Some(e) = &r.exit {
            note.push(format!("`{}`", cell(&e.line()).replace('`', "'")));
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {} | `{}` | {} |",
            r.order,
            arm_name(c, r.arm),
            if r.warmup { "yes" } else { "" },
            r.makespan_s,
            if r.valid { "valid" } else { "**invalid**" },
            cell(&r.scheduler),
            note.join(" · ")
        );
    }
    let _ = writeln!(s);
    if let Some(file) = charts::timeline_file(c) {
        let (d, u) = charts::timeline_runs(c);
        let which: Vec<String> = [d, u]
            .into_iter()
            .flatten()
            .map(|r| format!("#{} ({})", r.order, arm_name(c, r.arm)))
            .collect();
        let _ = writeln!(
            s,
            "![Task timeline of runs {}]({file})\n",
            which.join(" and ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixture;

    #[test]
    fn report_has_every_section() {
        let md = render(&fixture::bench());
        for needle in [
            "# schedgen benchmark",
            "| Kernel | 6.12.0-sched-ext |",
            "| CPUs | 2 |",
            "| Target cut | 20.0% |",
            "## Summary",
            "| case | runs | default (s) |",
            "| [ctest_suite](#ctest_suite) | 5/5 | 9.200 ± 0.158 | 6.940 ± 0.114 |",
            "**PASS** cut 24.6%",
            "1 of 3 cases passed.",
            "![Mean makespan per case, default vs custom, with the optimal makespan](bars.svg)",
            "## ctest_suite",
            "## log_processing",
            "## ddos_log_analysis",
            "best possible cut is 25.5%; this scheduler captured 96.3% of it.",
            // 9.2 s and 6.94 s against max(4.8 s, 13.38 s / 2).
            "- Schedule efficiency (makespan over the best makespan of the run's own CPU times; \
             1 is optimal): default 1.375 ± 0.024, candidate 1.037 ± 0.017",
            "- Bound: not measured",
            "`long_secs` = 4.8, `short_iters` = 220",
            "(timeline-ctest_suite.svg)",
            "Task timeline of runs #2 (default) and #3 (custom)",
            "(timeline-log_processing.svg)",
            "**Verdict: FAIL**: run 7 invalid",
            "```text\nsetup failed: tshark not found\n(install it with schedgen deps)\n```",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
        assert!(!md.contains("timeline-ddos_log_analysis"));
    }

    #[test]
    fn every_arm_gets_its_cut_against_the_default() {
        let mut r = fixture::bench();
        // Without other arms there is no such table.
        for c in &mut r.cases {
            c.ablation = Default::default();
        }
        assert!(!render(&r).contains("Every arm against the default"));

        let c = &mut r.cases[0];
        c.incumbent_path = Some("bpf-reference/fifo.bpf.c".into());
        c.incumbent.n = 3;
        c.incumbent_cut = c.cut.map(|mut e| {
            e.cut = 0.123;
            e.ci_low = 0.05;
            e.ci_high = 0.2;
            e
        });
        c.production.push(crate::bench::result::ProductionArm {
            name: "bpfland".into(),
            version: "1.1.4".into(),
            stats: Default::default(),
            cut: c.incumbent_cut.map(|mut e| {
                e.cut = -0.05;
                e
            }),
            candidate_vs: None,
        });
        let md = render(&r);
        let table = md
            .split("### Every arm against the default")
            .nth(1)
            .unwrap();
        assert!(
            table.contains("| case | default (s) | candidate | incumbent `fifo` | scx_bpfland 1.1.4 | best possible |"),
            "{table}"
        );
        let row = table
            .lines()
            .find(|l| l.starts_with("| ctest_suite |"))
            .unwrap();
        assert!(row.contains("| 12.3% [5.0%, 20.0%] |"), "{row}");
        assert!(row.contains("| -5.0% ["), "{row}");
        // A case that ran neither shows dashes.
        let other = table
            .lines()
            .find(|l| l.starts_with("| log_processing |"))
            .unwrap();
        assert!(other.matches(NONE).count() >= 2, "{other}");
    }

    #[test]
    fn every_run_is_listed_in_order_with_the_ejection() {
        let md = render(&fixture::bench());
        let section = md.split("## log_processing").nth(1).unwrap();
        let section = section.split("## ddos").next().unwrap();
        let rows: Vec<&str> = section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
            .collect();
        assert_eq!(rows.len(), 12, "{section}");
        assert!(
            rows[0].starts_with("| 0 | default | yes | 12.600 | valid |"),
            "{}",
            rows[0]
        );
        assert!(
            rows[7].starts_with("| 7 | custom |  | 3.000 | **invalid** |")
                && rows[7].contains("scheduler ejected during the run · `EXIT: ERROR_STALL: runnable task stall (ctest_long[412] failed to run for 30.2s)`"),
            "{}",
            rows[7]
        );
    }

    #[test]
    fn a_production_scheduler_is_named_in_its_runs_and_its_ejection() {
        let mut r = fixture::bench();
        let c = &mut r.cases[0];
        c.production.push(crate::bench::result::ProductionArm {
            name: "bpfland".into(),
            version: "1.1.4".into(),
            stats: Default::default(),
            cut: None,
            candidate_vs: None,
        });
        let order = c.runs.len();
        let mut run = c.runs[1].clone();
        run.arm = Arm::Production(0);
        run.order = order;
        run.valid = false;
        c.runs.push(run);
        c.retired.push(crate::bench::result::Retired {
            arm: Arm::Production(0),
            from_round: 1,
            why: "the kernel ejected it, EXIT: ERROR_STALL: runnable task stall".into(),
        });
        let md = render(&r);
        assert!(
            md.contains(
                "The scx_bpfland arm ran 1 run, then no more: the kernel ejected it, EXIT: \
                 ERROR_STALL: runnable task stall.\n"
            ),
            "{md}"
        );
        assert!(
            md.lines()
                .any(|l| l.starts_with(&format!("| {order} | scx_bpfland |"))),
            "{md}"
        );
        assert!(!md.contains("question answered"), "{md}");
    }
}
