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
use std::path::{Path, PathBuf};
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
    /// At most this many tasks at once, started in `specs` order as others end (1 runs them one
    /// after another); `None` starts them all together.
    pub at_once: Option<usize>,
    /// Hold every task to this CPU (its children inherit it).
    pub pin_cpu: Option<usize>,
    pub timeout: Duration,
    pub monitor_interval: Option<Duration>,
    /// The tracer object the monitor traces processes with (see [`Monitor::start`]).
    pub tracer: Option<&'a Path>,
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

/// A released task: its shell's pid, when it left the starting line, and the CPU its shell had
/// used by then (exec'ing `/bin/sh` and reaching the gate, which its rusage counts too).
#[derive(Clone, Copy)]
struct Running {
    pid: i32,
    start: Instant,
    cpu_before_s: f64,
}

/// CPU seconds process `pid` has used so far (its own, not its children's): the scheduler's
/// exact runtime from `/proc/<pid>/schedstat`, else the tick-based `utime + stime`.
fn cpu_so_far(pid: i32) -> Option<f64> {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/schedstat")) {
        if let Some(ns) = text
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            return Some(ns as f64 * 1e-9);
        }
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let field = |i: usize| rest.split_ascii_whitespace().nth(i)?.parse::<u64>().ok();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((field(11)? + field(12)?) as f64 / hz)
}

/// How long to wait for every shell of a batch to reach its starting line before releasing
/// them anyway (a shell's exec takes about 40 ms under emulation, a whole batch a second or two).
const GATE_WAIT: Duration = Duration::from_secs(30);

/// Whether `pid` waits at the gate: inside `read` on its stdin, the gate pipe (nothing else in
/// a task's shell reads its stdin before the gate). `None` when `/proc` cannot say (no such
/// file, or the process is gone).
fn at_gate(pid: i32) -> Option<bool> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut fields = text.split_ascii_whitespace();
    // `running` while on a CPU; else the syscall's number and its arguments in hex.
    let nr = fields.next()?;
    if nr == "running" {
        return Some(false);
    }
    Some(nr == libc::SYS_read.to_string() && fields.next() == Some("0x0"))
}

/// Wait until every shell of `batch` has reached the gate, so that none is still exec'ing
/// `/bin/sh` when the gate opens: that work would count as the task's and delay its start.
/// Gives up after [`GATE_WAIT`], or at once when `/proc` cannot tell; returns how many shells
/// were not seen at the gate.
fn wait_at_gate(batch: &[Started]) -> usize {
    let deadline = Instant::now() + GATE_WAIT;
    let mut waiting: Vec<i32> = batch.iter().map(|s| s.pid).collect();
    loop {
        waiting.retain(|pid| at_gate(*pid) == Some(false));
        if waiting.is_empty() || Instant::now() > deadline || interrupt::requested() {
            return waiting.len();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
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

/// Allow `pid` only `cpu`. Set while the task waits at its starting line, so everything it
/// starts inherits it.
fn pin(pid: i32, cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot hold task process {pid} to CPU {cpu}"));
    }
    Ok(())
}

fn spawn_held(spec: &TaskSpec, gate: &File, pin_cpu: Option<usize>) -> Result<i32> {
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
    let pid = child.id() as i32;
    if let Some(cpu) = pin_cpu {
        if let Err(e) = pin(pid, cpu) {
            shell::kill_group(pid);
            // SAFETY: reaping our own killed child; status is ignored.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            return Err(e);
        }
    }
    // The child is reaped by wait4 in its own thread, not through `Child`.
    Ok(pid)
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

fn to_result(spec: &TaskSpec, run: Running, origin: Instant, e: &Ended) -> TaskResult {
    let Running {
        pid,
        start,
        cpu_before_s,
    } = run;
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
        cpu_s: (user + sys - cpu_before_s).max(0.0),
        cpu_before_start_s: cpu_before_s,
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

/// Spawn `specs` (at positions `offset..` of the run's list) held at one starting line, each
/// reaped by its own thread into `tx`. Returns them and the gate's write end: dropping it starts
/// them. On failure every task already spawned is killed and reaped.
fn start_together(
    specs: &[TaskSpec],
    offset: usize,
    pin_cpu: Option<usize>,
    tx: &mpsc::Sender<Ended>,
) -> Result<(Vec<Started>, OwnedFd)> {
    let (gate, release) = release_pipe()?;
    let mut started: Vec<Started> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        match spawn_held(spec, &gate, pin_cpu) {
            Ok(pid) => started.push(Started {
                spec_pos: offset + i,
                pid,
            }),
            Err(e) => {
                for s in &started {
                    shell::kill_group(s.pid);
                }
                drop(release);
                for s in &started {
                    // SAFETY: reaping our own killed children; status is ignored.
                    unsafe { libc::waitpid(s.pid, std::ptr::null_mut(), 0) };
                }
                return Err(e);
            }
        }
    }
    for s in &started {
        reap(s.pid, s.spec_pos, tx.clone());
    }
    Ok((started, release))
}

/// Let `batch` go from its starting line, under the monitor's watch: where each task runs and
/// since when.
fn release(
    (batch, gate): (Vec<Started>, OwnedFd),
    specs: &[TaskSpec],
    monitor: Option<&Monitor>,
) -> Vec<(usize, Running)> {
    if let Some(m) = monitor {
        for s in &batch {
            m.watch(s.pid, specs[s.spec_pos].index, specs[s.spec_pos].group);
        }
    }
    wait_at_gate(&batch);
    // Read while every shell waits at the gate, so that none of it is the task's own work.
    let before: Vec<f64> = batch
        .iter()
        .map(|s| cpu_so_far(s.pid).unwrap_or(0.0))
        .collect();
    let start = Instant::now();
    drop(gate); // the starting gun
    batch
        .into_iter()
        .zip(before)
        .map(|(s, cpu_before_s)| {
            (
                s.spec_pos,
                Running {
                    pid: s.pid,
                    start,
                    cpu_before_s,
                },
            )
        })
        .collect()
}

/// Wait for `n` killed tasks' reapers to report, so none outlives the run.
fn wait_for(rx: &mpsc::Receiver<Ended>, n: usize) {
    for _ in 0..n {
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            break;
        }
    }
}

/// Run `specs` (all together, or at most `at_once` at a time in their order) and measure them.
pub fn execute(specs: &[TaskSpec], opts: &ExecOptions) -> Result<Execution> {
    let limit = opts
        .at_once
        .unwrap_or(specs.len())
        .clamp(1, specs.len().max(1));
    let mut results: Vec<TaskResult> = Vec::with_capacity(specs.len());
    let mut outcome = Outcome::Completed;
    let monitor = opts
        .monitor_interval
        .map(|interval| Monitor::start(interval, opts.tracer));
    let total = specs.len();
    let (tx, rx) = mpsc::channel();
    // The first `limit` tasks leave the starting line together; each later one starts alone, as
    // soon as a task ends and frees its place.
    let first = match start_together(&specs[..limit.min(total)], 0, opts.pin_cpu, &tx) {
        Ok(first) => first,
        Err(e) => {
            if let Some(m) = monitor {
                m.finish(Instant::now(), opts.long_hint);
            }
            return Err(e);
        }
    };
    let origin = Instant::now();
    let mut running: HashMap<usize, Running> = HashMap::new();
    running.extend(release(first, specs, monitor.as_ref()));
    let mut next = limit.min(total);
    let deadline = origin + opts.timeout;
    while !running.is_empty() {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(ended) => {
                let run = running.remove(&ended.index).unwrap_or(Running {
                    pid: 0,
                    start: ended.at,
                    cpu_before_s: 0.0,
                });
                // Stragglers left in the task's group (background jobs) die with it.
                shell::kill_group(run.pid);
                results.push(to_result(&specs[ended.index], run, origin, &ended));
                (opts.progress)(results.len(), total);
                if outcome == Outcome::Completed && next < total {
                    match start_together(&specs[next..next + 1], next, opts.pin_cpu, &tx) {
                        Ok(batch) => running.extend(release(batch, specs, monitor.as_ref())),
                        Err(e) => {
                            for r in running.values() {
                                shell::kill_group(r.pid);
                            }
                            wait_for(&rx, running.len());
                            if let Some(m) = monitor {
                                m.finish(origin, opts.long_hint);
                            }
                            return Err(e);
                        }
                    }
                    next += 1;
                }
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
                for r in running.values() {
                    shell::kill_group(r.pid);
                }
            }
        }
    }
    let monitor = monitor.map(|m| m.finish(origin, opts.long_hint));
    results.sort_by_key(|r| r.index);
    Ok(Execution {
        outcome,
        tasks: results,
        monitor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &std::path::Path, index: usize, secs: f64) -> TaskSpec {
        let dir = dir.join(format!("task-{index}"));
        std::fs::create_dir(&dir).unwrap();
        let mut env = Env::new();
        env.insert("PATH".into(), "/usr/bin:/bin".into());
        TaskSpec {
            index,
            group: if index == 39 {
                Group::Long
            } else {
                Group::Short
            },
            script: format!("sleep {secs}"),
            env,
            dir,
        }
    }

    fn run(specs: &[TaskSpec], at_once: Option<usize>) -> Execution {
        run_on(specs, at_once, None)
    }

    fn run_on(specs: &[TaskSpec], at_once: Option<usize>, pin_cpu: Option<usize>) -> Execution {
        let hint = TaskHint::default();
        let opts = ExecOptions {
            at_once,
            pin_cpu,
            timeout: Duration::from_secs(30),
            monitor_interval: None,
            tracer: None,
            long_hint: &hint,
            progress: &|_, _| {},
        };
        execute(specs, &opts).unwrap()
    }

    fn by_index(e: &Execution, i: usize) -> &TaskResult {
        e.tasks.iter().find(|t| t.index == i).unwrap()
    }

    #[test]
    fn the_shells_cpu_before_the_start_is_not_the_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let specs: Vec<TaskSpec> = (0..3).map(|i| sleeper(dir.path(), i, 0.1)).collect();
        let e = run(&specs, None);
        // Exec'ing /bin/sh and reaching the gate costs some CPU, which rusage counts; the gate
        // opens only once every shell waits at it, so every one shows it.
        assert!(
            e.tasks.iter().all(|t| t.cpu_before_start_s > 0.0),
            "{:?}",
            e.tasks
        );
        for t in &e.tasks {
            assert!(t.cpu_before_start_s <= t.user_s + t.sys_s + 1e-3, "{t:?}");
            let whole = t.user_s + t.sys_s;
            assert!(
                (t.cpu_s - (whole - t.cpu_before_start_s).max(0.0)).abs() < 1e-9,
                "{t:?}"
            );
        }
        assert!(cpu_so_far(std::process::id() as i32).is_some_and(|c| c > 0.0));
        assert!(cpu_so_far(i32::MAX).is_none());
    }

    #[test]
    fn a_list_schedule_keeps_at_most_its_slots_busy_in_the_given_order() {
        let dir = tempfile::tempdir().unwrap();
        // The long task first, then three short ones, two at a time.
        let specs = vec![
            sleeper(dir.path(), 39, 0.9),
            sleeper(dir.path(), 0, 0.3),
            sleeper(dir.path(), 1, 0.3),
            sleeper(dir.path(), 2, 0.3),
        ];
        let e = run(&specs, Some(2));
        assert_eq!(e.outcome, Outcome::Completed);
        assert_eq!(e.tasks.len(), 4);
        let (long, s0, s1, s2) = (
            by_index(&e, 39),
            by_index(&e, 0),
            by_index(&e, 1),
            by_index(&e, 2),
        );
        assert!(long.start_s < 0.05 && s0.start_s < 0.05, "{long:?} {s0:?}");
        // Each later short task waits for the one before it: only one place is free.
        assert!(s1.start_s >= s0.end_s - 0.02, "{s0:?} {s1:?}");
        assert!(s2.start_s >= s1.end_s - 0.02, "{s1:?} {s2:?}");
        assert!(
            s2.start_s < long.end_s,
            "the long task holds its place throughout"
        );
    }

    #[test]
    fn without_a_limit_every_task_starts_together_and_one_means_one_after_another() {
        let dir = tempfile::tempdir().unwrap();
        let specs: Vec<TaskSpec> = (0..3).map(|i| sleeper(dir.path(), i, 0.2)).collect();
        let all = run(&specs, None);
        assert!(
            all.tasks.iter().all(|t| t.start_s < 0.05),
            "{:?}",
            all.tasks
        );
        let one = run(&specs, Some(1));
        for pair in one.tasks.windows(2) {
            assert!(pair[1].start_s >= pair[0].end_s - 0.02, "{pair:?}");
        }
    }

    #[test]
    fn a_pinned_task_and_what_it_starts_run_on_that_cpu_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sleeper(dir.path(), 0, 0.0);
        // A child of the task's shell reports the CPUs it may use.
        spec.script = "sh -c 'grep Cpus_allowed_list /proc/self/status' > allowed".into();
        let e = run_on(std::slice::from_ref(&spec), None, Some(0));
        assert_eq!(e.outcome, Outcome::Completed);
        let allowed = std::fs::read_to_string(spec.dir.join("allowed")).unwrap();
        assert_eq!(allowed.split_whitespace().last(), Some("0"), "{allowed}");
        let free = run_on(std::slice::from_ref(&spec), None, None);
        assert_eq!(free.outcome, Outcome::Completed);
        let allowed = std::fs::read_to_string(spec.dir.join("allowed")).unwrap();
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            assert_ne!(allowed.split_whitespace().last(), Some("0"), "{allowed}");
        }
    }
}
