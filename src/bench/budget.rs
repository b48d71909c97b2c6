//! How long a candidate's benchmark will take in the VM, predicted before any run, and the sizes
//! that bring its verdict within a time budget.
//!
//! A benchmark's time is mostly the arms' makespans, and those follow from the tasks' CPU times
//! in the VM: the default scheduler and the ablation take about the fair-sharing makespan, the
//! candidate about the best one (the CPU-time model of [`crate::model`]). Everything else is a
//! few fixed costs, measured here. The sizing shrinks every size until the slowest verdict (all
//! `runs` rounds, the ablation retiring once it can be answered) fits, but never so far that start-up
//! is more than [`super::sizing::MAX_STARTUP_SHARE`] of a short task.

use crate::case::SHORT_TASKS;
use crate::model::{ideal_wide_long, Demand, MakespanModel};

/// Wall seconds a run costs besides its makespan: spawning the tasks' shells up to their
/// starting line, attaching and detaching a scheduler, collecting the results
/// (ctest_suite, 2026-12-07: 0.8-1.4 s a run, the scheduler arms' the slower).
pub const RUN_OVERHEAD_S: f64 = 1.2;

/// How much longer than the CPU-time model predicts a run's makespan may be: the tasks take a
/// little more CPU beside each other than the sizing measured, and some runs are slow
/// (ctest_suite at a 3-minute budget's sizes, 2026-12-07: 7.8 s and 11.8 s predicted for the
/// candidate and the default; 8.0-8.6 s and 11.7-12.3 s measured, one default run 14.4 s).
pub const SLOW_RUNS: f64 = 1.05;

/// Wall seconds from starting QEMU to the first measurement (2.5-2.6 s measured on 2026-12-07).
pub const BOOT_S: f64 = 3.0;

/// What the benchmark runs, as far as its time goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Most runs per arm.
    pub runs: usize,
    /// Runs per arm before the verdict may settle; below `runs`, the ablation retires once the
    /// candidate beats it (`summarize::ANSWER_FROM`).
    pub min_runs: usize,
    pub ablation: bool,
    /// Seconds the candidate runs under load first, in the same boot; 0 when not verified there.
    pub verify_s: f64,
    /// Whether the benchmark times the bound itself; `generate`'s reuse the one its
    /// preparation measured.
    pub bound: bool,
    /// Whether a warm-up run precedes the measured rounds: only in a boot that neither ran the
    /// bound's list run nor holds the case's data and programs in the guest's memory.
    pub warm_up: bool,
    /// Whether a scheduler runs head to head as an arm of its own (the confirmation's accepted
    /// one).
    pub incumbent: bool,
}

impl Plan {
    /// The same benchmark when it settles at `min_runs`: at most that many runs per arm, with
    /// early stopping still on, so the ablation retires as in the full plan.
    pub fn settled_early(&self) -> Plan {
        Plan {
            runs: self.min_runs,
            min_runs: super::summarize::ANSWER_FROM.min(self.min_runs),
            ..*self
        }
    }
}

/// A benchmark's predicted wall time, in parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Booting and verifying.
    pub fixed_s: f64,
    /// Timing tasks alone and the longest-first order (the bound), or the warm-up run, if
    /// any, of a benchmark that reuses an earlier bound.
    pub bound_s: f64,
    /// Every arm's runs until the slowest verdict.
    pub runs_s: f64,
}

impl Estimate {
    pub fn total_s(&self) -> f64 {
        self.fixed_s + self.bound_s + self.runs_s
    }
}

/// Predict the benchmark of 39 short tasks of `short_s` and the long one `long` (CPU seconds as
/// a run has them in the VM, at its width) on `cpus` CPUs, when every arm runs `plan.runs` times.
pub fn predict(short_s: f64, long: Demand, cpus: usize, plan: &Plan) -> Estimate {
    let mut tasks = vec![Demand::serial(short_s); SHORT_TASKS];
    tasks.push(long);
    let m = MakespanModel::from_tasks(&tasks, cpus);
    let long_s = long.cpu_s;
    // A wide long task is timed a second time, free: at its width.
    let free_s = if long.width > 1.0 {
        long_s / long.width
    } else {
        0.0
    };
    let (fair, best) = (
        m.fair_share_makespan_s * SLOW_RUNS,
        m.optimal_makespan_s * SLOW_RUNS,
    );
    // Two short tasks and the long one alone in one run, then the list run (about the best
    // makespan).
    let bound_s = if plan.bound {
        2.0 * short_s + long_s + free_s + best + 2.0 * RUN_OVERHEAD_S
    } else if plan.warm_up {
        best + RUN_OVERHEAD_S
    } else {
        0.0
    };
    let runs = plan.runs.max(plan.min_runs);
    // The ablation retires once the candidate beats it, which ctest_suite's does from the
    // first count that can show it; without early stopping every arm runs every time.
    let with_ablation = match (plan.ablation, plan.min_runs < runs) {
        (false, _) => 0,
        (true, true) => super::summarize::ANSWER_FROM,
        (true, false) => runs,
    };
    let runs_s = runs as f64 * (fair + best + 2.0 * RUN_OVERHEAD_S)
        + with_ablation as f64 * (fair + RUN_OVERHEAD_S);
    // The accepted scheduler runs about as the candidate does.
    let runs_s = runs_s
        + if plan.incumbent {
            runs as f64 * (best + RUN_OVERHEAD_S)
        } else {
            0.0
        };
    let verify_s = if plan.verify_s > 0.0 {
        plan.verify_s + RUN_OVERHEAD_S
    } else {
        0.0
    };
    Estimate {
        fixed_s: BOOT_S + verify_s,
        bound_s,
        runs_s,
    }
}

/// Sizes whose slowest verdict fits `budget_s`: the factor on every size, between `lowest` (the
/// smallest sizes allowed) and 1 (never larger), and what it predicts. `times(factor)` gives a
/// short task's and the long task's CPU seconds in the VM at `factor` times today's sizes, as a
/// run has them (measured at 1, predicted elsewhere; the long one stretched as the sizing
/// stretches it). `None` when today's sizes already fit.
pub fn fit(
    times: &dyn Fn(f64) -> (f64, Demand),
    cpus: usize,
    plan: &Plan,
    budget_s: f64,
    lowest: f64,
) -> Option<(f64, Estimate)> {
    let at = |f: f64| {
        let (short_s, long) = times(f);
        predict(short_s, long, cpus, plan)
    };
    if at(1.0).total_s() <= budget_s {
        return None;
    }
    let lowest = lowest.clamp(0.0, 1.0);
    if at(lowest).total_s() > budget_s {
        return Some((lowest, at(lowest)));
    }
    // The prediction grows with the sizes (in steps, where integer sizes round): bisect for the
    // largest factor that fits.
    let (mut lo, mut hi) = (lowest, 1.0);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if at(mid).total_s() <= budget_s {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((lo, at(lo)))
}

/// The ideal long task `width` CPUs wide for a short one of `short_s` on `cpus` CPUs, no shorter
/// than `floor_s` and no longer than `cap_s`: what the sizing's stretch aims at.
pub fn stretched_long(short_s: f64, cpus: usize, width: f64, floor_s: f64, cap_s: f64) -> f64 {
    ideal_wide_long(SHORT_TASKS, short_s, cpus, width).min(cap_s.max(floor_s))
}

/// Minutes and seconds, for messages.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 60 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// `generate`'s defaults: 5 runs per arm, settled from 3, the ablation, 10 s of verification.
#[cfg(test)]
pub(crate) const GENERATE_DEFAULTS: Plan = Plan {
    runs: 5,
    min_runs: 3,
    ablation: true,
    verify_s: 10.0,
    bound: false,
    warm_up: false,
    incumbent: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: Plan = GENERATE_DEFAULTS;

    /// A short task of `short_s` at factor 1, `startup_s` of it fixed, and the long task at its
    /// ideal length for it.
    fn linear(short_s: f64, startup_s: f64) -> impl Fn(f64) -> (f64, Demand) {
        move |f| {
            let short = startup_s + (short_s - startup_s) * f;
            let long = stretched_long(short, 2, 1.0, 0.0, f64::INFINITY);
            (short, Demand::serial(long))
        }
    }

    #[test]
    fn predicts_the_quick_starts_round_one_from_its_task_times() {
        // ctest_suite on 2026-12-07 at --short-target 0.01: a short task 0.208 s as a run has
        // it, the long one stretched to 8.1 s; measured: the bound 18 s, a round of the three
        // arms 34-35 s, all 5 runs per arm 172 s after 13 s of boot and verification.
        let timing_its_bound = Plan {
            bound: true,
            ..PLAN
        };
        let e = predict(0.208, Demand::serial(8.1), 2, &timing_its_bound);
        assert!((16.0..21.0).contains(&e.bound_s), "{e:?}");
        // generate's reuse the preparation's bound, and need no warm-up with everything in
        // the guest's memory.
        assert_eq!(predict(0.208, Demand::serial(8.1), 2, &PLAN).bound_s, 0.0);
        let five = Plan {
            runs: 5,
            min_runs: 5,
            ..PLAN
        };
        let all = predict(0.208, Demand::serial(8.1), 2, &five);
        assert!((165.0..195.0).contains(&all.runs_s), "{all:?}");
        assert!((12.0..15.0).contains(&e.fixed_s), "{e:?}");
        // The ablation retiring after 2 runs saves three of its runs.
        assert!(e.runs_s < all.runs_s - 3.0 * 11.0, "{e:?} {all:?}");
    }

    #[test]
    fn predicts_the_quick_starts_confirmation() {
        // ctest_suite on 2026-12-07 at the default sizes: a short task 0.375 s as a run has
        // it, the long one 14.7 s; the confirmation's boot, with the accepted scheduler as a
        // fourth arm, stopped after 3 runs per arm (the ablation after 2) in 3 min 47 s and
        // 3 min 56 s.
        let confirm = Plan {
            verify_s: 0.0,
            bound: false,
            warm_up: true,
            incumbent: true,
            ..PLAN
        };
        let e = predict(0.375, Demand::serial(14.7), 2, &confirm.settled_early());
        assert!((215.0..250.0).contains(&e.total_s()), "{e:?}");
        assert_eq!(e.fixed_s, BOOT_S);
        // A warm-up run, not the bound: about the candidate's makespan.
        assert!((14.0..18.0).contains(&e.bound_s), "{e:?}");
        // Without it (the programs in the guest's memory), that much less.
        let cold = predict(
            0.375,
            Demand::serial(14.7),
            2,
            &Plan {
                warm_up: false,
                ..confirm
            }
            .settled_early(),
        );
        assert_eq!(cold.total_s(), e.total_s() - e.bound_s);
    }

    #[test]
    fn a_long_task_wider_than_one_cpu_is_predicted_at_its_width() {
        // log_pipeline on 2026-12-08: a short task 0.294 s and the long one 23.574 s as the
        // list run had them, 19.594 s of CPU in 15.575 s free; generate's round (3 runs per
        // arm, no early stop) took 209 s from its boot to its verdict.
        let plan = Plan {
            runs: 3,
            min_runs: 3,
            ..PLAN
        };
        let wide = Demand {
            cpu_s: 23.574,
            width: 19.594 / 15.575,
        };
        let e = predict(0.294, wide, 2, &plan);
        assert!((185.0..245.0).contains(&e.total_s()), "{e:?}");
        // Held to one CPU in the model it would take far longer than it did.
        let serial = predict(0.294, Demand::serial(23.574), 2, &plan);
        assert!(serial.total_s() > 260.0, "{serial:?}");
        // Timing its bound times it free as well.
        let bound = Plan {
            bound: true,
            ..plan
        };
        let (b_wide, b_serial) = (
            predict(0.294, wide, 2, &bound).bound_s,
            predict(0.294, Demand::serial(23.574), 2, &bound).bound_s,
        );
        // The free timing (18.7 s) outweighs the shorter list run (19.7 s for 24.8 s).
        assert!(b_wide > b_serial + 10.0, "{b_wide} {b_serial}");
    }

    #[test]
    fn shrinks_the_sizes_until_the_slowest_verdict_fits() {
        let t = linear(0.36, 0.0);
        let (f, e) = fit(&t, 2, &PLAN, 180.0, 0.01).expect("0.36 s tasks do not fit 3 minutes");
        assert!(e.total_s() <= 180.0 && e.total_s() > 175.0, "{f} {e:?}");
        assert!((0.4..0.7).contains(&f), "{f}");
        // Already small enough: nothing to do.
        assert_eq!(fit(&t, 2, &PLAN, 600.0, 0.01), None);
    }

    #[test]
    fn stops_at_the_smallest_sizes_allowed_and_says_what_they_cost() {
        // Mostly start-up: shrinking barely helps, and the floor holds.
        let t = linear(1.0, 0.9);
        let (f, e) = fit(&t, 2, &PLAN, 180.0, 0.5).expect("over budget");
        assert_eq!(f, 0.5);
        assert!(e.total_s() > 180.0, "{e:?}");
    }

    #[test]
    fn tells_minutes_and_seconds() {
        assert_eq!(clock(175.4), "2 min 55 s");
        assert_eq!(clock(42.0), "42 s");
        assert_eq!(clock(180.0), "3 min");
    }
}
