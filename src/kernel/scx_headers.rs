//! scx's BPF headers (`scx/common.bpf.h`, `compat.bpf.h`, `user_exit_info.bpf.h`, the enum
//! headers): the dialect nearly every sched_ext scheduler in the wild is written in.
//!
//! They come from the `scx_cargo` crate, fetched with the machine's own cargo (so its registry
//! configuration and mirrors apply), together with the libbpf BPF-side headers of the libbpf
//! that release builds with (`bpf_ksym_exists` and friends are newer than most distributions'
//! libbpf). Each release is copied into `<cache>/scx-headers/<version>/` with a manifest written
//! last.
//!
//! scx's headers drift: a scheduler written against early-2026 headers calls the one-argument
//! `scx_bpf_dsq_move_to_local` and the `__COMPAT_scx_bpf_dsq_move*` wrappers, which later
//! releases removed. So schedgen keeps several releases that suit the target kernel and
//! compiles a scheduler against the newest one it compiles with (see `bpf::compile`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::workload::prepare::cache_root;

const MANIFEST: &str = "headers.json";

/// One release of scx's headers that schedgen knows how to use.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Release {
    /// The `scx_cargo` crate version.
    pub version: &'static str,
    /// The oldest kernel (major, minor) the release's compat macros serve.
    pub min_kernel: (u32, u32),
    /// What distinguishes its API, for people choosing between them.
    pub api: &'static str,
}

/// Newest first. Both serve kernels from 6.12 (sched_ext's first release) through 7.2, the
/// newest schedgen has booted: their compat macros pick a kfunc the running kernel has.
pub const RELEASES: &[Release] = &[
    Release {
        version: "1.1.4",
        min_kernel: (6, 12),
        api: "scx_bpf_dsq_move_to_local(dsq, enq_flags) (kernel 7.1's enq_flags); scx_bpf_dsq_move* without __COMPAT_",
    },
    Release {
        version: "1.0.27",
        min_kernel: (6, 12),
        api: "scx_bpf_dsq_move_to_local(dsq); __COMPAT_scx_bpf_dsq_move*; the last release scx's own C examples were written for",
    },
];

/// A fetched release, as its manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScxHeaders {
    pub version: String,
    /// Holds `scx/`, `lib/` and `bpf-compat/`.
    pub dir: PathBuf,
    /// Holds `bpf/bpf_helpers.h` and the other BPF-side libbpf headers.
    pub libbpf_dir: PathBuf,
    pub libbpf_version: String,
}

impl ScxHeaders {
    /// The include directories, in search order.
    pub fn include_dirs(&self) -> Vec<PathBuf> {
        vec![
            self.libbpf_dir.clone(),
            self.dir.clone(),
            self.dir.join("bpf-compat"),
        ]
    }
}

pub fn store_dir() -> PathBuf {
    cache_root().join("scx-headers")
}

/// `7.2.13+deb14-cloud-amd64` → (7, 2).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The releases that serve `kernel_release`, newest first. A release that cannot be parsed is
/// served by all of them: the compiler is the judge then.
pub fn compatible(kernel_release: &str) -> Vec<&'static Release> {
    let v = kernel_version(kernel_release);
    RELEASES
        .iter()
        .filter(|r| v.is_none_or(|v| v >= r.min_kernel))
        .collect()
}

/// A release that serves a kernel, and whether it is in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub release: Release,
    pub cached: Option<ScxHeaders>,
}

/// The releases that serve `kernel_release`, newest first, with their cache state.
pub fn status(kernel_release: &str) -> Vec<Status> {
    compatible(kernel_release)
        .into_iter()
        .map(|r| Status {
            release: *r,
            cached: cached(r.version),
        })
        .collect()
}

/// A release already in the cache.
pub fn cached(version: &str) -> Option<ScxHeaders> {
    let bytes = std::fs::read(store_dir().join(version).join(MANIFEST)).ok()?;
    let h: ScxHeaders = serde_json::from_slice(&bytes).ok()?;
    (h.dir.join("scx/common.bpf.h").is_file() && h.libbpf_dir.join("bpf/bpf_helpers.h").is_file())
        .then_some(h)
}

/// The release of the kernel whose headers live in `kernel_dir` (`kernels/<release>`,
/// `kernels/user-<release>` or `kernels/host-<release>`).
pub fn release_of_kernel_dir(kernel_dir: &Path) -> String {
    let name = kernel_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.strip_prefix("user-")
        .or_else(|| name.strip_prefix("host-"))
        .unwrap_or(name)
        .to_string()
}

/// The cached releases that serve the kernel whose headers live in `kernel_dir`, newest first.
pub fn cached_for_kernel_dir(kernel_dir: &Path) -> Vec<ScxHeaders> {
    compatible(&release_of_kernel_dir(kernel_dir))
        .into_iter()
        .filter_map(|r| cached(r.version))
        .collect()
}

/// Every release that serves `kernel_release`, fetching the missing ones.
pub fn ensure(kernel_release: &str, progress: &dyn Fn(&str)) -> Result<Vec<ScxHeaders>> {
    compatible(kernel_release)
        .into_iter()
        .map(|r| match cached(r.version) {
            Some(h) => Ok(h),
            None => {
                progress(&format!(
                    "fetching scx's BPF headers (scx_cargo {})",
                    r.version
                ));
                fetch(r.version)
            }
        })
        .collect()
}

/// The cargo to run: the one running us under `cargo run`/`cargo test`, else `cargo` on PATH.
pub(crate) fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// The BPF-side headers libbpf installs as `<bpf/…>`.
const LIBBPF_HEADERS: &[&str] = &[
    "bpf_helpers.h",
    "bpf_helper_defs.h",
    "bpf_tracing.h",
    "bpf_core_read.h",
    "bpf_endian.h",
    "usdt.bpf.h",
];

/// Fetch `scx_cargo` `version` (and the libbpf-sys it resolves to) through cargo into the
/// cache.
pub fn fetch(version: &str) -> Result<ScxHeaders> {
    let store = store_dir();
    let work = store.join(format!(".fetch-{version}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("src"))
        .with_context(|| format!("cannot create {}", work.display()))?;
    let result = fetch_into(version, &work, &store);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn fetch_into(version: &str, work: &Path, store: &Path) -> Result<ScxHeaders> {
    let manifest = work.join("Cargo.toml");
    std::fs::write(
        &manifest,
        format!(
            "[package]\nname = \"schedgen-scx-headers\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nscx_cargo = \"={version}\"\n"
        ),
    )?;
    std::fs::write(work.join("src/lib.rs"), "")?;
    let out = Command::new(cargo())
        .args(["fetch", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .output()
        .context("cannot run cargo (it fetches scx's headers from the Rust package registry)")?;
    if !out.status.success() {
        bail!(
            "cargo could not fetch scx_cargo {version}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta = Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .context("cannot run cargo metadata")?;
    if !meta.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&meta.stderr).trim()
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&meta.stdout).context("cargo metadata printed no JSON")?;
    let package = |name: &str| -> Result<(PathBuf, String)> {
        meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .and_then(|p| {
                let dir = Path::new(p["manifest_path"].as_str()?).parent()?;
                Some((dir.to_path_buf(), p["version"].as_str()?.to_string()))
            })
            .with_context(|| format!("scx_cargo {version} does not resolve to a {name} package"))
    };
    let (scx_src, _) = package("scx_cargo")?;
    let (libbpf_src, libbpf_version) = package("libbpf-sys")?;

    let partial = store.join(format!(".{version}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    crate::tree::copy(&scx_src.join("bpf_h"), &partial.join("bpf_h"))?;
    let bpf = partial.join("libbpf/bpf");
    std::fs::create_dir_all(&bpf)?;
    for h in LIBBPF_HEADERS {
        let from = libbpf_src.join("libbpf/src").join(h);
        std::fs::copy(&from, bpf.join(h))
            .with_context(|| format!("cannot copy {}", from.display()))?;
    }
    let final_dir = store.join(version);
    let headers = ScxHeaders {
        version: version.to_string(),
        dir: final_dir.join("bpf_h"),
        libbpf_dir: final_dir.join("libbpf"),
        libbpf_version,
    };
    std::fs::write(partial.join(MANIFEST), serde_json::to_vec_pretty(&headers)?)?;
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&partial, &final_dir)
        .with_context(|| format!("cannot move the headers into {}", final_dir.display()))?;
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_versions() {
        assert_eq!(kernel_version("7.2.13+deb14-cloud-amd64"), Some((7, 2)));
        assert_eq!(kernel_version("6.12.0"), Some((6, 12)));
        assert_eq!(kernel_version("custom"), None);
    }

    #[test]
    fn an_old_kernel_gets_no_release() {
        assert!(compatible("6.6.30").is_empty());
        let v: Vec<_> = compatible("7.2.13").iter().map(|r| r.version).collect();
        assert_eq!(v, ["1.1.4", "1.0.27"], "newest first");
    }
}
