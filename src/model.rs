//! The makespan model: what fair sharing predicts, what the best schedule could reach.
//!
//! Given the CPU demand of every task (seconds of CPU each needs) and `n` CPUs, all tasks started
//! together:
//! - *fair sharing* (processor sharing, what CFS/EEVDF approximate) gives every runnable task an
//!   equal share `min(1, n/m)` of a CPU while `m` tasks remain;
//! - the *preemptive optimum* (McNaughton) is `max(longest task, total work / n)`.
//!
//! For k short tasks of length s and one long task L this reduces to
//! `F = ((k+1)/n)·s + (L − s)` and `O = max(L, (L + k·s)/n)`, and the best possible cut
//! `1 − O/F` peaks when `L = k·s/(n−1)` (32.8% for n = 2, 40.9% for n = 4).

use serde::{Deserialize, Serialize};

/// The bound for one set of task demands on one CPU count.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct MakespanModel {
    pub cpus: usize,
    /// Predicted makespan under fair sharing.
    pub fair_share_makespan_s: f64,
    /// Shortest makespan any schedule can reach.
    pub optimal_makespan_s: f64,
    /// `1 − optimal / fair_share`: the most a scheduler can cut.
    pub best_cut: f64,
}

impl MakespanModel {
    /// Build the model from measured per-task CPU demands.
    pub fn from_demands(demands: &[f64], cpus: usize) -> MakespanModel {
        let fair = fair_share_makespan(demands, cpus);
        let opt = optimal_makespan(demands, cpus);
        let best_cut = if fair > 0.0 { 1.0 - opt / fair } else { 0.0 };
        MakespanModel {
            cpus,
            fair_share_makespan_s: fair,
            optimal_makespan_s: opt,
            best_cut,
        }
    }
}

/// Processor-sharing makespan: simulate `n` CPUs split equally among the remaining tasks.
pub fn fair_share_makespan(demands: &[f64], cpus: usize) -> f64 {
    let n = cpus.max(1) as f64;
    let mut rest: Vec<f64> = demands.iter().copied().filter(|d| *d > 0.0).collect();
    rest.sort_by(|a, b| a.total_cmp(b));
    let mut time = 0.0;
    let mut done = 0.0; // service every remaining task has received so far
    let total = rest.len();
    for (i, d) in rest.iter().enumerate() {
        let m = (total - i) as f64;
        let rate = (n / m).min(1.0);
        time += (d - done) / rate;
        done = *d;
    }
    time
}

/// McNaughton's bound, reachable by a preemptive schedule.
pub fn optimal_makespan(demands: &[f64], cpus: usize) -> f64 {
    let longest = demands.iter().copied().fold(0.0, f64::max);
    let total: f64 = demands.iter().sum();
    longest.max(total / cpus.max(1) as f64)
}

/// The long task length that maximises the best possible cut for `k` short tasks of length `s`.
pub fn ideal_long(k: usize, s: f64, cpus: usize) -> f64 {
    if cpus <= 1 {
        return f64::INFINITY;
    }
    k as f64 * s / (cpus - 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(s: f64, l: f64) -> Vec<f64> {
        let mut v = vec![s; 39];
        v.push(l);
        v
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn matches_closed_form() {
        for (n, s, l) in [
            (2, 0.22, 4.8),
            (4, 1.0, 13.0),
            (8, 0.5, 2.0),
            (2, 1.0, 39.0),
        ] {
            let m = MakespanModel::from_demands(&suite(s, l), n);
            let f = (40.0 / n as f64) * s + (l - s);
            let o = l.max((l + 39.0 * s) / n as f64);
            assert!(
                close(m.fair_share_makespan_s, f),
                "n={n}: {} vs {f}",
                m.fair_share_makespan_s
            );
            assert!(close(m.optimal_makespan_s, o));
        }
    }

    #[test]
    fn best_cuts_from_the_environment_notes() {
        let cut = |n: usize| {
            let l = ideal_long(39, 1.0, n);
            MakespanModel::from_demands(&suite(1.0, l), n).best_cut
        };
        assert!((cut(2) - 0.328).abs() < 0.001, "{}", cut(2));
        assert!((cut(4) - 0.409).abs() < 0.001, "{}", cut(4));
        assert!((cut(8) - 0.418).abs() < 0.001, "{}", cut(8));
    }

    #[test]
    fn the_tcg_measurement_in_environment_md() {
        // s = 0.22, L = 4.8, 2 CPUs: model says 8.95 s fair, 6.7 s optimal.
        let m = MakespanModel::from_demands(&suite(0.22, 4.8), 2);
        assert!((m.fair_share_makespan_s - 8.98).abs() < 0.05);
        assert!((m.optimal_makespan_s - 6.69).abs() < 0.05);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(fair_share_makespan(&[], 2), 0.0);
        assert_eq!(MakespanModel::from_demands(&[], 2).best_cut, 0.0);
        // More CPUs than tasks: everyone runs at full speed.
        assert!(close(fair_share_makespan(&[1.0, 3.0], 4), 3.0));
    }
}
