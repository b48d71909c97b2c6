//! `schedgen library`: the accepted schedulers, one row each, so a reviewer sees at a glance what
//! was kept, how much it cut, what produced it and what it cost.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::EXIT_OK;
use crate::cli::{LibraryAction, LibraryArgs};
use crate::library::{self, Accepted};
use crate::paths::ProjectPaths;

/// Shown where there is no number.
const NONE: &str = "—";

/// One accepted scheduler, as `--json` prints it (numbers as numbers, `null` when unknown).
#[derive(Debug, Serialize)]
struct Row {
    case: String,
    cut: f64,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    pass: bool,
    /// Whether the cut comes from a confirmation benchmark, not from the runs that chose the
    /// scheduler (metadata from before confirmations has none).
    confirmed: bool,
    verdict_reason: String,
    accepted_at: String,
    provider: String,
    model: String,
    endpoint_host: Option<String>,
    attempts: usize,
    tokens_in: u64,
    tokens_out: u64,
    estimated_cost_usd: Option<f64>,
    kernel_release: String,
    /// The scheduler source, relative to the checkout.
    source: String,
    /// Its metadata, relative to the checkout.
    metadata: String,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// `path` relative to `root` when it is inside it.
pub(super) fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn row(root: &Path, a: &Accepted) -> Row {
    let m = &a.meta;
    Row {
        case: m.case.clone(),
        cut: m.cut.cut,
        ci_low: finite(m.cut.ci_low),
        ci_high: finite(m.cut.ci_high),
        pass: m.verdict.pass,
        confirmed: m.confirmation.as_ref().is_some_and(|c| c.holds),
        verdict_reason: m.verdict.reason.clone(),
        accepted_at: m.accepted_at.clone(),
        provider: m.provider.provider.clone(),
        model: m.provider.model.clone(),
        endpoint_host: m.provider.endpoint_host.clone(),
        attempts: m.attempts.len(),
        tokens_in: m.total_tokens.prompt_tokens,
        tokens_out: m.total_tokens.completion_tokens,
        estimated_cost_usd: m.estimated_cost_usd,
        kernel_release: m.kernel_release.clone(),
        source: shown(root, &a.source_path),
        metadata: shown(root, &a.meta_path),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| NONE.into(), |v| format!("{:.1}%", v * 100.0))
}

/// `accepted_at` as `YYYY-MM-DD HH:MM` UTC, or as written when it is not RFC 3339.
fn date(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at).map_or_else(
        |_| at.to_string(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

fn cells(r: &Row) -> [String; 9] {
    let ci = match (r.ci_low, r.ci_high) {
        (Some(lo), Some(hi)) => format!("[{}, {}]", pct(Some(lo)), pct(Some(hi))),
        _ => format!("[{NONE}]"),
    };
    [
        r.case.clone(),
        format!("{} {ci}", pct(finite(r.cut))),
        match (r.pass, r.confirmed) {
            (false, _) => "FAIL",
            (true, true) => "PASS (confirmed)",
            // Accepted before confirmations: its cut is from the runs that chose it.
            (true, false) => "PASS (unconfirmed)",
        }
        .into(),
        date(&r.accepted_at),
        format!("{}/{}", r.provider, r.model),
        r.attempts.to_string(),
        format!("{}/{}", r.tokens_in, r.tokens_out),
        r.estimated_cost_usd
            .map_or_else(|| "unknown".into(), |c| format!("${c:.4}")),
        r.source.clone(),
    ]
}

const HEADER: [&str; 9] = [
    "CASE",
    "CUT [95% CI]",
    "VERDICT",
    "ACCEPTED (UTC)",
    "PROVIDER/MODEL",
    "ATTEMPTS",
    "TOKENS IN/OUT",
    "COST",
    "SOURCE",
];

/// The table as text, columns padded to their widest cell.
fn render(rows: &[Row]) -> String {
    let lines: Vec<[String; 9]> = std::iter::once(HEADER.map(String::from))
        .chain(rows.iter().map(cells))
        .collect();
    let mut widths = [0usize; 9];
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (c, w) in l.iter().zip(widths) {
            line.push_str(c);
            line.push_str(&" ".repeat(w - c.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn run(paths: &ProjectPaths, args: &LibraryArgs) -> Result<u8> {
    if let Some(LibraryAction::Withdraw { case, reason }) = &args.action {
        let moved = library::withdraw(&paths.root, case, reason)?;
        println!(
            "Withdrew `{case}`'s scheduler: it is now {} (reason recorded beside it); `{case}` \
             has no accepted scheduler.",
            shown(&paths.root, &moved)
        );
        return Ok(EXIT_OK);
    }
    let rows: Vec<Row> = library::list(&paths.root)?
        .iter()
        .map(|a| row(&paths.root, a))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(EXIT_OK);
    }
    if rows.is_empty() {
        println!(
            "No accepted schedulers yet in bpf-generated/. Generate one with \
             `schedgen generate --test ctest_suite` (or `--all` for every case)."
        );
        return Ok(EXIT_OK);
    }
    print!("{}", render(&rows));
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_shown_in_utc_and_odd_ones_as_written() {
        assert_eq!(date("2025-06-01T12:30:00+02:00"), "2025-06-01 10:30");
        assert_eq!(date("yesterday"), "yesterday");
    }
}
