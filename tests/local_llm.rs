//! The real thing: `schedgen generate` with a real model behind a real OpenAI-compatible
//! server, Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) served by llama-cpp-python on loopback, as
//! `scripts/local-llm.sh` installs and starts it (`.ci/run` installs it). The model's
//! candidates go through extraction, the static checks, compile and verify in the sandbox VM.
//!
//! It fails, never skips, when the server cannot be started.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn require_vm() {
    assert!(
        std::env::var("SCHEDGEN_SKIP_VM").as_deref() != Ok("1"),
        "SCHEDGEN_SKIP_VM=1: this test needs the sandbox VM and cannot run; leave it out with `cargo test -- --skip <name>` instead"
    );
}

fn script(action: &str) -> std::process::Output {
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-llm.sh"))
        .arg(action)
        .output()
        .unwrap()
}

fn env_of_script() -> (String, String) {
    let out = String::from_utf8(script("env").stdout).unwrap();
    let get = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .unwrap_or_else(|| panic!("local-llm.sh env printed no {key}: {out}"))
            .to_string()
    };
    (get("OPENAI_BASE_URL"), get("SCHEDGEN_MODEL"))
}

/// Stops the server when the test ends, however it ends.
struct Server;

impl Drop for Server {
    fn drop(&mut self) {
        script("stop");
    }
}

#[test]
fn a_real_model_goes_through_compile_and_verify() {
    require_vm();
    let started = script("start");
    assert!(
        started.status.success(),
        "the local model server did not start (install it with `scripts/local-llm.sh install`; \
         .ci/run does):\n{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let _server = Server;
    let (base_url, model) = env_of_script();

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for sub in ["cases", "assets", "bpf-reference", "prompts"] {
        std::os::unix::fs::symlink(repo.join(sub), root.path().join(sub)).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .arg("--root")
        .arg(root.path())
        .args(["generate", "--test", "ctest_suite", "--provider", "openai"])
        .args(["--base-url", &base_url, "--model", &model])
        .args(["--verify-only", "--max-rounds", "1", "--max-attempts", "3"])
        .args([
            "--seed",
            "1",
            "--llm-timeout",
            "900",
            "--verify-duration",
            "4",
        ])
        .current_dir(root.path())
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let all = format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let runs = root.path().join("runs");
    let stamp = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("no runs/ ({e}): {all}"))
        .flatten()
        .next()
        .unwrap()
        .path();
    let gen: Value = serde_json::from_str(
        &std::fs::read_to_string(stamp.join("ctest_suite/generation.json"))
            .unwrap_or_else(|e| panic!("no generation.json ({e}): {all}")),
    )
    .unwrap();
    let attempts = gen["attempts"].as_array().unwrap();
    assert!(!attempts.is_empty(), "{all}");
    // Real calls: the server counted real tokens and named the model it served.
    for a in attempts {
        let call = &a["call"];
        assert!(
            call["usage"]["prompt_tokens"].as_u64().unwrap() > 1000,
            "{a}"
        );
        assert!(
            call["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{a}"
        );
    }
    // At least one candidate got past extraction, the static checks and the compiler, and was
    // run in the sandbox's kernel (whatever the kernel then made of it).
    let verified_in_the_vm = attempts.iter().any(|a| {
        !matches!(
            a["outcome"].as_str().unwrap(),
            "llm_error" | "no_code" | "static_check" | "compile_error"
        )
    });
    assert!(
        verified_in_the_vm,
        "no candidate got through compile to verify: {all}"
    );
    // A loopback model costs nothing per token.
    assert_eq!(gen["cost_usd"], 0.0, "{all}");
    println!(
        "attempts: {:?}; contributions: {:?}; verified: {}",
        attempts
            .iter()
            .map(|a| a["outcome"].clone())
            .collect::<Vec<_>>(),
        attempts
            .iter()
            .map(|a| a["contribution"]["kind"].clone())
            .collect::<Vec<_>>(),
        gen["verified"]
    );
}
