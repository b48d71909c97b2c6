//! What a scheduler author needs to know about a workload, distilled from one monitored run.
//!
//! A profile is written for the generator (and a human reading over its shoulder): the machine
//! (CPUs, topology, kernel), every process the tasks ran with its CPU use and how much of its
//! life it spent waiting, which task forms the long tail and the names that recognise it, and
//! the best cut any scheduler could reach on this machine.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::classify::learn::{self, Learned, Observed, TaskCpu};
use crate::classify::rules::{ProcessView, Stream};
use crate::model::MakespanModel;
use crate::system::SystemInfo;
use crate::workload::result::{Group, GroupStats, ProcessSource, RunResult, RunStatus};

pub const PROFILE_SCHEMA: &str = "schedgen.profile/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CpuTopology {
    pub cpu: usize,
    pub core_id: Option<u32>,
    pub package_id: Option<u32>,
    /// CPUs sharing this CPU's core (SMT siblings), as the kernel lists them.
    pub siblings: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Topology {
    pub model_name: String,
    pub cpus: Vec<CpuTopology>,
    pub smt: bool,
}

impl Topology {
    pub fn probe() -> Topology {
        let read = |p: String| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let online = crate::system::cpu_count();
        let mut cpus = Vec::new();
        for cpu in 0..online.max(1) {
            let base = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
            cpus.push(CpuTopology {
                cpu,
                core_id: read(format!("{base}/core_id")).and_then(|s| s.parse().ok()),
                package_id: read(format!("{base}/physical_package_id"))
                    .and_then(|s| s.parse().ok()),
                siblings: read(format!("{base}/thread_siblings_list")).unwrap_or_default(),
            });
        }
        let smt = cpus
            .iter()
            .any(|c| c.siblings.contains(',') || c.siblings.contains('-'));
        let model_name = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_default();
        Topology {
            model_name,
            cpus,
            smt,
        }
    }
}

/// One process a task ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessProfile {
    pub pid: i32,
    #[serde(default)]
    pub ppid: i32,
    pub task: usize,
    pub group: Group,
    pub comm: String,
    pub exe: String,
    pub argv: Vec<String>,
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
    /// Gone before what it ran could be read (see `ProcessRecord::partial`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    pub cpu_s: f64,
    /// When it was first seen, seconds from the run's start.
    #[serde(default)]
    pub start_s: f64,
    /// Observed lifetime (traced: exact; sampled: to one monitor interval).
    pub wall_s: f64,
    /// CPU over lifetime: near 1 for CPU-bound, low for I/O-bound or waiting.
    pub cpu_share: f64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupProfile {
    pub stats: GroupStats,
    /// Mean CPU time over mean wall time of the group's tasks (exact, from rusage).
    pub cpu_share: f64,
    /// Names of the group's processes that used CPU.
    pub comms: Vec<String>,
    pub exes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LongTailProfile {
    /// Task indices of the long tail.
    pub tasks: Vec<usize>,
    /// Whether the monitor found the long task dominating CPU.
    pub detected: bool,
    /// `comm`s the long tail's processes ran under (observed).
    pub comms: Vec<String>,
    /// `comm`s the case promises for the long task (none when it names none).
    pub hint_comms: Vec<String>,
    pub matches_hint: bool,
    /// How a scheduler can recognise these tasks, in one sentence: what the learned rule is,
    /// or that nothing separates them.
    pub recognise_by: String,
    pub skew_ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub schema: String,
    pub test_id: String,
    pub test_name: String,
    pub description: String,
    pub created_at: String,
    pub scale: f64,
    pub system: SystemInfo,
    pub topology: Topology,
    pub makespan_s: f64,
    pub short: GroupProfile,
    pub long: GroupProfile,
    pub long_tail: LongTailProfile,
    pub model: MakespanModel,
    /// The task classes learned from what the processes ran (see `classify`).
    #[serde(default)]
    pub task_classes: Learned,
    /// How the processes below were seen: traced (every one) or sampled.
    #[serde(default)]
    pub process_source: ProcessSource,
    /// Why they were sampled although tracing was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracer_error: Option<String>,
    /// CPU the monitor (sampling thread, or the tracer's userspace thread) used, as a share of
    /// one CPU over the run.
    #[serde(default)]
    pub monitor_cpu_share: f64,
    pub processes: Vec<ProcessProfile>,
}

/// Least share of its task's CPU time a process must use to count towards the task's width.
const WORKING_SHARE: f64 = 0.05;

/// Two processes run side by side when they were alive together for at least this share of
/// the shorter one's life.
const OVERLAP_SHARE: f64 = 0.25;

/// A process uses more than one CPU when its CPU time exceeds its lifetime by this much.
const THREADS_SHARE: f64 = 1.2;

impl Profile {
    /// Whether a long task's work was seen on more than one CPU at a time: two of its working
    /// processes alive together (the stages of a pipeline), or one using more CPU time than
    /// it lived (threads). Its bound then times it free as well as held to one CPU. A chain
    /// of processes that run one after another (`gcc` → `cc1` → `as`) is not wide.
    pub fn long_runs_wide(&self) -> bool {
        self.long_tail.tasks.iter().any(|&task| {
            let procs: Vec<&ProcessProfile> = self
                .processes
                .iter()
                .filter(|p| p.task == task && p.group == Group::Long)
                .collect();
            runs_wide(&procs)
        })
    }

    /// Every program the case's processes exec'd, short and long tasks together, each once.
    pub fn programs(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .short
            .exes
            .iter()
            .chain(&self.long.exes)
            .filter(|e| !e.is_empty())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Whether one task's processes ran side by side or one of them on several CPUs.
fn runs_wide(procs: &[&ProcessProfile]) -> bool {
    let total: f64 = procs.iter().map(|p| p.cpu_s).sum();
    let working: Vec<&ProcessProfile> = procs
        .iter()
        .copied()
        .filter(|p| total > 0.0 && p.cpu_s >= WORKING_SHARE * total)
        .collect();
    let threaded = working
        .iter()
        .any(|p| p.wall_s > 0.0 && p.cpu_s > THREADS_SHARE * p.wall_s);
    let side_by_side = working.iter().enumerate().any(|(i, a)| {
        working[i + 1..].iter().any(|b| {
            let together =
                (a.start_s + a.wall_s).min(b.start_s + b.wall_s) - a.start_s.max(b.start_s);
            let shorter = a.wall_s.min(b.wall_s);
            shorter > 0.0 && together >= OVERLAP_SHARE * shorter
        })
    });
    threaded || side_by_side
}

fn group_profile(run: &RunResult, group: Group, procs: &[ProcessProfile]) -> GroupProfile {
    let stats = match group {
        Group::Short => run.short,
        Group::Long => run.long,
    };
    let set = |f: fn(&ProcessProfile) -> &str| -> Vec<String> {
        procs
            .iter()
            .filter(|p| p.group == group && p.cpu_s > 0.0)
            .map(|p| f(p).to_string())
            .filter(|s| !s.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    GroupProfile {
        stats,
        cpu_share: if stats.wall_s.mean > 0.0 {
            stats.cpu_s.mean / stats.wall_s.mean
        } else {
            0.0
        },
        comms: set(|p| &p.comm),
        exes: set(|p| &p.exe),
    }
}

/// Distil a monitored, successful run into a profile.
pub fn from_run(run: &RunResult, description: &str) -> anyhow::Result<Profile> {
    if run.status != RunStatus::Success {
        anyhow::bail!(
            "cannot profile `{}`: the run ended {} ({})",
            run.test_id,
            run.status.as_str(),
            run.error.as_deref().unwrap_or("no detail")
        );
    }
    let Some(monitor) = &run.monitor else {
        anyhow::bail!(
            "cannot profile `{}` without the process monitor",
            run.test_id
        );
    };
    let Some(model) = run.model else {
        anyhow::bail!("run of `{}` has no task measurements", run.test_id);
    };
    let processes: Vec<ProcessProfile> = monitor
        .processes
        .iter()
        .map(|p| {
            let wall = (p.last_seen_s - p.first_seen_s).max(0.0);
            ProcessProfile {
                pid: p.pid,
                ppid: p.ppid,
                task: p.task,
                group: p.group,
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                argv: p.cmdline.clone(),
                inputs: p.inputs.clone(),
                cgroup: p.cgroup.clone(),
                stdin: p.stdin,
                stdout: p.stdout,
                partial: p.partial,
                cpu_s: p.cpu_s,
                start_s: p.first_seen_s,
                wall_s: wall,
                cpu_share: if wall > 0.0 {
                    (p.cpu_s / wall).min(1.0)
                } else {
                    0.0
                },
                voluntary_switches: p.voluntary_switches,
                involuntary_switches: p.involuntary_switches,
            }
        })
        .collect();
    let lt = &monitor.long_tail;
    let long_tasks: Vec<usize> = run
        .tasks
        .iter()
        .filter(|t| t.group == Group::Long)
        .map(|t| t.index)
        .collect();
    let comms = if lt.detected {
        lt.tail_comms.clone()
    } else {
        Vec::new()
    };
    let task_classes = learn_classes(run, &processes);
    let recognise_by = if lt.detected || task_classes.separable {
        task_classes.explanation.clone()
    } else {
        format!(
            "the monitor could not single out the long task (too short a run?); {}",
            task_classes.explanation
        )
    };
    Ok(Profile {
        schema: PROFILE_SCHEMA.into(),
        test_id: run.test_id.clone(),
        test_name: run.test_name.clone(),
        description: description.to_string(),
        created_at: chrono::Local::now().to_rfc3339(),
        scale: run.scale,
        system: run.system.clone(),
        topology: Topology::probe(),
        makespan_s: run.makespan_s,
        short: group_profile(run, Group::Short, &processes),
        long: group_profile(run, Group::Long, &processes),
        long_tail: LongTailProfile {
            tasks: long_tasks,
            detected: lt.detected,
            comms,
            hint_comms: run.long_task_comm.clone(),
            matches_hint: lt.matches_hint,
            recognise_by,
            skew_ratio: run.skew_ratio,
        },
        model,
        task_classes,
        process_source: monitor.source,
        tracer_error: monitor.tracer_error.clone(),
        monitor_cpu_share: monitor.self_cpu_share,
        processes,
    })
}

/// Whether `argv` is the runner's own task shell (`sh -c` with the start gate).
fn is_runner_shell(argv: &[String]) -> bool {
    argv.len() >= 3 && argv[1] == "-c" && argv[2].starts_with(crate::workload::tasks::GATE_SCRIPT)
}

/// Learn the task classes of a run from its processes and its tasks' exact CPU.
pub fn learn_classes(run: &RunResult, processes: &[ProcessProfile]) -> Learned {
    let observed: Vec<Observed> = processes
        .iter()
        .map(|p| Observed {
            pid: p.pid,
            ppid: p.ppid,
            task: p.task,
            group: p.group,
            masked: learn::runner_masks(&p.argv, p.task, None),
            runner_shell: is_runner_shell(&p.argv),
            partial: p.partial,
            view: ProcessView {
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                argv: p.argv.clone(),
                inputs: p.inputs.clone(),
                cgroup: p.cgroup.clone(),
                stdin: p.stdin,
                stdout: p.stdout,
            },
            cpu_s: p.cpu_s,
        })
        .collect();
    let tasks: Vec<TaskCpu> = run
        .tasks
        .iter()
        .map(|t| TaskCpu {
            index: t.index,
            group: t.group,
            cpu_s: t.cpu_s,
        })
        .collect();
    learn::learn(&observed, &tasks)
}

/// How the profile's processes were seen, in a phrase.
fn seen_how(p: &Profile) -> String {
    let n = p.processes.len();
    let cost = format!(" · {:.2}% of a CPU", p.monitor_cpu_share * 100.0);
    let how = match (p.process_source, &p.tracer_error) {
        (ProcessSource::Traced, _) => {
            let partial = p.processes.iter().filter(|q| q.partial).count();
            format!(
                "{n} traced (every fork, exec and exit){}",
                if partial > 0 {
                    format!("; {partial} ended before what they ran could be read in full")
                } else {
                    String::new()
                }
            )
        }
        (ProcessSource::Sampled, None) => format!("{n} sampled from /proc"),
        (ProcessSource::Sampled, Some(e)) => {
            format!("{n} sampled from /proc (a short process can be missed): not traced, {e}")
        }
    };
    how + &cost
}

/// A short human summary of a profile.
pub fn summary(p: &Profile) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{} — {} (scale {})", p.test_id, p.test_name, p.scale);
    let _ = writeln!(
        s,
        "  machine: {} CPUs{} · {} · kernel {}",
        p.system.cpus,
        if p.topology.smt { " (SMT)" } else { "" },
        if p.topology.model_name.is_empty() {
            "unknown CPU"
        } else {
            &p.topology.model_name
        },
        p.system.kernel_release
    );
    for (name, g) in [("short", &p.short), ("long", &p.long)] {
        let _ =
            writeln!(
            s,
            "  {name:<5} ×{:<2} cpu {:.3} s mean · wall {:.3} s mean · {:.0}% on CPU · runs as {}",
            g.stats.count,
            g.stats.cpu_s.mean,
            g.stats.wall_s.mean,
            g.cpu_share * 100.0,
            if g.comms.is_empty() { "?".into() } else { g.comms.join(", ") }
        );
    }
    let _ = writeln!(
        s,
        "  long tail: task(s) {:?} · {} · skew {:.1}×",
        p.long_tail.tasks, p.long_tail.recognise_by, p.long_tail.skew_ratio
    );
    for line in p.task_classes.classes.describe() {
        let _ = writeln!(s, "  {line}");
    }
    let _ = writeln!(s, "  processes: {}", seen_how(p));
    let _ = writeln!(
        s,
        "  bound on {} CPUs: fair share {:.3} s · optimum {:.3} s · best possible cut {:.1}%",
        p.model.cpus,
        p.model.fair_share_makespan_s,
        p.model.optimal_makespan_s,
        p.model.best_cut * 100.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(comm: &str, cpu_s: f64, start_s: f64, wall_s: f64) -> ProcessProfile {
        ProcessProfile {
            pid: 1,
            ppid: 0,
            task: 39,
            group: Group::Long,
            comm: comm.into(),
            exe: String::new(),
            argv: Vec::new(),
            inputs: Vec::new(),
            cgroup: String::new(),
            stdin: None,
            stdout: None,
            partial: false,
            cpu_s,
            start_s,
            wall_s,
            cpu_share: 0.0,
            voluntary_switches: 0,
            involuntary_switches: 0,
        }
    }

    #[test]
    fn a_pipeline_runs_wide_and_a_chain_of_programs_does_not() {
        // `cat | awk | sort`: cat and awk alive together, sort at the end.
        let pipeline = [
            process("sh", 0.001, 0.0, 6.1),
            process("cat", 2.0, 0.01, 5.9),
            process("awk", 4.0, 0.01, 6.0),
            process("sort", 0.01, 0.02, 6.05),
        ];
        assert!(runs_wide(&pipeline.iter().collect::<Vec<_>>()));
        // `gcc` waits (using next to no CPU) while `cc1` compiles, then `as` assembles: one
        // after another.
        let chain = [
            process("gcc", 0.02, 0.0, 5.0),
            process("cc1", 4.5, 0.01, 4.6),
            process("as", 0.4, 4.62, 0.37),
        ];
        assert!(!runs_wide(&chain.iter().collect::<Vec<_>>()));
        // One process with more CPU time than life ran threads side by side.
        let threads = [process("xz", 8.0, 0.0, 4.2)];
        assert!(runs_wide(&threads.iter().collect::<Vec<_>>()));
        assert!(!runs_wide(&[&process("python3", 4.0, 0.0, 4.1)]));
    }
}
