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
        }
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
}
