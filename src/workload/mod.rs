//! The workload runner: one case, 39 short + 1 long task started together, measured honestly.
//!
//! [`run_case`] is a plain function over a serialisable [`RunRequest`], so the same code runs on
//! the host and, later, inside a VM whose kernel has sched_ext. It never returns an error for a
//! problem of the case itself: a missing dependency, a failing setup or task, a timeout or Ctrl-C
//! all come back as a [`RunResult`] with a status, and nothing is left running.

pub mod deps;
pub mod machine_cpu;
pub mod machine_memory;
pub mod monitor;
pub mod prepare;
pub mod result;
pub mod shell;
pub mod tasks;
pub mod traced;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::case::{Case, LONG_TASKS, SHORT_TASKS};
use crate::system::SystemInfo;
use result::{CleanupReport, Group, RunResult, RunStatus, SetupReport, RUN_SCHEMA};
use tasks::{ExecOptions, Outcome, TaskSpec};

/// Everything needed to run one case, independent of the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    pub case: Case,
    pub scale: f64,
    /// Limit for the tasks (all of them together), seconds.
    pub timeout_s: f64,
    /// Limit for setup (data generation), seconds.
    pub setup_timeout_s: f64,
    pub sequential: bool,
    /// Monitor sampling interval; `None` disables the monitor.
    pub monitor_interval_ms: Option<u64>,
    /// The classifier's tracer object for this kernel: with it (and the monitor on) the monitor
    /// traces every process instead of sampling `/proc`, falling back to sampling if it cannot
    /// load the tracer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_tracer: Option<PathBuf>,
    pub assets_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// Parent of the per-run temporary directory.
    pub work_root: PathBuf,
    pub python: String,
    /// Extra multiplier for the long task's sizes (auto-sizing); 1 otherwise.
    #[serde(default = "one")]
    pub long_scale: f64,
    /// Use this already prepared data instead of running setup (e.g. inside the sandbox VM,
    /// where the cache is read-only: the host prepares, the guest runs).
    #[serde(default)]
    pub prepared: Option<SetupReport>,
    /// Run only these task indices (39 is the long task), e.g. to time tasks alone.
    /// In this order when given, not index order.
    #[serde(default)]
    pub only_tasks: Option<Vec<usize>>,
    /// At most this many tasks at once, each started as another ends, in `only_tasks`' order
    /// (a list schedule); `None` starts them all together. `sequential` means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_once: Option<usize>,
    /// Run every task (and all it starts) on this CPU only. Timing a task alone uses it: left
    /// free, the scheduler moves a lone task between idle CPUs, and under emulation each move
    /// costs it a cold software TLB (a Python task took 43 s alone so and 22 s beside others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_cpu: Option<usize>,
}

fn one() -> f64 {
    1.0
}

impl RunRequest {
    /// A request with the defaults the CLI uses.
    pub fn new(case: Case, assets_dir: PathBuf) -> RunRequest {
        RunRequest {
            case,
            scale: 1.0,
            timeout_s: 1800.0,
            setup_timeout_s: 1800.0,
            sequential: false,
            monitor_interval_ms: Some(100),
            process_tracer: None,
            assets_dir,
            cache_dir: prepare::cache_root(),
            work_root: std::env::temp_dir(),
            python: deps::default_python(),
            long_scale: 1.0,
            prepared: None,
            only_tasks: None,
            at_once: None,
            pin_cpu: None,
        }
    }

    /// The sizes the commands get.
    pub fn sizes(&self) -> std::collections::BTreeMap<String, String> {
        self.case.sizes_for(self.scale, self.long_scale)
    }
}

/// Progress events for whoever shows them (the CLI draws a spinner from these).
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Setup,
    Tasks { done: usize, total: usize },
    Cleanup,
}

fn empty_result(req: &RunRequest, started_at: String) -> RunResult {
    RunResult {
        schema: RUN_SCHEMA.into(),
        test_id: req.case.id.clone(),
        test_name: req.case.name.clone(),
        category: req.case.category.to_string(),
        status: RunStatus::Success,
        error: None,
        started_at,
        scale: req.scale,
        sizes: req.sizes(),
        sequential: req.sequential,
        system: SystemInfo::probe(),
        setup: SetupReport::default(),
        makespan_s: 0.0,
        tasks: Vec::new(),
        short: Default::default(),
        long: Default::default(),
        imbalance_ratio: 0.0,
        parallel_efficiency: 0.0,
        skew_ratio: 0.0,
        model: None,
        monitor: None,
        machine_cpu: None,
        machine_memory: None,
        cleanup: CleanupReport::default(),
        expected_improvement: req.case.expected_improvement,
        long_task_comm: req.case.long_task.comm.clone(),
    }
}

/// Run one case end to end: check dependencies, set up (cached), run the 40 tasks, clean up.
pub fn run_case(req: &RunRequest, progress: &(dyn Fn(Progress) + Sync)) -> RunResult {
    let mut res = empty_result(req, chrono::Local::now().to_rfc3339());
    // Prepared data means whoever prepared it checked the dependencies (on the same root).
    let statuses = if req.prepared.is_some() {
        Vec::new()
    } else {
        deps::check(&req.case, &req.python)
    };
    if let Some(msg) = deps::missing_message(&statuses) {
        res.status = RunStatus::Skipped;
        res.error = Some(msg);
        return res;
    }
    progress(Progress::Setup);
    let setup = match &req.prepared {
        Some(p) => Ok(SetupReport {
            seconds: 0.0,
            cached: true,
            data_dir: p.data_dir.clone(),
        }),
        None => prepare::prepare(req),
    };
    match setup {
        Ok(setup) => res.setup = setup,
        Err(e) => {
            res.status = if crate::interrupt::requested() {
                RunStatus::Interrupted
            } else {
                RunStatus::Failed
            };
            res.error = Some(format!("{e:#}"));
            return res;
        }
    }
    if let Err(e) = run_tasks(req, &mut res, progress) {
        res.status = RunStatus::Failed;
        res.error = Some(format!("{e:#}"));
    }
    res
}

fn run_tasks(
    req: &RunRequest,
    res: &mut RunResult,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<()> {
    let data_dir = PathBuf::from(&res.setup.data_dir);
    std::fs::create_dir_all(&req.work_root)
        .with_context(|| format!("cannot create {}", req.work_root.display()))?;
    // Removed on drop, on every path out of this function.
    let work = tempfile::Builder::new()
        .prefix(&format!("schedgen-{}-", req.case.id))
        .tempdir_in(&req.work_root)
        .context("cannot create the run's work directory")?;
    let mut env = prepare::base_env(req, &data_dir);
    env.insert("WORK".into(), work.path().display().to_string());

    let all = SHORT_TASKS + LONG_TASKS;
    let order: Vec<usize> = match &req.only_tasks {
        Some(only) => {
            let mut seen = std::collections::BTreeSet::new();
            only.iter()
                .copied()
                .filter(|i| *i < all && seen.insert(*i))
                .collect()
        }
        None => (0..all).collect(),
    };
    let specs: Vec<TaskSpec> = order
        .into_iter()
        .map(|i| {
            let group = if i < SHORT_TASKS {
                Group::Short
            } else {
                Group::Long
            };
            let dir = work.path().join(format!("task-{i:02}"));
            let mut env = env.clone();
            env.insert("TASK_DIR".into(), dir.display().to_string());
            env.insert("TASK_INDEX".into(), i.to_string());
            env.insert("TASK_GROUP".into(), group.as_str().into());
            let script = match group {
                Group::Short => req.case.commands.short.clone(),
                Group::Long => req.case.commands.long.clone(),
            };
            TaskSpec {
                index: i,
                group,
                script,
                env,
                dir,
            }
        })
        .collect();
    for s in &specs {
        std::fs::create_dir(&s.dir)
            .with_context(|| format!("cannot create {}", s.dir.display()))?;
    }

    let report = |done, total| progress(Progress::Tasks { done, total });
    let opts = ExecOptions {
        at_once: if req.sequential { Some(1) } else { req.at_once },
        pin_cpu: req.pin_cpu,
        timeout: Duration::from_secs_f64(req.timeout_s),
        monitor_interval: req.monitor_interval_ms.map(Duration::from_millis),
        tracer: req.process_tracer.as_deref(),
        long_hint: &req.case.long_task,
        progress: &report,
    };
    let (cpu_before, memory_before) = (machine_cpu::snapshot(), machine_memory::snapshot());
    let exec = tasks::execute(&specs, &opts);
    let (cpu_after, memory_after) = (machine_cpu::snapshot(), machine_memory::snapshot());

    // Cleanup runs whatever happened above.
    progress(Progress::Cleanup);
    res.cleanup = cleanup(req, &env, work.path());

    let exec = exec?;
    res.tasks = exec.tasks;
    res.monitor = exec.monitor;
    res.machine_cpu = cpu_before
        .zip(cpu_after)
        .map(|(a, b)| machine_cpu::between(a, b));
    res.machine_memory = memory_before
        .zip(memory_after)
        .map(|(a, b)| machine_memory::between(a, b));
    res.derive_stats();
    match exec.outcome {
        Outcome::Interrupted => {
            res.status = RunStatus::Interrupted;
            res.error = Some("interrupted; all task processes were killed".into());
        }
        Outcome::Timeout => {
            let running = specs.len() - res.tasks.iter().filter(|t| t.exit_code.is_some()).count();
            res.status = RunStatus::Timeout;
            res.error = Some(format!(
                "tasks exceeded the {:.0} s timeout; {running} task(s) still running were killed",
                req.timeout_s
            ));
        }
        Outcome::Completed => {
            if let Some(t) = res.tasks.iter().find(|t| !t.succeeded()) {
                let failed = res.tasks.iter().filter(|t| !t.succeeded()).count();
                res.status = RunStatus::Failed;
                let how = match (t.exit_code, t.signal) {
                    (Some(c), _) => format!("exit status {c}"),
                    (None, Some(s)) => format!("signal {s}"),
                    _ => "unknown status".into(),
                };
                res.error = Some(format!(
                    "{failed} task(s) failed; first: task {} ({}) ended with {how}{}",
                    t.index,
                    t.group.as_str(),
                    t.stderr_tail
                        .as_deref()
                        .map(|s| format!(":\n{s}"))
                        .unwrap_or_default()
                ));
            } else if !res.cleanup.ok {
                res.status = RunStatus::Failed;
                res.error = res.cleanup.error.clone();
            }
        }
    }
    Ok(())
}

fn cleanup(req: &RunRequest, env: &shell::Env, work: &std::path::Path) -> CleanupReport {
    let Some(script) = &req.case.commands.cleanup else {
        return CleanupReport {
            ran: false,
            ok: true,
            error: None,
        };
    };
    let log = work.join("cleanup.log");
    // Cleanup must run even after Ctrl-C, so it gets a short timeout of its own instead of
    // honouring the interrupt flag.
    let r = shell::run_cleanup(script, env, work, &log, Duration::from_secs(120));
    CleanupReport {
        ran: true,
        ok: r.is_ok(),
        error: r.err().map(|e| format!("cleanup failed: {e:#}")),
    }
}
