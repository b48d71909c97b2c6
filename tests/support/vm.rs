//! Running schedgen's commands that need the sandbox VM.

use std::path::Path;
use std::process::Command;

/// VM tests never pass without running: with `SCHEDGEN_SKIP_VM=1` they fail, saying how to
/// leave them out.
pub fn require_vm() {
    assert!(
        std::env::var("SCHEDGEN_SKIP_VM").as_deref() != Ok("1"),
        "SCHEDGEN_SKIP_VM=1: this test needs the sandbox VM and cannot run; leave it out with `cargo test -- --skip <name>` instead"
    );
}

/// `schedgen benchmark` with `args`, one run per arm against the reference FIFO, saved to
/// `save`: its exit status, its stderr, and everything it printed (for assertion messages).
pub fn benchmark_once(save: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .args(["--root", root, "benchmark"])
        .args(args)
        .args(["--reference", "fifo", "--no-ablation"])
        .args(["--runs", "1", "--min-runs", "1", "--warmup", "0"])
        .args(["--order-seed", "3", "--save"])
        .arg(save)
        .current_dir(root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let all = format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{stderr}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
    );
    (out.status.code(), stderr, all)
}
