use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::bench::driver::{self, BenchOptions, SchedulerChoice};
use crate::case::{self, Case};
use crate::cli::BenchmarkArgs;
use crate::paths::ProjectPaths;
use crate::sandbox::Backend;

pub fn run(
    paths: &ProjectPaths,
    kernel: Option<&Path>,
    backend: Backend,
    args: &BenchmarkArgs,
    quiet: bool,
) -> Result<u8> {
    let cases: Vec<Case> = if args.all {
        case::load_all(&paths.cases())?
    } else if args.test.is_empty() {
        vec![case::find(&paths.cases(), "ctest_suite")?]
    } else {
        args.test
            .iter()
            .map(|id| case::find(&paths.cases(), id))
            .collect::<Result<_>>()?
    };
    let scale = args.comparison.scale_choice().map_err(anyhow::Error::msg)?;
    let scheduler = match (&args.scheduler, &args.reference, args.generated) {
        (Some(f), _, _) => SchedulerChoice::File(f.clone()),
        (None, Some(r), _) => SchedulerChoice::Reference(r.clone()),
        (None, None, true) => SchedulerChoice::Generated,
        _ => SchedulerChoice::Auto,
    };
    let dir = args.save.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string())
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let opts = BenchOptions {
        scheduler,
        runs: args.runs as usize,
        warmup: args.warmup.map(|k| k as usize),
        scale,
        cpus: args.comparison.cpus,
        target: args.comparison.target,
        backend,
        kernel: kernel.map(Path::to_path_buf),
        memory_mib: args.memory,
        timeout: Duration::from_secs_f64(args.timeout),
        short_target_s: args.comparison.short_target,
        long_cap_s: args.comparison.long_cap,
        ablation: !args.comparison.no_ablation,
        classes: None,
        programs: Vec::new(),
        long_runs_wide: false,
        include: args.build.include.clone(),
        settings: args.knobs.set.clone(),
        attach_cpu: args.knobs.attach_cpu,
        min_runs: args.comparison.min_runs,
        screen: false,
        against: args.against.clone(),
        known_bound: None,
        order_seed: args.comparison.order_seed,
        incumbent: args
            .incumbent
            .as_ref()
            .map(|p| {
                p.canonicalize()
                    .with_context(|| format!("the incumbent {} does not exist", p.display()))
            })
            .transpose()?,
        size_in_vm: true,
        budget: None,
        verify_first: None,
    };
    let say = |m: &str| {
        if !quiet {
            eprintln!("benchmark: {m}");
        }
    };
    let result = driver::run(paths, &cases, &opts, &dir, &say)?;
    let written = crate::bench::export::write_all(&dir, &result)?;
    print!(
        "{}",
        crate::bench::table::render(&result, crate::bench::table::stdout_color())
    );
    for p in written {
        println!("wrote {}", p.display());
    }
    if crate::interrupt::requested() {
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(if result.cases.iter().all(|c| c.verdict.pass) {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
