use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{EXIT_ERROR, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::case::{self, Case};
use crate::cli::RunArgs;
use crate::paths::ProjectPaths;
use crate::report;
use crate::workload::result::{RunStatus, SuiteResult, RUN_SCHEMA};
use crate::workload::{self, Progress, RunRequest};

pub fn run(paths: &ProjectPaths, args: &RunArgs, quiet: bool) -> Result<u8> {
    if args.timeout.is_nan() || args.timeout <= 0.0 {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let cases: Vec<Case> = if args.all {
        case::load_all(&paths.cases())?
    } else {
        args.test
            .iter()
            .map(|id| case::find(&paths.cases(), id))
            .collect::<Result<_>>()?
    };
    let save = args
        .save
        .clone()
        .unwrap_or_else(|| default_save_path(args.all, &cases));
    // Fail on an unwritable path now, not after minutes of running.
    if let Some(dir) = save.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let mut results = Vec::new();
    for c in cases {
        let mut req = RunRequest::new(c, paths.assets());
        req.scale = args.scale;
        req.timeout_s = args.timeout;
        req.sequential = args.sequential;
        req.monitor_interval_ms = (!args.no_monitor).then_some(args.monitor_interval);
        let bar = report::spinner(quiet, &req.case.id);
        let show = |p: Progress| match p {
            Progress::Setup => {
                bar.set_message("setting up (generating data, cached after the first run)")
            }
            Progress::Tasks { done, total } => {
                bar.set_message(format!("tasks {done}/{total} done"))
            }
            Progress::Cleanup => bar.set_message("cleaning up"),
        };
        let res = workload::run_case(&req, &show);
        bar.finish_and_clear();
        print!("{}", report::run_summary(&res));
        let stop = res.status == RunStatus::Interrupted;
        results.push(res);
        // Write after every case so an interruption keeps what finished.
        write_results(&save, &results, args.all || args.test.len() > 1)?;
        if stop {
            break;
        }
    }
    println!("results: {}", save.display());
    if results.len() > 1 {
        print!("{}", report::suite_table(&results));
    }

    let any = |s: RunStatus| results.iter().any(|r| r.status == s);
    Ok(if any(RunStatus::Interrupted) {
        EXIT_INTERRUPTED
    } else if any(RunStatus::Failed) || any(RunStatus::Timeout) {
        EXIT_FAILED
    } else if !args.all && any(RunStatus::Skipped) {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// `results/run-<ids>-<time>.json`, named by the cases' ids (a case given as a file path is
/// named by its id too, not by the path).
fn default_save_path(all: bool, cases: &[Case]) -> PathBuf {
    let what = if all {
        "all".to_string()
    } else {
        cases
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join("+")
    };
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    PathBuf::from("results").join(format!("run-{what}-{stamp}.json"))
}

fn write_results(
    path: &PathBuf,
    results: &[workload::result::RunResult],
    suite: bool,
) -> Result<()> {
    let json = if suite {
        serde_json::to_string_pretty(&SuiteResult {
            schema: RUN_SCHEMA.replace("run", "suite"),
            results: results.to_vec(),
        })?
    } else {
        serde_json::to_string_pretty(&results[0])?
    };
    std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}
