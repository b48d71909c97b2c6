//! `schedgen vm run -- CMD...`: run one command in the sched_ext VM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use super::EXIT_INTERRUPTED;
use crate::cli::{VmArgs, VmCommand, VmRunArgs};
use crate::kernel;
use crate::sandbox::job::{Job, Work};
use crate::sandbox::vm::{self, VmEnd, VmOptions};

/// Exit status after the hard timeout, as timeout(1) has it.
pub const EXIT_TIMEOUT: u8 = 124;

pub fn run(explicit: &Option<PathBuf>, args: &VmArgs) -> Result<u8> {
    match &args.command {
        VmCommand::Run(a) => run_command(explicit, a),
    }
}

/// The guest sees the host's files, except /tmp (its own tmpfs): start in the same directory
/// when it is visible there.
fn guest_cwd() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    (!cwd.starts_with("/tmp")).then_some(cwd)
}

fn run_command(explicit: &Option<PathBuf>, args: &VmRunArgs) -> Result<u8> {
    if args.timeout.is_nan() || args.timeout <= 0.0 {
        bail!("--timeout must be positive");
    }
    let kernel = kernel::select(explicit.as_deref())?;
    let job = Job {
        work: Work::RunCommand {
            argv: args.command.clone(),
            cwd: guest_cwd(),
            env: vec![],
        },
    };
    let opts = VmOptions {
        cpus: args.cpus.map(usize::from),
        memory_mib: args.memory,
        timeout: Duration::from_secs_f64(args.timeout),
        init_binary: None,
    };
    let report = vm::run(&kernel, &job, &opts)?;
    let timing = format!(
        "{} vCPU(s), {}, VM start to job start {}, wall {:.2}s",
        report.cpus,
        report.accel.to_uppercase(),
        report
            .start_to_job
            .map(|d| format!("{:.2}s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".into()),
        report.wall.as_secs_f64()
    );
    match report.end {
        VmEnd::Finished(r) => {
            eprintln!("schedgen: vm: {timing}");
            if let Some(e) = &r.error {
                bail!(
                    "the job could not run in the VM: {e} (job directory {})",
                    report.job_dir.display()
                );
            }
            Ok(u8::try_from(r.status_code()).unwrap_or(255))
        }
        // `vm run` does not boot again: unlike a verify, the command may not be safe to repeat.
        VmEnd::NoResult => {
            let what = match report.crash_line() {
                Some(line) => format!(
                    "the guest kernel crashed while the job ran: {line} (an `Oops: int3` as a \
                     sched_ext scheduler is enabled or disabled is the emulator's, not the \
                     command's)"
                ),
                None => "the VM stopped without running the job".into(),
            };
            bail!(
                "{what}; last console lines:\n{}\n(full log: {})",
                report.console_tail(25),
                report.console_log().display()
            )
        }
        VmEnd::TimedOut => {
            eprintln!(
                "schedgen: error: the VM was killed after the {}s timeout ({timing}); last console lines:\n{}\n(full log: {})",
                args.timeout,
                report.console_tail(10),
                report.console_log().display()
            );
            Ok(EXIT_TIMEOUT)
        }
        VmEnd::BootHung => bail!(
            "the guest hung while booting, twice ({timing}); last console lines:\n{}\n(full log: {})",
            report.console_tail(10),
            report.console_log().display()
        ),
        VmEnd::Interrupted => {
            eprintln!("schedgen: interrupted; the VM was stopped");
            Ok(EXIT_INTERRUPTED)
        }
    }
}
