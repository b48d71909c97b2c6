//! `schedgen benchmark --against` with a real production scheduler (scx_bpfland from the
//! registry, in schedgen's cache) in the sandbox VM: it runs as an arm of its own, confirmed
//! enabled under its own name, and the report gives its cut and the candidate's cut against it.
//! Needs `schedgen kernel fetch` and `schedgen deps --install --production bpfland`
//! (scripts/setup.sh --tests does both).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn require_vm() {
    assert!(
        std::env::var("SCHEDGEN_SKIP_VM").as_deref() != Ok("1"),
        "SCHEDGEN_SKIP_VM=1: this test needs the sandbox VM and cannot run; leave it out with `cargo test -- --skip <name>` instead"
    );
}

#[test]
fn bpfland_runs_as_an_arm_of_its_own() {
    require_vm();
    let root = env!("CARGO_MANIFEST_DIR");
    let save = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .args(["--root", root, "benchmark", "--test", "ctest_suite"])
        .args([
            "--reference",
            "fifo",
            "--against",
            "bpfland",
            "--no-ablation",
        ])
        .args([
            "--scale",
            "0.03",
            "--runs",
            "2",
            "--min-runs",
            "2",
            "--warmup",
            "0",
        ])
        .args(["--order-seed", "7", "--save"])
        .arg(save.path())
        .current_dir(root)
        .output()
        .unwrap();
    let all = format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The verdict may be PASS or FAIL at this tiny size; the tool itself must have worked.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("scx_bpfland") && stdout.contains("the candidate against it"),
        "{all}"
    );
    assert!(stdout.contains("order seed 7"), "{all}");

    let bench: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(save.path()).join("bench.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(bench["order_seed"], 7);
    let case = &bench["cases"][0];
    assert!(case["error"].is_null(), "{case}");
    let runs: Vec<&Value> = case["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["arm"] == serde_json::json!({"production": 0}))
        .collect();
    assert_eq!(runs.len(), 2, "{case}");
    for r in &runs {
        assert_eq!(r["valid"], true, "{r}");
        // scx names its ops after the scheduler, with its version after it.
        assert!(
            r["scheduler"]
                .as_str()
                .unwrap()
                .starts_with("sched_ext:bpfland"),
            "{r}"
        );
    }
    let arm = &case["production"][0];
    assert_eq!(arm["name"], "bpfland");
    assert_eq!(arm["stats"]["n"], 2);
    assert!(arm["cut"]["cut"].is_number(), "{arm}");
    assert!(arm["candidate_vs"]["cut"].is_number(), "{arm}");
    assert_ne!(arm["version"], "unknown", "{arm}");
}
