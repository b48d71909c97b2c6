//! From raw runs to statistics and a verdict: pure functions, unit-tested.
//!
//! PASS needs all of: no invalid run (an ejected scheduler disqualifies the candidate), at least
//! two valid measured runs per arm, a mean cut at or above the target, and a 95% interval of the
//! cut entirely above zero.

use std::collections::BTreeMap;

use super::efficiency;
use super::job::CaseRaw;
use super::result::{
    Arm, CaseBench, ClassifierSummary, ProductionArm, RunSample, SchedulerRef, Verdict,
};
use crate::classify::tracer::ClassifierRun;
use crate::stats::{self, IntervalMethod};

/// What the host knows about a case besides the raw runs.
#[derive(Debug, Clone)]
pub struct CaseMeta {
    pub test_id: String,
    pub test_name: String,
    pub scheduler: SchedulerRef,
    pub sizes: BTreeMap<String, String>,
    pub scale: f64,
    pub long_scale: f64,
    /// The incumbent's source, when one ran beside the candidate.
    pub incumbent: Option<String>,
    /// SHA-256 of that file.
    pub incumbent_sha256: Option<String>,
    /// The production schedulers that ran beside it.
    pub production: Vec<super::production::Production>,
}

fn makespans(runs: &[RunSample], arm: Arm) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.arm == arm && !r.warmup && r.valid)
        .map(|r| r.makespan_s)
        .collect()
}

pub fn verdict(c: &CaseBench, target: f64) -> Verdict {
    let fail = |reason: String| Verdict {
        pass: false,
        reason,
    };
    if let Some(e) = &c.error {
        return fail(e.lines().next().unwrap_or("error").to_string());
    }
    // A production scheduler's failed run is its own problem (reported with its arm), not the
    // candidate's.
    if let Some(bad) = c
        .runs
        .iter()
        .find(|r| !r.valid && !matches!(r.arm, Arm::Production(_)))
    {
        return fail(format!(
            "invalid {} run {}: {}",
            bad.arm.label(),
            bad.order + 1,
            bad.invalid_reason.as_deref().unwrap_or("unknown")
        ));
    }
    if c.default.n < 2 || c.custom.n < 2 {
        return fail(format!(
            "too few runs ({} default, {} custom): need 2 per arm",
            c.default.n, c.custom.n
        ));
    }
    let Some(cut) = c.cut else {
        return fail("no cut computed".into());
    };
    if cut.cut < target {
        return fail(format!(
            "cut {:.1}% is below the {:.0}% target",
            cut.cut * 100.0,
            target * 100.0
        ));
    }
    if cut.method == IntervalMethod::None || cut.ci_low.is_nan() || cut.ci_low <= 0.0 {
        return fail(format!(
            "the 95% interval of the cut [{:.1}%, {:.1}%] does not exclude 0",
            cut.ci_low * 100.0,
            cut.ci_high * 100.0
        ));
    }
    let against_default = format!(
        "cut {:.1}% ≥ {:.0}% target, 95% interval [{:.1}%, {:.1}%] above 0",
        cut.cut * 100.0,
        target * 100.0,
        cut.ci_low * 100.0,
        cut.ci_high * 100.0
    );
    if c.ablation.n > 0 {
        // The gain must come from knowing the long task, not from the scheduler's skeleton.
        let Some(p) = c.policy_cut.filter(|_| c.ablation.n >= 2) else {
            return fail(format!(
                "{against_default}, but too few ablation runs ({}) to show the policy's part",
                c.ablation.n
            ));
        };
        if p.method == IntervalMethod::None || p.ci_low.is_nan() || p.ci_low <= 0.0 {
            let skeleton = c
                .skeleton_cut
                .map(|k| {
                    format!(
                        "; the ablation itself cut {:.1}% against the default",
                        k.cut * 100.0
                    )
                })
                .unwrap_or_default();
            return fail(format!(
                "{against_default}, but against its own ablation {:.1}% [{:.1}%, {:.1}%]: not shown \
                 to come from knowing the long task{skeleton}",
                p.cut * 100.0,
                p.ci_low * 100.0,
                p.ci_high * 100.0
            ));
        }
        let of_best = match (c.policy_of_best, c.ablation_best_cut) {
            (Some(share), Some(best)) => format!(
                ", {:.0}% of the {:.1}% the best schedule would cut from the ablation",
                share * 100.0,
                best * 100.0
            ),
            _ => String::new(),
        };
        let of_list = match (c.policy_of_list, c.ablation_list_cut) {
            (Some(share), Some(best)) => format!(
                "; {:.0}% of the {:.1}% the longest-first order cut from it when run here",
                share * 100.0,
                best * 100.0
            ),
            _ => String::new(),
        };
        return Verdict {
            pass: true,
            reason: format!(
                "{against_default}; {:.1}% [{:.1}%, {:.1}%] of it against its ablation (the policy's part{of_best}{of_list})",
                p.cut * 100.0,
                p.ci_low * 100.0,
                p.ci_high * 100.0
            ),
        };
    }
    Verdict {
        pass: true,
        reason: against_default,
    }
}

/// A head to head whose whole interval lies within this much either way is a tie: more runs
/// could at most show one scheduler ahead by less, which is not worth replacing an accepted
/// one for, so the confirmation stops (the incumbent stays).
pub const TIE_MARGIN: f64 = 0.03;

/// The cut of `b` against `a` with a usable interval (two valid runs each at least).
fn interval(a: &[f64], b: &[f64]) -> Option<stats::CutEstimate> {
    let e = stats::cut(a, b);
    (e.method != IntervalMethod::None && e.ci_low.is_finite()).then_some(e)
}

/// Whether a head to head is decided: one side ahead with an interval clear of zero, or a tie.
fn head_decided(h: &stats::CutEstimate) -> bool {
    h.ci_low > 0.0 || h.ci_high < 0.0 || (h.ci_low > -TIE_MARGIN && h.ci_high < TIE_MARGIN)
}

/// Whether the candidate can no longer be shown ahead of the incumbent within `most` runs per
/// arm: even if the means and spreads held, Welch's interval at `most` runs would still reach
/// zero. The incumbent then stays whatever the other arms show.
fn head_futile(incumbent: &[f64], custom: &[f64], h: &stats::CutEstimate, most: usize) -> bool {
    h.ci_low <= 0.0
        && stats::half_width_at(incumbent, custom, most).is_some_and(|half| h.cut <= half)
}

/// The verdict's rule ([`verdict`]) on the cuts alone: the cut at or above the target with an
/// interval above zero, and above its ablation (when that ran) with an interval above zero.
fn clears(cut: &stats::CutEstimate, policy: Option<&stats::CutEstimate>, target: f64) -> bool {
    cut.cut >= target && cut.ci_low > 0.0 && policy.is_none_or(|p| p.ci_low > 0.0)
}

/// Runs per arm from which an arm's question may be answered ([`answered`]): the first count
/// with an interval. Its retirement then does not wait for `--min-runs`, which is about the
/// verdict's cut: at two runs each Welch's interval is wide (t = 4.3 at two degrees of
/// freedom), so only a clear answer retires an arm that early (ctest_suite's ablation, 30%
/// behind the candidate at 2-3% spread, is one).
pub const ANSWER_FROM: usize = 2;

/// Arms whose question the runs so far have answered, with the answer: the ablation once the
/// candidate beats it with an interval above zero, the incumbent once the head to head is
/// decided ([`head_decided`]). More runs of them could not change the verdict, so a benchmark
/// stops running them and goes on with the default and the candidate, whose cut against the
/// target is what usually takes longest to settle. Production arms answer no question of the
/// verdict's and are never retired here (a table of them wants every arm's runs); only the
/// kernel ejecting one ends its runs early (`bench::job`).
pub fn answered(runs: &[RunSample]) -> Vec<(Arm, String)> {
    let c = makespans(runs, Arm::Custom);
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let mut out = Vec::new();
    if let Some(p) = interval(&makespans(runs, Arm::Ablation), &c).filter(|p| p.ci_low > 0.0) {
        out.push((
            Arm::Ablation,
            format!(
                "the candidate beats it by {} [{}, {}]",
                pct(p.cut),
                pct(p.ci_low),
                pct(p.ci_high)
            ),
        ));
    }
    if let Some(h) = interval(&makespans(runs, Arm::Incumbent), &c).filter(head_decided) {
        out.push((
            Arm::Incumbent,
            format!(
                "head to head {} [{}, {}], decided",
                pct(h.cut),
                pct(h.ci_low),
                pct(h.ci_high)
            ),
        ));
    }
    out
}

/// How [`settled`] judges a case that may stop before its last round (from `--min-runs` runs
/// per arm on): the target, the most runs per arm (`--runs`), and whether it only screens.
#[derive(Debug, Clone, Copy)]
pub struct Settle {
    pub target: f64,
    pub most: usize,
    /// The verdict only screens the candidate for a confirmation in fresh runs (`generate`):
    /// it stops as soon as the verdict's own rule passes, rather than once more runs could not
    /// change it.
    pub screen: bool,
}

/// Whether more runs could still change the outcome: `Some(why)` when it is settled. PASS is
/// settled when the cut's whole interval is at or above the target, the cut against the
/// ablation (if it runs) is above zero, and the head-to-head interval against the incumbent
/// (if it runs) excludes zero or lies within ±[`TIE_MARGIN`]; FAIL when even the interval's top
/// is below the target, or the cut against the ablation cannot be above zero. With an
/// incumbent, the outcome is settled too once the candidate cannot be shown ahead of it within
/// `most` runs ([`head_futile`]): the incumbent stays. A screen ([`Settle::screen`]) passes as
/// soon as the verdict's rule does. Intervals are Welch's t at these run counts, so at 3 runs
/// only clear cases settle.
pub fn settled(runs: &[RunSample], rule: Settle) -> Option<String> {
    let target = rule.target;
    let d = makespans(runs, Arm::Default);
    let c = makespans(runs, Arm::Custom);
    let cut = interval(&d, &c)?;
    let has = |arm: Arm| runs.iter().any(|r| r.arm == arm);
    let policy = if has(Arm::Ablation) {
        Some(interval(&makespans(runs, Arm::Ablation), &c)?)
    } else {
        None
    };
    let i = makespans(runs, Arm::Incumbent);
    let head = if has(Arm::Incumbent) {
        Some(interval(&i, &c)?)
    } else {
        None
    };
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    if cut.ci_high < target {
        return Some(format!(
            "FAIL: the cut's interval [{}, {}] lies below the {} target",
            pct(cut.ci_low),
            pct(cut.ci_high),
            pct(target)
        ));
    }
    if let Some(p) = policy.filter(|p| p.ci_high <= 0.0) {
        return Some(format!(
            "FAIL: against its ablation [{}, {}], not above zero",
            pct(p.ci_low),
            pct(p.ci_high)
        ));
    }
    let tie = |h: &stats::CutEstimate| h.ci_low > -TIE_MARGIN && h.ci_high < TIE_MARGIN;
    if let Some(h) = head.filter(|h| head_futile(&i, &c, h, rule.most)) {
        let why = if tie(&h) {
            format!("within ±{}: a tie", pct(TIE_MARGIN))
        } else {
            format!(
                "at {} runs per arm its interval would still reach zero",
                rule.most
            )
        };
        return Some(format!(
            "the incumbent stays: head to head {} [{}, {}], {why}",
            pct(h.cut),
            pct(h.ci_low),
            pct(h.ci_high)
        ));
    }
    let head_done = head.is_none_or(|h| head_decided(&h));
    let invalid = runs
        .iter()
        .any(|r| !r.valid && !matches!(r.arm, Arm::Production(_)));
    if rule.screen && head_done && !invalid && clears(&cut, policy.as_ref(), target) {
        return Some(format!(
            "PASS as a screen: cut {} [{}, {}] meets the {} target{}; the confirmation \
             measures it afresh",
            pct(cut.cut),
            pct(cut.ci_low),
            pct(cut.ci_high),
            pct(target),
            policy
                .map(|p| format!(
                    ", {} [{}, {}] against its ablation",
                    pct(p.cut),
                    pct(p.ci_low),
                    pct(p.ci_high)
                ))
                .unwrap_or_default()
        ));
    }
    let pass = cut.ci_low >= target && policy.is_none_or(|p| p.ci_low > 0.0) && head_done;
    pass.then(|| {
        let tied = head
            .filter(|h| tie(h) && h.ci_low <= 0.0)
            .map(|h| {
                format!(
                    "; head to head [{}, {}], within ±{}: a tie",
                    pct(h.ci_low),
                    pct(h.ci_high),
                    pct(TIE_MARGIN)
                )
            })
            .unwrap_or_default();
        format!(
            "PASS: the cut's interval [{}, {}] lies above the {} target{tied}",
            pct(cut.ci_low),
            pct(cut.ci_high),
            pct(target)
        )
    })
}

fn classifier_summary(runs: &[RunSample]) -> Option<ClassifierSummary> {
    let measured: Vec<&ClassifierRun> = runs
        .iter()
        .filter(|r| r.arm == Arm::Custom && !r.warmup)
        .filter_map(|r| r.classifier.as_ref())
        .collect();
    if measured.is_empty() {
        return None;
    }
    let worst = |f: fn(&ClassifierRun) -> Option<f64>| {
        measured.iter().filter_map(|c| f(c)).reduce(f64::max)
    };
    Some(ClassifierSummary {
        runs: measured.len(),
        latency_p50_ms: worst(|c| c.latency_p50_ms),
        latency_p99_ms: worst(|c| c.latency_p99_ms),
        cpu_share: measured.iter().map(|c| c.cpu_share).sum::<f64>() / measured.len() as f64,
        short_as_long: measured.iter().map(|c| c.short_as_long).collect(),
        long_as_short: measured.iter().map(|c| c.long_as_short).collect(),
        dropped: measured.iter().map(|c| c.dropped).sum(),
    })
}

pub fn summarize(raw: CaseRaw, meta: CaseMeta, target: f64) -> CaseBench {
    let d = makespans(&raw.runs, Arm::Default);
    let c = makespans(&raw.runs, Arm::Custom);
    let a = makespans(&raw.runs, Arm::Ablation);
    let i = makespans(&raw.runs, Arm::Incumbent);
    let cut = (!d.is_empty() && !c.is_empty()).then(|| stats::cut(&d, &c));
    let policy_cut = (!a.is_empty() && !c.is_empty()).then(|| stats::cut(&a, &c));
    let skeleton_cut = (!d.is_empty() && !a.is_empty()).then(|| stats::cut(&d, &a));
    let vs_incumbent = (!i.is_empty() && !c.is_empty()).then(|| stats::cut(&i, &c));
    let incumbent_cut = (!d.is_empty() && !i.is_empty()).then(|| stats::cut(&d, &i));
    let production = meta
        .production
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let m = makespans(&raw.runs, Arm::Production(k as u8));
            ProductionArm {
                name: p.name.clone(),
                version: p.version.clone(),
                stats: stats::describe(&m),
                cut: (!d.is_empty() && !m.is_empty()).then(|| stats::cut(&d, &m)),
                candidate_vs: (!m.is_empty() && !c.is_empty()).then(|| stats::cut(&m, &c)),
            }
        })
        .collect();
    let classifier = classifier_summary(&raw.runs);
    let long_width = raw.bound.as_ref().map_or(1.0, |b| b.long_width());
    let efficiency = efficiency::of_case(&raw.runs, raw.cpus, long_width, policy_cut.as_ref());
    let captured = match (&cut, &raw.bound) {
        (Some(cut), Some(b)) if b.model.best_cut > 0.0 => Some(cut.cut / b.model.best_cut),
        _ => None,
    };
    // Against the ablation the best possible cut is the best schedule's over the ablation's
    // own makespan, not over the fair-sharing model's, which the ablation may beat.
    let ablation_best_cut = match (&raw.bound, a.is_empty()) {
        (Some(b), false) if b.model.optimal_makespan_s > 0.0 => {
            Some(1.0 - b.model.optimal_makespan_s / stats::describe(&a).mean)
        }
        _ => None,
    };
    let policy_of_best = match (&policy_cut, ablation_best_cut) {
        (Some(p), Some(best)) if best >= 0.01 => Some(p.cut / best),
        _ => None,
    };
    // The same against the best order as this machine ran it, CPUs slowed by each other.
    let ablation_list_cut = match (
        raw.bound.as_ref().and_then(|b| b.list.as_ref()),
        a.is_empty(),
    ) {
        (Some(l), false) if l.makespan_s > 0.0 => {
            Some(1.0 - l.makespan_s / stats::describe(&a).mean)
        }
        _ => None,
    };
    let policy_of_list = match (&policy_cut, ablation_list_cut) {
        (Some(p), Some(best)) if best >= 0.01 => Some(p.cut / best),
        _ => None,
    };
    let mut bench = CaseBench {
        test_id: meta.test_id,
        test_name: meta.test_name,
        scheduler: meta.scheduler,
        sizes: meta.sizes,
        scale: meta.scale,
        long_scale: meta.long_scale,
        bound: raw.bound,
        runs: raw.runs,
        default: stats::describe(&d),
        custom: stats::describe(&c),
        cut,
        ablation: stats::describe(&a),
        policy_cut,
        skeleton_cut,
        incumbent: stats::describe(&i),
        incumbent_path: meta.incumbent,
        incumbent_sha256: meta.incumbent_sha256,
        vs_incumbent,
        incumbent_cut,
        production,
        classifier,
        captured,
        ablation_best_cut,
        policy_of_best,
        ablation_list_cut,
        policy_of_list,
        efficiency,
        verdict: Verdict {
            pass: false,
            reason: String::new(),
        },
        error: raw.error,
        stopped_early: raw.stopped_early,
        resumed_after: raw.resumed_after,
        retired: raw.retired,
        data: raw.data,
        programs: raw.programs,
        unmeasured: false,
    };
    bench.verdict = verdict(&bench, target);
    if let Some(h) = head_to_head(&bench) {
        bench.verdict.reason = format!("{}; {h}", bench.verdict.reason);
    }
    bench
}

/// The head-to-head result against the incumbent, in words, when one ran.
pub fn head_to_head(c: &CaseBench) -> Option<String> {
    let beats = c.beats_incumbent()?;
    let v = c.vs_incumbent?;
    let numbers = format!(
        "{:.1}% [{:.1}%, {:.1}%]",
        v.cut * 100.0,
        v.ci_low * 100.0,
        v.ci_high * 100.0
    );
    Some(if beats {
        format!("head to head it beats the incumbent by {numbers}")
    } else if v.ci_high < 0.0 {
        format!("head to head it is slower than the incumbent: {numbers}")
    } else {
        format!("head to head against the incumbent {numbers}: not shown to be better")
    })
}

/// A case that never reached the measuring job.
/// A case the sandbox could not measure at all (see `CaseBench::unmeasured`).
pub fn unmeasured(meta: CaseMeta, error: String) -> CaseBench {
    CaseBench {
        unmeasured: true,
        ..failed(meta, error)
    }
}

pub fn failed(meta: CaseMeta, error: String) -> CaseBench {
    let raw = CaseRaw {
        test_id: meta.test_id.clone(),
        bound: None,
        runs: Vec::new(),
        error: Some(error),
        cpus: 0,
        kernel_release: String::new(),
        stopped_early: None,
        rounds_done: 0,
        resumed_after: Vec::new(),
        retired: Vec::new(),
        short_probes: Vec::new(),
        data: None,
        programs: None,
    };
    summarize(raw, meta, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::exit::SchedExit;

    fn meta() -> CaseMeta {
        CaseMeta {
            test_id: "t".into(),
            test_name: "T".into(),
            scheduler: SchedulerRef {
                kind: "reference".into(),
                path: "x".into(),
                long_comms: vec![],
                classes: Default::default(),
            },
            sizes: BTreeMap::new(),
            scale: 1.0,
            long_scale: 1.0,
            incumbent: None,
            incumbent_sha256: None,
            production: Vec::new(),
        }
    }

    fn run(arm: Arm, order: usize, makespan: f64, warmup: bool) -> RunSample {
        RunSample {
            arm,
            order,
            warmup,
            makespan_s: makespan,
            scheduler: String::new(),
            valid: true,
            invalid_reason: None,
            exit: None,
            classifier: None,
            tasks: vec![],
            machine_cpu: None,
            machine_memory: None,
            timing: None,
        }
    }

    /// The stopping rule of `benchmark`'s defaults (at most 5 runs per arm) at `target`.
    fn at(target: f64) -> Settle {
        Settle {
            target,
            most: 5,
            screen: false,
        }
    }

    fn raw(pairs: &[(f64, f64)]) -> CaseRaw {
        let mut runs = vec![
            run(Arm::Default, 0, 99.0, true),
            run(Arm::Custom, 1, 1.0, true),
        ];
        for (i, (d, c)) in pairs.iter().enumerate() {
            runs.push(run(Arm::Default, 2 + 2 * i, *d, false));
            runs.push(run(Arm::Custom, 3 + 2 * i, *c, false));
        }
        CaseRaw {
            test_id: "t".into(),
            bound: None,
            runs,
            error: None,
            cpus: 2,
            kernel_release: String::new(),
            stopped_early: None,
            rounds_done: 0,
            resumed_after: Vec::new(),
            retired: Vec::new(),
            data: None,
            programs: None,
            short_probes: Vec::new(),
        }
    }

    #[test]
    fn the_policy_is_measured_against_the_best_cut_of_the_ablation() {
        // The best schedule of the tasks' alone times takes 10 s; the fair-sharing model says
        // 14.9 s, but the ablation ran 13 s: against it the best possible cut is 23.1%, and a
        // candidate at 10.6 s took 18.5% of it, 80% of that best.
        let mut r = raw(&[(15.5, 10.5), (15.2, 10.7), (15.3, 10.6)]);
        for (i, m) in [13.1, 12.9, 13.0].into_iter().enumerate() {
            r.runs.push(run(Arm::Ablation, 10 + i, m, false));
        }
        let mut demands = vec![10.0 / 39.0; 39];
        demands.push(10.0);
        r.bound = Some(crate::bench::result::Bound {
            short_alone_s: 10.0 / 39.0,
            first_short_s: None,
            long_alone_s: 10.0,
            long_alone_wall_s: None,
            long_free: None,
            model: crate::model::MakespanModel::from_demands(&demands, 2),
            reused_from: None,
            // Run for real, with both CPUs slowing each other, the best order took 11 s.
            list: Some(crate::bench::result::ListRun {
                makespan_s: 11.0,
                long_cpu_s: 10.8,
                short_cpu_s: 11.2 / 39.0,
            }),
        });
        let b = summarize(r, meta(), 0.30);
        let best = b.ablation_best_cut.unwrap();
        assert!((best - (1.0 - 10.0 / 13.0)).abs() < 1e-9, "{best}");
        let share = b.policy_of_best.unwrap();
        assert!((share - (1.0 - 10.6 / 13.0) / best).abs() < 1e-9, "{share}");
        assert!(b.verdict.pass, "{}", b.verdict.reason);
        assert!(
            b.verdict.reason.contains("80% of the 23.1%"),
            "{}",
            b.verdict.reason
        );
        let listed = b.ablation_list_cut.unwrap();
        assert!((listed - (1.0 - 11.0 / 13.0)).abs() < 1e-9, "{listed}");
        let share = b.policy_of_list.unwrap();
        assert!(
            (share - (1.0 - 10.6 / 13.0) / listed).abs() < 1e-9,
            "{share}"
        );
        assert!(
            b.verdict
                .reason
                .contains("120% of the 15.4% the longest-first order cut"),
            "{}",
            b.verdict.reason
        );
        // Without an ablation there is nothing to measure it against.
        let plain = summarize(raw(&[(15.0, 10.5), (15.2, 10.7)]), meta(), 0.30);
        assert_eq!(
            (plain.ablation_best_cut, plain.policy_of_best),
            (None, None)
        );
    }

    #[test]
    fn passes_a_clear_cut_and_ignores_warmups() {
        let r = raw(&[
            (10.0, 6.8),
            (10.2, 6.9),
            (9.9, 6.7),
            (10.1, 7.0),
            (10.0, 6.85),
        ]);
        let b = summarize(r, meta(), 0.30);
        assert!(b.verdict.pass, "{}", b.verdict.reason);
        assert_eq!(b.default.n, 5);
        assert!((b.default.mean - 10.04).abs() < 1e-9, "warm-up excluded");
    }

    #[test]
    fn fails_below_target_or_with_an_uncertain_cut() {
        let b = summarize(raw(&[(10.0, 8.0), (10.1, 8.1), (9.9, 7.9)]), meta(), 0.30);
        assert!(
            !b.verdict.pass && b.verdict.reason.contains("below the 30% target"),
            "{}",
            b.verdict.reason
        );
        let b = summarize(raw(&[(10.0, 2.0), (20.0, 30.0), (30.0, 1.0)]), meta(), 0.10);
        assert!(
            !b.verdict.pass && b.verdict.reason.contains("does not exclude 0"),
            "{}",
            b.verdict.reason
        );
    }

    #[test]
    fn head_to_head_needs_an_interval_above_zero() {
        let mut r = raw(&[
            (10.0, 6.8),
            (10.2, 6.9),
            (9.9, 6.7),
            (10.1, 7.0),
            (10.0, 6.85),
        ]);
        for (order, m) in (r.runs.len()..).zip([7.6, 7.7, 7.5, 7.65, 7.55]) {
            r.runs.push(run(Arm::Incumbent, order, m, false));
        }
        let b = summarize(r.clone(), meta(), 0.30);
        assert_eq!(b.incumbent.n, 5);
        assert_eq!(b.beats_incumbent(), Some(true), "{}", b.verdict.reason);
        assert!(
            b.verdict.reason.contains("beats the incumbent"),
            "{}",
            b.verdict.reason
        );

        // An incumbent as fast as the candidate: passing the target does not make it better.
        for s in r.runs.iter_mut().filter(|s| s.arm == Arm::Incumbent) {
            s.makespan_s -= 0.8;
        }
        let b = summarize(r, meta(), 0.30);
        assert!(b.verdict.pass);
        assert_eq!(b.beats_incumbent(), Some(false));
        assert!(
            b.verdict.reason.contains("not shown to be better"),
            "{}",
            b.verdict.reason
        );
        assert_eq!(
            summarize(raw(&[(10.0, 6.8), (10.1, 6.9)]), meta(), 0.3).beats_incumbent(),
            None
        );
    }

    #[test]
    fn settles_only_clear_cases() {
        // A clear 32% cut against a 20% target, three runs each: settled PASS.
        let clear = raw(&[(10.0, 6.8), (10.1, 6.85), (9.9, 6.75)]);
        let why = settled(&clear.runs, at(0.20)).expect("settled");
        assert!(why.starts_with("PASS"), "{why}");
        // The same runs against a 31% target: the interval straddles it, keep measuring.
        assert_eq!(settled(&clear.runs, at(0.31)), None);
        // Against a 50% target even the top of the interval is below: settled FAIL.
        assert!(settled(&clear.runs, at(0.50)).unwrap().starts_with("FAIL"));
        // Noise: not settled either way.
        let noisy = raw(&[(10.0, 6.0), (14.0, 9.0), (8.0, 8.5)]);
        assert_eq!(settled(&noisy.runs, at(0.20)), None);
        // Only the warm-ups: nothing to decide on.
        let mut warm = raw(&[]);
        warm.runs.truncate(2);
        assert_eq!(settled(&warm.runs, at(0.20)), None);
    }

    #[test]
    fn an_arm_is_answered_once_its_comparison_is_decided_and_not_before() {
        // The quick start's shape: a cut near the target, far ahead of its ablation.
        let mut r = raw(&[(20.8, 14.4), (21.0, 14.5), (20.6, 14.3)]);
        let with = |r: &mut CaseRaw, arm: Arm, ms: &[f64]| {
            for (i, m) in ms.iter().enumerate() {
                r.runs.push(run(arm, 20 + i, *m, false));
            }
        };
        with(&mut r, Arm::Ablation, &[19.8, 19.6, 20.0]);
        assert_eq!(
            settled(&r.runs, at(0.30)),
            None,
            "the cut straddles nothing yet"
        );
        let first = answered(&r.runs);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].0, Arm::Ablation);
        assert!(
            first[0].1.contains("beats it by 27.3% [25.8%, 28.8%]"),
            "{}",
            first[0].1
        );
        // An ablation as fast as the candidate, or one with a slow run: not answered.
        let mut close = raw(&[(20.8, 14.4), (21.0, 14.5), (20.6, 14.3)]);
        with(&mut close, Arm::Ablation, &[14.5, 14.3, 14.6]);
        assert!(answered(&close.runs).is_empty());
        let mut noisy = raw(&[(20.8, 14.4), (21.0, 14.5), (20.6, 14.3)]);
        with(&mut noisy, Arm::Ablation, &[14.0, 22.0, 14.2]);
        assert!(answered(&noisy.runs).is_empty());
        // Two runs each already give an interval; one does not.
        let mut one = raw(&[(20.8, 14.4)]);
        with(&mut one, Arm::Ablation, &[19.8]);
        assert!(answered(&one.runs).is_empty());
        // The incumbent: a clear loss is decided, a wide interval is not.
        with(&mut r, Arm::Incumbent, &[16.5, 16.6, 16.4]);
        let arms: Vec<Arm> = answered(&r.runs).into_iter().map(|a| a.0).collect();
        assert_eq!(arms, vec![Arm::Ablation, Arm::Incumbent]);
        let mut wide = raw(&[(20.8, 14.4), (21.0, 14.5), (20.6, 14.3)]);
        with(&mut wide, Arm::Incumbent, &[14.0, 16.9, 13.8]);
        assert!(answered(&wide.runs).is_empty());
    }

    #[test]
    fn a_head_to_head_that_cannot_be_won_settles_one_that_still_can_does_not() {
        let with = |incumbent: &[f64]| {
            let mut r = raw(&[(10.0, 6.8), (10.1, 6.85), (9.9, 6.75)]);
            for (i, m) in incumbent.iter().enumerate() {
                r.runs.push(run(Arm::Incumbent, 10 + i, *m, false));
            }
            r
        };
        // The same scheduler twice: within ±3% after three runs each, the incumbent stays.
        let twin = with(&[6.82, 6.78, 6.84]);
        let why = settled(&twin.runs, at(0.20)).expect("settled");
        assert!(
            why.starts_with("the incumbent stays") && why.contains("a tie"),
            "{why}"
        );
        // A clear win settles, and is no tie.
        let win = settled(&with(&[7.6, 7.7, 7.65]).runs, at(0.20)).expect("settled");
        assert!(win.starts_with("PASS") && !win.contains("tie"), "{win}");
        // An incumbent with a slow run: 8% ahead, but Welch's interval at 5 runs per arm with
        // these spreads would still be ±13%, so the candidate cannot be shown ahead...
        let wide = with(&[6.8, 8.4, 7.0]);
        let why = settled(&wide.runs, at(0.20)).expect("settled");
        assert!(
            why.starts_with("the incumbent stays") && why.contains("at 5 runs per arm"),
            "{why}"
        );
        // ...while 20 runs per arm could: keep measuring.
        let longer = Settle {
            most: 20,
            ..at(0.20)
        };
        assert_eq!(settled(&wide.runs, longer), None);
        // A candidate ahead by more than the interval at 5 runs would be wide: keep measuring.
        assert_eq!(settled(&with(&[7.4, 8.6, 7.5]).runs, at(0.20)), None);
    }

    #[test]
    fn a_screen_stops_once_the_verdicts_rule_passes_and_agrees_with_the_verdict() {
        let screen = |target| Settle {
            screen: true,
            ..at(target)
        };
        // The quick start's shape: a cut just above the target whose interval straddles it.
        // Not settled as a verdict, but the verdict passes it: a screen stops.
        let near = raw(&[(20.8, 14.2), (21.6, 14.9), (20.2, 14.3)]);
        assert_eq!(settled(&near.runs, at(0.30)), None);
        let why = settled(&near.runs, screen(0.30)).expect("a screen passes");
        assert!(why.starts_with("PASS as a screen"), "{why}");
        assert!(summarize(near.clone(), meta(), 0.30).verdict.pass);
        // Below the target: the verdict fails it, and a screen keeps measuring.
        assert_eq!(settled(&near.runs, screen(0.33)), None);
        assert!(!summarize(near.clone(), meta(), 0.33).verdict.pass);
        // With its ablation: only once the candidate beats it too.
        let mut beside = near.clone();
        for (i, m) in [14.0, 21.0, 15.0].iter().enumerate() {
            beside.runs.push(run(Arm::Ablation, 20 + i, *m, false));
        }
        assert_eq!(settled(&beside.runs, screen(0.30)), None);
        assert!(!summarize(beside.clone(), meta(), 0.30).verdict.pass);
        // A head to head not yet decided holds a screen too.
        let mut duel = near.clone();
        for (i, m) in [15.2, 17.6, 15.4].iter().enumerate() {
            duel.runs.push(run(Arm::Incumbent, 30 + i, *m, false));
        }
        assert_eq!(
            settled(
                &duel.runs,
                Settle {
                    most: 20,
                    ..screen(0.30)
                }
            ),
            None
        );
    }

    #[test]
    fn an_ejection_disqualifies() {
        let mut r = raw(&[(10.0, 6.8), (10.2, 6.9), (9.9, 6.7)]);
        let last = r.runs.last_mut().unwrap();
        last.valid = false;
        last.invalid_reason = Some("the scheduler was ejected".into());
        last.exit = Some(SchedExit::new(1026, 0, "stall".into(), String::new()));
        let b = summarize(r, meta(), 0.30);
        assert!(!b.verdict.pass);
        assert!(
            b.verdict.reason.contains("invalid custom run") && b.verdict.reason.contains("ejected")
        );
        let f = failed(meta(), "setup failed: boom".into());
        assert!(!f.verdict.pass && f.verdict.reason.contains("setup failed"));
    }
}
