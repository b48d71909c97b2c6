//! Running case commands: `/bin/sh` in a process group of its own, killable as a whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::interrupt;

/// Environment handed to every command of a case.
pub type Env = BTreeMap<String, String>;

/// Build a `/bin/sh` command for `script`, in its own process group, with `env` added.
pub fn sh(script: &str, strict: bool, env: &Env, cwd: &Path) -> Command {
    let mut cmd = Command::new("/bin/sh");
    if strict {
        cmd.arg("-eu");
    }
    cmd.arg("-c").arg(script);
    cmd.envs(env).current_dir(cwd).process_group(0);
    cmd
}

/// Kill a whole process group; harmless if it is already gone.
pub fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: killpg only sends a signal; an absent group yields ESRCH, which we ignore.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Why a waited-for command stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("timed out after {0:.0} s")]
    Timeout(f64),
    #[error("interrupted")]
    Interrupted,
}

/// Run `script` to completion with output appended to `log`, killing its process group on
/// timeout or Ctrl-C. Returns the exit status; a `Stopped` error when it was killed.
pub fn run_logged(
    what: &str,
    script: &str,
    strict: bool,
    env: &Env,
    cwd: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<ExitStatus> {
    run_inner(what, script, strict, env, cwd, log, timeout, true)
}

/// Run a cleanup script: like [`run_logged`] but deaf to Ctrl-C (cleanup must still happen after
/// one), and failing unless the script exits 0.
pub fn run_cleanup(
    script: &str,
    env: &Env,
    cwd: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<()> {
    let status = run_inner("cleanup", script, false, env, cwd, log, timeout, false)?;
    ensure_success("cleanup", status, log)
}

#[allow(clippy::too_many_arguments)]
fn run_inner(
    what: &str,
    script: &str,
    strict: bool,
    env: &Env,
    cwd: &Path,
    log: &Path,
    timeout: Duration,
    interruptible: bool,
) -> Result<ExitStatus> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open log {}", log.display()))?;
    let err = out.try_clone()?;
    let mut child = sh(script, strict, env, cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start the {what} command"))?;
    let pgid = child.id() as i32;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            // Background jobs the script left behind die with it.
            kill_group(pgid);
            return Ok(status);
        }
        let stop = if interruptible && interrupt::requested() {
            Some(Stopped::Interrupted)
        } else if start.elapsed() > timeout {
            Some(Stopped::Timeout(timeout.as_secs_f64()))
        } else {
            None
        };
        if let Some(why) = stop {
            kill_group(pgid);
            let _ = child.wait();
            return Err(why).with_context(|| format!("{what} stopped"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Describe an exit status: `exit status 2` or `killed by signal 9`.
pub fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// The last `lines` lines of a file (at most 8 KiB read), for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Fail with the command's output tail when it did not succeed.
pub fn ensure_success(what: &str, status: ExitStatus, log: &Path) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    let t = tail(log, 15);
    bail!(
        "{what} failed with {}{}",
        describe(&status),
        if t.is_empty() {
            String::new()
        } else {
            format!(":\n{t}")
        }
    )
}
