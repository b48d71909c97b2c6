use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::bpf::compile::Dialect;
use crate::case::{self, Case};
use crate::cli::GenerateArgs;
use crate::generate::cost::PriceTable;
use crate::generate::keep;
use crate::generate::llm::{ChatProvider, OpenAiProvider};
use crate::generate::offline::OfflineProvider;
use crate::generate::pipeline::{self, GenerateOptions, Generation, Prepared};
use crate::library::AcceptOutcome;
use crate::paths::ProjectPaths;
use crate::sandbox::Backend;

/// One line of the final table.
struct Row {
    case: String,
    outcome: String,
    /// The case got as far as asked: a passing scheduler is in `bpf-generated/` (ACCEPTED,
    /// KEPT OLD), or the candidate verified (VERIFIED) or passed unconfirmed (PASSED).
    ok: bool,
    cut: String,
    /// The best possible cut measured for the case's sizes (the bound), for scale.
    best: String,
    attempts: usize,
    detail: String,
}

fn provider_for(
    args: &GenerateArgs,
    dialect: Dialect,
    case: &Case,
    prepared: &Prepared,
    say: &dyn Fn(&str),
) -> Result<Box<dyn ChatProvider>> {
    if !args.model.uses_model() {
        if args.model.provider.is_none() {
            say("no LLM endpoint configured (OPENAI_BASE_URL or --base-url): using the offline synthesiser");
        }
        return Ok(Box::new(OfflineProvider::new(
            &case.id,
            prepared.classes(),
            dialect,
        )));
    }
    let mut config = args.model.endpoint()?;
    config.timeout = std::time::Duration::from_secs_f64(args.llm_timeout.max(0.1));
    config.temperature = Some(args.temperature);
    config.seed = args.seed;
    let notice = |line: &str| eprintln!("generate: {line}");
    Ok(Box::new(
        OpenAiProvider::new(config)?.with_retry_notice(notice),
    ))
}

pub fn run(
    paths: &ProjectPaths,
    kernel: Option<&Path>,
    backend: Backend,
    args: &GenerateArgs,
    quiet: bool,
) -> Result<u8> {
    let cases: Vec<Case> = if args.all {
        case::load_all(&paths.cases())?
    } else {
        args.test
            .iter()
            .map(|id| case::find(&paths.cases(), id))
            .collect::<Result<_>>()?
    };
    let scale = args.comparison.scale_choice().map_err(anyhow::Error::msg)?;
    if args.confirm_runs == Some(1) {
        anyhow::bail!("--confirm-runs must be 0 (no confirmation) or at least 2: one run per arm has no interval");
    }
    if !(args.budget >= 0.0 && args.budget.is_finite()) {
        anyhow::bail!(
            "--budget must be a number of seconds, 0 or more (0 keeps the short target's sizes)"
        );
    }
    let opts = GenerateOptions {
        max_attempts: args.max_attempts,
        max_rounds: args.max_rounds,
        target: args.comparison.target,
        runs: args.runs as usize,
        warmup: args.warmup.map(|k| k as usize),
        scale,
        backend,
        kernel: kernel.map(Path::to_path_buf),
        cpus: args.comparison.cpus,
        memory_mib: args.memory,
        verify_duration_s: args.verify_duration,
        short_target_s: args.comparison.short_target,
        long_cap_s: args.comparison.long_cap,
        ablation: !args.comparison.no_ablation,
        min_runs: args.comparison.min_runs,
        order_seed: args.comparison.order_seed,
        dialect: if args.dialect == "scx" {
            Dialect::Scx
        } else {
            Dialect::Schedgen
        },
        verify_only: args.verify_only,
        confirm_runs: args.confirm_runs.unwrap_or(args.runs) as usize,
        budget_s: (args.budget > 0.0).then_some(args.budget),
    };
    let prices = PriceTable::from_env()?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let mut rows = Vec::new();
    for c in &cases {
        if crate::interrupt::requested() {
            break;
        }
        let id = c.id.clone();
        let say = move |m: &str| {
            if !quiet {
                // The benchmark's own messages already name their case.
                let m = m
                    .strip_prefix(id.as_str())
                    .and_then(|r| r.strip_prefix(": "))
                    .unwrap_or(m);
                eprintln!("generate: {id}: {m}");
            }
        };
        let run_dir = PathBuf::from("runs").join(&stamp).join(&c.id);
        let attempt = pipeline::prepare(paths, c, &opts, &run_dir, &say).and_then(|prepared| {
            let provider = provider_for(args, opts.dialect, c, &prepared, &say)?;
            pipeline::generate_case(
                paths,
                c,
                &prepared,
                provider.as_ref(),
                &opts,
                &run_dir,
                &say,
            )
        });
        let mut gen: Generation = match attempt {
            Ok(g) => g,
            Err(e) => {
                // Said here too: with one case there is no table at the end to say it.
                println!("{}: ERROR: {e:#}", c.id);
                rows.push(Row {
                    case: c.id.clone(),
                    outcome: "ERROR".into(),
                    ok: false,
                    cut: "–".into(),
                    best: "–".into(),
                    attempts: 0,
                    detail: format!("{e:#}"),
                });
                continue;
            }
        };
        let calls: Vec<_> = gen.attempts.iter().filter_map(|a| a.call.clone()).collect();
        // A model on this machine (a loopback endpoint) has no price per token.
        let local = gen.provider.endpoint_host.as_deref().is_some_and(|h| {
            h.starts_with("127.") || h.starts_with("localhost") || h.starts_with("[::1]")
        });
        gen.cost_usd = if gen.provider.provider == "offline" || local {
            Some(0.0)
        } else {
            prices.estimate_calls(&calls).usd
        };
        let outcome = keep::keep(&paths.root, &gen)?;
        let (label, detail) = outcome_label(outcome.as_ref(), &gen);
        if label == "ACCEPTED" {
            gen.accepted = true;
        }
        // What the model wrote, against what the prompt showed it, and whether its own
        // change beat the copy it started from.
        let detail = match gen.final_contribution() {
            Some(c) if !c.is_own() => format!(
                "{detail}; the {} candidate is {}",
                if gen.kept_round.is_some() {
                    "kept"
                } else {
                    "last"
                },
                c.describe()
            ),
            _ => detail,
        };
        let detail = match gen.improvement_summary() {
            Some(i) => format!("{detail}; {i}"),
            None => detail,
        };
        std::fs::write(
            run_dir.join("generation.json"),
            serde_json::to_string_pretty(&gen)? + "\n",
        )?;
        let cut = gen
            .benchmark
            .as_ref()
            .and_then(|b| b.cut)
            .map(|k| {
                format!(
                    "{:.1}% [{:.1}%, {:.1}%]",
                    k.cut * 100.0,
                    k.ci_low * 100.0,
                    k.ci_high * 100.0
                )
            })
            .unwrap_or_else(|| "–".into());
        let best = gen
            .benchmark
            .as_ref()
            .and_then(|b| b.bound.as_ref())
            .map(|b| format!("{:.1}%", b.model.best_cut * 100.0))
            .unwrap_or_else(|| "–".into());
        println!(
            "{}: {label}: cut {cut}; {} attempt(s); tokens {} in / {} out; cost {}; {detail}",
            c.id,
            gen.attempts.len(),
            gen.tokens.prompt_tokens,
            gen.tokens.completion_tokens,
            gen.cost_usd
                .map(|u| format!("${u:.4}"))
                .unwrap_or_else(|| "unknown".into()),
        );
        println!("  candidates and logs: {}", run_dir.display());
        rows.push(Row {
            case: c.id.clone(),
            // What the user asked for was done: a passing scheduler is in place, or (with
            // --verify-only or --confirm-runs 0) the candidate got as far as asked.
            ok: matches!(
                label.as_str(),
                "ACCEPTED" | "KEPT OLD" | "VERIFIED" | "PASSED"
            ),
            outcome: label,
            cut,
            best,
            attempts: gen.attempts.len(),
            detail,
        });
    }
    if rows.len() > 1 {
        println!(
            "\n{:<24} {:<9} {:>26} {:>8} {:>8}  DETAIL",
            "CASE", "OUTCOME", "CUT [95% CI]", "BEST", "ATTEMPTS"
        );
        for r in &rows {
            println!(
                "{:<24} {:<9} {:>26} {:>8} {:>8}  {}",
                r.case,
                r.outcome,
                r.cut,
                r.best,
                r.attempts,
                r.detail.lines().next().unwrap_or("")
            );
        }
    }
    if !rows.is_empty() {
        let dir = PathBuf::from("runs").join(&stamp);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let summary = dir.join("summary.md");
        std::fs::write(&summary, summary_markdown(&rows))
            .with_context(|| format!("cannot write {}", summary.display()))?;
        println!("summary: {}", summary.display());
    }
    if crate::interrupt::requested() {
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(if rows.iter().all(|r| r.ok) {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn candidate_passed(g: &Generation) -> bool {
    g.benchmark.as_ref().is_some_and(|b| b.verdict.pass)
}

/// The case's one-word outcome and its detail, from what the library did with the generation.
fn outcome_label(outcome: Option<&AcceptOutcome>, gen: &Generation) -> (String, String) {
    let (label, detail) = match outcome {
        Some(AcceptOutcome::Accepted { source_path, .. }) => (
            "ACCEPTED",
            format!("{} ({})", source_path.display(), gen.reason),
        ),
        // A candidate that passed its confirmation but did not beat the accepted one leaves a
        // passing scheduler in place: the case is done, just not improved.
        Some(AcceptOutcome::Rejected { reason })
            if candidate_passed(gen) && gen.confirmation.is_some() =>
        {
            ("KEPT OLD", reason.clone())
        }
        // The candidate fell short in its confirmation, but the accepted scheduler, measured in
        // the same fresh runs, still meets the target: the case keeps a passing scheduler.
        Some(AcceptOutcome::Rejected { .. })
            if gen
                .confirmation
                .as_ref()
                .is_some_and(|c| c.accepted_stands == Some(true)) =>
        {
            ("KEPT OLD", gen.reason.clone())
        }
        // The sandbox failed before a verdict: no statement about the scheduler.
        _ if gen.sandbox_error.is_some() => ("ERROR", gen.reason.clone()),
        // The candidate that passed is the accepted scheduler again: it stays.
        None if gen.same_as_accepted && candidate_passed(gen) => ("KEPT OLD", gen.reason.clone()),
        // Passed, but the user skipped the confirmation, without which nothing is kept.
        Some(AcceptOutcome::Rejected { .. }) if candidate_passed(gen) => (
            "PASSED",
            format!(
                "{}; not kept: only a scheduler confirmed in fresh runs is kept, and \
                 --confirm-runs 0 skipped the confirmation",
                gen.reason
            ),
        ),
        // Passed the runs that chose it but not its confirmation: say so, then why the library
        // did not take it.
        Some(AcceptOutcome::Rejected { reason })
            if gen.confirmation.as_ref().is_some_and(|c| !c.holds) =>
        {
            ("REJECTED", format!("{}; {reason}", gen.reason))
        }
        Some(AcceptOutcome::Rejected { reason }) => ("REJECTED", reason.clone()),
        None if gen.verified.is_some() => ("VERIFIED", gen.reason.clone()),
        None => ("REJECTED", gen.reason.clone()),
    };
    (label.to_string(), detail)
}

/// The run's outcome per case as a Markdown table, for a reviewer or a README.
fn summary_markdown(rows: &[Row]) -> String {
    let mut md = String::from(
        "| case | outcome | cut [95% CI] | best possible | attempts | detail |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        md += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.case,
            r.outcome,
            r.cut,
            r.best,
            r.attempts,
            r.detail.lines().next().unwrap_or("").replace('|', "\\|")
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::pipeline::Confirmation;

    fn passed() -> Generation {
        let mut bench = crate::bench::fixture::bench().cases.remove(0);
        bench.verdict.pass = true;
        Generation {
            benchmark: Some(bench),
            reason: "cut 32.1% ≥ 30% target".into(),
            ..Generation::empty("ctest_suite")
        }
    }

    /// Round 1's confirmation, which did not hold.
    fn not_held(g: &Generation) -> Confirmation {
        Confirmation {
            round: 1,
            selection_cut: None,
            selection_verdict: g.benchmark.as_ref().unwrap().verdict.clone(),
            holds: false,
            seconds: 1.0,
            accepted_stands: None,
        }
    }

    fn rejected() -> AcceptOutcome {
        AcceptOutcome::Rejected {
            reason: "not better than the accepted one".into(),
        }
    }

    #[test]
    fn a_pass_without_its_confirmation_is_passed_and_says_nothing_was_kept() {
        let (label, detail) = outcome_label(Some(&rejected()), &passed());
        assert_eq!(label, "PASSED");
        assert!(
            detail.contains("not kept") && detail.contains("--confirm-runs 0"),
            "{detail}"
        );
    }

    #[test]
    fn a_confirmed_pass_that_lost_head_to_head_keeps_the_old_one() {
        let mut g = passed();
        g.confirmation = Some(not_held(&g));
        let (label, detail) = outcome_label(Some(&rejected()), &g);
        assert_eq!(label, "KEPT OLD");
        assert_eq!(detail, "not better than the accepted one");
    }

    #[test]
    fn a_pass_its_confirmation_did_not_hold_is_rejected_and_says_so() {
        let mut g = passed();
        g.benchmark.as_mut().unwrap().verdict.pass = false;
        g.reason = "round 1's scheduler passed in the runs that chose it (13.0%) but not in \
                    fresh ones: the interval does not exclude 0"
            .into();
        g.confirmation = Some(not_held(&g));
        let (label, detail) = outcome_label(Some(&rejected()), &g);
        assert_eq!(label, "REJECTED");
        assert!(
            detail.contains("not in fresh ones")
                && detail.ends_with("not better than the accepted one"),
            "{detail}"
        );
    }

    #[test]
    fn a_confirmation_that_fell_short_keeps_the_old_one_only_if_it_still_meets_the_target() {
        let mut g = passed();
        g.benchmark.as_mut().unwrap().verdict.pass = false;
        g.reason = "round 1's scheduler passed in the runs that chose it but not in fresh ones: \
                    cut 29.9% is below the 30% target; the accepted scheduler, in the same runs, \
                    cut 32.1% [30.2%, 34.0%]: it meets the 30% target and stays"
            .into();
        let mut c = not_held(&g);
        c.accepted_stands = Some(true);
        g.confirmation = Some(c.clone());
        let (label, detail) = outcome_label(Some(&rejected()), &g);
        assert_eq!(label, "KEPT OLD");
        assert_eq!(detail, g.reason);
        c.accepted_stands = Some(false);
        g.confirmation = Some(c);
        assert_eq!(outcome_label(Some(&rejected()), &g).0, "REJECTED");
    }

    #[test]
    fn the_accepted_code_again_keeps_the_old_one_without_a_confirmation() {
        let mut g = passed();
        g.same_as_accepted = true;
        g.reason = "cut 32.1% ≥ 30% target; round 1's scheduler is the accepted one's code".into();
        let (label, detail) = outcome_label(None, &g);
        assert_eq!(label, "KEPT OLD");
        assert_eq!(detail, g.reason);
        // Only a pass counts: a failing run of the same code is a rejection.
        g.benchmark.as_mut().unwrap().verdict.pass = false;
        assert_eq!(outcome_label(None, &g).0, "REJECTED");
    }

    #[test]
    fn a_sandbox_failure_is_an_error_not_a_verdict() {
        let mut g = Generation::empty("ctest_suite");
        g.sandbox_error = Some("the VM stopped without a result".into());
        g.reason = "round 1's benchmark could not measure the candidate".into();
        let (label, detail) = outcome_label(None, &g);
        assert_eq!(label, "ERROR");
        assert_eq!(detail, g.reason);
        // A plain failure stays a rejection.
        let (label, _) = outcome_label(None, &Generation::empty("ctest_suite"));
        assert_eq!(label, "REJECTED");
    }
}
