//! A synthetic benchmark for the presentation tests: one case that passes (5 + 5 runs, a bound),
//! one that fails (an ejected custom run, no bound) and one whose setup failed (no runs).
//!
//! The numbers are made up but shaped like the real thing: every task starts at 0, fair sharing
//! finishes the short tasks together and leaves the long one alone at the end, the long-task-first
//! scheduler starts the long one at once and the shorts share the other CPU.

use std::collections::BTreeMap;

use super::result::*;
use crate::bpf::exit::SchedExit;
use crate::model::MakespanModel;
use crate::stats;
use crate::workload::result::Group;

/// 39 short tasks and the long one (index 39), as a run of `arm` with this makespan would time them.
fn tasks(arm: Arm, makespan: f64) -> Vec<TaskTime> {
    (0..40)
        .map(|index| {
            let long = index == 39;
            let start_s = 0.002 * index as f64;
            let end_s = match (arm, long) {
                (_, true) => makespan,
                (Arm::Default, false) => makespan * (0.55 + 0.004 * index as f64),
                (_, false) => makespan * (0.2 + 0.019 * index as f64),
            };
            TaskTime {
                index,
                group: if long { Group::Long } else { Group::Short },
                start_s,
                end_s,
                cpu_s: if long { 4.8 } else { 0.22 },
                cpu_before_start_s: 0.0,
                sys_s: 0.0,
                involuntary_switches: 0,
            }
        })
        .collect()
}

/// Interleaved runs: a warm-up pair, then default/custom pairs with these makespans.
fn runs(default: &[f64], custom: &[f64]) -> Vec<RunSample> {
    let mut out = Vec::new();
    let pairs = std::iter::once((default[0] * 1.05, custom[0] * 1.05, true))
        .chain(default.iter().zip(custom).map(|(d, c)| (*d, *c, false)));
    for (d, c, warmup) in pairs {
        for (arm, m) in [(Arm::Default, d), (Arm::Custom, c)] {
            out.push(RunSample {
                arm,
                order: out.len(),
                warmup,
                makespan_s: m,
                scheduler: match arm {
                    Arm::Default => "default".into(),
                    _ => "sched_ext:long_first".into(),
                },
                valid: true,
                invalid_reason: None,
                exit: None,
                classifier: None,
                tasks: tasks(arm, m),
                machine_cpu: None,
                machine_memory: None,
                timing: None,
            });
        }
    }
    out
}

fn valid(runs: &[RunSample], arm: Arm) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.arm == arm && r.valid && !r.warmup)
        .map(|r| r.makespan_s)
        .collect()
}

fn scheduler() -> SchedulerRef {
    SchedulerRef {
        kind: "reference".into(),
        path: "bpf-reference/long_first.bpf.c".into(),
        long_comms: vec!["ctest_long".into()],
        classes: Default::default(),
    }
}

fn case(id: &str, runs: Vec<RunSample>, bound: Option<Bound>) -> CaseBench {
    let d = valid(&runs, Arm::Default);
    let c = valid(&runs, Arm::Custom);
    let cut = stats::cut(&d, &c);
    let captured = bound.as_ref().map(|b| cut.cut / b.model.best_cut);
    let efficiency = super::efficiency::of_case(&runs, 2, 1.0, None);
    CaseBench {
        test_id: id.into(),
        test_name: format!("{id} (synthetic)"),
        scheduler: scheduler(),
        sizes: BTreeMap::from([
            ("short_iters".to_string(), "220".to_string()),
            ("long_secs".to_string(), "4.8".to_string()),
        ]),
        scale: 0.1,
        long_scale: 1.5,
        bound,
        default: stats::describe(&d),
        custom: stats::describe(&c),
        cut: Some(cut),
        ablation: Default::default(),
        policy_cut: None,
        skeleton_cut: None,
        incumbent: Default::default(),
        incumbent_path: None,
        incumbent_sha256: None,
        vs_incumbent: None,
        incumbent_cut: None,
        production: Vec::new(),
        stopped_early: None,
        resumed_after: Vec::new(),
        retired: Vec::new(),
        data: None,
        programs: None,
        unmeasured: false,
        classifier: None,
        captured,
        ablation_best_cut: None,
        policy_of_best: None,
        ablation_list_cut: None,
        policy_of_list: None,
        efficiency,
        runs,
        verdict: Verdict {
            pass: true,
            reason: String::new(),
        },
        error: None,
    }
}

pub(crate) fn bench() -> BenchResult {
    let mut demands = vec![0.22; 39];
    demands.push(4.8);
    let bound = Bound {
        short_alone_s: 0.22,
        first_short_s: None,
        long_alone_s: 4.8,
        long_alone_wall_s: None,
        long_free: None,
        model: MakespanModel::from_demands(&demands, 2),
        reused_from: None,
        list: None,
    };
    let mut pass = case(
        "ctest_suite",
        runs(&[9.1, 9.3, 9.0, 9.2, 9.4], &[6.9, 7.0, 6.8, 7.1, 6.9]),
        Some(bound),
    );
    pass.verdict.reason = "cut 24.6% ≥ target 20.0%, interval above 0".into();

    let mut r = runs(
        &[12.0, 12.2, 11.9, 12.1, 12.3],
        &[11.5, 11.8, 3.0, 11.6, 11.7],
    );
    // The third measured custom run: the scheduler was ejected halfway.
    r[7].valid = false;
    r[7].invalid_reason = Some("scheduler ejected during the run".into());
    r[7].exit = Some(SchedExit::new(
        1026,
        0,
        "runnable task stall".into(),
        "ctest_long[412] failed to run for 30.2s".into(),
    ));
    let mut fail = case("log_processing", r, None);
    fail.verdict = Verdict {
        pass: false,
        reason: "run 7 invalid: the scheduler was ejected (EXIT: ERROR_STALL)".into(),
    };

    let errored = CaseBench {
        test_id: "ddos_log_analysis".into(),
        test_name: "DDoS log analysis".into(),
        scheduler: scheduler(),
        sizes: BTreeMap::new(),
        scale: 0.1,
        long_scale: 1.0,
        bound: None,
        runs: Vec::new(),
        default: stats::ArmStats::default(),
        custom: stats::ArmStats::default(),
        cut: None,
        ablation: Default::default(),
        policy_cut: None,
        skeleton_cut: None,
        incumbent: Default::default(),
        incumbent_path: None,
        incumbent_sha256: None,
        vs_incumbent: None,
        incumbent_cut: None,
        production: Vec::new(),
        stopped_early: None,
        resumed_after: Vec::new(),
        retired: Vec::new(),
        data: None,
        programs: None,
        unmeasured: false,
        classifier: None,
        captured: None,
        ablation_best_cut: None,
        policy_of_best: None,
        ablation_list_cut: None,
        policy_of_list: None,
        efficiency: None,
        verdict: Verdict {
            pass: false,
            reason: "setup failed".into(),
        },
        error: Some("setup failed: tshark not found\n(install it with schedgen deps)".into()),
    };

    BenchResult {
        schema: BENCH_SCHEMA.into(),
        started_at: "2025-06-01T10:00:00Z".into(),
        finished_at: "2025-06-01T10:42:00Z".into(),
        place: "vm".into(),
        kernel_release: "6.12.0-sched-ext".into(),
        cpus: 2,
        runs_per_arm: 5,
        min_runs: 5,
        order_seed: 1,
        warmup: 1,
        target: 0.20,
        cases: vec![pass, fail, errored],
        verification: None,
    }
}
