//! Facts about the machine a run happens on: CPUs, kernel release, which scheduler is active.

use serde::{Deserialize, Serialize};

const SCX_SYSFS: &str = "/sys/kernel/sched_ext";

/// What was running the show when a measurement was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SystemInfo {
    /// CPUs this process may run on.
    pub cpus: usize,
    pub kernel_release: String,
    /// `default` (the kernel's fair scheduler) or `sched_ext:<name>`.
    pub scheduler: String,
    /// Whether this kernel offers sched_ext at all.
    pub sched_ext_available: bool,
}

impl SystemInfo {
    pub fn probe() -> SystemInfo {
        SystemInfo {
            cpus: cpu_count(),
            kernel_release: kernel_release(),
            scheduler: active_scheduler(),
            sched_ext_available: std::path::Path::new(SCX_SYSFS).exists(),
        }
    }
}

/// CPUs in this process's affinity mask (what a task can actually use).
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// `sched_ext:<ops name>` while a BPF scheduler is enabled, otherwise `default`.
pub fn active_scheduler() -> String {
    let state = std::fs::read_to_string(format!("{SCX_SYSFS}/state")).unwrap_or_default();
    if state.trim() == "enabled" {
        let ops = std::fs::read_to_string(format!("{SCX_SYSFS}/root/ops")).unwrap_or_default();
        format!("sched_ext:{}", ops.trim())
    } else {
        "default".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_this_machine() {
        let s = SystemInfo::probe();
        assert!(s.cpus >= 1);
        assert!(!s.kernel_release.is_empty() && s.kernel_release != "unknown");
        if !s.sched_ext_available {
            assert_eq!(s.scheduler, "default");
        }
    }
}
