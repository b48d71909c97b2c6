//! One function per subcommand: turn CLI arguments into library calls and print the results.

mod analyze;
mod benchmark;
mod check;
mod compile;
mod deps;
mod diff;
mod generate;
mod kernel;
mod library;
mod list;
mod load;
mod port;
mod profile;
mod run;
mod verify;
mod vm;

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::paths::ProjectPaths;

/// Everything asked for worked.
pub const EXIT_OK: u8 = 0;
/// A case (or, later, a scheduler) failed: the tool worked, the thing measured did not.
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or an environment problem (missing tool, malformed file).
pub const EXIT_ERROR: u8 = 2;
/// Stopped by Ctrl-C or SIGTERM.
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    // The guest's PID 1 must never return an error to main (the kernel would panic).
    if let Command::GuestInit = cli.command {
        crate::sandbox::guest::main();
    }
    crate::interrupt::install()?;
    // The in-kernel job runs inside the sandbox and needs no checkout.
    if let Command::ScxJob(a) = &cli.command {
        return Ok(ExitCode::from(crate::bpf::verify::scx_job(
            &a.spec, &a.out,
        )?));
    }
    // The benchmark's measuring job also runs inside the sandbox.
    if let Command::BenchJob(a) = &cli.command {
        let text = std::fs::read_to_string(&a.spec)
            .with_context(|| format!("cannot read the bench-job spec {}", a.spec))?;
        let job: crate::bench::job::BenchJob =
            serde_json::from_str(&text).context("malformed bench-job spec")?;
        crate::bench::job::run(&job, &a.out)?;
        return Ok(ExitCode::from(EXIT_OK));
    }
    // Re-rendering a saved benchmark needs no checkout either.
    if let Command::Analyze(a) = &cli.command {
        return Ok(ExitCode::from(analyze::run(a)?));
    }
    let paths = ProjectPaths::discover(cli.root.as_deref())?;
    let code = match cli.command {
        Command::List(a) => list::run(&paths, &a)?,
        Command::Run(a) => run::run(&paths, &a, cli.quiet)?,
        Command::Deps(a) => deps::run(&paths, &a)?,
        Command::Kernel(a) => kernel::run(&cli.kernel, cli.backend, &a, cli.quiet)?,
        Command::Vm(a) => vm::run(&cli.kernel, &a)?,
        Command::GuestInit => unreachable!("handled above"),
        Command::Profile(a) => profile::run(&paths, &a, cli.quiet)?,
        Command::Compile(a) => compile::run(&paths, cli.kernel.as_deref(), &a)?,
        Command::Check(a) => check::run(&paths, cli.kernel.as_deref(), &a)?,
        Command::Verify(a) => verify::run(&paths, cli.kernel.as_deref(), cli.backend, &a)?,
        Command::Port(a) => port::run(&paths, cli.kernel.as_deref(), cli.backend, &a)?,
        Command::ScxJob(_) => unreachable!("handled above"),
        Command::Analyze(_) => unreachable!("handled above"),
        Command::Benchmark(a) => {
            benchmark::run(&paths, cli.kernel.as_deref(), cli.backend, &a, cli.quiet)?
        }
        Command::BenchJob(_) => unreachable!("handled above"),
        Command::Library(a) => library::run(&paths, &a)?,
        Command::Load(a) => load::run(&paths, cli.kernel.as_deref(), cli.backend, &a)?,
        Command::Generate(a) => {
            generate::run(&paths, cli.kernel.as_deref(), cli.backend, &a, cli.quiet)?
        }
        Command::Diff(a) => diff::run(&paths, &a)?,
    };
    Ok(ExitCode::from(code))
}
