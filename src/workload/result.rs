//! What a run measures: plain serde types, documented field by field in the README.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classify::rules::Stream;
use crate::model::MakespanModel;
use crate::system::SystemInfo;

/// Version tag of the run JSON; bump when a field changes meaning.
pub const RUN_SCHEMA: &str = "schedgen.run/1";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Success,
    /// A task, the setup or the cleanup failed.
    Failed,
    /// The tasks exceeded `--timeout` and were killed.
    Timeout,
    /// Ctrl-C (or SIGTERM) stopped the run.
    Interrupted,
    /// A dependency is missing; nothing ran.
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Timeout => "timeout",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Short,
    Long,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Short => "short",
            Group::Long => "long",
        }
    }
}

/// One of the 40 tasks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskResult {
    pub index: usize,
    pub group: Group,
    /// The task's root process (its shell; also its process group).
    #[serde(default)]
    pub pid: i32,
    /// Seconds from the common start to this task's start (0 unless `--sequential`).
    pub start_s: f64,
    /// Seconds from the common start to this task's exit.
    pub end_s: f64,
    pub wall_s: f64,
    /// CPU the task used in the run: user + system of the task and every descendant it waited
    /// for (exact, from rusage), less `cpu_before_start_s`.
    pub cpu_s: f64,
    /// CPU its shell had used when it left the starting line (exec'ing `/bin/sh` and reaching
    /// the gate; under emulation 10-100 ms a task), which rusage counts but no run should: it
    /// is spent before the makespan starts. `user_s` and `sys_s` include it.
    #[serde(default)]
    pub cpu_before_start_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_kib: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    /// Exit status, absent when a signal ended the task.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Last lines of stderr, kept only when the task failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

impl TaskResult {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Summary {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        Summary {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// Per-group statistics.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct GroupStats {
    pub count: usize,
    pub wall_s: Summary,
    pub cpu_s: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SetupReport {
    pub seconds: f64,
    /// True when the generated data came from the cache and setup did not run.
    pub cached: bool,
    pub data_dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CleanupReport {
    pub ran: bool,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One process the monitor saw in a task's process group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessRecord {
    pub pid: i32,
    pub ppid: i32,
    pub task: usize,
    pub group: Group,
    pub comm: String,
    pub exe: String,
    pub cmdline: Vec<String>,
    /// Sizes of regular files its arguments name: (argument index, bytes).
    #[serde(default)]
    pub inputs: Vec<(usize, u64)>,
    #[serde(default)]
    pub cgroup: String,
    /// Its stdin when a file or a pipe, its stdout when a pipe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<Stream>,
    /// Traced, but gone before `/proc` could be read at its exec: its `exe` and `cgroup` are
    /// unknown (its inputs were found from the directory it inherited).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    pub first_seen_s: f64,
    pub last_seen_s: f64,
    /// Traced: CPU of the whole process at exit. Sampled: CPU at the last sample (a process
    /// that lived less than one interval is missed, and CPU used after the last sample is not
    /// counted; tasks' exact CPU is in `tasks`).
    pub cpu_s: f64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LongTail {
    /// The task that used the most CPU according to the monitor belongs to the long group.
    pub detected: bool,
    /// Index of the task with the most sampled CPU.
    pub tail_task: Option<usize>,
    /// Distinct `comm`s of that task's processes that used CPU.
    pub tail_comms: Vec<String>,
    /// Whether those `comm`s are all among the case's `long_task.comm` hint.
    pub matches_hint: bool,
    /// Processes that lived longer than 0.5 s, most CPU first (pids).
    pub long_running_pids: Vec<i32>,
    /// Largest per-task sampled CPU over the median per-task sampled CPU.
    pub skew_ratio: f64,
}

/// How the monitor learnt of the tasks' processes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProcessSource {
    /// `/proc` read every `interval_ms`.
    #[default]
    Sampled,
    /// Every fork, exec and exit, from the classifier's BPF tracer.
    Traced,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MonitorReport {
    #[serde(default)]
    pub source: ProcessSource,
    /// Why the tracer asked for could not be used, so processes were sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracer_error: Option<String>,
    /// Sampling interval (0 when traced).
    pub interval_ms: u64,
    /// Samples taken, or the tracer's events when traced.
    pub samples: u64,
    /// CPU the monitor thread itself used, and that as a share of one core over the run.
    pub self_cpu_s: f64,
    pub self_cpu_share: f64,
    pub processes: Vec<ProcessRecord>,
    pub long_tail: LongTail,
}

/// The result of one `schedgen run` of one case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub schema: String,
    pub test_id: String,
    pub test_name: String,
    pub category: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    pub scale: f64,
    /// Sizes after scaling, as given to the commands.
    pub sizes: BTreeMap<String, String>,
    pub sequential: bool,
    pub system: SystemInfo,
    pub setup: SetupReport,
    /// Start of the first task to the end of the last.
    pub makespan_s: f64,
    pub tasks: Vec<TaskResult>,
    pub short: GroupStats,
    pub long: GroupStats,
    /// Long task wall time over mean short task wall time.
    pub imbalance_ratio: f64,
    /// Total task CPU over (makespan × CPUs).
    pub parallel_efficiency: f64,
    /// Largest task CPU time over the median task CPU time (exact, from rusage).
    pub skew_ratio: f64,
    /// The bound computed from the measured task CPU times.
    pub model: Option<MakespanModel>,
    pub monitor: Option<MonitorReport>,
    /// The whole machine's busy and idle CPU time from the first task's start to the last
    /// one's end (reaping included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_cpu: Option<super::machine_cpu::MachineCpu>,
    /// The machine's reclaim and major faults over the same window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_memory: Option<super::machine_memory::MachineMemory>,
    pub cleanup: CleanupReport,
    pub expected_improvement: f64,
    /// The case's promise of how the long task's processes are named (`comm`).
    pub long_task_comm: Vec<String>,
}

impl RunResult {
    /// Fill the derived fields from `tasks` and `system`.
    pub fn derive_stats(&mut self) {
        let pick = |g: Group, f: fn(&TaskResult) -> f64| -> Vec<f64> {
            self.tasks.iter().filter(|t| t.group == g).map(f).collect()
        };
        let stats = |g: Group| GroupStats {
            count: self.tasks.iter().filter(|t| t.group == g).count(),
            wall_s: Summary::of(&pick(g, |t| t.wall_s)),
            cpu_s: Summary::of(&pick(g, |t| t.cpu_s)),
        };
        self.short = stats(Group::Short);
        self.long = stats(Group::Long);
        let first_start = self
            .tasks
            .iter()
            .map(|t| t.start_s)
            .fold(f64::INFINITY, f64::min);
        let last_end = self.tasks.iter().map(|t| t.end_s).fold(0.0, f64::max);
        self.makespan_s = if self.tasks.is_empty() {
            0.0
        } else {
            last_end - first_start
        };
        self.imbalance_ratio = if self.short.wall_s.mean > 0.0 {
            self.long.wall_s.max / self.short.wall_s.mean
        } else {
            0.0
        };
        let cpu_total: f64 = self.tasks.iter().map(|t| t.cpu_s).sum();
        let capacity = self.makespan_s * self.system.cpus as f64;
        self.parallel_efficiency = if capacity > 0.0 {
            cpu_total / capacity
        } else {
            0.0
        };
        let mut demands: Vec<f64> = self.tasks.iter().map(|t| t.cpu_s).collect();
        demands.sort_by(|a, b| a.total_cmp(b));
        let median = demands.get(demands.len() / 2).copied().unwrap_or(0.0);
        self.skew_ratio = if median > 0.0 {
            demands.last().copied().unwrap_or(0.0) / median
        } else {
            0.0
        };
        self.model =
            (!demands.is_empty()).then(|| MakespanModel::from_demands(&demands, self.system.cpus));
    }
}

/// Several runs, as written by `schedgen run --all`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SuiteResult {
    pub schema: String,
    pub results: Vec<RunResult>,
}
