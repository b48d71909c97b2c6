//! Where the benchmark's presentation modules plug in: the JSON and the terminal table.
//! (Markdown and charts are added by `export` when present.)

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::result::BenchResult;

/// Write `bench.json` into `dir`; returns the files written.
pub fn write(dir: &Path, r: &BenchResult) -> Result<Vec<PathBuf>> {
    let p = dir.join("bench.json");
    std::fs::write(&p, serde_json::to_string_pretty(r)? + "\n")
        .with_context(|| format!("cannot write {}", p.display()))?;
    Ok(vec![p])
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        "–".into()
    }
}

/// A plain table, one line per case.
pub fn table(r: &BenchResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{} CPUs ({}), kernel {}, {} runs + {} warm-up per arm, target {}",
        r.cpus,
        r.place,
        r.kernel_release,
        r.runs_per_arm,
        r.warmup,
        pct(r.target)
    );
    let _ = writeln!(
        s,
        "{:<24} {:>16} {:>16} {:>24} {:>9} {:>9}  VERDICT",
        "CASE", "DEFAULT", "CUSTOM", "CUT [95% CI]", "BEST", "CAPTURED"
    );
    for c in &r.cases {
        let cut = c
            .cut
            .map(|k| format!("{} [{}, {}]", pct(k.cut), pct(k.ci_low), pct(k.ci_high)))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "{:<24} {:>16} {:>16} {:>24} {:>9} {:>9}  {} {}",
            c.test_id,
            format!("{:.2} ± {:.2} s", c.default.mean, c.default.sd),
            format!("{:.2} ± {:.2} s", c.custom.mean, c.custom.sd),
            cut,
            c.bound
                .as_ref()
                .map(|b| pct(b.model.best_cut))
                .unwrap_or_else(|| "–".into()),
            c.captured.map(pct).unwrap_or_else(|| "–".into()),
            if c.verdict.pass { "PASS" } else { "FAIL" },
            c.verdict.reason
        );
    }
    s
}
