//! `schedgen verify`: compile (if needed), then load, attach and run a scheduler under load in a
//! sched_ext kernel, and report how far it got and why it stopped.
//!
//! The host side only prepares and collects: the object is compiled here against the target
//! kernel's headers, and the in-kernel part ([`super::runtime`]) runs as a job in the sandbox
//! VM (or directly on a sched_ext host when the user asks), writing its report as JSON.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::compile::{self, CompileReport, Headers};
use super::globals::Knob;
use super::runtime::{self, Failure, RuntimeJob, RuntimeReport, Stage};
use super::session::Knowledge;
use crate::sandbox::{self, job, vm, Backend, Place};

pub const VERIFY_SCHEMA: &str = "schedgen.verify/1";
/// File the in-kernel job writes its report to.
pub const RUNTIME_FILE: &str = "runtime.json";

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub duration_s: f64,
    pub backend: Backend,
    /// `--kernel PATH`; the fetched kernel otherwise.
    pub kernel: Option<PathBuf>,
    pub cpus: Option<usize>,
    pub memory_mib: u64,
    /// What the scheduler is told about the workload (long-task names, task classes).
    pub knowledge: Knowledge,
    /// The project's `bpf-reference/` directory (for `schedgen.bpf.h`).
    pub project_headers: PathBuf,
    /// `-I DIR` for the scheduler's own headers.
    pub include: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerifyReport {
    pub schema: String,
    pub input: String,
    pub object: Option<String>,
    pub kernel_release: String,
    /// `vm` or `host`.
    pub place: String,
    pub stage: Stage,
    pub passed: bool,
    pub failure: Option<Failure>,
    pub error: Option<String>,
    pub compile: Option<CompileReport>,
    pub runtime: Option<RuntimeReport>,
    /// The object's `const volatile` knobs with their compiled-in defaults (`--set` changes
    /// them).
    #[serde(default)]
    pub knobs: Vec<Knob>,
    /// The VM's serial console log, kept for review.
    pub console_log: Option<String>,
    /// QEMU start to the job's first instruction.
    pub vm_start_s: Option<f64>,
    pub total_s: f64,
}

impl VerifyReport {
    pub fn exit_status(&self) -> u8 {
        self.failure.map(Failure::exit_status).unwrap_or(0)
    }
}

/// Where compiled objects go: under the cache, because a VM guest cannot see the host's `/tmp`.
pub fn build_dir() -> PathBuf {
    crate::workload::prepare::cache_root().join("build")
}

/// Release and header directory of the kernel that work at `place` will run on: the sandbox's
/// kernel (fetched, or `--kernel`), or this host's own.
pub fn target_headers(place: Place, kernel: Option<&Path>) -> Result<(String, PathBuf)> {
    match place {
        Place::Vm => {
            let k = crate::kernel::select(kernel)?;
            k.ensure_bootable()?;
            Ok((k.release.clone(), crate::kernel::header_dir(&k)?))
        }
        Place::Host => Ok((crate::system::kernel_release(), host_headers()?)),
    }
}

/// A sandbox job running one of schedgen's hidden in-kernel subcommands (`scx-job`,
/// `bench-job`) with `--spec SPEC --out OUT`.
pub fn self_job(exe: &Path, subcommand: &str, spec: String, out: &Path) -> job::Job {
    job::Job {
        work: job::Work::RunCommand {
            argv: vec![
                exe.display().to_string(),
                subcommand.into(),
                "--spec".into(),
                spec,
                "--out".into(),
                out.display().to_string(),
            ],
            cwd: None,
            env: vec![],
        },
    }
}

/// Headers for the running kernel, generated once from its BTF (`/sys/kernel/btf/vmlinux`).
pub fn host_headers() -> Result<PathBuf> {
    let release = crate::system::kernel_release();
    let dir = crate::kernel::kernels_dir().join(format!("host-{release}"));
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    if !dir.join("kfuncs.h").exists() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        crate::kernel::btf::write_vmlinux_h(btf, &dir.join("vmlinux.h"))?;
        crate::kernel::btf::write_kfuncs_h(btf, &release, &dir.join("kfuncs.h"))?;
    }
    Ok(dir)
}

/// Compile `source` for `kernel_dir`'s kernel into the build directory.
pub fn compile_for(
    source: &Path,
    kernel_dir: &Path,
    project_headers: &Path,
    include: &[PathBuf],
) -> Result<CompileReport> {
    let stem = source
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("scheduler")
        .trim_end_matches(".c")
        .trim_end_matches(".bpf");
    // Private to this source and this process: two runs compiling different files of the same
    // name (or the same file at once) never load each other's object.
    let key = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(
            source
                .canonicalize()
                .unwrap_or_else(|_| source.to_path_buf())
                .as_os_str()
                .as_encoded_bytes(),
        );
        h.update(std::fs::read(source).unwrap_or_default());
        h.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let object = build_dir().join(format!("{stem}-{key}-{}.bpf.o", std::process::id()));
    let _ = std::fs::remove_file(&object);
    compile::compile(
        source,
        &object,
        &Headers::new(kernel_dir, project_headers).with_include(include),
    )
}

/// Verification up to the sched_ext kernel: the report so far, and the in-kernel job when the
/// scheduler compiled (`None`: it did not, and the report says so).
pub struct Prepared {
    pub report: VerifyReport,
    pub job: Option<RuntimeJob>,
    pub place: Place,
    started: Instant,
}

/// Compile (if needed) and check the knobs: everything verification does before the kernel.
pub fn prepare(input: &Path, opts: &VerifyOptions) -> Result<Prepared> {
    let started = Instant::now();
    if !input.exists() {
        anyhow::bail!("{} does not exist", input.display());
    }
    let place = sandbox::choose(opts.backend)?;
    let (kernel_release, kernel_dir) = target_headers(place, opts.kernel.as_deref())?;
    let mut report = VerifyReport {
        schema: VERIFY_SCHEMA.into(),
        input: input.display().to_string(),
        object: None,
        kernel_release,
        place: match place {
            Place::Vm => "vm".into(),
            Place::Host => "host".into(),
        },
        stage: Stage::Compile,
        passed: false,
        failure: None,
        error: None,
        compile: None,
        runtime: None,
        knobs: Vec::new(),
        console_log: None,
        vm_start_s: None,
        total_s: 0.0,
    };
    let is_object = input.extension().is_some_and(|e| e == "o");
    let object = if is_object {
        input.canonicalize()?
    } else {
        let c = compile_for(input, &kernel_dir, &opts.project_headers, &opts.include)?;
        let ok = c.ok;
        let obj = c.object.clone();
        report.compile = Some(c);
        if !ok {
            report.failure = Some(Failure::CompileError);
            report.error = Some("compilation failed".into());
            report.total_s = started.elapsed().as_secs_f64();
            return Ok(Prepared {
                report,
                job: None,
                place,
                started,
            });
        }
        PathBuf::from(obj.expect("ok compile has an object"))
    };
    report.object = Some(object.display().to_string());
    report.stage = Stage::Load;
    // A misspelt knob or a value that does not fit is the user's error: say so before booting.
    // Without settings, an object libbpf cannot even open is for the load stage to report.
    match super::globals::check_settings(&object, &opts.knowledge.settings) {
        Ok(knobs) => report.knobs = knobs,
        Err(_) if opts.knowledge.settings.is_empty() => {}
        Err(e) => return Err(e),
    }

    let mut knowledge = opts.knowledge.clone();
    if !knowledge.classes.is_empty() && knowledge.tracer.is_none() {
        knowledge.tracer = Some(crate::classify::tracer::tracer_object(
            &kernel_dir,
            &opts.project_headers,
        )?);
    }
    report.total_s = started.elapsed().as_secs_f64();
    Ok(Prepared {
        report,
        job: Some(RuntimeJob {
            object,
            duration_s: opts.duration_s,
            knowledge,
        }),
        place,
        started,
    })
}

impl Prepared {
    /// The report, completed with what the in-kernel job found (`None`: it left no report, and
    /// `report` already says why).
    pub fn finish(self, runtime: Option<RuntimeReport>) -> VerifyReport {
        let mut report = self.report;
        if let Some(rt) = runtime {
            report.stage = rt.stage;
            report.passed = rt.passed;
            report.failure = rt.failure;
            report.error = rt.error.clone();
            report.runtime = Some(rt);
        }
        report.total_s = self.started.elapsed().as_secs_f64();
        report
    }

    /// The report, completed with the verification a benchmark ran first in its boot: its
    /// time is the compile's and the in-kernel run's (the boot is the benchmark's).
    pub fn finish_in_benchmark(self, v: &crate::bench::result::Verification) -> VerifyReport {
        // Until `finish`, the report's total is the time `prepare` took.
        let prepare_s = self.report.total_s;
        let mut report = self.finish(Some(v.runtime.clone()));
        report.console_log = v.console_log.clone();
        report.total_s = prepare_s + v.runtime.load_s + v.runtime.enabled_s;
        report
    }
}

/// Verify a scheduler given as C source or a compiled object, in a boot of its own.
pub fn verify(input: &Path, opts: &VerifyOptions) -> Result<VerifyReport> {
    run_alone(prepare(input, opts)?, opts)
}

/// Run a prepared verification in a boot of its own (or on this host, when asked).
pub fn run_alone(mut prepared: Prepared, opts: &VerifyOptions) -> Result<VerifyReport> {
    let Some(rt_job) = prepared.job.take() else {
        return Ok(prepared.finish(None));
    };
    // Never beside a benchmark: it would measure this scheduler's load too.
    let machine = sandbox::lock::acquire(sandbox::lock::Use::Run, &|m| eprintln!("schedgen: {m}"))?;
    let runtime = match prepared.place {
        Place::Host => Some(runtime::run(&rt_job)),
        Place::Vm => run_in_vm(&rt_job, opts, &mut prepared.report)?,
    };
    drop(machine);
    Ok(prepared.finish(runtime))
}

fn run_in_vm(
    rt_job: &RuntimeJob,
    opts: &VerifyOptions,
    report: &mut VerifyReport,
) -> Result<Option<RuntimeReport>> {
    let exe = std::env::current_exe().context("cannot find the schedgen executable")?;
    let spec = serde_json::to_string(rt_job)?;
    let out = Path::new(crate::sandbox::guest::GUEST_JOB_DIR).join(RUNTIME_FILE);
    let job = self_job(&exe, "scx-job", spec, &out);
    let vm_opts = vm::VmOptions {
        cpus: opts.cpus,
        memory_mib: opts.memory_mib,
        // Boot, load and teardown under emulation take a while; the run itself is bounded.
        timeout: Duration::from_secs_f64(opts.duration_s + 120.0),
        init_binary: Some(exe),
    };
    let vm_report = sandbox::run_in_vm(&job, opts.kernel.as_deref(), &vm_opts, &|m| {
        eprintln!("schedgen: {m}")
    })?;
    report.console_log = Some(vm_report.console_log().display().to_string());
    report.vm_start_s = vm_report.start_to_job.map(|d| d.as_secs_f64());
    let file = vm_report.job_dir.join(RUNTIME_FILE);
    match job::read_json::<RuntimeReport>(&file) {
        Ok(rt) => Ok(Some(rt)),
        Err(_) => {
            let why = match &vm_report.end {
                vm::VmEnd::TimedOut => "the VM timed out".to_string(),
                vm::VmEnd::BootHung => "the guest hung while booting, twice".to_string(),
                vm::VmEnd::Interrupted => {
                    report.failure = Some(Failure::Interrupted);
                    report.error = Some("interrupted (Ctrl-C): the VM was stopped".into());
                    return Ok(None);
                }
                vm::VmEnd::NoResult => "the VM stopped without a result".to_string(),
                vm::VmEnd::Finished(r) => format!(
                    "the in-VM job ended with status {} without a report{}",
                    r.status_code(),
                    r.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            };
            report.failure = Some(Failure::Sandbox);
            report.error = Some(format!(
                "{why}; last console lines:\n{}",
                vm_report.console_tail(15)
            ));
            Ok(None)
        }
    }
}

/// The hidden `scx-job` command: run the in-kernel part and write its report.
pub fn scx_job(spec: &str, out: &Path) -> Result<u8> {
    let job: RuntimeJob = serde_json::from_str(spec).context("malformed scx-job spec")?;
    eprintln!(
        "scx-job: loading {} for {:.0} s on {}",
        job.object.display(),
        job.duration_s,
        crate::system::kernel_release()
    );
    let r = runtime::run(&job);
    if let Some(line) = r.outcome_line() {
        eprintln!("scx-job: {line}");
    }
    job::write_json(out, &r)?;
    Ok(if r.passed { 0 } else { 1 })
}
