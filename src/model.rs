//! The makespan model: what fair sharing predicts, what the best schedule could reach.
//!
//! Given the CPU demand of every task (seconds of CPU each needs) and `n` CPUs, all tasks started
//! together:
//! - *fair sharing* (processor sharing, what CFS/EEVDF approximate) gives every runnable task an
//!   equal share `min(1, n/m)` of a CPU while `m` tasks remain;
//! - the *preemptive optimum* (McNaughton) is `max(longest task, total work / n)`.
//!
//! For k short tasks of length s and one long task L this reduces to
//! `F = ((k+1)/n)·s + (L − s)` and `O = max(L, (L + k·s)/n)`, and the best possible cut
//! `1 − O/F` peaks when `L = k·s/(n−1)` (32.8% for n = 2, 40.9% for n = 4).
//!
//! A task may use more than one CPU at once: the stages of a pipeline (`cat | awk | sort`)
//! run side by side, a multi-threaded program spreads. Its *width* `w` is how many CPUs' worth
//! of its work it does at once when it has them all (its CPU time over its wall time alone).
//! Fair sharing then gives it at most `w` CPUs, and no schedule ends it before `L/w`; the most
//! a scheduler can gain shrinks as `w` nears `n`, where the long task alone fills the machine.

use serde::{Deserialize, Serialize};

/// The bound for one set of task demands on one CPU count.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct MakespanModel {
    pub cpus: usize,
    /// Predicted makespan under fair sharing.
    pub fair_share_makespan_s: f64,
    /// Shortest makespan any schedule can reach.
    pub optimal_makespan_s: f64,
    /// `1 − optimal / fair_share`: the most a scheduler can cut.
    pub best_cut: f64,
}

/// One task's demand: its CPU seconds and how many CPUs it can keep busy at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    pub cpu_s: f64,
    /// At least 1: one thread of work.
    pub width: f64,
}

impl Demand {
    /// A task that runs on one CPU at a time.
    pub fn serial(cpu_s: f64) -> Demand {
        Demand { cpu_s, width: 1.0 }
    }
}

impl MakespanModel {
    /// Build the model from measured per-task CPU demands, each task on one CPU at a time.
    pub fn from_demands(demands: &[f64], cpus: usize) -> MakespanModel {
        let tasks: Vec<Demand> = demands.iter().copied().map(Demand::serial).collect();
        MakespanModel::from_tasks(&tasks, cpus)
    }

    /// Build the model from tasks that may use several CPUs at once.
    pub fn from_tasks(tasks: &[Demand], cpus: usize) -> MakespanModel {
        let fair = fair_share_of(tasks, cpus);
        let opt = optimal_of(tasks, cpus);
        let best_cut = if fair > 0.0 { 1.0 - opt / fair } else { 0.0 };
        MakespanModel {
            cpus,
            fair_share_makespan_s: fair,
            optimal_makespan_s: opt,
            best_cut,
        }
    }
}

/// Processor-sharing makespan of tasks that may use several CPUs: the `n` CPUs split equally
/// among the remaining tasks, a task never getting more than its width, what it cannot use
/// going to the others. Simulated from one task's end to the next.
pub fn fair_share_of(tasks: &[Demand], cpus: usize) -> f64 {
    let n = cpus.max(1) as f64;
    // (CPU seconds still to do, width), narrowest first for the sharing out.
    let mut rest: Vec<(f64, f64)> = tasks
        .iter()
        .filter(|t| t.cpu_s > 0.0)
        .map(|t| (t.cpu_s, t.width.max(1.0)))
        .collect();
    rest.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut time = 0.0;
    while !rest.is_empty() {
        let rates = shares(&rest, n);
        let step = rest
            .iter()
            .zip(&rates)
            .map(|((left, _), r)| left / r)
            .fold(f64::INFINITY, f64::min);
        time += step;
        for ((left, _), r) in rest.iter_mut().zip(&rates) {
            *left -= r * step;
        }
        // A relative tolerance: the task that set the step ends exactly, others near it too.
        rest.retain(|(left, _)| *left > 1e-12 * step.max(1.0));
    }
    time
}

/// Each task's CPUs under fair sharing: an equal share of what is left, capped at its width.
/// `tasks` are narrowest first, so a capped task's leftover goes to the wider ones after it.
fn shares(tasks: &[(f64, f64)], n: f64) -> Vec<f64> {
    let mut left = n;
    let mut rates = Vec::with_capacity(tasks.len());
    for (i, (_, width)) in tasks.iter().enumerate() {
        let share = left / (tasks.len() - i) as f64;
        let rate = share.min(*width);
        left -= rate;
        rates.push(rate);
    }
    rates
}

/// The shortest makespan of tasks that may use several CPUs: no task ends before its CPU time
/// over its width, and the CPUs cannot do the work faster than all of them together.
pub fn optimal_of(tasks: &[Demand], cpus: usize) -> f64 {
    let longest = tasks
        .iter()
        .map(|t| t.cpu_s / t.width.max(1.0))
        .fold(0.0, f64::max);
    let total: f64 = tasks.iter().map(|t| t.cpu_s).sum();
    longest.max(total / cpus.max(1) as f64)
}

/// Processor-sharing makespan of tasks that each run on one CPU at a time.
pub fn fair_share_makespan(demands: &[f64], cpus: usize) -> f64 {
    let tasks: Vec<Demand> = demands.iter().copied().map(Demand::serial).collect();
    fair_share_of(&tasks, cpus)
}

/// McNaughton's bound, reachable by a preemptive schedule.
pub fn optimal_makespan(demands: &[f64], cpus: usize) -> f64 {
    let tasks: Vec<Demand> = demands.iter().copied().map(Demand::serial).collect();
    optimal_of(&tasks, cpus)
}

/// The long task length that maximises the best possible cut for `k` short tasks of length `s`.
pub fn ideal_long(k: usize, s: f64, cpus: usize) -> f64 {
    ideal_wide_long(k, s, cpus, 1.0)
}

/// The same for a long task `width` CPUs wide: the length at which it alone, on its `width`
/// CPUs, takes as long as all the work on all the CPUs (`L/w = (L + k·s)/n`). Infinite when it
/// can fill the machine by itself: then no length leaves room to cut.
pub fn ideal_wide_long(k: usize, s: f64, cpus: usize, width: f64) -> f64 {
    let (n, w) = (cpus as f64, width.max(1.0));
    if n - w <= 1e-9 {
        return f64::INFINITY;
    }
    k as f64 * s * w / (n - w)
}

/// The best possible cut at the long task's ideal length, for `k` short tasks and a long task
/// `width` CPUs wide on `cpus` CPUs: the most any sizes can offer, whatever the short task's
/// length (the cut depends only on the ratio). 0 when the long task fills the machine alone.
pub fn best_cut_at_ideal_length(k: usize, cpus: usize, width: f64) -> f64 {
    let long = ideal_wide_long(k, 1.0, cpus, width);
    if !long.is_finite() {
        return 0.0;
    }
    let mut tasks = vec![Demand::serial(1.0); k];
    tasks.push(Demand {
        cpu_s: long,
        width: width.max(1.0),
    });
    MakespanModel::from_tasks(&tasks, cpus).best_cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(s: f64, l: f64) -> Vec<f64> {
        let mut v = vec![s; 39];
        v.push(l);
        v
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn matches_closed_form() {
        for (n, s, l) in [
            (2, 0.22, 4.8),
            (4, 1.0, 13.0),
            (8, 0.5, 2.0),
            (2, 1.0, 39.0),
        ] {
            let m = MakespanModel::from_demands(&suite(s, l), n);
            let f = (40.0 / n as f64) * s + (l - s);
            let o = l.max((l + 39.0 * s) / n as f64);
            assert!(
                close(m.fair_share_makespan_s, f),
                "n={n}: {} vs {f}",
                m.fair_share_makespan_s
            );
            assert!(close(m.optimal_makespan_s, o));
        }
    }

    #[test]
    fn best_cuts_from_the_environment_notes() {
        let cut = |n: usize| {
            let l = ideal_long(39, 1.0, n);
            MakespanModel::from_demands(&suite(1.0, l), n).best_cut
        };
        assert!((cut(2) - 0.328).abs() < 0.001, "{}", cut(2));
        assert!((cut(4) - 0.409).abs() < 0.001, "{}", cut(4));
        assert!((cut(8) - 0.418).abs() < 0.001, "{}", cut(8));
    }

    #[test]
    fn the_tcg_measurement_in_environment_md() {
        // s = 0.22, L = 4.8, 2 CPUs: model says 8.95 s fair, 6.7 s optimal.
        let m = MakespanModel::from_demands(&suite(0.22, 4.8), 2);
        assert!((m.fair_share_makespan_s - 8.98).abs() < 0.05);
        assert!((m.optimal_makespan_s - 6.69).abs() < 0.05);
    }

    fn wide_suite(s: f64, l: f64, w: f64) -> Vec<Demand> {
        let mut v = vec![Demand::serial(s); 39];
        v.push(Demand { cpu_s: l, width: w });
        v
    }

    #[test]
    fn a_width_of_one_is_the_serial_model() {
        for (n, s, l) in [(2, 0.22, 4.8), (4, 1.0, 13.0), (8, 0.5, 2.0)] {
            let serial = MakespanModel::from_demands(&suite(s, l), n);
            let wide = MakespanModel::from_tasks(&wide_suite(s, l, 1.0), n);
            assert!(close(
                serial.fair_share_makespan_s,
                wide.fair_share_makespan_s
            ));
            assert!(close(serial.optimal_makespan_s, wide.optimal_makespan_s));
        }
    }

    #[test]
    fn a_wide_long_task_runs_its_tail_on_its_width() {
        // 2 CPUs, 39 short tasks of 0.3 s and a long one of 10.5 s, 1.75 CPUs wide.
        // While 40 share 2 CPUs every task gets 0.05 CPU, so the short ones end together at
        // 40·0.3/2 = 6 s, the long one having had 0.3 s; its 10.2 s left take 10.2/1.75.
        let m = MakespanModel::from_tasks(&wide_suite(0.3, 10.5, 1.75), 2);
        assert!(close(m.fair_share_makespan_s, 6.0 + 10.2 / 1.75));
        // All the work on both CPUs is longer than the long task alone on its 1.75.
        assert!(close(m.optimal_makespan_s, (10.5 + 39.0 * 0.3) / 2.0));
        let serial = MakespanModel::from_demands(&suite(0.3, 10.5), 2);
        assert!(m.best_cut < serial.best_cut / 3.0, "{}", m.best_cut);
    }

    #[test]
    fn what_a_capped_task_cannot_use_goes_to_the_others() {
        // 4 CPUs, a serial task and a task 8 wide: the wide one gets 3 CPUs, not 2.
        let tasks = [
            Demand::serial(3.0),
            Demand {
                cpu_s: 9.0,
                width: 8.0,
            },
        ];
        assert!(close(fair_share_of(&tasks, 4), 3.0));
        // Once the serial one ends the wide one has all 4.
        let tasks = [
            Demand::serial(1.0),
            Demand {
                cpu_s: 9.0,
                width: 8.0,
            },
        ];
        assert!(close(fair_share_of(&tasks, 4), 1.0 + 6.0 / 4.0));
    }

    #[test]
    fn the_ideal_wide_long_task_balances_its_own_time_and_the_machines() {
        let (s, w) = (0.3, 1.5);
        let l = ideal_wide_long(39, s, 2, w);
        assert!(close(l / w, (l + 39.0 * s) / 2.0));
        assert!(close(ideal_wide_long(39, s, 2, 1.0), ideal_long(39, s, 2)));
        // The best cut peaks there, and is smaller than a serial long task's peak.
        let cut = |l: f64| MakespanModel::from_tasks(&wide_suite(s, l, w), 2).best_cut;
        assert!(cut(l) >= cut(l * 0.8) && cut(l) >= cut(l * 1.25));
        assert!(cut(l) < 0.328 && cut(l) > 0.05, "{}", cut(l));
        assert!(ideal_wide_long(39, s, 2, 2.0).is_infinite());
    }

    #[test]
    fn the_most_any_length_offers_shrinks_with_the_long_tasks_width() {
        // The serial peak of the module's doc: 32.8% on 2 CPUs, 40.9% on 4.
        assert!((0.327..0.329).contains(&best_cut_at_ideal_length(39, 2, 1.0)));
        assert!((0.405..0.413).contains(&best_cut_at_ideal_length(39, 4, 1.0)));
        // log_processing's `gzip | grep | awk` kept 1.67 of 2 CPUs busy: about 14% at most.
        let wide = best_cut_at_ideal_length(39, 2, 1.67);
        assert!((0.13..0.15).contains(&wide), "{wide}");
        assert_eq!(best_cut_at_ideal_length(39, 2, 2.0), 0.0);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(fair_share_makespan(&[], 2), 0.0);
        assert_eq!(MakespanModel::from_demands(&[], 2).best_cut, 0.0);
        // More CPUs than tasks: everyone runs at full speed.
        assert!(close(fair_share_makespan(&[1.0, 3.0], 4), 3.0));
    }
}
