//! Memory pressure on the whole machine while a case ran, from `/proc/vmstat`: pages the
//! kernel scanned to reclaim memory (in the allocating task's own time, or kswapd's) and the
//! major faults that read evicted pages back. A run that reclaims pays for it in kernel time
//! that no schedule can give back, so a benchmark records it beside the CPU times.

use serde::{Deserialize, Serialize};

/// Reclaim and major-fault counts over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineMemory {
    /// Pages scanned by direct reclaim: an allocation that had to free memory first.
    pub direct_scanned: u64,
    /// Pages scanned by kswapd, the background reclaimer.
    pub kswapd_scanned: u64,
    /// Page faults that had to read a page in (from a file, or from swap).
    pub major_faults: u64,
}

impl MachineMemory {
    /// Whether any reclaim ran in the window.
    pub fn reclaimed(&self) -> bool {
        self.direct_scanned + self.kswapd_scanned > 0
    }
}

/// The machine's cumulative counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot(MachineMemory);

/// Read `/proc/vmstat`; `None` where it cannot be read.
pub fn snapshot() -> Option<Snapshot> {
    Some(parse(&std::fs::read_to_string("/proc/vmstat").ok()?))
}

fn parse(vmstat: &str) -> Snapshot {
    let mut m = MachineMemory::default();
    for line in vmstat.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<u64>() else {
            continue;
        };
        // Kernels since 4.x split each count by zone or by kind (`pgscan_direct_throttle` is
        // not a scan count, so it is left out); summing the prefixes covers them all.
        match key {
            "pgmajfault" => m.major_faults += v,
            k if k.starts_with("pgscan_direct") && k != "pgscan_direct_throttle" => {
                m.direct_scanned += v
            }
            k if k.starts_with("pgscan_kswapd") => m.kswapd_scanned += v,
            _ => {}
        }
    }
    Snapshot(m)
}

/// The counts between two snapshots.
pub fn between(start: Snapshot, end: Snapshot) -> MachineMemory {
    MachineMemory {
        direct_scanned: end.0.direct_scanned.saturating_sub(start.0.direct_scanned),
        kswapd_scanned: end.0.kswapd_scanned.saturating_sub(start.0.kswapd_scanned),
        major_faults: end.0.major_faults.saturating_sub(start.0.major_faults),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_scan_counts_of_every_zone_and_skips_the_throttle_count() {
        let a =
            parse("pgmajfault 10\npgscan_kswapd 5\npgscan_direct 7\npgscan_direct_throttle 99\n");
        let b = parse(
            "pgmajfault 25\npgscan_kswapd 5\npgscan_direct 9\npgscan_direct_throttle 150\n\
             pgscan_kswapd_normal 4\n",
        );
        let d = between(a, b);
        assert_eq!(
            d,
            MachineMemory {
                direct_scanned: 2,
                kswapd_scanned: 4,
                major_faults: 15
            }
        );
        assert!(d.reclaimed());
        assert!(!between(a, a).reclaimed());
    }

    #[test]
    fn reads_this_machine() {
        // Every Linux kernel this tool runs on has /proc/vmstat.
        assert!(snapshot().is_some());
    }
}
