//! Keep or reject: turn a finished generation into library metadata and let the library decide
//! (it refuses anything that did not pass or does not beat the accepted scheduler).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::pipeline::Generation;
use crate::library::{self, AcceptOutcome, Attempt, PromptInfo, Provenance};

/// The library's metadata for a generation that produced a benchmarked candidate.
pub fn provenance(root: &Path, g: &Generation) -> Option<Provenance> {
    let mut bench = g.benchmark.clone()?;
    // The candidate lives in the run directory; name it relative to the checkout so the
    // metadata reads the same on a reviewer's machine.
    if let Ok(rel) = Path::new(&bench.scheduler.path).strip_prefix(root) {
        bench.scheduler.path = rel.display().to_string();
    }
    let cut = bench.cut?;
    let templates: BTreeMap<String, String> = g
        .templates
        .iter()
        .filter_map(|t| {
            t.rsplit_once(".v")
                .map(|(n, v)| (n.to_string(), v.to_string()))
        })
        .collect();
    let attempts = g
        .attempts
        .iter()
        .map(|a| Attempt {
            round: a.round,
            attempt: a.attempt,
            class: serde_json::to_value(a.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            detail: library::short_detail(&a.detail),
            tokens: a.call.as_ref().and_then(|c| c.usage),
            checker: a.checker.clone(),
            seconds: a.seconds,
        })
        .collect();
    Some(Provenance {
        schema: String::new(),
        case: g.case_id.clone(),
        accepted_at: String::new(),
        provider: g.provider.clone(),
        prompt: PromptInfo {
            templates,
            rendered_sha256: g.prompt_hash.clone(),
            dialect: g.dialect,
        },
        shown_references: g.shown_references.clone(),
        attempts,
        total_tokens: g.tokens,
        estimated_cost_usd: g.cost_usd,
        kernel_release: g.kernel_release.clone(),
        verdict: bench.verdict.clone(),
        cut,
        benchmark: bench,
        source_sha256: String::new(),
        contribution: g.final_contribution().cloned(),
        rounds: g.rounds.clone(),
        confirmation: g.confirmation.clone(),
        withdrawn: None,
    })
}

/// Offer a generation to the library. `Ok(None)` when there was nothing to offer.
pub fn keep(root: &Path, g: &Generation) -> Result<Option<AcceptOutcome>> {
    let (Some(source), Some(meta)) = (&g.final_source, provenance(root, g)) else {
        return Ok(None);
    };
    library::accept(root, &g.case_id, source, meta).map(Some)
}
