//! One way to run a scheduler, shared by `verify`, `benchmark` and `load`: start the classifier
//! (when the scheduler is given task classes), load the object (the kernel verifier runs),
//! attach it, confirm the kernel enabled it under its name; later confirm it is still running,
//! detach, and collect the kernel's exit info and the classifier's log.
//!
//! Only meaningful where sched_ext is: inside the sandbox VM, or on a sched_ext host as root.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::exit::SchedExit;
use super::globals::Setting;
use super::loader::{LoadError, LoadedScheduler};
use super::scx_state;
use crate::classify::rules::ClassSet;
use crate::classify::tracer::{Classifier, ClassifierLog};

/// How long the kernel may take to enable a scheduler after attaching.
const ENABLE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a scheduler is told about the workload while it runs, and the knobs it is loaded with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Knowledge {
    /// `--set NAME=VALUE` for the object's `const volatile` knobs.
    #[serde(default)]
    pub settings: Vec<Setting>,
    /// Attach from this CPU (scx_central, say, initialises only on its central CPU).
    #[serde(default)]
    pub attach_cpu: Option<usize>,
    /// Names for a scheduler's `long_comms` map (schedulers written before task classes).
    #[serde(default)]
    pub long_comms: Vec<String>,
    /// Classes the run-time classifier puts processes into; empty: no classifier runs.
    #[serde(default)]
    pub classes: ClassSet,
    /// The compiled classifier tracer, needed when there are classes.
    #[serde(default)]
    pub tracer: Option<PathBuf>,
}

impl Knowledge {
    /// The same knowledge with what tells the long task apart taken away: one class for every
    /// process, no long-task names (the ablation arm).
    pub fn ablated(&self) -> Knowledge {
        Knowledge {
            settings: self.settings.clone(),
            attach_cpu: self.attach_cpu,
            long_comms: Vec::new(),
            classes: if self.classes.is_empty() {
                ClassSet::default()
            } else {
                self.classes.merged()
            },
            tracer: self.tracer.clone(),
        }
    }
}

/// Why a scheduler did not start.
#[derive(Debug)]
pub enum StartError {
    /// The classifier could not start (its tracer failed to load or attach).
    Classifier(String),
    /// libbpf or the kernel verifier refused the object.
    Load(LoadError),
    Attach {
        error: String,
        exit: Option<Box<SchedExit>>,
    },
    /// Attached, but the kernel never showed it enabled.
    NotEnabled {
        state: String,
        exit: Option<Box<SchedExit>>,
    },
}

impl StartError {
    pub fn message(&self) -> String {
        match self {
            StartError::Classifier(e) => format!("the task classifier did not start: {e}"),
            StartError::Load(e) => format!("the scheduler failed to load: {e}"),
            StartError::Attach { error, .. } => format!("the scheduler failed to attach: {error}"),
            StartError::NotEnabled { state, exit } => format!(
                "the scheduler attached but was not enabled (state `{state}`){}",
                exit.as_ref()
                    .map(|e| format!(": {}", e.line()))
                    .unwrap_or_default()
            ),
        }
    }

    pub fn exit(&self) -> Option<&SchedExit> {
        match self {
            StartError::Attach { exit, .. } | StartError::NotEnabled { exit, .. } => {
                exit.as_deref()
            }
            _ => None,
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// Still enabled under its name right before detaching.
    pub still_running: bool,
    pub exit: Option<SchedExit>,
    pub classifier: Option<ClassifierLog>,
}

impl Ended {
    /// The kernel threw the scheduler out before we detached it.
    pub fn ejected(&self) -> bool {
        !self.still_running || self.exit.as_ref().is_some_and(|e| e.is_ejection())
    }
}

/// The knob `schedgen_classes.bpf.h` declares for the longest class's expected CPU time.
pub const LONGEST_KNOB: &str = "schedgen_longest_ns";

/// The knobs a scheduler is loaded with: the user's, and [`LONGEST_KNOB`] from the classes when
/// the object has it (it includes schedgen's class header) and the user did not set it.
pub fn load_settings(object: &Path, knowledge: &Knowledge) -> Vec<Setting> {
    let mut settings = knowledge.settings.clone();
    let longest = knowledge.classes.longest_expected_cpu_s();
    if longest > 0.0 && !settings.iter().any(|s| s.name == LONGEST_KNOB) {
        let s = Setting {
            name: LONGEST_KNOB.into(),
            value: format!("{}", (longest * 1e9) as u64),
        };
        if super::globals::check_settings(object, std::slice::from_ref(&s)).is_ok() {
            settings.push(s);
        }
    }
    settings
}

/// Load, attach from `attach_cpu` if given, and wait until enabled: the scheduler and its
/// ops name.
fn start_once(
    object: &Path,
    knowledge: &Knowledge,
    classifier: Option<&Classifier>,
) -> Result<(LoadedScheduler, String), StartError> {
    let settings = load_settings(object, knowledge);
    let mut sched = LoadedScheduler::load(
        object,
        &knowledge.long_comms,
        classifier.map(|c| c.class_map_fd()),
        &settings,
    )
    .map_err(StartError::Load)?;
    let pinned = match knowledge.attach_cpu.map(Pinned::to).transpose() {
        Ok(p) => p,
        Err(e) => {
            return Err(StartError::Attach {
                error: format!("{e:#}"),
                exit: None,
            })
        }
    };
    let attached = sched.attach();
    drop(pinned);
    if let Err(e) = attached {
        return Err(StartError::Attach {
            error: format!("{e:#}"),
            exit: sched.exit_info().map(Box::new),
        });
    }
    let enabled = scx_state::wait_for("enabled", ENABLE_TIMEOUT);
    let ops = scx_state::ops();
    if !enabled || ops.is_empty() {
        let state = scx_state::state();
        let exit = sched.detach_and_collect().map(Box::new);
        return Err(StartError::NotEnabled { state, exit });
    }
    Ok((sched, ops))
}

/// Pin the kernel's `scx_enable_helper` kthread to `cpu`; false when it does not exist (yet).
fn pin_enable_helper(cpu: usize) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let pid = dir.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "scx_enable_helper").then_some(pid)
    });
    let Some(pid) = pid else { return false };
    // SAFETY: sched_setaffinity on a pid with a properly sized, zeroed-then-set cpu_set_t.
    unsafe {
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0
    }
}

/// This thread pinned to one CPU until dropped (then back to where it could run before).
struct Pinned(libc::cpu_set_t);

impl Pinned {
    fn to(cpu: usize) -> anyhow::Result<Pinned> {
        // SAFETY: plain libc calls on this thread (pid 0) with a properly sized cpu_set_t.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
                anyhow::bail!("cannot read this thread's CPU affinity");
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
                anyhow::bail!(
                    "cannot attach from CPU {cpu}: {}",
                    std::io::Error::last_os_error()
                );
            }
            Ok(Pinned(old))
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: restores the affinity read in `to`.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0);
        }
    }
}

/// A scheduler attached and enabled.
pub struct Session {
    sched: LoadedScheduler,
    classifier: Option<Classifier>,
    /// `/sys/kernel/sched_ext/root/ops` once enabled.
    pub ops: String,
    pub load_s: f64,
}

impl Session {
    /// Start the classifier if there are classes, load, attach, and wait until enabled.
    pub fn start(object: &Path, knowledge: &Knowledge) -> Result<Session, StartError> {
        let classifier = if knowledge.classes.is_empty() {
            None
        } else {
            let tracer = knowledge.tracer.as_deref().ok_or_else(|| {
                StartError::Classifier("no tracer object was given with the classes".into())
            })?;
            Some(
                Classifier::start(tracer, &knowledge.classes)
                    .map_err(|e| StartError::Classifier(format!("{e:#}")))?,
            )
        };
        // The kernel (7.x) runs ops.init on its own enable kthread, created at the first
        // enable of a boot and kept: with --attach-cpu it is pinned there too, and when it did
        // not exist yet the first try may init elsewhere, so that one try is repeated.
        let helper_pinned = knowledge.attach_cpu.is_some_and(pin_enable_helper);
        let t = Instant::now();
        let mut started = start_once(object, knowledge, classifier.as_ref());
        if let (Err(_), Some(cpu), false) = (&started, knowledge.attach_cpu, helper_pinned) {
            if pin_enable_helper(cpu) {
                started = start_once(object, knowledge, classifier.as_ref());
            }
        }
        let (sched, ops) = started?;
        let load_s = t.elapsed().as_secs_f64();
        Ok(Session {
            sched,
            classifier,
            ops,
            load_s,
        })
    }

    /// Whether the kernel still runs this scheduler.
    pub fn still_running(&self) -> bool {
        scx_state::still_running(&self.ops)
    }

    /// Detach, wait for the kernel to finish, and collect the exit info and classifier log.
    pub fn finish(mut self) -> Ended {
        let still_running = self.still_running();
        let exit = self.sched.detach_and_collect();
        // The classifier stops after the scheduler that reads its map is gone.
        let classifier = self.classifier.take().map(Classifier::stop);
        Ended {
            still_running,
            exit,
            classifier,
        }
    }
}
