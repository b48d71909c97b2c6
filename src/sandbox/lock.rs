//! Measurements never mix: a benchmark holds this machine's measuring lock exclusively while
//! it runs, and anything else that boots a scheduler (`verify`, `load`) holds it shared. So two
//! verifies run side by side, but a benchmark waits for them to finish, and they wait for it:
//! on a 2-core machine a second VM would show up in the numbers as noise.
//!
//! The lock is `flock(2)` on `<cache>/measure.lock`: the kernel drops it when the holder exits,
//! however it exits, so a killed run never leaves it taken.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// What the holder does with the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Measuring: nothing else may run a scheduler meanwhile.
    Measure,
    /// Running a scheduler without measuring: may share with others like it.
    Run,
}

/// Held until dropped.
pub struct MachineLock {
    _file: File,
}

pub fn lock_path() -> PathBuf {
    crate::workload::prepare::cache_root().join("measure.lock")
}

fn try_flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) == 0 }
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: as above; blocking until granted or interrupted.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted || crate::interrupt::requested() {
            return Err(e);
        }
    }
}

/// Take the machine for `what`, waiting (and saying who holds it) when it is busy.
pub fn acquire(what: Use, say: &dyn Fn(&str)) -> Result<MachineLock> {
    let path = lock_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let op = match what {
        Use::Measure => libc::LOCK_EX,
        Use::Run => libc::LOCK_SH,
    };
    if !try_flock(&file, op) {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        say(&format!(
            "waiting: another schedgen is {} on this machine{}",
            if what == Use::Measure {
                "running a scheduler"
            } else {
                "measuring"
            },
            if holder.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", holder.trim())
            }
        ));
        flock(&file, op).with_context(|| format!("cannot lock {}", path.display()))?;
    }
    if what == Use::Measure {
        // Who measures, for the message another run prints while it waits.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "benchmark, pid {}", std::process::id());
        let _ = file.flush();
    }
    Ok(MachineLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_share_and_a_measurement_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("measure.lock");
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        let (a, b, c) = (open(), open(), open());
        assert!(try_flock(&a, libc::LOCK_SH));
        assert!(try_flock(&b, libc::LOCK_SH), "two runs share");
        assert!(
            !try_flock(&c, libc::LOCK_EX),
            "a measurement waits for them"
        );
        drop(a);
        drop(b);
        assert!(try_flock(&c, libc::LOCK_EX));
        let d = open();
        assert!(
            !try_flock(&d, libc::LOCK_SH),
            "a run waits for a measurement"
        );
    }
}
