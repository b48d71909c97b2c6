//! The generate loop: prepare (size, set up and profile at the benchmarked sizes, learn the
//! task classes) → prompt → model → static checks → compile → one sandbox boot: verify, then
//! benchmark (against the default and the candidate's own ablation) → repair or improve → keep.
//!
//! Each step is a function returning a typed outcome; the loop's state (the conversation, the
//! attempts so far) lives in one [`Loop`]. Every stage's failure is classified and, while
//! attempts remain, sent back to the model with the evidence (compiler diagnostics, the
//! verifier's log, the kernel's exit reason, the measured numbers). Every candidate and its logs
//! stay in the run directory for review. A round's benchmark runs the candidate against the
//! default scheduler, its ablation and an earlier round's candidate; the case's accepted
//! scheduler meets it only in the confirmation, fresh runs of the candidate a round kept, and
//! only a candidate that passes there and beats the accepted one head to head reaches
//! `bpf-generated/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::checks;
use super::contribution::{self, Contribution};
use super::extract::extract_scheduler;
use super::llm::{CallRecord, ChatProvider, Conversation, ProviderInfo, Purpose, TokenUsage};
use super::prompt::{self, Template};
use crate::bench::driver::{self, BenchOptions, ScaleChoice, SchedulerChoice};
use crate::bench::result::{Arm, CaseBench};
use crate::bpf::compile::Dialect;
use crate::bpf::runtime::Failure;
use crate::bpf::session::Knowledge;
use crate::bpf::verify::{self as bverify, VerifyOptions, VerifyReport};
use crate::case::Case;
use crate::classify::rules::ClassSet;
use crate::library::StageSeconds;
use crate::paths::ProjectPaths;
use crate::profile::{self, Profile};
use crate::sandbox::{self, vm, Backend, Place};
use crate::stats::CutEstimate;
use crate::workload::RunRequest;

/// The reference scheduler shown to the model.
pub const SHOWN_REFERENCE: &str = "bpf-reference/longfirst.bpf.c";
/// The most tokens the first request may take: the generate prompt is about 4k (3,961 for
/// ctest_suite as llama.cpp counts them), and repairs and improvement rounds add to it, so a
/// server with a 16k context holds a whole round.
pub const PROMPT_BUDGET_TOKENS: usize = 6000;

/// The same reference in scx's dialect, shown when the prompt asks for it.
pub const SHOWN_REFERENCE_SCX: &str = "bpf-reference/longfirst_scx.bpf.c";

/// The reference scheduler and generate template for `dialect`.
fn dialect_prompt(dialect: Dialect) -> (&'static str, &'static str) {
    match dialect {
        Dialect::Schedgen => (SHOWN_REFERENCE, "generate"),
        Dialect::Scx => (SHOWN_REFERENCE_SCX, "generate-scx"),
    }
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_attempts: u32,
    pub max_rounds: u32,
    pub target: f64,
    pub runs: usize,
    /// `None`: the benchmark's default (see `BenchOptions::warmup`).
    pub warmup: Option<usize>,
    pub scale: ScaleChoice,
    pub backend: Backend,
    pub kernel: Option<PathBuf>,
    pub cpus: Option<usize>,
    /// VM memory for verifying and benchmarking (MiB).
    pub memory_mib: u64,
    pub verify_duration_s: f64,
    pub short_target_s: f64,
    pub long_cap_s: f64,
    /// Benchmark the candidate's ablation too (and require it to beat it).
    pub ablation: bool,
    /// A benchmark may stop after this many runs per arm once its verdict is settled.
    pub min_runs: usize,
    pub order_seed: Option<u64>,
    /// The dialect the prompt asks for (and the offline synthesiser writes).
    pub dialect: Dialect,
    /// Stop at the first verified candidate: no benchmark, nothing kept.
    pub verify_only: bool,
    /// Most runs per arm of the confirmation benchmark of the kept candidate; 0 skips it (and
    /// the library then refuses the candidate: its cut would come from the runs that chose it).
    pub confirm_runs: usize,
    /// Wall seconds a round's benchmark may take to its slowest verdict in the VM: `--scale
    /// auto` shrinks every size until it fits. `None` keeps the short target's sizes.
    pub budget_s: Option<f64>,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    LlmError,
    NoCode,
    StaticCheck,
    CompileError,
    VerifierRejected,
    AttachFailed,
    Stall,
    BpfError,
    KernelError,
    SandboxError,
    BelowTarget,
    Passed,
}

impl AttemptOutcome {
    fn from_failure(f: Failure) -> AttemptOutcome {
        match f {
            Failure::CompileError => AttemptOutcome::CompileError,
            Failure::VerifierRejected => AttemptOutcome::VerifierRejected,
            Failure::AttachFailed | Failure::NotEnabled => AttemptOutcome::AttachFailed,
            Failure::Stall => AttemptOutcome::Stall,
            Failure::BpfError => AttemptOutcome::BpfError,
            Failure::KernelError => AttemptOutcome::KernelError,
            Failure::Sandbox | Failure::Interrupted => AttemptOutcome::SandboxError,
        }
    }
}

/// One model answer and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub round: u32,
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub detail: String,
    /// The candidate file (in the run directory), when the reply had one.
    pub candidate: Option<String>,
    pub call: Option<CallRecord>,
    /// Which static checker read the candidate (`libclang 19.1.7`, or `lexical (why)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<String>,
    /// The candidate against the references the prompt showed: a copy, constants changed, or
    /// code of the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution: Option<Contribution>,
    /// Seconds per stage this attempt reached.
    pub seconds: StageSeconds,
}

/// Everything about one generation, written as `generation.json` in the run directory and
/// carried into the accepted scheduler's metadata.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generation {
    pub case_id: String,
    pub started_at: String,
    pub provider: ProviderInfo,
    pub templates: Vec<String>,
    pub prompt_hash: String,
    pub shown_references: Vec<String>,
    /// The dialect the prompt asked for.
    #[serde(default)]
    pub dialect: Dialect,
    pub kernel_release: String,
    /// The task classes the scheduler was written for and run with.
    #[serde(default)]
    pub classes: ClassSet,
    pub attempts: Vec<Attempt>,
    pub tokens: TokenUsage,
    /// Estimated USD; `None` when unknown (an unpriced model or a server without usage).
    pub cost_usd: Option<f64>,
    /// The benchmark of the best candidate.
    pub benchmark: Option<CaseBench>,
    pub accepted: bool,
    pub reason: String,
    /// With `--verify-only`: the candidate that passed verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    pub run_dir: String,
    /// The candidate that passed the benchmark, if any.
    pub final_source: Option<String>,
    /// Every benchmarked round: its candidate, what the model contributed, the verdict, and
    /// how it fared head to head against the scheduler it had to beat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<RoundRecord>,
    /// The round whose candidate is `final_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_round: Option<u32>,
    /// The kept candidate's confirmation: `benchmark` is then that fresh benchmark, not the
    /// round's that chose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
    /// Why the provider had no change to offer when asked to improve, when it said so (a
    /// provider that answers by rule; the loop then stops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined: Option<String>,
    /// Why a benchmark could not measure at all (the sandbox failed, not the scheduler): the
    /// case then ends in an error rather than a verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_error: Option<String>,
    /// The passing candidate is the accepted scheduler's code (comments aside), so there was
    /// nothing to confirm or replace: the library keeps its entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub same_as_accepted: bool,
}

/// A kept candidate measured again in runs that did not choose it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Confirmation {
    /// The round whose benchmark chose it.
    pub round: u32,
    /// What that benchmark measured (selected, so biased upwards).
    pub selection_cut: Option<crate::stats::CutEstimate>,
    pub selection_verdict: crate::bench::result::Verdict,
    /// Whether the confirmation's verdict passed too (and, with a scheduler accepted, it beat
    /// that one head to head).
    pub holds: bool,
    /// How long the confirmation benchmark took.
    #[serde(default)]
    pub seconds: f64,
    /// With a scheduler accepted: whether it, run in the same fresh runs, still cut the
    /// makespan by the target with an interval above zero (so the case keeps a passing
    /// scheduler even when the candidate falls short).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_stands: Option<bool>,
}

/// One benchmarked round.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoundRecord {
    pub round: u32,
    pub candidate: String,
    pub contribution: Option<Contribution>,
    pub pass: bool,
    pub cut: Option<crate::stats::CutEstimate>,
    /// The scheduler it had to beat (an earlier round's candidate), run beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_incumbent: Option<crate::stats::CutEstimate>,
    /// Whether its head-to-head interval against the incumbent lies above zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beat_incumbent: Option<bool>,
}

impl Generation {
    /// A generation of `case_id` by `provider` with nothing done yet.
    pub fn new(case_id: &str, provider: ProviderInfo) -> Generation {
        Generation {
            case_id: case_id.into(),
            started_at: String::new(),
            provider,
            templates: Vec::new(),
            prompt_hash: String::new(),
            shown_references: Vec::new(),
            dialect: Dialect::Schedgen,
            kernel_release: String::new(),
            classes: ClassSet::default(),
            attempts: Vec::new(),
            tokens: TokenUsage::default(),
            cost_usd: None,
            benchmark: None,
            accepted: false,
            reason: String::new(),
            verified: None,
            run_dir: String::new(),
            final_source: None,
            rounds: Vec::new(),
            kept_round: None,
            confirmation: None,
            declined: None,
            sandbox_error: None,
            same_as_accepted: false,
        }
    }

    /// A generation with nothing done yet, by the offline provider, for tests.
    #[cfg(test)]
    pub(crate) fn empty(case_id: &str) -> Generation {
        Generation::new(
            case_id,
            ProviderInfo {
                provider: "offline".into(),
                model: "m".into(),
                endpoint_host: None,
            },
        )
    }

    /// What the kept candidate (or, with none kept, the last one) owes to the references shown.
    pub fn final_contribution(&self) -> Option<&Contribution> {
        match self.kept_round {
            Some(k) => self
                .rounds
                .iter()
                .find(|r| r.round == k)
                .and_then(|r| r.contribution.as_ref()),
            None => self
                .attempts
                .iter()
                .rev()
                .find_map(|a| a.contribution.as_ref()),
        }
    }

    /// How the model's own change fared against the copy it was asked to improve, in words,
    /// when an improvement round ran against a copied reference.
    pub fn improvement_summary(&self) -> Option<String> {
        let r = self.rounds.iter().rev().find(|r| r.incumbent.is_some())?;
        let own = r.contribution.as_ref().map_or(String::new(), |c| {
            if c.is_own() {
                " (its own code)".into()
            } else {
                format!(" ({})", c.describe())
            }
        });
        let h2h = r.vs_incumbent.map_or("—".into(), |v| {
            format!(
                "{:.1}% [{:.1}%, {:.1}%]",
                v.cut * 100.0,
                v.ci_low * 100.0,
                v.ci_high * 100.0
            )
        });
        // The incumbent is an earlier round's candidate, or the case's accepted scheduler.
        let rival = self
            .rounds
            .iter()
            .find(|x| Some(&x.candidate) == r.incumbent.as_ref())
            .map_or_else(
                || "the accepted scheduler".to_string(),
                |x| format!("round {}'s scheduler", x.round),
            );
        Some(format!(
            "round {}'s change{own} {} the verdict and {} {rival} head to head: {h2h}",
            r.round,
            if r.pass { "passed" } else { "failed" },
            if r.beat_incumbent == Some(true) {
                "beat"
            } else {
                "did not beat"
            },
        ))
    }
}

/// Progress lines for the terminal.
pub type Say<'a> = &'a dyn Fn(&str);

fn trimmed(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max_lines {
        return text.trim_end().to_string();
    }
    format!(
        "[... {} earlier lines omitted ...]\n{}",
        lines.len() - max_lines,
        lines[lines.len() - max_lines..].join("\n")
    )
}

/// The stage and the evidence the model is shown for a failed verification.
pub fn verify_feedback(r: &VerifyReport) -> (String, String) {
    let stage = format!("{:?}", r.stage).to_lowercase();
    let mut diag = String::new();
    if let Some(c) = &r.compile {
        if !c.ok {
            // Each error with the line it points at, so a small model need not count lines.
            let source = std::fs::read_to_string(&r.input).unwrap_or_default();
            let lines: Vec<&str> = source.lines().collect();
            let input_name = Path::new(&r.input).file_name();
            let errors: Vec<String> = c
                .diagnostics
                .iter()
                .filter(|d| d.severity != crate::bpf::compile::Severity::Warning)
                .take(25)
                .map(|d| {
                    let name = Path::new(&d.file).file_name();
                    let file = name
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let sev = format!("{:?}", d.severity).to_lowercase();
                    let quoted = match lines.get((d.line as usize).wrapping_sub(1)) {
                        Some(l) if name == input_name => {
                            format!("\n    {:>4} | {}", d.line, l.trim_end())
                        }
                        _ => String::new(),
                    };
                    format!(
                        "{file}:{}:{}: {sev}: {}{quoted}",
                        d.line, d.column, d.message
                    )
                })
                .collect();
            diag = if errors.is_empty() {
                trimmed(&c.output, 40)
            } else {
                errors.join("\n")
            };
        }
    }
    if let Some(rt) = &r.runtime {
        if let Some(log) = &rt.verifier_log {
            diag = format!("kernel verifier log (end):\n{}", trimmed(log, 40));
        } else if let Some(e) = &rt.exit {
            diag = format!("{}\n{}", e.line(), rt.kernel_log.join("\n"));
        }
        if diag.is_empty() {
            diag = rt.error.clone().unwrap_or_default();
        }
    }
    if diag.is_empty() {
        diag = r.error.clone().unwrap_or_default();
    }
    (stage, diag.trim().to_string())
}

fn kfuncs_for_prompt(kfuncs_h: &str) -> String {
    kfuncs_h
        .lines()
        .filter(|l| {
            l.starts_with("extern ")
                && (l.contains(" scx_bpf_")
                    || l.contains("bpf_iter_scx_dsq")
                    || l.contains(" bpf_task_from_pid")
                    || l.contains(" bpf_ktime_get_ns"))
        })
        .filter(|l| !l.contains("_impl(") && !l.contains(" __scx_"))
        .map(|l| l.replace(" __ksym", ""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an improve request's provider is told of the benchmark as numbers.
fn measured(b: &CaseBench) -> super::llm::Measured {
    super::llm::Measured {
        efficiency: b
            .efficiency
            .filter(|e| e.custom.n > 0)
            .map(|e| e.custom.mean),
    }
}

/// How close the candidate's schedule came to the best one for the CPU time its tasks used,
/// for the improve prompt: a model told it is already at the optimum should not reorder.
fn efficiency_feedback(b: &CaseBench) -> String {
    let Some(e) = b.efficiency.filter(|e| e.custom.n > 0) else {
        return String::new();
    };
    let mut text = format!(
        " Your schedule's efficiency (makespan over the shortest makespan the CPU time its tasks \
         used allows on these CPUs; 1.00 is optimal) was {:.2}, the default's {:.2}",
        e.custom.mean, e.default.mean
    );
    if e.ablation.n > 0 {
        text += &format!(", the ablation's {:.2}", e.ablation.mean);
    }
    text + "."
}

fn fmt_runs(b: &CaseBench, arm: Arm) -> String {
    b.runs
        .iter()
        .filter(|r| r.arm == arm && !r.warmup)
        .map(|r| format!("{:.2} s", r.makespan_s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values of the improve prompt: the numbers of the scheduler to beat, and where it stands
/// (below the target, or passing but not yet the model's own code).
fn improve_values(
    b: &CaseBench,
    target: f64,
    last: Option<&RoundRecord>,
) -> BTreeMap<&'static str, String> {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let interval = |c: &crate::stats::CutEstimate| {
        format!(
            "{} (95% interval [{}, {}])",
            pct(c.cut),
            pct(c.ci_low),
            pct(c.ci_high)
        )
    };
    let mut v = BTreeMap::new();
    let cut = b.cut.map(|c| c.cut).unwrap_or(0.0);
    v.insert("cut", pct(cut));
    v.insert(
        "ci",
        b.cut
            .map(|c| format!("[{}, {}]", pct(c.ci_low), pct(c.ci_high)))
            .unwrap_or_else(|| "unknown".into()),
    );
    v.insert("target", pct(target));
    let measured = b
        .cut
        .as_ref()
        .map_or_else(|| "an unknown amount".into(), interval);
    let mut situation = if b.verdict.pass {
        format!(
            "Your scheduler passed: it cut the makespan by {measured}, and {} is required.",
            pct(target)
        )
    } else {
        format!(
            "Your scheduler is not fast enough: it cut the makespan by {measured} where {} is              required.",
            pct(target)
        )
    };
    if let Some(c) = last
        .and_then(|r| r.contribution.as_ref())
        .filter(|c| !c.is_own())
    {
        situation.push_str(&format!(
            " But its code is {}: the policy is not yours yet.",
            c.describe()
        ));
    }
    if let (Some(h), Some(r)) = (b.vs_incumbent.as_ref(), last) {
        situation.push_str(&format!(
            " Run head to head against the scheduler it had to beat, it cut the makespan by {}              ({}).",
            interval(h),
            if r.beat_incumbent == Some(true) {
                "better"
            } else {
                "not shown to be better"
            }
        ));
    }
    v.insert("situation", situation);
    v.insert(
        "best_cut",
        b.bound
            .as_ref()
            .map(|x| pct(x.model.best_cut))
            .unwrap_or_else(|| "unknown".into()),
    );
    v.insert("default_runs", fmt_runs(b, Arm::Default));
    v.insert("custom_runs", fmt_runs(b, Arm::Custom));
    v.insert(
        "ablation",
        match b.policy_cut {
            Some(p) if b.ablation.n > 0 => format!(
                "The same scheduler with every process in one class (so it cannot tell the long \
                 task) ran {}; against it yours cut {:.1}% [{:.1}%, {:.1}%]: that part is what \
                 your policy's knowledge of the long task gives.",
                fmt_runs(b, Arm::Ablation),
                p.cut * 100.0,
                p.ci_low * 100.0,
                p.ci_high * 100.0
            ),
            _ => String::new(),
        } + &efficiency_feedback(b),
    );
    let run = b.runs.iter().find(|r| r.arm == Arm::Custom && !r.warmup);
    let long = run.and_then(|r| {
        r.tasks
            .iter()
            .find(|t| t.group == crate::workload::result::Group::Long)
    });
    let short_end = run.map(|r| {
        r.tasks
            .iter()
            .filter(|t| t.group == crate::workload::result::Group::Short)
            .map(|t| t.end_s)
            .fold(0.0, f64::max)
    });
    v.insert(
        "long_start",
        long.map(|t| format!("{:.2}", t.start_s))
            .unwrap_or_else(|| "?".into()),
    );
    v.insert(
        "long_end",
        long.map(|t| format!("{:.2}", t.end_s))
            .unwrap_or_else(|| "?".into()),
    );
    v.insert(
        "short_end",
        short_end
            .map(|x| format!("{x:.2}"))
            .unwrap_or_else(|| "?".into()),
    );
    v
}

/// The case as the benchmark will run it: sized, set up, and profiled at those sizes.
pub struct Prepared {
    pub request: RunRequest,
    pub profile: Profile,
    /// The bound at these sizes, measured in a boot of its own once the profile named the
    /// programs (VM only): every benchmark of the case reuses it.
    pub bound: Option<crate::bench::result::Bound>,
}

impl Prepared {
    pub fn classes(&self) -> &ClassSet {
        &self.profile.task_classes.classes
    }
}

/// How one of generate's benchmarks runs: at most `runs` per arm, in an order drawn from
/// `order_seed`, and whether its verdict only screens for the confirmation
/// (`BenchOptions::screen`).
#[derive(Debug, Clone, Copy)]
struct Sitting {
    runs: usize,
    order_seed: Option<u64>,
    screen: bool,
}

fn bench_options(
    opts: &GenerateOptions,
    scheduler: SchedulerChoice,
    scale: ScaleChoice,
) -> BenchOptions {
    BenchOptions {
        scheduler,
        runs: opts.runs,
        warmup: opts.warmup,
        scale,
        cpus: opts.cpus,
        target: opts.target,
        backend: opts.backend,
        kernel: opts.kernel.clone(),
        memory_mib: opts.memory_mib,
        timeout: Duration::from_secs(3 * 3600),
        short_target_s: opts.short_target_s,
        long_cap_s: opts.long_cap_s,
        ablation: opts.ablation,
        classes: None,
        programs: Vec::new(),
        long_runs_wide: false,
        include: Vec::new(),
        settings: Vec::new(),
        attach_cpu: None,
        incumbent: None,
        min_runs: opts.min_runs,
        screen: false,
        order_seed: opts.order_seed,
        against: Vec::new(),
        known_bound: None,
        // A verify-only run benchmarks nothing: the host's sizes are enough to verify at.
        size_in_vm: !opts.verify_only,
        budget: None,
        verify_first: None,
    }
}

/// Step 1: size the case for the CPUs the benchmark uses, set it up, and profile one run at
/// exactly those sizes on this host; the profile's task classes are what the scheduler gets.
pub fn prepare(
    paths: &ProjectPaths,
    case: &Case,
    opts: &GenerateOptions,
    run_dir: &Path,
    say: Say,
) -> Result<Prepared> {
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let place = sandbox::choose(opts.backend)?;
    let cpus = match place {
        Place::Vm => vm::vcpus(opts.cpus),
        Place::Host => crate::system::cpu_count(),
    };
    let in_vm = place == Place::Vm;
    let mut sizing = bench_options(opts, SchedulerChoice::Auto, opts.scale);
    let round = crate::bench::budget::Plan {
        runs: opts.runs,
        min_runs: opts.min_runs,
        ablation: opts.ablation,
        verify_s: opts.verify_duration_s,
        // Measured once, before the rounds (`bound_at_these_sizes`); with the data and the
        // programs in the guest's memory no warm-up run is needed.
        bound: false,
        warm_up: false,
        incumbent: false,
    };
    // The confirmation reuses the bound and the round's verification, and runs the accepted
    // scheduler (if any) head to head.
    let confirm = (opts.confirm_runs > 0 && !opts.verify_only)
        .then(|| -> Result<_> {
            Ok(crate::bench::budget::Plan {
                runs: opts.confirm_runs,
                verify_s: 0.0,
                bound: false,
                incumbent: crate::library::current(&paths.root, &case.id)?.is_some(),
                ..round
            })
        })
        .transpose()?;
    sizing.budget = Some(driver::TimeBudget {
        seconds: opts.budget_s,
        plan: round,
        confirm,
    });
    let request = driver::size_and_prepare(paths, case, &sizing, cpus, say)?;
    say("profiling at these sizes on this host");
    let profile = driver::profile_at(paths, &request, &case.description)?;
    std::fs::write(
        run_dir.join("profile.json"),
        serde_json::to_string_pretty(&profile)? + "\n",
    )?;
    say(&profile.task_classes.explanation);
    for line in profile.task_classes.classes.describe() {
        say(&format!("  {line}"));
    }
    let bound = if in_vm && !opts.verify_only && profile.task_classes.separable {
        Some(bound_at_these_sizes(
            &request, &profile, &sizing, run_dir, say,
        )?)
    } else {
        None
    };
    Ok(Prepared {
        request,
        profile,
        bound,
    })
}

/// The bound at the sizes just chosen, in the VM, with the programs the profile named loaded
/// from the guest's memory as the runs will load them; written to `bound.json`. Said before any
/// candidate's run is spent, with a warning when even the best order cannot reach the target.
fn bound_at_these_sizes(
    request: &RunRequest,
    profile: &Profile,
    opts: &BenchOptions,
    run_dir: &Path,
    say: Say,
) -> Result<crate::bench::result::Bound> {
    let id = &request.case.id;
    say(&format!(
        "{id}: measuring the bound at these sizes in the VM, once for every benchmark of the case"
    ));
    let mut bound = driver::bound_in_vm(
        request,
        profile.programs(),
        profile.long_runs_wide(),
        opts,
        say,
    )
    .context("measuring the bound in the VM")?;
    bound.reused_from = Some("the preparation's boot (`bound.json`)".into());
    std::fs::write(
        run_dir.join("bound.json"),
        serde_json::to_string_pretty(&bound)? + "\n",
    )?;
    let width = bound.long_width();
    let wide = if width > 1.0 {
        let (cpu, wall) = bound.long_free.map_or((0.0, 0.0), |f| (f.cpu_s, f.wall_s));
        format!(
            " held to one CPU, and free to use every CPU {cpu:.3} s of CPU in {wall:.3} s ({width:.2} CPUs busy)"
        )
    } else {
        String::new()
    };
    say(&format!(
        "{id}: a short task took {:.3} s alone and the long one {:.3} s{wide}: best possible cut {:.1}%",
        bound.short_alone_s,
        bound.long_alone_s,
        bound.model.best_cut * 100.0
    ));
    let best = match (&bound.list, bound.model_as_run()) {
        (Some(l), Some(m)) => {
            say(&format!(
                "{id}: in the best order, run for real in {:.2} s, they took {:.3} s and {:.3} s beside each other: best possible cut {:.1}% with the CPU times a run has",
                l.makespan_s,
                l.short_cpu_s,
                l.long_cpu_s,
                m.best_cut * 100.0
            ));
            m.best_cut
        }
        _ => bound.model.best_cut,
    };
    if best < opts.target {
        say(&format!(
            "{id}: warning: the best possible cut ({:.1}%) is below the {:.0}% target; a PASS \
             needs gains the CPU-time model does not predict ({})",
            best * 100.0,
            opts.target * 100.0,
            driver::more_room(bound.model.cpus, width, opts.target)
        ));
    }
    Ok(bound)
}

fn generate_values(
    case: &Case,
    p: &Profile,
    kernel_release: &str,
    kfuncs: &str,
    reference_path: &str,
    reference: &str,
) -> BTreeMap<&'static str, String> {
    let mut v = BTreeMap::new();
    v.insert("case_description", case.description.trim().to_string());
    v.insert("cpus", p.system.cpus.to_string());
    v.insert("kernel_release", kernel_release.to_string());
    v.insert("profile_summary", profile::summary(p));
    v.insert("long_tail", p.long_tail.recognise_by.clone());
    v.insert(
        "classes",
        p.task_classes
            .classes
            .describe()
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    v.insert("fair_s", format!("{:.2}", p.model.fair_share_makespan_s));
    v.insert("optimal_s", format!("{:.2}", p.model.optimal_makespan_s));
    v.insert("best_cut", format!("{:.1}%", p.model.best_cut * 100.0));
    v.insert("kfuncs", kfuncs.to_string());
    v.insert(
        "references",
        format!("`{reference_path}`:\n\n```c\n{reference}```"),
    );
    v
}

/// What the loop needs that does not change between attempts.
struct Setting<'a> {
    paths: &'a ProjectPaths,
    case: &'a Case,
    prepared: &'a Prepared,
    opts: &'a GenerateOptions,
    run_dir: &'a Path,
    say: Say<'a>,
    kfuncs: std::collections::BTreeSet<String>,
    headers: crate::bpf::compile::Headers,
    repair: Template,
    improve: Template,
    knowledge: Knowledge,
    /// The references the prompt showed, `(path, source)`, to tell copies from new code.
    shown: Vec<(String, String)>,
}

/// How a reply fared before the benchmark.
enum Checked {
    /// Verified in the sandbox in a boot of its own (`--verify-only`): the candidate file.
    Passed(PathBuf),
    /// Compiled and checked: verified first thing in its benchmark's boot.
    Ready(PathBuf, Box<bverify::Prepared>),
    /// Failed at a stage: what to tell the model (stage, failure, diagnostics).
    Failed {
        stage: String,
        failure: String,
        diagnostics: String,
    },
}

/// What a candidate's benchmark boot, which verifies it first, made of it.
enum Judged {
    /// Verified, then measured.
    Benchmarked(Box<CaseBench>),
    /// Failed verification (nothing was measured): what to tell the model.
    Failed(Checked),
    /// The sandbox failed before the scheduler could be judged; the round's reason says so.
    SandboxFailed,
}

/// How a round ended.
enum RoundEnd {
    /// A candidate of the model's own passed the benchmark verdict: done.
    Passed,
    /// Verified and benchmarked, but either below the target or not the model's own code (a
    /// copy of the reference, or its constants changed): the numbers go to the next round,
    /// which has to beat this one head to head.
    Improve(Box<CaseBench>),
    /// Stop the whole generation, with the reason in `Generation::reason`.
    Stop,
}

/// A candidate that passed the benchmark verdict: what the loop would keep.
struct Kept {
    round: u32,
    file: PathBuf,
    bench: CaseBench,
}

/// The loop's state: the conversation with the model and the record of what happened.
struct Loop<'a> {
    set: Setting<'a>,
    provider: &'a dyn ChatProvider,
    conv: Conversation,
    gen: Generation,
    /// The best candidate so far that passed the verdict.
    kept: Option<Kept>,
    /// A copy of the case's scheduler in `bpf-generated/`, if one is accepted: a candidate
    /// replaces it only by beating it head to head, in the confirmation.
    accepted: Option<PathBuf>,
    /// The scheduler the next round runs head to head: the kept one, else the last
    /// benchmarked one. The accepted scheduler is not run in the rounds: a candidate that fails
    /// on its own needs no duel, and one that passes meets it in the confirmation.
    incumbent: Option<PathBuf>,
    /// The bound the first benchmark measured; later ones at the same sizes reuse it.
    bound: Option<crate::bench::result::Bound>,
}

impl Loop<'_> {
    fn save(&self) -> Result<()> {
        std::fs::write(
            self.set.run_dir.join("generation.json"),
            serde_json::to_string_pretty(&self.gen)? + "\n",
        )?;
        Ok(())
    }

    /// Static checks and the compile; then, with `--verify-only`, verification in a boot of
    /// its own. Otherwise the candidate verifies in its benchmark's boot (`Ready`).
    fn check(&self, a: &mut Attempt, text: &str, tag: &str) -> Result<Checked> {
        let t = Instant::now();
        let ex = match extract_scheduler(text) {
            Ok(ex) => ex,
            Err(e) => {
                a.outcome = AttemptOutcome::NoCode;
                a.detail = e.to_string();
                return Ok(Checked::Failed {
                    stage: "extraction".into(),
                    failure: "no usable scheduler in the reply".into(),
                    diagnostics: e.to_string(),
                });
            }
        };
        let file = self.set.run_dir.join(format!("candidate-{tag}.bpf.c"));
        std::fs::write(&file, &ex.source)?;
        a.candidate = Some(file.display().to_string());
        a.contribution = Some(contribution::assess(&ex.source, &self.set.shown));
        let report = checks::check(
            &ex.source,
            &checks::Target {
                kfuncs: &self.set.kfuncs,
                headers: &self.set.headers,
            },
        );
        a.checker = Some(report.checker);
        let mut problems = report.problems;
        if !problems.is_empty() {
            problems.extend(report.compiler_errors);
        }
        if !problems.is_empty() {
            a.seconds.compile = Some(t.elapsed().as_secs_f64());
            a.outcome = AttemptOutcome::StaticCheck;
            a.detail = problems.join("; ");
            return Ok(Checked::Failed {
                stage: "static check".into(),
                failure: format!("{} problem(s) found before compiling", problems.len()),
                diagnostics: problems.join("\n"),
            });
        }
        let verify_opts = VerifyOptions {
            duration_s: self.set.opts.verify_duration_s,
            backend: self.set.opts.backend,
            kernel: self.set.opts.kernel.clone(),
            cpus: self.set.opts.cpus,
            memory_mib: self.set.opts.memory_mib,
            knowledge: self.set.knowledge.clone(),
            project_headers: self.set.paths.bpf_reference(),
            include: Vec::new(),
        };
        let prepared = bverify::prepare(&file, &verify_opts)?;
        a.seconds.compile = Some(t.elapsed().as_secs_f64());
        if prepared.job.is_none() {
            return self.verified(a, tag, &file, prepared.finish(None));
        }
        if !self.set.opts.verify_only {
            (self.set.say)(&format!(
                "{tag}: compiled; it is verified in the sandbox first thing in its benchmark's \
                 boot"
            ));
            return Ok(Checked::Ready(file, Box::new(prepared)));
        }
        (self.set.say)(&format!("{tag}: verifying in the sandbox"));
        let vr = bverify::run_alone(prepared, &verify_opts)?;
        self.verified(a, tag, &file, vr)
    }

    /// What a verification report means for the attempt `a`: written beside the candidate,
    /// and `Passed` or the stage and diagnostics to tell the model.
    fn verified(
        &self,
        a: &mut Attempt,
        tag: &str,
        file: &Path,
        vr: VerifyReport,
    ) -> Result<Checked> {
        if vr.runtime.is_some() {
            a.seconds.verify = Some(vr.total_s - a.seconds.compile.unwrap_or(0.0));
        }
        std::fs::write(
            self.set.run_dir.join(format!("verify-{tag}.json")),
            serde_json::to_string_pretty(&vr)? + "\n",
        )?;
        match vr.failure {
            None => {
                a.outcome = AttemptOutcome::Passed;
                a.detail = format!(
                    "verified: ran {:.1} s under load",
                    vr.runtime.as_ref().map(|r| r.enabled_s).unwrap_or(0.0)
                );
                Ok(Checked::Passed(file.to_path_buf()))
            }
            Some(f) => {
                a.outcome = AttemptOutcome::from_failure(f);
                let (stage, diag) = verify_feedback(&vr);
                a.detail = format!("{}: {}", f.describe(), diag.lines().next().unwrap_or(""));
                Ok(Checked::Failed {
                    stage,
                    failure: f.describe().to_string(),
                    diagnostics: diag,
                })
            }
        }
    }

    /// One attempt: ask, then check and verify. `None` when the model could not be reached.
    fn attempt(&mut self, round: u32, attempt: u32) -> Result<Option<Checked>> {
        let mut a = Attempt {
            round,
            attempt,
            outcome: AttemptOutcome::Passed,
            detail: String::new(),
            candidate: None,
            call: None,
            checker: None,
            contribution: None,
            seconds: StageSeconds::default(),
        };
        (self.set.say)(&format!(
            "round {round} attempt {attempt}: asking {} ({})",
            self.gen.provider.provider, self.gen.provider.model
        ));
        let t = Instant::now();
        let reply = match self.set_provider_chat() {
            Ok(r) => r,
            Err(e) => {
                a.outcome = AttemptOutcome::LlmError;
                a.detail = e.to_string();
                self.gen.attempts.push(a);
                self.gen.reason = format!(
                    "the model could not be reached: {e}{}",
                    self.kept_note(round)
                );
                self.save()?;
                return Ok(None);
            }
        };
        a.seconds.generate = Some(t.elapsed().as_secs_f64());
        if let Some(why) = reply.declined {
            // Not an attempt: no code was offered, so nothing failed.
            (self.set.say)(&format!(
                "round {round}: {} has no change to offer: {why}",
                self.gen.provider.provider
            ));
            self.gen.reason = format!(
                "{}; round {round}: {} had no change to offer",
                self.gen.reason, self.gen.provider.provider
            );
            self.gen.declined = Some(why);
            self.save()?;
            return Ok(None);
        }
        for w in &reply.record.warnings {
            (self.set.say)(&format!("round {round} attempt {attempt}: warning: {w}"));
        }
        if let Some(u) = reply.record.usage {
            self.gen.tokens += u;
        }
        a.call = Some(reply.record.clone());
        let tag = format!("r{round}-a{attempt}");
        std::fs::write(
            self.set.run_dir.join(format!("reply-{tag}.md")),
            &reply.text,
        )?;
        self.conv.push_assistant(reply.text.clone());
        let checked = self.check(&mut a, &reply.text, &tag)?;
        if !matches!(checked, Checked::Ready(..)) {
            self.say_outcome(&a);
        }
        self.gen.attempts.push(a);
        self.save()?;
        Ok(Some(checked))
    }

    fn say_outcome(&self, a: &Attempt) {
        (self.set.say)(&format!(
            "round {} attempt {}: {:?} {}",
            a.round,
            a.attempt,
            a.outcome,
            a.detail.lines().next().unwrap_or("")
        ));
    }

    /// A `Ready` candidate's benchmark, which verifies it first in the same boot; the
    /// verification's outcome goes to the round's last attempt.
    fn verify_and_benchmark(
        &mut self,
        round: u32,
        file: PathBuf,
        prepared: bverify::Prepared,
    ) -> Result<Judged> {
        let tag = format!("r{round}");
        let incumbent = self.incumbent.clone();
        // With a confirmation to follow, a round's verdict only screens: the confirmation's
        // fresh runs decide, so the round stops as soon as its verdict passes.
        let sitting = Sitting {
            runs: self.set.opts.runs,
            order_seed: self.set.opts.order_seed,
            screen: self.set.opts.confirm_runs > 0,
        };
        let (bench, seconds, vr) =
            self.benchmark(&file, &tag, incumbent, sitting, Some(prepared))?;
        let Some(mut vr) = vr else {
            if let Some(last) = self.gen.attempts.last_mut() {
                last.outcome = AttemptOutcome::SandboxError;
                last.detail = bench.error.clone().unwrap_or_default();
            }
            self.unmeasured(round, &bench)?;
            return Ok(Judged::SandboxFailed);
        };
        let mut a = self
            .gen
            .attempts
            .pop()
            .context("a benchmark without an attempt")?;
        if !vr.passed {
            // The round's next attempt benchmarks in `bench-rN` again: this boot's console log
            // and job spec move aside, named for the attempt they judged.
            let dir = self.set.run_dir.join(format!("bench-{tag}"));
            let aside = self.set.run_dir.join(format!("boot-{tag}-a{}", a.attempt));
            let _ = std::fs::remove_dir_all(&aside);
            if std::fs::rename(&dir, &aside).is_ok() {
                if let Some(log) = &mut vr.console_log {
                    *log = log.replace(&dir.display().to_string(), &aside.display().to_string());
                }
            }
        }
        let tag = format!("{tag}-a{}", a.attempt);
        let checked = self.verified(&mut a, &tag, &file, vr);
        self.say_outcome(&a);
        if matches!(checked, Ok(Checked::Passed(_))) {
            a.seconds.benchmark = Some(seconds);
        }
        self.gen.attempts.push(a);
        self.save()?;
        Ok(match checked? {
            Checked::Passed(_) => Judged::Benchmarked(Box::new(bench)),
            failed => Judged::Failed(failed),
        })
    }

    /// A benchmark that measured nothing because the sandbox failed: the round stops, saying so.
    fn unmeasured(&mut self, round: u32, bench: &CaseBench) -> Result<()> {
        // No runs, so nothing to tell the model: asking it to improve on a number that was
        // never measured would only waste a round.
        let e = bench.error.clone().unwrap_or_default();
        self.gen.reason = format!(
            "round {round}'s benchmark could not measure the candidate (the sandbox failed, not \
             the scheduler): {}{}",
            e.lines().next().unwrap_or(""),
            self.kept_note(round)
        );
        self.gen.sandbox_error = Some(e);
        (self.set.say)(&format!("round {round}: {}", self.gen.reason));
        self.save()
    }

    fn set_provider_chat(&self) -> Result<super::llm::Reply, super::llm::LlmError> {
        self.provider.chat(&self.conv)
    }

    /// Benchmark a verified candidate against the default scheduler, its ablation and the
    /// scheduler it has to beat (`incumbent`), in the directory `bench-<tag>`. The bound is
    /// measured once, by the first benchmark, and reused at the same sizes afterwards. Returns
    /// the benchmark and the seconds it took.
    fn benchmark(
        &mut self,
        candidate: &Path,
        tag: &str,
        incumbent: Option<PathBuf>,
        sitting: Sitting,
        verify_first: Option<bverify::Prepared>,
    ) -> Result<(CaseBench, f64, Option<VerifyReport>)> {
        let Sitting {
            runs,
            order_seed,
            screen,
        } = sitting;
        (self.set.say)(&format!(
            "{tag}: benchmarking against the default scheduler{}{} (up to {runs} runs per arm)",
            if self.set.opts.ablation {
                ", its own ablation"
            } else {
                ""
            },
            incumbent
                .as_ref()
                .map(|i| format!(" and, head to head, {}", i.display()))
                .unwrap_or_default(),
        ));
        let t = Instant::now();
        let req = &self.set.prepared.request;
        let mut bench_opts = bench_options(
            self.set.opts,
            SchedulerChoice::File(candidate.to_path_buf()),
            ScaleChoice::Sized {
                scale: req.scale,
                long_scale: req.long_scale,
            },
        );
        bench_opts.runs = runs;
        bench_opts.order_seed = order_seed;
        bench_opts.screen = screen;
        bench_opts.classes = Some(self.set.prepared.classes().clone());
        bench_opts.programs = self.set.prepared.profile.programs();
        bench_opts.long_runs_wide = self.set.prepared.profile.long_runs_wide();
        bench_opts.incumbent = incumbent;
        bench_opts.known_bound = self.bound.clone();
        bench_opts.verify_first = verify_first.as_ref().and_then(|p| p.job.clone());
        let bench_dir = self.set.run_dir.join(format!("bench-{tag}"));
        let result = driver::run(
            self.set.paths,
            std::slice::from_ref(self.set.case),
            &bench_opts,
            &bench_dir,
            self.set.say,
        )?;
        let _ = crate::bench::export::write_all(&bench_dir, &result);
        let verified = match (verify_first, &result.verification) {
            (Some(p), Some(v)) => Some(p.finish_in_benchmark(v)),
            _ => None,
        };
        let bench = result
            .cases
            .into_iter()
            .next()
            .context("the benchmark returned no case")?;
        if self.bound.is_none() {
            self.bound = bench.bound.clone().map(|mut b| {
                b.reused_from = Some(format!("`bench-{tag}`"));
                b
            });
        }
        Ok((bench, t.elapsed().as_secs_f64(), verified))
    }

    /// After the rounds: the kept candidate was chosen by the runs of its round, so the number
    /// the library records comes from a benchmark of its own: fresh runs, a new order, and the
    /// accepted scheduler (if any) head to head. The candidate stays kept only if this
    /// benchmark's verdict passes too and it beats the accepted one.
    fn confirm(&mut self) -> Result<()> {
        let Some(kept) = self.kept.take() else {
            return Ok(());
        };
        if let Some(accepted) = &self.accepted {
            if same_code(&kept.file, accepted)? {
                // A head to head would race the program against itself, and a tie keeps the
                // accepted one anyway; the round's runs already show it passing at these sizes.
                self.gen.same_as_accepted = true;
                self.gen.final_source = None;
                self.gen.reason = format!(
                    "{}; round {}'s scheduler is the accepted one's code (comments aside), so \
                     there is nothing to confirm or replace",
                    kept.bench.verdict.reason, kept.round
                );
                (self.set.say)(&format!(
                    "round {}'s scheduler is the accepted one's code, comments aside (the \
                     synthesiser writes the measured times into them): no confirmation, the \
                     accepted scheduler stays",
                    kept.round
                ));
                return self.save();
            }
        }
        let runs = self.set.opts.confirm_runs;
        (self.set.say)(&format!(
            "confirming round {}'s scheduler in fresh runs: the runs that chose it do not also \
             measure it",
            kept.round
        ));
        // A seed the user gave drew the rounds' orders; the confirmation draws another.
        let seed = self.set.opts.order_seed.map(|s| s ^ 0x5EED_C0F1);
        let sitting = Sitting {
            runs,
            order_seed: seed,
            screen: false,
        };
        let (bench, seconds, _) =
            self.benchmark(&kept.file, "confirm", self.accepted.clone(), sitting, None)?;
        if bench.unmeasured {
            let e = bench.error.clone().unwrap_or_default();
            self.gen.reason = format!(
                "round {}'s scheduler passed, but its confirmation could not be measured \
                 (the sandbox failed, not the scheduler): {}; nothing is kept",
                kept.round,
                e.lines().next().unwrap_or("")
            );
            self.gen.sandbox_error = Some(e);
            (self.set.say)(&format!("confirm: {}", self.gen.reason));
            self.gen.final_source = None;
            return self.save();
        }
        let holds = bench.verdict.pass
            && (self.accepted.is_none() || bench.beats_incumbent() == Some(true));
        let target = self.set.opts.target;
        let accepted_stands = self.accepted.as_ref().map(|_| {
            bench
                .incumbent_cut
                .is_some_and(|c| c.cut >= target && c.ci_low > 0.0)
        });
        self.gen.confirmation = Some(Confirmation {
            round: kept.round,
            selection_cut: kept.bench.cut,
            selection_verdict: kept.bench.verdict.clone(),
            holds,
            seconds,
            accepted_stands,
        });
        self.gen.reason = confirmation_reason(&ConfirmationFacts {
            round: kept.round,
            chose: kept.bench.cut,
            fresh: bench.cut,
            fresh_pass: bench.verdict.pass,
            fresh_reason: &bench.verdict.reason,
            holds,
            accepted: accepted_stands.zip(bench.incumbent_cut),
            target,
        });
        (self.set.say)(&format!("confirm: {}", self.gen.reason));
        self.gen.benchmark = Some(bench);
        self.save()
    }

    /// One round: attempts until one verifies (repairing in between), then its benchmark. The
    /// verification runs in the benchmark's boot, so a candidate that fails it costs one boot.
    fn round(&mut self, round: u32) -> Result<RoundEnd> {
        let mut benched = None;
        for attempt in 1..=self.set.opts.max_attempts {
            let checked = match self.attempt(round, attempt)? {
                None => return Ok(RoundEnd::Stop),
                Some(Checked::Ready(file, prepared)) => {
                    match self.verify_and_benchmark(round, file.clone(), *prepared)? {
                        Judged::SandboxFailed => return Ok(RoundEnd::Stop),
                        Judged::Benchmarked(bench) => {
                            benched = Some((file, bench));
                            break;
                        }
                        Judged::Failed(checked) => checked,
                    }
                }
                Some(checked) => checked,
            };
            match checked {
                Checked::Passed(file) => {
                    // Only `--verify-only` verifies without benchmarking.
                    self.gen.verified = Some(file.display().to_string());
                    self.gen.reason = "verified; not benchmarked (--verify-only)".into();
                    self.save()?;
                    return Ok(RoundEnd::Stop);
                }
                Checked::Ready(..) => unreachable!("a ready candidate is benchmarked above"),
                Checked::Failed {
                    stage,
                    failure,
                    diagnostics,
                } => {
                    if crate::interrupt::requested() {
                        self.gen.reason = "interrupted".into();
                        return Ok(RoundEnd::Stop);
                    }
                    let mut v = BTreeMap::new();
                    v.insert("stage", stage);
                    v.insert("failure", failure);
                    v.insert("diagnostics", diagnostics);
                    let text = self.set.repair.render(&v)?;
                    self.conv.push_request(Purpose::Repair, text);
                }
            }
        }
        let Some((candidate, bench)) = benched else {
            self.gen.reason = format!(
                "no candidate passed verification in {} attempt(s){}",
                self.set.opts.max_attempts,
                self.kept_note(round)
            );
            self.save()?;
            return Ok(RoundEnd::Stop);
        };
        if bench.unmeasured {
            self.unmeasured(round, &bench)?;
            return Ok(RoundEnd::Stop);
        }
        (self.set.say)(&format!("round {round}: {}", bench.verdict.reason));
        self.judge(round, candidate, *bench)
    }

    /// `; kept round K's scheduler` when an earlier round's candidate is what stays.
    fn kept_note(&self, round: u32) -> String {
        match &self.kept {
            Some(k) if k.round != round => format!("; kept round {}'s scheduler", k.round),
            _ => String::new(),
        }
    }

    /// After a round's benchmark: keep the candidate if it passed and beat what was kept
    /// (head to head), and say whether another round should try to do better.
    fn judge(&mut self, round: u32, candidate: PathBuf, bench: CaseBench) -> Result<RoundEnd> {
        let contribution = self
            .gen
            .attempts
            .last()
            .and_then(|a| a.contribution.clone());
        self.gen.rounds.push(RoundRecord {
            round,
            candidate: candidate.display().to_string(),
            contribution: contribution.clone(),
            pass: bench.verdict.pass,
            cut: bench.cut,
            incumbent: bench.incumbent_path.clone(),
            vs_incumbent: bench.vs_incumbent,
            beat_incumbent: bench.beats_incumbent(),
        });
        if !bench.verdict.pass {
            if let Some(last) = self.gen.attempts.last_mut() {
                last.outcome = AttemptOutcome::BelowTarget;
                last.detail = bench.verdict.reason.clone();
            }
        }
        // An earlier round's kept candidate is replaced only by beating it head to head (the
        // benchmark ran it as the incumbent); the accepted scheduler waits for the confirmation.
        let replaces =
            bench.verdict.pass && (self.kept.is_none() || bench.beats_incumbent() == Some(true));
        if replaces {
            self.kept = Some(Kept {
                round,
                file: candidate.clone(),
                bench: bench.clone(),
            });
        }
        match &self.kept {
            Some(k) => {
                self.gen.benchmark = Some(k.bench.clone());
                self.gen.final_source = Some(std::fs::read_to_string(&k.file)?);
                self.gen.kept_round = Some(k.round);
                self.incumbent = Some(k.file.clone());
            }
            None => {
                self.gen.benchmark = Some(bench.clone());
                self.incumbent = Some(candidate);
            }
        }
        self.gen.reason = format!("{}{}", bench.verdict.reason, self.kept_note(round));
        self.save()?;
        let own = contribution.as_ref().is_none_or(Contribution::is_own);
        Ok(if replaces && own {
            RoundEnd::Passed
        } else {
            RoundEnd::Improve(Box::new(bench))
        })
    }
}

/// Whether two scheduler sources are the same C code once comments and layout are gone.
fn same_code(a: &Path, b: &Path) -> Result<bool> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    Ok(super::contribution::tokens(&read(a)?) == super::contribution::tokens(&read(b)?))
}

/// A copy of the case's accepted scheduler in the run directory (the library file may be
/// replaced while this run goes on, and the benchmark records the hash of what it ran).
fn accepted_copy(
    paths: &ProjectPaths,
    case: &Case,
    run_dir: &Path,
    say: Say,
) -> Result<Option<PathBuf>> {
    let Some(a) = crate::library::current(&paths.root, &case.id)? else {
        return Ok(None);
    };
    let copy = run_dir.join(format!("accepted-{}.bpf.c", case.id));
    std::fs::write(&copy, &a.source).with_context(|| format!("cannot write {}", copy.display()))?;
    say(&format!(
        "{}: a scheduler is accepted (cut {:.1}%, {}); a candidate that passes replaces it only by \
         beating it head to head, in the confirmation's fresh runs",
        case.id,
        a.meta.cut.cut * 100.0,
        a.meta.accepted_at
    ));
    Ok(Some(copy))
}

/// Generate a scheduler for one prepared case with `provider`. Returns what happened;
/// accepting into the library is left to the caller (who decides with the library's rules).
pub fn generate_case(
    paths: &ProjectPaths,
    case: &Case,
    prepared: &Prepared,
    provider: &dyn ChatProvider,
    opts: &GenerateOptions,
    run_dir: &Path,
    say: Say,
) -> Result<Generation> {
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let kernel = crate::kernel::select(opts.kernel.as_deref())?;
    let kfuncs_h = kernel
        .kfuncs_h
        .as_ref()
        .map(std::fs::read_to_string)
        .transpose()?
        .context("the kernel has no kfuncs.h: run `schedgen kernel fetch`")?;
    let kernel_dir = crate::kernel::header_dir(&kernel)?;
    let headers = crate::bpf::compile::Headers::new(&kernel_dir, &paths.bpf_reference());

    let prompts = paths.root.join("prompts");
    let t_system = Template::load(&prompts, "system")?;
    let (reference_path, generate_template) = dialect_prompt(opts.dialect);
    let t_generate = Template::load(&prompts, generate_template)?;
    let t_repair = Template::load(&prompts, "repair")?;
    let t_improve = Template::load(&prompts, "improve")?;
    let reference = std::fs::read_to_string(paths.root.join(reference_path))?;
    let p = &prepared.profile;
    let values = generate_values(
        case,
        p,
        &kernel.release,
        &kfuncs_for_prompt(&kfuncs_h),
        reference_path,
        &reference,
    );
    let system = t_system.render(&BTreeMap::new())?;
    let user = t_generate.render(&values)?;
    let estimate = (system.len() + user.len()) as f64 * super::llm::TOKENS_PER_CHAR;
    if estimate > PROMPT_BUDGET_TOKENS as f64 {
        say(&format!(
            "warning: the prompt is about {estimate:.0} tokens, over the {PROMPT_BUDGET_TOKENS}-token budget: \
             a small model's server may need a larger context"
        ));
    }
    std::fs::write(
        run_dir.join("prompt.md"),
        format!("# system\n\n{system}\n# user\n\n{user}"),
    )?;
    let accepted = accepted_copy(paths, case, run_dir, say)?;
    let classes = prepared.classes().clone();
    let gen = Generation {
        started_at: chrono::Local::now().to_rfc3339(),
        templates: [&t_system, &t_generate, &t_repair, &t_improve]
            .iter()
            .map(|t| t.id())
            .collect(),
        prompt_hash: prompt::hash(&[&system, &user]),
        shown_references: vec![reference_path.into()],
        dialect: opts.dialect,
        kernel_release: kernel.release.clone(),
        classes: classes.clone(),
        run_dir: run_dir.display().to_string(),
        ..Generation::new(&case.id, provider.info())
    };
    let tracer = if classes.is_empty() {
        None
    } else {
        Some(crate::classify::tracer::tracer_object(
            &kernel_dir,
            &paths.bpf_reference(),
        )?)
    };
    let mut lp = Loop {
        set: Setting {
            paths,
            case,
            prepared,
            opts,
            run_dir,
            say,
            kfuncs: checks::kfunc_names(&kfuncs_h),
            headers,
            repair: t_repair,
            improve: t_improve,
            shown: vec![(reference_path.to_string(), reference.clone())],
            knowledge: Knowledge {
                settings: Vec::new(),
                attach_cpu: None,
                long_comms: case.long_task.comm.clone(),
                classes,
                tracer,
            },
        },
        provider,
        conv: Conversation::new(system, user),
        gen,
        kept: None,
        accepted,
        incumbent: None,
        bound: prepared.bound.clone(),
    };
    if !p.task_classes.separable {
        // A scheduler cannot run the long task first if nothing tells it which one that is.
        lp.gen.reason = format!("not generated: {}", p.task_classes.explanation);
        lp.save()?;
        return Ok(lp.gen);
    }
    for round in 1..=opts.max_rounds {
        match lp.round(round)? {
            RoundEnd::Passed | RoundEnd::Stop => break,
            RoundEnd::Improve(bench) => {
                if round < opts.max_rounds && !crate::interrupt::requested() {
                    let values = improve_values(&bench, opts.target, lp.gen.rounds.last());
                    let text = lp.set.improve.render(&values)?;
                    lp.conv.push_improve(text, measured(&bench));
                }
            }
        }
    }
    if opts.confirm_runs > 0 && !crate::interrupt::requested() {
        lp.confirm()?;
    }
    Ok(lp.gen)
}

/// What a confirmation found, for [`confirmation_reason`].
struct ConfirmationFacts<'a> {
    round: u32,
    /// The cut in the runs that chose the candidate, and in the fresh ones.
    chose: Option<CutEstimate>,
    fresh: Option<CutEstimate>,
    fresh_pass: bool,
    fresh_reason: &'a str,
    /// Whether the candidate passed the fresh runs and, with a scheduler accepted, beat it.
    holds: bool,
    /// With a scheduler accepted: whether it still meets the target, and its cut, both from
    /// the fresh runs.
    accepted: Option<(bool, CutEstimate)>,
    target: f64,
}

/// The confirmation's verdict in words. A candidate can fall short in two ways, which read
/// differently: it failed the fresh runs, or it passed them but did not beat the accepted
/// scheduler head to head.
fn confirmation_reason(f: &ConfirmationFacts) -> String {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let cut = |c: Option<CutEstimate>| {
        c.map_or_else(
            || "–".into(),
            |c| format!("{} [{}, {}]", pct(c.cut), pct(c.ci_low), pct(c.ci_high)),
        )
    };
    let mut reason = if f.holds {
        format!(
            "{} (confirmed in fresh runs; round {} measured {})",
            f.fresh_reason,
            f.round,
            cut(f.chose)
        )
    } else if f.fresh_pass {
        format!(
            "round {}'s scheduler passed in the runs that chose it ({}) and in fresh ones ({}), \
             but did not beat the accepted scheduler head to head",
            f.round,
            cut(f.chose),
            cut(f.fresh)
        )
    } else {
        format!(
            "round {}'s scheduler passed in the runs that chose it ({}) but not in fresh ones: {}",
            f.round,
            cut(f.chose),
            f.fresh_reason
        )
    };
    // Falling short says nothing about the accepted scheduler: its arm ran in the same runs,
    // so say whether it still meets the target.
    if let (false, Some((stands, c))) = (f.holds, f.accepted) {
        let target = format!("{:.0}%", f.target * 100.0);
        let standing = match (stands, f.fresh_pass) {
            (true, _) => format!("it meets the {target} target and stays"),
            (false, true) => {
                format!("below the {target} target, but only a head-to-head win replaces it")
            }
            (false, false) => format!("below the {target} target too"),
        };
        reason += &format!(
            "; the accepted scheduler, in the same runs, cut {}: {standing}",
            cut(Some(c))
        );
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{CutEstimate, IntervalMethod};

    #[test]
    fn the_same_code_is_the_same_whatever_its_comments_say() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let a = write("a.bpf.c", "/* expected 0.972 s CPU */\nint x = 1;\n");
        let b = write(
            "b.bpf.c",
            "/* expected 0.886 s CPU */\nint  x = 1; // same\n",
        );
        let c = write("c.bpf.c", "/* expected 0.886 s CPU */\nint x = 2;\n");
        assert!(same_code(&a, &b).unwrap());
        assert!(!same_code(&a, &c).unwrap());
        assert!(same_code(&a, &d.path().join("missing.bpf.c")).is_err());
    }

    fn round(n: u32, candidate: &str, incumbent: Option<&str>) -> RoundRecord {
        let h2h = CutEstimate {
            cut: -0.1,
            ci_low: -0.17,
            ci_high: -0.03,
            method: IntervalMethod::WelchT,
            p_value: 0.02,
        };
        RoundRecord {
            round: n,
            candidate: candidate.into(),
            contribution: None,
            pass: true,
            cut: None,
            incumbent: incumbent.map(str::to_string),
            vs_incumbent: incumbent.map(|_| h2h),
            beat_incumbent: incumbent.map(|_| false),
        }
    }

    fn generation(rounds: Vec<RoundRecord>) -> Generation {
        Generation {
            rounds,
            ..Generation::empty("ctest_suite")
        }
    }

    #[test]
    fn the_improvement_summary_names_the_scheduler_it_had_to_beat() {
        let earlier = generation(vec![
            round(1, "r1.bpf.c", None),
            round(2, "r2.bpf.c", Some("r1.bpf.c")),
        ]);
        let s = earlier.improvement_summary().unwrap();
        assert!(s.contains("did not beat round 1's scheduler"), "{s}");
        let accepted = generation(vec![
            round(1, "r1.bpf.c", Some("accepted-ctest_suite.bpf.c")),
            round(2, "r2.bpf.c", Some("accepted-ctest_suite.bpf.c")),
        ]);
        let s = accepted.improvement_summary().unwrap();
        assert!(s.starts_with("round 2's change"), "{s}");
        assert!(s.contains("did not beat the accepted scheduler"), "{s}");
        assert!(!s.contains("round 0"), "{s}");
    }

    #[test]
    fn a_confirmation_says_which_way_the_candidate_fell_short() {
        let est = |cut: f64, lo: f64, hi: f64| CutEstimate {
            cut,
            ci_low: lo,
            ci_high: hi,
            method: IntervalMethod::WelchT,
            p_value: 0.1,
        };
        let mut f = ConfirmationFacts {
            round: 1,
            chose: Some(est(0.331, 0.227, 0.435)),
            fresh: Some(est(0.335, 0.26, 0.41)),
            fresh_pass: true,
            fresh_reason: "cut 33.5% ≥ 30% target",
            holds: false,
            accepted: Some((false, est(0.296, 0.107, 0.485))),
            target: 0.3,
        };
        // Passed the fresh runs, lost head to head: neither "not in fresh ones" nor "too".
        assert_eq!(
            confirmation_reason(&f),
            "round 1's scheduler passed in the runs that chose it (33.1% [22.7%, 43.5%]) and in \
             fresh ones (33.5% [26.0%, 41.0%]), but did not beat the accepted scheduler head to \
             head; the accepted scheduler, in the same runs, cut 29.6% [10.7%, 48.5%]: below \
             the 30% target, but only a head-to-head win replaces it"
        );
        f.fresh_pass = false;
        f.fresh_reason = "cut 29.9% is below the 30% target";
        let r = confirmation_reason(&f);
        assert!(
            r.contains("but not in fresh ones: cut 29.9% is below"),
            "{r}"
        );
        assert!(r.ends_with("below the 30% target too"), "{r}");
        f.accepted = Some((true, est(0.321, 0.302, 0.34)));
        let r = confirmation_reason(&f);
        assert!(r.ends_with("it meets the 30% target and stays"), "{r}");
        f.holds = true;
        f.fresh_pass = true;
        f.fresh_reason = "cut 33.5% ≥ 30% target";
        assert_eq!(
            confirmation_reason(&f),
            "cut 33.5% ≥ 30% target (confirmed in fresh runs; round 1 measured 33.1% [22.7%, \
             43.5%])"
        );
    }
}
