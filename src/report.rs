//! Human-readable output: run summaries, tables, and the progress spinner factory.

use std::fmt::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::workload::result::{RunResult, RunStatus};

/// A spinner on stderr, hidden with `--quiet` or when stderr is not a terminal.
pub fn spinner(quiet: bool, prefix: &str) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:.bold} {elapsed:>4} {msg}")
            .expect("valid template"),
    );
    bar.set_prefix(prefix.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The multi-line summary of one run.
pub fn run_summary(r: &RunResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} — {} [{}]", r.test_id, r.test_name, r.status.as_str());
    if let Some(e) = &r.error {
        for line in e.lines() {
            let _ = writeln!(s, "  ! {line}");
        }
    }
    if r.status == RunStatus::Skipped || r.tasks.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "  scale {} · {} CPUs · kernel {} · scheduler {} · setup {:.2} s{}{}",
        r.scale,
        r.system.cpus,
        r.system.kernel_release,
        r.system.scheduler,
        r.setup.seconds,
        if r.setup.cached { " (cached)" } else { "" },
        if r.sequential { " · sequential" } else { "" },
    );
    let _ = writeln!(s, "  makespan        {:>8.3} s", r.makespan_s);
    for (name, g) in [("short", &r.short), ("long", &r.long)] {
        let _ = writeln!(
            s,
            "  {name:<5} ×{:<3}     wall {:>7.3} s mean ({:.3} – {:.3})   cpu {:>7.3} s mean",
            g.count, g.wall_s.mean, g.wall_s.min, g.wall_s.max, g.cpu_s.mean
        );
    }
    let _ = writeln!(
        s,
        "  imbalance {:.1}× (wall) · skew {:.1}× (cpu) · parallel efficiency {}",
        r.imbalance_ratio,
        r.skew_ratio,
        pct(r.parallel_efficiency)
    );
    if let Some(m) = &r.model {
        let _ = writeln!(
            s,
            "  model ({} CPUs): fair share {:.3} s · optimum {:.3} s · best possible cut {}",
            m.cpus,
            m.fair_share_makespan_s,
            m.optimal_makespan_s,
            pct(m.best_cut)
        );
    }
    if let Some(m) = &r.monitor {
        let lt = &m.long_tail;
        let tail = match lt.tail_task {
            Some(t) => format!(
                "task {t} ({}){}{}",
                lt.tail_comms.join(", "),
                if lt.detected {
                    " = the long task"
                } else {
                    " (a short task!)"
                },
                if lt.matches_hint {
                    ", matches the case's hint"
                } else {
                    ""
                }
            ),
            None => "none".into(),
        };
        let _ = writeln!(
            s,
            "  monitor: {} processes in {} samples · tail {} · sampled skew {:.1}× · monitor cpu {} of a core",
            m.processes.len(),
            m.samples,
            tail,
            lt.skew_ratio,
            pct(m.self_cpu_share)
        );
    }
    if !r.cleanup.ok {
        let _ = writeln!(
            s,
            "  ! {}",
            r.cleanup.error.as_deref().unwrap_or("cleanup failed")
        );
    }
    s
}

/// One line per case, for `run --all`.
pub fn suite_table(results: &[RunResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{:<24} {:<11} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "CASE", "STATUS", "MAKESPAN", "SHORT", "LONG", "IMBAL", "BEST CUT"
    );
    for r in results {
        if r.tasks.is_empty() {
            let _ = writeln!(s, "{:<24} {:<11}", r.test_id, r.status.as_str());
            continue;
        }
        let _ = writeln!(
            s,
            "{:<24} {:<11} {:>9.2}s {:>9.2}s {:>9.2}s {:>8.1}× {:>9}",
            r.test_id,
            r.status.as_str(),
            r.makespan_s,
            r.short.wall_s.mean,
            r.long.wall_s.max,
            r.imbalance_ratio,
            r.model.map(|m| pct(m.best_cut)).unwrap_or_default()
        );
    }
    let count = |st: RunStatus| results.iter().filter(|r| r.status == st).count();
    let _ = writeln!(
        s,
        "{} succeeded, {} failed, {} timed out, {} skipped",
        count(RunStatus::Success),
        count(RunStatus::Failed),
        count(RunStatus::Timeout),
        count(RunStatus::Skipped)
    );
    s
}
