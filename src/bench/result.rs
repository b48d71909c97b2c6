//! What a benchmark produces: plain serde types, written as `bench.json` in the results
//! directory and re-read by `schedgen analyze` to render the reports again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::efficiency::Efficiency;
use crate::bpf::exit::SchedExit;
use crate::case::SHORT_TASKS;
use crate::classify::rules::ClassSet;
use crate::classify::tracer::ClassifierRun;
use crate::model::{Demand, MakespanModel};
use crate::stats::{ArmStats, CutEstimate};
use crate::workload::result::Group;

pub const BENCH_SCHEMA: &str = "schedgen.bench/1";

/// An arm that ran no more once the runs had answered its question (see
/// `summarize::answered`): the rounds from `from_round` (0-based) on ran without it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Retired {
    pub arm: Arm,
    pub from_round: usize,
    /// The answer, e.g. the candidate's cut against its ablation with its interval.
    pub why: String,
}

/// The arms of a comparison.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The kernel's own scheduler (no sched_ext scheduler attached).
    Default,
    /// The scheduler under test.
    Custom,
    /// The scheduler under test with its knowledge taken away: every process in one class, no
    /// long-task names. Same queues, slices and CPU selection; no idea which task is long.
    Ablation,
    /// The scheduler the candidate has to beat (the accepted one, or the previous round's),
    /// with the same knowledge, interleaved in the same boot: a head-to-head comparison.
    Incumbent,
    /// A production sched_ext scheduler (`CaseJob::production[i]`), run as its own process
    /// with its default options: what a user would pick instead.
    Production(u8),
}

impl Arm {
    pub fn label(self) -> &'static str {
        match self {
            Arm::Default => "default",
            Arm::Custom => "custom",
            Arm::Ablation => "ablation",
            Arm::Incumbent => "incumbent",
            Arm::Production(_) => "production",
        }
    }
}

/// Which scheduler a case was benchmarked with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchedulerRef {
    /// `generated` (from bpf-generated/), `reference` (bpf-reference/), or `file`.
    pub kind: String,
    /// Source or object path.
    pub path: String,
    /// The `comm`s given to its `long_comms` map.
    pub long_comms: Vec<String>,
    /// The task classes the classifier used (learned at the benchmarked sizes).
    #[serde(default, skip_serializing_if = "ClassSet::is_empty")]
    pub classes: ClassSet,
}

/// A production scheduler's arm: which one, its makespans, its cut against the default, and
/// the candidate's cut against it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductionArm {
    pub name: String,
    pub version: String,
    pub stats: ArmStats,
    /// `1 − production/default`.
    pub cut: Option<CutEstimate>,
    /// `1 − custom/production`: positive when the candidate is faster.
    pub candidate_vs: Option<CutEstimate>,
}

/// One task's timing in one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskTime {
    pub index: usize,
    pub group: Group,
    pub start_s: f64,
    pub end_s: f64,
    /// CPU used in the run, from its starting line (the task's `cpu_s`).
    pub cpu_s: f64,
    /// CPU its shell used before the starting line, not part of `cpu_s`.
    #[serde(default)]
    pub cpu_before_start_s: f64,
    /// The system part of `cpu_s`, and the context switches the task did not ask for: where
    /// a task's CPU time grows from run to run, these say whether the kernel or preemption is
    /// where it went.
    #[serde(default)]
    pub sys_s: f64,
    #[serde(default)]
    pub involuntary_switches: u64,
}

/// One measured run of one arm.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunSample {
    pub arm: Arm,
    /// Position in the interleaved sequence (0-based, warm-up included).
    pub order: usize,
    pub warmup: bool,
    pub makespan_s: f64,
    /// What `/sys/kernel/sched_ext` said during the run (`default` or `sched_ext:<name>`).
    pub scheduler: String,
    /// False when the custom scheduler was ejected during the run (or the run failed).
    pub valid: bool,
    /// Why the run is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// The kernel's exit info after detaching (custom arm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<SchedExit>,
    /// The task classifier's numbers (custom and ablation arms, when given classes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierRun>,
    pub tasks: Vec<TaskTime>,
    /// The whole machine's busy and idle CPU seconds during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_cpu: Option<crate::workload::machine_cpu::MachineCpu>,
    /// The machine's reclaim and major faults during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_memory: Option<crate::workload::machine_memory::MachineMemory>,
    /// Where the run's wall time went around the makespan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<RunTiming>,
}

/// A run's wall time in three parts: what a benchmark spends per run besides the makespan.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct RunTiming {
    /// Dropping the page cache, then starting the arm's scheduler: for schedgen's, the
    /// classifier, loading (the kernel verifier runs), attaching and waiting until enabled.
    pub start_s: f64,
    /// Running the case: spawning the tasks, the makespan, reaping them.
    pub run_s: f64,
    /// Confirming the scheduler still runs, detaching it, collecting its exit and log.
    pub stop_s: f64,
}

/// The classifier over a case's measured candidate runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassifierSummary {
    pub runs: usize,
    /// Worst per-run exec-to-classified latency percentiles, milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Mean CPU share of one CPU the classifier thread used.
    pub cpu_share: f64,
    /// Per run: short tasks classified long, long tasks not classified long.
    pub short_as_long: Vec<usize>,
    pub long_as_short: Vec<usize>,
    pub dropped: u64,
}

/// Where a case's runs read its prepared data from (see `bench::in_memory`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataPlacement {
    /// Copied into the guest's memory (tmpfs) before the case was measured.
    pub in_memory: bool,
    pub bytes: u64,
    /// Seconds the copy took.
    pub copy_s: f64,
    /// Why it stayed where it was, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

impl DataPlacement {
    /// In memory, after a copy of `copy_s` seconds (0 when it was there already).
    pub fn copied(bytes: u64, copy_s: f64) -> DataPlacement {
        DataPlacement {
            in_memory: true,
            bytes,
            copy_s,
            why_not: None,
        }
    }

    /// Read where it was prepared, because of `why`.
    pub fn stayed(bytes: u64, why: String) -> DataPlacement {
        DataPlacement {
            in_memory: false,
            bytes,
            copy_s: 0.0,
            why_not: Some(why),
        }
    }

    pub fn describe(&self) -> String {
        let size = if self.bytes >= 1 << 20 {
            format!("{:.1} MiB", self.bytes as f64 / f64::from(1 << 20))
        } else {
            format!("{:.0} KiB", (self.bytes as f64 / 1024.0).ceil())
        };
        match &self.why_not {
            None => format!(
                "data: {size} read from the guest's memory (copied there in {:.2} s); runs keep \
                 the page cache",
                self.copy_s
            ),
            Some(why) => format!(
                "data: {size} read where it was prepared ({why}); runs start from dropped caches"
            ),
        }
    }
}

/// Where a case's processes load their programs from (see `bench::in_memory::stage_programs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgramPlacement {
    /// Files (programs, their libraries, the loader's cache) copied into the guest's memory.
    pub files: usize,
    pub bytes: u64,
    /// Seconds the copies took.
    pub copy_s: f64,
    /// Why none was copied, when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
    /// Files that stayed where they were, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl ProgramPlacement {
    /// None copied, because of `why`.
    pub fn stayed(why: String, skipped: Vec<String>) -> ProgramPlacement {
        ProgramPlacement {
            files: 0,
            bytes: 0,
            copy_s: 0.0,
            why_not: Some(why),
            skipped,
        }
    }

    pub fn describe(&self) -> String {
        let skipped = match self.skipped.len() {
            0 => String::new(),
            n => format!("; {n} stayed on virtio-fs ({})", self.skipped[0]),
        };
        match &self.why_not {
            None => format!(
                "programs: {} files ({:.1} MiB: the programs the profile saw exec, their \
                 libraries, the loader's cache) loaded from the guest's memory (copied there in \
                 {:.2} s){skipped}",
                self.files,
                self.bytes as f64 / f64::from(1 << 20),
                self.copy_s
            ),
            Some(why) => format!("programs: loaded through virtio-fs ({why}){skipped}"),
        }
    }
}

/// The theoretical bound, from one short and one long task measured alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bound {
    /// CPU time of one short task run alone, after another paged in the programs they share.
    pub short_alone_s: f64,
    /// CPU time of the first short task run alone, paging in those programs: a run that starts
    /// from dropped caches has one such task (the model counts it then). Absent in results from
    /// before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_short_s: Option<f64>,
    /// CPU time of the long task run alone.
    pub long_alone_s: f64,
    /// Its wall time then: more than its CPU time by what it waited (I/O), which no order of
    /// the tasks can take away and the CPU-time model does not count. Absent in results from
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_alone_wall_s: Option<f64>,
    /// The long task alone with every CPU free to it, timed when its processes were seen
    /// running side by side (a pipeline, threads): held to one CPU they take turns, free they
    /// overlap. Absent when not timed so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_free: Option<FreeTiming>,
    pub model: MakespanModel,
    /// Where it was measured when not in this benchmark's own boot: an earlier benchmark at
    /// the same sizes whose bound this one reused (generate's later rounds and confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// The best order run for real on this machine. Absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListRun>,
}

/// The longest-first order run for real, under the default scheduler: the long task first,
/// then the short ones, as many at once as there are CPUs, each starting when another ends.
/// The model assumes a task takes the same CPU time whether or not the other CPUs are busy; under
/// emulation it does not (a long compile took 45 s of CPU beside short compiles against 36 s
/// alone), so this is what the best schedule reached here, not what it would on idle CPUs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListRun {
    pub makespan_s: f64,
    /// CPU seconds the long task took in it.
    pub long_cpu_s: f64,
    /// Mean CPU seconds of its short tasks but the first (which pays the page-ins).
    pub short_cpu_s: f64,
}

impl Bound {
    /// The best possible cut once the long task's own waiting is counted: no order ends before
    /// the long task alone would, wall time. `None` without that wall time.
    pub fn best_cut_with_waiting(&self) -> Option<f64> {
        let wall = match (self.long_alone_wall_s, &self.long_free) {
            (Some(held), Some(free)) => held.min(free.wall_s),
            (wall, _) => wall?,
        };
        let fair = self.model.fair_share_makespan_s;
        (fair > 0.0).then(|| 1.0 - self.model.optimal_makespan_s.max(wall) / fair)
    }

    /// The CPU-time model on the tasks' CPU times as the list run had them, one beside another
    /// on every CPU, which is how any schedule that keeps the CPUs busy has them: under
    /// emulation a short task takes about a fifth more CPU so than alone, so the model on
    /// times alone undersells the best possible cut (ctest_suite, 2026-12-07: 29.1% alone,
    /// 32.4% as the list run had them, 32.2% measured). `None` without a list run.
    pub fn model_as_run(&self) -> Option<MakespanModel> {
        let l = self.list.as_ref()?;
        Some(model_of(
            l.short_cpu_s,
            l.short_cpu_s,
            l.long_cpu_s,
            self.long_width(),
            self.model.cpus,
        ))
    }

    /// How many CPUs' worth the long task keeps busy when it has them all: its CPU time free
    /// over its wall time free, at most the CPU count; 1 when not timed free, or when below
    /// [`MIN_WIDTH`]. Both times come from the one run, so its noise mostly cancels. Held to one
    /// CPU is no measure of it: the stages of a pipeline then take turns through their pipes and
    /// cost more CPU the more stages there are (log_processing's `gzip | grep | awk` in the VM,
    /// 2026-12-08: 51.7 s held, 45.0 s of CPU in 26.7 s free, so held over free said 1.94 and
    /// the model left no room; in the default arm's runs, once the short tasks had ended, the
    /// long task kept 1.57-1.62 CPUs busy).
    pub fn long_width(&self) -> f64 {
        let cpus = self.model.cpus.max(1) as f64;
        match &self.long_free {
            Some(f) if f.wall_s > 0.0 && f.cpu_s / f.wall_s >= MIN_WIDTH => {
                (f.cpu_s / f.wall_s).min(cpus)
            }
            _ => 1.0,
        }
    }

    /// The long task as the model has it alone: at its width, its CPU time free; one CPU
    /// wide, its CPU time held to one CPU, as the best schedule runs it.
    pub fn long_demand(&self) -> Demand {
        match (&self.long_free, self.long_width()) {
            (Some(f), width) if width > 1.0 => Demand {
                cpu_s: f.cpu_s,
                width,
            },
            _ => Demand::serial(self.long_alone_s),
        }
    }

    /// Record the long task timed free and rebuild the model with what it shows.
    pub fn with_long_free(mut self, free: FreeTiming) -> Bound {
        self.long_free = Some(free);
        let first = self.first_short_s.unwrap_or(self.short_alone_s);
        let long = self.long_demand();
        self.model = model_of(
            first,
            self.short_alone_s,
            long.cpu_s,
            long.width,
            self.model.cpus,
        );
        self
    }

    /// The bound of one first short task, 38 more like `short_s` and the long task.
    pub fn new(first_short_s: f64, short_s: f64, long_s: f64, cpus: usize) -> Bound {
        Bound {
            short_alone_s: short_s,
            first_short_s: Some(first_short_s),
            long_alone_s: long_s,
            long_alone_wall_s: None,
            long_free: None,
            model: model_of(first_short_s, short_s, long_s, 1.0, cpus),
            reused_from: None,
            list: None,
        }
    }
}

/// Below this many CPUs' worth, a long task timed free is taken to run on one: a helper process
/// that does little beside the real work (checksum_tree's `xargs` beside its `sha256sum`s) is
/// no width worth modelling.
pub const MIN_WIDTH: f64 = 1.15;

/// A task timed alone with every CPU free to it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct FreeTiming {
    pub cpu_s: f64,
    pub wall_s: f64,
}

/// The model of one first short task, 38 more like `short_s` and a long task `width` CPUs wide.
fn model_of(
    first_short_s: f64,
    short_s: f64,
    long_s: f64,
    width: f64,
    cpus: usize,
) -> MakespanModel {
    let mut tasks = vec![Demand::serial(short_s); SHORT_TASKS];
    tasks[0] = Demand::serial(first_short_s);
    tasks.push(Demand {
        cpu_s: long_s,
        width,
    });
    MakespanModel::from_tasks(&tasks, cpus)
}

/// PASS or FAIL, with the reason in words.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    pub reason: String,
}

/// Everything measured for one case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseBench {
    pub test_id: String,
    pub test_name: String,
    pub scheduler: SchedulerRef,
    /// Sizes given to the commands (after `--scale` and auto-sizing).
    pub sizes: BTreeMap<String, String>,
    pub scale: f64,
    /// Extra multiplier applied to `long_*` sizes by auto-sizing (1 when not auto).
    pub long_scale: f64,
    pub bound: Option<Bound>,
    /// All runs in the order they ran, warm-ups included (flagged).
    pub runs: Vec<RunSample>,
    /// Statistics over the valid, non-warm-up runs of each arm.
    pub default: ArmStats,
    pub custom: ArmStats,
    pub cut: Option<CutEstimate>,
    /// The ablation arm, when it ran (n = 0 otherwise).
    #[serde(default)]
    pub ablation: ArmStats,
    /// The candidate against its ablation: the part of the cut its knowledge of the long task
    /// gives (`1 − custom/ablation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_cut: Option<CutEstimate>,
    /// The ablation against the default: what the scheduler's skeleton gives without knowledge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skeleton_cut: Option<CutEstimate>,
    /// The incumbent arm, when it ran (n = 0 otherwise), and which scheduler it was.
    #[serde(default)]
    pub incumbent: ArmStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent_path: Option<String>,
    /// SHA-256 of the incumbent's file as it ran, so the library can tell which scheduler the
    /// candidate was measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent_sha256: Option<String>,
    /// The candidate against the incumbent, head to head (`1 − custom/incumbent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_incumbent: Option<CutEstimate>,
    /// The incumbent's own cut against the default (`1 − incumbent/default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent_cut: Option<CutEstimate>,
    /// The production schedulers that ran beside it, in `Arm::Production` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub production: Vec<ProductionArm>,
    /// The classifier, over the candidate's measured runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierSummary>,
    /// Share of the best possible cut the scheduler reached (cut / bound.best_cut).
    pub captured: Option<f64>,
    /// The best possible cut against the ablation: what the bound's best schedule (the tasks'
    /// alone times, the long task first) would cut from the ablation's mean makespan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ablation_best_cut: Option<f64>,
    /// The policy's cut (candidate against ablation) as a share of `ablation_best_cut`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_of_best: Option<f64>,
    /// `1 − list schedule / ablation`: the cut the longest-first order, run for real on this
    /// machine (`Bound::list`), got against the ablation's mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ablation_list_cut: Option<f64>,
    /// The policy's cut as a share of `ablation_list_cut`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_of_list: Option<f64>,
    /// Each arm's schedule efficiency (makespan over the best makespan of the run's own CPU
    /// times), the cut split into order and work, and the room the ablation left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<Efficiency>,
    pub verdict: Verdict,
    /// Why the case stopped before its last round (the verdict was settled), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    /// The rounds complete each time a guest crash made the case go on in a new boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_after: Vec<usize>,
    /// Arms that stopped running once their question was answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
    /// Where the runs read the case's data from (the last boot's, after a guest crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataPlacement>,
    /// Where the runs loaded the case's programs from (the last boot's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programs: Option<ProgramPlacement>,
    /// A failure that stopped this case (setup, load, VM...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The sandbox could not measure the case at all (the VM kept crashing, timed out, or
    /// stopped without a result): `error` says why, and the verdict says nothing about the
    /// scheduler.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmeasured: bool,
}

impl CaseBench {
    /// Whether the candidate beat the incumbent head to head: the 95% interval of its cut
    /// against it lies above zero. `None` when no incumbent ran.
    pub fn beats_incumbent(&self) -> Option<bool> {
        if self.incumbent.n == 0 {
            return None;
        }
        Some(self.vs_incumbent.is_some_and(|v| {
            v.method != crate::stats::IntervalMethod::None
                && v.ci_low > 0.0
                && self.incumbent.n >= 2
        }))
    }

    /// How much longer the default arm ran than fair sharing of CPU time predicts
    /// (0.5 = 50% longer), when both are known.
    pub fn default_over_model(&self) -> Option<f64> {
        let b = self.bound.as_ref()?;
        (self.default.n > 0 && b.model.fair_share_makespan_s > 0.0)
            .then(|| self.default.mean / b.model.fair_share_makespan_s - 1.0)
    }
}

/// A whole `schedgen benchmark` invocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchResult {
    pub schema: String,
    pub started_at: String,
    pub finished_at: String,
    /// `vm` or `host`.
    pub place: String,
    pub kernel_release: String,
    /// CPUs the workloads ran on (vCPUs in the VM).
    pub cpus: usize,
    pub runs_per_arm: usize,
    /// The fewest runs per arm a case may stop at once its verdict is settled (equal to
    /// `runs_per_arm` when every case runs them all).
    #[serde(default)]
    pub min_runs: usize,
    /// Seed of the arms' order within each round.
    #[serde(default)]
    pub order_seed: u64,
    pub warmup: usize,
    pub target: f64,
    pub cases: Vec<CaseBench>,
    /// The candidate's verification, when it ran first in this benchmark's boot
    /// (`generate`): a scheduler that failed it left every case unmeasured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// A verification run in a benchmark's boot, before anything was measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verification {
    pub runtime: crate::bpf::runtime::RuntimeReport,
    /// The console log of the boot it ran in (in the VM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_log: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_as_a_run_has_the_cpu_times_comes_from_the_list_run() {
        // ctest_suite's bound on 2026-12-07 (the preparation's boot).
        let mut b = Bound::new(0.362, 0.293, 13.577, 2);
        assert!((0.28..0.30).contains(&b.model.best_cut), "{:?}", b.model);
        assert!(b.model_as_run().is_none(), "no list run, no such model");
        b.list = Some(ListRun {
            makespan_s: 15.73,
            long_cpu_s: 14.515,
            short_cpu_s: 0.366,
        });
        let m = b.model_as_run().unwrap();
        assert_eq!(m.cpus, 2);
        assert!((0.32..0.335).contains(&m.best_cut), "{m:?}");
    }

    #[test]
    fn where_the_data_was_read_says_its_size_in_a_unit_that_shows_it() {
        let small = DataPlacement::copied(32_688, 0.008);
        assert_eq!(
            small.describe(),
            "data: 32 KiB read from the guest's memory (copied there in 0.01 s); runs keep the \
             page cache"
        );
        let big = DataPlacement::stayed(600 << 20, "too big".into());
        assert_eq!(
            big.describe(),
            "data: 600.0 MiB read where it was prepared (too big); runs start from dropped caches"
        );
    }

    #[test]
    fn a_run_saved_before_timings_reads_without_them_and_new_ones_keep_them() {
        let old = r#"{"arm":"default","order":0,"warmup":false,"makespan_s":9.5,
            "scheduler":"default","valid":true,"tasks":[]}"#;
        let run: RunSample = serde_json::from_str(old).unwrap();
        assert_eq!(run.timing, None);
        let timed = RunSample {
            timing: Some(RunTiming {
                start_s: 0.3,
                run_s: 11.2,
                stop_s: 0.1,
            }),
            ..run
        };
        let text = serde_json::to_string(&timed).unwrap();
        assert!(text.contains(r#""timing":{"start_s":0.3,"run_s":11.2,"stop_s":0.1}"#));
        assert_eq!(serde_json::from_str::<RunSample>(&text).unwrap(), timed);
    }

    #[test]
    fn a_bound_counts_one_short_task_paging_in_and_the_rest_warm() {
        // compiler_build in the VM: 1.54 s for the first one-function compile, 0.43 s after.
        let b = Bound::new(1.54, 0.43, 17.0, 2);
        let mut demands = vec![0.43; SHORT_TASKS];
        demands[0] = 1.54;
        demands.push(17.0);
        assert_eq!(b.model, MakespanModel::from_demands(&demands, 2));
        assert_eq!((b.short_alone_s, b.first_short_s), (0.43, Some(1.54)));
        // Counting every short task as cold would have put 43 s more work beside the long one.
        let cold = MakespanModel::from_demands(&[vec![1.54; SHORT_TASKS], vec![17.0]].concat(), 2);
        assert!(cold.fair_share_makespan_s > b.model.fair_share_makespan_s + 20.0);
    }

    #[test]
    fn a_long_task_that_waits_alone_lowers_the_best_cut() {
        // 39 × 0.25 s and a long task of 10 s CPU on 2 CPUs: the model's best order ends at
        // max(10, 19.75 / 2) = 10 s.
        let mut b = Bound::new(0.25, 0.25, 10.0, 2);
        assert_eq!(b.best_cut_with_waiting(), None);
        // Alone, it took 10 s of wall: it never waited; the cut is the model's.
        b.long_alone_wall_s = Some(10.0);
        let same = b.best_cut_with_waiting().unwrap();
        assert!(
            (same - b.model.best_cut).abs() < 1e-12,
            "{same} {}",
            b.model.best_cut
        );
        // 14 s of wall: no order ends before 14 s.
        b.long_alone_wall_s = Some(14.0);
        let fair = b.model.fair_share_makespan_s;
        let waiting = b.best_cut_with_waiting().unwrap();
        assert!((waiting - (1.0 - 14.0 / fair)).abs() < 1e-12);
        assert!(waiting < b.model.best_cut);
    }

    #[test]
    fn a_long_task_that_keeps_more_than_one_cpu_busy_free_is_that_wide() {
        // log_pipeline in the VM, 2026-12-07: `cat | awk | sort` on the long log took 10.745 s
        // held to one CPU.
        let held = Bound::new(0.321, 0.321, 10.745, 2);
        assert_eq!(held.long_width(), 1.0);
        assert_eq!(held.long_demand(), Demand::serial(10.745));
        let free = |cpu_s, wall_s| FreeTiming { cpu_s, wall_s };
        // Free, its stages overlap: 8.4 s of CPU in 6 s of wall, 1.4 CPUs' worth.
        let wide = held.clone().with_long_free(free(8.4, 6.0));
        assert!((wide.long_width() - 1.4).abs() < 1e-12);
        assert_eq!(wide.long_demand().cpu_s, 8.4);
        assert!(
            wide.model.best_cut < held.model.best_cut / 2.0,
            "{:?}",
            wide.model
        );
        let all_on_both = (8.4 + 39.0 * 0.321) / 2.0;
        assert!((wide.model.optimal_makespan_s - all_on_both).abs() < 1e-9);
        // Held, a three-stage pipeline costs more CPU than free (log_processing, 2026-12-08):
        // the width is the free run's own, not held over free, which would fill the machine.
        let thrashing = Bound::new(0.665, 0.665, 51.746, 2).with_long_free(free(45.048, 26.691));
        assert!((thrashing.long_width() - 45.048 / 26.691).abs() < 1e-12);
        assert!(thrashing.model.best_cut > 0.08, "{:?}", thrashing.model);
        // A lone serial task that moves between CPUs runs slower free: that is no width.
        let serial = held.clone().with_long_free(free(11.5, 12.0));
        assert_eq!((serial.long_width(), serial.model), (1.0, held.model));
        // Nor is one whose helper process adds a tenth of a CPU.
        let helper = held.clone().with_long_free(free(11.0, 10.0));
        assert_eq!((helper.long_width(), helper.model), (1.0, held.model));
        // No task is wider than the machine.
        assert_eq!(held.with_long_free(free(8.0, 2.0)).long_width(), 2.0);
    }
}
