//! The process monitor: every process the tasks spawn, what it ran and the CPU it used.
//!
//! Given the classifier's BPF tracer (root, a kernel with BPF), it records every fork, exec and
//! exit as they happen: no process is missed however short, and CPU times are exact
//! (see [`super::traced`]). Otherwise it samples `/proc` at a fixed interval, which misses a
//! process that lives less than one interval and counts CPU in clock ticks.
//!
//! Sampling: tasks run in process groups of their own, so membership is read straight from
//! each process's `stat` (its `pgrp` field) without walking the process tree. Only `stat` is
//! read for processes that are not ours, which keeps a scan cheap; `status`, `exe` and `cmdline`
//! are read only for task processes. Either way the monitor measures its own CPU time so its
//! overhead is reported, not guessed.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::case::TaskHint;
use crate::classify::rules::ProcessView;
use crate::classify::tracer::Classifier;
use crate::workload::result::{Group, LongTail, MonitorReport, ProcessRecord, ProcessSource};

/// A process counts as long-running past this lifetime (seconds).
const LONG_RUNNING_S: f64 = 0.5;

/// Process groups to watch: process group id → task index and group.
type Watched = Arc<Mutex<HashMap<i32, (usize, Group)>>>;

pub struct Monitor {
    stop: Arc<AtomicBool>,
    /// The sampling thread, when there is no tracer.
    handle: Option<JoinHandle<Sampled>>,
    tracer: Option<Classifier>,
    /// Why the tracer asked for could not be used.
    tracer_error: Option<String>,
    interval: Duration,
    watched: Watched,
    started: Instant,
}

struct Sampled {
    processes: Vec<ProcessRecord>,
    samples: u64,
    self_cpu_s: f64,
    elapsed_s: f64,
}

impl Monitor {
    /// Start tracing with `tracer` (the classifier's compiled tracer object) or, without one or
    /// when it cannot be loaded, sampling every `interval`; tasks are added with
    /// [`Monitor::watch`] as they are spawned.
    pub fn start(interval: Duration, tracer: Option<&Path>) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let watched: Watched = Arc::default();
        let started = Instant::now();
        let (tracer, tracer_error) = match tracer.map(Classifier::record) {
            Some(Ok(c)) => (Some(c), None),
            Some(Err(e)) => (None, Some(format!("{e:#}"))),
            None => (None, None),
        };
        let handle = tracer.is_none().then(|| {
            let (flag, groups) = (Arc::clone(&stop), Arc::clone(&watched));
            std::thread::Builder::new()
                .name("schedgen-monitor".into())
                .spawn(move || sample_loop(groups, interval, started, flag))
                .expect("spawn monitor thread")
        });
        Monitor {
            stop,
            handle,
            tracer,
            tracer_error,
            interval,
            watched,
            started,
        }
    }

    /// Whether every process is traced (not sampled).
    pub fn traces(&self) -> bool {
        self.tracer.is_some()
    }

    /// Watch the processes of task `task`, whose root process `pgid` leads their process group.
    pub fn watch(&self, pgid: i32, task: usize, group: Group) {
        self.watched
            .lock()
            .expect("monitor lock")
            .insert(pgid, (task, group));
    }

    /// Stop sampling and analyse what was seen against the case's long-task hint. Times in the
    /// report are seconds since `origin`.
    pub fn finish(self, origin: Instant, long_hint: &TaskHint) -> MonitorReport {
        self.stop.store(true, Ordering::Relaxed);
        let (source, samples, self_cpu_s, elapsed_s, processes) = match self.tracer {
            Some(tracer) => {
                let log = tracer.stop();
                let roots = self.watched.lock().expect("monitor lock").clone();
                let processes = super::traced::records(&log.lives, &roots, origin);
                let (events, cpu, elapsed) = (log.events, log.cpu_s, log.elapsed_s);
                (ProcessSource::Traced, events, cpu, elapsed, processes)
            }
            None => {
                let s = self.handle.and_then(|h| h.join().ok());
                let mut s = s.unwrap_or(Sampled {
                    processes: Vec::new(),
                    samples: 0,
                    self_cpu_s: 0.0,
                    elapsed_s: 0.0,
                });
                let shift = if self.started >= origin {
                    self.started.duration_since(origin).as_secs_f64()
                } else {
                    -origin.duration_since(self.started).as_secs_f64()
                };
                for p in &mut s.processes {
                    p.first_seen_s += shift;
                    p.last_seen_s += shift;
                }
                let (n, cpu, elapsed) = (s.samples, s.self_cpu_s, s.elapsed_s);
                (ProcessSource::Sampled, n, cpu, elapsed, s.processes)
            }
        };
        let long_tail = analyse(&processes, long_hint);
        MonitorReport {
            source,
            tracer_error: self.tracer_error,
            interval_ms: match source {
                ProcessSource::Traced => 0,
                ProcessSource::Sampled => self.interval.as_millis() as u64,
            },
            samples,
            self_cpu_s,
            self_cpu_share: if elapsed_s > 0.0 {
                self_cpu_s / elapsed_s
            } else {
                0.0
            },
            processes,
            long_tail,
        }
    }
}

pub(crate) fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The fields of `/proc/<pid>/stat` we use.
struct Stat {
    comm: String,
    /// `R` running or runnable, `S` sleeping, `D` in uninterruptible wait, ...
    state: char,
    ppid: i32,
    pgrp: i32,
    session: i32,
    ticks: u64,
    starttime: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // comm may contain spaces and parentheses: it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 2..)?.split_ascii_whitespace().collect();
    let num = |i: usize| rest.get(i).and_then(|v| v.parse::<i64>().ok());
    Some(Stat {
        comm,
        state: rest.first().and_then(|s| s.chars().next()).unwrap_or('?'),
        ppid: num(1)? as i32,
        pgrp: num(2)? as i32,
        session: num(3)? as i32,
        ticks: (num(11)? + num(12)?) as u64,
        starttime: num(19)? as u64,
    })
}

/// `/proc/<pid>/stat` files kept open and re-read from offset 0: procfs regenerates the text on
/// every read, and skipping the open and close per process per sample is most of the monitor's
/// own cost. A file whose process has exited fails to read and is dropped; a reused pid then
/// opens afresh.
#[derive(Default)]
struct StatFiles {
    open: HashMap<i32, std::fs::File>,
    buf: Vec<u8>,
}

impl StatFiles {
    fn read(&mut self, pid: i32) -> Option<String> {
        use std::os::unix::fs::FileExt;
        let file = match self.open.entry(pid) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(std::fs::File::open(format!("/proc/{pid}/stat")).ok()?)
            }
        };
        self.buf.resize(1024, 0);
        let n = match file.read_at(&mut self.buf, 0) {
            Ok(n) if n > 0 => n,
            _ => {
                self.open.remove(&pid);
                return None;
            }
        };
        Some(String::from_utf8_lossy(&self.buf[..n]).into_owned())
    }

    /// Close the files of processes that are gone or not ours.
    fn keep_only(&mut self, listed: &HashSet<i32>, foreign: &HashSet<i32>) {
        self.open
            .retain(|p, _| listed.contains(p) && !foreign.contains(p));
    }
}

fn read_switches(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// What identifies a process as the workload defines it (see `classify::rules`).
fn read_identity(pid: i32) -> ProcessView {
    ProcessView::from_proc(pid, None, None)
}

fn sample_loop(
    watched: Watched,
    interval: Duration,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> Sampled {
    let cpu0 = thread_cpu_s();
    let hz = clock_ticks();
    // SAFETY: getsid(0) has no preconditions.
    let own_session = unsafe { libc::getsid(0) };
    let mut seen: HashMap<(i32, u64), ProcessRecord> = HashMap::new();
    // Processes already found not to be ours: skipped without reading their stat, which keeps
    // the monitor's own CPU use low. A pid leaves this set when it leaves /proc, so a reused pid
    // is examined afresh.
    let mut foreign: HashSet<i32> = HashSet::new();
    let mut listed: HashSet<i32> = HashSet::new();
    // Our processes asleep with their CPU time not moving (a shell waiting for its child):
    // samples in a row like that. Past three, they are read only every
    // fifth sample, which roughly halves the reads while the tasks run.
    let mut idle: HashMap<i32, u32> = HashMap::new();
    let mut stat_files = StatFiles::default();
    let mut samples: u64 = 0;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let tick = Instant::now();
        let now_s = t0.elapsed().as_secs_f64();
        let groups = watched.lock().expect("monitor lock").clone();
        listed.clear();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                listed.insert(pid);
                if foreign.contains(&pid) {
                    continue;
                }
                if idle.get(&pid).is_some_and(|n| *n >= 3) && samples % 5 != 0 {
                    continue;
                }
                let Some(text) = stat_files.read(pid) else {
                    continue;
                };
                let Some(st) = parse_stat(&text) else {
                    continue;
                };
                let Some(&(task, group)) = groups.get(&st.pgrp) else {
                    // Not (yet) ours. Processes in our own session may still be tasks whose
                    // group is registered a moment later, so only others are written off.
                    if st.session != own_session {
                        foreign.insert(pid);
                    }
                    continue;
                };
                let rec = seen
                    .entry((pid, st.starttime))
                    .or_insert_with(|| ProcessRecord {
                        pid,
                        ppid: st.ppid,
                        task,
                        group,
                        comm: String::new(),
                        exe: String::new(),
                        cmdline: Vec::new(),
                        inputs: Vec::new(),
                        cgroup: String::new(),
                        stdin: None,
                        stdout: None,
                        partial: false,
                        first_seen_s: now_s,
                        last_seen_s: now_s,
                        cpu_s: -1.0,
                        voluntary_switches: 0,
                        involuntary_switches: 0,
                    });
                if rec.comm != st.comm {
                    // First sighting, or the process exec'd something else since.
                    let v = read_identity(pid);
                    rec.comm = st.comm;
                    rec.exe = v.exe;
                    rec.cmdline = v.argv;
                    rec.inputs = v.inputs;
                    rec.cgroup = v.cgroup;
                    rec.stdin = v.stdin;
                    rec.stdout = v.stdout;
                }
                let cpu = st.ticks as f64 / hz;
                // `status` is the costliest read: switch counts are refreshed on first sight and
                // every fifth sample (so they may lag by up to five intervals).
                if rec.cpu_s < 0.0 || samples % 5 == 0 {
                    let (vol, invol) = read_switches(pid);
                    rec.voluntary_switches = vol;
                    rec.involuntary_switches = invol;
                }
                let streak = idle.entry(pid).or_insert(0);
                // Only a sleeping process counts as idle: a runnable one waiting for a CPU has
                // not used any yet either, but may run at any moment.
                *streak = if cpu == rec.cpu_s && st.state == 'S' {
                    *streak + 1
                } else {
                    0
                };
                rec.last_seen_s = now_s;
                rec.cpu_s = cpu;
            }
        }
        foreign.retain(|p| listed.contains(p));
        idle.retain(|p, _| listed.contains(p));
        stat_files.keep_only(&listed, &foreign);
        samples += 1;
        let spent = tick.elapsed();
        // Sleep in short steps so that stopping is prompt even with long intervals.
        let mut left = interval.saturating_sub(spent);
        while !left.is_zero() && !stop.load(Ordering::Relaxed) {
            let step = left.min(Duration::from_millis(20));
            std::thread::sleep(step);
            left = left.saturating_sub(step);
        }
    }
    let mut processes: Vec<ProcessRecord> = seen.into_values().collect();
    processes.sort_by(|a, b| {
        a.first_seen_s
            .total_cmp(&b.first_seen_s)
            .then(a.pid.cmp(&b.pid))
    });
    Sampled {
        processes,
        samples,
        self_cpu_s: thread_cpu_s() - cpu0,
        elapsed_s: started.elapsed().as_secs_f64(),
    }
}

/// Find the task that dominates CPU and say whether it is the long task the case names.
pub fn analyse(processes: &[ProcessRecord], long_hint: &TaskHint) -> LongTail {
    let mut per_task: HashMap<usize, (f64, Group)> = HashMap::new();
    for p in processes {
        let e = per_task.entry(p.task).or_insert((0.0, p.group));
        e.0 += p.cpu_s;
    }
    let mut cpu: Vec<f64> = per_task.values().map(|(c, _)| *c).collect();
    cpu.sort_by(|a, b| a.total_cmp(b));
    let median = if cpu.is_empty() {
        0.0
    } else {
        cpu[cpu.len() / 2]
    };
    let tail = per_task
        .iter()
        .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map(|(task, (c, g))| (*task, *c, *g));
    let mut long_running: Vec<&ProcessRecord> = processes
        .iter()
        .filter(|p| p.last_seen_s - p.first_seen_s > LONG_RUNNING_S)
        .collect();
    long_running.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
    let Some((task, tail_cpu, group)) = tail.filter(|t| t.1 > 0.0) else {
        return LongTail {
            long_running_pids: long_running.iter().map(|p| p.pid).collect(),
            ..LongTail::default()
        };
    };
    // Processes of the tail task that used a meaningful share of its CPU.
    let mut comms: Vec<String> = processes
        .iter()
        .filter(|p| p.task == task && p.cpu_s >= 0.05 * tail_cpu && p.cpu_s > 0.0)
        .map(|p| p.comm.clone())
        .collect();
    comms.sort();
    comms.dedup();
    let matches_hint = !comms.is_empty() && comms.iter().all(|c| long_hint.comm.contains(c));
    LongTail {
        detected: group == Group::Long,
        tail_task: Some(task),
        tail_comms: comms,
        matches_hint,
        long_running_pids: long_running.iter().map(|p| p.pid).collect(),
        skew_ratio: if median > 0.0 { tail_cpu / median } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 98765 1000 10";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.comm, "a (b) c");
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.pgrp, 4242);
        assert_eq!(st.ticks, 300);
        assert_eq!(st.starttime, 98765);
    }

    fn rec(pid: i32, task: usize, group: Group, comm: &str, cpu: f64) -> ProcessRecord {
        ProcessRecord {
            pid,
            ppid: 1,
            task,
            group,
            comm: comm.into(),
            exe: String::new(),
            cmdline: vec![],
            inputs: vec![],
            cgroup: String::new(),
            stdin: None,
            stdout: None,
            partial: false,
            first_seen_s: 0.0,
            last_seen_s: cpu,
            cpu_s: cpu,
            voluntary_switches: 0,
            involuntary_switches: 0,
        }
    }

    #[test]
    fn finds_the_long_task_and_checks_the_hint() {
        let hint = TaskHint {
            comm: vec!["long_gzip".into()],
            note: None,
        };
        let mut procs: Vec<ProcessRecord> = (0..39)
            .map(|i| rec(100 + i as i32, i, Group::Short, "short_gzip", 0.2))
            .collect();
        procs.push(rec(500, 39, Group::Long, "long_gzip", 4.0));
        procs.push(rec(501, 39, Group::Long, "sh", 0.0));
        let lt = analyse(&procs, &hint);
        assert!(lt.detected);
        assert_eq!(lt.tail_task, Some(39));
        assert_eq!(lt.tail_comms, vec!["long_gzip".to_string()]);
        assert!(lt.matches_hint);
        assert!((lt.skew_ratio - 20.0).abs() < 1e-9);
        assert_eq!(lt.long_running_pids, vec![500]);

        // A short task that dominates is reported as such, not as a detected long tail.
        procs.push(rec(600, 3, Group::Short, "short_gzip", 9.0));
        let lt = analyse(&procs, &hint);
        assert!(!lt.detected);
        assert!(!lt.matches_hint);
    }

    #[test]
    fn monitor_sees_a_process_in_a_watched_group() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let t0 = Instant::now();
        let m = Monitor::start(Duration::from_millis(20), None);
        m.watch(pgid, 39, Group::Long);
        child.wait().unwrap();
        let report = m.finish(
            t0,
            &TaskHint {
                comm: vec!["sh".into()],
                note: None,
            },
        );
        let p = report
            .processes
            .iter()
            .find(|p| p.pid == pgid)
            .expect("child seen");
        assert_eq!(p.comm, "sh");
        assert!(
            p.exe.ends_with("sh") || p.exe.ends_with("dash"),
            "{}",
            p.exe
        );
        assert!(p.cpu_s > 0.0);
        assert!(report.samples >= 2);
        assert!(report.long_tail.detected);
    }
}
