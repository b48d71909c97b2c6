//! `schedgen vm run` end to end: a real QEMU booting the fetched sched_ext kernel, with
//! schedgen as the guest's PID 1. Slow (a boot under TCG is about 5 s), so the tests take turns.
//!
//! They need `schedgen kernel fetch` to have run. A missing kernel, QEMU or virtiofsd is a failure, not a
//! skip.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One VM at a time: the machine has few cores.
static VM: Mutex<()> = Mutex::new(());

/// VM tests never pass without running: with `SCHEDGEN_SKIP_VM=1` they fail, saying how to
/// leave them out instead (`cargo test -- --skip NAME`).
fn require_vm() {
    assert!(
        std::env::var("SCHEDGEN_SKIP_VM").as_deref() != Ok("1"),
        "SCHEDGEN_SKIP_VM=1: this test needs the sandbox VM and cannot run; leave it out with `cargo test -- --skip <name>` instead"
    );
}

fn schedgen() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_schedgen"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn vm_run(args: &[&str]) -> Output {
    schedgen()
        .args(["vm", "run"])
        .args(args)
        .output()
        .expect("run schedgen")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The run directory holding virtiofsd sockets (same rule as the crate's cache root).
fn run_dir() -> std::path::PathBuf {
    schedgen::workload::prepare::cache_root().join("vm/run")
}

/// Nothing of the schedgen process `pid` survives: no QEMU or virtiofsd naming its sockets or
/// job directory, no socket file.
fn assert_nothing_left(pid: u32, job_dir: Option<&str>) {
    let prefix = format!("{pid}-");
    let left: Vec<String> = std::fs::read_dir(run_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "sockets left behind: {left:?}");
    let mut patterns = vec![format!("vm/run/{pid}-")];
    patterns.extend(job_dir.map(str::to_string));
    for p in patterns {
        let out = Command::new("pgrep")
            .args(["-a", "-f", &p])
            .output()
            .unwrap();
        let procs = text(&out.stdout);
        assert!(
            procs.trim().is_empty(),
            "processes left behind matching {p}:\n{procs}"
        );
    }
}

/// Run `schedgen vm run ARGS` to its end with `env` set: its pid, its output and how long it took.
fn vm_run_watched(env: &[(&str, &str)], args: &[&str]) -> (u32, Output, Duration) {
    let start = Instant::now();
    let child = schedgen()
        .envs(env.iter().copied())
        .args(["vm", "run"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    (pid, out, start.elapsed())
}

/// The job directory named in an error message's "(full log: <dir>/console.log)".
fn job_dir_in(stderr: &str) -> Option<String> {
    let start = stderr.find("(full log: ")? + "(full log: ".len();
    let path = &stderr[start..];
    let end = path.find("/console.log")?;
    Some(path[..end].to_string())
}

#[test]
fn exit_status_comes_back_and_output_is_streamed() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let mut child: Child = schedgen()
        .args(["vm", "run", "--timeout", "60", "--"])
        .args([
            "sh",
            "-c",
            "echo first line; sleep 3; echo to stderr >&2; exit 3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let first_at = Instant::now();
    assert_eq!(first.trim(), "first line");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        first_at.elapsed() >= Duration::from_secs(2),
        "the first line arrived only at the end: output is not streamed"
    );
    assert_eq!(status.code(), Some(3), "stderr: {err}");
    assert!(err.contains("to stderr"), "stderr: {err}");
    assert!(err.contains("VM start to job start"), "stderr: {err}");
    assert_nothing_left(child.id(), None);
}

#[test]
fn the_guest_kernel_has_sched_ext() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let out = vm_run(&[
        "--timeout",
        "60",
        "--",
        "cat",
        "/sys/kernel/sched_ext/state",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let state = text(&out.stdout);
    assert!(
        ["disabled", "enabled"].contains(&state.trim()),
        "unexpected sched_ext state {state:?}"
    );
}

/// A guest kernel that dies under the command is named as such, with its panic line, so that a
/// caller can tell the emulator's crash from the command's failure (and `vm run` does not run
/// the command again on its own: it may not be safe to repeat).
#[test]
fn a_guest_kernel_crash_under_the_command_is_named() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let out = vm_run(&[
        "--timeout",
        "60",
        "--",
        "sh",
        "-c",
        "echo c > /proc/sysrq-trigger",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains("the guest kernel crashed while the job ran")
            && err.contains("sysrq triggered crash"),
        "{err}"
    );
}

/// The guest does not zero page-cache pages it is about to fill: emulated, that zeroing was
/// most of a file-reading task's kernel time. The kernel reports its choice as it boots.
#[test]
fn the_guest_kernel_does_not_zero_pages_on_allocation() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let out = vm_run(&["--timeout", "60", "--", "dmesg"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let log = text(&out.stdout);
    let line = log
        .lines()
        .find(|l| l.contains("mem auto-init:"))
        .unwrap_or_else(|| panic!("no `mem auto-init` line in the guest's dmesg:\n{log}"));
    assert!(line.contains("heap alloc:off"), "{line}");
}

#[test]
fn a_timeout_kills_the_vm_and_its_helpers() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let (pid, out, took) = vm_run_watched(&[], &["--timeout", "8", "--", "sleep", "600"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "stderr: {err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(err.contains("timeout"), "stderr: {err}");
    let job_dir = job_dir_in(&err).expect("the error names the console log");
    assert!(
        Path::new(&job_dir).join("console.log").is_file(),
        "console log kept"
    );
    assert_nothing_left(pid, Some(&job_dir));
}

#[test]
fn ctrl_c_stops_the_vm_and_its_helpers() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = schedgen()
        .args([
            "vm",
            "run",
            "--timeout",
            "60",
            "--",
            "sh",
            "-c",
            "echo up; sleep 600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "up");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_nothing_left(pid, None);
}

#[test]
fn a_bad_kernel_path_is_explained() {
    let out = schedgen()
        .args([
            "--kernel",
            "/nonexistent/vmlinuz",
            "vm",
            "run",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--kernel /nonexistent/vmlinuz: no such file"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let vmlinuz = dir.path().join("vmlinuz");
    std::fs::write(&vmlinuz, b"not a kernel").unwrap();
    let out = schedgen()
        .arg("--kernel")
        .arg(&vmlinuz)
        .args(["vm", "run", "--", "true"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("build configuration is missing"), "{err}");

    std::fs::write(
        dir.path().join("config"),
        "# CONFIG_SCHED_CLASS_EXT is not set\nCONFIG_VIRTIO_FS=m\n",
    )
    .unwrap();
    let out = schedgen()
        .arg("--kernel")
        .arg(&vmlinuz)
        .args(["vm", "run", "--", "true"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CONFIG_SCHED_CLASS_EXT (not set)"), "{err}");
    assert!(err.contains("CONFIG_VIRTIO_FS (is m, needs y)"), "{err}");
}

/// A guest that never reaches the job (here: a boot deadline no boot can meet) is booted once
/// more, then reported as hung, with the first boot's console kept and nothing left running.
#[test]
fn a_boot_that_hangs_is_tried_again_then_named() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let (pid, out, took) = vm_run_watched(
        &[("SCHEDGEN_VM_BOOT_DEADLINE", "0.2")],
        &["--timeout", "60", "--", "true"],
    );
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "stderr: {err}");
    assert_eq!(
        err.matches("did not reach the job within 0.2 s").count(),
        1,
        "one retry: {err}"
    );
    assert!(err.contains("hung while booting, twice"), "{err}");
    assert!(
        took < Duration::from_secs(20),
        "the deadline, not the timeout, ended it: {took:?}"
    );
    let job_dir = job_dir_in(&err).expect("the error names the console log");
    assert!(Path::new(&job_dir).join("console-boot1.log").is_file());
    assert_nothing_left(pid, Some(&job_dir));
}
