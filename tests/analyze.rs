//! `schedgen analyze DIR` on a saved benchmark: the table on stdout, the report and charts
//! re-rendered next to the JSON, the JSON untouched.

use std::path::Path;
use std::process::Command;

use schedgen::bench::export;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bench/bench.json"
);

fn analyze(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .arg("analyze")
        .arg(dir)
        // Not inside a checkout: analyze must not need one.
        .current_dir(dir)
        .env_remove("SCHEDGEN_ROOT")
        .output()
        .expect("schedgen runs")
}

#[test]
fn analyze_rerenders_a_saved_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    std::fs::copy(FIXTURE, &json).unwrap();
    let before = std::fs::read(&json).unwrap();

    let out = analyze(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One case failed, so the exit status says so (as `benchmark` would).
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let row = |id: &str| stdout.lines().find(|l| l.starts_with(id)).unwrap_or("");
    assert!(row("ctest_suite").contains("9.200 ± 0.158"), "{stdout}");
    assert!(row("ctest_suite").contains("PASS"), "{stdout}");
    assert!(
        row("log_processing").contains("FAIL  run 7 invalid"),
        "{stdout}"
    );
    assert!(
        row("ddos_log_analysis").contains("FAIL  setup failed"),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "no colour when stdout is a pipe");

    for f in [
        "report.md",
        "bars.svg",
        "timeline-ctest_suite.svg",
        "timeline-log_processing.svg",
    ] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
        assert!(!text.is_empty(), "{f} was not written");
        assert!(stdout.contains(f), "{f} not listed in\n{stdout}");
    }
    assert_eq!(
        std::fs::read(&json).unwrap(),
        before,
        "bench.json must not change"
    );

    // Round trip through the library: what analyze read is what write_all writes again.
    let r = export::load(dir.path()).unwrap();
    let again = tempfile::tempdir().unwrap();
    export::write_all(again.path(), &r).unwrap();
    assert_eq!(export::load(again.path()).unwrap(), r);
    assert_eq!(
        std::fs::read_to_string(again.path().join("report.md")).unwrap(),
        std::fs::read_to_string(dir.path().join("report.md")).unwrap()
    );
}

#[test]
fn analyze_without_a_benchmark_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bench.json"), "{stderr}");
}
