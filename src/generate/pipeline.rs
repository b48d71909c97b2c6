//! The generate loop: profile → prompt → model → static checks → compile + verify (sandbox) →
//! repair → benchmark → improve → keep.
//!
//! Every stage's failure is classified and, while attempts remain, sent back to the model with
//! the evidence (compiler diagnostics, the verifier's log, the kernel's exit reason, the measured
//! numbers). Every candidate and its logs stay in the run directory for review; only a candidate
//! that passes the benchmark verdict and beats the accepted one reaches `bpf-generated/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::checks;
use super::extract::extract_scheduler;
use super::llm::{CallRecord, ChatProvider, Conversation, ProviderInfo, TokenUsage};
use super::prompt::{self, Template};
use crate::bench::driver::{self, BenchOptions, ScaleChoice, SchedulerChoice};
use crate::bench::result::{Arm, CaseBench};
use crate::bpf::runtime::Failure;
use crate::bpf::verify::{self as bverify, VerifyOptions, VerifyReport};
use crate::case::Case;
use crate::paths::ProjectPaths;
use crate::profile::{self, Profile};
use crate::sandbox::Backend;
use crate::workload::{self, RunRequest};

/// The reference scheduler shown to the model.
pub const SHOWN_REFERENCE: &str = "bpf-reference/longfirst.bpf.c";

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_attempts: u32,
    pub max_rounds: u32,
    pub target: f64,
    pub runs: usize,
    pub warmup: usize,
    pub scale: ScaleChoice,
    pub profile_scale: f64,
    pub backend: Backend,
    pub kernel: Option<PathBuf>,
    pub cpus: Option<usize>,
    pub memory_mib: u64,
    pub verify_duration_s: f64,
    pub short_target_s: f64,
    pub long_cap_s: f64,
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
            Failure::Sandbox => AttemptOutcome::SandboxError,
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
    /// Seconds per stage: generate, check, verify, benchmark.
    pub seconds: BTreeMap<String, f64>,
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
    pub kernel_release: String,
    pub attempts: Vec<Attempt>,
    pub tokens: TokenUsage,
    /// Estimated USD; `None` when unknown (an unpriced model or a server without usage).
    pub cost_usd: Option<f64>,
    /// The benchmark of the best candidate.
    pub benchmark: Option<CaseBench>,
    pub accepted: bool,
    pub reason: String,
    pub run_dir: String,
    /// The candidate that passed the benchmark, if any.
    pub final_source: Option<String>,
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
fn verify_feedback(r: &VerifyReport) -> (String, String) {
    let stage = format!("{:?}", r.stage).to_lowercase();
    let mut diag = String::new();
    if let Some(c) = &r.compile {
        if !c.ok {
            let errors: Vec<String> = c
                .diagnostics
                .iter()
                .filter(|d| d.severity != crate::bpf::compile::Severity::Warning)
                .take(25)
                .map(|d| {
                    let file = Path::new(&d.file)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let sev = format!("{:?}", d.severity).to_lowercase();
                    format!("{file}:{}:{}: {sev}: {}", d.line, d.column, d.message)
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

fn fmt_runs(b: &CaseBench, arm: Arm) -> String {
    b.runs
        .iter()
        .filter(|r| r.arm == arm && !r.warmup)
        .map(|r| format!("{:.2} s", r.makespan_s))
        .collect::<Vec<_>>()
        .join(", ")
}

fn improve_values(b: &CaseBench, target: f64) -> BTreeMap<&'static str, String> {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
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
    v.insert(
        "best_cut",
        b.bound
            .as_ref()
            .map(|x| pct(x.model.best_cut))
            .unwrap_or_else(|| "unknown".into()),
    );
    v.insert("default_runs", fmt_runs(b, Arm::Default));
    v.insert("custom_runs", fmt_runs(b, Arm::Custom));
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

/// Profile the case on this host at `scale` (with the monitor).
pub fn profile_case(paths: &ProjectPaths, case: &Case, scale: f64) -> Result<Profile> {
    let mut req = RunRequest::new(case.clone(), paths.assets());
    req.scale = scale;
    req.monitor_interval_ms = Some(20);
    let run = workload::run_case(&req, &|_| {});
    profile::from_run(&run, &case.description)
}

fn generate_values(
    case: &Case,
    p: &Profile,
    kernel_release: &str,
    kfuncs: &str,
    reference: &str,
) -> BTreeMap<&'static str, String> {
    let mut v = BTreeMap::new();
    let long_comms = if p.long_tail.matches_hint || p.long_tail.comms.is_empty() {
        p.long_tail.hint_comms.clone()
    } else {
        p.long_tail.comms.clone()
    };
    v.insert("case_description", case.description.trim().to_string());
    v.insert("cpus", p.system.cpus.to_string());
    v.insert("kernel_release", kernel_release.to_string());
    v.insert("profile_summary", profile::summary(p));
    v.insert("long_tail", p.long_tail.recognise_by.clone());
    v.insert("long_comms", long_comms.join(", "));
    v.insert("short_comms", p.short.comms.join(", "));
    v.insert("fair_s", format!("{:.2}", p.model.fair_share_makespan_s));
    v.insert("optimal_s", format!("{:.2}", p.model.optimal_makespan_s));
    v.insert("best_cut", format!("{:.1}%", p.model.best_cut * 100.0));
    v.insert("kfuncs", kfuncs.to_string());
    v.insert(
        "references",
        format!("`{SHOWN_REFERENCE}`:\n\n```c\n{reference}```"),
    );
    v
}

/// Generate a scheduler for one case with `provider`. Returns what happened; accepting into the
/// library is left to the caller (who decides with the library's rules).
pub fn generate_case(
    paths: &ProjectPaths,
    case: &Case,
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
    let kfunc_set = checks::kfunc_names(&kfuncs_h);
    let check_headers = crate::bpf::compile::Headers {
        kernel_dir: crate::kernel::header_dir(&kernel)?,
        project_dir: paths.bpf_reference(),
    };

    say(&format!(
        "profiling at scale {} on this host",
        opts.profile_scale
    ));
    let p = profile_case(paths, case, opts.profile_scale)?;
    std::fs::write(
        run_dir.join("profile.json"),
        serde_json::to_string_pretty(&p)? + "\n",
    )?;
    let long_comms = if p.long_tail.matches_hint || p.long_tail.comms.is_empty() {
        p.long_tail.hint_comms.clone()
    } else {
        p.long_tail.comms.clone()
    };

    let prompts = paths.root.join("prompts");
    let t_system = Template::load(&prompts, "system")?;
    let t_generate = Template::load(&prompts, "generate")?;
    let t_repair = Template::load(&prompts, "repair")?;
    let t_improve = Template::load(&prompts, "improve")?;
    let reference = std::fs::read_to_string(paths.root.join(SHOWN_REFERENCE))?;
    let values = generate_values(
        case,
        &p,
        &kernel.release,
        &kfuncs_for_prompt(&kfuncs_h),
        &reference,
    );
    let system = t_system.render(&BTreeMap::new())?;
    let user = t_generate.render(&values)?;
    std::fs::write(
        run_dir.join("prompt.md"),
        format!("# system\n\n{system}\n# user\n\n{user}"),
    )?;
    let mut conv = Conversation::new(system.clone(), user.clone());

    let mut gen = Generation {
        case_id: case.id.clone(),
        started_at: chrono::Local::now().to_rfc3339(),
        provider: provider.info(),
        templates: [&t_system, &t_generate, &t_repair, &t_improve]
            .iter()
            .map(|t| t.id())
            .collect(),
        prompt_hash: prompt::hash(&[&system, &user]),
        shown_references: vec![SHOWN_REFERENCE.into()],
        kernel_release: kernel.release.clone(),
        attempts: Vec::new(),
        tokens: TokenUsage::default(),
        cost_usd: None,
        benchmark: None,
        accepted: false,
        reason: String::new(),
        run_dir: run_dir.display().to_string(),
        final_source: None,
    };
    let save = |g: &Generation| -> Result<()> {
        std::fs::write(
            run_dir.join("generation.json"),
            serde_json::to_string_pretty(g)? + "\n",
        )?;
        Ok(())
    };

    for round in 1..=opts.max_rounds {
        let mut passed: Option<PathBuf> = None;
        for attempt in 1..=opts.max_attempts {
            let mut a = Attempt {
                round,
                attempt,
                outcome: AttemptOutcome::Passed,
                detail: String::new(),
                candidate: None,
                call: None,
                checker: None,
                seconds: BTreeMap::new(),
            };
            say(&format!(
                "round {round} attempt {attempt}: asking {} ({})",
                gen.provider.provider, gen.provider.model
            ));
            let t = Instant::now();
            let reply = match provider.chat(&conv) {
                Ok(r) => r,
                Err(e) => {
                    a.outcome = AttemptOutcome::LlmError;
                    a.detail = e.to_string();
                    gen.attempts.push(a);
                    gen.reason = format!("the model could not be reached: {e}");
                    save(&gen)?;
                    return Ok(gen);
                }
            };
            a.seconds
                .insert("generate".into(), t.elapsed().as_secs_f64());
            if let Some(u) = reply.record.usage {
                gen.tokens += u;
            }
            a.call = Some(reply.record.clone());
            std::fs::write(
                run_dir.join(format!("reply-r{round}-a{attempt}.md")),
                &reply.text,
            )?;
            conv.push_assistant(reply.text.clone());

            let t = Instant::now();
            let feedback: Option<(String, String, String)> = match extract_scheduler(&reply.text) {
                Err(e) => {
                    a.outcome = AttemptOutcome::NoCode;
                    a.detail = e.to_string();
                    Some((
                        "extraction".into(),
                        "no usable scheduler in the reply".into(),
                        e.to_string(),
                    ))
                }
                Ok(ex) => {
                    let file = run_dir.join(format!("candidate-r{round}-a{attempt}.bpf.c"));
                    std::fs::write(&file, &ex.source)?;
                    a.candidate = Some(file.display().to_string());
                    let report = checks::check(
                        &ex.source,
                        &checks::Target {
                            kfuncs: &kfunc_set,
                            headers: &check_headers,
                        },
                    );
                    a.checker = Some(report.checker);
                    let mut problems = report.problems;
                    if !problems.is_empty() {
                        problems.extend(report.compiler_errors);
                    }
                    a.seconds.insert("check".into(), t.elapsed().as_secs_f64());
                    if !problems.is_empty() {
                        a.outcome = AttemptOutcome::StaticCheck;
                        a.detail = problems.join("; ");
                        Some((
                            "static check".into(),
                            format!("{} problem(s) found before compiling", problems.len()),
                            problems.join("\n"),
                        ))
                    } else {
                        say(&format!("round {round} attempt {attempt}: compiling and verifying in the sandbox"));
                        let t = Instant::now();
                        let vr = bverify::verify(
                            &file,
                            &VerifyOptions {
                                duration_s: opts.verify_duration_s,
                                backend: opts.backend,
                                kernel: opts.kernel.clone(),
                                cpus: opts.cpus,
                                memory_mib: 2048,
                                long_comms: long_comms.clone(),
                                project_headers: paths.bpf_reference(),
                            },
                        )?;
                        a.seconds.insert("verify".into(), t.elapsed().as_secs_f64());
                        std::fs::write(
                            run_dir.join(format!("verify-r{round}-a{attempt}.json")),
                            serde_json::to_string_pretty(&vr)? + "\n",
                        )?;
                        match vr.failure {
                            None => {
                                a.outcome = AttemptOutcome::Passed;
                                a.detail = format!(
                                    "verified: ran {:.1} s under load",
                                    vr.runtime.as_ref().map(|r| r.enabled_s).unwrap_or(0.0)
                                );
                                passed = Some(file.clone());
                                None
                            }
                            Some(f) => {
                                a.outcome = AttemptOutcome::from_failure(f);
                                let (stage, diag) = verify_feedback(&vr);
                                a.detail = format!(
                                    "{}: {}",
                                    f.describe(),
                                    diag.lines().next().unwrap_or("")
                                );
                                Some((stage, f.describe().to_string(), diag))
                            }
                        }
                    }
                }
            };
            say(&format!(
                "round {round} attempt {attempt}: {:?} {}",
                a.outcome,
                a.detail.lines().next().unwrap_or("")
            ));
            gen.attempts.push(a);
            save(&gen)?;
            match feedback {
                None => break,
                Some((stage, failure, diag)) => {
                    if crate::interrupt::requested() {
                        gen.reason = "interrupted".into();
                        return Ok(gen);
                    }
                    let mut v = BTreeMap::new();
                    v.insert("stage", stage);
                    v.insert("failure", failure);
                    v.insert("diagnostics", diag);
                    conv.push_user(t_repair.render(&v)?);
                }
            }
        }
        let Some(candidate) = passed else {
            gen.reason = format!(
                "no candidate passed verification in {} attempt(s)",
                opts.max_attempts
            );
            save(&gen)?;
            return Ok(gen);
        };

        say(&format!(
            "round {round}: benchmarking against the default scheduler ({} runs per arm)",
            opts.runs
        ));
        let t = Instant::now();
        let bench_opts = BenchOptions {
            scheduler: SchedulerChoice::File(candidate.clone()),
            runs: opts.runs,
            warmup: opts.warmup,
            scale: opts.scale,
            cpus: opts.cpus,
            target: opts.target,
            backend: opts.backend,
            kernel: opts.kernel.clone(),
            memory_mib: opts.memory_mib,
            timeout: Duration::from_secs(3 * 3600),
            short_target_s: opts.short_target_s,
            long_cap_s: opts.long_cap_s,
        };
        let bench_dir = run_dir.join(format!("bench-r{round}"));
        let mut result = driver::run(
            paths,
            std::slice::from_ref(case),
            &bench_opts,
            &bench_dir,
            say,
        )?;
        for c in &mut result.cases {
            c.scheduler.long_comms = long_comms.clone();
        }
        let _ = crate::bench::export::write_all(&bench_dir, &result);
        let bench = result
            .cases
            .into_iter()
            .next()
            .context("the benchmark returned no case")?;
        if let Some(last) = gen.attempts.last_mut() {
            last.seconds
                .insert("benchmark".into(), t.elapsed().as_secs_f64());
        }
        say(&format!("round {round}: {}", bench.verdict.reason));
        let pass = bench.verdict.pass;
        gen.benchmark = Some(bench.clone());
        if pass {
            gen.final_source = Some(std::fs::read_to_string(&candidate)?);
            gen.reason = bench.verdict.reason.clone();
            save(&gen)?;
            return Ok(gen);
        }
        if let Some(last) = gen.attempts.last_mut() {
            last.outcome = AttemptOutcome::BelowTarget;
            last.detail = bench.verdict.reason.clone();
        }
        gen.reason = bench.verdict.reason.clone();
        save(&gen)?;
        if round < opts.max_rounds {
            conv.push_user(t_improve.render(&improve_values(&bench, opts.target))?);
        }
    }
    Ok(gen)
}
