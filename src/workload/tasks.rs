//! Start the 40 tasks together, wait for each, and measure it exactly.
//!
//! Every task is `/bin/sh` in a process group of its own, spawned first and held at a starting
//! line: its shell blocks reading a pipe until the parent closes the write end, so all tasks begin
//! at the same instant however long spawning 40 processes takes. Each task is reaped by its own
//! thread with `wait4`, which returns the task's exit status and the rusage of the task plus every
//! descendant it waited for: exact CPU time, not sampling.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::monitor::Monitor;
use super::result::{Group, MonitorReport, TaskResult};
use super::shell::{self, Env};
use crate::case::TaskHint;
use crate::interrupt;

/// One task to run.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub index: usize,
    pub group: Group,
    pub script: String,
    pub env: Env,
    /// Working directory; `stdout` and `stderr` files are written here.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Timeout,
    Interrupted,
}

pub struct ExecOptions<'a> {
    pub sequential: bool,
    pub timeout: Duration,
    pub monitor_interval: Option<Duration>,
    pub long_hint: &'a TaskHint,
    /// Called after each task ends with (tasks done, tasks in all).
    pub progress: &'a (dyn Fn(usize, usize) + Sync),
}

pub struct Execution {
    pub outcome: Outcome,
    /// Results of the tasks that ended, in index order (killed tasks included).
    pub tasks: Vec<TaskResult>,
    pub monitor: Option<MonitorReport>,
}

struct Ended {
    index: usize,
    at: Instant,
    status: i32,
    usage: libc::rusage,
}

/// What every task's shell runs before the task's own command: wait at the gate. A process
/// whose `sh -c` script starts with this is the runner's, not the workload's.
pub const GATE_SCRIPT: &str = "read _ || :\nexec </dev/null\n";

struct Started {
    spec_pos: usize,
    pid: i32,
}

/// The release pipe: tasks read its read end, the parent closes its write end to start them.
fn release_pipe() -> Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints; both ends are close-on-exec so that only the
    // dup2'ed stdin of each task survives exec.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create the start pipe");
    }
    // SAFETY: pipe2 just returned these two descriptors and nothing else owns them.
    unsafe { Ok((File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

fn spawn_held(spec: &TaskSpec, gate: &File) -> Result<i32> {
    // `read` returns at EOF, when the parent closes the pipe; stdin then goes back to /dev/null.
    let script = format!("{GATE_SCRIPT}{}", spec.script);
    let out = File::create(spec.dir.join("stdout"))
        .with_context(|| format!("cannot create {}/stdout", spec.dir.display()))?;
    let err = File::create(spec.dir.join("stderr"))?;
    let child = shell::sh(&script, false, &spec.env, &spec.dir)
        .stdin(Stdio::from(gate.try_clone()?))
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start task {}", spec.index))?;
    // The child is reaped by wait4 in its own thread, not through `Child`.
    Ok(child.id() as i32)
}

fn reap(pid: i32, index: usize, tx: mpsc::Sender<Ended>) {
    std::thread::Builder::new()
        .name(format!("reap-{index}"))
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut status = 0;
            // SAFETY: zeroed rusage is a valid value to be overwritten by wait4.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            loop {
                // SAFETY: valid out-pointers; pid is our own child.
                let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
                if rc == pid {
                    break;
                }
                if rc < 0
                    && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    status = -1;
                    break;
                }
            }
            let _ = tx.send(Ended {
                index,
                at: Instant::now(),
                status,
                usage,
            });
        })
        .expect("spawn reaper thread");
}

fn seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6
}

fn to_result(spec: &TaskSpec, pid: i32, start: Instant, origin: Instant, e: &Ended) -> TaskResult {
    let (exit_code, signal) = if e.status == -1 {
        (None, None)
    } else if libc::WIFEXITED(e.status) {
        (Some(libc::WEXITSTATUS(e.status)), None)
    } else if libc::WIFSIGNALED(e.status) {
        (None, Some(libc::WTERMSIG(e.status)))
    } else {
        (None, None)
    };
    let user = seconds(e.usage.ru_utime);
    let sys = seconds(e.usage.ru_stime);
    let failed = exit_code != Some(0);
    TaskResult {
        index: spec.index,
        group: spec.group,
        pid,
        start_s: start.duration_since(origin).as_secs_f64(),
        end_s: e.at.duration_since(origin).as_secs_f64(),
        wall_s: e.at.duration_since(start).as_secs_f64(),
        cpu_s: user + sys,
        user_s: user,
        sys_s: sys,
        max_rss_kib: e.usage.ru_maxrss.max(0) as u64,
        voluntary_switches: e.usage.ru_nvcsw.max(0) as u64,
        involuntary_switches: e.usage.ru_nivcsw.max(0) as u64,
        exit_code,
        signal,
        stderr_tail: failed
            .then(|| shell::tail(&spec.dir.join("stderr"), 10))
            .filter(|t| !t.is_empty()),
    }
}

/// Run `specs` (all together, or one after another with `sequential`) and measure them.
pub fn execute(specs: &[TaskSpec], opts: &ExecOptions) -> Result<Execution> {
    let batches: Vec<Vec<usize>> = if opts.sequential {
        (0..specs.len()).map(|i| vec![i]).collect()
    } else {
        vec![(0..specs.len()).collect()]
    };
    let mut results: Vec<TaskResult> = Vec::with_capacity(specs.len());
    let mut outcome = Outcome::Completed;
    let monitor = opts.monitor_interval.map(Monitor::start);
    let mut origin: Option<Instant> = None;
    let total = specs.len();

    for batch in batches {
        if outcome != Outcome::Completed {
            break;
        }
        let (gate, release) = release_pipe()?;
        let mut started: Vec<Started> = Vec::with_capacity(batch.len());
        for &pos in &batch {
            match spawn_held(&specs[pos], &gate) {
                Ok(pid) => started.push(Started { spec_pos: pos, pid }),
                Err(e) => {
                    for s in &started {
                        shell::kill_group(s.pid);
                    }
                    drop(release);
                    for s in &started {
                        // SAFETY: reaping our own killed children; status is ignored.
                        unsafe { libc::waitpid(s.pid, std::ptr::null_mut(), 0) };
                    }
                    if let Some(m) = monitor {
                        m.finish(Instant::now(), opts.long_hint);
                    }
                    return Err(e);
                }
            }
        }
        drop(gate);
        let (tx, rx) = mpsc::channel();
        for s in &started {
            reap(s.pid, s.spec_pos, tx.clone());
        }
        drop(tx);
        if let Some(m) = &monitor {
            for s in &started {
                m.watch(s.pid, specs[s.spec_pos].index, specs[s.spec_pos].group);
            }
        }
        let t0 = *origin.get_or_insert_with(Instant::now);
        let start = Instant::now();
        drop(release); // the starting gun
        let deadline = t0 + opts.timeout;
        let mut pending: HashMap<usize, i32> =
            started.iter().map(|s| (s.spec_pos, s.pid)).collect();
        while !pending.is_empty() {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(ended) => {
                    let pid = pending.remove(&ended.index).unwrap_or(0);
                    // Stragglers left in the task's group (background jobs) die with it.
                    shell::kill_group(pid);
                    results.push(to_result(&specs[ended.index], pid, start, t0, &ended));
                    (opts.progress)(results.len(), total);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if outcome == Outcome::Completed {
                if interrupt::requested() {
                    outcome = Outcome::Interrupted;
                } else if Instant::now() > deadline {
                    outcome = Outcome::Timeout;
                }
                if outcome != Outcome::Completed {
                    for pid in pending.values() {
                        shell::kill_group(*pid);
                    }
                }
            }
        }
    }
    let monitor = monitor.map(|m| m.finish(origin.unwrap_or_else(Instant::now), opts.long_hint));
    results.sort_by_key(|r| r.index);
    Ok(Execution {
        outcome,
        tasks: results,
        monitor,
    })
}
