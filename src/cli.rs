//! The command line: clap types only. Commands turn these into library requests.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::case::parse_scale;

/// Write Linux sched_ext CPU schedulers for long-tail batch workloads, and prove them.
///
/// Every test case starts 39 short tasks and 1 long one together. The kernel's fair scheduler
/// shares the CPUs among all 40, so the long task finishes last; a scheduler that runs it
/// first cuts the total time (the makespan). schedgen measures the cases, and (in later
/// stages) writes, verifies and benchmarks schedulers for them.
#[derive(Debug, Parser)]
#[command(
    name = "schedgen",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The schedgen checkout holding cases/ and assets/ [default: found from the current
    /// directory upwards]
    #[arg(long, global = true, env = "SCHEDGEN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// No progress display on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the test cases with their category and whether their dependencies are installed.
    List(ListArgs),
    /// Run test cases: set up once, start all 40 tasks together, measure, clean up.
    ///
    /// Prints a summary per case and writes the full measurements as JSON (see the README for
    /// the format). Exit status: 0 when every case ran, 1 when a case failed or timed out,
    /// 2 on a usage or environment error, 130 after Ctrl-C.
    Run(RunArgs),
    /// Show the cases' missing dependencies, or install them (Debian/Ubuntu, as root).
    Deps(DepsArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["test", "all"])))]
pub struct RunArgs {
    /// Case to run (repeat for several); see `schedgen list`.
    #[arg(long, short = 't', value_name = "ID")]
    pub test: Vec<String>,

    /// Run every case; missing dependencies and failures are reported, the rest goes on.
    #[arg(long)]
    pub all: bool,

    /// Multiply every case size by this: a number, or tiny (0.01), small (0.1), medium (0.3),
    /// full (1.0). Full scale is meant for a 4–8 core machine.
    #[arg(long, short, default_value = "full", value_parser = parse_scale, value_name = "S")]
    pub scale: f64,

    /// Where to write the JSON results [default: results/run-<case|all>-<time>.json].
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// Run the tasks one after another instead of all together (each task's time alone).
    #[arg(long)]
    pub sequential: bool,

    /// Do not sample /proc during the run.
    #[arg(long)]
    pub no_monitor: bool,

    /// Monitor sampling interval, milliseconds.
    #[arg(long, default_value_t = 100, value_name = "MS", value_parser = clap::value_parser!(u64).range(5..))]
    pub monitor_interval: u64,

    /// Kill the tasks if they have not all finished after this many seconds.
    #[arg(long, default_value_t = 1800.0, value_name = "SECS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct DepsArgs {
    /// Only this case's dependencies.
    #[arg(long, short = 't', value_name = "ID")]
    pub test: Option<String>,

    /// Install the missing Debian packages with apt-get (needs root).
    #[arg(long)]
    pub install: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_needs_a_case_or_all() {
        assert!(Cli::try_parse_from(["schedgen", "run"]).is_err());
        assert!(Cli::try_parse_from(["schedgen", "run", "--all", "--test", "x"]).is_err());
        let c = Cli::try_parse_from(["schedgen", "run", "--test", "x", "--scale", "tiny"]).unwrap();
        match c.command {
            Command::Run(r) => assert_eq!(r.scale, 0.01),
            _ => panic!("expected run"),
        }
    }
}
