//! `--scale auto` in the sandbox VM: the check there tells a short task's start-up from its work
//! and grows a case whose short task is mostly start-up, and the bound it measures counts the
//! first short task (which pages in the programs) apart from the others. compiler_build's short
//! task, `gcc -O2 -c` of a file of one or two functions at the default short target, is mostly
//! gcc start-up in the VM (52-86% measured). Needs `schedgen kernel fetch` (scripts/setup.sh
//! does it).

use serde_json::Value;

mod support;
use support::vm::{benchmark_once, require_vm};

/// The number after `key` in `line` (`scale 0.0166, long ×6.48` → 0.0166 for `scale `).
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn a_short_task_that_is_mostly_start_up_grows_until_it_is_half() {
    require_vm();
    let root = env!("CARGO_MANIFEST_DIR");
    let save = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (status, stderr, all) = benchmark_once(save.path(), &["--test", "compiler_build"]);
    // One run per arm cannot pass a verdict; the sizing is what is tested.
    assert!(matches!(status, Some(0 | 1)), "{all}");

    let host_scale = stderr
        .lines()
        .find(|l| l.contains("compiler_build: scale "))
        .and_then(|l| number_after(l, "scale "))
        .unwrap_or_else(|| panic!("no host sizing line: {all}"));
    let share_line = stderr
        .lines()
        .find(|l| l.contains("of one is start-up ("))
        .unwrap_or_else(|| panic!("no start-up fit: {all}"));
    let share = number_after(share_line, "start-up (").expect("a share") / 100.0;
    // compiler_build's start-up has measured 52-86% of a short task here: one timing in the VM
    // varies by 8-13%. The sizing raises the sizes by share / (1 − share), the factor that brings
    // start-up to half, when that is at least ×1.2; below, it keeps them. Either way the test
    // checks the rule against what this boot measured. The share is printed to the percent, so
    // the factor it implies is known only within the band of that rounding (at 68%, ×2.08 to
    // ×2.17): the bounds below are the band's ends.
    let factor_at = |share: f64| share / (1.0 - share).max(1e-9);
    let (least, most) = (factor_at(share - 0.005), factor_at(share + 0.005));
    let raise = stderr
        .lines()
        .find(|l| l.contains("so that start-up is at most 50%"))
        .and_then(|l| number_after(l, "sizes ×"));
    let factor = if least >= 1.2 {
        let factor = raise.unwrap_or_else(|| panic!("start-up {share}, no raise: {all}"));
        assert!((1.2..=8.0).contains(&factor), "×{factor}: {all}");
        // Printed to two decimals, hence the 0.005.
        assert!(
            factor <= most + 0.005,
            "×{factor} for start-up {share} (at most ×{most:.3}): {all}"
        );
        factor
    } else if most < 1.2 {
        assert!(raise.is_none(), "start-up {share} needs no raise: {all}");
        1.0
    } else {
        raise.unwrap_or(1.0)
    };
    assert!(
        share > 0.4,
        "start-up {share} of a short task: the case no longer tests a raise: {share_line}"
    );

    let bench: Value =
        serde_json::from_str(&std::fs::read_to_string(save.path().join("bench.json")).unwrap())
            .unwrap();
    let case = &bench["cases"][0];
    // The benchmark ran at the grown sizes: the short task's functions times the factor,
    // rounded up to a whole function (60 functions become 1 at the smallest scales).
    let scale = case["scale"].as_f64().unwrap();
    let file = schedgen::case::Case::load(
        &std::path::Path::new(root).join("cases/extra/compiler_build.toml"),
    )
    .unwrap();
    let functions = |scale: f64| -> f64 {
        file.sizes_for(scale, 1.0)["short_functions"]
            .parse()
            .unwrap()
    };
    let (before, after) = (functions(host_scale), functions(scale));
    assert!(
        after >= before * (factor - 0.005) && after <= before * (factor + 0.005) + 1.0,
        "{after} functions at scale {scale}, {before} at {host_scale}, not ×{factor}: {case}"
    );
    // Its bound timed a first short task apart from the rest, and modelled them so.
    let b = &case["bound"];
    let first = b["first_short_s"].as_f64().unwrap();
    let short = b["short_alone_s"].as_f64().unwrap();
    let long = b["long_alone_s"].as_f64().unwrap();
    assert!(first > 0.0 && short > 0.0 && long > short, "{b}");
    let mut demands = vec![short; 39];
    demands[0] = first;
    demands.push(long);
    let cpus = b["model"]["cpus"].as_u64().unwrap() as usize;
    let model = schedgen::model::MakespanModel::from_demands(&demands, cpus);
    let fair = b["model"]["fair_share_makespan_s"].as_f64().unwrap();
    assert!((fair - model.fair_share_makespan_s).abs() < 1e-6, "{b}");
}
