//! `schedgen check` against the real target kernel's headers (needs `schedgen kernel fetch`,
//! which CI does; no VM): the reference schedulers are clean, and each usual mistake is named.

use std::process::{Command, Output};

use serde_json::Value;

fn check(file: &str) -> (Output, Value) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_schedgen"))
        .args(["--root", root, "check", file, "--json"])
        .current_dir(root)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

#[test]
fn reference_and_accepted_schedulers_are_clean() {
    for f in [
        "bpf-reference/fifo.bpf.c",
        "bpf-reference/vtime.bpf.c",
        "bpf-reference/longfirst.bpf.c",
        "bpf-generated/ctest_suite.bpf.c",
    ] {
        let (out, r) = check(f);
        assert_eq!(out.status.code(), Some(0), "{f}: {r}");
        assert!(
            r["checker"].as_str().unwrap().starts_with("libclang 19"),
            "{f}: {r}"
        );
        assert_eq!(r["problems"], serde_json::json!([]), "{f}");
        assert_eq!(r["compiler_errors"], serde_json::json!([]), "{f}");
    }
}

#[test]
fn names_each_mistake() {
    let (out, r) = check("tests/fixtures/bpf/static_mistakes.bpf.c");
    assert_eq!(out.status.code(), Some(1), "{r}");
    let problems: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let all = problems.join("\n");
    for expected in [
        "#include <scx/common.bpf.h> is not available",
        "license \"Proprietary\" is not GPL-compatible",
        "`scx_bpf_dispatch` does not exist in this kernel: it was renamed `scx_bpf_dsq_insert`",
        "`scx_bpf_kick_everything` is not a kfunc of the target kernel",
        "2 sched_ext_ops struct_ops maps (`oops_ops`, `oops2_ops`)",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert_eq!(problems.len(), 5, "{all}");
}

#[test]
fn a_syntax_error_is_a_compiler_error_with_its_line() {
    let (out, r) = check("tests/fixtures/bpf/syntax_error.bpf.c");
    assert_eq!(out.status.code(), Some(1), "{r}");
    assert_eq!(r["problems"], serde_json::json!([]));
    let errors = r["compiler_errors"].to_string();
    assert!(
        errors.contains("line 9:") && errors.contains("expected ';'"),
        "{errors}"
    );
}

/// The loader tells a scheduler that includes schedgen's class header the longest class's
/// expected CPU time (`schedgen_longest_ns`), unless the user set it; an object without that
/// knob gets nothing extra.
#[test]
fn the_longest_class_reaches_schedulers_that_declare_it() {
    use schedgen::bpf::globals::Setting;
    use schedgen::bpf::session::{load_settings, Knowledge, LONGEST_KNOB};
    use schedgen::classify::rules::{ClassSet, Rule, TaskClass};

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kernel = schedgen::kernel::select(None).expect("run `schedgen kernel fetch` first");
    let headers = schedgen::kernel::header_dir(&kernel).unwrap();
    let object = |src: &str| {
        let c = schedgen::bpf::verify::compile_for(
            &root.join(src),
            &headers,
            &root.join("bpf-reference"),
            &[],
        )
        .unwrap();
        assert!(c.ok, "{src} does not compile");
        std::path::PathBuf::from(c.object.unwrap())
    };
    let class = |id, secs, long| TaskClass {
        id,
        name: format!("c{id}"),
        rule: Rule::Any,
        expected_cpu_s: secs,
        tasks: 1,
        long,
    };
    let knowledge = Knowledge {
        classes: ClassSet {
            classes: vec![class(1, 36.5, true), class(2, 1.25, false)],
        },
        ..Default::default()
    };
    let longfirst = object("bpf-reference/longfirst.bpf.c");
    let set = load_settings(&longfirst, &knowledge);
    assert_eq!(
        set,
        [Setting {
            name: LONGEST_KNOB.into(),
            value: "36500000000".into()
        }]
    );
    // The user's own value wins.
    let mut own = knowledge.clone();
    own.settings = vec![Setting {
        name: LONGEST_KNOB.into(),
        value: "7".into(),
    }];
    assert_eq!(load_settings(&longfirst, &own), own.settings);
    // No classes, nothing to tell.
    assert!(load_settings(&longfirst, &Knowledge::default()).is_empty());
    // scx's own scx_simple does not include schedgen's class header.
    let simple = object("tests/fixtures/scx/scx_simple.bpf.c");
    assert!(load_settings(&simple, &knowledge).is_empty());
}

/// The benchmark report says a scheduler was told the long tasks' names only when the compiled
/// object has the `long_comms` map that receives them.
#[test]
fn only_a_scheduler_with_the_names_map_takes_the_names() {
    use schedgen::bpf::loader::takes_long_comms;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kernel = schedgen::kernel::select(None).expect("run `schedgen kernel fetch` first");
    let headers = schedgen::kernel::header_dir(&kernel).unwrap();
    let object = |src: &std::path::Path| {
        let c = schedgen::bpf::verify::compile_for(src, &headers, &root.join("bpf-reference"), &[])
            .unwrap();
        assert!(c.ok, "{} does not compile", src.display());
        std::path::PathBuf::from(c.object.unwrap())
    };
    let longfirst = object(&root.join("bpf-reference/longfirst.bpf.c"));
    assert!(!takes_long_comms(&longfirst).unwrap());
    // The same scheduler declaring the map, as schedulers written before task classes did.
    let dir = tempfile::tempdir().unwrap();
    let with_map = dir.path().join("named.bpf.c");
    let source = std::fs::read_to_string(root.join("bpf-reference/longfirst.bpf.c")).unwrap();
    std::fs::write(&with_map, format!("{source}\nSCHEDGEN_LONG_COMMS;\n")).unwrap();
    assert!(takes_long_comms(&object(&with_map)).unwrap());
}
