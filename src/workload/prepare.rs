//! Setup and its cache: generate a case's data once per (case definition, scale, assets).
//!
//! The cache key hashes everything setup's output depends on, so editing a case file or one of
//! its assets regenerates the data, and a second run with the same inputs skips setup entirely.
//! The data directory stays at its final path while setup writes it (generated files may embed
//! their path), and a marker file written last says it is complete.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::shell::{self, Env};
use super::RunRequest;
use crate::workload::result::SetupReport;

const COMPLETE_MARKER: &str = ".schedgen-complete";
const SETUP_LOG: &str = ".setup.log";

/// Where generated data and other caches live: `$SCHEDGEN_CACHE`, else `$XDG_CACHE_HOME/schedgen`,
/// else `~/.cache/schedgen`.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("SCHEDGEN_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("schedgen");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/schedgen")
}

/// The environment every command of the case sees (task-specific variables are added later).
pub fn base_env(req: &RunRequest, data_dir: &Path) -> Env {
    let case = &req.case;
    let mut env = Env::new();
    env.insert("SCHEDGEN_CASE".into(), case.id.clone());
    env.insert("SCALE".into(), format!("{}", req.scale));
    env.insert("DATA".into(), data_dir.display().to_string());
    env.insert("BIN".into(), data_dir.join("bin").display().to_string());
    env.insert("ASSETS".into(), req.assets_dir.display().to_string());
    env.insert("CASE_ASSETS".into(), case_assets(req).display().to_string());
    env.insert("PYTHON".into(), req.python.clone());
    for (k, v) in req.sizes().into_iter().chain(case.param_values()) {
        env.insert(k.to_uppercase(), v);
    }
    env
}

/// The case's own scripts and data generators: the checkout's `assets/<id>/`, or the `<id>/`
/// beside a case file kept elsewhere.
fn case_assets(req: &RunRequest) -> PathBuf {
    req.case
        .own_assets
        .clone()
        .unwrap_or_else(|| req.assets_dir.join(&req.case.id))
}

/// Hash of everything setup's output depends on.
pub fn cache_key(req: &RunRequest) -> Result<String> {
    let case = &req.case;
    let mut h = Sha256::new();
    h.update(case.id.as_bytes());
    h.update(case.commands.setup.as_deref().unwrap_or("").as_bytes());
    for (k, v) in req.sizes().iter().chain(&case.param_values()) {
        h.update(format!("\0{k}={v}").as_bytes());
    }
    h.update(req.python.as_bytes());
    for dir in [case_assets(req), req.assets_dir.join("common")] {
        hash_tree(&mut h, &dir)?;
    }
    let digest = h.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

fn hash_tree(h: &mut Sha256, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            hash_tree(h, &p)?;
        } else {
            h.update(p.display().to_string().as_bytes());
            h.update(std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?);
        }
    }
    Ok(())
}

/// Where this request's generated data lives.
pub fn data_dir(req: &RunRequest) -> Result<PathBuf> {
    Ok(req.cache_dir.join("data").join(&req.case.id).join(format!(
        "scale-{}-{}",
        req.scale,
        cache_key(req)?
    )))
}

/// Run setup unless its output is cached. Concurrent runs of the same case wait for each other.
pub fn prepare(req: &RunRequest) -> Result<SetupReport> {
    let dir = data_dir(req)?;
    let parent = dir.parent().expect("data dir has a parent");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create cache directory {}", parent.display()))?;
    let _lock = lock(&parent.join(".lock"))?;
    let report = |seconds, cached| SetupReport {
        seconds,
        cached,
        data_dir: dir.display().to_string(),
    };
    if dir.join(COMPLETE_MARKER).exists() {
        return Ok(report(0.0, true));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove incomplete data {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("bin"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let start = Instant::now();
    let result = match &req.case.commands.setup {
        None => Ok(()),
        Some(script) => {
            let log = dir.join(SETUP_LOG);
            let env = base_env(req, &dir);
            let timeout = Duration::from_secs_f64(req.setup_timeout_s);
            shell::run_logged("setup", script, true, &env, &dir, &log, timeout)
                .and_then(|status| shell::ensure_success("setup", status, &log))
        }
    };
    if let Err(e) = result {
        // Never leave half-generated data that a later run could mistake for complete.
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e).with_context(|| format!("setup of `{}` failed", req.case.id));
    }
    File::create(dir.join(COMPLETE_MARKER))?;
    Ok(report(start.elapsed().as_secs_f64(), false))
}

/// An exclusive advisory lock held until the returned file is dropped.
fn lock(path: &Path) -> Result<File> {
    let f = File::create(path).with_context(|| format!("cannot create lock {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; blocks until the lock is free.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot lock {}", path.display()));
    }
    Ok(f)
}
