//! Where the machine's CPU time went while a case ran, from `/proc/stat`: busy (tasks, the
//! kernel, everything else) or idle. With the tasks' own CPU time beside it, this tells a
//! scheduler that left a CPU idle while work waited from one that lost time elsewhere.

use serde::{Deserialize, Serialize};

/// CPU seconds of the whole machine over one window, summed over its CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineCpu {
    /// user, nice, system, irq, softirq and steal time.
    pub busy_s: f64,
    /// idle and iowait time.
    pub idle_s: f64,
}

/// The machine's cumulative counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    busy_ticks: u64,
    idle_ticks: u64,
}

/// Read the aggregate `cpu` line of `/proc/stat`; `None` where it cannot be read.
pub fn snapshot() -> Option<Snapshot> {
    parse(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse(stat: &str) -> Option<Snapshot> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    Some(Snapshot {
        busy_ticks: at(0) + at(1) + at(2) + at(5) + at(6) + at(7),
        idle_ticks: at(3) + at(4),
    })
}

/// The time between two snapshots.
pub fn between(start: Snapshot, end: Snapshot) -> MachineCpu {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    MachineCpu {
        busy_s: end.busy_ticks.saturating_sub(start.busy_ticks) as f64 / hz,
        idle_s: end.idle_ticks.saturating_sub(start.idle_ticks) as f64 / hz,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_cpu_line_into_busy_and_idle() {
        let s = parse("cpu  100 5 20 300 7 1 2 3 0 0\ncpu0 50 2 10 150 3 1 1 1 0 0\n").unwrap();
        assert_eq!(s.busy_ticks, 100 + 5 + 20 + 1 + 2 + 3);
        assert_eq!(s.idle_ticks, 300 + 7);
        assert!(parse("intr 1 2 3\n").is_none());
    }

    #[test]
    fn this_machine_accumulates_time() {
        let a = snapshot().expect("/proc/stat");
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(100) {
            std::hint::black_box(0u64);
        }
        let m = between(a, snapshot().unwrap());
        assert!(m.busy_s + m.idle_s > 0.0, "{m:?}");
    }
}
