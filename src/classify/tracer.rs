//! The run-time classifier: a BPF tracer of exec, fork and exit, and a userspace thread that
//! puts every exec'd process into its class.
//!
//! The kernel half (`tracer.bpf.c`) sends each exec's comm and argument block over a ring
//! buffer and lets a new process inherit its parent's class at fork. This thread reads the
//! events, completes what the event lacks from `/proc` (the executable, the cwd for relative
//! input files, the cgroup), evaluates the [`ClassSet`] and writes the verdict into
//! `schedgen_classes`, which the scheduler shares (the loader points the scheduler's map of that
//! name at this one before loading it). Processes already running at start are classified
//! from `/proc`. It runs the same on a sched_ext host and in the sandbox VM.
//!
//! It keeps what it saw (the process tree, each process's class, how long each exec waited to
//! be classified, its own CPU time) so a benchmark can report latency, overhead and, against
//! the runner's task list, which tasks were put in the wrong class.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, RingBufferBuilder};
use serde::{Deserialize, Serialize};

use super::rules::{input_sizes, read_cmdline, split_args, ClassSet, ProcessView, Stream, Verdict};
use crate::workload::monitor::thread_cpu_s;
use crate::workload::result::Group;

/// The kernel half, compiled at run time against the target kernel's headers.
pub const TRACER_SOURCE: &str = include_str!("tracer.bpf.c");
/// The map shared with schedulers (defined in `schedgen.bpf.h`).
pub const CLASS_MAP: &str = "schedgen_classes";
const EVENTS_MAP: &str = "schedgen_events";

const EV_EXEC: u32 = 1;
const EV_FORK: u32 = 2;
const EV_EXIT: u32 = 3;
const STREAM_FILE: u32 = 1;
const STREAM_PIPE: u32 = 2;
const FLAG_LONG: u32 = 1;
const FLAG_INHERITED: u32 = 2;
const FLAG_SERVICE: u32 = 4;
const COMM_LEN: usize = 16;
/// Bytes of the argument block an exec event carries (`ARGS_MAX` in the kernel half).
const ARGS_MAX: usize = 1024;
const STREAM_LEN: usize = 4 + 4 + 8 + 8;
const HEADER_LEN: usize = 4 * 4 + 8 + 8 + COMM_LEN + 4 + 4 + 8 + 8 + 2 * STREAM_LEN;

/// One decoded event (layout of `struct schedgen_event`).
#[derive(Debug, Clone, PartialEq)]
struct Event {
    kind: u32,
    tgid: i32,
    ppid: i32,
    cur_class: u32,
    ts_ns: u64,
    cpu_ns: u64,
    comm: String,
    moves: u32,
    switches: u64,
    voluntary: u64,
    /// Exec: its stdin and stdout, as the kernel saw them at the exec.
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    args: Vec<String>,
    /// The argument block filled the event: `/proc` may have the rest.
    truncated: bool,
}

fn parse_event(b: &[u8]) -> Option<Event> {
    if b.len() < HEADER_LEN {
        return None;
    }
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    let comm_bytes = &b[32..32 + COMM_LEN];
    let end = comm_bytes.iter().position(|c| *c == 0).unwrap_or(COMM_LEN);
    let args_len = (u32_at(48) as usize).min(b.len() - HEADER_LEN);
    Some(Event {
        kind: u32_at(0),
        tgid: u32_at(4) as i32,
        ppid: u32_at(8) as i32,
        cur_class: u32_at(12),
        ts_ns: u64_at(16),
        cpu_ns: u64_at(24),
        comm: String::from_utf8_lossy(&comm_bytes[..end]).into_owned(),
        moves: u32_at(52),
        switches: u64_at(56),
        voluntary: u64_at(64),
        stdin: stream_at(b, 72),
        stdout: stream_at(b, 72 + STREAM_LEN),
        args: split_args(&b[HEADER_LEN..HEADER_LEN + args_len]),
        truncated: args_len >= ARGS_MAX - 1,
    })
}

/// What the classifier knew of one process when it stopped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Seen {
    pub tgid: i32,
    pub ppid: i32,
    pub comm: String,
    pub argv: Vec<String>,
    /// The class it ended with (0: none).
    pub class: u32,
    /// How it got it: `rule`, `inherited`, `fallback`, `none`.
    pub how: String,
    /// CPU seconds at exit, when it exited while we watched.
    pub cpu_s: Option<f64>,
    /// Its main thread's moves between CPUs and context switches, counted at exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switches: Option<u64>,
}

/// Everything the classifier thread saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassifierLog {
    pub events: u64,
    pub execs: u64,
    /// Processes present at start and classified from `/proc`.
    pub scanned: u64,
    /// Exec to class written, nanoseconds, one per exec that got a class.
    pub latencies_ns: Vec<u64>,
    /// CPU time of the classifier thread.
    pub cpu_s: f64,
    pub elapsed_s: f64,
    pub dropped: u64,
    pub processes: Vec<Seen>,
    /// Every process that started while a recording classifier ([`Classifier::record`])
    /// watched, by tgid; empty otherwise.
    #[serde(skip)]
    pub lives: HashMap<i32, Life>,
}

/// What a profile needs of a process beyond its class: what it ran, read from `/proc` as it
/// exec'd, the process that forked it, and when it lived (`CLOCK_MONOTONIC` nanoseconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Life {
    pub view: ProcessView,
    /// `/proc` no longer had it when its exec was read (it had already ended): its executable
    /// and cgroup are unknown. What the event carries is known (`comm`, `argv`, its stdin and
    /// stdout), and the files `argv` names are found from the directory it inherited.
    pub partial: bool,
    /// Its working directory at exec (inherited at fork until then).
    pub cwd: Option<PathBuf>,
    /// The process that forked it (its parent then, whoever adopted it later).
    pub parent: i32,
    pub born_ns: u64,
    pub ended_ns: Option<u64>,
    /// CPU time of the whole process, at exit.
    pub cpu_s: Option<f64>,
    /// Context switches at exit: (voluntary, involuntary).
    pub switches: Option<(u64, u64)>,
}

/// A running classifier. Stop it after detaching the scheduler that shares its map.
pub struct Classifier {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<ClassifierLog>>,
    class_map: MapHandle,
    object: Object,
    _links: Vec<Link>,
}

impl Classifier {
    /// Load the tracer object, classify what runs already, and start following execs.
    pub fn start(tracer_object: &Path, classes: &ClassSet) -> Result<Classifier> {
        Classifier::start_with(tracer_object, classes, false)
    }

    /// A classifier with no classes that records every process started from now on, with what
    /// it ran and its exact CPU time ([`ClassifierLog::lives`]): what a profile needs, without
    /// missing a process that lives less than any sampling interval.
    pub fn record(tracer_object: &Path) -> Result<Classifier> {
        Classifier::start_with(tracer_object, &ClassSet::default(), true)
    }

    fn start_with(tracer_object: &Path, classes: &ClassSet, record: bool) -> Result<Classifier> {
        let object = ObjectBuilder::default()
            .open_file(tracer_object)
            .and_then(|o| o.load())
            .with_context(|| {
                format!(
                    "cannot load the classifier's tracer {}",
                    tracer_object.display()
                )
            })?;
        let mut links = Vec::new();
        for prog in object.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            links.push(
                prog.attach()
                    .with_context(|| format!("cannot attach the tracer's `{name}`"))?,
            );
        }
        let find = |name: &str| -> Result<MapHandle> {
            let map = object
                .maps()
                .find(|m| m.name() == name)
                .ok_or_else(|| anyhow!("the tracer object has no `{name}` map"))?;
            MapHandle::try_from(&map).with_context(|| format!("cannot open the `{name}` map"))
        };
        let class_map = find(CLASS_MAP)?;
        let events = find(EVENTS_MAP)?;
        let writer = MapHandle::try_from(&class_map).context("cannot duplicate the class map")?;

        let mut state = State::new(classes.clone(), writer);
        if record {
            state.lives = Some(HashMap::new());
        }
        state.scan_proc();
        state.mark_service(std::process::id() as i32);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("schedgen-classify".into())
            .spawn(move || follow(state, events, flag))
            .context("cannot start the classifier thread")?;
        Ok(Classifier {
            stop,
            thread: Some(thread),
            class_map,
            object,
            _links: links,
        })
    }

    /// What the kernel map holds for process `tgid`: (class id, flags, expected ns).
    pub fn class_of(&self, tgid: i32) -> Option<(u32, u32, u64)> {
        let v = self
            .class_map
            .lookup(&(tgid as u32).to_ne_bytes(), MapFlags::ANY)
            .ok()??;
        let u32_at = |o: usize| u32::from_ne_bytes(v.get(o..o + 4)?.try_into().ok()?).into();
        let id: Option<u32> = u32_at(0);
        let flags: Option<u32> = u32_at(4);
        let ns = u64::from_ne_bytes(v.get(8..16)?.try_into().ok()?);
        Some((id?, flags?, ns))
    }

    /// The class map, for the scheduler to share.
    pub fn class_map_fd(&self) -> BorrowedFd<'_> {
        self.class_map.as_fd()
    }

    /// Stop following and return what was seen.
    pub fn stop(mut self) -> ClassifierLog {
        self.stop.store(true, Ordering::Relaxed);
        let mut log = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        log.dropped = read_dropped(&self.object);
        log
    }
}

impl Drop for Classifier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_dropped(object: &Object) -> u64 {
    // `nr_dropped` is the first (only) variable of the tracer's .bss.
    object
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(".bss"))
        .and_then(|m| m.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok().flatten())
        .and_then(|v| {
            v.get(..8)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
        })
        .unwrap_or(0)
}

/// The classifier thread's state.
struct State {
    classes: ClassSet,
    map: MapHandle,
    procs: HashMap<i32, Seen>,
    log: ClassifierLog,
    /// schedgen's own process, in the map as the longest work (0 until marked).
    service: i32,
    /// Pipes written by a process of a specific class: a process reading one inherits it.
    pipes: HashMap<u64, u32>,
    /// The processes whose stdin is each pipe, and the pipe each process writes.
    readers: HashMap<u64, Vec<i32>>,
    writes: HashMap<i32, u64>,
    /// Processes started since, when recording for a profile.
    lives: Option<HashMap<i32, Life>>,
}

impl State {
    fn new(classes: ClassSet, map: MapHandle) -> State {
        State {
            classes,
            map,
            procs: HashMap::new(),
            log: ClassifierLog::default(),
            service: 0,
            pipes: HashMap::new(),
            readers: HashMap::new(),
            writes: HashMap::new(),
            lives: None,
        }
    }

    /// Recording: a process was forked (`born`) or exec'd (`view`), or ended (`e`).
    fn note_life(&mut self, e: &Event, view: Option<&ProcessView>) {
        let Some(lives) = self.lives.as_mut() else {
            return;
        };
        match e.kind {
            EV_FORK => {
                // Until it execs, a child runs its parent's image, in its directory.
                let (view, partial, cwd) = lives
                    .get(&e.ppid)
                    .map(|p| (p.view.clone(), p.partial, p.cwd.clone()))
                    .unwrap_or_else(|| {
                        let v = ProcessView {
                            comm: e.comm.clone(),
                            ..ProcessView::default()
                        };
                        (v, true, None)
                    });
                lives.insert(
                    e.tgid,
                    Life {
                        view,
                        partial,
                        cwd,
                        parent: e.ppid,
                        born_ns: e.ts_ns,
                        ..Life::default()
                    },
                );
            }
            EV_EXEC => {
                let Some(view) = view else { return };
                let inherited_cwd = lives.get(&e.tgid).and_then(|l| l.cwd.clone());
                let life = lives.entry(e.tgid).or_insert_with(|| Life {
                    parent: e.ppid,
                    born_ns: e.ts_ns,
                    ..Life::default()
                });
                life.view = view.clone();
                life.partial = view.exe.is_empty();
                match std::fs::read_link(format!("/proc/{}/cwd", e.tgid)) {
                    Ok(cwd) => life.cwd = Some(cwd),
                    Err(_) => {
                        life.cwd = inherited_cwd;
                        life.view.inputs = input_sizes(&view.argv, life.cwd.as_deref());
                    }
                }
            }
            EV_EXIT => {
                if let Some(life) = lives.get_mut(&e.tgid) {
                    life.ended_ns = Some(e.ts_ns);
                    life.cpu_s = Some(e.cpu_ns as f64 * 1e-9);
                    life.switches = Some((e.voluntary, e.switches.saturating_sub(e.voluntary)));
                }
            }
            _ => {}
        }
    }

    /// Remember which pipes a process image reads and writes.
    fn note_pipes(&mut self, tgid: i32, view: &ProcessView) {
        if let Some(pipe) = view.stdin_pipe() {
            let r = self.readers.entry(pipe).or_default();
            if !r.contains(&tgid) {
                r.push(tgid);
            }
        }
        match view.stdout_pipe() {
            Some(pipe) => self.writes.insert(tgid, pipe),
            None => self.writes.remove(&tgid),
        };
    }

    /// The specific class of a process writing into the pipe `view` reads, if any.
    fn piped_class(&self, view: &ProcessView) -> Option<u32> {
        view.stdin_pipe()
            .and_then(|pipe| self.pipes.get(&pipe).copied())
    }

    /// `tgid` now has the specific `class`: a pipe it writes carries it to the processes that
    /// read it (a pipeline's `gzip` after the `cat` a rule matched) unless a rule gave them
    /// their own; they pass it on to their children and their own pipes in turn.
    fn feed(&mut self, tgid: i32, class: u32) {
        let mut frontier = vec![tgid];
        let mut guard = 0;
        while let Some(writer) = frontier.pop() {
            guard += 1;
            let Some(pipe) = self.writes.get(&writer).copied() else {
                continue;
            };
            if guard > 4096 || self.pipes.insert(pipe, class) == Some(class) {
                continue;
            }
            for reader in self.readers.get(&pipe).cloned().unwrap_or_default() {
                let Some(p) = self.procs.get_mut(&reader) else {
                    continue;
                };
                if p.how == "rule" || p.class == class {
                    continue;
                }
                p.class = class;
                p.how = "inherited".into();
                self.write(reader, Verdict::Inherited(class));
                self.propagate(reader, class);
                frontier.push(reader);
            }
        }
    }

    fn write(&self, tgid: i32, verdict: Verdict) {
        let Some(id) = verdict.class() else {
            return;
        };
        let Some(c) = self.classes.get(id) else {
            return;
        };
        let mut flags = if c.long { FLAG_LONG } else { 0 };
        if matches!(verdict, Verdict::Inherited(_)) {
            flags |= FLAG_INHERITED;
        }
        let value = class_value(id, flags, c.expected_cpu_s);
        let _ = self
            .map
            .update(&(tgid as u32).to_ne_bytes(), &value, MapFlags::ANY);
    }

    /// Put schedgen's own process (this classifier, and the runner that starts the tasks) in
    /// the map as the longest work. A scheduler that gives classified work a head start would
    /// otherwise queue the classifier behind every young task it has yet to classify (measured
    /// 2026-12-02: exec-to-class p99 went from about 0.2 s to 2-3.6 s once kernel threads got
    /// the head start too). The kernel half does not pass this on to children.
    fn mark_service(&mut self, tgid: i32) {
        self.service = tgid;
        let class = self.procs.get(&tgid).map(|p| p.class).unwrap_or(0);
        let longest = self.classes.longest_expected_cpu_s();
        let _ = self.map.update(
            &(tgid as u32).to_ne_bytes(),
            &class_value(class, FLAG_SERVICE, longest),
            MapFlags::ANY,
        );
    }

    fn record(&mut self, tgid: i32, ppid: i32, view: &ProcessView, verdict: Verdict) {
        let how = match verdict {
            Verdict::Matched(_) => "rule",
            Verdict::Inherited(_) => "inherited",
            Verdict::Fallback(_) => "fallback",
            Verdict::Unclassified => "none",
        };
        let e = self.procs.entry(tgid).or_insert_with(|| Seen {
            tgid,
            ppid,
            comm: String::new(),
            argv: Vec::new(),
            class: 0,
            how: String::new(),
            cpu_s: None,
            moves: None,
            switches: None,
        });
        e.ppid = ppid;
        e.comm = view.comm.clone();
        e.argv = view.argv.clone();
        e.class = verdict.class().unwrap_or(0);
        e.how = how.into();
    }

    /// Classify what already runs, parents before children so that inheritance holds.
    fn scan_proc(&mut self) {
        let mut found: Vec<(i32, i32, ProcessView)> = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                let view = ProcessView::from_proc(pid, None, None);
                if view.argv.is_empty() {
                    continue; // a kernel thread, or gone
                }
                found.push((pid, read_ppid(pid).unwrap_or(0), view));
            }
        }
        let direct: HashMap<i32, Verdict> = found
            .iter()
            .map(|(pid, _, v)| (*pid, self.classes.classify(v, None)))
            .collect();
        let parent: HashMap<i32, i32> = found.iter().map(|(p, pp, _)| (*p, *pp)).collect();
        for (pid, ppid, view) in &found {
            let mut inherited = None;
            let mut cur = *ppid;
            for _ in 0..64 {
                match direct.get(&cur) {
                    Some(Verdict::Matched(c)) => {
                        inherited = Some(*c);
                        break;
                    }
                    _ => match parent.get(&cur) {
                        Some(pp) if *pp != cur => cur = *pp,
                        _ => break,
                    },
                }
            }
            let verdict = self.classes.classify(view, inherited);
            self.write(*pid, verdict);
            self.record(*pid, *ppid, view, verdict);
            self.note_pipes(*pid, view);
            self.log.scanned += 1;
        }
        // Pipelines: now that every writer's class is known, pass it to the readers.
        let specific: Vec<(i32, u32)> = self
            .procs
            .values()
            .filter(|p| self.specific(p.class))
            .map(|p| (p.tgid, p.class))
            .collect();
        for (tgid, class) in specific {
            self.feed(tgid, class);
        }
    }

    /// Whether `class` is one a rule gives (not the catch-all): such a class is inherited.
    fn specific(&self, class: u32) -> bool {
        self.classes
            .get(class)
            .is_some_and(|c| c.rule != super::rules::Rule::Any)
    }

    /// The class our records say `tgid` should have inherited, if a specific one.
    fn recorded(&self, tgid: i32) -> Option<u32> {
        self.procs
            .get(&tgid)
            .map(|p| p.class)
            .filter(|c| self.specific(*c))
    }

    /// A process just matched a rule: its descendants that were forked before userspace saw
    /// the match (the kernel copied the old class) inherit the new one now.
    fn propagate(&mut self, tgid: i32, class: u32) {
        let mut frontier = vec![tgid];
        let mut fixed = Vec::new();
        while let Some(parent) = frontier.pop() {
            for p in self.procs.values() {
                if p.ppid == parent && p.tgid != parent && p.how != "rule" && p.class != class {
                    fixed.push(p.tgid);
                    frontier.push(p.tgid);
                }
            }
            if fixed.len() > 4096 {
                break;
            }
        }
        for child in fixed {
            self.write(child, Verdict::Inherited(class));
            if let Some(p) = self.procs.get_mut(&child) {
                p.class = class;
                p.how = "inherited".into();
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        self.log.events += 1;
        match e.kind {
            EV_EXEC => {
                self.log.execs += 1;
                let from_parent = self
                    .recorded(e.tgid)
                    .or((e.cur_class != 0).then_some(e.cur_class));
                let args = if e.truncated {
                    // The whole command line, while the process is there to read it.
                    let full = read_cmdline(Path::new(&format!("/proc/{}/cmdline", e.tgid)));
                    Some(if full.is_empty() {
                        e.args.clone()
                    } else {
                        full
                    })
                } else {
                    (!e.args.is_empty()).then(|| e.args.clone())
                };
                let mut view = ProcessView::from_proc(e.tgid, args, Some(e.comm.clone()));
                // The kernel's view of its streams at the exec; /proc's is later, if there.
                view.stdin = e.stdin;
                view.stdout = e.stdout.filter(|s| s.pipe().is_some());
                let inherited = from_parent
                    .filter(|c| self.specific(*c))
                    .or(self.piped_class(&view))
                    .or(from_parent);
                let verdict = self.classes.classify(&view, inherited);
                // Only a process that keeps the class it inherited keeps the map's entry (and
                // its `inherited` flag). One that fell back to the catch-all is through the exec
                // that identifies it: without this write it would keep the flag, and a
                // scheduler that gave flagged processes the whole head start for their first
                // young_ns had them compete with the long task (about 2.4 s of a 40 s makespan
                // on ctest_suite at its ideal sizes; schedulers now key that head start on
                // schedgen_before_exec(), which the kernel knows exactly). A child of
                // schedgen's own process got its class from the kernel without the class's
                // expected time (the service's is the longest's): it is written in any case.
                let keeps = matches!(verdict, Verdict::Inherited(c) if c == e.cur_class);
                if !keeps || e.ppid == self.service {
                    self.write(e.tgid, verdict);
                }
                if verdict.class().is_some() {
                    let now = monotonic_ns();
                    self.log.latencies_ns.push(now.saturating_sub(e.ts_ns));
                }
                self.record(e.tgid, e.ppid, &view, verdict);
                self.note_pipes(e.tgid, &view);
                self.note_life(&e, Some(&view));
                if let Verdict::Matched(c) = verdict {
                    self.propagate(e.tgid, c);
                }
                if let Some(c) = verdict.class().filter(|c| self.specific(*c)) {
                    self.feed(e.tgid, c);
                }
            }
            EV_FORK => {
                self.note_life(&e, None);
                // The kernel copied the parent's class at fork; if userspace has classified the
                // parent since, the child gets that class instead.
                let parent = self.procs.get(&e.ppid).cloned();
                let parent_class = self.recorded(e.ppid);
                let seen = self.procs.entry(e.tgid).or_insert_with(|| Seen {
                    tgid: e.tgid,
                    ppid: e.ppid,
                    comm: e.comm.clone(),
                    argv: Vec::new(),
                    class: 0,
                    how: "none".into(),
                    cpu_s: None,
                    moves: None,
                    switches: None,
                });
                seen.ppid = e.ppid;
                if let Some(p) = parent {
                    seen.comm = p.comm;
                    seen.argv = p.argv;
                }
                match parent_class {
                    Some(pc) => {
                        seen.class = pc;
                        seen.how = "inherited".into();
                        if pc != e.cur_class {
                            self.write(e.tgid, Verdict::Inherited(pc));
                        }
                    }
                    None if e.cur_class != 0 => {
                        seen.class = e.cur_class;
                        seen.how = "inherited".into();
                    }
                    None => {}
                }
            }
            EV_EXIT => {
                self.note_life(&e, None);
                if let Some(s) = self.procs.get_mut(&e.tgid) {
                    s.cpu_s = Some(e.cpu_ns as f64 * 1e-9);
                    s.moves = Some(e.moves);
                    s.switches = Some(e.switches);
                }
            }
            _ => {}
        }
    }
}

/// A `struct schedgen_task_class` as the map stores it.
fn class_value(id: u32, flags: u32, expected_cpu_s: f64) -> Vec<u8> {
    let mut value = Vec::with_capacity(16);
    value.extend_from_slice(&id.to_ne_bytes());
    value.extend_from_slice(&flags.to_ne_bytes());
    value.extend_from_slice(&((expected_cpu_s * 1e9) as u64).to_ne_bytes());
    value
}

fn read_ppid(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn follow(state: State, events: MapHandle, stop: Arc<AtomicBool>) -> ClassifierLog {
    let cpu0 = thread_cpu_s();
    let started = Instant::now();
    let state = std::cell::RefCell::new(state);
    {
        let mut builder = RingBufferBuilder::new();
        let added = builder.add(&events, |data: &[u8]| {
            if let Some(e) = parse_event(data) {
                state.borrow_mut().on_event(e);
            }
            0
        });
        match added.map(|_| ()).and_then(|_| builder.build()) {
            Ok(rb) => {
                while !stop.load(Ordering::Relaxed) {
                    let _ = rb.poll(Duration::from_millis(50));
                }
                // What arrived before the stop still counts.
                let _ = rb.consume();
            }
            Err(e) => eprintln!("schedgen: the classifier cannot read its ring buffer: {e}"),
        }
    }
    let mut st = state.into_inner();
    st.log.cpu_s = thread_cpu_s() - cpu0;
    st.log.elapsed_s = started.elapsed().as_secs_f64();
    let mut procs: Vec<Seen> = st.procs.into_values().collect();
    procs.sort_by_key(|p| p.tgid);
    st.log.processes = procs;
    st.log.lives = st.lives.take().unwrap_or_default();
    st.log
}

/// A task as the runner started it: the pid of its root process.
#[derive(Debug, Clone, Copy)]
pub struct TaskRoot {
    pub pid: i32,
    pub index: usize,
    pub group: Group,
}

/// The classifier's numbers for one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassifierRun {
    pub execs: u64,
    /// Processes of the tasks and how many of them got a long class.
    pub task_processes: usize,
    pub long_processes: usize,
    /// Short tasks with a process in a long class.
    pub short_as_long: usize,
    /// Long tasks none of whose processes got a long class.
    pub long_as_short: usize,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub cpu_s: f64,
    /// CPU of the classifier thread over the time it ran, as a share of one CPU.
    pub cpu_share: f64,
    pub dropped: u64,
    /// Moves between CPUs and context switches of the processes of the long task(s) and of
    /// the short ones (main threads, counted as each exits). Under emulation a long task that
    /// moved between the vCPUs beside the short ones ran measurably slower per CPU-second (the
    /// README's compiler_build notes), so a benchmark shows how often it moved.
    #[serde(default)]
    pub long_moves: u64,
    #[serde(default)]
    pub long_switches: u64,
    #[serde(default)]
    pub short_moves: u64,
    #[serde(default)]
    pub short_switches: u64,
}

/// The first of `roots` among `pid` and its ancestors (`parent` of each, as recorded), looking
/// at most 64 generations up, so a cycle in the records ends the search.
pub(crate) fn root_above<T: Copy>(
    pid: i32,
    roots: &HashMap<i32, T>,
    parent: impl Fn(i32) -> Option<i32>,
) -> Option<T> {
    let mut cur = pid;
    for _ in 0..64 {
        if let Some(r) = roots.get(&cur) {
            return Some(*r);
        }
        cur = parent(cur)?;
    }
    None
}

/// Summarise a log against the tasks the runner started.
pub fn summarize(log: &ClassifierLog, classes: &ClassSet, roots: &[TaskRoot]) -> ClassifierRun {
    let by_pid: HashMap<i32, &Seen> = log.processes.iter().map(|p| (p.tgid, p)).collect();
    let root_of: HashMap<i32, TaskRoot> = roots.iter().map(|r| (r.pid, *r)).collect();
    let task_of = |pid: i32| root_above(pid, &root_of, |p| by_pid.get(&p).map(|s| s.ppid));
    let is_long = |class: u32| classes.get(class).is_some_and(|c| c.long);
    let mut long_tasks: HashMap<usize, bool> = HashMap::new();
    let mut run = ClassifierRun {
        execs: log.execs,
        cpu_s: log.cpu_s,
        cpu_share: if log.elapsed_s > 0.0 {
            log.cpu_s / log.elapsed_s
        } else {
            0.0
        },
        dropped: log.dropped,
        ..ClassifierRun::default()
    };
    for p in &log.processes {
        let Some(root) = task_of(p.tgid) else {
            continue;
        };
        run.task_processes += 1;
        let long = is_long(p.class);
        if long {
            run.long_processes += 1;
        }
        *long_tasks.entry(root.index).or_insert(false) |= long;
        let moves = u64::from(p.moves.unwrap_or(0));
        let switches = p.switches.unwrap_or(0);
        match root.group {
            Group::Long => {
                run.long_moves += moves;
                run.long_switches += switches;
            }
            Group::Short => {
                run.short_moves += moves;
                run.short_switches += switches;
            }
        }
    }
    for r in roots {
        let seen_long = long_tasks.get(&r.index).copied().unwrap_or(false);
        match r.group {
            Group::Short if seen_long => run.short_as_long += 1,
            Group::Long if !seen_long => run.long_as_short += 1,
            _ => {}
        }
    }
    let mut lat: Vec<u64> = log.latencies_ns.clone();
    lat.sort_unstable();
    let pct = |q: f64| -> Option<f64> {
        if lat.is_empty() {
            return None;
        }
        let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
        Some(lat[i] as f64 / 1e6)
    };
    run.latency_p50_ms = pct(0.50);
    run.latency_p99_ms = pct(0.99);
    run
}

/// The tracer compiled for the kernel this host runs, for a profile's monitor to trace every
/// process with; the reason when it cannot be.
pub fn for_this_host(project_headers: &Path) -> Result<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("tracing processes with BPF needs root");
    }
    let headers = crate::bpf::verify::host_headers()
        .context("cannot generate headers for this host's kernel")?;
    tracer_object(&headers, project_headers)
}

/// Compile the tracer for the kernel whose headers are in `kernel_dir` (cached by content).
pub fn tracer_object(kernel_dir: &Path, project_headers: &Path) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(TRACER_SOURCE.as_bytes());
    for header in ["schedgen.bpf.h", "schedgen_classes.bpf.h"] {
        h.update(std::fs::read(project_headers.join(header)).unwrap_or_default());
    }
    h.update(kernel_dir.display().to_string().as_bytes());
    let key: String = h
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = crate::bpf::verify::build_dir();
    let object = dir.join(format!("classifier-{key}.bpf.o"));
    if object.exists() {
        return Ok(object);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let source = dir.join(format!("classifier-{key}-{}.bpf.c", std::process::id()));
    std::fs::write(&source, TRACER_SOURCE)?;
    let tmp = dir.join(format!("classifier-{key}-{}.bpf.o", std::process::id()));
    let report = crate::bpf::compile::compile(
        &source,
        &tmp,
        &crate::bpf::compile::Headers::new(kernel_dir, project_headers),
    )?;
    let _ = std::fs::remove_file(&source);
    anyhow::ensure!(
        report.ok,
        "the classifier's tracer does not compile:\n{}",
        report.output
    );
    // Rename into place so a concurrent run never loads a half-written object.
    std::fs::rename(&tmp, &object)?;
    Ok(object)
}

/// A `struct schedgen_stream` at offset `o`: a regular file or a pipe, else nothing.
fn stream_at(b: &[u8], o: usize) -> Option<Stream> {
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    match u32::from_ne_bytes(b[o..o + 4].try_into().unwrap()) {
        STREAM_FILE => Some(Stream::File {
            bytes: u64_at(o + 16),
        }),
        STREAM_PIPE => Some(Stream::Pipe {
            inode: u64_at(o + 8),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::rules::{Rule, TaskClass};

    #[test]
    fn decodes_events() {
        let mut b = vec![0u8; HEADER_LEN + 1024];
        b[0..4].copy_from_slice(&EV_EXEC.to_ne_bytes());
        b[4..8].copy_from_slice(&42u32.to_ne_bytes());
        b[8..12].copy_from_slice(&7u32.to_ne_bytes());
        b[12..16].copy_from_slice(&2u32.to_ne_bytes());
        b[16..24].copy_from_slice(&99u64.to_ne_bytes());
        b[32..36].copy_from_slice(b"work");
        let args = b"work\0--n\0\x31\x30\x30\0";
        b[48..52].copy_from_slice(&(args.len() as u32).to_ne_bytes());
        b[52..56].copy_from_slice(&3u32.to_ne_bytes());
        b[56..64].copy_from_slice(&1234u64.to_ne_bytes());
        b[64..72].copy_from_slice(&1000u64.to_ne_bytes());
        // stdin a 4096-byte file, stdout pipe 77.
        b[72..76].copy_from_slice(&STREAM_FILE.to_ne_bytes());
        b[88..96].copy_from_slice(&4096u64.to_ne_bytes());
        b[96..100].copy_from_slice(&STREAM_PIPE.to_ne_bytes());
        b[104..112].copy_from_slice(&77u64.to_ne_bytes());
        b[HEADER_LEN..HEADER_LEN + args.len()].copy_from_slice(args);
        let e = parse_event(&b).unwrap();
        assert_eq!(
            (e.kind, e.tgid, e.ppid, e.cur_class, e.ts_ns),
            (1, 42, 7, 2, 99)
        );
        assert_eq!(e.comm, "work");
        assert_eq!((e.moves, e.switches, e.voluntary), (3, 1234, 1000));
        assert_eq!(e.stdin, Some(Stream::File { bytes: 4096 }));
        assert_eq!(e.stdout, Some(Stream::Pipe { inode: 77 }));
        assert_eq!(e.args, vec!["work", "--n", "100"]);
        assert!(parse_event(&b[..10]).is_none());
    }

    fn seen(tgid: i32, ppid: i32, class: u32) -> Seen {
        Seen {
            tgid,
            ppid,
            comm: "x".into(),
            argv: vec![],
            class,
            how: "rule".into(),
            cpu_s: None,
            moves: Some(tgid as u32 % 10),
            switches: Some(100),
        }
    }

    #[test]
    fn counts_tasks_in_the_wrong_class() {
        let classes = ClassSet {
            classes: vec![
                TaskClass {
                    id: 1,
                    name: "long".into(),
                    rule: Rule::Any,
                    expected_cpu_s: 4.0,
                    tasks: 1,
                    long: true,
                },
                TaskClass {
                    id: 2,
                    name: "other".into(),
                    rule: Rule::Any,
                    expected_cpu_s: 0.1,
                    tasks: 2,
                    long: false,
                },
            ],
        };
        let roots = [
            TaskRoot {
                pid: 10,
                index: 0,
                group: Group::Short,
            },
            TaskRoot {
                pid: 20,
                index: 1,
                group: Group::Short,
            },
            TaskRoot {
                pid: 30,
                index: 39,
                group: Group::Long,
            },
        ];
        let log = ClassifierLog {
            execs: 5,
            latencies_ns: vec![1_000_000, 2_000_000, 3_000_000],
            cpu_s: 0.5,
            elapsed_s: 10.0,
            processes: vec![
                seen(10, 1, 2),
                seen(11, 10, 2),
                seen(20, 1, 2),
                seen(21, 20, 1), // a short task's child wrongly long
                seen(30, 1, 2),
                seen(31, 30, 2), // the long task never recognised
                seen(99, 1, 1),  // not a task
            ],
            ..ClassifierLog::default()
        };
        let r = summarize(&log, &classes, &roots);
        assert_eq!(r.task_processes, 6);
        assert_eq!(r.long_processes, 1);
        assert_eq!((r.short_as_long, r.long_as_short), (1, 1));
        assert_eq!(r.latency_p50_ms, Some(2.0));
        assert_eq!(r.latency_p99_ms, Some(3.0));
        assert!((r.cpu_share - 0.05).abs() < 1e-12);
        // Moves are tgid % 10 in this log: the long task's 30 and 31, the short ones' 10, 11,
        // 20 and 21; 99 is not a task's.
        assert_eq!((r.long_moves, r.long_switches), (1, 200));
        assert_eq!((r.short_moves, r.short_switches), (2, 400));
    }
}
