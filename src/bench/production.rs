//! The sched_ext schedulers people run instead, as benchmark arms: scx's production schedulers
//! from the Rust package registry (`scx_bpfland`, `scx_lavd`, …), installed once with
//! `cargo install` into schedgen's cache and run, where sched_ext is, as their own processes
//! with their default options.
//!
//! Host side: [`ensure`] finds or installs the binary and its version. Measuring side:
//! [`Running::start`] starts it and waits until the kernel says it is enabled; [`Running::stop`]
//! asks it to exit (SIGINT, as a user's Ctrl-C) and waits until the kernel has disabled it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::bpf::exit::SchedExit;
use crate::bpf::runtime::KernelLog;
use crate::bpf::scx_state;

/// A production scheduler ready to run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Production {
    /// What the user asked for: `bpfland`.
    pub name: String,
    /// The crate and binary: `scx_bpfland`.
    pub binary_name: String,
    pub version: String,
    pub binary: PathBuf,
}

/// Where `cargo install` puts them.
pub fn install_root() -> PathBuf {
    crate::workload::prepare::cache_root().join("production")
}

/// The crate of a name: `bpfland` and `scx_bpfland` both mean `scx_bpfland`.
pub fn crate_name(name: &str) -> Result<String> {
    let base = name.strip_prefix("scx_").unwrap_or(name);
    if base.is_empty()
        || !base
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!(
            "`{name}` is not a scheduler name: expected scx's short name, such as bpfland or lavd"
        );
    }
    Ok(format!("scx_{base}"))
}

/// The installed version of `krate` under `root`, from cargo's own record of installs.
fn installed_version(root: &Path, krate: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join(".crates2.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("installs")?.as_object()?.keys().find_map(|k| {
        let mut parts = k.split_whitespace();
        (parts.next() == Some(krate)).then(|| parts.next().map(str::to_string))?
    })
}

/// `name` as installed in the cache, or None when it is not there yet.
pub fn find(name: &str) -> Result<Option<Production>> {
    let krate = crate_name(name)?;
    let root = install_root();
    let binary = root.join("bin").join(&krate);
    if !binary.exists() {
        return Ok(None);
    }
    Ok(Some(Production {
        name: name.strip_prefix("scx_").unwrap_or(name).to_string(),
        version: installed_version(&root, &krate).unwrap_or_else(|| "unknown".into()),
        binary_name: krate,
        binary,
    }))
}

/// Find `name` in the cache, or install it there with `cargo install --locked` (minutes: it
/// builds the scheduler and its BPF program).
pub fn ensure(name: &str, progress: &dyn Fn(&str)) -> Result<Production> {
    if let Some(p) = find(name)? {
        return Ok(p);
    }
    let krate = crate_name(name)?;
    let root = install_root();
    progress(&format!(
        "installing {krate} with cargo into {} (once; it compiles the scheduler, several minutes)",
        root.display()
    ));
    // scx's build runs `clang` for its BPF half; Debian names it clang-19, so point it at
    // the clang schedgen compiles with.
    let clang = crate::bpf::compile::find_clang()?;
    let status = Command::new(crate::kernel::scx_headers::cargo())
        .env("BPF_CLANG", &clang)
        .args(["install", "--locked", "--quiet", "--root"])
        .arg(&root)
        .arg(&krate)
        .stdin(Stdio::null())
        .status()
        .context("cannot run cargo: is Rust installed?")?;
    match find(name)? {
        Some(p) if status.success() => Ok(p),
        _ => bail!(
            "`cargo install {krate}` failed ({status}); is `{krate}` a crate of the registry, \
             and are clang and libelf's headers installed (scripts/setup.sh)?"
        ),
    }
}

/// How long a production scheduler may take to load, verify and enable.
const ENABLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to exit and the kernel to disable it.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A production scheduler running, confirmed enabled.
pub struct Running {
    child: Child,
    /// The ops name the kernel shows (`bpfland`).
    pub ops: String,
    log: PathBuf,
    /// The kernel's log since just before it started: says why the kernel disabled it.
    kmsg: KernelLog,
}

impl Running {
    /// Start `p` and wait until the kernel runs it. Its output goes to `log`.
    pub fn start(p: &Production, log: &Path) -> Result<Running> {
        if !scx_state::available() {
            bail!("this kernel has no sched_ext");
        }
        if scx_state::state() != "disabled" {
            bail!(
                "another sched_ext scheduler is running ({})",
                scx_state::ops()
            );
        }
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let kmsg = KernelLog::open_at_end();
        let mut child = Command::new(&p.binary)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", p.binary.display()))?;
        let started = Instant::now();
        loop {
            if scx_state::state() == "enabled" && !scx_state::ops().is_empty() {
                return Ok(Running {
                    child,
                    ops: scx_state::ops(),
                    log: log.to_path_buf(),
                    kmsg,
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited ({status}) before the kernel enabled it:\n{}",
                    p.binary_name,
                    tail(log, 10)
                );
            }
            if started.elapsed() > ENABLE_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} was not enabled within {} s:\n{}",
                    p.binary_name,
                    ENABLE_TIMEOUT.as_secs(),
                    tail(log, 10)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it is still the scheduler the kernel runs.
    pub fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && scx_state::still_running(&self.ops)
    }

    /// Ask it to exit and wait until the kernel has disabled it. `Err` with its last output when
    /// it would not go, or the kernel did not return to the default scheduler.
    pub fn stop(mut self) -> Result<()> {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill only sends a signal to our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        }
        let started = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) {
            if started.elapsed() > STOP_TIMEOUT {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.wait();
        if !scx_state::wait_for("disabled", STOP_TIMEOUT) {
            bail!(
                "the kernel did not disable {} ({}):\n{}",
                self.ops,
                scx_state::state(),
                tail(&self.log, 10)
            );
        }
        Ok(())
    }

    /// The end of its output.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Why the kernel disabled it, when it did (a stall, an error): from the kernel's own log,
    /// which says it the same way for every scheduler. Read it before `stop`, whose unloading
    /// the kernel logs too.
    pub fn kernel_exit(&mut self) -> Option<SchedExit> {
        SchedExit::from_kernel_log(&self.kmsg.sched_ext_lines())
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_crates() {
        assert_eq!(crate_name("bpfland").unwrap(), "scx_bpfland");
        assert_eq!(crate_name("scx_lavd").unwrap(), "scx_lavd");
        assert!(crate_name("../evil").is_err());
        assert!(crate_name("").is_err());
    }

    #[test]
    fn reads_the_installed_version_from_cargos_record() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".crates2.json"),
            r#"{"installs":{"scx_bpfland 1.1.4 (registry+https://example.invalid/index)":{"bins":["scx_bpfland"]},"scx_lavd 1.0.9 (registry+x)":{}}}"#,
        )
        .unwrap();
        assert_eq!(
            installed_version(dir.path(), "scx_lavd").as_deref(),
            Some("1.0.9")
        );
        assert_eq!(
            installed_version(dir.path(), "scx_bpfland").as_deref(),
            Some("1.1.4")
        );
        assert_eq!(installed_version(dir.path(), "scx_rusty"), None);
    }
}
