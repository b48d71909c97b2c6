//! Where work that needs sched_ext runs: on this host when its kernel has sched_ext and we are
//! root, otherwise in a throw-away VM booting a sched_ext kernel.
//!
//! Work is a [`job::Job`] executed by [`exec::execute`] in either place, so nothing above this
//! module knows the difference; `--backend auto` picks the host only when it can.

pub mod exec;
pub mod guest;
pub mod job;
pub mod lock;
pub mod vm;

use std::path::Path;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// The user's choice of place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The host if it can run sched_ext, else a VM.
    #[default]
    Auto,
    /// This machine's kernel (needs /sys/kernel/sched_ext and root).
    Host,
    /// A QEMU VM booting the cached sched_ext kernel.
    Vm,
}

/// Where a job actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    Host,
    Vm,
}

/// Why the host cannot run sched_ext jobs, or `None` when it can.
pub fn host_unfit_reason() -> Option<String> {
    let mut why = Vec::new();
    if !Path::new("/sys/kernel/sched_ext").exists() {
        why.push(format!(
            "kernel {} has no sched_ext (no /sys/kernel/sched_ext)",
            crate::system::kernel_release()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        why.push("not running as root".to_string());
    }
    (!why.is_empty()).then(|| why.join(" and "))
}

/// Turn the choice into a place, or explain why the host was asked for but cannot serve.
pub fn choose(backend: Backend) -> Result<Place> {
    match (backend, host_unfit_reason()) {
        (Backend::Vm, _) => Ok(Place::Vm),
        (Backend::Auto, None) | (Backend::Host, None) => Ok(Place::Host),
        (Backend::Auto, Some(_)) => Ok(Place::Vm),
        (Backend::Host, Some(why)) => {
            bail!("--backend host is impossible here: {why}; use --backend vm (or auto)")
        }
    }
}

/// How a job ended, wherever it ran.
#[derive(Debug)]
pub enum Outcome {
    Host(job::JobResult),
    Vm(vm::VmReport),
}

impl Outcome {
    /// The job's result, when it ran to completion in either place.
    pub fn result(&self) -> Option<&job::JobResult> {
        match self {
            Outcome::Host(r) => Some(r),
            Outcome::Vm(vm::VmReport {
                end: vm::VmEnd::Finished(r),
                ..
            }) => Some(r),
            Outcome::Vm(_) => None,
        }
    }
}

/// Run a job in the chosen place: directly on this host (output to our stdout and stderr), or
/// in a VM booting `kernel` (`--kernel PATH`, else the fetched one).
pub fn run_job(
    job: &job::Job,
    place: Place,
    kernel: Option<&Path>,
    opts: &vm::VmOptions,
) -> Result<Outcome> {
    match place {
        Place::Host => Ok(Outcome::Host(exec::execute(job, exec::ExecIo::inherit()))),
        Place::Vm => {
            let k = crate::kernel::select(kernel)?;
            Ok(Outcome::Vm(vm::run(&k, job, opts)?))
        }
    }
}

/// Boots tried for one VM job when the guest kernel crashes under emulation.
pub const VM_TRIES: u32 = 3;

/// Run a job in a VM, booting again (at most [`VM_TRIES`] boots in all) when the guest kernel
/// crashed rather than the job failing: multi-threaded TCG now and then kills the guest with an
/// `Oops: int3` as a sched_ext scheduler is enabled or disabled (see
/// [`vm::VmReport::guest_crashed`]), which says nothing about the job. The guest's root is the
/// host's, read-only, so running the job again changes nothing outside its own job directory.
/// `say` hears about each new boot.
pub fn run_in_vm(
    job: &job::Job,
    kernel: Option<&Path>,
    opts: &vm::VmOptions,
    say: &dyn Fn(&str),
) -> Result<vm::VmReport> {
    let k = crate::kernel::select(kernel)?;
    let mut boots = 0;
    loop {
        boots += 1;
        let report = vm::run(&k, job, opts)?;
        if report.guest_crashed() && boots < VM_TRIES && !crate::interrupt::requested() {
            say(&format!(
                "the guest kernel crashed during the job (an emulation fault, log in {}); \
                 running it again (boot {} of at most {VM_TRIES})",
                report.console_log().display(),
                boots + 1
            ));
            continue;
        }
        return Ok(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_host_only_when_it_can() {
        assert_eq!(choose(Backend::Vm).unwrap(), Place::Vm);
        match host_unfit_reason() {
            None => assert_eq!(choose(Backend::Auto).unwrap(), Place::Host),
            Some(why) => {
                assert_eq!(choose(Backend::Auto).unwrap(), Place::Vm);
                let err = choose(Backend::Host).unwrap_err().to_string();
                assert!(err.contains(&why), "{err}");
            }
        }
    }

    #[test]
    fn the_host_place_runs_the_job_here() {
        let job = job::Job {
            work: job::Work::RunCommand {
                argv: vec!["sh".into(), "-c".into(), "exit 5".into()],
                cwd: None,
                env: vec![],
            },
        };
        let out = run_job(&job, Place::Host, None, &vm::VmOptions::default()).unwrap();
        assert_eq!(out.result().unwrap().status_code(), 5);
    }
}
