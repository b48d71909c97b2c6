//! The part of verification that needs a sched_ext kernel: load, attach, keep the scheduler
//! running under load, watch that the kernel keeps it, detach, and say why it stopped.
//!
//! This runs where sched_ext is (inside the sandbox VM, or on a sched_ext host as root) as the
//! hidden `schedgen scx-job` command, and writes a [`RuntimeReport`] as JSON for the host side.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::exit::{ExitClass, SchedExit};
use super::session::{Knowledge, Session, StartError};
use crate::classify::tracer::{summarize as summarize_classifier, ClassifierRun};
use crate::interrupt;

/// A poll of the state that took longer than this means our own process was not scheduled:
/// the scheduler is starving runnable tasks, even if its watchdog has not fired yet.
const STARVATION_GAP: Duration = Duration::from_secs(3);

/// How far verification got.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Compile,
    Load,
    Attach,
    Run,
    Detach,
    Done,
}

/// Why a scheduler failed verification. Each class has its own exit status.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    CompileError,
    /// The kernel verifier (or libbpf) refused the program.
    VerifierRejected,
    AttachFailed,
    /// Attached, but `/sys/kernel/sched_ext` never showed it enabled under its name.
    NotEnabled,
    /// Ejected by the watchdog: a runnable task was not scheduled in time.
    Stall,
    /// Ejected after calling `scx_bpf_error`.
    BpfError,
    /// Ejected by the kernel for another error.
    KernelError,
    /// The sandbox itself failed (VM did not boot, timed out, no result).
    Sandbox,
    /// The user pressed Ctrl-C: no verdict.
    Interrupted,
}

impl Failure {
    /// Process exit status for `schedgen verify`.
    pub fn exit_status(self) -> u8 {
        match self {
            Failure::CompileError => 10,
            Failure::VerifierRejected => 11,
            Failure::AttachFailed => 12,
            Failure::NotEnabled => 13,
            Failure::Stall => 14,
            Failure::BpfError => 15,
            Failure::KernelError => 16,
            Failure::Sandbox => 3,
            Failure::Interrupted => 130,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Failure::CompileError => "does not compile",
            Failure::VerifierRejected => "rejected by the kernel verifier",
            Failure::AttachFailed => "failed to attach",
            Failure::NotEnabled => "attached but never enabled",
            Failure::Stall => "ejected: stalled a runnable task",
            Failure::BpfError => "ejected: called scx_bpf_error",
            Failure::KernelError => "ejected by the kernel",
            Failure::Sandbox => "the sandbox failed",
            Failure::Interrupted => "interrupted",
        }
    }
}

/// What the in-kernel run found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuntimeReport {
    pub stage: Stage,
    pub passed: bool,
    pub failure: Option<Failure>,
    pub error: Option<String>,
    /// The kernel verifier's log when a program was rejected.
    pub verifier_log: Option<String>,
    /// libbpf's messages when loading failed (tail).
    pub libbpf_log: Option<String>,
    /// `/sys/kernel/sched_ext/root/ops` while attached.
    pub ops_name: Option<String>,
    pub load_s: f64,
    /// How long the scheduler stayed enabled under load.
    pub enabled_s: f64,
    pub requested_s: f64,
    /// Longest gap between two of our polls: a sign of starved tasks.
    pub max_poll_gap_s: f64,
    pub exit: Option<SchedExit>,
    /// The kernel's `sched_ext` log lines during the job.
    pub kernel_log: Vec<String>,
    pub kernel_release: String,
    /// The task classifier's numbers, when the scheduler was given classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierRun>,
}

impl RuntimeReport {
    /// One line on how the run ended, for the job's log: `None` when it neither failed nor
    /// attached under a name (nothing to say).
    pub fn outcome_line(&self) -> Option<String> {
        match (&self.failure, &self.ops_name) {
            (None, Some(name)) => Some(format!(
                "`{name}` ran {:.1} s under load and detached cleanly",
                self.enabled_s
            )),
            (Some(f), _) => Some(format!("{} at stage {:?}", f.describe(), self.stage)),
            _ => None,
        }
    }
}

/// Arguments of the in-kernel job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeJob {
    pub object: PathBuf,
    pub duration_s: f64,
    /// What the scheduler is told about the workload.
    #[serde(default)]
    pub knowledge: Knowledge,
}

/// Reader of the kernel log from "now" on (`/dev/kmsg`, non-blocking).
pub(crate) struct KernelLog(Option<std::fs::File>);

impl KernelLog {
    pub(crate) fn open_at_end() -> KernelLog {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok();
        if let Some(f) = &f {
            use std::os::fd::AsRawFd;
            // SAFETY: lseek on our own descriptor; SEEK_END on kmsg skips old records.
            unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
        }
        KernelLog(f)
    }

    /// New records mentioning sched_ext (or the BPF scheduler) since opening.
    pub(crate) fn sched_ext_lines(&mut self) -> Vec<String> {
        let Some(f) = &mut self.0 else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let msg = rec.split_once(';').map(|(_, m)| m).unwrap_or(&rec);
                    let first = msg.lines().next().unwrap_or("").to_string();
                    if first.contains("sched_ext") || first.contains("BPF scheduler") {
                        out.push(first);
                    }
                }
                // EPIPE: records were overwritten; keep reading.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

/// CPU spinners and a fork loop, each in its own process group.
struct Stress(Vec<Child>);

impl Stress {
    fn start(cpus: usize) -> Stress {
        let mut kids = Vec::new();
        let spawn = |script: &str| {
            Command::new("/bin/sh")
                .args(["-c", script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .ok()
        };
        for _ in 0..cpus {
            kids.extend(spawn("while :; do :; done"));
        }
        // Forks: every new task passes through the scheduler's init/enable paths.
        kids.extend(spawn(
            "n=0; while :; do /bin/true; n=$((n+1)); echo $n > /dev/null; done",
        ));
        Stress(kids)
    }

    fn stop(&mut self) {
        for k in &self.0 {
            crate::workload::shell::kill_group(k.id() as i32);
        }
        for k in &mut self.0 {
            let _ = k.wait();
        }
        self.0.clear();
    }
}

impl Drop for Stress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn class_failure(class: ExitClass) -> Option<Failure> {
    match class {
        ExitClass::Stall => Some(Failure::Stall),
        ExitClass::BpfError => Some(Failure::BpfError),
        ExitClass::KernelError | ExitClass::Sysrq => Some(Failure::KernelError),
        ExitClass::None | ExitClass::Clean => None,
    }
}

/// The scheduler's own exit record, completed from the kernel's log: a scheduler that records
/// nothing still gets the kernel's reason and its `scx_bpf_error` message.
fn complete_exit(own: Option<SchedExit>, kernel_log: &[String]) -> Option<SchedExit> {
    let logged = SchedExit::from_kernel_log(kernel_log);
    match (own, logged) {
        (Some(mut e), Some(l)) => {
            if e.msg.is_empty() {
                e.msg = l.msg;
            }
            Some(e)
        }
        (own, logged) => own.or(logged),
    }
}

/// Guess the failure class from kernel log lines when the scheduler recorded no exit info.
fn failure_from_log(lines: &[String]) -> Failure {
    let text = lines.join("\n").to_lowercase();
    if text.contains("stall") || text.contains("watchdog") {
        Failure::Stall
    } else if text.contains("scx_bpf_error") {
        Failure::BpfError
    } else {
        Failure::KernelError
    }
}

/// Load, attach, run under load for `duration_s`, detach. Never panics on a bad scheduler.
pub fn run(job: &RuntimeJob) -> RuntimeReport {
    let mut kmsg = KernelLog::open_at_end();
    let mut r = RuntimeReport {
        stage: Stage::Load,
        passed: false,
        failure: None,
        error: None,
        verifier_log: None,
        libbpf_log: None,
        ops_name: None,
        load_s: 0.0,
        enabled_s: 0.0,
        requested_s: job.duration_s,
        max_poll_gap_s: 0.0,
        exit: None,
        kernel_log: Vec::new(),
        kernel_release: crate::system::kernel_release(),
        classifier: None,
    };
    if !super::scx_state::available() {
        r.failure = Some(Failure::Sandbox);
        r.error = Some(format!(
            "this kernel ({}) has no sched_ext",
            r.kernel_release
        ));
        return r;
    }
    let session = match Session::start(&job.object, &job.knowledge) {
        Ok(s) => s,
        Err(e) => {
            r.kernel_log = kmsg.sched_ext_lines();
            r.error = Some(e.message());
            r.exit = complete_exit(e.exit().cloned(), &r.kernel_log);
            match e {
                StartError::Classifier(_) => r.failure = Some(Failure::Sandbox),
                StartError::Load(e) => {
                    r.verifier_log = e.verifier_log();
                    r.failure = Some(Failure::VerifierRejected);
                    r.libbpf_log = Some(tail_chars(&e.libbpf_log, 16 * 1024));
                    r.error = Some(e.message);
                }
                StartError::Attach { .. } => {
                    r.stage = Stage::Attach;
                    r.failure = Some(Failure::AttachFailed);
                }
                StartError::NotEnabled { .. } => {
                    r.failure = r.exit.as_ref().and_then(|e| class_failure(e.class));
                    // An ejection (a stall, an error) means it ran before the kernel threw it
                    // out; without one it never got going.
                    r.stage = if r.failure.is_some() {
                        Stage::Run
                    } else {
                        Stage::Attach
                    };
                    r.failure = r.failure.or(Some(Failure::NotEnabled));
                }
            }
            return r;
        }
    };
    r.load_s = session.load_s;
    r.ops_name = Some(session.ops.clone());
    r.stage = Stage::Run;
    let mut stress = Stress::start(crate::system::cpu_count());
    let start = Instant::now();
    let mut last = Instant::now();
    let mut ejected = false;
    while start.elapsed().as_secs_f64() < job.duration_s && !interrupt::requested() {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        r.max_poll_gap_s = r.max_poll_gap_s.max(now.duration_since(last).as_secs_f64());
        last = now;
        if !session.still_running() {
            ejected = true;
            break;
        }
    }
    r.enabled_s = start.elapsed().as_secs_f64();
    stress.stop();
    r.stage = Stage::Detach;
    let ended = session.finish();
    r.classifier = ended
        .classifier
        .map(|log| summarize_classifier(&log, &job.knowledge.classes, &[]));
    r.kernel_log = kmsg.sched_ext_lines();
    r.exit = complete_exit(ended.exit, &r.kernel_log);
    let exit_failure = r.exit.as_ref().and_then(|e| class_failure(e.class));
    r.failure = if ejected {
        Some(exit_failure.unwrap_or_else(|| failure_from_log(&r.kernel_log)))
    } else if exit_failure.is_some() {
        exit_failure
    } else if r.max_poll_gap_s > STARVATION_GAP.as_secs_f64() {
        r.error = Some(format!(
            "our own process went unscheduled for {:.1} s: the scheduler starves runnable tasks",
            r.max_poll_gap_s
        ));
        Some(Failure::Stall)
    } else {
        None
    };
    if ejected && r.error.is_none() {
        r.error = Some(format!(
            "ejected after {:.1} s of {:.1} s{}",
            r.enabled_s,
            job.duration_s,
            r.exit
                .as_ref()
                .map(|e| format!(": {}", e.line()))
                .unwrap_or_default()
        ));
    }
    if ejected {
        // The failure happened while running, whatever teardown reached afterwards.
        r.stage = Stage::Run;
    } else if r.failure.is_none() {
        r.stage = Stage::Done;
        r.passed = true;
    }
    r
}

fn tail_chars(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut cut = s.len() - n;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    s[cut..].to_string()
}
