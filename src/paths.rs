//! Where the project's data files are: `cases/`, `assets/`, and later `bpf-reference/`.
//!
//! schedgen runs from a checkout: the root is `--root`, else `$SCHEDGEN_ROOT`, else the first
//! directory from the current one upwards that holds `cases/` and `assets/`, else the source
//! tree the binary was built from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

#[derive(Debug, Clone)]
pub struct ProjectPaths {
    pub root: PathBuf,
}

fn is_root(p: &Path) -> bool {
    p.join("cases").is_dir() && p.join("assets").is_dir()
}

impl ProjectPaths {
    pub fn discover(explicit: Option<&Path>) -> Result<ProjectPaths> {
        if let Some(p) = explicit {
            if !is_root(p) {
                bail!(
                    "{} is not a schedgen checkout (no cases/ and assets/ in it)",
                    p.display()
                );
            }
            return Ok(ProjectPaths {
                root: p.canonicalize()?,
            });
        }
        if let Ok(cwd) = std::env::current_dir() {
            if let Some(found) = cwd.ancestors().find(|p| is_root(p)) {
                return Ok(ProjectPaths {
                    root: found.to_path_buf(),
                });
            }
        }
        let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        if is_root(&built) {
            return Ok(ProjectPaths { root: built });
        }
        bail!("cannot find the schedgen checkout (a directory with cases/ and assets/); run from inside it or pass --root")
    }

    pub fn cases(&self) -> PathBuf {
        self.root.join("cases")
    }

    pub fn assets(&self) -> PathBuf {
        self.root.join("assets")
    }

    /// Reference schedulers and the project's sched_ext header.
    pub fn bpf_reference(&self) -> PathBuf {
        self.root.join("bpf-reference")
    }
}
