//! `--scale auto`: size a case so that, on the CPU count the benchmark uses, it offers a real
//! long tail to cut.
//!
//! A case sized for 8 CPUs offers little on 2: the best possible cut `1 − O/F` peaks when the
//! long task is `L = k·s/(n−1)` long. Auto-sizing times one short and one long task alone (on
//! this host, natively: quick, and the ratio carries over to the VM), picks the overall scale so
//! a short task takes about `short_target_s` of CPU, then stretches only the long task's sizes to
//! reach that ideal `L`, capped so a benchmark stays affordable. Timing is repeated after each
//! change because sizes and times are not exactly proportional (start-up costs, imports).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::case::SHORT_TASKS;
use crate::model::{ideal_long, ideal_wide_long, Demand, MakespanModel};
use crate::workload::RunRequest;

/// CPU seconds a short task should take on this host unless told otherwise: the smallest size
/// at which ctest_suite still reaches the 30% target in the VM, so a benchmark run takes 15-24 s
/// there. Smaller, the tenths of a second a run costs any scheduler weigh more: at about half
/// these sizes ctest_suite's cut measured 29.9-31.1% (2026-12-07), at 0.015 s 29.5-30.7%.
pub const DEFAULT_SHORT_TARGET_S: f64 = 0.02;

#[derive(Debug, Clone)]
pub struct SizingOptions {
    /// CPUs the benchmark will run on.
    pub cpus: usize,
    /// CPU seconds a short task should take here (natively).
    pub short_target_s: f64,
    /// Longest CPU seconds the long task may take here (natively).
    pub long_cap_s: f64,
}

impl Default for SizingOptions {
    fn default() -> Self {
        SizingOptions {
            cpus: 2,
            short_target_s: DEFAULT_SHORT_TARGET_S,
            long_cap_s: 4.0,
        }
    }
}

/// The sizes chosen, and what they predict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sizing {
    pub scale: f64,
    pub long_scale: f64,
    /// CPU seconds of one short and the long task alone at these sizes (this host).
    pub short_cpu_s: f64,
    pub long_cpu_s: f64,
    /// The bound these times predict on `cpus` CPUs.
    pub predicted: MakespanModel,
    /// Why the sizes are not ideal, when they are not.
    pub note: Option<String>,
}

/// The smallest scale the sizing chooses.
pub const SMALLEST_SCALE: f64 = 0.005;

/// Time the first short task and the long task, one after the other.
fn time_alone(base: &RunRequest, scale: f64, long_scale: f64) -> Result<(f64, f64)> {
    let mut req = base.clone();
    req.scale = scale;
    req.long_scale = long_scale;
    req.monitor_interval_ms = None;
    let (times, _) = super::job::time_alone(&req, vec![0, SHORT_TASKS])
        .with_context(|| format!("sizing run of `{}` at scale {scale}", req.case.id))?;
    let cpu = |i: usize| times.iter().find(|(k, _, _)| *k == i).map_or(0.0, |t| t.1);
    Ok((cpu(0), cpu(SHORT_TASKS)))
}

fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_finite() {
        x.clamp(lo, hi)
    } else {
        hi
    }
}

/// The long task's sizes corrected by what the tasks took alone where the benchmark runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Corrected {
    pub long_scale: f64,
    /// The bound the measured times predict at the corrected sizes.
    pub predicted: MakespanModel,
    /// The measured long:short ratio over the one sizing aimed at, for the progress line.
    pub measured_ratio: f64,
    pub wanted_ratio: f64,
}

/// Correct `sized` by the short and long task timed alone at its sizes where the benchmark runs
/// (`short_s`, `long_s`: the sandbox VM, whose fork, exec and page-ins cost far more than this
/// host's, so a short task there is relatively longer). The long task is stretched, assuming
/// its time grows linearly with its sizes, to the ideal length for the short task measured
/// there and the long task's width there (1 unless its processes run side by side; see
/// [`ideal_wide_long`]), under the same cap in this host's seconds. None when the sizes are
/// within 5%.
pub fn correct(
    sized: &Sizing,
    short_s: f64,
    long_s: f64,
    long_width: f64,
    opts: &SizingOptions,
) -> Option<Corrected> {
    if !(short_s > 0.0 && long_s > 0.0 && sized.long_cpu_s > 0.0) {
        return None;
    }
    let ideal = ideal_wide_long(SHORT_TASKS, short_s, opts.cpus, long_width);
    // The cap is in this host's seconds: the long task may grow by at most cap/long here.
    let most = long_s * opts.long_cap_s / sized.long_cpu_s;
    let want = ideal.min(most.max(long_s));
    let factor = want / long_s;
    if (factor - 1.0).abs() < 0.05 {
        return None;
    }
    let long_scale = clamp(sized.long_scale * factor, 0.01, 400.0);
    let mut tasks = vec![Demand::serial(short_s); SHORT_TASKS];
    tasks.push(Demand {
        cpu_s: long_s * long_scale / sized.long_scale,
        width: long_width,
    });
    Some(Corrected {
        long_scale,
        predicted: MakespanModel::from_tasks(&tasks, opts.cpus),
        measured_ratio: long_s / short_s,
        wanted_ratio: want / short_s,
    })
}

/// Largest part of a short task its start-up may be after the VM check. A short task that is
/// mostly start-up (a compiler or an interpreter exec'd at a tiny size) does not behave like the
/// CPU-time model: the start-ups of 39 of them crowd the long task's CPU and the shared file
/// system, so a scheduler cannot reach the model's best schedule however it orders them
/// (compiler_build, 2026-12-05: 25% of the best possible cut with start-up 70% of a short task,
/// 46% with it about half).
pub const MAX_STARTUP_SHARE: f64 = 0.5;

/// The VM check times the short task a second time at this multiple of its scale, to tell its
/// start-up from the work that grows with its sizes.
pub const STARTUP_PROBE_FACTOR: f64 = 4.0;

/// The smallest scale, from `from` up in steps of 10%, at which the short task's rounded sizes
/// reach the effective scale `wanted` ([`crate::case::Case::effective_scale`]). Rounding can
/// hide a plain multiple: compiler_build's 60 functions become 1 at scales 0.005 and 0.02 alike.
pub fn scale_reaching(case: &crate::case::Case, from: f64, wanted: f64) -> f64 {
    let mut scale = from;
    // 60 steps reach ×300, past any rounding a case's sizes can have.
    for _ in 0..60 {
        if case.effective_scale(scale) >= wanted * (1.0 - 1e-9) {
            break;
        }
        scale *= 1.1;
    }
    scale
}

/// The scale at which the VM check times the short task again: its rounded sizes
/// [`STARTUP_PROBE_FACTOR`] times theirs at `scale`. A probe of the same rounded sizes (a plain
/// ×4 of compiler_build at 0.005) timed the same compile twice and told nothing.
pub fn probe_scale(case: &crate::case::Case, scale: f64) -> f64 {
    let wanted = case.effective_scale(scale) * STARTUP_PROBE_FACTOR;
    scale_reaching(case, scale * STARTUP_PROBE_FACTOR, wanted)
}

/// The most the VM check multiplies the scale by, so that a case whose short tasks are nearly
/// all start-up (pandas' import) is not stretched into an hour-long benchmark.
const MAX_STARTUP_RAISE: f64 = 8.0;

/// A short task's time as `fixed_s + per_scale_s · scale`: start-up, and the work its sizes set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartUp {
    pub fixed_s: f64,
    pub per_scale_s: f64,
}

impl StartUp {
    /// The line through two timings of the short task at two scales (the effective scales of
    /// its rounded sizes). None when the larger size did not take longer: nothing to go on.
    pub fn fit(scale: f64, short_s: f64, probe_scale: f64, probe_s: f64) -> Option<StartUp> {
        let usable = scale > 0.0 && probe_scale > scale && short_s > 0.0 && probe_s > short_s;
        if !usable {
            return None;
        }
        let per_scale_s = (probe_s - short_s) / (probe_scale - scale);
        Some(StartUp {
            fixed_s: (short_s - per_scale_s * scale).max(0.0),
            per_scale_s,
        })
    }

    pub fn at(&self, scale: f64) -> f64 {
        self.fixed_s + self.per_scale_s * scale
    }

    /// The part of a short task at `scale` that is start-up.
    pub fn share(&self, scale: f64) -> f64 {
        self.fixed_s / self.at(scale).max(1e-9)
    }
}

/// How much to multiply the scale by so that start-up is at most [`MAX_STARTUP_SHARE`] of a
/// short task, as far as the long-task cap still lets the long task reach its ideal length.
/// `sized` is what this host chose, `scale` the short task's effective scale there, `long_s`
/// the long task's time in the VM at those sizes. None when no raise of 20% or more is needed or
/// possible.
pub fn startup_raise(
    sized: &Sizing,
    scale: f64,
    fit: &StartUp,
    long_s: f64,
    opts: &SizingOptions,
) -> Option<f64> {
    if fit.share(scale) <= MAX_STARTUP_SHARE || fit.per_scale_s <= 0.0 || scale <= 0.0 {
        return None;
    }
    let own = fit.per_scale_s * scale;
    let wanted = fit.fixed_s * (1.0 - MAX_STARTUP_SHARE) / MAX_STARTUP_SHARE / own;
    // The ideal long task for the larger short one must stay within the cap (this host's
    // seconds), assuming the long task's time grows linearly with the scale.
    let host_per_vm = sized.long_cpu_s / long_s.max(1e-9);
    let short_at_cap = opts.long_cap_s / host_per_vm / ideal_long(SHORT_TASKS, 1.0, opts.cpus);
    let capped = (short_at_cap - fit.fixed_s) / own;
    let f = wanted.min(capped).min(MAX_STARTUP_RAISE);
    (f >= 1.2).then_some(f)
}

/// Find sizes for `case` on `opts.cpus` CPUs.
pub fn auto_size(base: &RunRequest, opts: &SizingOptions) -> Result<Sizing> {
    let probe = 0.02;
    let (s0, _) = time_alone(base, probe, 1.0)?;
    // Scale the short task towards its target; start-up costs make small sizes sublinear, so
    // measure again at the chosen scale.
    let mut scale = clamp(
        probe * opts.short_target_s / s0.max(1e-4),
        SMALLEST_SCALE,
        1.0,
    );
    let (mut s, mut l) = time_alone(base, scale, 1.0)?;
    if s > 2.0 * opts.short_target_s && scale > SMALLEST_SCALE {
        scale = clamp(scale * opts.short_target_s / s, SMALLEST_SCALE, 1.0);
        (s, l) = time_alone(base, scale, 1.0)?;
    }
    let ideal = ideal_long(SHORT_TASKS, s, opts.cpus);
    let want = ideal.min(opts.long_cap_s);
    let mut long_scale = clamp(want / l.max(1e-4), 0.01, 400.0);
    let (_, mut l2) = time_alone(base, scale, long_scale)?;
    if (l2 - want).abs() > 0.15 * want {
        // One correction, assuming time grows linearly with the long sizes from here.
        long_scale = clamp(long_scale * want / l2.max(1e-4), 0.01, 400.0);
        (_, l2) = time_alone(base, scale, long_scale)?;
    }
    let mut demands = vec![s; SHORT_TASKS];
    demands.push(l2);
    let predicted = MakespanModel::from_demands(&demands, opts.cpus);
    let note = if ideal > opts.long_cap_s {
        Some(format!(
            "the ideal long task ({ideal:.1} s here) exceeds the {:.1} s cap: short tasks cost {s:.2} s even this small (start-up), so less of a tail is possible",
            opts.long_cap_s
        ))
    } else {
        None
    };
    Ok(Sizing {
        scale,
        long_scale,
        short_cpu_s: s,
        long_cpu_s: l2,
        predicted,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(long_scale: f64, long_cpu_s: f64) -> Sizing {
        Sizing {
            scale: 0.09,
            long_scale,
            short_cpu_s: 0.043,
            long_cpu_s,
            predicted: MakespanModel::from_demands(&[0.043, 1.62], 2),
            note: None,
        }
    }

    #[test]
    fn a_wide_long_task_is_stretched_further_and_promises_less() {
        // The same times, the long task 1.5 of 2 CPUs wide: alone it takes a third of
        // its CPU time less, so it must be three times as long for the balance.
        let opts = SizingOptions {
            long_cap_s: 100.0,
            ..SizingOptions::default()
        };
        let serial = correct(&sized(5.63, 1.62), 1.004, 26.93, 1.0, &opts).unwrap();
        let wide = correct(&sized(5.63, 1.62), 1.004, 26.93, 1.5, &opts).unwrap();
        assert!(
            (wide.wanted_ratio - 3.0 * serial.wanted_ratio).abs() < 1e-9,
            "{wide:?}"
        );
        assert!(
            wide.predicted.best_cut < serial.predicted.best_cut - 0.05,
            "{wide:?}"
        );
    }

    #[test]
    fn stretches_the_long_task_to_the_ideal_for_the_short_task_measured_in_the_vm() {
        // ctest_suite on 2026-12-04: sized on this host for 32.5%; in the VM a short task took
        // 1.004 s and the long one 26.93 s, a bound of 28.2%.
        let opts = SizingOptions::default();
        let c = correct(&sized(5.63, 1.62), 1.004, 26.93, 1.0, &opts).expect("a correction");
        let ideal = 39.0 * 1.004;
        assert!((c.long_scale - 5.63 * ideal / 26.93).abs() < 1e-9, "{c:?}");
        assert!((c.predicted.best_cut - 0.328).abs() < 0.002, "{c:?}");
        assert!((c.measured_ratio - 26.82).abs() < 0.01 && (c.wanted_ratio - 39.0).abs() < 1e-9);
    }

    #[test]
    fn start_up_is_told_from_work_by_two_sizes() {
        // compiler_build on 2026-12-05: one function per short unit took 1.49 s in the VM, two
        // took 2.06 s; the line says 0.92 s of a one-function compile is gcc's start-up.
        let f = StartUp::fit(1.0 / 60.0, 1.49, 2.0 / 60.0, 2.06).unwrap();
        assert!((f.fixed_s - 0.92).abs() < 1e-9, "{f:?}");
        assert!((f.share(1.0 / 60.0) - 0.92 / 1.49).abs() < 1e-9);
        assert!((f.at(2.0 / 60.0) - 2.06).abs() < 1e-9);
        // A larger size that took no longer says nothing; neither do unusable inputs.
        assert_eq!(StartUp::fit(0.02, 0.6, 0.08, 0.6), None);
        assert_eq!(StartUp::fit(0.08, 0.6, 0.02, 0.9), None);
        assert_eq!(StartUp::fit(0.0, 0.6, 0.08, 0.9), None);
        // Work that grows faster than the sizes: no negative start-up.
        assert_eq!(StartUp::fit(0.02, 0.1, 0.08, 1.0).unwrap().fixed_s, 0.0);
    }

    #[test]
    fn the_start_up_probe_is_four_times_the_rounded_sizes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("cases/extra/compiler_build.toml");
        let case = crate::case::Case::load(&path).expect("compiler_build's case file");
        // 60 functions: one at 0.005 and at 0.02, so the probe goes on to four.
        let probe = probe_scale(&case, 0.005);
        assert_eq!(case.sizes_for(probe, 1.0)["short_functions"], "4");
        assert!(
            probe < 0.07,
            "{probe}: the smallest such scale, give or take a step"
        );
        // Sizes that round finely take the plain multiple.
        assert!((probe_scale(&case, 0.5) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn raises_sizes_until_start_up_is_half_a_short_task() {
        let opts = SizingOptions::default();
        // The host took 1.62 s for a long task that took 40 s in the VM.
        let host = sized(5.63, 1.62);
        // Start-up 0.9 s and 0.3 s of work at scale 0.01: the work must triple.
        let f = StartUp {
            fixed_s: 0.9,
            per_scale_s: 30.0,
        };
        let raise = startup_raise(&host, 0.01, &f, 40.0, &opts).unwrap();
        assert!((raise - 3.0).abs() < 1e-9, "{raise}");
        // ctest_suite's short task (0.41 s, 0.13 s of it start-up) is left alone.
        let ctest = StartUp::fit(0.037, 0.41, 0.148, 1.25).unwrap();
        assert!(ctest.share(0.037) < MAX_STARTUP_SHARE);
        assert_eq!(startup_raise(&host, 0.037, &ctest, 40.0, &opts), None);
    }

    #[test]
    fn a_raise_stays_within_the_long_task_cap_and_its_own_limit() {
        let host = sized(5.63, 1.62);
        let f = StartUp {
            fixed_s: 0.9,
            per_scale_s: 30.0,
        };
        // A 2.5 s cap here allows a long task of 2.5 / 1.62 · 40 = 61.7 s in the VM, so a
        // short one of 61.7 / 39 = 1.58 s: 0.68 s of work, ×2.28.
        let capped = SizingOptions {
            long_cap_s: 2.5,
            ..SizingOptions::default()
        };
        let raise = startup_raise(&host, 0.01, &f, 40.0, &capped).unwrap();
        let want = ((2.5 / 1.62 * 40.0 / 39.0) - 0.9) / 0.3;
        assert!((raise - want).abs() < 1e-9, "{raise} vs {want}");
        // A cap that leaves less than 20% more: no raise.
        let tight = SizingOptions {
            long_cap_s: 1.62,
            ..SizingOptions::default()
        };
        assert_eq!(startup_raise(&host, 0.01, &f, 40.0, &tight), None);
        // Nearly all start-up (an interpreter importing a library): at most ×8.
        let import = StartUp {
            fixed_s: 7.0,
            per_scale_s: 10.0,
        };
        let roomy = SizingOptions {
            long_cap_s: 1000.0,
            ..SizingOptions::default()
        };
        assert_eq!(startup_raise(&host, 0.01, &import, 40.0, &roomy), Some(8.0));
    }

    #[test]
    fn keeps_the_cap_in_this_hosts_seconds_and_leaves_near_sizes_alone() {
        // A 2 s cap here lets the 1.62 s long task grow by 2/1.62 at most.
        let opts = SizingOptions {
            long_cap_s: 2.0,
            ..SizingOptions::default()
        };
        let c = correct(&sized(5.63, 1.62), 1.004, 26.93, 1.0, &opts).unwrap();
        assert!((c.long_scale - 5.63 * 2.0 / 1.62).abs() < 1e-9, "{c:?}");
        // Within 5% of the ideal: nothing to correct; nothing measured: nothing to go on.
        assert_eq!(correct(&sized(5.63, 1.62), 1.0, 38.0, 1.0, &opts), None);
        assert_eq!(correct(&sized(5.63, 1.62), 0.0, 26.93, 1.0, &opts), None);
    }
}
