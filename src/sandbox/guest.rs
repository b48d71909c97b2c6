//! PID 1 inside the VM: schedgen itself, started by the kernel as `init`.
//!
//! The root is the host's filesystem, read-only over virtiofs, and there is no initramfs, so
//! init sets up the few kernel filesystems a job needs, mounts the job directory (the second
//! virtiofs share), executes the job with the same code the host uses, writes the result, and
//! powers the VM off. PID 1 must never exit (the kernel would panic), so every failure,
//! panics included, ends in a power-off after a message on the console.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use super::exec::{self, ExecIo};
use super::job::{self, Job, JobResult};

/// virtiofs tag of the job directory share.
pub const JOB_TAG: &str = "schedgenjob";
/// Where the guest mounts it (on the tmpfs at /run, because the root is read-only and the host's
/// /tmp is hidden by the guest's own).
pub const GUEST_JOB_DIR: &str = "/run/schedgen-job";

/// The guest init's whole life. Never returns.
pub fn main() -> ! {
    // Run anywhere else, this would mount over /tmp and power the machine off.
    if std::process::id() != 1 {
        console(
            "schedgen: guest-init only runs as PID 1 inside schedgen's VM; use `schedgen vm run`",
        );
        std::process::exit(2);
    }
    let outcome = std::panic::catch_unwind(run);
    let message = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(_) => Some("guest init panicked".to_string()),
    };
    if let Some(m) = message {
        console(&format!("schedgen guest init: error: {m}"));
        let failed = JobResult {
            error: Some(m),
            ..Default::default()
        };
        let _ = job::write_json(&Path::new(GUEST_JOB_DIR).join(job::RESULT_FILE), &failed);
    }
    power_off()
}

fn console(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn run() -> Result<()> {
    mount_kernel_filesystems()?;
    let boot = std::fs::read_to_string("/proc/uptime").ok().and_then(|s| {
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
    });
    std::fs::create_dir_all(GUEST_JOB_DIR).context("cannot create the job mount point")?;
    mount(JOB_TAG, GUEST_JOB_DIR, "virtiofs", 0, "")
        .context("cannot mount the job directory share")?;
    let dir = Path::new(GUEST_JOB_DIR);
    show_kernel_config(dir);
    let job: Job = job::read_json(&dir.join(job::JOB_FILE))?;
    let create = |name: &str| {
        File::create(dir.join(name))
            .with_context(|| format!("cannot create {name} in the job directory"))
    };
    let io = ExecIo {
        stdout: Stdio::from(create(job::STDOUT_FILE)?),
        stderr: Stdio::from(create(job::STDERR_FILE)?),
        started_marker: Some(dir.join(job::STARTED_FILE)),
    };
    let mut result = exec::execute(&job, io);
    result.guest_boot_secs = boot;
    job::write_json(&dir.join(job::RESULT_FILE), &result)
}

/// Production loaders (libbpf) refuse a program with `CONFIG_*` externs when they find no
/// config for the running kernel; the shared root's /boot is the host's, so a tmpfs over it
/// holds the guest kernel's. Jobs that need no config run on without it.
fn show_kernel_config(job_dir: &Path) {
    let Ok(config) = std::fs::read(job_dir.join(job::KERNEL_CONFIG_FILE)) else {
        return;
    };
    let release = match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(r) => r.trim().to_string(),
        Err(_) => return,
    };
    if mount("tmpfs", "/boot", "tmpfs", libc::MS_NOSUID, "").is_ok() {
        let _ = std::fs::write(format!("/boot/config-{release}"), config);
    }
}

fn mount_kernel_filesystems() -> Result<()> {
    let required = [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("tmpfs", "/tmp", "tmpfs"),
        ("tmpfs", "/run", "tmpfs"),
    ];
    for (src, target, fstype) in required {
        mount(src, target, fstype, libc::MS_NOSUID, "")
            .with_context(|| format!("cannot mount {fstype} on {target}"))?;
    }
    // Useful to schedulers and their loaders; a kernel without them still runs plain jobs.
    let optional = [
        ("bpf", "/sys/fs/bpf", "bpf"),
        ("cgroup2", "/sys/fs/cgroup", "cgroup2"),
        ("tracefs", "/sys/kernel/tracing", "tracefs"),
        ("debugfs", "/sys/kernel/debug", "debugfs"),
    ];
    for (src, target, fstype) in optional {
        let _ = mount(src, target, fstype, 0, "");
    }
    let _ = std::fs::create_dir_all("/dev/pts");
    let _ = mount("devpts", "/dev/pts", "devpts", 0, "");
    let _ = std::fs::create_dir_all("/dev/shm");
    let _ = mount("tmpfs", "/dev/shm", "tmpfs", 0, "");
    Ok(())
}

fn mount(src: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> Result<()> {
    let c = |s: &str| CString::new(s).expect("no NUL in mount arguments");
    let (src, target_c, fstype, data) = (c(src), c(target), c(fstype), c(data));
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        bail!("mount {target}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; reboot only returns on failure.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    console("schedgen guest init: power-off failed; waiting for the host's timeout");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
