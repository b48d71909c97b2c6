use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::case;
use crate::cli::ProfileArgs;
use crate::paths::ProjectPaths;
use crate::profile;
use crate::report;
use crate::workload::result::RunStatus;
use crate::workload::{self, Progress, RunRequest};

pub fn run(paths: &ProjectPaths, args: &ProfileArgs, quiet: bool) -> Result<u8> {
    let c = case::find(&paths.cases(), &args.test)?;
    let save = args
        .save
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(format!("profile-{}.json", c.id)));
    if let Some(dir) = save.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let description = c.description.clone();
    let mut req = RunRequest::new(c, paths.assets());
    req.scale = args.scale;
    req.timeout_s = args.timeout;
    req.monitor_interval_ms = Some(args.monitor_interval);
    let bar = report::spinner(quiet, &req.case.id);
    let show = |p: Progress| match p {
        Progress::Setup => bar.set_message("setting up"),
        Progress::Tasks { done, total } => {
            bar.set_message(format!("profiling: tasks {done}/{total} done"))
        }
        Progress::Cleanup => bar.set_message("cleaning up"),
    };
    let res = crate::bench::driver::with_process_tracer(paths, &mut req, |req| {
        workload::run_case(req, &show)
    });
    bar.finish_and_clear();
    if res.status != RunStatus::Success {
        print!("{}", report::run_summary(&res));
        return Ok(if res.status == RunStatus::Interrupted {
            EXIT_INTERRUPTED
        } else {
            EXIT_FAILED
        });
    }
    let p = profile::from_run(&res, &description)?;
    print!("{}", profile::summary(&p));
    std::fs::write(&save, serde_json::to_string_pretty(&p)? + "\n")
        .with_context(|| format!("cannot write {}", save.display()))?;
    println!("profile: {}", save.display());
    Ok(EXIT_OK)
}
