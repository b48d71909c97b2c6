//! Statistics for comparing two schedulers: descriptive numbers per arm, the cut with a 95%
//! confidence interval, and a Mann–Whitney U test. Pure functions, no I/O.
//!
//! The cut is `1 − mean(custom) / mean(default)`. Its interval is Welch's t on the ratio of the
//! means (delta method: both means' relative standard errors, Welch–Satterthwaite degrees of
//! freedom), so the default arm's own noise widens it too. Only from [`BOOTSTRAP_MIN_RUNS`] runs
//! per arm is a percentile bootstrap used (each arm resampled on its own, fixed seed, so a
//! report re-renders identically): at small n the percentile bootstrap is anti-conservative
//! (it underestimates the spread by about √((n−1)/n) and has few distinct resamples), which at 5
//! runs per arm made its intervals narrower than Welch's on the same data. The Mann–Whitney
//! p-value is exact (no ties) and two-sided: with 3 runs per arm it cannot fall below 0.1, so it
//! informs but cannot decide.

use serde::{Deserialize, Serialize};

/// Below this many runs in either arm, the cut's interval uses Welch's t instead of a bootstrap.
pub const BOOTSTRAP_MIN_RUNS: usize = 20;
const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Descriptive statistics of one arm's makespans.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct ArmStats {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1); 0 for a single run.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

pub fn describe(xs: &[f64]) -> ArmStats {
    if xs.is_empty() {
        return ArmStats::default();
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    ArmStats {
        n,
        mean,
        median,
        sd: sample_sd(&v, mean),
        min: v[0],
        max: v[n - 1],
    }
}

fn sample_sd(v: &[f64], mean: f64) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    Bootstrap,
    WelchT,
    /// Too few runs for any interval (fewer than 2 in an arm).
    None,
}

/// The improvement of `custom` over `default`, with its uncertainty.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CutEstimate {
    /// `1 − mean(custom) / mean(default)`: positive when custom is faster.
    pub cut: f64,
    /// NaN when there is no interval ([`IntervalMethod::None`]); JSON writes it as `null`.
    #[serde(deserialize_with = "nan_if_null")]
    pub ci_low: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub ci_high: f64,
    pub method: IntervalMethod,
    /// Two-sided Mann–Whitney U p-value for "the arms differ".
    pub p_value: f64,
}

/// JSON has no NaN (serde_json writes `null`): read `null` back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

pub fn cut(default: &[f64], custom: &[f64]) -> CutEstimate {
    let d = describe(default);
    let c = describe(custom);
    let point = if d.mean > 0.0 {
        1.0 - c.mean / d.mean
    } else {
        0.0
    };
    let p_value = mann_whitney_p(default, custom);
    let (method, lo, hi) = if d.n < 2 || c.n < 2 || d.mean <= 0.0 {
        (IntervalMethod::None, f64::NAN, f64::NAN)
    } else if d.n >= BOOTSTRAP_MIN_RUNS && c.n >= BOOTSTRAP_MIN_RUNS {
        let (lo, hi) = bootstrap_cut(default, custom);
        (IntervalMethod::Bootstrap, lo, hi)
    } else {
        let (lo, hi) = welch_ratio_interval(&d, &c);
        (IntervalMethod::WelchT, 1.0 - hi, 1.0 - lo)
    };
    CutEstimate {
        cut: point,
        ci_low: lo,
        ci_high: hi,
        method,
        p_value,
    }
}

/// A small deterministic generator (SplitMix64): resampling needs reproducibility, not quality.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn bootstrap_cut(default: &[f64], custom: &[f64]) -> (f64, f64) {
    let mut rng = SplitMix(0x5eed_5c4e_d9e1);
    let resample_mean = |xs: &[f64], rng: &mut SplitMix| {
        (0..xs.len()).map(|_| xs[rng.below(xs.len())]).sum::<f64>() / xs.len() as f64
    };
    let mut cuts: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let d = resample_mean(default, &mut rng);
            let c = resample_mean(custom, &mut rng);
            1.0 - c / d
        })
        .collect();
    cuts.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| cuts[((q * (cuts.len() - 1) as f64).round() as usize).min(cuts.len() - 1)];
    (at(0.025), at(0.975))
}

/// 95% interval for `mean(custom) / mean(default)`: the delta method's standard error of a
/// ratio of independent means, with Welch–Satterthwaite degrees of freedom on the two relative
/// variances.
fn welch_ratio_interval(d: &ArmStats, c: &ArmStats) -> (f64, f64) {
    let ratio = c.mean / d.mean;
    let vd = (d.sd / d.mean).powi(2) / d.n as f64;
    let vc = if c.mean == 0.0 {
        0.0
    } else {
        (c.sd / c.mean).powi(2) / c.n as f64
    };
    let rel = (vd + vc).sqrt();
    if rel == 0.0 {
        return (ratio, ratio);
    }
    let df =
        (vd + vc).powi(2) / (vd.powi(2) / (d.n as f64 - 1.0) + vc.powi(2) / (c.n as f64 - 1.0));
    let half = student_t_quantile(0.975, df) * ratio * rel;
    (ratio - half, ratio + half)
}

/// The half-width Welch's 95% interval of `1 − mean(custom) / mean(default)` would have at `n`
/// runs per arm if the arms' means and spreads stayed what they are: how far more runs could
/// narrow it. None with fewer than two runs in an arm.
pub fn half_width_at(default: &[f64], custom: &[f64], n: usize) -> Option<f64> {
    let (d, c) = (describe(default), describe(custom));
    if d.n < 2 || c.n < 2 || n < 2 || d.mean <= 0.0 || c.mean <= 0.0 {
        return None;
    }
    let n = n as f64;
    let vd = (d.sd / d.mean).powi(2) / n;
    let vc = (c.sd / c.mean).powi(2) / n;
    let rel = (vd + vc).sqrt();
    if rel == 0.0 {
        return Some(0.0);
    }
    let df = (vd + vc).powi(2) / ((vd.powi(2) + vc.powi(2)) / (n - 1.0));
    Some(student_t_quantile(0.975, df) * (c.mean / d.mean) * rel)
}

/// Two-sided Mann–Whitney U p-value; exact when there are no ties, normal approximation with a
/// tie correction otherwise.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return 1.0;
    }
    // U for `a`: pairs where a beats b, ties count half.
    let mut u: f64 = 0.0;
    let mut ties = false;
    for x in a {
        for y in b {
            if x > y {
                u += 1.0;
            } else if x == y {
                u += 0.5;
                ties = true;
            }
        }
    }
    let mn = (m * n) as f64;
    let u_small = u.min(mn - u);
    if !ties && m + n <= 40 {
        let counts = u_distribution(m, n);
        let total: f64 = counts.iter().sum();
        let k = u_small.floor() as usize;
        let tail = counts[..=k].iter().sum::<f64>() / total;
        return (2.0 * tail).min(1.0);
    }
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(|x, y| x.total_cmp(y));
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < all.len() {
        let j = all[i..].iter().take_while(|v| **v == all[i]).count();
        tie_term += (j as f64).powi(3) - j as f64;
        i += j;
    }
    let nn = (m + n) as f64;
    let var = mn / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = (u_small - mn / 2.0 + 0.5) / var.sqrt();
    (2.0 * normal_cdf(z)).min(1.0)
}

/// Number of orderings of m a's and n b's giving each U value (0..=m·n).
fn u_distribution(m: usize, n: usize) -> Vec<f64> {
    // f[i][j][u]: arrangements of i a's and j b's with statistic u; built up one element at a
    // time: appending an `a` after j b's adds j to U.
    let max = m * n;
    let mut prev: Vec<Vec<f64>> = vec![vec![0.0; max + 1]; n + 1];
    for row in prev.iter_mut() {
        row[0] = 1.0; // zero a's: one arrangement, U = 0
    }
    for _i in 1..=m {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; max + 1]; n + 1];
        for j in 0..=n {
            for u in 0..=max {
                let mut v = 0.0;
                // last element is an `a` (beats all j b's)
                if u >= j {
                    v += prev[j][u - j];
                }
                // last element is a `b`
                if j > 0 {
                    v += cur[j - 1][u];
                }
                cur[j][u] = v;
            }
        }
        prev = cur;
    }
    prev[n].clone()
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Chebyshev fit, relative error below 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Quantile of Student's t by bisection on its CDF.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-1e3, 1e3);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn student_t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * reg_incomplete_beta(df / 2.0, 0.5, x);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta I_x(a, b), by its continued fraction (modified Lentz).
fn reg_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - reg_incomplete_beta(b, a, 1.0 - x);
    }
    let tiny = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..300 {
        let m = m as f64;
        for step in 0..2 {
            let num = if step == 0 {
                m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
            } else {
                -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
            };
            d = 1.0 + num * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + num / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-14 {
            break;
        }
    }
    front * f / a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_an_arm() {
        let s = describe(&[3.0, 1.0, 2.0, 4.0]);
        assert_eq!((s.n, s.min, s.max), (4, 1.0, 4.0));
        assert!((s.mean - 2.5).abs() < 1e-12 && (s.median - 2.5).abs() < 1e-12);
        assert!((s.sd - 1.290_994_448_7).abs() < 1e-9);
        assert_eq!(describe(&[5.0]).sd, 0.0);
    }

    #[test]
    fn t_quantiles_match_tables() {
        for (df, want) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (10.0, 2.228),
            (1000.0, 1.962),
        ] {
            let got = student_t_quantile(0.975, df);
            assert!((got - want).abs() < 2e-3, "df {df}: {got} vs {want}");
        }
    }

    #[test]
    fn the_half_width_at_the_runs_already_made_is_welchs_and_narrows_with_more() {
        let (d, c) = ([10.0, 10.4, 9.8], [7.0, 7.3, 6.9]);
        let e = cut(&d, &c);
        let now = half_width_at(&d, &c, 3).unwrap();
        assert!(
            ((e.ci_high - e.ci_low) / 2.0 - now).abs() < 1e-9,
            "{e:?} {now}"
        );
        let later = half_width_at(&d, &c, 5).unwrap();
        // Fewer degrees of freedom cost more than √n alone: ×√(3/5) and a smaller t.
        assert!(later < now * (3.0f64 / 5.0).sqrt(), "{now} → {later}");
        assert_eq!(half_width_at(&d[..1], &c, 5), None);
    }

    #[test]
    fn mann_whitney_exact_values() {
        // Complete separation with 3 vs 3: the smallest possible two-sided p is 2/20.
        let p = mann_whitney_p(&[10.0, 11.0, 12.0], &[7.0, 8.0, 9.0]);
        assert!((p - 0.1).abs() < 1e-12, "{p}");
        // 5 vs 5 separated: 2/252.
        let p = mann_whitney_p(&[10.0, 11.0, 12.0, 13.0, 14.0], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
        // Interleaved samples are not significant.
        assert!(mann_whitney_p(&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0]) > 0.5);
    }

    #[test]
    fn cut_with_bootstrap_and_welch() {
        let default = [10.0, 10.4, 9.8, 10.2, 10.1];
        let custom = [7.0, 7.1, 6.9, 7.2, 7.05];
        let e = cut(&default, &custom);
        assert_eq!(e.method, IntervalMethod::WelchT);
        assert!(
            e.ci_low > 0.25 && e.ci_high < 0.34 && e.ci_low < e.cut && e.cut < e.ci_high,
            "{e:?}"
        );
        // At 5 runs per arm the bootstrap would be narrower than Welch's t: not used there.
        let boot = bootstrap_cut(&default, &custom);
        assert!(boot.1 - boot.0 < e.ci_high - e.ci_low, "{boot:?} vs {e:?}");
        // From 20 runs per arm, the bootstrap.
        let many = |xs: &[f64]| xs.iter().cycle().take(20).copied().collect::<Vec<_>>();
        let e = cut(&many(&default), &many(&custom));
        assert_eq!(e.method, IntervalMethod::Bootstrap);
        assert!((e.cut - (1.0 - 7.05 / 10.1)).abs() < 1e-9);
        assert!(
            e.ci_low > 0.25 && e.ci_high < 0.34 && e.ci_low < e.cut && e.cut < e.ci_high,
            "{e:?}"
        );
        assert!(e.p_value < 0.01);

        let e = cut(&default[..3], &custom[..3]);
        assert_eq!(e.method, IntervalMethod::WelchT);
        assert!(
            e.ci_low < e.cut && e.cut < e.ci_high && e.ci_low > 0.0,
            "{e:?}"
        );
        assert!((e.p_value - 0.1).abs() < 1e-12);

        // No difference: the interval straddles zero.
        let e = cut(&[10.0, 11.0, 9.0, 10.5, 9.5], &[10.2, 9.1, 10.9, 9.6, 10.4]);
        assert!(e.ci_low < 0.0 && e.ci_high > 0.0, "{e:?}");
        assert_eq!(cut(&[1.0], &[1.0]).method, IntervalMethod::None);

        // The default arm's noise widens the interval even when the custom arm has none.
        let quiet = cut(&[10.0, 10.0, 10.0], &[7.0, 7.1, 6.9]);
        let noisy = cut(&[9.0, 10.0, 11.0], &[7.0, 7.1, 6.9]);
        assert!(noisy.ci_high - noisy.ci_low > 2.0 * (quiet.ci_high - quiet.ci_low));
    }
}
