use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{EXIT_ERROR, EXIT_FAILED};
use crate::bpf::loader::LoadedScheduler;
use crate::bpf::scx_state;
use crate::bpf::verify::{compile_for, target_headers};
use crate::cli::LoadArgs;
use crate::paths::ProjectPaths;
use crate::sandbox::{self, job, vm, Backend, Outcome, Place};

pub fn run(
    paths: &ProjectPaths,
    kernel: Option<&Path>,
    backend: Backend,
    args: &LoadArgs,
) -> Result<u8> {
    anyhow::ensure!(
        args.scheduler.exists(),
        "{} does not exist",
        args.scheduler.display()
    );
    let place = sandbox::choose(backend)?;
    let object: PathBuf = if args.scheduler.extension().is_some_and(|e| e == "o") {
        args.scheduler.canonicalize()?
    } else {
        let (_, dir) = target_headers(place, kernel)?;
        let c = compile_for(&args.scheduler, &dir, &paths.bpf_reference())?;
        if !c.ok {
            eprint!("{}", c.output);
            anyhow::bail!("{} does not compile", args.scheduler.display());
        }
        PathBuf::from(c.object.expect("compiled object"))
    };
    match place {
        Place::Host => run_here(&object, &args.long_comms, &args.command),
        Place::Vm => {
            // Inside the VM the kernel has sched_ext and we are root: the same command runs
            // there with the host backend.
            let exe = std::env::current_exe().context("cannot find the schedgen executable")?;
            let mut argv = vec![
                exe.display().to_string(),
                "--backend".into(),
                "host".into(),
                "load".into(),
            ];
            for c in &args.long_comms {
                argv.push("--long-comm".into());
                argv.push(c.clone());
            }
            argv.push(object.display().to_string());
            argv.push("--".into());
            argv.extend(args.command.iter().cloned());
            let j = job::Job {
                work: job::Work::RunCommand {
                    argv,
                    cwd: None,
                    env: vec![],
                },
            };
            let opts = vm::VmOptions {
                cpus: args.cpus,
                memory_mib: args.memory,
                timeout: Duration::from_secs_f64(args.timeout),
                init_binary: Some(exe),
            };
            let Outcome::Vm(report) = sandbox::run_job(&j, Place::Vm, kernel, &opts)? else {
                unreachable!("a VM job has a VM outcome")
            };
            match report.end {
                vm::VmEnd::Finished(r) => Ok(r.status_code().clamp(0, 255) as u8),
                vm::VmEnd::TimedOut => {
                    eprintln!("schedgen: the VM hit the {:.0} s timeout", args.timeout);
                    Ok(124)
                }
                vm::VmEnd::Interrupted => Ok(super::EXIT_INTERRUPTED),
                vm::VmEnd::NoResult => {
                    eprintln!(
                        "schedgen: the VM stopped without a result:\n{}",
                        report.console_tail(15)
                    );
                    Ok(EXIT_ERROR)
                }
            }
        }
    }
}

/// Attach here, run the command, detach; the command's status, or 1 when the scheduler was
/// ejected while it ran (with the kernel's reason).
fn run_here(object: &Path, long_comms: &[String], command: &[String]) -> Result<u8> {
    let mut sched = LoadedScheduler::load(object, long_comms).map_err(|e| {
        let log = e.verifier_log().unwrap_or_default();
        anyhow::anyhow!("loading {} failed: {e}\n{log}", object.display())
    })?;
    sched.attach()?;
    let enabled = scx_state::wait_for("enabled", Duration::from_secs(3));
    let ops = scx_state::ops();
    if !enabled {
        if let Some(e) = sched.detach_and_collect() {
            eprintln!("schedgen: {}", e.line());
        }
        eprintln!(
            "schedgen: the scheduler was ejected before the command could start; it did not run"
        );
        return Ok(EXIT_FAILED);
    }
    eprintln!("schedgen: `{ops}` attached; running {}", command.join(" "));
    let status = Process::new(&command[0]).args(&command[1..]).status();
    let still = scx_state::still_running(&ops);
    let exit = sched.detach_and_collect();
    if let Some(e) = &exit {
        eprintln!("schedgen: {}", e.line());
    }
    let status = status.with_context(|| format!("cannot run {}", command[0]))?;
    if !still || exit.as_ref().is_some_and(|e| e.is_ejection()) {
        eprintln!("schedgen: the scheduler was ejected while the command ran");
        return Ok(EXIT_FAILED);
    }
    Ok(status
        .code()
        .map(|c| c.clamp(0, 255) as u8)
        .unwrap_or(EXIT_FAILED))
}
