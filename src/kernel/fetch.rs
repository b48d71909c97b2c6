//! Download the newest sched_ext-capable kernel from Debian unstable, without touching the
//! system's apt state.
//!
//! Only Debian unstable's cloud flavour enables sched_ext, and its versions move (old ones
//! vanish from the mirror), so the package chain is resolved at every fetch:
//! `linux-image-cloud-amd64` -> `linux-image-<release>` -> `linux-binary-<release>` (the
//! vmlinuz) and `linux-base-<release>` (its `config`). apt runs with a private source list,
//! package lists and cache under schedgen's cache directory; the mirror is the one this
//! machine is already configured with.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const META_PACKAGE: &str = "linux-image-cloud-amd64";
const FLAVOUR_SUFFIX: &str = "-cloud-amd64";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const DEB822_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const LEGACY_SOURCES: &str = "/etc/apt/sources.list";

/// A private apt configuration rooted in one directory.
pub struct PrivateApt {
    dir: PathBuf,
}

/// What the package chain resolved to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Kernel release, e.g. `7.2.13+deb14-cloud-amd64` (the modules directory name).
    pub release: String,
    /// Debian version of the packages, e.g. `7.2.13-1`.
    pub package_version: String,
}

/// The Debian mirror URI configured on this machine (not the security one).
pub fn mirror_uri() -> Result<String> {
    if let Ok(text) = std::fs::read_to_string(DEB822_SOURCES) {
        if let Some(uri) = mirror_from_deb822(&text) {
            return Ok(uri);
        }
    }
    if let Ok(text) = std::fs::read_to_string(LEGACY_SOURCES) {
        if let Some(uri) = mirror_from_legacy(&text) {
            return Ok(uri);
        }
    }
    bail!(
        "no Debian mirror configured in {DEB822_SOURCES} or {LEGACY_SOURCES}; \
         schedgen fetches its kernel from the mirror this machine uses (or pass --kernel PATH)"
    )
}

fn is_main_archive(uri: &str) -> bool {
    uri.trim_end_matches('/').ends_with("/debian")
}

fn mirror_from_deb822(text: &str) -> Option<String> {
    // One stanza per paragraph; skip the security archive, whose suites differ.
    let mut candidates = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
        };
        if field("Suites:").contains("-security") || field("Enabled:") == "no" {
            continue;
        }
        candidates.extend(
            field("URIs:")
                .split_whitespace()
                .map(|u| u.trim_end_matches('/').to_string()),
        );
    }
    let main = candidates.iter().find(|u| is_main_archive(u)).cloned();
    main.or_else(|| candidates.into_iter().next())
}

fn mirror_from_legacy(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("deb "))
        .flat_map(|l| l.split_whitespace())
        .find(|w| w.contains("://") && is_main_archive(w))
        .map(|u| u.trim_end_matches('/').to_string())
}

impl PrivateApt {
    /// Set up (or reuse) the private apt tree under `dir`, pointing at unstable on `mirror`.
    pub fn new(dir: &Path, mirror: &str) -> Result<PrivateApt> {
        for sub in ["lists/partial", "cache/archives/partial", "debs"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let line = format!("deb [signed-by={KEYRING}] {mirror} unstable main\n");
        std::fs::write(dir.join("sources.list"), line)
            .with_context(|| format!("cannot write {}", dir.join("sources.list").display()))?;
        Ok(PrivateApt {
            dir: dir.to_path_buf(),
        })
    }

    fn options(&self) -> Vec<String> {
        let d = |s: &str| self.dir.join(s).display().to_string();
        vec![
            "-q".into(),
            "-o".into(),
            format!("Dir::Etc::SourceList={}", d("sources.list")),
            "-o".into(),
            "Dir::Etc::SourceParts=/dev/null".into(),
            "-o".into(),
            format!("Dir::State::Lists={}", d("lists")),
            "-o".into(),
            format!("Dir::Cache={}", d("cache")),
            "-o".into(),
            // The download lands in our own directory, which apt's sandbox user cannot write.
            "APT::Sandbox::User=root".into(),
        ]
    }

    fn run(&self, tool: &str, args: &[&str], cwd: Option<&Path>) -> Result<String> {
        let mut cmd = Command::new(tool);
        cmd.args(self.options()).args(args);
        if let Some(c) = cwd {
            cmd.current_dir(c);
        }
        let out = cmd.output().with_context(|| {
            format!("cannot run {tool}: schedgen's kernel fetch needs Debian's apt")
        })?;
        if !out.status.success() {
            bail!(
                "`{tool} {}` failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Refresh the package lists of unstable.
    pub fn update(&self) -> Result<()> {
        self.run("apt-get", &["update"], None)
            .context("cannot refresh Debian unstable's package lists (is the network up?)")?;
        Ok(())
    }

    /// The `Depends` and `Version` of the candidate version of a package.
    fn show(&self, package: &str) -> Result<(String, Vec<String>)> {
        let text = self
            .run("apt-cache", &["show", "--no-all-versions", package], None)
            .with_context(|| format!("package {package} is not in Debian unstable"))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let depends = field("Depends:")
            .split(',')
            .flat_map(|alt| alt.split('|'))
            .filter_map(|d| d.split_whitespace().next())
            .map(str::to_string)
            .collect();
        Ok((field("Version:"), depends))
    }

    /// Follow the meta package to the newest kernel release.
    pub fn resolve(&self) -> Result<Resolved> {
        let (_, deps) = self.show(META_PACKAGE)?;
        let image = deps
            .iter()
            .find(|d| {
                d.starts_with("linux-image-") && d.ends_with(FLAVOUR_SUFFIX) && *d != META_PACKAGE
            })
            .with_context(|| {
                format!(
                    "{META_PACKAGE} depends on no linux-image-<release>{FLAVOUR_SUFFIX}: {deps:?}"
                )
            })?;
        let release = image.trim_start_matches("linux-image-").to_string();
        let (package_version, deps) = self.show(image)?;
        for want in [binary_package(&release), base_package(&release)] {
            if !deps.contains(&want) {
                bail!("{image} does not depend on {want} (Debian changed its kernel packaging?): {deps:?}");
            }
        }
        Ok(Resolved {
            release,
            package_version,
        })
    }

    /// Download a package's .deb into the private directory; returns its path.
    pub fn download(&self, package: &str) -> Result<PathBuf> {
        let debs = self.dir.join("debs");
        for e in std::fs::read_dir(&debs)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") {
                std::fs::remove_file(e.path())?;
            }
        }
        self.run("apt-get", &["download", package], Some(&debs))
            .with_context(|| format!("cannot download {package}"))?;
        std::fs::read_dir(&debs)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with(&format!("{package}_")) && n.ends_with(".deb")
            })
            .with_context(|| {
                format!(
                    "apt-get download {package} left no .deb in {}",
                    debs.display()
                )
            })
    }
}

pub fn binary_package(release: &str) -> String {
    format!("linux-binary-{release}")
}

pub fn base_package(release: &str) -> String {
    format!("linux-base-{release}")
}

/// Unpack a .deb into `dest` without installing it.
pub fn unpack(deb: &Path, dest: &Path) -> Result<()> {
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dest)
        .output()
        .context("cannot run dpkg-deb (Debian's dpkg)")?;
    if !out.status.success() {
        bail!(
            "dpkg-deb -x {} failed: {}",
            deb.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_the_main_archive() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n\
                      Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            mirror_from_deb822(deb822).unwrap(),
            "http://mirror.example/debian"
        );
        let legacy = "# x\ndeb http://mirror.example/debian-security bookworm-security main\n\
                      deb [arch=amd64] http://mirror.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_legacy(legacy).unwrap(),
            "http://mirror.example/debian"
        );
    }
}
