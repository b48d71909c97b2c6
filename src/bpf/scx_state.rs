//! What the kernel says about sched_ext right now (`/sys/kernel/sched_ext`), and waiting for it
//! to change: enabling and disabling a scheduler happen asynchronously after attach and detach.

use std::time::{Duration, Instant};

const STATE: &str = "/sys/kernel/sched_ext/state";
const OPS: &str = "/sys/kernel/sched_ext/root/ops";

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `enabled`, `disabled`, `enabling`, `disabling`; empty without sched_ext.
pub fn state() -> String {
    read(STATE)
}

/// The name of the scheduler attached, empty when none.
pub fn ops() -> String {
    read(OPS)
}

/// Whether this kernel has sched_ext at all.
pub fn available() -> bool {
    std::path::Path::new(STATE).exists()
}

/// Poll until the state is `want` or `timeout` passes; whether it got there.
pub fn wait_for(want: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while state() != want {
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Still enabled, under the same scheduler name as `ops_name`.
pub fn still_running(ops_name: &str) -> bool {
    state() == "enabled" && ops() == ops_name
}
