//! `schedgen library` and `schedgen diff` on a throw-away checkout: the table (empty and not),
//! its JSON, and diffs against the reference, the previous scheduler and a file, with their
//! errors. The library is filled through `schedgen::library::accept`, as the generate loop does.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use schedgen::bench::result::{CaseBench, SchedulerRef, Verdict};
use schedgen::generate::llm::{ProviderInfo, TokenUsage};
use schedgen::generate::pipeline::Confirmation;
use schedgen::library::{self, AcceptOutcome, Attempt, PromptInfo, Provenance, StageSeconds};
use schedgen::stats::{ArmStats, CutEstimate, IntervalMethod};

const REFERENCE: &str = "\
// long task first
void enqueue(void)
{
\tdispatch(global);
}

int init(void)
{
\treturn 0;
}
";

/// The reference with one line changed, as a model might write it.
const GENERATED: &str = "\
// long task first
void enqueue(void)
{
\tdispatch(long_task_queue);
}

int init(void)
{
\treturn 0;
}
";

/// A checkout with the real cases, an empty assets/ and a small reference scheduler.
fn checkout() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    std::os::unix::fs::symlink(&cases, root.path().join("cases")).unwrap();
    std::fs::create_dir(root.path().join("assets")).unwrap();
    let refs = root.path().join("bpf-reference");
    std::fs::create_dir(&refs).unwrap();
    std::fs::write(refs.join("longfirst.bpf.c"), REFERENCE).unwrap();
    root
}

fn schedgen(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .arg("--root")
        .arg(root)
        .args(args)
        .current_dir(root)
        .env_remove("SCHEDGEN_ROOT")
        .env_remove("NO_COLOR")
        .output()
        .expect("schedgen runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Metadata of a passing benchmark of `case` that cut `cut`.
fn meta(case: &str, at: &str, cut: f64, cost: Option<f64>) -> Provenance {
    let verdict = Verdict {
        pass: true,
        reason: "cut above target".into(),
    };
    let estimate = CutEstimate {
        cut,
        ci_low: cut - 0.02,
        ci_high: cut + 0.02,
        method: IntervalMethod::Bootstrap,
        p_value: 0.008,
    };
    let tokens = TokenUsage {
        prompt_tokens: 1500,
        completion_tokens: 400,
    };
    let attempts = vec![
        Attempt {
            round: 1,
            attempt: 1,
            class: library::class::COMPILE_ERROR.into(),
            detail: library::short_detail("main.bpf.c:4:2: error: use of undeclared identifier"),
            checker: None,
            tokens: Some(tokens),
            seconds: StageSeconds {
                generate: Some(2.0),
                compile: Some(0.4),
                ..StageSeconds::default()
            },
        },
        Attempt {
            round: 1,
            attempt: 2,
            class: library::class::PASSED.into(),
            detail: String::new(),
            checker: None,
            tokens: Some(tokens),
            seconds: StageSeconds {
                generate: Some(2.0),
                compile: Some(0.4),
                verify: Some(4.0),
                benchmark: Some(90.0),
            },
        },
    ];
    Provenance {
        schema: library::SCHEMA.into(),
        case: case.into(),
        accepted_at: at.into(),
        provider: ProviderInfo {
            provider: "openai".into(),
            model: "gpt-4.1-mini".into(),
            endpoint_host: Some("127.0.0.1:8080".into()),
        },
        prompt: PromptInfo {
            templates: BTreeMap::from([("system".into(), "1".into())]),
            rendered_sha256: library::sha256_hex("the prompt"),
            dialect: Default::default(),
        },
        shown_references: vec!["bpf-reference/longfirst.bpf.c".into()],
        total_tokens: library::total_tokens(&attempts),
        attempts,
        estimated_cost_usd: cost,
        kernel_release: "6.12.0-test".into(),
        verdict: verdict.clone(),
        cut: estimate,
        benchmark: CaseBench {
            test_id: case.into(),
            test_name: case.into(),
            scheduler: SchedulerRef {
                kind: "file".into(),
                path: "candidate.bpf.c".into(),
                long_comms: vec!["long".into()],
                classes: Default::default(),
            },
            sizes: BTreeMap::new(),
            scale: 1.0,
            long_scale: 1.0,
            bound: None,
            runs: Vec::new(),
            default: ArmStats::default(),
            custom: ArmStats::default(),
            cut: Some(estimate),
            ablation: Default::default(),
            policy_cut: None,
            skeleton_cut: None,
            incumbent: Default::default(),
            incumbent_path: None,
            incumbent_sha256: None,
            vs_incumbent: None,
            incumbent_cut: None,
            production: Vec::new(),
            stopped_early: None,
            resumed_after: Vec::new(),
            retired: Vec::new(),
            data: None,
            programs: None,
            unmeasured: false,
            classifier: None,
            captured: None,
            ablation_best_cut: None,
            policy_of_best: None,
            ablation_list_cut: None,
            policy_of_list: None,
            efficiency: None,
            verdict,
            error: None,
        },
        source_sha256: String::new(),
        contribution: None,
        rounds: Vec::new(),
        confirmation: Some(Confirmation {
            round: 1,
            selection_cut: Some(estimate),
            selection_verdict: Verdict {
                pass: true,
                reason: "cut above target".into(),
            },
            holds: true,
            seconds: 600.0,
            accepted_stands: None,
        }),
        withdrawn: None,
    }
}

/// `m` as measured head to head against `incumbent` (5 runs each) and beating it.
fn beating(mut m: Provenance, incumbent: &str) -> Provenance {
    m.benchmark.incumbent_path = Some("bpf-generated/ctest_suite.bpf.c".into());
    m.benchmark.incumbent_sha256 = Some(library::sha256_hex(incumbent));
    m.benchmark.incumbent.n = 5;
    m.benchmark.vs_incumbent = Some(CutEstimate {
        cut: 0.05,
        ci_low: 0.02,
        ci_high: 0.08,
        method: IntervalMethod::WelchT,
        p_value: 0.01,
    });
    m
}

fn accept(root: &Path, case: &str, source: &str, meta: Provenance) {
    let o = library::accept(root, case, source, meta).unwrap();
    assert!(matches!(o, AcceptOutcome::Accepted { .. }), "{o:?}");
}

#[test]
fn an_empty_library_says_how_to_fill_it() {
    let root = checkout();
    let out = schedgen(root.path(), &["library"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("No accepted schedulers yet"), "{stdout}");
    assert!(stdout.contains("schedgen generate --test"), "{stdout}");

    let out = schedgen(root.path(), &["library", "--json"]);
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows, serde_json::json!([]));
}

#[test]
fn withdraw_moves_a_scheduler_to_its_history_with_the_reason() {
    let root = checkout();
    accept(
        root.path(),
        "ctest_suite",
        GENERATED,
        meta("ctest_suite", "2026-01-01T10:00:00Z", 0.31, None),
    );
    // No reason: clap refuses, nothing moves.
    let out = schedgen(root.path(), &["library", "withdraw", "ctest_suite"]);
    assert!(!out.status.success(), "{:?}", text(&out));
    assert!(text(&out).1.contains("--reason"), "{:?}", text(&out));
    assert!(root
        .path()
        .join("bpf-generated/ctest_suite.bpf.c")
        .is_file());

    let out = schedgen(
        root.path(),
        &[
            "library",
            "withdraw",
            "ctest_suite",
            "--reason",
            "no better than its ablation",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("bpf-generated/history/ctest_suite/2026-01-01T10-00-00Z.bpf.c"),
        "{stdout}"
    );
    assert!(!root.path().join("bpf-generated/ctest_suite.bpf.c").exists());
    let hist = root
        .path()
        .join("bpf-generated/history/ctest_suite/2026-01-01T10-00-00Z.json");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hist).unwrap()).unwrap();
    assert_eq!(m["withdrawn"]["reason"], "no better than its ablation");
    let out = schedgen(root.path(), &["library"]);
    assert!(text(&out).0.contains("No accepted schedulers yet"));

    // Twice: there is nothing left to withdraw, and the error says so.
    let out = schedgen(
        root.path(),
        &["library", "withdraw", "ctest_suite", "--reason", "again"],
    );
    assert!(!out.status.success(), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("no accepted scheduler"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn the_library_lists_each_accepted_scheduler() {
    let root = checkout();
    let at = "2025-06-01T10:00:00Z";
    accept(
        root.path(),
        "ctest_suite",
        GENERATED,
        meta("ctest_suite", at, 0.25, None),
    );
    accept(
        root.path(),
        "compression",
        GENERATED,
        meta(
            "compression",
            "2025-06-02T08:15:00+02:00",
            0.1,
            Some(0.0123),
        ),
    );

    let out = schedgen(root.path(), &["library"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let row = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no {id} row in:\n{stdout}"))
            .to_string()
    };
    assert!(
        stdout.lines().next().unwrap().starts_with("CASE"),
        "{stdout}"
    );
    let ctest = row("ctest_suite");
    for cell in [
        "25.0% [23.0%, 27.0%]",
        "PASS (confirmed)",
        "2025-06-01 10:00",
        "openai/gpt-4.1-mini",
        "3000/800",
        "unknown",
        "bpf-generated/ctest_suite.bpf.c",
    ] {
        assert!(ctest.contains(cell), "{cell:?} not in {ctest:?}");
    }
    let compression = row("compression");
    assert!(compression.contains("$0.0123"), "{compression}");
    assert!(
        compression.contains("2025-06-02 06:15"),
        "UTC: {compression}"
    );
    // Sorted by case id.
    assert!(stdout.find("compression").unwrap() < stdout.find("ctest_suite").unwrap());

    let out = schedgen(root.path(), &["library", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    let c = &rows[1];
    assert_eq!(c["case"], "ctest_suite");
    assert_eq!(c["attempts"], 2);
    assert_eq!(c["tokens_in"], 3000);
    assert_eq!(c["estimated_cost_usd"], serde_json::Value::Null);
    assert_eq!(c["source"], "bpf-generated/ctest_suite.bpf.c");
    assert_eq!(c["metadata"], "bpf-generated/ctest_suite.json");
    assert_eq!(c["confirmed"], true);
    assert_eq!(rows[0]["estimated_cost_usd"], 0.0123);
}

#[test]
fn a_scheduler_accepted_before_confirmations_is_shown_unconfirmed() {
    let root = checkout();
    // The checkout's ctest_suite scheduler accepted on 2026-11-25 (replaced on 2026-12-04, now
    // in its history) predates confirmation benchmarks.
    let old = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bpf-generated/history/ctest_suite/2026-11-25T20-05-41Z");
    let lib = root.path().join("bpf-generated");
    std::fs::create_dir_all(&lib).unwrap();
    for ext in ["bpf.c", "json"] {
        std::fs::copy(
            old.with_extension(ext),
            lib.join(format!("ctest_suite.{ext}")),
        )
        .unwrap();
    }
    let out = schedgen(root.path(), &["library"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("ctest_suite"))
        .unwrap();
    assert!(row.contains("PASS (unconfirmed)"), "{row}");
    let out = schedgen(root.path(), &["library", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["confirmed"], false);
}

#[test]
fn diff_against_the_reference_it_was_shown() {
    let root = checkout();
    let at = "2025-06-01T10:00:00Z";
    accept(
        root.path(),
        "ctest_suite",
        GENERATED,
        meta("ctest_suite", at, 0.25, None),
    );

    // The default is --against reference.
    let out = schedgen(root.path(), &["diff", "ctest_suite"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("--- bpf-reference/longfirst.bpf.c (reference)")
    );
    assert_eq!(
        lines.next(),
        Some("+++ bpf-generated/ctest_suite.bpf.c (accepted 2025-06-01T10:00:00Z)")
    );
    assert_eq!(lines.next(), Some("@@ -1,7 +1,7 @@"));
    assert!(stdout.contains("\n-\tdispatch(global);\n+\tdispatch(long_task_queue);\n"));
    // 3 lines of context: the last line of the file is not shown.
    assert!(!stdout.contains("return 0"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "no colour when stdout is a pipe");

    // A reference recorded in the metadata wins over the default one.
    std::fs::write(root.path().join("bpf-reference/fifo.bpf.c"), GENERATED).unwrap();
    let mut m = meta("compression", at, 0.2, None);
    m.shown_references = vec!["bpf-reference/fifo.bpf.c".into()];
    accept(root.path(), "compression", GENERATED, m);
    let out = schedgen(
        root.path(),
        &["diff", "compression", "--against", "reference"],
    );
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert_eq!(
        stdout.trim(),
        "identical: bpf-reference/fifo.bpf.c (reference) and \
         bpf-generated/compression.bpf.c (accepted 2025-06-01T10:00:00Z)"
    );
}

#[test]
fn diff_against_the_previous_scheduler_or_a_file() {
    let root = checkout();
    let first = "2025-06-01T10:00:00Z";
    accept(
        root.path(),
        "ctest_suite",
        REFERENCE,
        meta("ctest_suite", first, 0.2, None),
    );

    let out = schedgen(
        root.path(),
        &["diff", "ctest_suite", "--against", "previous"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("`ctest_suite` has no previous accepted scheduler"),
        "{stderr}"
    );

    let second = "2025-06-03T12:00:00Z";
    accept(
        root.path(),
        "ctest_suite",
        GENERATED,
        beating(meta("ctest_suite", second, 0.3, None), REFERENCE),
    );
    let out = schedgen(
        root.path(),
        &["diff", "ctest_suite", "--against", "previous"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(
            "--- bpf-generated/history/ctest_suite/2025-06-01T10-00-00Z.bpf.c \
             (accepted 2025-06-01T10:00:00Z)\n\
             +++ bpf-generated/ctest_suite.bpf.c (accepted 2025-06-03T12:00:00Z)\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("+\tdispatch(long_task_queue);"), "{stdout}");

    let other = root.path().join("mine.bpf.c");
    std::fs::write(&other, GENERATED.replace("return 0", "return 1")).unwrap();
    let out = schedgen(
        root.path(),
        &["diff", "ctest_suite", "--against", "mine.bpf.c"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("--- mine.bpf.c\n+++ bpf-generated/ctest_suite.bpf.c"));
    assert!(
        stdout.contains("\n-\treturn 1;\n+\treturn 0;\n"),
        "{stdout}"
    );

    let out = schedgen(
        root.path(),
        &["diff", "ctest_suite", "--against", "nope.bpf.c"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("cannot read nope.bpf.c"), "{stderr}");
}

#[test]
fn diff_of_a_case_without_a_scheduler_lists_those_with_one() {
    let root = checkout();
    let out = schedgen(root.path(), &["diff", "ctest_suite"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no case has one yet"), "{stderr}");

    let at = "2025-06-01T10:00:00Z";
    accept(
        root.path(),
        "ctest_suite",
        GENERATED,
        meta("ctest_suite", at, 0.25, None),
    );
    let out = schedgen(root.path(), &["diff", "no_such_case"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("`no_such_case` is not a case with an accepted scheduler"),
        "{stderr}"
    );
    assert!(stderr.contains("cases with one: ctest_suite"), "{stderr}");

    let out = schedgen(root.path(), &["diff", "compression"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("no accepted scheduler for `compression` yet; cases with one: ctest_suite"),
        "{stderr}"
    );
}
