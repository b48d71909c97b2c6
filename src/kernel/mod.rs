//! The sched_ext kernel schedgen compiles against and boots: fetched into the cache, or the
//! user's own (`--kernel PATH`).
//!
//! A fetched kernel lives in `<cache>/kernels/<release>/` with a `kernel.json` manifest written
//! last, so a directory without a manifest is an interrupted fetch and is redone. The headers
//! (`vmlinux.h`, `kfuncs.h`) are generated from the same kernel's BTF, so a scheduler is always
//! compiled against the API of the kernel that will run it.

pub mod btf;
pub mod config;
pub mod fetch;
pub mod scx_headers;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::workload::prepare::cache_root;
use config::{describe_failures, ConfigCheck, KernelConfig, SCHED_EXT_OPTIONS, VM_OPTIONS};

const MANIFEST: &str = "kernel.json";

/// Where a kernel came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KernelSource {
    /// Downloaded by `schedgen kernel fetch`.
    DebianUnstable,
    /// Given with `--kernel PATH`.
    User,
}

/// Everything known about one kernel (the `kernel.json` manifest of a fetched one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kernel {
    pub release: String,
    pub source: KernelSource,
    /// Debian package version, for a fetched kernel.
    pub package_version: Option<String>,
    pub vmlinuz: PathBuf,
    pub config: PathBuf,
    /// ELF image with the `.BTF` section (only needed to generate headers).
    pub vmlinux: Option<PathBuf>,
    pub vmlinux_h: Option<PathBuf>,
    pub kfuncs_h: Option<PathBuf>,
    pub kfunc_count: Option<usize>,
    pub sched_ext_checks: Vec<ConfigCheck>,
    pub vm_checks: Vec<ConfigCheck>,
    pub fetched: Option<DateTime<Utc>>,
}

impl Kernel {
    /// An error unless this kernel can boot in schedgen's VM and run sched_ext.
    pub fn ensure_bootable(&self) -> Result<()> {
        let mut problems = Vec::new();
        if let Some(m) = describe_failures(&self.sched_ext_checks) {
            problems.push(format!("no sched_ext: {m}"));
        }
        if let Some(m) = describe_failures(&self.vm_checks) {
            problems.push(format!("cannot boot without an initramfs: {m}"));
        }
        if !problems.is_empty() {
            bail!(
                "kernel {} ({}) is not usable: {}; run `schedgen kernel fetch` for one that is",
                self.release,
                self.vmlinuz.display(),
                problems.join("; ")
            );
        }
        Ok(())
    }
}

/// `<cache>/kernels`.
pub fn kernels_dir() -> PathBuf {
    cache_root().join("kernels")
}

/// Every completely fetched kernel, newest fetch first.
pub fn cached() -> Vec<Kernel> {
    let mut found: Vec<Kernel> = std::fs::read_dir(kernels_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join(MANIFEST)).ok())
        .filter_map(|b| serde_json::from_slice::<Kernel>(&b).ok())
        .collect();
    found.sort_by_key(|k| std::cmp::Reverse(k.fetched));
    found
}

/// The kernel to use: `--kernel PATH` if given, else the newest fetched one.
pub fn select(explicit: Option<&Path>) -> Result<Kernel> {
    match explicit {
        Some(p) => from_user_path(p),
        None => cached().into_iter().next().context(
            "no sched_ext kernel is cached: run `schedgen kernel fetch` (or pass --kernel PATH)",
        ),
    }
}

/// Describe a user's vmlinuz, finding its config (and BTF) beside it.
pub fn from_user_path(vmlinuz: &Path) -> Result<Kernel> {
    let meta = std::fs::metadata(vmlinuz)
        .with_context(|| format!("--kernel {}: no such file", vmlinuz.display()))?;
    if !meta.is_file() {
        bail!(
            "--kernel {} is not a file (give the kernel image, e.g. /boot/vmlinuz-<release>)",
            vmlinuz.display()
        );
    }
    let vmlinuz = vmlinuz.canonicalize()?;
    // A fetched kernel given by path: use its manifest (it knows the vmlinux and headers).
    if let Some(k) = cached().into_iter().find(|k| k.vmlinuz == vmlinuz) {
        return Ok(k);
    }
    let dir = vmlinuz.parent().unwrap_or(Path::new("/")).to_path_buf();
    let file = vmlinuz
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    // /boot/vmlinuz-<release> -> <release>; a modules directory is named after it.
    let release = file
        .strip_prefix("vmlinuz-")
        .map(str::to_string)
        .or_else(|| {
            (file == "vmlinuz" || file == "bzImage").then(|| {
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
        })
        .unwrap_or_else(|| file.clone());
    let mut config_candidates = vec![
        dir.join("config"),
        dir.join(format!("config-{release}")),
        dir.join(".config"),
    ];
    // A kernel build tree: arch/x86/boot/bzImage with .config three levels up.
    config_candidates.extend(dir.ancestors().skip(1).take(3).map(|a| a.join(".config")));
    let config = config_candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "--kernel {}: its build configuration is missing; schedgen looked for {} (copy the kernel's config there)",
            vmlinuz.display(),
            config_candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })?;
    let cfg = KernelConfig::load(&config)?;
    let vmlinux_candidates = [
        dir.join("vmlinux"),
        dir.join(format!("vmlinux-{release}")),
        PathBuf::from(format!("/usr/lib/debug/boot/vmlinux-{release}")),
    ];
    let vmlinux = vmlinux_candidates.iter().find(|p| p.is_file()).cloned();
    Ok(Kernel {
        release,
        source: KernelSource::User,
        package_version: None,
        sched_ext_checks: cfg.check_builtin(SCHED_EXT_OPTIONS),
        vm_checks: cfg.check_builtin(VM_OPTIONS),
        vmlinuz,
        config,
        vmlinux,
        vmlinux_h: None,
        kfuncs_h: None,
        kfunc_count: None,
        fetched: None,
    })
}

/// The directory holding `vmlinux.h` and `kfuncs.h` for `kernel`, generating them on first use
/// for a user's kernel (from a vmlinux beside it, or from its image when that is
/// zstd-compressed) into `<cache>/kernels/user-<release>/`.
pub fn header_dir(kernel: &Kernel) -> Result<PathBuf> {
    if let Some(dir) = kernel.vmlinux_h.as_deref().and_then(Path::parent) {
        return Ok(dir.to_path_buf());
    }
    let dir = kernels_dir().join(format!("user-{}", kernel.release));
    if dir.join("kfuncs.h").is_file() && dir.join("vmlinux.h").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let btf = match &kernel.vmlinux {
        Some(v) => v.clone(),
        None => {
            let v = dir.join("vmlinux");
            btf::extract_vmlinux(&kernel.vmlinuz, &v).with_context(|| {
                format!(
                    "kernel {} has no BTF schedgen can read: put its vmlinux beside {}",
                    kernel.release,
                    kernel.vmlinuz.display()
                )
            })?;
            v
        }
    };
    btf::write_vmlinux_h(&btf, &dir.join("vmlinux.h"))?;
    btf::write_kfuncs_h(&btf, &kernel.release, &dir.join("kfuncs.h"))?;
    Ok(dir)
}

/// What `fetch` did.
pub enum FetchOutcome {
    Fetched(Kernel),
    AlreadyCached(Kernel),
}

/// Download, unpack, check and prepare the newest Debian unstable cloud kernel.
/// `progress` receives one line per slow step.
pub fn fetch(force: bool, progress: &dyn Fn(&str)) -> Result<FetchOutcome> {
    let apt = fetch::PrivateApt::new(&cache_root().join("apt"), &fetch::mirror_uri()?)?;
    progress("refreshing Debian unstable's package lists");
    if let Err(e) = apt.update() {
        // Offline, or the mirror is down: a cached kernel still does the job.
        if let Some(k) = cached().into_iter().next() {
            progress(&format!("warning: {e:#}; keeping the cached kernel"));
            return Ok(FetchOutcome::AlreadyCached(k));
        }
        return Err(e);
    }
    let resolved = apt.resolve()?;
    let final_dir = kernels_dir().join(&resolved.release);
    if !force {
        if let Ok(bytes) = std::fs::read(final_dir.join(MANIFEST)) {
            if let Ok(k) = serde_json::from_slice::<Kernel>(&bytes) {
                return Ok(FetchOutcome::AlreadyCached(k));
            }
        }
    }
    // Built beside the final directory and swapped in at the end, so a VM booting the cached
    // kernel meanwhile (`--force`) or an interrupted fetch never sees half a kernel.
    let dir = kernels_dir().join(format!(
        ".{}.partial-{}",
        resolved.release,
        std::process::id()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot clear the partial kernel in {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let rebase = |p: PathBuf| final_dir.join(p.strip_prefix(&dir).unwrap_or(&p));
    for pkg in [
        fetch::binary_package(&resolved.release),
        fetch::base_package(&resolved.release),
    ] {
        progress(&format!("downloading {pkg} {}", resolved.package_version));
        let deb = apt.download(&pkg)?;
        fetch::unpack(&deb, &dir)?;
        std::fs::remove_file(&deb).ok();
    }
    let modules = dir.join("usr/lib/modules").join(&resolved.release);
    let vmlinuz = modules.join("vmlinuz");
    let config_path = modules.join("config");
    for p in [&vmlinuz, &config_path] {
        if !p.is_file() {
            bail!(
                "the Debian packages of {} hold no {}",
                resolved.release,
                p.display()
            );
        }
    }
    let cfg = KernelConfig::load(&config_path)?;
    let sched_ext_checks = cfg.check_builtin(SCHED_EXT_OPTIONS);
    if let Some(m) = describe_failures(&sched_ext_checks) {
        bail!(
            "Debian's kernel {} lacks sched_ext support: {m}",
            resolved.release
        );
    }
    progress("extracting vmlinux and its BTF");
    let vmlinux = dir.join("vmlinux");
    btf::extract_vmlinux(&vmlinuz, &vmlinux)?;
    progress("generating vmlinux.h and kfuncs.h");
    let vmlinux_h = dir.join("vmlinux.h");
    btf::write_vmlinux_h(&vmlinux, &vmlinux_h)?;
    let kfuncs_h = dir.join("kfuncs.h");
    let kfunc_count = btf::write_kfuncs_h(&vmlinux, &resolved.release, &kfuncs_h)?;
    let kernel = Kernel {
        release: resolved.release,
        source: KernelSource::DebianUnstable,
        package_version: Some(resolved.package_version),
        vmlinuz: rebase(vmlinuz),
        config: rebase(config_path),
        vmlinux: Some(rebase(vmlinux)),
        vmlinux_h: Some(rebase(vmlinux_h)),
        kfuncs_h: Some(rebase(kfuncs_h)),
        kfunc_count: Some(kfunc_count),
        sched_ext_checks,
        vm_checks: cfg.check_builtin(VM_OPTIONS),
        fetched: Some(Utc::now()),
    };
    let manifest = dir.join(MANIFEST);
    let json = serde_json::to_vec_pretty(&kernel)?;
    std::fs::write(&manifest, json)
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    let old = kernels_dir().join(format!(".{}.old-{}", kernel.release, std::process::id()));
    if final_dir.exists() {
        std::fs::rename(&final_dir, &old)
            .with_context(|| format!("cannot move {} aside", final_dir.display()))?;
    }
    std::fs::rename(&dir, &final_dir)
        .with_context(|| format!("cannot move the new kernel to {}", final_dir.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(FetchOutcome::Fetched(kernel))
}
