//! Dependency checks: is every command on `PATH`, does `$PYTHON` import every module?

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::case::{Case, Dependency};

/// Interpreter used for the Python cases. Debian's own `/usr/bin/python3` is the one that
/// `python3-pandas` installs into; the `python3` first on `PATH` may be another one.
pub fn default_python() -> String {
    std::env::var("SCHEDGEN_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DepStatus {
    pub what: String,
    pub package: String,
    pub ok: bool,
}

/// Find an executable on `PATH` (or check an absolute path).
pub fn which(cmd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| is_exec(p))
}

fn python_has(python: &str, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn check_one(dep: &Dependency, python: &str) -> DepStatus {
    let ok = match (&dep.command, &dep.python_module) {
        (Some(c), _) => which(c).is_some(),
        (None, Some(m)) => python_has(python, m),
        (None, None) => false,
    };
    DepStatus {
        what: dep.what(),
        package: dep.package.clone(),
        ok,
    }
}

pub fn check(case: &Case, python: &str) -> Vec<DepStatus> {
    case.dependencies
        .iter()
        .map(|d| check_one(d, python))
        .collect()
}

/// A one-line error naming what is missing and how to get it, or `None` when all is there.
pub fn missing_message(statuses: &[DepStatus]) -> Option<String> {
    let missing: Vec<&DepStatus> = statuses.iter().filter(|s| !s.ok).collect();
    if missing.is_empty() {
        return None;
    }
    let what: Vec<String> = missing
        .iter()
        .map(|s| format!("{} (Debian package {})", s.what, s.package))
        .collect();
    let mut pkgs: Vec<&str> = missing.iter().map(|s| s.package.as_str()).collect();
    pkgs.sort();
    pkgs.dedup();
    Some(format!(
        "missing {}; install with `apt-get install {}` or `schedgen deps --install`",
        what.join(", "),
        pkgs.join(" ")
    ))
}

/// Install Debian packages with apt-get (needs root).
pub fn install(packages: &[String]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "installing packages needs root; run `sudo apt-get install {}`",
            packages.join(" ")
        );
    }
    if which("apt-get").is_none() {
        bail!(
            "apt-get not found: install {} with your distribution's package manager",
            packages.join(" ")
        );
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!(
            "apt-get install {} failed ({status}); try `apt-get update` first",
            packages.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("/bin/sh").is_some());
        assert!(which("no-such-command-schedgen").is_none());
    }

    #[test]
    fn missing_message_names_packages() {
        let st = vec![
            DepStatus {
                what: "ffmpeg".into(),
                package: "ffmpeg".into(),
                ok: false,
            },
            DepStatus {
                what: "git".into(),
                package: "git".into(),
                ok: true,
            },
            DepStatus {
                what: "python module pandas".into(),
                package: "python3-pandas".into(),
                ok: false,
            },
        ];
        let m = missing_message(&st).unwrap();
        assert!(m.contains("apt-get install ffmpeg python3-pandas"), "{m}");
        assert!(missing_message(&st[1..2]).is_none());
    }
}
