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
//!
//! The programs the case's processes exec (the profile's executables, their shared libraries and
//! the loader's cache) are copied the same way, each mounted over its own path. With the page
//! cache kept, their pages come from memory anyway, but every exec still opens and closes each
//! of them through virtio-fs, a round trip to the host daemon per call: with the other vCPU busy,
//! about 7 ms an exec of `gzip` (37 ms in all; measured 2026-12-07). A chain of many short
//! processes (a script running one `gzip` per file, `xargs` starting `sha256sum`s) paid that on
//! every link, which a real machine's local disk does not charge.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::result::{DataPlacement, ProgramPlacement};
use crate::workload::RunRequest;

/// tmpfs's magic number (`statfs.f_type`), from `<linux/magic.h>`.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The data may take at most this share of the guest's available memory: the workload needs
/// the rest.
const MEMORY_SHARE: f64 = 0.25;

/// Copies mounted over their originals, unmounted and removed when dropped.
pub struct Staged {
    /// The originals' paths, in the order their copies were mounted over them.
    mounted: Vec<PathBuf>,
    /// The directory holding the copies.
    copies: Option<PathBuf>,
}

impl Staged {
    fn none() -> Staged {
        Staged {
            mounted: Vec::new(),
            copies: None,
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for over in self.mounted.iter().rev() {
            let _ = unmount(over);
        }
        if let Some(dir) = &self.copies {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Copy `req`'s prepared data into a new directory under `root` (which must be on a tmpfs) and
/// mount the copy over the data's own path. When it cannot (no prepared data, `root` not in
/// memory, too little memory, a failed copy or mount) the data stays where it is, and the
/// placement says why.
pub fn stage(req: &RunRequest, root: &Path) -> (Staged, DataPlacement) {
    let not = |bytes: u64, why: String| (Staged::none(), DataPlacement::stayed(bytes, why));
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
        return (Staged::none(), DataPlacement::copied(bytes, 0.0));
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
            mounted: vec![from],
            copies: Some(to),
        },
        DataPlacement::copied(bytes, started.elapsed().as_secs_f64()),
    )
}

/// Copy every file `programs` exec (each program, the shared libraries `ldd` lists for it, the
/// loader's cache) into a new directory under `root` (on a tmpfs) and mount each copy over its
/// original. Files already in memory are left alone; a file that cannot be copied or mounted
/// stays where it is and is named in the placement.
pub fn stage_programs(programs: &[String], root: &Path) -> (Staged, ProgramPlacement) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut skipped = Vec::new();
    for p in programs {
        match program_files(Path::new(p)) {
            Ok(found) => files.extend(found),
            Err(why) => skipped.push(format!("{p}: {why}")),
        }
    }
    if !files.is_empty() {
        files.push(PathBuf::from("/etc/ld.so.cache"));
    }
    let files = unique_on_disk(files, &mut skipped);
    stage_files(&files, root, skipped)
}

/// Copy each of `files` (canonical paths) under `root` and mount the copy over it.
fn stage_files(
    files: &[PathBuf],
    root: &Path,
    mut skipped: Vec<String>,
) -> (Staged, ProgramPlacement) {
    let not = |why: String, skipped: Vec<String>| {
        (Staged::none(), ProgramPlacement::stayed(why, skipped))
    };
    if files.is_empty() {
        return not("no program of the case to copy".into(), skipped);
    }
    let dir = match std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create {}: {e}", root.display()))
        .and_then(|()| on_tmpfs(root))
        .and_then(|()| {
            (0..1000)
                .map(|i| root.join(format!("programs-{i}")))
                .find(|p| std::fs::create_dir(p).is_ok())
                .ok_or_else(|| format!("no free directory name in {}", root.display()))
        }) {
        Ok(d) => d,
        Err(why) => return not(why, skipped),
    };
    let started = Instant::now();
    let mut staged = Staged {
        mounted: Vec::new(),
        copies: Some(dir.clone()),
    };
    let mut bytes = 0;
    for (i, file) in files.iter().enumerate() {
        let copy = dir.join(i.to_string());
        let done = std::fs::copy(file, &copy)
            .map_err(|e| format!("cannot copy it: {e}"))
            .and_then(|n| bind(&copy, file).map(|()| n));
        match done {
            Ok(n) => {
                bytes += n;
                staged.mounted.push(file.clone());
            }
            Err(why) => {
                let _ = std::fs::remove_file(&copy);
                skipped.push(format!("{}: {why}", file.display()));
            }
        }
    }
    let placement = ProgramPlacement {
        files: staged.mounted.len(),
        bytes,
        copy_s: started.elapsed().as_secs_f64(),
        why_not: None,
        skipped,
    };
    (staged, placement)
}

/// A program's own file and the shared libraries it loads (with the loader), canonical.
fn program_files(program: &Path) -> Result<Vec<PathBuf>, String> {
    let exe = std::fs::canonicalize(program).map_err(|e| e.to_string())?;
    let mut files = vec![exe.clone()];
    // ldd asks the loader to resolve the libraries without running the program; a script or a
    // static program has none, and ldd says so with a non-zero exit.
    if let Ok(out) = std::process::Command::new("ldd").arg(&exe).output() {
        if out.status.success() {
            files.extend(ldd_paths(&String::from_utf8_lossy(&out.stdout)));
        }
    }
    Ok(files)
}

/// The files in `ldd`'s output: `libc.so.6 => /lib/…/libc.so.6 (0x…)` and the loader's
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; not the vDSO, which is no file.
fn ldd_paths(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.trim(),
                None => line.trim(),
            };
            let path = path.split(" (").next().unwrap_or("").trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Canonical, each once, and only what is not in memory already.
fn unique_on_disk(files: Vec<PathBuf>, skipped: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for f in files {
        let Ok(real) = std::fs::canonicalize(&f) else {
            skipped.push(format!("{}: not found", f.display()));
            continue;
        };
        if out.contains(&real) || on_tmpfs(&real).is_ok() {
            continue;
        }
        out.push(real);
    }
    out
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

/// Whether `path` (a file or a directory) lives on a tmpfs.
fn on_tmpfs(path: &Path) -> Result<(), String> {
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "cannot stat {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    if st.f_type as i64 == TMPFS_MAGIC {
        Ok(())
    } else {
        Err(format!("{} is not in memory (not a tmpfs)", path.display()))
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

    /// Where a mounting test keeps its copies, after checking it can mount at all.
    fn mountable_tmpfs() -> &'static Path {
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
        shm
    }

    #[test]
    fn data_on_a_tmpfs_is_read_from_the_copy_at_its_own_path_until_it_is_dropped() {
        let shm = mountable_tmpfs();
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
    fn ldd_output_gives_the_libraries_and_the_loader_but_not_the_vdso() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd1a5f2000)\n\
                   \tlibpcre2-8.so.0 => /lib/x86_64-linux-gnu/libpcre2-8.so.0 (0x00007f0c)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0b)\n\
                   \tlibgone.so.1 => not found\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0d)\n";
        assert_eq!(
            ldd_paths(out),
            [
                "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        assert!(ldd_paths("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn a_program_comes_with_its_libraries_as_canonical_paths() {
        // `sh` is on every machine this runs on, and dynamically linked on Debian.
        let files = program_files(Path::new("/bin/sh")).unwrap();
        assert_eq!(files[0], std::fs::canonicalize("/bin/sh").unwrap());
        assert!(
            files.iter().any(|f| f
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))),
            "{files:?}"
        );
        let mut skipped = Vec::new();
        let unique = unique_on_disk([files.clone(), files.clone()].concat(), &mut skipped);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert!(unique.len() <= files.len() && unique.iter().all(|f| f.is_absolute()));
        assert!(program_files(Path::new("/nonexistent/prog")).is_err());
    }

    #[test]
    fn files_staged_in_memory_are_read_from_the_copies_until_dropped() {
        let shm = mountable_tmpfs();
        // On a disk, beside the sources: neither libraries of this machine nor its loader
        // cache are touched.
        let src = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let prog = src.path().join("prog");
        let lib = src.path().join("lib.so");
        std::fs::write(&prog, "#!/bin/sh\necho staged\n").unwrap();
        std::fs::write(&lib, vec![1u8; 3000]).unwrap();
        let root = tempfile::tempdir_in(shm).unwrap();
        let missing = src.path().join("gone");
        let mut skipped = Vec::new();
        let files = unique_on_disk(vec![prog.clone(), lib.clone(), missing], &mut skipped);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let (staged, placement) = stage_files(&files, root.path(), skipped);
        assert_eq!(placement.files, 2, "{placement:?}");
        assert_eq!(placement.bytes, 3000 + 22);
        assert!(placement.why_not.is_none());
        assert!(
            placement.describe().contains("1 stayed on virtio-fs"),
            "{}",
            placement.describe()
        );
        for f in [&prog, &lib] {
            assert!(on_tmpfs(f).is_ok(), "{} is the copy", f.display());
        }
        assert_eq!(std::fs::read(&lib).unwrap().len(), 3000);
        drop(staged);
        assert!(
            std::fs::read_dir(root.path()).unwrap().next().is_none(),
            "the copies go with their guard"
        );
        assert!(on_tmpfs(src.path()).is_err());
        assert_eq!(
            std::fs::read(&lib).unwrap().len(),
            3000,
            "the original shows again"
        );
        let (_none, nothing) = stage_files(&[], root.path(), Vec::new());
        assert_eq!(nothing.files, 0);
        assert!(nothing.why_not.is_some());
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
