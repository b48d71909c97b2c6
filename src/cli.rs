//! The command line: clap types only. Commands turn these into library requests.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::case::parse_scale;
use crate::sandbox::vm::parse_memory;
use crate::sandbox::Backend;

/// Write Linux sched_ext CPU schedulers for long-tail batch workloads, and prove them.
///
/// Every test case starts 39 short tasks and 1 long one together. The kernel's fair scheduler
/// shares the CPUs among all 40, so the long task finishes last; a scheduler that runs it first
/// cuts the total time (the makespan). schedgen measures the cases (`run`, `profile`), has a
/// model or its offline synthesiser write a sched_ext scheduler (`generate`), checks it in a
/// throw-away VM with a real sched_ext kernel (`verify`), measures it against the default
/// scheduler (`benchmark`), and keeps only what passes (`library`, `diff`).
///
/// Start with: schedgen generate --test ctest_suite
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

    /// Use this kernel image (vmlinuz, with its `config` beside it) instead of the one
    /// `schedgen kernel fetch` cached.
    #[arg(long, global = true, env = "SCHEDGEN_KERNEL", value_name = "PATH")]
    pub kernel: Option<PathBuf>,

    /// Where sched_ext work runs: auto (this host if it has sched_ext and we are root, else a
    /// VM), host, or vm.
    #[arg(long, global = true, value_enum, default_value_t = Backend::Auto, value_name = "WHERE")]
    pub backend: Backend,

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
    /// Run a case once under the current scheduler and describe it for a scheduler author.
    ///
    /// The profile lists every process the tasks ran (comm, exe, argv, CPU and wall time,
    /// context switches, share of time on CPU), which task forms the long tail and how to
    /// recognise it, and the best cut any scheduler could reach on this machine. As root the
    /// processes are traced with BPF (every one, exact CPU); otherwise `/proc` is sampled,
    /// which misses a process that lives less than the interval.
    Profile(ProfileArgs),
    /// Fetch and inspect the sched_ext kernel that schedulers are compiled for and run in.
    Kernel(KernelArgs),
    /// Run commands in a throw-away VM booting the sched_ext kernel.
    Vm(VmArgs),
    /// Compile a scheduler (C) for the BPF target against the sched_ext kernel's own headers.
    ///
    /// Diagnostics are printed as clang prints them; `--json` gives them structured (file,
    /// line, column, severity, message).
    Compile(CompileArgs),
    /// Static checks on a scheduler source, before compiling: the ones `generate` applies to a
    /// model's reply.
    ///
    /// Parses the file with libclang against the sched_ext kernel's headers and reports what
    /// would make it fail later, phrased as a fix: includes schedgen does not provide, a
    /// missing or non-GPL license, no (or more than one) named `sched_ext_ops`, calls to
    /// kfuncs this kernel does not export (naming the replacement of renamed ones), compiler
    /// errors. Exit status 0 when clean, 1 when problems were found.
    Check(CheckArgs),
    /// Check a scheduler in a real sched_ext kernel: compile, load (the kernel verifier decides),
    /// attach, run it under CPU and fork load, detach, and report the kernel's exit info.
    ///
    /// Runs in the sandbox VM unless `--backend host` (a sched_ext host, as root). Exit status:
    /// 0 passed, 10 compile error, 11 rejected by the verifier, 12 attach failed, 13 never
    /// enabled, 14 stalled tasks (watchdog), 15 called scx_bpf_error, 16 other kernel ejection,
    /// 3 the sandbox failed, 2 usage or environment error.
    Verify(VerifyArgs),
    /// Bring a scheduler written for an older sched_ext API to the target kernel.
    ///
    /// Applies the known API changes as rewrites of the calls they changed (each with the
    /// release that made it: `scx_bpf_dispatch`→`scx_bpf_dsq_insert` in 6.13, …), writes the
    /// result to OUT (the input is never modified), prints the diff, then verifies the port in
    /// the sandbox VM. With `--provider openai` a model repairs what the rewrites left. Exit
    /// status as for `verify`.
    Port(PortArgs),
    /// Run a command with a scheduler attached, then detach it.
    ///
    /// In the sandbox VM unless `--backend host`. Exits with the command's status, or 1 when
    /// the scheduler was ejected while it ran (the kernel's reason is printed). When the guest
    /// kernel crashes (an emulation fault now and then as a scheduler attaches or detaches),
    /// the VM boots again and runs the command anew, up to 3 boots; then exit 2 with the crash.
    Load(LoadArgs),
    /// Compare the default kernel scheduler with a custom one: interleaved runs, statistics,
    /// the theoretical bound, a verdict per case, and reports in results/<time>/.
    ///
    /// With no scheduler option each case uses its accepted scheduler from bpf-generated/,
    /// else the reference long-task-first scheduler. Everything runs in one sandbox VM boot
    /// (or on a sched_ext host with `--backend host`). Exit status: 0 when every case passes,
    /// 1 when one fails, 2 on a usage or environment error, 130 after Ctrl-C.
    Benchmark(BenchmarkArgs),
    /// Show the accepted schedulers (measured cut with its 95% interval, verdict, date,
    /// provider and model, attempts, tokens and estimated cost), or withdraw one.
    ///
    /// A scheduler is accepted into bpf-generated/ only when its confirmation benchmark passed
    /// and, if one was accepted before, it beat that one head to head; replaced and withdrawn
    /// ones are kept in bpf-generated/history/.
    Library(LibraryArgs),
    /// Show what an accepted scheduler changed: a unified diff against the reference it was
    /// shown, the scheduler it replaced, or any file.
    ///
    /// Exit status 0 whether or not they differ ("identical" when they are the same).
    Diff(DiffArgs),
    /// The measuring part of `benchmark` (run inside the sandbox, not by users).
    #[command(hide = true)]
    BenchJob(ScxJobArgs),
    /// Re-render a benchmark's report.md and SVG charts from DIR/bench.json and print its
    /// table. Exit status: 0 when every case passed, 1 when one failed, 2 when DIR holds
    /// no readable bench.json.
    Analyze(AnalyzeArgs),
    /// Write a scheduler for a case and keep it only if it proves itself.
    ///
    /// Profile → prompt → model (or the offline synthesiser) → static checks → compile and
    /// verify in the sandbox → repair with the diagnostics → benchmark → improve with the
    /// numbers → keep in bpf-generated/ when it passes the verdict and beats the accepted one.
    /// Every candidate and log stays in runs/<time>/<case>/. With no endpoint configured
    /// (OPENAI_BASE_URL / --base-url) the offline provider is used, and the output says so.
    ///
    /// Each case ends ACCEPTED, KEPT OLD (the accepted scheduler stays and passes: the candidate
    /// did not beat it head to head, is its code again, or fell short in fresh runs in which the
    /// accepted one still met the target), PASSED (passed with --confirm-runs 0: nothing kept),
    /// VERIFIED (--verify-only),
    /// REJECTED, or ERROR (the case could not be prepared, or the sandbox could not measure).
    /// Exit status: 0 when every case ends in one of the first four, 1 when one does not, 2 on a
    /// usage or environment error before any case ran, 130 after Ctrl-C.
    Generate(GenerateArgs),
    /// The in-kernel part of `verify` (run inside the sandbox, not by users).
    #[command(hide = true)]
    ScxJob(ScxJobArgs),
    /// PID 1 inside the VM (started by the kernel, not by users).
    #[command(hide = true)]
    GuestInit,
}

#[derive(Debug, Args)]
pub struct KernelArgs {
    #[command(subcommand)]
    pub command: KernelCommand,
}

#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// Download the newest Debian unstable cloud kernel (it has sched_ext), check its config,
    /// and generate vmlinux.h and kfuncs.h from its BTF. A no-op when already cached.
    Fetch {
        /// Download and regenerate even if this release is cached.
        #[arg(long)]
        force: bool,
    },
    /// Show the cached kernels and which one will be used.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct VmArgs {
    #[command(subcommand)]
    pub command: VmCommand,
}

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Boot the kernel, run CMD as root inside with the host's files visible read-only, stream
    /// its output, and exit with its exit status (124 on timeout, 130 after Ctrl-C).
    Run(VmRunArgs),
}

#[derive(Debug, Args)]
pub struct VmRunArgs {
    /// vCPUs [default: host cores, at most 4]; never more than the host's cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub cpus: Option<u16>,

    /// Guest memory: 512M, 2G, ...
    #[arg(long, default_value = "2G", value_parser = parse_memory, value_name = "SIZE")]
    pub memory: u64,

    /// Kill the VM after this many seconds, boot included.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub timeout: f64,

    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
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
    /// Case to run (repeat for several): an id from `schedgen list`, or a case file anywhere
    /// (`path/to/my_job.toml`, its scripts in `path/to/my_job/`; see cases/README.md).
    #[arg(long, short = 't', value_name = "ID|FILE")]
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

/// Which model answers: shared by `generate` and `port`.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelArgs {
    /// `openai` (any OpenAI-compatible endpoint) or `offline` (generate: the offline
    /// synthesiser; port: rewrites only) [default: openai when an endpoint is configured, else
    /// offline].
    #[arg(long, value_parser = ["openai", "offline"])]
    pub provider: Option<String>,

    /// Model name [env: SCHEDGEN_MODEL].
    #[arg(long)]
    pub model: Option<String>,

    /// Endpoint, e.g. http://localhost:8177/v1 [env: OPENAI_BASE_URL].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

impl ModelArgs {
    /// Whether a model is to answer: `--provider openai`, or no `--provider` and an endpoint
    /// configured (`--base-url` or the environment).
    pub fn uses_model(&self) -> bool {
        match self.provider.as_deref() {
            Some(p) => p == "openai",
            None => {
                self.base_url.is_some() || crate::generate::llm::EndpointConfig::configured_in_env()
            }
        }
    }

    /// The endpoint to call (flags, then the environment).
    pub fn endpoint(&self) -> anyhow::Result<crate::generate::llm::EndpointConfig> {
        crate::generate::llm::EndpointConfig::resolve(
            self.base_url.as_deref(),
            self.model.as_deref(),
            None,
        )
    }
}

/// How a scheduler that is not schedgen's own is built and loaded.
#[derive(Debug, Args, Clone, Default)]
pub struct BuildArgs {
    /// A directory of the scheduler's own headers, searched first (repeatable).
    #[arg(short = 'I', value_name = "DIR")]
    pub include: Vec<PathBuf>,
}

/// Load-time settings for a scheduler's `const volatile` knobs.
#[derive(Debug, Args, Clone, Default)]
pub struct KnobArgs {
    /// Set a `const volatile` knob before load, e.g. `--set slice_ns=5000000` (repeatable;
    /// `verify --json` lists a scheduler's knobs and their defaults).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<crate::bpf::globals::Setting>,

    /// Attach from this CPU, for schedulers whose init must run on a given CPU (scx_central
    /// checks it runs on its `central_cpu`).
    #[arg(long, value_name = "CPU")]
    pub attach_cpu: Option<usize>,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Scheduler source (`*.bpf.c`).
    pub source: PathBuf,

    /// Output object [default: <name>.bpf.o in schedgen's build cache].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildArgs,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scheduler source (`*.bpf.c`).
    pub source: PathBuf,

    #[command(flatten)]
    pub build: BuildArgs,

    /// Print the report as JSON (`checker`, `problems`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Scheduler source (`*.bpf.c`, in schedgen's or scx's dialect) or compiled object
    /// (`*.bpf.o`).
    pub scheduler: PathBuf,

    #[command(flatten)]
    pub build: BuildArgs,

    #[command(flatten)]
    pub knobs: KnobArgs,

    /// Seconds to keep the scheduler attached under load.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,

    /// Names (`comm`) of long-task processes, for schedulers with a `long_comms` map.
    #[arg(long = "long-comm", value_name = "COMM")]
    pub long_comms: Vec<String>,
    /// Task classes for the run-time classifier: a `profile` JSON (its `classes`) or a class
    /// set JSON. The scheduler reads them through `schedgen_class_of()` (schedgen.bpf.h).
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,

    /// VM vCPUs [default: min(host cores, 4)].
    #[arg(long, value_name = "N")]
    pub cpus: Option<usize>,

    /// VM memory, e.g. 2G.
    #[arg(long, default_value = "2G", value_parser = crate::sandbox::vm::parse_memory, value_name = "SIZE")]
    pub memory: u64,

    /// Print the full report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Also write the report JSON here.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// The scheduler to port (`*.bpf.c`); it is read, never written.
    pub source: PathBuf,

    /// Where to write the port [default: <name>.ported.bpf.c in the current directory].
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Only rewrite and compile; do not verify in the sandbox.
    #[arg(long)]
    pub no_verify: bool,

    /// Seconds the port runs under load when verified.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,

    /// The model that repairs what the rewrites leave broken (`offline`: rewrites only).
    #[command(flatten)]
    pub model: ModelArgs,

    /// Model repairs to try when the rewritten source does not compile or verify.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub max_repairs: u32,

    #[command(flatten)]
    pub build: BuildArgs,

    #[command(flatten)]
    pub knobs: KnobArgs,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").args(["test", "all"])))]
#[command(group(clap::ArgGroup::new("sched").args(["scheduler", "reference", "generated"])))]
pub struct BenchmarkArgs {
    /// Case to benchmark (repeat for several): an id or a case file, as for `run`
    /// [default: ctest_suite].
    #[arg(long, short = 't', value_name = "ID|FILE")]
    pub test: Vec<String>,

    /// Benchmark every case.
    #[arg(long)]
    pub all: bool,

    /// The scheduler to compare: a source (.bpf.c, in schedgen's or scx's dialect) or object
    /// (.bpf.o) file.
    #[arg(long, value_name = "FILE")]
    pub scheduler: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildArgs,

    #[command(flatten)]
    pub knobs: KnobArgs,

    /// A reference scheduler from bpf-reference/ by name (fifo, vtime, longfirst).
    #[arg(long, value_name = "NAME")]
    pub reference: Option<String>,

    /// Only accepted schedulers from bpf-generated/ (a case without one fails).
    #[arg(long)]
    pub generated: bool,

    /// Also run this scheduler (source or object), with the same task classes, interleaved
    /// in the same boot: the one to beat. The report gives the candidate's cut against it
    /// head to head; "beats" means its 95% interval lies above zero.
    #[arg(long, value_name = "FILE")]
    pub incumbent: Option<PathBuf>,

    /// Production sched_ext schedulers to run as arms of their own, by scx's short name
    /// (`bpfland,lavd`): installed once with `cargo install` into schedgen's cache, run as
    /// their own processes with their default options, checked enabled before and after
    /// every run. The report gives each one's cut and the candidate's cut against it.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub against: Vec<String>,

    /// Measured runs per arm.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,

    /// Warm-up runs before the measured rounds, discarded: the candidate first, then the other
    /// arms in turn [default: none after the bound's list run, which runs every task in the
    /// same boot just before, or when the case's data and programs are in the guest's memory;
    /// else 1].
    #[arg(long, value_name = "K")]
    pub warmup: Option<u64>,

    #[command(flatten)]
    pub comparison: ComparisonArgs,

    /// VM memory, e.g. 4G.
    #[arg(long, default_value = "4G", value_parser = crate::sandbox::vm::parse_memory, value_name = "SIZE")]
    pub memory: u64,

    /// Results directory [default: results/<time>/].
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,

    /// Stop the measuring VM after this many seconds.
    #[arg(long, default_value_t = 4.0 * 3600.0, value_name = "SECS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A benchmark results directory (results/<time>/), holding bench.json.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["test", "all"])))]
pub struct GenerateArgs {
    /// Case to write a scheduler for (repeat for several): an id or a case file, as for `run`.
    #[arg(long, short = 't', value_name = "ID|FILE")]
    pub test: Vec<String>,

    /// Every case, one after the other, with a summary table at the end.
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Seconds to wait for one model answer before retrying.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub llm_timeout: f64,

    /// Model answers per round (the first plus repairs).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,

    /// Benchmark rounds (each round after the first sends the model the numbers).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rounds: u32,

    #[command(flatten)]
    pub comparison: ComparisonArgs,

    /// Benchmark runs per arm.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    pub runs: u64,

    /// Benchmark warm-up runs before the measured rounds, discarded (the candidate first)
    /// [default: none after the bound's list run in the same boot, or when the case's data
    /// and programs are in the guest's memory; else 1].
    #[arg(long, value_name = "K")]
    pub warmup: Option<u64>,

    /// Most runs per arm of the confirmation: the kept candidate is benchmarked once more, in
    /// fresh runs, and the library records that cut, not the one of the runs that chose it
    /// (those are biased upwards). 0 skips it, and then nothing is kept: a pass ends PASSED
    /// [default: --runs].
    #[arg(long, value_name = "N")]
    pub confirm_runs: Option<u64>,

    /// Wall seconds a round's benchmark may take in the VM until its slowest verdict (every
    /// arm --runs times, the ablation retiring once the candidate beats it), e.g. 180. With `--scale auto`
    /// every size then shrinks below the short target's until the prediction from the sizing
    /// boot's timings fits, though never so far that start-up is more than half of a short
    /// task. Smaller sizes leave less of a cut: fixed costs of a run weigh more (ctest_suite,
    /// 2026-12-07: 29.9-31.1% at a 180-second budget, 31.7-33.2% at the default sizes, for a
    /// 30% target). 0: no limit; the sizing still says how long a round should take.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub budget: f64,

    /// Seconds each candidate runs under load in the sandbox before it is measured: first thing
    /// in its benchmark's boot (with --verify-only, in a boot of its own).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub verify_duration: f64,

    /// VM memory for verifying and benchmarking, e.g. 8G. The case's tasks write their files
    /// to the guest's RAM (its /tmp); a benchmark says when a run had to reclaim memory.
    #[arg(long, default_value = "4G", value_parser = crate::sandbox::vm::parse_memory, value_name = "SIZE")]
    pub memory: u64,

    /// The dialect the model is asked to write: `schedgen` (schedgen.bpf.h) or `scx` (scx's
    /// headers, as the ecosystem's schedulers are written).
    #[arg(long, default_value = "schedgen", value_parser = ["schedgen", "scx"])]
    pub dialect: String,

    /// Stop at the first candidate that passes verification: no benchmark, nothing kept
    /// (ends VERIFIED, exit 0). For measuring how often a model gets there.
    #[arg(long)]
    pub verify_only: bool,

    /// Sampling temperature sent to the model (low keeps a small model close to the rules).
    #[arg(long, default_value_t = 0.2, value_name = "T")]
    pub temperature: f32,

    /// Sampling seed sent to the model, for repeatable answers where the server honours it.
    #[arg(long, value_name = "N")]
    pub seed: Option<i64>,
}

/// How `benchmark` and `generate` compare schedulers: sizes, CPUs, and the cut to reach.
#[derive(Debug, Args)]
pub struct ComparisonArgs {
    /// `auto` sizes each case for the CPU count used (long task ≈ 39·short/(CPUs−1)), timing
    /// tasks alone on this host and then, when the benchmark runs in the VM, once more there
    /// (one boot) to correct the sizes; otherwise a number or preset as for `run`.
    #[arg(long, default_value = "auto", value_name = "S")]
    pub scale: String,

    /// With `--scale auto`: CPU seconds a short task should take on this host. The default
    /// gives ctest_suite runs of 16-24 s in the VM. The VM check raises every size on its own
    /// when start-up is more than half of a short task there (a compiler or an interpreter
    /// exec'd on a tiny input); a larger target shrinks that share further and lengthens the
    /// benchmark.
    #[arg(long, default_value_t = crate::bench::sizing::DEFAULT_SHORT_TARGET_S, value_name = "SECS")]
    pub short_target: f64,

    /// With `--scale auto`: most CPU seconds the long task may take on this host.
    #[arg(long, default_value_t = 4.0, value_name = "SECS")]
    pub long_cap: f64,

    /// VM vCPUs [default: min(host cores, 4)].
    #[arg(long, value_name = "N")]
    pub cpus: Option<usize>,

    /// The cut a scheduler must reach to PASS (and, in `generate`, to be kept).
    #[arg(long, default_value_t = 0.30, value_name = "CUT")]
    pub target: f64,

    /// Skip the ablation arm (the same scheduler with every process in one class). Without
    /// it the verdict cannot say whether the cut comes from knowing the long task.
    #[arg(long)]
    pub no_ablation: bool,

    /// Stop a case after this many runs per arm once more runs cannot change its verdict
    /// (the cut's whole 95% interval above the target, or below it); `--runs` is the most.
    /// An arm whose comparison is decided runs no more, from 2 runs per arm (the first count
    /// with an interval): the ablation once the candidate beats it, the incumbent once the
    /// head to head is won, lost or tied. With an
    /// incumbent the case stops once the candidate cannot be shown ahead of it within `--runs`
    /// (even if the means and spreads held, the interval would still reach zero): the
    /// incumbent stays. In `generate`, when a confirmation follows, a round stops as soon as
    /// its verdict passes, since the confirmation's fresh runs decide. Set it to `--runs` to
    /// always run every arm every time.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub min_runs: usize,

    /// Seed of the arms' order within each round (randomised blocks) [default: the clock;
    /// the report records it].
    #[arg(long, value_name = "N")]
    pub order_seed: Option<u64>,
}

impl ComparisonArgs {
    /// The validated `--scale`, and an error for a `--target` outside [0, 1).
    pub fn scale_choice(&self) -> Result<crate::bench::driver::ScaleChoice, String> {
        if !(0.0..1.0).contains(&self.target) {
            return Err("--target must be a fraction in [0, 1), e.g. 0.30".into());
        }
        if self.scale == "auto" {
            return Ok(crate::bench::driver::ScaleChoice::Auto);
        }
        parse_scale(&self.scale)
            .map(crate::bench::driver::ScaleChoice::Fixed)
            .map_err(|e| format!("--scale: {e} or auto"))
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LibraryArgs {
    /// Print JSON (one object per scheduler, numbers unformatted) instead of the table.
    #[arg(long)]
    pub json: bool,

    #[command(subcommand)]
    pub action: Option<LibraryAction>,
}

#[derive(Debug, Subcommand)]
pub enum LibraryAction {
    /// Take a case's accepted scheduler out of bpf-generated/ into history/<case>/, with the
    /// reason in its metadata: for one measured again and found wanting, or accepted under
    /// rules it would not pass today. The case then has no accepted scheduler, and the next
    /// candidate that passes is accepted without a head-to-head win.
    Withdraw {
        /// The case whose scheduler to withdraw.
        #[arg(value_name = "CASE")]
        case: String,

        /// Why, in words (kept in the history's metadata).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The case whose accepted scheduler (bpf-generated/CASE.bpf.c) to show.
    #[arg(value_name = "CASE")]
    pub case: String,

    /// What to compare it with: `reference` (the reference scheduler(s) its prompt showed,
    /// bpf-reference/longfirst.bpf.c when unrecorded), `previous` (the accepted scheduler it
    /// replaced), or a FILE path (write ./previous for a file named "previous").
    #[arg(
        long,
        default_value = "reference",
        value_name = "reference|previous|FILE"
    )]
    pub against: crate::library::DiffAgainst,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Scheduler source (`*.bpf.c`, in schedgen's or scx's dialect) or object (`*.bpf.o`).
    pub scheduler: PathBuf,

    #[command(flatten)]
    pub build: BuildArgs,

    #[command(flatten)]
    pub knobs: KnobArgs,

    /// Names (`comm`) of long-task processes, for schedulers with a `long_comms` map.
    #[arg(long = "long-comm", value_name = "COMM")]
    pub long_comms: Vec<String>,
    /// Task classes for the run-time classifier: a `profile` JSON (its `classes`) or a class
    /// set JSON. The scheduler reads them through `schedgen_class_of()` (schedgen.bpf.h).
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,
    /// A compiled classifier tracer (compiled for the target kernel when not given).
    #[arg(long, value_name = "FILE.o", hide = true)]
    pub tracer: Option<PathBuf>,

    /// VM vCPUs [default: min(host cores, 4)].
    #[arg(long, value_name = "N")]
    pub cpus: Option<usize>,

    /// VM memory, e.g. 2G.
    #[arg(long, default_value = "2G", value_parser = crate::sandbox::vm::parse_memory, value_name = "SIZE")]
    pub memory: u64,

    /// Stop the VM after this many seconds.
    #[arg(long, default_value_t = 600.0, value_name = "SECS")]
    pub timeout: f64,

    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScxJobArgs {
    /// The job, as JSON.
    #[arg(long)]
    pub spec: String,
    /// Where to write the report.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Case to profile: an id from `schedgen list`, or a case file, as for `run`.
    #[arg(long, short = 't', value_name = "ID|FILE")]
    pub test: String,

    /// Size multiplier, as for `run`.
    #[arg(long, short, default_value = "full", value_parser = parse_scale, value_name = "S")]
    pub scale: f64,

    /// Where to write the profile JSON [default: results/profile-<case>.json].
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// Sampling interval, milliseconds, when the monitor cannot trace. As root it traces
    /// every fork, exec and exit with BPF instead, so no process is missed however short.
    #[arg(long, default_value_t = 50, value_name = "MS", value_parser = clap::value_parser!(u64).range(5..))]
    pub monitor_interval: u64,

    /// Kill the tasks if they have not all finished after this many seconds.
    #[arg(long, default_value_t = 1800.0, value_name = "SECS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct DepsArgs {
    /// Only this case's dependencies (an id, or a case file as for `run`).
    #[arg(long, short = 't', value_name = "ID|FILE")]
    pub test: Option<String>,

    /// Install the missing Debian packages with apt-get (needs root), and the production
    /// schedulers named by --production.
    #[arg(long)]
    pub install: bool,

    /// Instead of the cases' packages, the production sched_ext schedulers that `benchmark
    /// --against` runs (`bpfland,lavd`): whether each is in schedgen's cache, and its version.
    /// With --install, builds the missing ones with `cargo install` (minutes each).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub production: Vec<String>,
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
