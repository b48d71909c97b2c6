//! Ctrl-C handling: signals only raise a flag; long-running loops poll it and clean up themselves.
//!
//! Tasks run in process groups of their own, so a terminal's Ctrl-C reaches only schedgen: it is
//! then schedgen's job to kill every task group, run cleanup and remove temporary directories.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Route SIGINT, SIGTERM and SIGHUP to the interrupt flag. Safe to call more than once.
pub fn install() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(flag()))?;
    }
    let _ = INSTALLED.set(());
    Ok(())
}

/// Whether the user asked us to stop.
pub fn requested() -> bool {
    flag().load(Ordering::Relaxed)
}

/// Raise the flag from code (tests, or a fatal error in one thread that must stop the others).
pub fn request() {
    flag().store(true, Ordering::Relaxed);
}
