//! A benchmark's results directory: `bench.json` (the data, everything else derives from it),
//! `report.md` and the SVG charts.
//!
//! [`write_all`] is called by the benchmark after each case, so a crash later leaves the cases
//! so far on disk; [`load`] reads the JSON back for `schedgen analyze`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::charts;
use super::efficiency;
use super::markdown;
use super::result::{BenchResult, BENCH_SCHEMA};

pub const JSON_FILE: &str = "bench.json";
pub const REPORT_FILE: &str = "report.md";

/// Write `bench.json`, `report.md` and the charts into `dir` (created if missing); return the
/// paths written, JSON first.
pub fn write_all(dir: &Path, r: &BenchResult) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(r).context("cannot encode the benchmark as JSON")?;
    let mut files = vec![(JSON_FILE.to_string(), json + "\n")];
    files.extend(render(r)?);
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Write only what derives from the JSON (`report.md` and the charts), leaving `bench.json` as
/// it is; return the paths written.
pub fn rerender(dir: &Path, r: &BenchResult) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, text) in render(r)? {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn render(r: &BenchResult) -> Result<Vec<(String, String)>> {
    let mut files = vec![(REPORT_FILE.to_string(), markdown::render(r))];
    files.extend(charts::render_all(r)?);
    Ok(files)
}

/// Read `dir/bench.json`.
pub fn load(dir: &Path) -> Result<BenchResult> {
    let path = dir.join(JSON_FILE);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is {} a benchmark results directory?)",
            path.display(),
            dir.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(BENCH_SCHEMA) => {}
        Some(other) => bail!(
            "{} has schema {other:?}; this schedgen reads {BENCH_SCHEMA:?}",
            path.display()
        ),
        None => bail!(
            "{} is not a schedgen benchmark (no \"schema\" field)",
            path.display()
        ),
    }
    let mut r: BenchResult = serde_json::from_value(value)
        .with_context(|| format!("{} does not hold a complete benchmark", path.display()))?;
    // Benchmarks saved before efficiency was recorded have everything it derives from.
    for c in r.cases.iter_mut().filter(|c| c.efficiency.is_none()) {
        let long_width = c.bound.as_ref().map_or(1.0, |b| b.long_width());
        c.efficiency = efficiency::of_case(&c.runs, r.cpus, long_width, c.policy_cut.as_ref());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixture;
    use crate::stats::IntervalMethod;

    #[test]
    fn write_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let r = fixture::bench();
        let written = write_all(dir.path(), &r).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "bench.json",
                "report.md",
                "bars.svg",
                "timeline-ctest_suite.svg",
                "timeline-log_processing.svg"
            ]
        );
        assert_eq!(load(dir.path()).unwrap(), r);
        for p in &written[2..] {
            let svg = fs::read_to_string(p).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        }
    }

    #[test]
    fn an_interval_that_could_not_be_computed_survives_the_json() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = fixture::bench();
        let c = r.cases[0].cut.as_mut().unwrap();
        c.method = IntervalMethod::None;
        c.ci_low = f64::NAN;
        c.ci_high = f64::NAN;
        write_all(dir.path(), &r).unwrap();
        let back = load(dir.path()).unwrap();
        let c = back.cases[0].cut.unwrap();
        assert!(c.ci_low.is_nan() && c.ci_high.is_nan());
    }

    #[test]
    fn the_cli_test_fixture_is_this_benchmark() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bench");
        assert_eq!(load(&dir).unwrap(), fixture::bench());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(
            e.contains("bench.json") && e.contains("results directory"),
            "{e}"
        );

        fs::write(dir.path().join(JSON_FILE), "{ not json").unwrap();
        let e = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(e.contains("bench.json is not valid JSON"), "{e}");

        fs::write(
            dir.path().join(JSON_FILE),
            r#"{"schema": "schedgen.run/1"}"#,
        )
        .unwrap();
        let e = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(e.contains("has schema \"schedgen.run/1\""), "{e}");

        fs::write(
            dir.path().join(JSON_FILE),
            r#"{"schema": "schedgen.bench/1"}"#,
        )
        .unwrap();
        let e = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(e.contains("does not hold a complete benchmark"), "{e}");
        assert!(e.contains("missing field"), "{e}");
    }
}
