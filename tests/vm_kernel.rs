//! The fetched kernel end to end: a second fetch is a no-op, and a scheduler compiled against
//! the generated `vmlinux.h` + `kfuncs.h` passes the guest kernel's verifier (its kfunc calls
//! resolve), which is the whole point of generating the headers from that kernel's BTF.
//!
//! They need `schedgen kernel fetch` to have run (CI does it first) and clang-19;
//! a missing one is a failure, not a skip.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

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

fn schedgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("run schedgen")
}

/// `schedgen vm run` of a command that is safe to repeat, booted again (at most twice more) when
/// the guest kernel crashed under it: multi-threaded TCG now and then runs stale code across the
/// text patch of a sched_ext enable (`Oops: int3`), which is the emulator's fault, not the test's.
fn vm_run_repeatable(args: &[&str]) -> Output {
    let mut out = schedgen(args);
    for _ in 0..2 {
        let stderr = text(&out.stderr);
        if out.status.success() || !stderr.contains("the guest kernel crashed while the job ran") {
            break;
        }
        eprintln!("the guest kernel crashed (emulator); running again:\n{stderr}");
        out = schedgen(args);
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The directory holding the selected kernel's vmlinux.h and kfuncs.h.
fn header_dir() -> PathBuf {
    let out = schedgen(&["kernel", "info", "--json"]);
    assert!(
        out.status.success(),
        "kernel info: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = info["selected"]["Ok"]["kfuncs_h"]
        .as_str()
        .unwrap_or_else(|| panic!("no kfuncs.h in {info:#}"));
    PathBuf::from(h).parent().unwrap().to_path_buf()
}

#[test]
fn a_second_fetch_is_a_no_op() {
    require_vm();
    let out = schedgen(&["kernel", "fetch"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("already cached"),
        "{}",
        text(&out.stdout)
    );
}

/// A two-callback global FIFO written against the generated headers only.
const FIFO: &str = r#"
#include "vmlinux.h"
#include "kfuncs.h"
#define SEC(n) __attribute__((section(n), used))
char _license[] SEC("license") = "GPL";

SEC("struct_ops/fifo_enqueue")
int fifo_enqueue(unsigned long long *ctx)
{
	scx_bpf_dsq_insert((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

SEC("struct_ops/fifo_dispatch")
int fifo_dispatch(unsigned long long *ctx)
{
	scx_bpf_dsq_move_to_local___v2(SCX_DSQ_GLOBAL, 0);
	return 0;
}

SEC(".struct_ops")
struct sched_ext_ops fifo_ops = {
	.enqueue = (void *)fifo_enqueue,
	.dispatch = (void *)fifo_dispatch,
	.name = "schedgen_fifo",
};
"#;

#[test]
fn generated_headers_compile_and_pass_the_guest_verifier() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let headers = header_dir();
    // Not under /tmp: the guest has its own /tmp.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm_kernel");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("fifo.bpf.c");
    let obj = dir.join("fifo.bpf.o");
    std::fs::write(&src, FIFO).unwrap();
    // The kernel embeds tagged anonymous structs (`struct ns_tree;` inside a union), which
    // vmlinux.h reproduces: without -fms-extensions clang drops those members.
    let out = Command::new("clang-19")
        .args([
            "-fms-extensions",
            "-Wno-microsoft-anon-tag",
            "-g",
            "-O2",
            "-target",
            "bpf",
        ])
        .args(["-D__TARGET_ARCH_x86", "-Werror", "-c"])
        .arg("-I")
        .arg(&headers)
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("clang-19 is needed: apt-get install clang-19");
    assert!(out.status.success(), "clang-19: {}", text(&out.stderr));

    let obj = obj.to_string_lossy().into_owned();
    let out = vm_run_repeatable(&[
        "vm",
        "run",
        "--timeout",
        "90",
        "--",
        "bpftool",
        "struct_ops",
        "register",
        &obj,
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // bpftool reports on stderr.
    assert!(
        stderr.contains("Registered sched_ext_ops fifo_ops"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
}

/// A user's kernel given by path (here a copy of the fetched one, so neither its manifest nor
/// its vmlinux is found): it boots from its bzImage, and headers are generated on demand.
#[test]
fn a_user_kernel_boots_and_gets_headers() {
    require_vm();
    let _turn = VM.lock().unwrap_or_else(|e| e.into_inner());
    let cached = schedgen::kernel::select(None).expect("run `schedgen kernel fetch` first");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schedgen-test-kernel");
    std::fs::create_dir_all(&dir).unwrap();
    let vmlinuz = dir.join("vmlinuz");
    std::fs::copy(&cached.vmlinuz, &vmlinuz).unwrap();
    std::fs::copy(&cached.config, dir.join("config")).unwrap();

    let k = schedgen::kernel::from_user_path(&vmlinuz).unwrap();
    assert_eq!(k.source, schedgen::kernel::KernelSource::User);
    assert!(k.vmlinux.is_none() && k.vmlinux_h.is_none());
    let headers = schedgen::kernel::header_dir(&k).unwrap();
    let kfuncs = std::fs::read_to_string(headers.join("kfuncs.h")).unwrap();
    assert!(kfuncs.contains(" scx_bpf_dsq_insert("), "{kfuncs}");
    assert!(headers.join("vmlinux.h").is_file());
    std::fs::remove_dir_all(&headers).unwrap();

    let vmlinuz = vmlinuz.to_string_lossy().into_owned();
    let out = schedgen(&[
        "--kernel",
        &vmlinuz,
        "vm",
        "run",
        "--timeout",
        "90",
        "--",
        "uname",
        "-r",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), cached.release);
}
