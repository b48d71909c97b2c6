//! Why a sched_ext scheduler stopped: the kernel's exit info, as schedgen reports it.

use serde::{Deserialize, Serialize};

/// `enum scx_exit_kind` values.
pub mod kind {
    pub const NONE: i32 = 0;
    pub const DONE: i32 = 1;
    pub const UNREG: i32 = 64;
    pub const UNREG_BPF: i32 = 65;
    pub const UNREG_KERN: i32 = 66;
    pub const SYSRQ: i32 = 67;
    pub const ERROR: i32 = 1024;
    pub const ERROR_BPF: i32 = 1025;
    pub const ERROR_STALL: i32 = 1026;
}

/// How a scheduler's run ended, in the terms a reviewer cares about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExitClass {
    /// Still running, or never started.
    None,
    /// Unregistered by us (or by the BPF program / kernel without error).
    Clean,
    /// The watchdog found a runnable task that was not scheduled in time.
    Stall,
    /// The scheduler called `scx_bpf_error`.
    BpfError,
    /// The kernel ejected it for another error (e.g. an invalid dispatch).
    KernelError,
    /// Someone pressed SysRq-S.
    Sysrq,
}

/// The kernel's `scx_exit_info`, as recorded by the scheduler's `exit` callback.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchedExit {
    pub kind: i32,
    pub kind_name: String,
    pub class: ExitClass,
    pub exit_code: i64,
    pub reason: String,
    pub msg: String,
    /// The kernel's debug dump at the exit (scx's `UEI_DEFINE` keeps it), whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
    /// Where this came from: `scheduler` (its own exit record) or `kernel_log`.
    #[serde(default)]
    pub source: ExitSource,
}

/// Who told us how the scheduler ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExitSource {
    /// The scheduler's exit callback recorded the kernel's exit info.
    #[default]
    Scheduler,
    /// The kernel's log (for schedulers that record nothing themselves).
    KernelLog,
}

impl SchedExit {
    pub fn new(kind: i32, exit_code: i64, reason: String, msg: String) -> SchedExit {
        let (name, class) = match kind {
            kind::NONE => ("NONE", ExitClass::None),
            kind::DONE => ("DONE", ExitClass::Clean),
            kind::UNREG => ("UNREG", ExitClass::Clean),
            kind::UNREG_BPF => ("UNREG_BPF", ExitClass::Clean),
            kind::UNREG_KERN => ("UNREG_KERN", ExitClass::Clean),
            kind::SYSRQ => ("SYSRQ", ExitClass::Sysrq),
            kind::ERROR_BPF => ("ERROR_BPF", ExitClass::BpfError),
            kind::ERROR_STALL => ("ERROR_STALL", ExitClass::Stall),
            k if k >= kind::ERROR => ("ERROR", ExitClass::KernelError),
            _ => ("UNKNOWN", ExitClass::KernelError),
        };
        SchedExit {
            kind,
            kind_name: name.into(),
            class,
            exit_code,
            reason,
            msg,
            dump: None,
            source: ExitSource::Scheduler,
        }
    }

    /// What the kernel logged when it disabled a scheduler, for one that records no exit info:
    /// `sched_ext: BPF scheduler "NAME" disabled (REASON)` followed, for an error, by
    /// `sched_ext: NAME: MESSAGE`.
    pub fn from_kernel_log(lines: &[String]) -> Option<SchedExit> {
        let (i, reason, name) = lines.iter().enumerate().rev().find_map(|(i, l)| {
            let rest = &l[l.find("BPF scheduler \"")? + 15..];
            let (name, after) = rest.split_once('"')?;
            let reason = after
                .trim()
                .strip_prefix("disabled (")?
                .strip_suffix(')')?
                .to_string();
            Some((i, reason, name.to_string()))
        })?;
        let prefix = format!("sched_ext: {name}: ");
        let msg = lines[i + 1..]
            .iter()
            .find_map(|l| {
                l.find(&prefix)
                    .map(|p| l[p + prefix.len()..].trim().to_string())
            })
            .unwrap_or_default();
        let kind = match reason.as_str() {
            "scx_bpf_error" => kind::ERROR_BPF,
            r if r.contains("stall") => kind::ERROR_STALL,
            r if r.starts_with("unregistered from BPF") => kind::UNREG_BPF,
            r if r.starts_with("unregistered from the main kernel") => kind::UNREG_KERN,
            r if r.starts_with("unregistered from user space") => kind::UNREG,
            r if r.starts_with("disabled by sysrq") => kind::SYSRQ,
            r if r.starts_with("workload complete") => kind::DONE,
            _ => kind::ERROR,
        };
        let mut e = SchedExit::new(kind, 0, reason, msg);
        e.source = ExitSource::KernelLog;
        Some(e)
    }

    /// Whether the scheduler was thrown out rather than unloaded.
    pub fn is_ejection(&self) -> bool {
        matches!(
            self.class,
            ExitClass::Stall | ExitClass::BpfError | ExitClass::KernelError | ExitClass::Sysrq
        )
    }

    /// One line: `EXIT: ERROR_STALL: <reason> (<msg>)`.
    pub fn line(&self) -> String {
        let mut s = format!("EXIT: {}", self.kind_name);
        if !self.reason.is_empty() {
            s.push_str(&format!(": {}", self.reason));
        }
        if !self.msg.is_empty() {
            s.push_str(&format!(" ({})", self.msg));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_exit_kinds() {
        let e = SchedExit::new(
            1026,
            0,
            "runnable task stall".into(),
            "watchdog failed".into(),
        );
        assert_eq!(e.class, ExitClass::Stall);
        assert!(e.is_ejection());
        assert_eq!(
            e.line(),
            "EXIT: ERROR_STALL: runnable task stall (watchdog failed)"
        );
        assert_eq!(
            SchedExit::new(1025, 0, String::new(), String::new()).class,
            ExitClass::BpfError
        );
        assert!(!SchedExit::new(64, 0, String::new(), String::new()).is_ejection());
    }

    #[test]
    fn reads_the_kernel_log_of_a_scheduler_without_exit_info() {
        let lines: Vec<String> = [
            "sched_ext: BPF scheduler \"giveup\" enabled",
            "sched_ext: BPF scheduler \"giveup\" disabled (scx_bpf_error)",
            "sched_ext: giveup: gave up after 20 runs",
            "   scx_bpf_error_bstr+0x6f/0x80",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = SchedExit::from_kernel_log(&lines).unwrap();
        assert_eq!(e.class, ExitClass::BpfError);
        assert_eq!(e.msg, "gave up after 20 runs");
        assert_eq!(e.source, ExitSource::KernelLog);
        let stall = ["sched_ext: BPF scheduler \"s\" disabled (runnable task stall)".to_string()];
        assert_eq!(
            SchedExit::from_kernel_log(&stall).unwrap().class,
            ExitClass::Stall
        );
        assert!(SchedExit::from_kernel_log(&["sched_ext: hello".to_string()]).is_none());
    }
}
