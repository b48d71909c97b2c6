//! Schedulers written in scx's dialect (`#include <scx/common.bpf.h>`), as the ecosystem writes
//! them: scx's own examples compile against scx's headers, load with their enum slots filled
//! from the kernel, take `--set` knobs and pass verify in the sandbox VM; their exits are
//! reported with the scheduler's message; `schedgen port` brings a 6.12-API scheduler to a
//! passing verify with no model. Needs `schedgen kernel fetch` (CI does it), which also fetches
//! scx's headers.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

mod support;
use support::fake_openai::{FakeOpenAi, Step};

/// One VM at a time: this machine has 2 cores and a VM gets both.
static VM: Mutex<()> = Mutex::new(());

fn require_vm() {
    assert!(
        std::env::var("SCHEDGEN_SKIP_VM").as_deref() != Ok("1"),
        "SCHEDGEN_SKIP_VM=1: this test needs the sandbox VM and cannot run; leave it out with `cargo test -- --skip <name>` instead"
    );
}

fn schedgen(args: &[&str]) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .args(["--root", root])
        .args(args)
        .current_dir(root)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture(name: &str) -> String {
    Path::new("tests/fixtures/scx")
        .join(name)
        .display()
        .to_string()
}

fn verify(file: &str, extra: &[&str]) -> (i32, Value) {
    require_vm();
    let _one = VM.lock().unwrap_or_else(|e| e.into_inner());
    let mut args = vec!["verify", file, "--json", "--duration", "4"];
    args.extend_from_slice(extra);
    let o = schedgen(&args);
    let json: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e})\n{}", text(&o)));
    (o.status.code().unwrap_or(-1), json)
}

fn assert_passes(file: &str, extra: &[&str], ops: &str) -> Value {
    let (code, j) = verify(&fixture(file), extra);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["passed"], true);
    assert_eq!(j["compile"]["dialect"], "scx");
    assert!(j["compile"]["scx_headers"].is_string(), "{}", j["compile"]);
    assert_eq!(j["runtime"]["ops_name"], ops, "{}", j["runtime"]);
    // Its own UEI_RECORD'd exit: we unregistered it, nothing went wrong.
    let exit = &j["runtime"]["exit"];
    assert_eq!(exit["class"], "clean", "{exit}");
    assert_eq!(exit["source"], "scheduler", "{exit}");
    j
}

#[test]
fn scx_examples_compile_on_the_host() {
    for f in [
        "scx_simple.bpf.c",
        "scx_qmap.bpf.c",
        "scx_central.bpf.c",
        "scx_prev.bpf.c",
    ] {
        let o = schedgen(&["compile", &fixture(f), "--json"]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", text(&o));
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["ok"], true, "{f}");
        assert_eq!(j["dialect"], "scx");
        // Written against early-2026 headers: the three that call the one-argument
        // move_to_local (and qmap's __COMPAT_ wrappers) compile with scx 1.0.27, not 1.1.
        let expected = if f == "scx_prev.bpf.c" {
            "1.1.4"
        } else {
            "1.0.27"
        };
        assert_eq!(j["scx_headers"], expected, "{f}");
    }
}

#[test]
fn scx_simple_passes() {
    assert_passes("scx_simple.bpf.c", &[], "simple");
}

#[test]
fn scx_qmap_passes_with_its_slice_set_and_lists_its_knobs() {
    let j = assert_passes("scx_qmap.bpf.c", &["--set", "slice_ns=20000000"], "qmap");
    let knobs = j["knobs"].as_array().unwrap();
    let slice = knobs
        .iter()
        .find(|k| k["name"] == "slice_ns")
        .unwrap_or_else(|| panic!("no slice_ns in {knobs:?}"));
    assert_eq!(slice["type"], "u64");
    assert_eq!(
        slice["default"], "0",
        "the compiled-in default, not the one set"
    );
    assert!(
        !knobs
            .iter()
            .any(|k| k["name"].as_str().unwrap().starts_with("__SCX_")),
        "scx's enum slots are filled by the loader, not knobs"
    );
}

#[test]
fn scx_central_passes_with_its_cpus_set() {
    // As scx_central's own loader does: the CPU count and a slice in its knobs, and attach
    // from the central CPU (its init refuses to run anywhere else). Its per-CPU arrays are
    // resized to the possible CPUs by the loader.
    assert_passes(
        "scx_central.bpf.c",
        &[
            "--set",
            "nr_cpu_ids=2",
            "--set",
            "central_cpu=0",
            "--set",
            "slice_ns=20000000",
            "--attach-cpu",
            "0",
        ],
        "central",
    );
}

#[test]
fn scx_prev_passes() {
    assert_passes("scx_prev.bpf.c", &[], "prev");
}

#[test]
fn a_misspelt_knob_is_refused_before_booting() {
    let o = schedgen(&[
        "verify",
        &fixture("scx_qmap.bpf.c"),
        "--set",
        "slice_nsec=1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`slice_nsec` is not a knob") && err.contains("slice_ns"),
        "{err}"
    );
}

#[test]
fn scx_bpf_error_without_exit_info_is_reported_with_its_message() {
    let (code, j) = verify(&fixture("gives_up.bpf.c"), &[]);
    assert_eq!(code, 15, "{j:#}");
    let exit = &j["runtime"]["exit"];
    assert_eq!(exit["class"], "bpf_error", "{exit}");
    assert_eq!(exit["source"], "kernel_log", "{exit}");
    assert!(
        exit["msg"]
            .as_str()
            .unwrap()
            .contains("gave up after 20 runs"),
        "{exit}"
    );
}

#[test]
fn moving_from_the_global_dsq_is_ejected_with_the_kernels_reason() {
    let (code, j) = verify(&fixture("global_move.bpf.c"), &[]);
    assert_eq!(code, 16, "{j:#}");
    let exit = &j["runtime"]["exit"];
    assert_eq!(exit["class"], "kernel_error", "{exit}");
    let all = format!("{} {}", exit["reason"], exit["msg"]).to_lowercase();
    assert!(all.contains("invalid dsq"), "{exit}");
    // scx's UEI keeps the kernel's debug dump; the JSON has all of it.
    assert!(
        exit["dump"].as_str().is_some_and(|d| !d.is_empty()),
        "{exit}"
    );
}

#[test]
fn port_brings_a_6_12_scheduler_to_a_passing_verify_without_a_model() {
    require_vm();
    let _one = VM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = dir.path().join("oldfifo.bpf.c");
    let input = fixture("old_api_fifo.bpf.c");
    let before = std::fs::read(&input).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .args(["--root", env!("CARGO_MANIFEST_DIR")])
        .args(["port", &input, "-o"])
        .arg(&out)
        .args(["--duration", "4", "--provider", "offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input changed");
    let ported = std::fs::read_to_string(&out).unwrap();
    assert!(
        ported.contains("scx_bpf_dsq_insert(p, SHARED_DSQ"),
        "{ported}"
    );
    assert!(
        ported.contains("scx_bpf_dsq_move_to_local(SHARED_DSQ, 0)"),
        "{ported}"
    );
    // The calls are gone; the header comment that names them stays.
    assert!(!ported.contains("scx_bpf_dispatch(p") && !ported.contains("scx_bpf_consume(SHARED"));
    assert!(
        ported.contains("it inserts with\n * scx_bpf_dispatch()"),
        "{ported}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("-\tscx_bpf_consume(SHARED_DSQ);"),
        "the diff: {stdout}"
    );
    assert!(stdout.contains("[kernel 6.13]"), "{stdout}");
    assert!(stdout.contains("PASS"), "{stdout}");
}

#[test]
fn port_asks_a_model_for_what_the_rewrites_cannot_fix() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = dir.path().join("needfix.bpf.c");
    // The model's fix: the real kfunc for the clock, the rest as the rewrites left it.
    let fixed = std::fs::read_to_string(fixture("needs_repair.bpf.c"))
        .unwrap()
        .replace("scx_bpf_now_ns()", "scx_bpf_now()")
        .replace("scx_bpf_dispatch(", "scx_bpf_dsq_insert(")
        .replace(
            "scx_bpf_consume(SHARED_DSQ)",
            "scx_bpf_dsq_move_to_local(SHARED_DSQ, 0)",
        );
    let server = FakeOpenAi::start([Step::reply_with_usage(
        format!("Fixed:\n\n```c\n{fixed}```\n"),
        900,
        400,
    )]);
    let o = Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .args(["--root", env!("CARGO_MANIFEST_DIR")])
        .args(["port", &fixture("needs_repair.bpf.c"), "-o"])
        .arg(&out)
        .args([
            "--no-verify",
            "--json",
            "--provider",
            "openai",
            "--model",
            "m",
        ])
        .args(["--base-url", &server.base_url()])
        .env("OPENAI_API_KEY", "sk-test")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["passed"], true, "{r:#}");
    assert_eq!(r["changes"].as_array().unwrap().len(), 3, "{r:#}");
    assert_eq!(r["repairs"][0]["extracted"], true);
    assert_eq!(r["repairs"][0]["prompt_tokens"], 900);
    assert_eq!(r["prompt_version"], "port.v1");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let asked = &reqs[0].messages()[1].1;
    assert!(
        asked.contains("scx_bpf_now_ns"),
        "the compiler's error is quoted: {asked}"
    );
    assert!(
        asked.contains("scx_bpf_dsq_insert(p, SHARED_DSQ"),
        "the model sees the rewritten file, not the original: {asked}"
    );
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("scx_bpf_now()"));
}

#[test]
fn port_without_a_model_reports_what_is_left() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = dir.path().join("needfix.bpf.c");
    let o = Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .args(["--root", env!("CARGO_MANIFEST_DIR")])
        .args(["port", &fixture("needs_repair.bpf.c"), "-o"])
        .arg(&out)
        .args(["--no-verify", "--provider", "offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(10), "a compile error: {all}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("does not compile") && stdout.contains("scx_bpf_now_ns"),
        "{all}"
    );
    assert!(
        stdout.contains("+\tscx_bpf_dsq_insert(p, SHARED_DSQ"),
        "the diff: {all}"
    );
}

/// Two classes as a profile of ctest_suite would learn them.
fn ctest_classes() -> schedgen::classify::rules::ClassSet {
    use schedgen::classify::rules::{ClassSet, Rule, TaskClass};
    ClassSet {
        classes: vec![
            TaskClass {
                id: 1,
                name: "long".into(),
                rule: Rule::CommEquals {
                    value: "long_integ_test".into(),
                },
                expected_cpu_s: 2.0,
                tasks: 1,
                long: true,
            },
            TaskClass {
                id: 2,
                name: "other".into(),
                rule: Rule::Any,
                expected_cpu_s: 0.05,
                tasks: 39,
                long: false,
            },
        ],
    }
}

#[test]
fn the_scx_dialect_reference_and_offline_synthesis_pass_with_classes() {
    use schedgen::bpf::compile::Dialect;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let classes = dir.path().join("classes.json");
    std::fs::write(&classes, serde_json::to_string(&ctest_classes()).unwrap()).unwrap();
    let synth = dir.path().join("lpt_scx.bpf.c");
    std::fs::write(
        &synth,
        schedgen::generate::offline::synthesize("ctest_suite", &ctest_classes(), 1, Dialect::Scx),
    )
    .unwrap();
    for file in [
        "bpf-reference/longfirst_scx.bpf.c".to_string(),
        synth.display().to_string(),
    ] {
        let (code, j) = verify(&file, &["--classes", classes.to_str().unwrap()]);
        assert_eq!(code, 0, "{file}: {j:#}");
        assert_eq!(j["compile"]["dialect"], "scx");
        assert_eq!(
            j["runtime"]["exit"]["source"], "scheduler",
            "UEI recorded it"
        );
        assert_eq!(j["runtime"]["classifier"]["dropped"], 0, "{}", j["runtime"]);
    }
}
