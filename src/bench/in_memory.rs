//! A case's prepared data, copied into the guest's memory before the case is measured.
//!
//! The guest reads the host's files through virtio-fs, served by a daemon on the same two host
//! cores as the two vCPU threads. Runs started from dropped caches, so every run read its
//! inputs through that daemon again, and while both vCPUs were busy the reads waited for it:
//! script_per_file's long task waited 5% of its wall time alone and 25% beside one short task.
//! A real machine's disk does not take CPU time from its cores that way. A copy on the guest's
//! tmpfs is read from memory, the same way in every run of every arm; the programs a case runs
//! (gcc, python3, ...) still come through virtio-fs, once: with the data in memory, runs keep
//! the guest's page cache (see `job::drops_caches`).
//!
//! The copy is mounted over the data's own path, so the runs name the same files as the profile
//! on the host did: a class rule on a path (`argv[2] is …/set_17`) matches in both.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::result::DataPlacement;
use crate::workload::RunRequest;

/// tmpfs's magic number (`statfs.f_type`), from `<linux/magic.h>`.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The data may take at most this share of the guest's available memory: the workload needs
/// the rest.
const MEMORY_SHARE: f64 = 0.25;

/// A copy of a case's data mounted over the original, unmounted and removed when dropped.
pub struct Staged {
    mounted: Option<(PathBuf, PathBuf)>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some((over, copy)) = &self.mounted {
            let _ = unmount(over);
            let _ = std::fs::remove_dir_all(copy);
        }
    }
}

/// Copy `req`'s prepared data into a new directory under `root` (which must be on a tmpfs) and
/// mount the copy over the data's own path. When it cannot (no prepared data, `root` not in
/// memory, too little memory, a failed copy or mount) the data stays where it is, and the
/// placement says why.
pub fn stage(req: &RunRequest, root: &Path) -> (Staged, DataPlacement) {
    let not =
        |bytes: u64, why: String| (Staged { mounted: None }, DataPlacement::stayed(bytes, why));
    let Some(prepared) = req.prepared.as_ref() else {
        return not(0, "the case has no prepared data".into());
    };
    let from = PathBuf::from(&prepared.data_dir);
    let bytes = match crate::tree::bytes(&from) {
        Ok(b) => b,
        Err(e) => return not(0, format!("{e:#}")),
    };
    // A probe at the case's own sizes shares its data, already copied and mounted.
    if on_tmpfs(&from).is_ok() {
        return (Staged { mounted: None }, DataPlacement::copied(bytes, 0.0));
    }
    if let Err(why) = std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create {}: {e}", root.display()))
        .and_then(|()| on_tmpfs(root))
    {
        return not(bytes, why);
    }
    if let Some(avail) = available_memory() {
        if bytes as f64 > MEMORY_SHARE * avail as f64 {
            return not(
                bytes,
                format!(
                    "{} MiB of data is more than a quarter of the {} MiB of memory available",
                    bytes >> 20,
                    avail >> 20
                ),
            );
        }
    }
    let name = from
        .file_name()
        .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    let Some(to) = (0..1000)
        .map(|i| root.join(format!("{}-{name}-{i}", req.case.id)))
        .find(|p| !p.exists())
    else {
        return not(
            bytes,
            format!("no free directory name in {}", root.display()),
        );
    };
    let started = Instant::now();
    if let Err(e) = crate::tree::copy(&from, &to) {
        let _ = std::fs::remove_dir_all(&to);
        return not(bytes, format!("copying it failed: {e:#}"));
    }
    if let Err(why) = bind(&to, &from) {
        let _ = std::fs::remove_dir_all(&to);
        return not(bytes, why);
    }
    (
        Staged {
            mounted: Some((from, to)),
        },
        DataPlacement::copied(bytes, started.elapsed().as_secs_f64()),
    )
}

fn c_path(p: &Path) -> Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| e.to_string())
}

/// Mount `copy` over `over` (a bind mount).
fn bind(copy: &Path, over: &Path) -> Result<(), String> {
    let (src, dst) = (c_path(copy)?, c_path(over)?);
    // SAFETY: valid NUL-terminated paths; a bind mount takes no filesystem type or data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot mount the copy over {}: {}",
            over.display(),
            std::io::Error::last_os_error()
        ))
    }
}

fn unmount(over: &Path) -> Result<(), String> {
    let dst = c_path(over)?;
    // SAFETY: a valid NUL-terminated path. Detach: a process still reading lets go later.
    if unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

fn on_tmpfs(dir: &Path) -> Result<(), String> {
    let c = c_path(dir)?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "cannot stat {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    if st.f_type as i64 == TMPFS_MAGIC {
        Ok(())
    } else {
        Err(format!("{} is not in memory (not a tmpfs)", dir.display()))
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::result::SetupReport;

    fn request(data_dir: &Path) -> RunRequest {
        let case = crate::case::Case::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/cases/ctest_suite.toml"
        )))
        .unwrap();
        let mut req = RunRequest::new(case, PathBuf::from("/nonexistent"));
        req.prepared = Some(SetupReport {
            seconds: 0.0,
            cached: true,
            data_dir: data_dir.display().to_string(),
        });
        req
    }

    #[test]
    fn data_on_a_tmpfs_is_read_from_the_copy_at_its_own_path_until_it_is_dropped() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test mounts, so it needs root (CI runs as root)"
        );
        let shm = Path::new("/dev/shm");
        assert!(
            on_tmpfs(shm).is_ok(),
            "this test needs /dev/shm to be a tmpfs, as on any Linux with systemd or udev"
        );
        // Beside the sources, on a disk: /tmp may be a tmpfs, which would count as in memory.
        let src = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(on_tmpfs(src.path()).is_err(), "the checkout is on a tmpfs");
        std::fs::write(src.path().join("input"), vec![7u8; 4096]).unwrap();
        let root = tempfile::tempdir_in(shm).unwrap();
        let req = request(src.path());
        let (staged, placement) = stage(&req, root.path());
        assert!(placement.in_memory, "{placement:?}");
        assert_eq!(placement.bytes, 4096);
        assert!(
            on_tmpfs(src.path()).is_ok(),
            "the data's own path now shows the copy in memory"
        );
        assert_eq!(std::fs::read(src.path().join("input")).unwrap().len(), 4096);
        // A probe at the same sizes: the data is in memory already and stays as it is.
        let (again, shared) = stage(&req, root.path());
        assert!(shared.in_memory && shared.copy_s == 0.0, "{shared:?}");
        drop(again);
        assert_eq!(std::fs::read(src.path().join("input")).unwrap().len(), 4096);
        drop(staged);
        assert!(
            std::fs::read_dir(root.path()).unwrap().next().is_none(),
            "the copy goes with its guard"
        );
        assert!(src.path().join("input").exists(), "the original stays");
        let same_fs_as_parent = {
            use std::os::unix::fs::MetadataExt;
            let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
            dev(src.path()) == dev(src.path().parent().unwrap())
        };
        assert!(same_fs_as_parent, "unmounted: the original shows again");
    }

    #[test]
    fn data_stays_where_it_was_when_the_target_is_not_in_memory() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("input"), "x").unwrap();
        // /proc exists on every Linux and is never a tmpfs.
        let root = Path::new("/proc/self");
        let req = request(src.path());
        let (_staged, placement) = stage(&req, root);
        assert!(!placement.in_memory);
        assert!(placement.why_not.unwrap().contains("not a tmpfs"));
        assert_eq!(
            req.prepared.unwrap().data_dir,
            src.path().display().to_string()
        );
    }
}
