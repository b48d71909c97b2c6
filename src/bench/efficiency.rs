//! Schedule efficiency: how close each run came to the best schedule of the work it did.
//!
//! A run's efficiency is its makespan over the shortest makespan its own tasks' CPU times allow
//! on the CPUs it had (McNaughton's `max(longest task, total / cpus)`); 1 is a perfect schedule.
//! Under emulation every run gets its own CPU speed, which stretches every task's CPU time and the
//! makespan alike. The speed cancels in the ratio: on the CPU-bound cases measured, the default's
//! and the ablation's efficiency varied by 0.2–3.9% between runs, less than their makespans in 20
//! arms of 22.
//!
//! What the ratio leaves out is the CPU time itself: a scheduler that makes tasks cheaper (fewer
//! context switches, a long task that keeps its CPU) shortens the makespan without changing its
//! efficiency. So a makespan cut splits into an order part, the efficiency's, and a work part, the
//! CPU time's. Efficiency also assumes CPU-bound tasks: time a task spends blocked on I/O keeps
//! even a perfect schedule above 1.

use serde::{Deserialize, Serialize};

use super::result::{Arm, RunSample};
use crate::model::{optimal_of, Demand};
use crate::stats::{self, ArmStats, CutEstimate};
use crate::workload::result::Group;

/// Below this much room over the ablation, a share of it means nothing.
const MIN_HEADROOM: f64 = 0.01;

/// Each arm's efficiency and what follows from it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Efficiency {
    pub default: ArmStats,
    pub custom: ArmStats,
    /// n = 0 when no ablation ran.
    pub ablation: ArmStats,
    /// The candidate against the default on efficiency: the cut its order gives, the CPU time
    /// it saves aside (`1 − custom/default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_cut: Option<CutEstimate>,
    /// The candidate against its ablation on efficiency: the part of the policy's gain that is
    /// order (`1 − custom/ablation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_order_cut: Option<CutEstimate>,
    /// The best possible cut against the ablation: the cut the best schedule of the ablation's
    /// own work would give over it (`1 − Σ optimum / Σ makespan` over its runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ablation_headroom: Option<f64>,
    /// The policy's makespan cut (candidate against ablation) as a share of that headroom. Can
    /// exceed 1: CPU time the policy saves is not in the headroom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_captured: Option<f64>,
    /// Where the machine's CPU time went during each arm's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_default: Option<CpuSplit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_custom: Option<CpuSplit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ablation: Option<CpuSplit>,
}

/// The machine's CPU time during an arm's runs, as shares of it (summed over the runs): in the
/// tasks' processes, elsewhere (the kernel's threads and interrupts, the runner, the
/// classifier, the emulator's own work inside the guest), and idle. An idle share well above
/// zero while tasks were still waiting means the schedule left a CPU unused; CPU-bound tasks
/// blocked on I/O show up there too.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct CpuSplit {
    pub tasks: f64,
    pub other: f64,
    pub idle: f64,
}

/// The split over `arm`'s measured runs that recorded the machine's time.
fn cpu_split(runs: &[RunSample], arm: Arm) -> Option<CpuSplit> {
    let (mut tasks, mut busy, mut idle) = (0.0, 0.0, 0.0);
    for r in measured(runs, arm) {
        let Some(m) = r.machine_cpu else { continue };
        tasks += r.tasks.iter().map(|t| t.cpu_s).sum::<f64>();
        busy += m.busy_s;
        idle += m.idle_s;
    }
    let total = busy + idle;
    (total > 0.0).then(|| {
        // Tick-based machine counters and rusage disagree by a tick or two; never below zero.
        let tasks = tasks.min(busy);
        CpuSplit {
            tasks: tasks / total,
            other: (busy - tasks) / total,
            idle: idle / total,
        }
    })
}

/// The best makespan `run`'s tasks' CPU times allow on `cpus` CPUs, when it has tasks, its
/// long task `long_width` CPUs wide ([`super::result::Bound::long_width`]).
pub fn optimum(run: &RunSample, cpus: usize, long_width: f64) -> Option<f64> {
    let tasks: Vec<Demand> = run
        .tasks
        .iter()
        .map(|t| Demand {
            cpu_s: t.cpu_s,
            width: if t.group == Group::Long {
                long_width
            } else {
                1.0
            },
        })
        .collect();
    let best = optimal_of(&tasks, cpus);
    (best > 0.0).then_some(best)
}

/// `run`'s makespan over its optimum.
pub fn of_run(run: &RunSample, cpus: usize, long_width: f64) -> Option<f64> {
    optimum(run, cpus, long_width).map(|o| run.makespan_s / o)
}

fn measured(runs: &[RunSample], arm: Arm) -> impl Iterator<Item = &RunSample> {
    runs.iter()
        .filter(move |r| r.arm == arm && r.valid && !r.warmup)
}

fn efficiencies(runs: &[RunSample], arm: Arm, cpus: usize, long_width: f64) -> Vec<f64> {
    measured(runs, arm)
        .filter_map(|r| of_run(r, cpus, long_width))
        .collect()
}

/// Efficiency per arm from a case's runs, `None` when no run recorded its tasks' CPU times.
/// `policy_cut` is the case's makespan cut against its ablation; `long_width` the long task's
/// width as its bound measured it (1 without one).
pub fn of_case(
    runs: &[RunSample],
    cpus: usize,
    long_width: f64,
    policy_cut: Option<&CutEstimate>,
) -> Option<Efficiency> {
    let d = efficiencies(runs, Arm::Default, cpus, long_width);
    let c = efficiencies(runs, Arm::Custom, cpus, long_width);
    let a = efficiencies(runs, Arm::Ablation, cpus, long_width);
    if d.is_empty() && c.is_empty() {
        return None;
    }
    let both = |x: &[f64], y: &[f64]| (!x.is_empty() && !y.is_empty()).then(|| stats::cut(x, y));
    let (opt, span) = measured(runs, Arm::Ablation)
        .filter_map(|r| optimum(r, cpus, long_width).map(|o| (o, r.makespan_s)))
        .fold((0.0, 0.0), |(o, m), (ro, rm)| (o + ro, m + rm));
    let ablation_headroom = (span > 0.0).then(|| 1.0 - opt / span);
    let policy_captured = match (policy_cut, ablation_headroom) {
        (Some(p), Some(h)) if h >= MIN_HEADROOM => Some(p.cut / h),
        _ => None,
    };
    Some(Efficiency {
        default: stats::describe(&d),
        custom: stats::describe(&c),
        ablation: stats::describe(&a),
        order_cut: both(&d, &c),
        policy_order_cut: both(&a, &c),
        ablation_headroom,
        policy_captured,
        cpu_default: cpu_split(runs, Arm::Default),
        cpu_custom: cpu_split(runs, Arm::Custom),
        cpu_ablation: cpu_split(runs, Arm::Ablation),
    })
}

/// The efficiency in words, for a report: each arm's, and what the policy took of the room
/// its ablation left.
pub fn describe(e: &Efficiency) -> Vec<String> {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let cut = |c: &CutEstimate| {
        if c.ci_low.is_finite() {
            format!("{} [{}, {}]", pct(c.cut), pct(c.ci_low), pct(c.ci_high))
        } else {
            pct(c.cut)
        }
    };
    let arm = |s: &ArmStats| format!("{:.3} ± {:.3}", s.mean, s.sd);
    let mut arms = vec![
        format!("default {}", arm(&e.default)),
        format!("candidate {}", arm(&e.custom)),
    ];
    if e.ablation.n > 0 {
        arms.push(format!("ablation {}", arm(&e.ablation)));
    }
    let mut lines = vec![format!(
        "Schedule efficiency (makespan over the best makespan of the run's own CPU times; 1 is \
         optimal): {}",
        arms.join(", ")
    )];
    if let Some(o) = &e.order_cut {
        lines.push(format!(
            "The candidate's order against the default's, CPU time aside: {}",
            cut(o)
        ));
    }
    if let (Some(h), Some(o)) = (e.ablation_headroom, &e.policy_order_cut) {
        let share = e.policy_captured.map_or_else(String::new, |s| {
            format!("; its cut against the ablation is {} of that room", pct(s))
        });
        lines.push(format!(
            "The best schedule of the ablation's own work would have cut {} of its makespan; \
             the candidate's order against the ablation's: {}{share}",
            pct(h),
            cut(o)
        ));
    }
    let split = |name: &str, c: &Option<CpuSplit>| {
        c.map(|c| {
            format!(
                "{name} {:.0}/{:.0}/{:.0}%",
                c.tasks * 100.0,
                c.other * 100.0,
                c.idle * 100.0
            )
        })
    };
    let splits: Vec<String> = [
        split("default", &e.cpu_default),
        split("candidate", &e.cpu_custom),
        split("ablation", &e.cpu_ablation),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !splits.is_empty() {
        lines.push(format!(
            "The machine's CPU time during the runs, in the tasks / elsewhere / idle: {}",
            splits.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::TaskTime;
    use crate::workload::result::Group;

    /// A run whose 40 tasks used `speed` × (39 × 1 s + 39 s) of CPU and ended at `makespan`.
    fn run(arm: Arm, speed: f64, makespan: f64) -> RunSample {
        let mut tasks: Vec<TaskTime> = (0..39)
            .map(|i| TaskTime {
                index: i + 1,
                group: Group::Short,
                start_s: 0.0,
                end_s: makespan,
                cpu_s: speed,
                cpu_before_start_s: 0.0,
                sys_s: 0.0,
                involuntary_switches: 0,
            })
            .collect();
        tasks.push(TaskTime {
            index: 0,
            group: Group::Long,
            start_s: 0.0,
            end_s: makespan,
            cpu_s: 39.0 * speed,
            cpu_before_start_s: 0.0,
            sys_s: 0.0,
            involuntary_switches: 0,
        });
        RunSample {
            arm,
            order: 0,
            warmup: false,
            makespan_s: makespan,
            scheduler: "default".into(),
            valid: true,
            invalid_reason: None,
            exit: None,
            classifier: None,
            tasks,
            machine_cpu: None,
            machine_memory: None,
            timing: None,
        }
    }

    #[test]
    fn the_run_speed_cancels() {
        // The optimum of 39 × 1 s + 39 s on 2 CPUs is 39 s; a run 20% slower throughout has a
        // 20% longer optimum and makespan, and the same efficiency.
        let fast = run(Arm::Default, 1.0, 58.5);
        let slow = run(Arm::Default, 1.2, 58.5 * 1.2);
        assert!((optimum(&fast, 2, 1.0).unwrap() - 39.0).abs() < 1e-9);
        assert!((of_run(&fast, 2, 1.0).unwrap() - 1.5).abs() < 1e-9);
        assert!((of_run(&slow, 2, 1.0).unwrap() - 1.5).abs() < 1e-9);
    }

    #[test]
    fn a_wide_long_task_ends_sooner_in_the_best_schedule() {
        // The long task's 39 s on 1.5 CPUs take 26 s; the 78 s of work on 2 CPUs still 39 s.
        let r = run(Arm::Default, 1.0, 58.5);
        assert!((optimum(&r, 2, 1.5).unwrap() - 39.0).abs() < 1e-9);
        // With 3 CPUs the long task's own time decides: 26 s, not 39 s.
        assert!((optimum(&r, 3, 1.5).unwrap() - 26.0).abs() < 1e-9);
        assert!((optimum(&r, 3, 1.0).unwrap() - 39.0).abs() < 1e-9);
    }

    #[test]
    fn a_noisy_makespan_comparison_is_a_narrow_efficiency_one() {
        // Same schedules, CPU speeds drawn per run: makespans spread by ±15%, efficiencies not.
        let speeds = [1.0, 1.15, 0.9, 1.1, 0.95, 1.2];
        let mut runs = Vec::new();
        for (i, s) in speeds.iter().enumerate() {
            runs.push(run(Arm::Default, *s, 58.5 * s));
            runs.push(run(Arm::Ablation, *s, 48.0 * s));
            runs.push(run(
                Arm::Custom,
                speeds[(i + 3) % 6],
                40.0 * speeds[(i + 3) % 6],
            ));
        }
        let m = |arm| -> Vec<f64> {
            runs.iter()
                .filter(|r| r.arm == arm)
                .map(|r| r.makespan_s)
                .collect()
        };
        let policy = stats::cut(&m(Arm::Ablation), &m(Arm::Custom));
        let e = of_case(&runs, 2, 1.0, Some(&policy)).unwrap();
        let order = e.policy_order_cut.unwrap();
        assert!((order.cut - (1.0 - 40.0 / 48.0)).abs() < 1e-9, "{order:?}");
        assert!(order.ci_high - order.ci_low < 1e-6, "{order:?}");
        assert!(policy.ci_high - policy.ci_low > 0.1, "{policy:?}");
        // The ablation's room: 1 − 39/48 of its makespan; the policy took 1 − 40/48 of it.
        let room = 1.0 - 39.0 / 48.0;
        assert!((e.ablation_headroom.unwrap() - room).abs() < 1e-9);
        let share = e.policy_captured.unwrap();
        assert!((share - policy.cut / room).abs() < 1e-9);
        assert!(
            describe(&e)
                .iter()
                .any(|l| l.contains("88.9% of that room")),
            "{:?}",
            describe(&e)
        );
    }

    #[test]
    fn runs_without_tasks_and_invalid_runs_count_for_nothing() {
        let mut empty = run(Arm::Default, 1.0, 50.0);
        empty.tasks.clear();
        let mut ejected = run(Arm::Custom, 1.0, 10.0);
        ejected.valid = false;
        assert_eq!(of_case(&[empty.clone(), ejected], 2, 1.0, None), None);
        let e = of_case(&[empty, run(Arm::Custom, 1.0, 39.0)], 2, 1.0, None).unwrap();
        assert_eq!((e.default.n, e.custom.n, e.ablation.n), (0, 1, 0));
        assert_eq!(e.ablation_headroom, None);
        assert_eq!(e.policy_captured, None);
    }

    #[test]
    fn the_machines_time_splits_into_tasks_elsewhere_and_idle() {
        use crate::workload::machine_cpu::MachineCpu;
        // 78 s of task CPU in a 58.5 s run on 2 CPUs: 117 CPU-seconds, 80 busy, 37 idle.
        let mut r = run(Arm::Custom, 1.0, 58.5);
        r.machine_cpu = Some(MachineCpu {
            busy_s: 80.0,
            idle_s: 37.0,
        });
        let e = of_case(&[run(Arm::Default, 1.0, 58.5), r], 2, 1.0, None).unwrap();
        assert_eq!(e.cpu_default, None);
        let c = e.cpu_custom.unwrap();
        assert!((c.tasks - 78.0 / 117.0).abs() < 1e-9, "{c:?}");
        assert!((c.other - 2.0 / 117.0).abs() < 1e-9, "{c:?}");
        assert!((c.idle - 37.0 / 117.0).abs() < 1e-9, "{c:?}");
        assert!(
            describe(&e)
                .iter()
                .any(|l| l.contains("candidate 67/2/32%")),
            "{:?}",
            describe(&e)
        );
    }
}
