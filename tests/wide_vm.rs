//! A long task wider than one CPU, in the sandbox VM: log_pipeline's long task is `cat | awk |
//! sort`, whose stages run side by side. Its profile says so, so its bound times the long task
//! a second time with every CPU free, and the model gives it the width that timing shows; a
//! serial long task (ctest_suite's) is timed held to one CPU only. Needs `schedgen kernel
//! fetch` (scripts/setup.sh does it).

use std::path::Path;

use schedgen::model::{Demand, MakespanModel};
use serde_json::Value;

mod support;
use support::vm::{benchmark_once, require_vm};

/// `benchmark` of `case` at a fixed small scale, one run per arm: the bound is what is tested.
fn bound_of(case: &str, scale: &str) -> (Value, String) {
    let save = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (status, _, all) = benchmark_once(save.path(), &["--test", case, "--scale", scale]);
    // One run per arm cannot pass a verdict.
    assert!(matches!(status, Some(0 | 1)), "{all}");
    let bench: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(save.path()).join("bench.json")).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}: {all}"));
    (bench["cases"][0]["bound"].clone(), all)
}

#[test]
fn a_pipelines_long_task_is_timed_free_and_modelled_at_its_width() {
    require_vm();
    let (b, all) = bound_of("cases/extra/log_pipeline.toml", "0.1");
    assert!(
        all.contains("the long one alone (held to one CPU, then free)"),
        "the profile did not see the pipeline's stages side by side: {all}"
    );
    let held = b["long_alone_s"].as_f64().unwrap();
    let free_cpu = b["long_free"]["cpu_s"].as_f64().unwrap_or(0.0);
    let free_wall = b["long_free"]["wall_s"].as_f64().unwrap_or(0.0);
    assert!(free_cpu > 0.0 && free_wall > 0.0, "no free timing: {b}");
    // The width is how many CPUs the free run kept busy, unless barely more than one; at it
    // the model has the free run's CPU time, held to one CPU the held one.
    let cpus = b["model"]["cpus"].as_u64().unwrap() as usize;
    let ratio = free_cpu / free_wall;
    let (long, width) = if ratio >= 1.15 {
        (free_cpu, ratio.min(cpus as f64))
    } else {
        (held, 1.0)
    };
    let short = b["short_alone_s"].as_f64().unwrap();
    let first = b["first_short_s"].as_f64().unwrap();
    let mut tasks = vec![Demand::serial(short); 39];
    tasks[0] = Demand::serial(first);
    tasks.push(Demand { cpu_s: long, width });
    let model = MakespanModel::from_tasks(&tasks, cpus);
    let fair = b["model"]["fair_share_makespan_s"].as_f64().unwrap();
    let best = b["model"]["optimal_makespan_s"].as_f64().unwrap();
    assert!((fair - model.fair_share_makespan_s).abs() < 1e-6, "{b}");
    assert!((best - model.optimal_makespan_s).abs() < 1e-6, "{b}");
    // No schedule ends the long task before its time at that width.
    assert!(best >= long / width - 1e-9, "{b}");
}

#[test]
fn a_long_task_of_one_process_is_timed_held_to_one_cpu_only() {
    require_vm();
    let (b, all) = bound_of("ctest_suite", "0.05");
    assert!(
        all.contains("the long one alone") && !all.contains("then free"),
        "{all}"
    );
    assert!(b.get("long_free").is_none(), "{b}");
    let long = b["long_alone_s"].as_f64().unwrap();
    assert!(long > 0.0, "{b}");
}
