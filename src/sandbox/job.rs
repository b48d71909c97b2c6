//! The job format: what to run where sched_ext is, and what came back. Plain serde types
//! written as JSON into the job directory, so the host and the guest (or a later re-run) only
//! share files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// File names inside a job directory.
pub const JOB_FILE: &str = "job.json";
pub const RESULT_FILE: &str = "result.json";
pub const STDOUT_FILE: &str = "stdout";
pub const STDERR_FILE: &str = "stderr";
/// Written by the executor just before the job's first instruction.
pub const STARTED_FILE: &str = "started";
/// The guest kernel's config, which the guest init shows at /boot/config-<release>.
pub const KERNEL_CONFIG_FILE: &str = "kernel-config";
/// The VM's serial console (kernel messages, guest init errors).
pub const CONSOLE_FILE: &str = "console.log";

/// One unit of work for a sched_ext kernel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub work: Work,
}

/// What a job does. More kinds (load a scheduler, run a case under it) come later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Work {
    /// Run a program as root and report its exit status.
    RunCommand {
        argv: Vec<String>,
        /// Working directory [default: the job's directory is not used; `/`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<PathBuf>,
        /// Extra environment variables.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<(String, String)>,
    },
}

/// How a job ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct JobResult {
    /// The program's exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Why the job could not run at all (bad program, guest setup failure).
    pub error: Option<String>,
    /// Wall time of the work itself, seconds.
    pub duration_secs: f64,
    /// In a VM: the guest's uptime when its init started, seconds (kernel boot time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_boot_secs: Option<f64>,
}

impl JobResult {
    /// The shell convention: the exit code, 128 + signal, or 127 when nothing ran.
    pub fn status_code(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => 127,
        }
    }
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is malformed", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_round_trips_as_tagged_json() {
        let job = Job {
            work: Work::RunCommand {
                argv: vec!["true".into()],
                cwd: None,
                env: vec![],
            },
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(text, r#"{"work":{"kind":"run-command","argv":["true"]}}"#);
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }

    #[test]
    fn status_code_follows_the_shell() {
        let r = JobResult {
            signal: Some(9),
            ..Default::default()
        };
        assert_eq!(r.status_code(), 137);
        assert_eq!(JobResult::default().status_code(), 127);
    }
}
