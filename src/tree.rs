//! Directory trees as a whole: copying one, and how many bytes it holds.

use std::path::Path;

use anyhow::{Context, Result};

/// Copy the tree at `from` into `to` (created), keeping file modes (a case's programs stay
/// executable) and symbolic links as links.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy(&src, &dest)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src)?;
            std::os::unix::fs::symlink(&target, &dest)
                .with_context(|| format!("cannot link {}", dest.display()))?;
        } else {
            std::fs::copy(&src, &dest)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dest.display()))?;
        }
    }
    Ok(())
}

/// Bytes of the regular files under `dir` (links not followed).
pub fn bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_copied_tree_keeps_contents_modes_and_links() {
        let t = tempfile::tempdir().unwrap();
        let from = t.path().join("from");
        std::fs::create_dir_all(from.join("bin")).unwrap();
        std::fs::write(from.join("data.txt"), "12345").unwrap();
        std::fs::write(from.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(from.join("bin/run"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("data.txt", from.join("link")).unwrap();

        let to = t.path().join("to");
        copy(&from, &to).unwrap();
        assert_eq!(
            std::fs::read_to_string(to.join("data.txt")).unwrap(),
            "12345"
        );
        let mode = std::fs::metadata(to.join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(to.join("link")).unwrap(),
            Path::new("data.txt")
        );
        assert_eq!(bytes(&from).unwrap(), 5 + 10);
        assert_eq!(bytes(&to).unwrap(), bytes(&from).unwrap());
    }
}
