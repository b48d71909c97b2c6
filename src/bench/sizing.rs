//! `--scale auto`: size a case so that, on the CPU count the benchmark uses, it offers a real
//! long tail to cut.
//!
//! A case sized for 8 CPUs offers little on 2: the best possible cut `1 − O/F` peaks when the
//! long task is `L = k·s/(n−1)` long. Auto-sizing times one short and one long task alone (on
//! this host, natively: quick, and the ratio carries over to the VM), picks the overall scale so
//! a short task takes about `short_target_s` of CPU, then stretches only the long task's sizes to
//! reach that ideal `L`, capped so a benchmark stays affordable. Timing is repeated after each
//! change because sizes and times are not exactly proportional (start-up costs, imports).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::case::SHORT_TASKS;
use crate::model::{ideal_long, MakespanModel};
use crate::workload::result::{Group, RunStatus};
use crate::workload::{run_case, RunRequest};

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
            short_target_s: 0.05,
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

/// Time the first short task and the long task, one after the other.
fn time_alone(base: &RunRequest, scale: f64, long_scale: f64) -> Result<(f64, f64)> {
    let mut req = base.clone();
    req.scale = scale;
    req.long_scale = long_scale;
    req.sequential = true;
    req.monitor_interval_ms = None;
    req.only_tasks = Some(vec![0, SHORT_TASKS]);
    let r = run_case(&req, &|_| {});
    if r.status != RunStatus::Success {
        bail!(
            "sizing run of `{}` at scale {scale} failed: {}",
            req.case.id,
            r.error.unwrap_or_else(|| r.status.as_str().into())
        );
    }
    let cpu = |g: Group| {
        r.tasks
            .iter()
            .find(|t| t.group == g)
            .map(|t| t.cpu_s)
            .unwrap_or(0.0)
    };
    Ok((cpu(Group::Short), cpu(Group::Long)))
}

fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_finite() {
        x.clamp(lo, hi)
    } else {
        hi
    }
}

/// Find sizes for `case` on `opts.cpus` CPUs.
pub fn auto_size(base: &RunRequest, opts: &SizingOptions) -> Result<Sizing> {
    let probe = 0.02;
    let (s0, _) = time_alone(base, probe, 1.0)?;
    // Scale the short task towards its target; start-up costs make small sizes sublinear, so
    // measure again at the chosen scale.
    let mut scale = clamp(probe * opts.short_target_s / s0.max(1e-4), 0.005, 1.0);
    let (mut s, mut l) = time_alone(base, scale, 1.0)?;
    if s > 2.0 * opts.short_target_s && scale > 0.005 {
        scale = clamp(scale * opts.short_target_s / s, 0.005, 1.0);
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
