//! The host half of `schedgen benchmark`: pick each case's scheduler, compile it, size and
//! prepare the case, hand everything to one measuring job (one VM boot for the whole
//! benchmark), and turn what comes back into statistics and verdicts.
//!
//! A case that cannot be prepared or whose scheduler does not compile is reported and the rest
//! goes on; if the VM dies, the cases it finished are kept and the others say why they have no
//! numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::job::{self, BenchJob, CaseJob};
use super::result::{BenchResult, CaseBench, SchedulerRef, Verification, BENCH_SCHEMA};
use super::sizing::{self, SizingOptions};
use super::summarize::{self, CaseMeta};
use crate::bpf::session::Knowledge;
use crate::bpf::verify::{compile_for, self_job, target_headers};
use crate::case::Case;
use crate::classify::rules::ClassSet;
use crate::model::Demand;
use crate::paths::ProjectPaths;
use crate::sandbox::{self, job as sjob, vm, Backend, Outcome, Place};
use crate::workload::result::RunResult;
use crate::workload::{prepare, RunRequest};

/// Reference scheduler used when a case has no accepted generated one.
pub const DEFAULT_REFERENCE: &str = "longfirst";
const RAW_FILE: &str = "bench-raw.jsonl";

/// Which scheduler to benchmark.
#[derive(Debug, Clone)]
pub enum SchedulerChoice {
    /// The accepted scheduler in bpf-generated/ for each case, else the reference long-first one.
    Auto,
    /// Only accepted generated schedulers; a case without one is reported as an error.
    Generated,
    /// A reference scheduler by name (bpf-reference/NAME.bpf.c).
    Reference(String),
    /// A source or object file.
    File(PathBuf),
}

#[derive(Debug, Clone, Copy)]
pub enum ScaleChoice {
    Auto,
    Fixed(f64),
    /// Sizes chosen earlier (by auto-sizing): the scale and the long task's extra factor.
    Sized {
        scale: f64,
        long_scale: f64,
    },
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub scheduler: SchedulerChoice,
    pub runs: usize,
    /// Warm-up runs; `None`: none after the bound's list run in the same boot, else 1.
    pub warmup: Option<usize>,
    pub scale: ScaleChoice,
    pub cpus: Option<usize>,
    pub target: f64,
    pub backend: Backend,
    pub kernel: Option<PathBuf>,
    pub memory_mib: u64,
    pub timeout: Duration,
    pub short_target_s: f64,
    pub long_cap_s: f64,
    /// Also run each scheduler's ablation (its knowledge of the long task taken away).
    pub ablation: bool,
    /// Task classes to give the scheduler; learned from a profile at the benchmarked sizes
    /// when not given.
    pub classes: Option<ClassSet>,
    /// The programs the case's processes exec, from the profile that gave `classes`: loaded
    /// from the guest's memory with the data. Learned with the classes when those are not given.
    pub programs: Vec<String>,
    /// The same profile saw the long task's processes run side by side (a pipeline, threads):
    /// the bound times it free as well as held to one CPU, for its width.
    pub long_runs_wide: bool,
    /// `-I DIR` for the scheduler's own headers.
    pub include: Vec<PathBuf>,
    /// `--set NAME=VALUE` for its knobs.
    pub settings: Vec<crate::bpf::globals::Setting>,
    /// `--attach-cpu`.
    pub attach_cpu: Option<usize>,
    /// A scheduler to run head to head with the candidate, with the same knowledge (source or
    /// object): the accepted one it would replace, or the previous round's.
    pub incumbent: Option<PathBuf>,
    /// A case may stop after this many runs per arm once its verdict is settled (`runs` is
    /// the most).
    pub min_runs: usize,
    /// The verdict only screens for a confirmation that follows in fresh runs: a case stops as
    /// soon as the verdict's rule passes (`summarize::Settle::screen`).
    pub screen: bool,
    /// Seed of the arms' order in each round; drawn from the clock when not given.
    pub order_seed: Option<u64>,
    /// Production schedulers (scx's short names) to run as arms of their own.
    pub against: Vec<String>,
    /// A bound an earlier benchmark measured at the same sizes, on the same kind of machine,
    /// with where it came from: reused instead of timing the tasks alone again (a single case).
    pub known_bound: Option<super::result::Bound>,
    /// With `--scale auto` and the VM, check the host-chosen sizes there (one boot) and
    /// correct the long task's; off when nothing will be benchmarked.
    pub size_in_vm: bool,
    /// With `--scale auto` and the VM: what a benchmark at the chosen sizes will run, to say
    /// how long it will take, and the budget its slowest verdict must fit, if any
    /// (`generate --budget`): every size shrinks until it does.
    pub budget: Option<TimeBudget>,
    /// Verify a scheduler in the benchmark's boot before measuring (`generate`'s candidate):
    /// one that fails measures nothing, and `BenchResult::verification` says why.
    pub verify_first: Option<crate::bpf::runtime::RuntimeJob>,
}

/// What one candidate's benchmark runs, and the wall seconds it may take, if limited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeBudget {
    pub seconds: Option<f64>,
    pub plan: super::budget::Plan,
    /// What the confirmation that follows a passing round runs, to say how long it takes too.
    pub confirm: Option<super::budget::Plan>,
}

/// Resolve the scheduler source for a case.
pub fn scheduler_for(
    paths: &ProjectPaths,
    case: &Case,
    choice: &SchedulerChoice,
) -> Result<SchedulerRef> {
    let long_comms = case.long_task.comm.clone();
    let reference = |name: &str| -> Result<SchedulerRef> {
        let p = paths.bpf_reference().join(format!("{name}.bpf.c"));
        anyhow::ensure!(
            p.exists(),
            "no reference scheduler `{name}` ({} does not exist)",
            p.display()
        );
        Ok(SchedulerRef {
            kind: "reference".into(),
            path: p.display().to_string(),
            long_comms: long_comms.clone(),
            classes: ClassSet::default(),
        })
    };
    let generated = paths
        .root
        .join("bpf-generated")
        .join(format!("{}.bpf.c", case.id));
    match choice {
        SchedulerChoice::File(p) => Ok(SchedulerRef {
            kind: "file".into(),
            path: p
                .canonicalize()
                .with_context(|| format!("{} does not exist", p.display()))?
                .display()
                .to_string(),
            long_comms,
            classes: ClassSet::default(),
        }),
        SchedulerChoice::Reference(name) => reference(name),
        SchedulerChoice::Generated => {
            anyhow::ensure!(
                generated.exists(),
                "no accepted scheduler for `{}` in bpf-generated/: run `schedgen generate --test {}`",
                case.id,
                case.id
            );
            Ok(SchedulerRef {
                kind: "generated".into(),
                path: generated.display().to_string(),
                long_comms,
                classes: ClassSet::default(),
            })
        }
        SchedulerChoice::Auto if generated.exists() => Ok(SchedulerRef {
            kind: "generated".into(),
            path: generated.display().to_string(),
            long_comms,
            classes: ClassSet::default(),
        }),
        SchedulerChoice::Auto => reference(DEFAULT_REFERENCE),
    }
}

/// Progress messages for the terminal.
pub type Progress<'a> = &'a dyn Fn(&str);

/// Run a benchmark of `cases`; results (also partial ones) are returned, not written.
pub fn run(
    paths: &ProjectPaths,
    cases: &[Case],
    opts: &BenchOptions,
    work_dir: &Path,
    progress: Progress,
) -> Result<BenchResult> {
    let started_at = chrono::Local::now().to_rfc3339();
    let place = sandbox::choose(opts.backend)?;
    let cpus = match place {
        Place::Vm => vm::vcpus(opts.cpus),
        Place::Host => crate::system::cpu_count(),
    };
    let (kernel_release, kernel_dir) = target_headers(place, opts.kernel.as_deref())?;
    let production = opts
        .against
        .iter()
        .map(|name| super::production::ensure(name, progress))
        .collect::<Result<Vec<_>>>()?;
    for p in &production {
        progress(&format!(
            "{} {} ({}) runs as an arm of its own, with its default options",
            p.binary_name,
            p.version,
            p.binary.display()
        ));
    }

    let mut jobs: Vec<CaseJob> = Vec::new();
    let mut metas: BTreeMap<String, CaseMeta> = BTreeMap::new();
    let mut failed: Vec<CaseBench> = Vec::new();
    for case in cases {
        if crate::interrupt::requested() {
            break;
        }
        let mut meta = CaseMeta {
            test_id: case.id.clone(),
            test_name: case.name.clone(),
            scheduler: SchedulerRef {
                kind: "none".into(),
                path: String::new(),
                long_comms: vec![],
                classes: ClassSet::default(),
            },
            sizes: BTreeMap::new(),
            scale: 1.0,
            long_scale: 1.0,
            incumbent: None,
            incumbent_sha256: None,
            production: Vec::new(),
        };
        meta.production = production.clone();
        match prepare_case(paths, case, opts, cpus, &kernel_dir, &mut meta, progress) {
            Ok(mut job) => {
                job.production = production.clone();
                metas.insert(case.id.clone(), meta);
                jobs.push(job);
            }
            Err(e) => {
                progress(&format!("{}: {e:#}", case.id));
                failed.push(summarize::failed(meta, format!("{e:#}")));
            }
        }
    }

    let order_seed = opts.order_seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let min_runs = opts.min_runs.clamp(2, opts.runs.max(2)).min(opts.runs);
    let bench_job = BenchJob {
        cases: jobs,
        runs: opts.runs,
        warmup: opts.warmup,
        measure_bound: true,
        list_run: true,
        order_seed,
        stop_early: (min_runs < opts.runs).then_some(job::StopEarly {
            min_runs,
            target: opts.target,
            screen: opts.screen,
        }),
        verify_first: opts.verify_first.clone(),
        data_in_memory: place == Place::Vm,
        crash_after_round: std::env::var("SCHEDGEN_TEST_CRASH_AFTER_ROUND")
            .ok()
            .and_then(|v| v.parse().ok()),
    };
    let Measured {
        raws,
        error: vm_error,
        verification,
    } = if bench_job.cases.is_empty() {
        Measured::default()
    } else {
        measure(&bench_job, place, opts, work_dir, progress)?
    };
    let vm_error = match &verification {
        Some(v) if !v.runtime.passed => Some(format!(
            "the scheduler failed its verification ({}), so nothing was measured",
            v.runtime
                .failure
                .map_or("no verdict", crate::bpf::runtime::Failure::describe)
        )),
        _ => vm_error,
    };

    let mut out: Vec<CaseBench> = Vec::new();
    let mut measured_cpus = cpus;
    for job in &bench_job.cases {
        let id = &job.request.case.id;
        let meta = metas.remove(id).expect("meta for every job");
        match raws.iter().find(|r| &r.test_id == id) {
            Some(raw) => {
                measured_cpus = raw.cpus.max(1);
                out.push(summarize::summarize(raw.clone(), meta, opts.target));
            }
            None => out.push(summarize::unmeasured(
                meta,
                vm_error
                    .clone()
                    .unwrap_or_else(|| "the measuring job stopped before this case".into()),
            )),
        }
    }
    out.extend(failed);
    // Keep the order the user asked for.
    out.sort_by_key(|c| {
        cases
            .iter()
            .position(|k| k.id == c.test_id)
            .unwrap_or(usize::MAX)
    });
    Ok(BenchResult {
        schema: BENCH_SCHEMA.into(),
        started_at,
        finished_at: chrono::Local::now().to_rfc3339(),
        place: match place {
            Place::Vm => "vm".into(),
            Place::Host => "host".into(),
        },
        kernel_release,
        cpus: measured_cpus,
        runs_per_arm: opts.runs,
        min_runs,
        order_seed,
        // What ran, which with the default depends on the boot.
        warmup: out
            .iter()
            .map(|c| c.runs.iter().filter(|r| r.warmup).count())
            .max()
            .unwrap_or(0),
        target: opts.target,
        cases: out,
        verification,
    })
}

fn prepare_case(
    paths: &ProjectPaths,
    case: &Case,
    opts: &BenchOptions,
    cpus: usize,
    kernel_dir: &Path,
    meta: &mut CaseMeta,
    progress: Progress,
) -> Result<CaseJob> {
    meta.scheduler = scheduler_for(paths, case, &opts.scheduler)?;
    let compile = |source: &Path, what: &str| -> Result<PathBuf> {
        if source.extension().is_some_and(|e| e == "o") {
            return Ok(source.to_path_buf());
        }
        progress(&format!("{}: compiling {}", case.id, source.display()));
        let c = compile_for(source, kernel_dir, &paths.bpf_reference(), &opts.include)?;
        if !c.ok {
            let first = c
                .errors()
                .next()
                .map(|d| format!("{}:{}: {}", d.file, d.line, d.message))
                .unwrap_or_default();
            anyhow::bail!("the {what} does not compile: {first}");
        }
        Ok(PathBuf::from(c.object.expect("compiled object")))
    };
    let object = compile(Path::new(&meta.scheduler.path), "scheduler")?;
    let incumbent = match &opts.incumbent {
        Some(p) => {
            let o = compile(p, "incumbent")?;
            crate::bpf::globals::check_settings(&o, &opts.settings)?;
            meta.incumbent = Some(p.display().to_string());
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the incumbent {}", p.display()))?;
            meta.incumbent_sha256 = Some(crate::library::sha256_bytes(&bytes));
            Some(o)
        }
        None => None,
    };

    let mut req = size_and_prepare(paths, case, opts, cpus, progress)?;
    let (classes, programs, long_runs_wide) = match &opts.classes {
        Some(c) => (c.clone(), opts.programs.clone(), opts.long_runs_wide),
        None => {
            progress(&format!(
                "{}: profiling at these sizes on this host to learn the task classes",
                case.id
            ));
            let p = profile_at(paths, &req, &case.description)?;
            progress(&format!("{}: {}", case.id, p.task_classes.explanation));
            let (programs, wide) = (p.programs(), p.long_runs_wide());
            (p.task_classes.classes, programs, wide)
        }
    };
    let tracer = if classes.is_empty() {
        None
    } else {
        Some(crate::classify::tracer::tracer_object(
            kernel_dir,
            &paths.bpf_reference(),
        )?)
    };
    req.monitor_interval_ms = None;
    meta.sizes = req.sizes();
    meta.scale = req.scale;
    meta.long_scale = req.long_scale;
    meta.scheduler.classes = classes.clone();
    crate::bpf::globals::check_settings(&object, &opts.settings)?;
    let knowledge = Knowledge {
        settings: opts.settings.clone(),
        attach_cpu: opts.attach_cpu,
        // Every arm gets the names (an incumbent written before task classes may need them);
        // the loader writes them only into a scheduler with a map for them.
        long_comms: meta.scheduler.long_comms.clone(),
        classes,
        tracer,
    };
    // The report says the scheduler was told the names only when it had a map for them.
    if !crate::bpf::loader::takes_long_comms(&object)? {
        meta.scheduler.long_comms.clear();
    }
    Ok(CaseJob {
        request: req,
        object,
        scheduler: meta.scheduler.clone(),
        knowledge,
        ablation: opts.ablation,
        incumbent,
        production: Vec::new(),
        known_bound: opts.known_bound.clone(),
        resume: None,
        programs,
        short_probes: Vec::new(),
        long_runs_wide,
    })
}

/// Size a case for `cpus` CPUs as `opts` says (auto-sizing times tasks alone on this host) and
/// prepare its data. The request comes back with the data set up.
pub fn size_and_prepare(
    paths: &ProjectPaths,
    case: &Case,
    opts: &BenchOptions,
    cpus: usize,
    progress: Progress,
) -> Result<RunRequest> {
    let mut req = RunRequest::new(case.clone(), paths.assets());
    req.monitor_interval_ms = None;
    let deps = crate::workload::deps::check(case, &req.python);
    if let Some(msg) = crate::workload::deps::missing_message(&deps) {
        anyhow::bail!("skipped: {msg}");
    }
    match opts.scale {
        ScaleChoice::Fixed(s) => req.scale = s,
        ScaleChoice::Sized { scale, long_scale } => {
            req.scale = scale;
            req.long_scale = long_scale;
        }
        ScaleChoice::Auto => {
            progress(&format!(
                "{}: sizing for {cpus} CPUs (timing tasks alone on this host)",
                case.id
            ));
            let s = sizing::auto_size(
                &req,
                &SizingOptions {
                    cpus,
                    short_target_s: opts.short_target_s,
                    long_cap_s: opts.long_cap_s,
                },
            )?;
            progress(&format!(
                "{}: scale {:.4}, long ×{:.2}: short {:.3} s, long {:.3} s here → best possible cut {:.1}% on {cpus} CPUs{}",
                case.id,
                s.scale,
                s.long_scale,
                s.short_cpu_s,
                s.long_cpu_s,
                s.predicted.best_cut * 100.0,
                s.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            ));
            req.scale = s.scale;
            req.long_scale = s.long_scale;
            let (mut best_cut, mut width) = (s.predicted.best_cut, 1.0);
            if opts.size_in_vm && sandbox::choose(opts.backend)? == Place::Vm {
                let sizing_opts = SizingOptions {
                    cpus,
                    short_target_s: opts.short_target_s,
                    long_cap_s: opts.long_cap_s,
                };
                let found = correct_in_vm(paths, &mut req, &s, &sizing_opts, opts, progress)?;
                if let Some(m) = found.predicted {
                    best_cut = m.best_cut;
                }
                width = found.long_width;
            }
            if best_cut < opts.target {
                // Say it before the runs are spent: only costs the CPU-time model does not
                // count (crowding, start-up) could carry a scheduler to the target here.
                progress(&format!(
                    "{}: warning: at these sizes the best possible cut ({:.1}%) is below the {:.0}% \
                     target; a PASS needs gains the CPU-time model does not predict ({})",
                    case.id,
                    best_cut * 100.0,
                    opts.target * 100.0,
                    more_room(cpus, width, opts.target)
                ));
            }
        }
    }
    if req.prepared.is_none() {
        progress(&format!("{}: preparing data", case.id));
        req.prepared = Some(prepare::prepare(&req)?);
    }
    Ok(req)
}

/// How a case below the target could get more room: longer long tasks, unless the long task
/// alone keeps so many CPUs busy that no length offers the target.
pub(crate) fn more_room(cpus: usize, long_width: f64, target: f64) -> String {
    let most = crate::model::best_cut_at_ideal_length(crate::case::SHORT_TASKS, cpus, long_width);
    if most < target {
        format!(
            "no sizes reach it on {cpus} CPUs: the long task keeps {long_width:.2} of them busy by \
             itself, which leaves at most {:.1}% at any length",
            most * 100.0
        )
    } else {
        "raise --long-cap or --short-target for more room".into()
    }
}

/// What the sizing boot found: the model at the sizes it chose (None when it kept them), and
/// the long task's width there.
struct VmSizing {
    predicted: Option<crate::model::MakespanModel>,
    long_width: f64,
}

/// The most boots one benchmark may take while each crashed boot still records runs.
const MAX_BENCH_BOOTS: u32 = 12;

/// Runs recorded so far: those of finished cases and of the one a crashed boot left partial.
fn recorded(raws: &[job::CaseRaw], partial: &Option<job::CaseRaw>) -> usize {
    raws.iter().map(|r| r.runs.len()).sum::<usize>() + partial.as_ref().map_or(0, |p| p.runs.len())
}

/// Time one short and the long task alone in the sandbox VM at the sizes this host chose, and
/// correct the sizes by what the VM measured: a fork, an exec and the page-ins after each run's
/// cache drop cost far more there, so a short task is relatively longer and host-chosen sizes
/// offer less of a tail than predicted (ctest_suite, 2026-12-04: 32.5% predicted, 28.2%
/// measured). A short task is timed again, and twice at larger sizes, to tell its start-up from
/// its work; when start-up is most of it, every size grows until it is at most half
/// ([`sizing::MAX_STARTUP_SHARE`]). Then the long task is stretched to the ideal length for
/// the short task there, as a run has it: every task is run once more, in the longest-first
/// order, one per CPU at a time, since under emulation a task beside another on the other vCPU
/// takes more CPU time than alone, and a short one more so (ctest_suite, 2026-12-07: short
/// tasks 21% more, the long one 0-4%, so sizes from times alone offered 30% where 32.6% was
/// predicted, and the same candidate's cut fell from 32.8% to 29.9%). Costs one boot and the
/// tasks' time (about 30 s of tasks at ctest_suite's sizes). The request comes back prepared at
/// the final sizes; with it, the bound they predict when the sizes changed, and the long task's width.
fn correct_in_vm(
    paths: &ProjectPaths,
    req: &mut RunRequest,
    sized: &sizing::Sizing,
    sizing_opts: &SizingOptions,
    opts: &BenchOptions,
    progress: Progress,
) -> Result<VmSizing> {
    let id = req.case.id.clone();
    progress(&format!("{id}: preparing data"));
    req.prepared = Some(prepare::prepare(req)?);
    // The programs load from the guest's memory here as in the benchmark's runs: through
    // virtio-fs a short task's start-up costs more, and varies more from boot to boot
    // (ctest_suite, 2026-12-07: 0.436 s in a sizing boot for a short task that took 0.294 s
    // with its programs in memory, so the long task was stretched ×1.54 where ×1.2 was right).
    let (programs, wide) = if opts.programs.is_empty() {
        progress(&format!(
            "{id}: profiling one run on this host for the programs it execs"
        ));
        let p = profile_at(paths, req, &req.case.description)?;
        (p.programs(), p.long_runs_wide())
    } else {
        (opts.programs.clone(), opts.long_runs_wide)
    };
    // The larger probe's long task is not run: its data stays small.
    let mut larger = req.clone();
    larger.scale = sizing::probe_scale(&req.case, req.scale);
    larger.long_scale = req.scale / larger.scale;
    larger.prepared = Some(prepare::prepare(&larger)?);
    let effective = |scale: f64| req.case.effective_scale(scale);
    let larger_scale = larger.scale;
    let times = effective(larger_scale) / effective(req.scale).max(1e-12);
    let free = if wide {
        " (and free, its processes having run side by side)"
    } else {
        ""
    };
    progress(&format!(
        "{id}: timing two short tasks and the long one alone{free} in the sandbox VM at these sizes, then every task in the longest-first order, then a short one again and twice at {times:.1}x"
    ));
    // Each size twice more, the fit on the fastest of each: one timing in the VM varies by
    // 8-13%, and interpreter_rows' start-up share came out 80% and 58% in two boots from one.
    let probes = vec![req.clone(), larger.clone(), larger];
    let (bound, probes) = time_alone_in_vm(req, probes, programs, wide, opts, progress)?;
    let (short_s, long_s) = (bound.short_alone_s, bound.long_alone_s);
    progress(&format!(
        "{id}: in the VM a short task took {short_s:.3} s ({:.3} s the first, paging in its programs) and the long one {long_s:.3} s ({:.1}x, best possible cut {:.1}%)",
        bound.first_short_s.unwrap_or(short_s),
        long_s / short_s.max(1e-9),
        bound.model.best_cut * 100.0
    ));

    // What running beside another task costs each kind, against its fastest time alone.
    let small_alone = probes.first().map_or(short_s, |again| short_s.min(*again));
    let (short_beside, long_beside) = bound.list.as_ref().map_or((1.0, 1.0), |l| {
        (
            l.short_cpu_s / small_alone.max(1e-9),
            l.long_cpu_s / long_s.max(1e-9),
        )
    });
    if let Some(l) = &bound.list {
        progress(&format!(
            "{id}: one per CPU at a time, a short task took {:.3} s (×{short_beside:.2} its time alone) and the long one {:.3} s (×{long_beside:.2})",
            l.short_cpu_s, l.long_cpu_s
        ));
    }

    let fit = match probes[..] {
        [_, big1, big2] => {
            let (small, big) = (small_alone, big1.min(big2));
            let fit =
                sizing::StartUp::fit(effective(req.scale), small, effective(larger_scale), big);
            progress(&match &fit {
                Some(f) => format!(
                    "{id}: a short task took {small:.3} s at these sizes and {big:.3} s at {times:.1}x (the faster of two each): {:.3} s of one is start-up ({:.0}%)",
                    f.fixed_s,
                    f.share(effective(req.scale)) * 100.0
                ),
                None => format!(
                    "{id}: a short task took {small:.3} s at these sizes and {big:.3} s at {times:.1}x, no longer: start-up not told from work, sizes kept"
                ),
            });
            fit
        }
        _ => {
            progress(&format!(
                "{id}: the short task was not timed at a larger size; its start-up is not known"
            ));
            None
        }
    };
    let raise = fit.and_then(|f| {
        sizing::startup_raise(sized, effective(req.scale), &f, long_s, sizing_opts)
            .map(|factor| (f, factor))
    });

    // What the tasks take in the VM at the sizes chosen so far: measured, or predicted from
    // the start-up fit after a raise (the long task's time assumed linear in its sizes).
    let mut at = sized.clone();
    let (mut short_vm, mut long_vm) = (short_s, long_s);
    if let Some((f, factor)) = raise {
        // The factor is on the short task's rounded sizes; the scale that gives them may be a
        // larger multiple (compiler_build at 0.005: 1 function of 60), and the long task's
        // sizes, which round finely, grow by that multiple.
        let wanted = effective(req.scale) * factor;
        let scale = sizing::scale_reaching(
            &req.case,
            (req.scale * factor).min(wanted).max(req.scale),
            wanted,
        );
        let nominal = scale / req.scale;
        short_vm = f.at(effective(scale));
        long_vm = long_s * nominal;
        at.scale = scale;
        at.long_cpu_s = sized.long_cpu_s * nominal;
        progress(&format!(
            "{id}: sizes ×{factor:.2} (scale ×{nominal:.2}, for the rounding) so that start-up is at most {:.0}% of a short task: about {short_vm:.3} s there",
            sizing::MAX_STARTUP_SHARE * 100.0
        ));
        req.scale = scale;
    }
    let (mut short_vm, mut long_vm) = (short_vm * short_beside, long_vm * long_beside);
    let width = bound.long_width();
    if width > 1.0 {
        progress(&format!(
            "{id}: free to use every CPU, the long task kept {width:.2} CPUs busy ({:.3} s of CPU in {:.3} s; {:.3} s held to one), so it can take {:.0}% of the machine by itself",
            bound.long_free.map_or(0.0, |f| f.cpu_s),
            bound.long_free.map_or(0.0, |f| f.wall_s),
            bound.long_alone_s,
            width / sizing_opts.cpus.max(1) as f64 * 100.0
        ));
    }
    let limit = opts
        .budget
        .and_then(|b| b.seconds.map(|seconds| (b, seconds)));
    let shrunk = match (limit, fit) {
        (Some((budget, seconds)), Some(f)) => {
            let shrink = shrink_for_budget(
                req,
                &at,
                &f,
                short_beside,
                Demand {
                    cpu_s: long_vm,
                    width,
                },
                (&budget.plan, seconds),
                sizing_opts,
            );
            if let Some(s) = &shrink {
                progress(&s.describe(&id, &budget.plan, seconds));
            }
            let shrink = shrink.filter(|s| s.factor < 1.0);
            if let Some(s) = &shrink {
                req.scale *= s.factor;
                at.scale = req.scale;
                at.long_cpu_s *= s.factor;
                short_vm = s.short_s;
                long_vm *= s.factor;
            }
            shrink
        }
        (Some(_), None) => {
            progress(&format!(
                "{id}: sizes not fitted to the time budget: a short task's start-up is not known"
            ));
            None
        }
        (None, _) => None,
    };
    let corrected = sizing::correct(&at, short_vm, long_vm, width, sizing_opts);
    if let Some(b) = &opts.budget {
        let long_final = Demand {
            cpu_s: corrected.as_ref().map_or(long_vm, |c| {
                long_vm * c.long_scale / at.long_scale.max(1e-9)
            }),
            width,
        };
        progress(&describe_time(
            &id,
            short_vm,
            long_final,
            sizing_opts.cpus,
            &b.plan,
        ));
        if let Some(c) = &b.confirm {
            progress(&describe_confirmation(
                &id,
                short_vm,
                long_final,
                sizing_opts.cpus,
                c,
            ));
        }
    }
    let predicted = match &corrected {
        Some(c) => {
            progress(&format!(
                "{id}: long task ×{:.2} for {:.1}x a short one → best possible cut {:.1}%",
                c.long_scale / at.long_scale,
                c.wanted_ratio,
                c.predicted.best_cut * 100.0
            ));
            req.long_scale = c.long_scale;
            Some(c.predicted)
        }
        None if raise.is_some() || shrunk.is_some() => {
            let mut tasks = vec![Demand::serial(short_vm); crate::case::SHORT_TASKS];
            tasks.push(Demand {
                cpu_s: long_vm,
                width,
            });
            let m = crate::model::MakespanModel::from_tasks(&tasks, sizing_opts.cpus);
            progress(&format!(
                "{id}: long task kept at {:.1}x a short one → best possible cut {:.1}%",
                long_vm / short_vm.max(1e-9),
                m.best_cut * 100.0
            ));
            Some(m)
        }
        None => {
            progress(&format!("{id}: sizes kept"));
            None
        }
    };
    if predicted.is_some() {
        progress(&format!("{id}: preparing data"));
        req.prepared = Some(prepare::prepare(req)?);
    }
    Ok(VmSizing {
        predicted,
        long_width: width,
    })
}

/// A benchmark's predicted wall time when it settles after the fewest runs (None when it
/// cannot stop early) and at most, as clock strings.
fn predicted_clocks(
    short_s: f64,
    long: Demand,
    cpus: usize,
    p: &super::budget::Plan,
) -> (Option<String>, String) {
    use super::budget::{clock, predict};
    let most = clock(predict(short_s, long, cpus, p).total_s());
    let quick = (p.runs > p.min_runs)
        .then(|| clock(predict(short_s, long, cpus, &p.settled_early()).total_s()));
    (quick, most)
}

/// How long a round's benchmark should take at the final sizes (a short task of `short_s` and
/// the long one of `long_s` in the VM, as a run has them): when its verdict settles after the
/// fewest runs, and at most.
fn describe_time(
    id: &str,
    short_s: f64,
    long: Demand,
    cpus: usize,
    p: &super::budget::Plan,
) -> String {
    match predicted_clocks(short_s, long, cpus, p) {
        (None, most) => format!(
            "{id}: a round's benchmark should take about {most} in the VM ({} runs per arm)",
            p.runs
        ),
        (Some(quick), most) => format!(
            "{id}: a round's benchmark should take about {quick} in the VM when its verdict \
             settles after {} runs per arm, {most} at most ({} runs)",
            p.min_runs, p.runs
        ),
    }
}

/// How long the confirmation of a round that passes should take (`describe_time` for it),
/// after which `generate` ends.
fn describe_confirmation(
    id: &str,
    short_s: f64,
    long: Demand,
    cpus: usize,
    p: &super::budget::Plan,
) -> String {
    let duel = if p.incumbent {
        ", with the accepted scheduler head to head"
    } else {
        ""
    };
    match predicted_clocks(short_s, long, cpus, p) {
        (None, most) => {
            format!("{id}: a passing round's confirmation{duel} should take about {most} more")
        }
        (Some(quick), most) => format!(
            "{id}: a passing round's confirmation{duel} should take about {quick} more when it \
             stops after {} runs per arm, {most} at most",
            p.min_runs
        ),
    }
}

/// Every size multiplied by `factor` so that a benchmark's slowest verdict fits its budget.
struct Shrink {
    /// 1 when shrinking cannot bring the benchmark within its budget.
    factor: f64,
    /// A short task's CPU seconds in the VM there, as a run has it (predicted from the
    /// start-up fit).
    short_s: f64,
    estimate: super::budget::Estimate,
    /// What today's sizes would have taken.
    before: super::budget::Estimate,
}

impl Shrink {
    fn describe(&self, id: &str, p: &super::budget::Plan, seconds: f64) -> String {
        use super::budget::clock;
        let fits = self.estimate.total_s() <= seconds;
        if self.factor >= 1.0 {
            return format!(
                "{id}: a benchmark's verdict may take about {} at these sizes (all {} runs per \
                 arm), over the {} budget; smaller sizes would make start-up more than {:.0}% \
                 of a short task",
                clock(self.before.total_s()),
                p.runs,
                clock(seconds),
                sizing::MAX_STARTUP_SHARE * 100.0
            );
        }
        format!(
            "{id}: sizes ×{:.2} {} the {} budget for a benchmark's verdict: about {} at most \
             (all {} runs per arm{}), {} at the sizes before; a short task about {:.3} s there{}",
            self.factor,
            if fits { "to fit" } else { "towards" },
            clock(seconds),
            clock(self.estimate.total_s()),
            p.runs,
            if p.ablation && p.min_runs < p.runs {
                format!(", the ablation {}", super::summarize::ANSWER_FROM)
            } else {
                String::new()
            },
            clock(self.before.total_s()),
            self.short_s,
            if fits {
                String::new()
            } else {
                format!(
                    "; smaller sizes would make start-up more than {:.0}% of a short task \
                     (--budget 0 keeps the short target's sizes)",
                    sizing::MAX_STARTUP_SHARE * 100.0
                )
            }
        )
    }
}

/// How far to shrink every size (`at`, with the short task's start-up `fit`) so that the
/// benchmark the budget describes fits it, predicted from the short task's time as a run has it
/// (`short_beside` times its time alone) and the long task stretched to its ideal length again,
/// within its cap. Never below the sizes at which start-up would be more than
/// [`sizing::MAX_STARTUP_SHARE`] of a short task, nor the smallest scale the sizing uses.
fn shrink_for_budget(
    req: &RunRequest,
    at: &sizing::Sizing,
    fit: &sizing::StartUp,
    short_beside: f64,
    long: Demand,
    (plan, seconds): (&super::budget::Plan, f64),
    opts: &SizingOptions,
) -> Option<Shrink> {
    use super::budget;
    let effective = |scale: f64| req.case.effective_scale(scale);
    let short_at = |f: f64| fit.at(effective(req.scale * f)) * short_beside;
    // The cap is in this host's seconds; the long task's time is assumed linear in its sizes.
    let long_vm = long.cpu_s;
    let cap_vm = long_vm * opts.long_cap_s / at.long_cpu_s.max(1e-9);
    let times = |f: f64| {
        let short = short_at(f);
        (
            short,
            Demand {
                cpu_s: budget::stretched_long(short, opts.cpus, long.width, long_vm * f, cap_vm),
                width: long.width,
            },
        )
    };
    // Start-up at most the largest share allowed: fixed ≤ share · (fixed + own), so the own
    // part at least fixed · (1 − share) / share.
    let share = sizing::MAX_STARTUP_SHARE;
    let own_at_1 = fit.per_scale_s * effective(req.scale);
    let lowest_startup = if own_at_1 > 0.0 {
        fit.fixed_s * (1.0 - share) / share / own_at_1
    } else {
        1.0
    };
    let lowest = lowest_startup
        .max(sizing::SMALLEST_SCALE / req.scale)
        .min(1.0);
    let (factor, estimate) = budget::fit(&times, opts.cpus, plan, seconds, lowest)?;
    let (before_short, before_long) = times(1.0);
    let before = budget::predict(before_short, before_long, opts.cpus, plan);
    Some(Shrink {
        factor,
        short_s: short_at(factor),
        estimate: if factor >= 1.0 { before } else { estimate },
        before,
    })
}

/// The bound of a case at its final sizes, measured in a boot of its own before any scheduler
/// runs (`generate`'s preparation): two short tasks and the long one alone, then every task
/// once in the longest-first order, with `programs` and the data loaded from the guest's memory
/// as the benchmark's runs load them. Every benchmark at these sizes then reuses it, so a
/// candidate's boot spends its time on the arms, and the best possible cut is known before any
/// run is spent.
pub fn bound_in_vm(
    req: &RunRequest,
    programs: Vec<String>,
    long_runs_wide: bool,
    opts: &BenchOptions,
    progress: Progress,
) -> Result<super::result::Bound> {
    let (bound, _) = time_alone_in_vm(req, Vec::new(), programs, long_runs_wide, opts, progress)?;
    Ok(bound)
}

/// The sandbox's half of a benchmark with no runs: boot, time the tasks alone, run them once in
/// the longest-first order (the bound's list run), time the first short task of each probe,
/// power off.
fn time_alone_in_vm(
    req: &RunRequest,
    probes: Vec<RunRequest>,
    programs: Vec<String>,
    long_runs_wide: bool,
    opts: &BenchOptions,
    progress: Progress,
) -> Result<(super::result::Bound, Vec<f64>)> {
    let job = BenchJob {
        cases: vec![CaseJob {
            request: req.clone(),
            object: PathBuf::new(),
            scheduler: SchedulerRef {
                kind: "none".into(),
                path: String::new(),
                long_comms: Vec::new(),
                classes: ClassSet::default(),
            },
            knowledge: Knowledge::default(),
            ablation: false,
            incumbent: None,
            production: Vec::new(),
            known_bound: None,
            resume: None,
            programs,
            short_probes: probes,
            long_runs_wide,
        }],
        runs: 0,
        warmup: Some(0),
        measure_bound: true,
        list_run: true,
        order_seed: 0,
        stop_early: None,
        verify_first: None,
        data_in_memory: true,
        crash_after_round: None,
    };
    let dir = crate::bpf::verify::build_dir().join(format!("alone-{}", std::process::id()));
    let measured = measure(&job, Place::Vm, opts, &dir, progress);
    let _ = std::fs::remove_dir_all(&dir);
    let Measured {
        raws,
        error: vm_error,
        ..
    } = measured?;
    let raw = raws.into_iter().next();
    match raw.as_ref().and_then(|r| r.bound.clone()) {
        Some(b) => Ok((b, raw.map(|r| r.short_probes).unwrap_or_default())),
        None => anyhow::bail!(
            "timing the tasks alone in the VM failed: {}",
            raw.and_then(|r| r.error)
                .or(vm_error)
                .unwrap_or_else(|| "no result".into())
        ),
    }
}

/// One monitored run of a prepared request on this host, distilled into a profile (with the
/// task classes learned at exactly these sizes). The monitor traces every process when it can
/// (see [`with_process_tracer`]).
pub fn profile_at(
    paths: &ProjectPaths,
    req: &RunRequest,
    description: &str,
) -> Result<crate::profile::Profile> {
    let mut req = req.clone();
    req.monitor_interval_ms = Some(PROFILE_INTERVAL_MS);
    let run = with_process_tracer(paths, &mut req, |req| {
        crate::workload::run_case(req, &|_| {})
    });
    crate::profile::from_run(&run, description)
}

/// Run `run` with the classifier's tracer for this host in `req`, so that its monitor sees
/// every process; when the tracer cannot be built, the monitor samples `/proc` and the run's
/// report says why.
pub fn with_process_tracer(
    paths: &ProjectPaths,
    req: &mut RunRequest,
    run: impl FnOnce(&RunRequest) -> RunResult,
) -> RunResult {
    let tracer = crate::classify::tracer::for_this_host(&paths.bpf_reference());
    req.process_tracer = tracer.as_ref().ok().cloned();
    let mut result = run(req);
    if let (Err(e), Some(m)) = (tracer, result.monitor.as_mut()) {
        m.tracer_error.get_or_insert(format!("{e:#}"));
    }
    result
}

/// The monitor's interval when profiling without the tracer: short enough to see most of a
/// 0.05 s task's processes.
pub const PROFILE_INTERVAL_MS: u64 = 10;

/// What the measuring job brought back.
#[derive(Default)]
struct Measured {
    raws: Vec<job::CaseRaw>,
    /// Why the job stopped before the end, when it did.
    error: Option<String>,
    /// The job's `verify_first`, when it ran.
    verification: Option<Verification>,
}

/// The verification a job (on a boot whose console log is `console`) left in `dir`, if any.
fn verification_in(dir: &Path, console: Option<&Path>) -> Option<Verification> {
    let runtime = sjob::read_json(&dir.join(crate::bpf::verify::RUNTIME_FILE)).ok()?;
    Some(Verification {
        runtime,
        console_log: console.map(|c| c.display().to_string()),
    })
}

fn measure(
    job: &BenchJob,
    place: Place,
    opts: &BenchOptions,
    work_dir: &Path,
    progress: Progress,
) -> Result<Measured> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let work_dir = work_dir.canonicalize()?;
    let spec = work_dir.join("bench-job.json");
    sjob::write_json(&spec, job)?;
    let _machine = crate::sandbox::lock::acquire(crate::sandbox::lock::Use::Measure, progress)?;
    match place {
        Place::Host => {
            let out = work_dir.join(RAW_FILE);
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(work_dir.join(crate::bpf::verify::RUNTIME_FILE));
            job::run(job, &out)?;
            Ok(Measured {
                raws: job::read_raw(&out),
                error: None,
                verification: verification_in(&work_dir, None),
            })
        }
        Place::Vm => {
            let exe = std::env::current_exe().context("cannot find the schedgen executable")?;
            let out = Path::new(crate::sandbox::guest::GUEST_JOB_DIR).join(RAW_FILE);
            let vm_opts = vm::VmOptions {
                cpus: opts.cpus,
                memory_mib: opts.memory_mib,
                timeout: opts.timeout,
                init_binary: Some(exe.clone()),
            };
            let mut raws: Vec<job::CaseRaw> = Vec::new();
            let mut verification: Option<Verification> = None;
            // What a crashed boot completed of the case it was measuring.
            let mut partial: Option<job::CaseRaw> = None;
            let mut boot = 0;
            // Boots in a row that crashed before recording a run: a guest that keeps crashing
            // without progress is given up on; one that makes progress goes on.
            let mut fruitless = 0;
            loop {
                boot += 1;
                let recorded_before = recorded(&raws, &partial);
                // After a guest crash, boot again for the cases not yet finished; the one the
                // crash interrupted goes on from its last complete round.
                let mut remaining = job.clone();
                remaining
                    .cases
                    .retain(|c| !raws.iter().any(|r| r.test_id == c.request.case.id));
                for c in &mut remaining.cases {
                    c.resume = partial.clone().filter(|p| p.test_id == c.request.case.id);
                }
                // Verified on an earlier boot that then crashed: not again.
                if verification.is_some() {
                    remaining.verify_first = None;
                }
                // The guest sees the host's files except its /tmp (a tmpfs of its own), so the
                // spec goes where schedgen's objects go, not necessarily beside the results.
                let spec = crate::bpf::verify::build_dir()
                    .join(format!("bench-job-{}-{boot}.json", std::process::id()));
                std::fs::create_dir_all(crate::bpf::verify::build_dir())?;
                sjob::write_json(&spec, &remaining)?;
                let _ = std::fs::copy(&spec, work_dir.join(format!("bench-job-{boot}.json")));
                let vm_job = self_job(&exe, "bench-job", spec.display().to_string(), &out);
                progress(&format!(
                    "booting the sched_ext kernel ({} case(s) to measure)",
                    remaining.cases.len()
                ));
                let outcome =
                    sandbox::run_job(&vm_job, Place::Vm, opts.kernel.as_deref(), &vm_opts)?;
                let Outcome::Vm(report) = outcome else {
                    unreachable!("a VM job has a VM outcome")
                };
                raws.extend(job::read_raw(&report.job_dir.join(RAW_FILE)));
                // A boot that crashed before writing its own keeps the previous one's.
                partial = job::read_partial(&report.job_dir.join(job::PARTIAL_FILE))
                    .or(partial.take())
                    .filter(|p| !raws.iter().any(|r| r.test_id == p.test_id));
                let console = work_dir.join(format!("console-{boot}.log"));
                let _ = std::fs::copy(report.console_log(), &console);
                if verification.is_none() {
                    verification = verification_in(&report.job_dir, Some(&console));
                }
                if verification.as_ref().is_some_and(|v| !v.runtime.passed) {
                    // Failed: the job measured nothing, and another boot would only repeat it.
                    return Ok(Measured {
                        raws,
                        error: None,
                        verification,
                    });
                }
                let all_done = job
                    .cases
                    .iter()
                    .all(|c| raws.iter().any(|r| r.test_id == c.request.case.id));
                if recorded(&raws, &partial) > recorded_before {
                    fruitless = 0;
                } else {
                    fruitless += 1;
                }
                if report.guest_crashed()
                    && !all_done
                    && fruitless < crate::sandbox::VM_TRIES
                    && boot < MAX_BENCH_BOOTS
                    && !crate::interrupt::requested()
                {
                    progress(&match &partial {
                        Some(p) => format!(
                            "the guest kernel crashed (an emulation fault); booting again to go on \
                             with {} from run {} (round {}) and measure the unfinished cases",
                            p.test_id,
                            p.runs.len() + 1,
                            p.rounds_done + 1
                        ),
                        None => "the guest kernel crashed (an emulation fault); booting again for \
                                 the unfinished cases"
                            .into(),
                    });
                    continue;
                }
                let error = match &report.end {
                    vm::VmEnd::Finished(r) if r.status_code() == 0 => None,
                    vm::VmEnd::Finished(r) => Some(format!(
                        "the measuring job ended with status {}",
                        r.status_code()
                    )),
                    vm::VmEnd::TimedOut => Some(format!(
                        "the VM hit the {:.0} s timeout",
                        opts.timeout.as_secs_f64()
                    )),
                    vm::VmEnd::BootHung => Some("the guest hung while booting, twice".into()),
                    vm::VmEnd::Interrupted => Some("interrupted".into()),
                    vm::VmEnd::NoResult => Some(format!(
                        "the VM stopped without a result:\n{}",
                        report.console_tail(10)
                    )),
                };
                return Ok(Measured {
                    raws,
                    error,
                    verification,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::budget::{Plan, GENERATE_DEFAULTS};

    const PLAN: Plan = GENERATE_DEFAULTS;

    /// ctest_suite as the sizing boot measured it on 2026-12-07 at the short target's sizes.
    fn ctest_suite() -> (RunRequest, sizing::Sizing, sizing::StartUp) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/ctest_suite.toml");
        let case = Case::load(&path).expect("ctest_suite's case file");
        let mut req = RunRequest::new(case, PathBuf::from("assets"));
        req.scale = 0.0273;
        let eff = req.case.effective_scale(req.scale);
        let at = sizing::Sizing {
            scale: req.scale,
            long_scale: 6.46,
            short_cpu_s: 0.020,
            long_cpu_s: 0.778,
            predicted: crate::model::MakespanModel::from_demands(&[0.02, 0.778], 2),
            note: None,
        };
        let fit = sizing::StartUp {
            fixed_s: 0.0,
            per_scale_s: 0.309 / eff,
        };
        (req, at, fit)
    }

    /// ctest_suite's tasks as its round 1 had them in the VM (a short task ×1.19 its time
    /// alone, the long one 11.66 s), shrunk for `plan` within `budget_s`.
    fn shrink_ctest(
        (req, at, fit): (&RunRequest, &sizing::Sizing, &sizing::StartUp),
        plan: &Plan,
        budget_s: f64,
    ) -> Option<Shrink> {
        let opts = SizingOptions::default();
        shrink_for_budget(
            req,
            at,
            fit,
            1.19,
            Demand::serial(11.66),
            (plan, budget_s),
            &opts,
        )
    }

    #[test]
    fn a_budget_shrinks_ctest_suite_to_fit_and_says_what_it_saved() {
        let (req, at, fit) = ctest_suite();
        // Round 1 as it was measured then, timing its own bound.
        let timing_its_bound = Plan {
            bound: true,
            ..PLAN
        };
        let s = shrink_ctest((&req, &at, &fit), &timing_its_bound, 180.0)
            .expect("over 3 minutes at these sizes");
        // Measured at ×0.44: round 1's boot, all 5 runs per arm, took 171 s.
        assert!((0.35..0.6).contains(&s.factor), "{}", s.factor);
        assert!(s.estimate.total_s() <= 180.0, "{:?}", s.estimate);
        // The default sizes: 5 min 12 s measured with the ablation retiring after 3 runs.
        assert!(s.before.total_s() > 280.0, "{:?}", s.before);
        let line = s.describe("ctest_suite", &timing_its_bound, 180.0);
        assert!(line.contains("to fit the 3 min budget"), "{line}");
        // With the bound measured before the rounds, the sizes shrink less.
        let now = shrink_ctest((&req, &at, &fit), &PLAN, 180.0)
            .expect("still over 3 minutes at these sizes");
        assert!(now.factor > s.factor, "{} {}", now.factor, s.factor);
        assert!(now.estimate.total_s() <= 180.0, "{:?}", now.estimate);
        // A generous budget leaves the sizes alone.
        assert!(shrink_ctest((&req, &at, &fit), &PLAN, 900.0).is_none());
    }

    #[test]
    fn a_budget_never_shrinks_start_up_past_half_a_short_task() {
        let (req, at, _) = ctest_suite();
        let eff = req.case.effective_scale(req.scale);
        // Start-up is already half of a short task: nothing to shrink.
        let fit = sizing::StartUp {
            fixed_s: 0.15,
            per_scale_s: 0.15 / eff,
        };
        let s = shrink_ctest((&req, &at, &fit), &PLAN, 180.0).expect("over budget");
        assert_eq!(s.factor, 1.0);
        let line = s.describe("ctest_suite", &PLAN, 180.0);
        assert!(line.contains("over the 3 min budget"), "{line}");
    }

    #[test]
    fn the_confirmations_time_says_whether_it_duels() {
        let confirm = Plan {
            verify_s: 0.0,
            bound: false,
            incumbent: true,
            ..PLAN
        };
        let line = describe_confirmation("ctest_suite", 0.375, Demand::serial(14.7), 2, &confirm);
        assert!(
            line.contains("head to head")
                && line.contains("after 3 runs per arm")
                && line.contains("at most"),
            "{line}"
        );
        let alone = Plan {
            incumbent: false,
            ..confirm
        };
        assert!(
            !describe_confirmation("c", 0.375, Demand::serial(14.7), 2, &alone)
                .contains("head to head")
        );
    }

    #[test]
    fn below_the_target_says_whether_any_size_would_reach_it() {
        // A serial long task can offer 32.8% on 2 CPUs: longer tasks would.
        assert!(more_room(2, 1.0, 0.30).contains("raise --long-cap"));
        // log_processing's pipeline kept 1.67 CPUs busy: about 14% at any length.
        let wide = more_room(2, 1.67, 0.30);
        assert!(
            wide.contains("no sizes reach it on 2 CPUs") && wide.contains("at most 14."),
            "{wide}"
        );
        // On 4 CPUs the same pipeline leaves room again.
        assert!(more_room(4, 1.67, 0.30).contains("raise --long-cap"));
    }

    #[test]
    fn the_time_a_round_should_take_names_both_verdicts() {
        let line = describe_time("ctest_suite", 0.36, Demand::serial(14.0), 2, &PLAN);
        assert!(
            line.contains("settles after 3 runs per arm") && line.contains("at most (5 runs)"),
            "{line}"
        );
    }
}
