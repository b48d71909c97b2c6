//! The measuring half of a benchmark, run where sched_ext is (in the VM, or a sched_ext host):
//! for each case, time one short and one long task alone (the bound), then alternate runs under
//! the default scheduler and under the custom one, confirming before and after every custom run
//! that the kernel still runs our scheduler.
//!
//! It runs as the hidden `schedgen bench-job` command and appends each finished case to a JSON
//! lines file, so a VM that dies mid-way still leaves the cases it finished.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::production::{Production, Running};
use super::result::{
    Arm, Bound, DataPlacement, FreeTiming, ListRun, ProgramPlacement, Retired, RunSample,
    RunTiming, SchedulerRef, TaskTime,
};
use crate::bpf::exit::SchedExit;
use crate::bpf::runtime::RuntimeJob;
use crate::bpf::session::{Knowledge, Session};
use crate::case::SHORT_TASKS;
use crate::classify::tracer::{self, TaskRoot};
use crate::workload::result::{Group, RunResult, RunStatus};
use crate::workload::{run_case, RunRequest};

/// One case to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseJob {
    /// A request whose data is already prepared (`prepared` set).
    pub request: RunRequest,
    /// The compiled scheduler.
    pub object: PathBuf,
    pub scheduler: SchedulerRef,
    /// What the scheduler is told about the workload (classes, long-task names).
    #[serde(default)]
    pub knowledge: Knowledge,
    /// Also run the ablation: the same scheduler told nothing that separates the long task.
    #[serde(default)]
    pub ablation: bool,
    /// Also run this compiled scheduler, with the same knowledge: the one to beat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent: Option<PathBuf>,
    /// Production schedulers to run as arms of their own, with their default options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub production: Vec<Production>,
    /// The bound measured by an earlier benchmark at the same sizes: reused instead of timing
    /// the tasks alone again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_bound: Option<Bound>,
    /// What an earlier boot measured of this case before the guest crashed: its bound, warm-up
    /// and complete rounds. The case goes on from the next round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<CaseRaw>,
    /// The programs the case's processes exec (the profile's executables), loaded from the
    /// guest's memory with the data; empty when no profile named them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<String>,
    /// The same case prepared at other sizes, whose first short task is timed alone after the
    /// bound: the sizing's VM check tells start-up from work with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_probes: Vec<RunRequest>,
    /// The profile saw the long task's processes run side by side: its bound times it free too.
    #[serde(default)]
    pub long_runs_wide: bool,
}

/// The whole measuring job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchJob {
    pub cases: Vec<CaseJob>,
    pub runs: usize,
    /// `None`: none when the bound's list run has just run every task, else 1.
    pub warmup: Option<usize>,
    /// Whether to time a short and the long task alone first.
    pub measure_bound: bool,
    /// Whether the bound runs the longest-first order for real too (`Bound::list`); the VM's
    /// sizing check, at sizes it is about to change, does not.
    #[serde(default)]
    pub list_run: bool,
    /// Seed of the order of the arms within each round (recorded in the results).
    #[serde(default)]
    pub order_seed: u64,
    /// Stop a case once the verdict is settled, after at least this many runs per arm
    /// (`runs` is the most); `None` always runs `runs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_early: Option<StopEarly>,
    /// Verify this scheduler before measuring anything, in the same boot (`generate`'s
    /// candidate: one boot instead of two). Its report goes to `verify::RUNTIME_FILE` beside the
    /// results; one that fails leaves nothing measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_first: Option<RuntimeJob>,
    /// Copy each case's prepared data into memory before measuring it (`bench::in_memory`): in
    /// the VM, where it would otherwise be read through virtio-fs.
    #[serde(default)]
    pub data_in_memory: bool,
    /// Fault injection for tests: crash the guest kernel once this many rounds are complete,
    /// unless a boot already resumed there (from `SCHEDGEN_TEST_CRASH_AFTER_ROUND`), so the
    /// resume is exercised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_after_round: Option<usize>,
}

/// When a case may stop before `runs` rounds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StopEarly {
    pub min_runs: usize,
    /// The verdict's target cut.
    pub target: f64,
    /// Stop as soon as the verdict's rule passes (`summarize::Settle::screen`).
    #[serde(default)]
    pub screen: bool,
}

/// What the job found for one case (statistics are computed on the host).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseRaw {
    pub test_id: String,
    pub bound: Option<Bound>,
    pub runs: Vec<RunSample>,
    pub error: Option<String>,
    pub cpus: usize,
    pub kernel_release: String,
    /// Why the case stopped before its last round, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    /// Measured rounds completed (every arm ran once in each).
    #[serde(default)]
    pub rounds_done: usize,
    /// The rounds completed each time the case was resumed on a new boot after a guest crash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_after: Vec<usize>,
    /// CPU seconds of the first short task alone in each of the job's `short_probes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_probes: Vec<f64>,
    /// Arms that stopped running once their question was answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
    /// Where the runs read the case's data from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataPlacement>,
    /// Where the runs loaded the case's programs from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programs: Option<ProgramPlacement>,
}

/// Where the job keeps the case in progress, beside its results file: rewritten after every
/// run, so a guest crash loses at most the run it interrupted. A resumed case goes on with the
/// same round, in the same order, from the arm after the last one recorded.
pub const PARTIAL_FILE: &str = "bench-partial.json";

/// The case in progress that a crashed boot left in `path`, if it left a readable one.
pub fn read_partial(path: &Path) -> Option<CaseRaw> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Writes `raw` to `path` whole or not at all (a crash mid-write leaves the previous state).
fn write_partial(path: &Path, raw: &CaseRaw) {
    let tmp = path.with_extension("tmp");
    let Ok(text) = serde_json::to_string(raw) else {
        return;
    };
    if std::fs::write(&tmp, text).is_ok() {
        if let Ok(f) = std::fs::File::open(&tmp) {
            let _ = f.sync_all();
        }
        let _ = std::fs::rename(&tmp, path);
    }
}

/// Where the job copies case data to be read from memory: the guest's `/tmp` is a tmpfs (and
/// `in_memory::stage` checks that it is).
fn memory_root() -> PathBuf {
    std::env::temp_dir().join("schedgen-data")
}

/// Drop clean page-cache pages so every run reads its inputs the same way.
fn drop_caches() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// Whether runs start from dropped caches: not when the case's data is in the guest's memory.
/// A drop then evicts nothing of the data, only the programs and libraries, which every run
/// must then page in again; and measured 2026-12-07 on script_per_file (4 boots, 6 runs each),
/// the guest reusing those freed pages made starting the 40 shells cost 3.8-48.7 s of their CPU
/// (in the kernel, clearing and copying fresh pages) in 17 runs, 1.3-1.9 s in the other 7, and
/// a scheduler's attach up to 20 s; without the drop (2 boots), 1.1-1.6 s in all 12 runs. Warm
/// runs are still alike: the bound's list run or a warm-up run pages everything in before the
/// first measured run.
fn drops_caches(raw: &CaseRaw) -> bool {
    !raw.data.as_ref().is_some_and(|d| d.in_memory)
}

fn task_times(r: &RunResult) -> Vec<TaskTime> {
    r.tasks
        .iter()
        .map(|t| TaskTime {
            index: t.index,
            group: t.group,
            start_s: t.start_s,
            end_s: t.end_s,
            cpu_s: t.cpu_s,
            cpu_before_start_s: t.cpu_before_start_s,
            sys_s: t.sys_s,
            involuntary_switches: t.involuntary_switches,
        })
        .collect()
}

/// A task timed alone: its index, CPU seconds and wall seconds.
pub(super) type Alone = (usize, f64, f64);

/// Run `tasks` alone, one after another, held to one CPU: how each one took, and the machine's
/// CPU count.
pub(super) fn time_alone(req: &RunRequest, tasks: Vec<usize>) -> Result<(Vec<Alone>, usize)> {
    // On one CPU, as the best schedule runs the long task: free, a lone task moves between
    // idle CPUs and runs slower for it under emulation.
    time_alone_on(req, tasks, Some(0))
}

/// The same with every CPU free to them (`pin` None), or held to `pin`.
fn time_alone_on(
    req: &RunRequest,
    tasks: Vec<usize>,
    pin: Option<usize>,
) -> Result<(Vec<Alone>, usize)> {
    let mut alone = req.clone();
    alone.sequential = true;
    alone.only_tasks = Some(tasks);
    alone.pin_cpu = pin;
    let r = run_case(&alone, &|_| {});
    if r.status != RunStatus::Success {
        anyhow::bail!(
            "timing tasks alone failed: {}",
            r.error.unwrap_or_else(|| r.status.as_str().into())
        );
    }
    let times = r
        .tasks
        .iter()
        .map(|t| (t.index, t.cpu_s, t.wall_s))
        .collect();
    Ok((times, r.system.cpus))
}

/// Time two short tasks and the long one alone, then run the longest-first order for real. The
/// first short task pays the page-ins of the programs every task runs (in the VM a one-function
/// `gcc -c` took 1.54 s so and 0.43 s after); the second is what the others cost. When runs
/// start from dropped caches (`drop`), one of their short tasks pays the page-ins too, and the
/// bound counts it; otherwise no run's does. The long task comes last, as warm as a run's is.
/// A long task whose processes run side by side (`wide`) is timed once more with every CPU
/// free to it, for its width.
fn bound(req: &RunRequest, list: bool, drop: bool, wide: bool) -> Result<Bound> {
    let (times, cpus) = time_alone(req, vec![0, 1, SHORT_TASKS])?;
    let cpu = |i: usize| times.iter().find(|(k, _, _)| *k == i).map(|(_, c, _)| *c);
    let (first, l) = (cpu(0).unwrap_or(0.0), cpu(SHORT_TASKS).unwrap_or(0.0));
    let (one, others) = short_demands(first, cpu(1).unwrap_or(first), drop);
    let mut b = Bound::new(one, others, l, cpus);
    b.first_short_s = Some(first);
    b.long_alone_wall_s = times
        .iter()
        .find(|(k, _, _)| *k == SHORT_TASKS)
        .map(|(_, _, w)| *w);
    if wide && cpus > 1 {
        let (free, _) = time_alone_on(req, vec![SHORT_TASKS], None)?;
        if let Some((_, cpu_s, wall_s)) = free.first() {
            b = b.with_long_free(FreeTiming {
                cpu_s: *cpu_s,
                wall_s: *wall_s,
            });
        }
    }
    if list {
        b.list = Some(list_run(req, cpus, drop)?);
    }
    Ok(b)
}

/// What the bound counts for a run's first short task and for the other 38, from the first and
/// second short task timed alone. From dropped caches the first pays the page-ins, as in a run.
/// Warm, every short task costs the same, and page-ins only add time, so the faster of the two
/// timings is the better estimate: one timing in the VM varies by 8-13% (ctest_suite,
/// 2026-12-07: 0.339 s the first and 0.383 s the second, so the second alone put the bound's
/// best cut at 28.8% where the sizing boot had measured 32.6%).
fn short_demands(first: f64, second: f64, drop: bool) -> (f64, f64) {
    if drop {
        (first, second)
    } else {
        let warm = first.min(second);
        (warm, warm)
    }
}

/// The long task, then the short ones in index order, `cpus` at a time, starting as a run does
/// (from dropped caches when `drop`).
fn list_run(req: &RunRequest, cpus: usize, drop: bool) -> Result<ListRun> {
    let mut list = req.clone();
    list.sequential = false;
    list.at_once = Some(cpus.max(1));
    list.only_tasks = Some(std::iter::once(SHORT_TASKS).chain(0..SHORT_TASKS).collect());
    if drop {
        drop_caches();
    }
    let r = run_case(&list, &|_| {});
    if let Some(why) = run_failure(&r) {
        anyhow::bail!("running the longest-first order failed: {why}");
    }
    let long = r.tasks.iter().find(|t| t.group == Group::Long);
    let shorts: Vec<f64> = r
        .tasks
        .iter()
        .filter(|t| t.group == Group::Short && t.index != 0)
        .map(|t| t.cpu_s)
        .collect();
    Ok(ListRun {
        makespan_s: r.makespan_s,
        long_cpu_s: long.map_or(0.0, |t| t.cpu_s),
        short_cpu_s: shorts.iter().sum::<f64>() / shorts.len().max(1) as f64,
    })
}

/// Why a run of the workload itself failed, when it did.
fn run_failure(r: &RunResult) -> Option<String> {
    (r.status != RunStatus::Success).then(|| {
        format!(
            "run {}: {}",
            r.status.as_str(),
            r.error.clone().unwrap_or_default()
        )
    })
}

fn task_roots(r: &RunResult) -> Vec<TaskRoot> {
    r.tasks
        .iter()
        .map(|t| TaskRoot {
            pid: t.pid,
            index: t.index,
            group: t.group,
        })
        .collect()
}

/// One run with a BPF scheduler (the candidate, its ablation or the incumbent): attach,
/// confirm, run, confirm, detach. An error means the scheduler could not even start.
fn scheduler_run(
    job: &CaseJob,
    arm: Arm,
    order: usize,
    warmup: bool,
    mut clock: RunClock,
) -> Result<RunSample> {
    let knowledge = match arm {
        Arm::Ablation => job.knowledge.ablated(),
        _ => job.knowledge.clone(),
    };
    let object = match (arm, &job.incumbent) {
        (Arm::Incumbent, Some(o)) => o,
        _ => &job.object,
    };
    let session = Session::start(object, &knowledge)
        .map_err(|e| anyhow::anyhow!("{}: {}", arm.label(), e.message()))?;
    let ops = session.ops.clone();
    clock.started();
    let r = run_case(&job.request, &|_| {});
    clock.ran();
    let ended = session.finish();
    let invalid_reason = if ended.ejected() {
        Some(format!(
            "the scheduler was ejected during the run{}",
            ended
                .exit
                .as_ref()
                .map(|e| format!(" ({})", e.line()))
                .unwrap_or_default()
        ))
    } else {
        run_failure(&r)
    };
    let classifier = ended
        .classifier
        .as_ref()
        .map(|log| tracer::summarize(log, &knowledge.classes, &task_roots(&r)));
    Ok(RunSample {
        arm,
        order,
        warmup,
        makespan_s: r.makespan_s,
        scheduler: format!("sched_ext:{ops}"),
        valid: invalid_reason.is_none(),
        invalid_reason,
        exit: ended.exit,
        classifier,
        tasks: task_times(&r),
        machine_cpu: r.machine_cpu,
        machine_memory: r.machine_memory,
        timing: Some(clock.timing()),
    })
}

/// One run under a production scheduler: start it, confirm the kernel runs it, run, confirm it
/// is still there, stop it. An error means it could not even start.
fn production_run(
    job: &CaseJob,
    i: u8,
    order: usize,
    warmup: bool,
    mut clock: RunClock,
) -> Result<RunSample> {
    let p = job
        .production
        .get(i as usize)
        .context("no such production scheduler")?;
    let log = std::env::temp_dir().join(format!("{}-{order}.log", p.binary_name));
    let mut running = Running::start(p, &log)?;
    let ops = running.ops.clone();
    clock.started();
    let r = run_case(&job.request, &|_| {});
    clock.ran();
    let stayed = running.still_running();
    let tail = running.log_tail(5);
    let exit = (!stayed).then(|| running.kernel_exit()).flatten();
    let stopped = running.stop();
    let invalid_reason = if !stayed {
        Some(stopped_during_run(&p.binary_name, exit.as_ref(), &tail))
    } else if let Err(e) = &stopped {
        Some(format!("{e:#}"))
    } else {
        run_failure(&r)
    };
    Ok(RunSample {
        arm: Arm::Production(i),
        order,
        warmup,
        makespan_s: r.makespan_s,
        scheduler: format!("sched_ext:{ops}"),
        valid: invalid_reason.is_none(),
        invalid_reason,
        exit,
        classifier: None,
        tasks: task_times(&r),
        machine_cpu: r.machine_cpu,
        machine_memory: r.machine_memory,
        timing: Some(clock.timing()),
    })
}

/// Why a production scheduler's run is invalid when it stopped during the run: the kernel's
/// reason when it disabled it (a stall, an error), else the scheduler's last output.
fn stopped_during_run(name: &str, exit: Option<&SchedExit>, output_tail: &str) -> String {
    match exit {
        Some(e) => format!(
            "{name} stopped running during the run: the kernel disabled it, {}",
            e.line()
        ),
        None => format!("{name} stopped running during the run:\n{output_tail}"),
    }
}

/// What the progress line calls an arm.
fn arm_name(job: &CaseJob, arm: Arm) -> String {
    match arm {
        Arm::Production(i) => job
            .production
            .get(i as usize)
            .map_or_else(|| "production".into(), |p| p.name.clone()),
        _ => arm.label().to_string(),
    }
}

/// Marks where a run's phases end, from before its cache drop: what becomes its `RunTiming`.
struct RunClock {
    begun: Instant,
    started: f64,
    ran: f64,
}

impl RunClock {
    fn begin() -> RunClock {
        RunClock {
            begun: Instant::now(),
            started: 0.0,
            ran: 0.0,
        }
    }

    /// The arm's scheduler runs; the tasks are next.
    fn started(&mut self) {
        self.started = self.begun.elapsed().as_secs_f64();
    }

    /// The tasks are done.
    fn ran(&mut self) {
        self.ran = self.begun.elapsed().as_secs_f64();
    }

    fn timing(&self) -> RunTiming {
        RunTiming {
            start_s: self.started,
            run_s: self.ran - self.started,
            stop_s: self.begun.elapsed().as_secs_f64() - self.ran,
        }
    }
}

fn default_run(job: &CaseJob, order: usize, warmup: bool, mut clock: RunClock) -> RunSample {
    clock.started();
    let r = run_case(&job.request, &|_| {});
    clock.ran();
    let invalid_reason = run_failure(&r);
    RunSample {
        arm: Arm::Default,
        order,
        warmup,
        makespan_s: r.makespan_s,
        scheduler: r.system.scheduler.clone(),
        valid: invalid_reason.is_none() && r.system.scheduler == "default",
        invalid_reason,
        exit: None,
        classifier: None,
        tasks: task_times(&r),
        machine_cpu: r.machine_cpu,
        machine_memory: r.machine_memory,
        timing: Some(clock.timing()),
    }
}

/// The arms of round `round`: randomised blocks. Each round runs every arm once, in an order
/// drawn from `seed` and the round, so that no arm always runs first (after a reboot, a cache
/// drop) or right after the same other arm, and the same seed gives the same schedule.
pub fn round_order(arms: &[Arm], round: usize, seed: u64) -> Vec<Arm> {
    let mut rng = crate::stats::SplitMix(seed ^ (round as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut order = arms.to_vec();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// The arms that run in round `round`: all of `arms` but those retired by then.
fn arms_in_round(arms: &[Arm], raw: &CaseRaw, round: usize) -> Vec<Arm> {
    arms.iter()
        .copied()
        .filter(|a| {
            !raw.retired
                .iter()
                .any(|r| r.arm == *a && r.from_round <= round)
        })
        .collect()
}

/// Measured runs of the round after the last complete one: what a crashed boot ran of it.
fn runs_into_round(raw: &CaseRaw, arms: &[Arm]) -> usize {
    let measured = raw.runs.iter().filter(|r| !r.warmup).count();
    let complete: usize = (0..raw.rounds_done)
        .map(|k| arms_in_round(arms, raw, k).len())
        .sum();
    measured
        .saturating_sub(complete)
        .min(arms_in_round(arms, raw, raw.rounds_done).len())
}

/// Retire the arms whose question the runs have answered (`summarize::answered`) from round
/// `round` on, saying so; the pace's estimate loses their remaining runs.
fn retire_answered(
    job: &CaseJob,
    arms: &[Arm],
    raw: &mut CaseRaw,
    round: usize,
    runs: usize,
    pace: &mut Pace,
    progress: &mut dyn FnMut(&str),
) {
    for (arm, why) in super::summarize::answered(&raw.runs) {
        if !arms.contains(&arm) || raw.retired.iter().any(|r| r.arm == arm) {
            continue;
        }
        progress(&format!(
            "{} answered after {round} runs: {why}; it runs no more",
            arm_name(job, arm).trim_end()
        ));
        pace.total = pace.total.saturating_sub(runs - round);
        raw.retired.push(Retired {
            arm,
            from_round: round,
            why,
        });
    }
}

/// Panics the (guest) kernel as a TCG emulation fault would; only a test asks for it.
fn crash_guest_for_test() {
    if std::path::Path::new(crate::sandbox::guest::GUEST_JOB_DIR).is_dir() {
        let _ = std::fs::write("/proc/sysrq-trigger", "c");
    }
}

/// The case's record at its start: empty, or what a crashed boot completed of it.
fn starting_record(job: &CaseJob) -> CaseRaw {
    let fresh = CaseRaw {
        test_id: job.request.case.id.clone(),
        bound: None,
        runs: Vec::new(),
        error: None,
        cpus: crate::system::cpu_count(),
        kernel_release: crate::system::kernel_release(),
        stopped_early: None,
        rounds_done: 0,
        resumed_after: Vec::new(),
        short_probes: Vec::new(),
        retired: Vec::new(),
        data: None,
        programs: None,
    };
    match &job.resume {
        Some(r) if r.test_id == fresh.test_id && r.error.is_none() => {
            let mut raw = r.clone();
            raw.resumed_after.push(raw.rounds_done);
            raw
        }
        _ => fresh,
    }
}

fn measure_case(
    job: &CaseJob,
    bench: &BenchJob,
    partial: &Path,
    progress: &mut dyn FnMut(&str),
) -> CaseRaw {
    let mut raw = starting_record(job);
    // Every boot copies anew: a crashed boot's memory is gone.
    let _copy = bench.data_in_memory.then(|| {
        let (copy, placed) = super::in_memory::stage(&job.request, &memory_root());
        progress(&placed.describe());
        raw.data = Some(placed);
        copy
    });
    let _programs = (bench.data_in_memory && !job.programs.is_empty()).then(|| {
        let (copy, placed) = super::in_memory::stage_programs(&job.programs, &memory_root());
        progress(&placed.describe());
        raw.programs = Some(placed);
        copy
    });
    if !raw.resumed_after.is_empty() {
        progress(&format!(
            "resuming after a guest crash: {} round(s) of {} done",
            raw.rounds_done, bench.runs
        ));
    }
    // A resumed case has its bound from before the crash.
    if raw.bound.is_none() {
        if let Some(b) = &job.known_bound {
            raw.bound = Some(b.clone());
        } else if bench.measure_bound {
            progress(&format!(
                "timing two short tasks and the long one alone{}{}",
                if job.long_runs_wide {
                    " (held to one CPU, then free)"
                } else {
                    ""
                },
                if bench.list_run {
                    ", then the longest-first order"
                } else {
                    ""
                }
            ));
            match bound(
                &job.request,
                bench.list_run,
                drops_caches(&raw),
                job.long_runs_wide,
            ) {
                Ok(b) => raw.bound = Some(b),
                Err(e) => {
                    raw.error = Some(format!("{e:#}"));
                    return raw;
                }
            }
        }
    }
    for probe in job.short_probes.iter().skip(raw.short_probes.len()) {
        progress(&format!(
            "timing one short task alone at scale {:.4}",
            probe.scale
        ));
        // Read the way the case's own data is, or its time would not compare.
        let _copy = raw.data.as_ref().filter(|d| d.in_memory).map(|_| {
            let (copy, placed) = super::in_memory::stage(probe, &memory_root());
            if let Some(why) = placed.why_not {
                progress(&format!("the probe's data stays where it was: {why}"));
            }
            copy
        });
        match time_alone(probe, vec![0]) {
            Ok((times, _)) => raw.short_probes.push(times.first().map_or(0.0, |t| t.1)),
            Err(e) => {
                raw.error = Some(format!("{e:#}"));
                return raw;
            }
        }
    }
    let mut arms = vec![Arm::Default, Arm::Custom];
    if job.ablation {
        arms.push(Arm::Ablation);
    }
    if job.incumbent.is_some() {
        arms.push(Arm::Incumbent);
    }
    arms.extend((0..job.production.len()).map(|i| Arm::Production(i as u8)));
    // A warm-up warms what every arm shares (the page caches of the programs, the host's behind
    // virtiofs, the monitor), so one run of any arm does it. The bound's list run, when this case
    // measured it, ran all 40 tasks just before: it warmed the same, so by default no warm-up
    // follows it. Nor is one needed when the data and the programs are in the guest's memory:
    // there is no cache left to fill (ctest_suite, 2026-12-05 to 07: each of four warm-up runs
    // so placed was as fast as its arm's measured runs or faster).
    let default_warmup = usize::from(needs_warm_up(
        raw.bound.as_ref(),
        raw.data.as_ref(),
        raw.programs.as_ref(),
    ));
    let warmed_before = raw.runs.iter().filter(|r| r.warmup).count();
    let warmups = if warmed_before > 0 {
        Vec::new()
    } else {
        warmup_arms(&arms, bench.warmup.unwrap_or(default_warmup))
    };
    let mut pace = Pace {
        started: Instant::now(),
        total: warmed_before + warmups.len() + arms.len() * bench.runs,
        rounds: bench.runs,
        done: raw.runs.len(),
        done_before: raw.runs.len(),
    };
    for arm in warmups {
        if run_and_record(job, arm, true, &mut raw, &mut pace, progress) == Flow::Stop {
            return raw;
        }
    }
    write_partial(partial, &raw);
    for round in raw.rounds_done..bench.runs {
        // A resumed case may have run part of this round before the crash.
        let ran = runs_into_round(&raw, &arms);
        if let Some(rule) = bench.stop_early.filter(|_| ran == 0) {
            if round >= rule.min_runs {
                let settle = super::summarize::Settle {
                    target: rule.target,
                    most: bench.runs,
                    screen: rule.screen,
                };
                if let Some(why) = super::summarize::settled(&raw.runs, settle) {
                    progress(&format!(
                        "settled after {round} runs per arm (of at most {}): {why}",
                        bench.runs
                    ));
                    raw.stopped_early = Some(format!("after {round} runs per arm: {why}"));
                    break;
                }
            }
            if round >= super::summarize::ANSWER_FROM {
                retire_answered(job, &arms, &mut raw, round, bench.runs, &mut pace, progress);
            }
        }
        for arm in round_order(&arms_in_round(&arms, &raw, round), round, bench.order_seed)
            .into_iter()
            .skip(ran)
        {
            if run_and_record(job, arm, false, &mut raw, &mut pace, progress) == Flow::Stop {
                return raw;
            }
            write_partial(partial, &raw);
        }
        raw.rounds_done = round + 1;
        write_partial(partial, &raw);
        if test_crash_due(bench.crash_after_round, &raw) {
            crash_guest_for_test();
        }
    }
    raw
}

/// Whether the test's injected crash is due now: once its rounds are complete, unless a boot
/// already resumed from there. A real emulation fault earlier in the case must not cancel the
/// test's crash, and the boot that resumes from it must not crash again.
fn test_crash_due(crash_after_round: Option<usize>, raw: &CaseRaw) -> bool {
    crash_after_round == Some(raw.rounds_done) && !raw.resumed_after.contains(&raw.rounds_done)
}

/// Whether `bound` ran the whole workload as a list in this benchmark (not one reused from an
/// earlier benchmark at the same sizes).
fn listed_here(bound: Option<&Bound>) -> bool {
    bound.is_some_and(|b| b.list.is_some() && b.reused_from.is_none())
}

/// Whether the measured runs want a warm-up run first: not after this boot's list run, nor
/// when this boot copied both the case's data and its programs into the guest's memory.
fn needs_warm_up(
    bound: Option<&Bound>,
    data: Option<&DataPlacement>,
    programs: Option<&ProgramPlacement>,
) -> bool {
    let in_memory = data.is_some_and(|d| d.in_memory) && programs.is_some_and(|p| p.files > 0);
    !listed_here(bound) && !in_memory
}

/// The arms of the warm-up runs: the candidate first, then the others in turn.
fn warmup_arms(arms: &[Arm], n: usize) -> Vec<Arm> {
    let mut order: Vec<Arm> = arms.to_vec();
    if let Some(i) = order.iter().position(|a| *a == Arm::Custom) {
        order.rotate_left(i);
    }
    order.into_iter().cycle().take(n).collect()
}

/// Where a case's runs stand, for the progress line's estimate.
struct Pace {
    started: Instant,
    total: usize,
    /// Rounds the case runs at most (each arm's runs, but a retired arm's).
    rounds: usize,
    done: usize,
    /// Runs an earlier boot did (a resumed case): not part of this boot's pace.
    done_before: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// One run of `arm`, recorded in `raw`; `Stop` when the case cannot go on (interrupted, a
/// scheduler that did not start, or one the kernel ejected).
fn run_and_record(
    job: &CaseJob,
    arm: Arm,
    warmup: bool,
    raw: &mut CaseRaw,
    pace: &mut Pace,
    progress: &mut dyn FnMut(&str),
) -> Flow {
    if crate::interrupt::requested() {
        raw.error = Some("interrupted".into());
        return Flow::Stop;
    }
    let clock = RunClock::begin();
    if drops_caches(raw) {
        drop_caches();
    }
    let order = pace.done;
    let sample = match arm {
        Arm::Default => default_run(job, order, warmup, clock),
        Arm::Production(i) => match production_run(job, i, order, warmup, clock) {
            Ok(s) => s,
            Err(e) => {
                raw.error = Some(format!("{}: {e:#}", arm_name(job, arm)));
                return Flow::Stop;
            }
        },
        _ => match scheduler_run(job, arm, order, warmup, clock) {
            Ok(s) => s,
            Err(e) => {
                raw.error = Some(format!("{e:#}"));
                return Flow::Stop;
            }
        },
    };
    pace.done += 1;
    let per_run = pace.started.elapsed().as_secs_f64()
        / pace.done.saturating_sub(pace.done_before).max(1) as f64;
    let eta = per_run * pace.total.saturating_sub(pace.done) as f64;
    progress(&format!(
        "run {}/{} {:<9}{}: {:.3} s{}{} · case done in ~{:.0}m{:02.0}s",
        pace.done,
        pace.total,
        arm_name(job, arm),
        if warmup { " (warm-up)" } else { "" },
        sample.makespan_s,
        sample
            .classifier
            .as_ref()
            .map(|c| format!(
                " · classifier: {} long of {} task processes, p50 {} · the long task moved {} times between CPUs ({} switches)",
                c.long_processes,
                c.task_processes,
                c.latency_p50_ms
                    .map(|l| format!("{l:.1} ms"))
                    .unwrap_or_else(|| "-".into()),
                c.long_moves,
                c.long_switches
            ))
            .unwrap_or_default(),
        sample
            .invalid_reason
            .as_deref()
            .map(|r| format!(" INVALID: {r}"))
            .unwrap_or_default(),
        (eta / 60.0).floor(),
        eta % 60.0
    ));
    let ejected = ejected(&sample);
    raw.runs.push(sample);
    match ejected {
        Ejected::No => Flow::Continue,
        Ejected::Ours => Flow::Stop,
        Ejected::Alternative(why) => {
            if !warmup && !raw.retired.iter().any(|r| r.arm == arm) {
                let round = raw.rounds_done + 1;
                progress(&format!(
                    "{} was ejected ({why}); it runs no more",
                    arm_name(job, arm).trim_end()
                ));
                pace.total = pace.total.saturating_sub(pace.rounds.saturating_sub(round));
                raw.retired.push(Retired {
                    arm,
                    from_round: round,
                    why: format!("the kernel ejected it, {why}"),
                });
            }
            Flow::Continue
        }
    }
}

/// Whether a run's scheduler was ejected, and what follows.
#[derive(Debug, PartialEq)]
enum Ejected {
    No,
    /// One of ours (the candidate, its ablation, the incumbent): disqualified, and more runs
    /// would only repeat it, so the case stops.
    Ours,
    /// A production scheduler: the user's alternative failing here, worth reporting but no
    /// reason to stop measuring ours. It runs no more, since each later run would repeat the
    /// ejection at the cost of a whole makespan.
    Alternative(String),
}

fn ejected(sample: &RunSample) -> Ejected {
    match (sample.arm, &sample.exit) {
        (Arm::Default, _) | (_, None) => Ejected::No,
        (_, Some(e)) if !e.is_ejection() => Ejected::No,
        (Arm::Production(_), Some(e)) => Ejected::Alternative(e.line()),
        (_, Some(_)) => Ejected::Ours,
    }
}

/// Run the job, appending one JSON line per finished case to `out`.
pub fn run(job: &BenchJob, out: &Path) -> Result<()> {
    if let Some(v) = &job.verify_first {
        eprintln!(
            "verifying {} for {:.0} s under load before measuring",
            v.object.display(),
            v.duration_s
        );
        let r = crate::bpf::runtime::run(v);
        let file = out.with_file_name(crate::bpf::verify::RUNTIME_FILE);
        crate::sandbox::job::write_json(&file, &r)?;
        if let Some(line) = r.outcome_line() {
            eprintln!("{line}");
        }
        if r.failure.is_some() {
            eprintln!("nothing is measured");
            return Ok(());
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("cannot open {}", out.display()))?;
    let start = Instant::now();
    let n = job.cases.len();
    for (i, c) in job.cases.iter().enumerate() {
        let id = c.request.case.id.clone();
        let mut progress = |msg: &str| {
            eprintln!(
                "[{}/{n} {id} {:>5.0}s] {msg}",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        };
        let raw = measure_case(c, job, &out.with_file_name(PARTIAL_FILE), &mut progress);
        writeln!(file, "{}", serde_json::to_string(&raw)?)?;
        file.flush()?;
        if crate::interrupt::requested() {
            break;
        }
    }
    Ok(())
}

/// Read what a job wrote (complete lines only).
pub fn read_raw(path: &Path) -> Vec<CaseRaw> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_runs_count_every_short_task_at_the_faster_timing_and_cold_ones_the_first_apart() {
        // From dropped caches a run's first short task pays the page-ins, as the first timed did.
        assert_eq!(short_demands(1.54, 0.43, true), (1.54, 0.43));
        // Warm, nobody pays them: the faster timing stands for all, whichever came first.
        assert_eq!(short_demands(0.339, 0.383, false), (0.339, 0.339));
        assert_eq!(short_demands(0.38, 0.30, false), (0.30, 0.30));
    }

    #[test]
    fn a_production_scheduler_that_stopped_says_why_the_kernel_disabled_it() {
        let lines = vec![
            "sched_ext: BPF scheduler \"bpfland\" enabled".to_string(),
            "sched_ext: BPF scheduler \"bpfland\" disabled (runnable task stall)".to_string(),
            "sched_ext: bpfland: python3[812] failed to run for 5.31s".to_string(),
        ];
        let exit = SchedExit::from_kernel_log(&lines);
        let why = stopped_during_run("scx_bpfland", exit.as_ref(), "[INFO] Unregister");
        assert!(
            why.contains("runnable task stall") && why.contains("python3[812] failed to run"),
            "{why}"
        );
        // Without a kernel record, the scheduler's own last words.
        let why = stopped_during_run("scx_bpfland", None, "[INFO] Unregister");
        assert!(why.ends_with("[INFO] Unregister"), "{why}");
    }

    #[test]
    fn an_ejected_production_scheduler_retires_and_an_ejected_one_of_ours_stops_the_case() {
        let stall = SchedExit::new(
            1026,
            0,
            "runnable task stall".into(),
            "khugepaged[40] failed to run for 6.720s".into(),
        );
        let unloaded = SchedExit::new(64, 0, "unregistered from user space".into(), String::new());
        let run = |arm, exit: Option<&SchedExit>| RunSample {
            arm,
            order: 0,
            warmup: false,
            makespan_s: 1.0,
            scheduler: String::new(),
            valid: exit.is_none(),
            invalid_reason: None,
            exit: exit.cloned(),
            classifier: None,
            tasks: Vec::new(),
            machine_cpu: None,
            machine_memory: None,
            timing: None,
        };
        match ejected(&run(Arm::Production(1), Some(&stall))) {
            Ejected::Alternative(why) => {
                assert!(
                    why.contains("ERROR_STALL") && why.contains("khugepaged"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
        for ours in [Arm::Custom, Arm::Ablation, Arm::Incumbent] {
            assert_eq!(ejected(&run(ours, Some(&stall))), Ejected::Ours, "{ours:?}");
            assert_eq!(ejected(&run(ours, Some(&unloaded))), Ejected::No);
        }
        assert_eq!(
            ejected(&run(Arm::Production(0), Some(&unloaded))),
            Ejected::No
        );
        assert_eq!(ejected(&run(Arm::Production(0), None)), Ejected::No);
    }

    fn job(resume: Option<CaseRaw>) -> CaseJob {
        let case = crate::case::Case::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/cases/ctest_suite.toml"
        )))
        .unwrap();
        let mut request = RunRequest::new(case, std::path::PathBuf::from("/nonexistent"));
        request.scale = 0.03;
        CaseJob {
            request,
            object: PathBuf::from("x.bpf.o"),
            scheduler: SchedulerRef {
                kind: "reference".into(),
                path: "fifo".into(),
                long_comms: Vec::new(),
                classes: Default::default(),
            },
            knowledge: Knowledge::default(),
            ablation: false,
            incumbent: None,
            production: Vec::new(),
            known_bound: None,
            resume,
            programs: Vec::new(),
            short_probes: Vec::new(),
            long_runs_wide: false,
        }
    }

    #[test]
    fn the_test_crash_strikes_once_even_after_a_real_one() {
        let mut raw = starting_record(&job(None));
        raw.rounds_done = 1;
        assert!(test_crash_due(Some(1), &raw));
        assert!(!test_crash_due(Some(2), &raw));
        assert!(!test_crash_due(None, &raw));
        // An emulation fault after the warm-up resumed at 0: round 1 still crashes.
        raw.resumed_after = vec![0];
        assert!(test_crash_due(Some(1), &raw));
        // The boot that resumed after the injected crash goes on.
        raw.resumed_after = vec![0, 1];
        assert!(!test_crash_due(Some(1), &raw));
    }

    #[test]
    fn a_resumed_case_starts_from_what_the_crashed_boot_completed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PARTIAL_FILE);
        assert!(read_partial(&path).is_none());
        let mut done = starting_record(&job(None));
        assert!(done.runs.is_empty() && done.resumed_after.is_empty());
        done.rounds_done = 2;
        write_partial(&path, &done);
        let back = read_partial(&path).unwrap();
        assert_eq!(back.rounds_done, 2);

        let resumed = starting_record(&job(Some(back.clone())));
        assert_eq!(resumed.rounds_done, 2);
        assert_eq!(resumed.resumed_after, vec![2]);
        // Another case's record, or one that ended in an error, is not resumed.
        let mut other = back.clone();
        other.test_id = "compression".into();
        assert_eq!(starting_record(&job(Some(other))).rounds_done, 0);
        let mut failed = back;
        failed.error = Some("interrupted".into());
        assert_eq!(starting_record(&job(Some(failed))).rounds_done, 0);
        // Two runs of the third round were recorded before the crash: it goes on from there.
        let mut mid = resumed.clone();
        let sample = |warmup| RunSample {
            arm: Arm::Default,
            order: 0,
            warmup,
            makespan_s: 1.0,
            scheduler: String::new(),
            valid: true,
            invalid_reason: None,
            exit: None,
            classifier: None,
            tasks: Vec::new(),
            machine_cpu: None,
            machine_memory: None,
            timing: None,
        };
        mid.runs = std::iter::once(sample(true))
            .chain((0..8).map(|_| sample(false)))
            .collect();
        let arms = [Arm::Default, Arm::Custom, Arm::Ablation];
        assert_eq!(runs_into_round(&mid, &arms), 2);
        mid.runs.truncate(7);
        assert_eq!(runs_into_round(&mid, &arms), 0);
        // The ablation retired from round 1 on: round 0 ran 3 arms, round 1 ran 2, so of 6
        // measured runs 5 are complete rounds and one is into round 2, of 2 at most.
        mid.retired.push(Retired {
            arm: Arm::Ablation,
            from_round: 1,
            why: String::new(),
        });
        assert_eq!(runs_into_round(&mid, &arms), 1);
        assert_eq!(arms_in_round(&arms, &mid, 0).len(), 3);
        assert_eq!(
            arms_in_round(&arms, &mid, 2),
            vec![Arm::Default, Arm::Custom]
        );
        mid.runs.push(sample(false));
        assert_eq!(
            runs_into_round(&mid, &arms),
            2,
            "never more than the round's arms"
        );
        // A torn write is no record at all.
        std::fs::write(&path, "{\"test_id\": \"ctest").unwrap();
        assert!(read_partial(&path).is_none());
    }

    #[test]
    fn only_a_list_run_in_this_benchmark_stands_for_the_warm_up() {
        let mut b = Bound::new(0.5, 0.3, 12.0, 2);
        assert!(!listed_here(None));
        assert!(!listed_here(Some(&b)), "timed alone only");
        b.list = Some(ListRun {
            makespan_s: 13.0,
            long_cpu_s: 12.5,
            short_cpu_s: 0.31,
        });
        assert!(listed_here(Some(&b)));
        b.reused_from = Some("`bench-r1`".into());
        assert!(!listed_here(Some(&b)), "run in an earlier boot");
    }

    #[test]
    fn a_warm_up_runs_unless_a_list_run_or_the_guests_memory_made_it_needless() {
        let mut listed = Bound::new(0.5, 0.3, 12.0, 2);
        listed.list = Some(ListRun {
            makespan_s: 13.0,
            long_cpu_s: 12.5,
            short_cpu_s: 0.31,
        });
        let mut reused = listed.clone();
        reused.reused_from = Some("`bound.json`".into());
        let data = DataPlacement::copied(1 << 20, 0.1);
        let programs = ProgramPlacement {
            files: 4,
            bytes: 2 << 20,
            copy_s: 0.02,
            why_not: None,
            skipped: Vec::new(),
        };
        let none_copied = ProgramPlacement::stayed("no programs named".into(), Vec::new());
        assert!(!needs_warm_up(Some(&listed), None, None));
        assert!(needs_warm_up(Some(&reused), None, None));
        assert!(needs_warm_up(Some(&reused), Some(&data), None));
        assert!(needs_warm_up(
            Some(&reused),
            Some(&data),
            Some(&none_copied)
        ));
        assert!(!needs_warm_up(Some(&reused), Some(&data), Some(&programs)));
        assert!(!needs_warm_up(None, Some(&data), Some(&programs)));
    }

    #[test]
    fn warm_up_runs_start_with_the_candidate_and_take_the_other_arms_in_turn() {
        let arms = [Arm::Default, Arm::Custom, Arm::Ablation];
        assert_eq!(warmup_arms(&arms, 0), Vec::<Arm>::new());
        assert_eq!(warmup_arms(&arms, 1), vec![Arm::Custom]);
        assert_eq!(
            warmup_arms(&arms, 4),
            vec![Arm::Custom, Arm::Ablation, Arm::Default, Arm::Custom]
        );
    }

    #[test]
    fn every_round_runs_every_arm_once_and_a_seed_repeats_its_order() {
        let arms = [Arm::Default, Arm::Custom, Arm::Ablation, Arm::Incumbent];
        for round in 0..8 {
            let mut o = round_order(&arms, round, 42);
            assert_eq!(o, round_order(&arms, round, 42));
            o.sort_by_key(|a| a.label());
            let mut all = arms.to_vec();
            all.sort_by_key(|a| a.label());
            assert_eq!(o, all);
        }
        let firsts: std::collections::BTreeSet<&str> = (0..16)
            .map(|r| round_order(&arms, r, 42)[0].label())
            .collect();
        assert!(firsts.len() > 1, "the first arm never changes: {firsts:?}");
    }
}
