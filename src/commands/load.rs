use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{EXIT_ERROR, EXIT_FAILED};
use crate::bpf::session::{Knowledge, Session, StartError};
use crate::bpf::verify::{compile_for, target_headers};
use crate::cli::LoadArgs;
use crate::paths::ProjectPaths;
use crate::sandbox::{self, job, vm, Backend, Place};

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
    // Headers only when something must be compiled: the VM's half gets an object and a tracer.
    let headers = || -> Result<PathBuf> { Ok(target_headers(place, kernel)?.1) };
    let classes = match &args.classes {
        Some(f) => crate::classify::load_classes(f)?,
        None => Default::default(),
    };
    let tracer = match (&args.tracer, classes.is_empty()) {
        (Some(t), _) => Some(t.clone()),
        (None, false) => Some(crate::classify::tracer::tracer_object(
            &headers()?,
            &paths.bpf_reference(),
        )?),
        (None, true) => None,
    };
    let knowledge = Knowledge {
        settings: args.knobs.set.clone(),
        attach_cpu: args.knobs.attach_cpu,
        long_comms: args.long_comms.clone(),
        classes,
        tracer,
    };
    let object: PathBuf = if args.scheduler.extension().is_some_and(|e| e == "o") {
        args.scheduler.canonicalize()?
    } else {
        let c = compile_for(
            &args.scheduler,
            &headers()?,
            &paths.bpf_reference(),
            &args.build.include,
        )?;
        if !c.ok {
            eprint!("{}", c.output);
            anyhow::bail!("{} does not compile", args.scheduler.display());
        }
        PathBuf::from(c.object.expect("compiled object"))
    };
    match place {
        Place::Host => run_here(&object, &knowledge, &args.command),
        Place::Vm => {
            let _machine = crate::sandbox::lock::acquire(crate::sandbox::lock::Use::Run, &|m| {
                eprintln!("schedgen: {m}")
            })?;
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
            if let Some(f) = &args.classes {
                argv.push("--classes".into());
                argv.push(f.canonicalize()?.display().to_string());
                argv.push("--tracer".into());
                argv.push(
                    knowledge
                        .tracer
                        .as_ref()
                        .expect("a tracer with classes")
                        .display()
                        .to_string(),
                );
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
            let report = sandbox::run_in_vm(&j, kernel, &opts, &|m| eprintln!("schedgen: {m}"))?;
            match report.end {
                vm::VmEnd::Finished(r) => Ok(r.status_code().clamp(0, 255) as u8),
                vm::VmEnd::TimedOut => {
                    eprintln!("schedgen: the VM hit the {:.0} s timeout", args.timeout);
                    Ok(124)
                }
                vm::VmEnd::BootHung => bail!(
                    "the guest hung while booting, twice (full log: {})",
                    report.console_log().display()
                ),
                vm::VmEnd::Interrupted => Ok(super::EXIT_INTERRUPTED),
                vm::VmEnd::NoResult => {
                    match report.crash_line() {
                        Some(line) => eprintln!(
                            "schedgen: the VM stopped without a result: the guest kernel crashed \
                             on each of {} boots, last with `{line}` (full log: {})",
                            sandbox::VM_TRIES,
                            report.console_log().display()
                        ),
                        None => eprintln!(
                            "schedgen: the VM stopped without a result:\n{}",
                            report.console_tail(15)
                        ),
                    }
                    Ok(EXIT_ERROR)
                }
            }
        }
    }
}

/// Attach here, run the command, detach; the command's status, or 1 when the scheduler was
/// ejected while it ran (with the kernel's reason).
fn run_here(object: &Path, knowledge: &Knowledge, command: &[String]) -> Result<u8> {
    let session = match Session::start(object, knowledge) {
        Ok(s) => s,
        Err(StartError::Load(e)) => {
            let log = e.verifier_log().unwrap_or_default();
            anyhow::bail!("loading {} failed: {e}\n{log}", object.display());
        }
        Err(e @ StartError::Classifier(_)) | Err(e @ StartError::Attach { .. }) => {
            anyhow::bail!("{}", e.message())
        }
        Err(e @ StartError::NotEnabled { .. }) => {
            eprintln!("schedgen: {}", e.message());
            eprintln!(
                "schedgen: the scheduler was ejected before the command could start; it did not run"
            );
            return Ok(EXIT_FAILED);
        }
    };
    eprintln!(
        "schedgen: `{}` attached; running {}",
        session.ops,
        command.join(" ")
    );
    let status = Process::new(&command[0]).args(&command[1..]).status();
    let ended = session.finish();
    if let Some(e) = &ended.exit {
        eprintln!("schedgen: {}", e.line());
    }
    if let Some(log) = &ended.classifier {
        let c = crate::classify::tracer::summarize(log, &knowledge.classes, &[]);
        eprintln!(
            "schedgen: classifier: {} execs, exec to class p50 {} / p99 {}, {:.2}% of a CPU",
            c.execs,
            c.latency_p50_ms
                .map(|l| format!("{l:.2} ms"))
                .unwrap_or_else(|| "-".into()),
            c.latency_p99_ms
                .map(|l| format!("{l:.2} ms"))
                .unwrap_or_else(|| "-".into()),
            c.cpu_share * 100.0
        );
    }
    let status = status.with_context(|| format!("cannot run {}", command[0]))?;
    if ended.ejected() {
        eprintln!("schedgen: the scheduler was ejected while the command ran");
        return Ok(EXIT_FAILED);
    }
    Ok(status
        .code()
        .map(|c| c.clamp(0, 255) as u8)
        .unwrap_or(EXIT_FAILED))
}
