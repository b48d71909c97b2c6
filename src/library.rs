//! The library of accepted schedulers: `bpf-generated/<case>.bpf.c` with its provenance in
//! `bpf-generated/<case>.json`, and every scheduler it replaced under `bpf-generated/history/`.
//!
//! Why it is built this way:
//! - A scheduler is only worth keeping if a reviewer can see where it came from and what it
//!   measured, so the source never goes in alone: [`Provenance`] records the model, the prompt,
//!   every attempt, the tokens and cost, the kernel, the whole benchmark and its verdict.
//! - "Never overwritten by a worse scheduler" is enforced here, not by the caller: [`accept`]
//!   refuses a candidate whose verdict failed, or that did not beat the accepted one head to
//!   head (both interleaved in one benchmark), and then writes nothing. Cuts from separate
//!   benchmarks are not compared: on this machine kind two sittings differ by more than the
//!   schedulers do.
//! - Nothing is thrown away: the scheduler being replaced moves to `history/<case>/`, so
//!   `schedgen diff --against previous` can show what changed.
//! - A crash must not leave a half-written scheduler for `schedgen benchmark` to load: both files
//!   are written to temporary files in the same directory and renamed into place, metadata last,
//!   and the metadata's `source_sha256` lets [`current`] notice a pair that does not belong
//!   together.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bench::result::{CaseBench, Verdict};
use crate::generate::llm::{ProviderInfo, TokenUsage};
use crate::stats::CutEstimate;

/// The `schema` of a metadata file.
pub const SCHEMA: &str = "schedgen.accepted/1";

/// The reference scheduler a generated one is compared with when its metadata does not say which
/// references the model was shown.
pub const DEFAULT_REFERENCE: &str = "bpf-reference/longfirst.bpf.c";

/// Failure classes of an [`Attempt`], as written in the metadata. The loop may add others; these
/// are the ones the library and `schedgen library` know by name.
pub mod class {
    /// The reply held no scheduler, or more than one.
    pub const NO_CODE: &str = "no_code";
    /// clang refused the source.
    pub const COMPILE_ERROR: &str = "compile_error";
    /// The static checks before compiling failed (no struct_ops, no GPL licence, unknown kfunc).
    pub const STATIC_CHECK: &str = "static_check";
    /// The kernel verifier refused to load the program.
    pub const VERIFIER_REJECTED: &str = "verifier_rejected";
    /// The scheduler loaded but did not attach or never enabled.
    pub const ATTACH_FAILED: &str = "attach_failed";
    /// The sched_ext watchdog ejected it for stalling tasks.
    pub const STALL: &str = "stall";
    /// It called `scx_bpf_error` (or the kernel ejected it for another error).
    pub const BPF_ERROR: &str = "bpf_error";
    /// It ran, but the benchmark verdict failed or the cut missed the target.
    pub const BELOW_TARGET: &str = "below_target";
    /// The model call itself failed (HTTP error, timeout).
    pub const LLM_ERROR: &str = "llm_error";
    /// Everything passed: this attempt produced the accepted scheduler.
    pub const PASSED: &str = "passed";
}

/// Longest `detail` kept per attempt; the full logs stay in the run directory.
pub const DETAIL_LIMIT: usize = 300;

/// Where one accepted scheduler came from and what it measured: `bpf-generated/<case>.json`.
///
/// The generate loop fills every field except `source_sha256` (and `accepted_at` when left
/// empty), which [`accept`] sets from the source it writes and the clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The case id (`ctest_suite`, ...).
    pub case: String,
    /// When it was accepted, RFC 3339 (UTC). [`accept`] fills it when empty.
    pub accepted_at: String,
    /// Provider (`openai` or `offline`), model, and the endpoint's host (never a key or path).
    pub provider: ProviderInfo,
    /// Which prompt produced it.
    pub prompt: PromptInfo,
    /// Repository-relative paths of the reference schedulers shown in the prompt
    /// (`bpf-reference/longfirst.bpf.c`); `schedgen diff` compares against them.
    #[serde(default)]
    pub shown_references: Vec<String>,
    /// Every attempt of the run, oldest first, the successful one last.
    pub attempts: Vec<Attempt>,
    /// Tokens of every call of the run, summed (see [`total_tokens`]).
    pub total_tokens: TokenUsage,
    /// Estimated cost of the whole run in USD; `None` when unknown (a model with no price, or a
    /// server that reported no usage). The offline provider costs `Some(0.0)`.
    pub estimated_cost_usd: Option<f64>,
    /// `uname -r` of the kernel it was verified and benchmarked on.
    pub kernel_release: String,
    /// PASS or FAIL with the reason; a copy of `benchmark.verdict`.
    pub verdict: Verdict,
    /// The measured cut with its 95% interval; a copy of `benchmark.cut`.
    pub cut: CutEstimate,
    /// Everything the benchmark measured for this case, every run included.
    pub benchmark: CaseBench,
    /// SHA-256 of the accepted source (hex); set by [`accept`].
    #[serde(default)]
    pub source_sha256: String,
    /// What the model contributed: a copy of a shown reference, its constants changed, or
    /// code of its own (absent in metadata older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution: Option<crate::generate::contribution::Contribution>,
    /// Every benchmarked round of the run, with the head-to-head results of later rounds
    /// against the scheduler they had to beat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<crate::generate::pipeline::RoundRecord>,
    /// `benchmark` is a confirmation: fresh runs of the chosen candidate, not the runs that
    /// chose it. [`accept`] refuses metadata without one (absent in metadata older than this
    /// field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<crate::generate::pipeline::Confirmation>,
    /// Set when the scheduler was withdrawn by hand (only history entries have it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<Withdrawal>,
}

/// Why and when an accepted scheduler was taken out of the library without a replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// RFC 3339, UTC.
    pub at: String,
    pub reason: String,
}

/// The prompt a scheduler was generated from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptInfo {
    /// Template name → its version (`system` → `3`, `repair` → `1`, ...).
    pub templates: BTreeMap<String, String>,
    /// SHA-256 (hex) of the first rendered prompt, system and user text as sent
    /// (see [`sha256_hex`]).
    pub rendered_sha256: String,
    /// The dialect the prompt asked for (`schedgen` or `scx`).
    #[serde(default)]
    pub dialect: crate::bpf::compile::Dialect,
}

/// One try at a scheduler: a model reply and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Benchmark round, from 1 (a new round starts after a benchmark below target).
    pub round: u32,
    /// Attempt within the round, from 1 (a new attempt follows a repair request).
    pub attempt: u32,
    /// How it ended: one of the [`class`] names (`compile_error`, ..., `passed`).
    pub class: String,
    /// One short line on why (first diagnostic, exit reason, cut reached); see [`short_detail`].
    #[serde(default)]
    pub detail: String,
    /// Tokens the model call used; `None` when the server did not say (or no model was called).
    #[serde(default)]
    pub tokens: Option<TokenUsage>,
    /// The static checker that read the candidate (`libclang 19.1.7`, or `lexical (why)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<String>,
    /// Seconds spent in each stage this attempt reached.
    #[serde(default)]
    pub seconds: StageSeconds,
}

/// Wall time per stage of one attempt; `None` for a stage the attempt did not reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    /// The model call (or the offline synthesiser).
    pub generate: Option<f64>,
    /// Static checks and clang.
    pub compile: Option<f64>,
    /// Loading and running it in the sandbox.
    pub verify: Option<f64>,
    pub benchmark: Option<f64>,
}

/// An accepted scheduler as stored: its source, its metadata and where they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub source: String,
    pub meta: Provenance,
    /// The `.bpf.c` file.
    pub source_path: PathBuf,
    /// The `.json` file beside it.
    pub meta_path: PathBuf,
}

/// What [`accept`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum AcceptOutcome {
    /// The candidate is now the case's scheduler.
    Accepted {
        /// `bpf-generated/<case>.bpf.c`.
        source_path: PathBuf,
        /// Where the scheduler it replaced went (its `.bpf.c` in `history/<case>/`), if any.
        replaced: Option<PathBuf>,
    },
    /// Nothing was written; `reason` says why in words.
    Rejected { reason: String },
}

/// What `schedgen diff` compares an accepted scheduler with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffAgainst {
    /// The reference scheduler(s) shown in its prompt ([`Provenance::shown_references`]).
    Reference,
    /// The scheduler it replaced (the newest history entry).
    Previous,
    /// Any file.
    File(PathBuf),
}

impl std::str::FromStr for DiffAgainst {
    type Err = String;

    /// `reference`, `previous`, or a path (write `./previous` for a file of that name).
    fn from_str(s: &str) -> Result<DiffAgainst, String> {
        match s {
            "" => Err("expected reference, previous or a file path".into()),
            "reference" => Ok(DiffAgainst::Reference),
            "previous" => Ok(DiffAgainst::Previous),
            path => Ok(DiffAgainst::File(PathBuf::from(path))),
        }
    }
}

/// `bpf-generated/` under the checkout `root`.
pub fn dir(root: &Path) -> PathBuf {
    root.join("bpf-generated")
}

/// `bpf-generated/history/<case>/`.
pub fn history_dir(root: &Path, case: &str) -> PathBuf {
    dir(root).join("history").join(case)
}

/// Lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    sha256_bytes(text.as_bytes())
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `detail` cut to one line of at most [`DETAIL_LIMIT`] characters.
pub fn short_detail(detail: &str) -> String {
    let line = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= DETAIL_LIMIT {
        return line;
    }
    let mut cut: String = line.chars().take(DETAIL_LIMIT - 1).collect();
    cut.push('…');
    cut
}

/// The tokens of all attempts that reported any.
pub fn total_tokens(attempts: &[Attempt]) -> TokenUsage {
    attempts.iter().filter_map(|a| a.tokens).sum()
}

/// A case id safe to use as a file name.
fn check_case(case: &str) -> Result<()> {
    let ok = !case.is_empty()
        && case
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        bail!("`{case}` is not a case id (letters, digits, `_` and `-` only)");
    }
    Ok(())
}

fn pair_paths(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{stem}.bpf.c")),
        dir.join(format!("{stem}.json")),
    )
}

/// Reads a `.bpf.c` + `.json` pair, checking that they belong together.
fn read_pair(source_path: PathBuf, meta_path: PathBuf) -> Result<Accepted> {
    let source = std::fs::read_to_string(&source_path)
        .with_context(|| format!("cannot read {}", source_path.display()))?;
    let text = std::fs::read_to_string(&meta_path)
        .with_context(|| format!("cannot read {}", meta_path.display()))?;
    let meta: Provenance = serde_json::from_str(&text)
        .with_context(|| format!("{} is not scheduler metadata", meta_path.display()))?;
    if !meta.source_sha256.is_empty() && meta.source_sha256 != sha256_hex(&source) {
        bail!(
            "{} does not match its metadata {} (source_sha256 differs): it was edited by hand or \
             an accept was interrupted; restore it from bpf-generated/history/ or delete both files",
            source_path.display(),
            meta_path.display()
        );
    }
    Ok(Accepted {
        source,
        meta,
        source_path,
        meta_path,
    })
}

/// The accepted scheduler for `case`, if there is one.
///
/// A source without its metadata (or the reverse) is an error naming both files: the library
/// cannot vouch for a scheduler it has no record of.
pub fn current(root: &Path, case: &str) -> Result<Option<Accepted>> {
    check_case(case)?;
    let (src, meta) = pair_paths(&dir(root), case);
    match (src.exists(), meta.exists()) {
        (false, false) => Ok(None),
        (true, true) => read_pair(src, meta).map(Some),
        (true, false) => bail!(
            "{} has no metadata ({} is missing): move it out of bpf-generated/ or regenerate it",
            src.display(),
            meta.display()
        ),
        (false, true) => bail!(
            "{} has no scheduler beside it ({} is missing): delete it or restore the source from \
             bpf-generated/history/",
            meta.display(),
            src.display()
        ),
    }
}

/// Every scheduler `case` had before the current one, oldest first.
pub fn history(root: &Path, case: &str) -> Result<Vec<Accepted>> {
    check_case(case)?;
    let hdir = history_dir(root, case);
    if !hdir.is_dir() {
        return Ok(Vec::new());
    }
    let mut entries = Vec::new();
    for entry in
        std::fs::read_dir(&hdir).with_context(|| format!("cannot read {}", hdir.display()))?
    {
        let path = entry?.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let (src, meta) = pair_paths(&hdir, stem);
        entries.push((stem.to_string(), read_pair(src, meta)?));
    }
    // Newest last: by the time it was accepted, then by file name for equal times.
    entries.sort_by(|(sa, a), (sb, b)| {
        let ta = chrono::DateTime::parse_from_rfc3339(&a.meta.accepted_at).ok();
        let tb = chrono::DateTime::parse_from_rfc3339(&b.meta.accepted_at).ok();
        ta.cmp(&tb).then_with(|| sa.cmp(sb))
    });
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

/// The scheduler the current one replaced: the newest history entry.
pub fn previous(root: &Path, case: &str) -> Result<Option<Accepted>> {
    Ok(history(root, case)?.pop())
}

/// Every accepted scheduler, by case id.
pub fn list(root: &Path) -> Result<Vec<Accepted>> {
    let d = dir(root);
    if !d.is_dir() {
        return Ok(Vec::new());
    }
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let case = name
            .strip_suffix(".bpf.c")
            .or_else(|| name.strip_suffix(".json"));
        if let Some(case) = case {
            if path.is_file() && check_case(case).is_ok() {
                cases.push(case.to_string());
            }
        }
    }
    cases.sort();
    cases.dedup();
    let mut out = Vec::new();
    for case in cases {
        if let Some(a) = current(root, &case)? {
            out.push(a);
        }
    }
    Ok(out)
}

/// Why `meta` may not replace `current`, or `None` when it may.
fn refusal(meta: &Provenance, current: Option<&Accepted>) -> Option<String> {
    if !meta.verdict.pass {
        return Some(format!("its verdict is FAIL: {}", meta.verdict.reason));
    }
    if meta.verdict != meta.benchmark.verdict {
        return Some("its verdict differs from its benchmark's verdict".into());
    }
    // Compare the point estimates only: an interval that could not be computed is NaN, and
    // NaN never equals itself.
    if meta.benchmark.cut.map(|c| c.cut) != Some(meta.cut.cut) {
        return Some("its cut differs from its benchmark's cut".into());
    }
    if !meta.cut.cut.is_finite() {
        return Some("its cut is not a number".into());
    }
    if let Some(reason) = current.and_then(|c| head_to_head_refusal(meta, c)) {
        return Some(reason);
    }
    match &meta.confirmation {
        None => Some(
            "its cut comes from the runs that chose it, which are biased upwards: it needs a \
             confirmation benchmark (generate runs one unless `--confirm-runs 0`)"
                .into(),
        ),
        Some(c) if !c.holds => Some(format!(
            "it did not hold up in its confirmation benchmark (round {}'s runs chose it)",
            c.round
        )),
        Some(_) => None,
    }
}

/// Why a candidate may not replace `current`: it was not run head to head against that very
/// scheduler, or did not beat it.
fn head_to_head_refusal(meta: &Provenance, current: &Accepted) -> Option<String> {
    let b = &meta.benchmark;
    if b.incumbent_sha256.as_deref() != Some(current.meta.source_sha256.as_str()) {
        return Some(format!(
            "it was not measured head to head against the accepted scheduler (accepted {}): \
             benchmark it with `--incumbent bpf-generated/{}.bpf.c`",
            current.meta.accepted_at, current.meta.case
        ));
    }
    match (b.beats_incumbent(), b.vs_incumbent) {
        (Some(true), _) => None,
        (_, Some(v)) => Some(format!(
            "head to head it does not beat the accepted scheduler (accepted {}): {:+.1}% \
             [{:.1}%, {:.1}%], an interval that is not above zero",
            current.meta.accepted_at,
            v.cut * 100.0,
            v.ci_low * 100.0,
            v.ci_high * 100.0
        )),
        _ => Some(format!(
            "head to head against the accepted scheduler (accepted {}) it has no interval",
            current.meta.accepted_at
        )),
    }
}

/// `accepted_at` as a file name: RFC 3339 with `:` and other awkward characters replaced.
fn sanitise_time(at: &str) -> String {
    let s: String = at
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// Writes `text` to a temporary file in `dir` and flushes it to disk.
fn staged(dir: &Path, text: &str) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".accept-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    Ok(tmp)
}

/// Makes `source_text` the accepted scheduler for `case`, if `meta` earns it.
///
/// Refused (nothing written) unless the verdict passed and, when a scheduler is already
/// accepted, the same benchmark ran that scheduler (by its SHA-256) as the incumbent and the
/// candidate's head-to-head interval against it lies above zero. On acceptance the old pair moves to `history/<case>/<accepted_at>.*`,
/// then the new source and metadata are renamed into place from fully written temporary files.
/// `meta.case` must be `case` (or empty); `meta.source_sha256` and `meta.schema` are set here, and
/// `meta.accepted_at` when empty.
pub fn accept(
    root: &Path,
    case: &str,
    source_text: &str,
    mut meta: Provenance,
) -> Result<AcceptOutcome> {
    check_case(case)?;
    if meta.case.is_empty() {
        meta.case = case.to_string();
    } else if meta.case != case {
        bail!(
            "metadata for `{}` cannot be accepted as the scheduler of `{case}`",
            meta.case
        );
    }
    let existing = current(root, case)?;
    if let Some(reason) = refusal(&meta, existing.as_ref()) {
        return Ok(AcceptOutcome::Rejected { reason });
    }
    meta.schema = SCHEMA.to_string();
    meta.source_sha256 = sha256_hex(source_text);
    if meta.accepted_at.is_empty() {
        meta.accepted_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    let json = serde_json::to_string_pretty(&meta).context("cannot serialise the metadata")? + "\n";

    let d = dir(root);
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    let new_source = staged(&d, source_text)?;
    let new_meta = staged(&d, &json)?;

    let replaced = match existing {
        Some(old) => Some(retire(root, case, &old)?),
        None => None,
    };
    let (src, meta_path) = pair_paths(&d, case);
    new_source
        .persist(&src)
        .with_context(|| format!("cannot write {}", src.display()))?;
    new_meta
        .persist(&meta_path)
        .with_context(|| format!("cannot write {}", meta_path.display()))?;
    Ok(AcceptOutcome::Accepted {
        source_path: src,
        replaced,
    })
}

/// Takes the case's accepted scheduler out of the library, into `history/<case>/`, with `reason`
/// recorded in its metadata there: for a scheduler that no longer earns its place (measured
/// again and found wanting, or accepted under rules it would not pass today). Returns where its
/// source went. Afterwards the case has no accepted scheduler.
pub fn withdraw(root: &Path, case: &str, reason: &str) -> Result<PathBuf> {
    check_case(case)?;
    let reason = reason.trim();
    if reason.is_empty() {
        bail!("say why the scheduler is withdrawn (--reason): the history keeps it");
    }
    let Some(mut old) = current(root, case)? else {
        bail!("`{case}` has no accepted scheduler in bpf-generated/ to withdraw");
    };
    // The reason goes into the metadata before the pair moves: interrupted in between, the
    // scheduler is still in place, marked, and withdrawing it again finishes the move.
    old.meta.withdrawn = Some(Withdrawal {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        reason: reason.to_string(),
    });
    let json = serde_json::to_string_pretty(&old.meta).context("cannot serialise the metadata")?;
    staged(&dir(root), &(json + "\n"))?
        .persist(&old.meta_path)
        .with_context(|| format!("cannot write {}", old.meta_path.display()))?;
    retire(root, case, &old)
}

/// Moves the accepted pair `old` into `history/<case>/`; returns where its source went.
fn retire(root: &Path, case: &str, old: &Accepted) -> Result<PathBuf> {
    let hdir = history_dir(root, case);
    std::fs::create_dir_all(&hdir).with_context(|| format!("cannot create {}", hdir.display()))?;
    let base = sanitise_time(&old.meta.accepted_at);
    let mut stem = base.clone();
    let mut n = 1;
    while pair_paths(&hdir, &stem).0.exists() || pair_paths(&hdir, &stem).1.exists() {
        stem = format!("{base}-{n}");
        n += 1;
    }
    let (src, meta) = pair_paths(&hdir, &stem);
    std::fs::rename(&old.source_path, &src).with_context(|| {
        format!(
            "cannot move {} to {}",
            old.source_path.display(),
            src.display()
        )
    })?;
    std::fs::rename(&old.meta_path, &meta).with_context(|| {
        format!(
            "cannot move {} to {}",
            old.meta_path.display(),
            meta.display()
        )
    })?;
    Ok(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::SchedulerRef;
    use crate::stats::{ArmStats, IntervalMethod};

    /// Metadata for `case` whose benchmark measured `cut` and passed (or not).
    fn meta(case: &str, at: &str, cut: f64, pass: bool) -> Provenance {
        let verdict = Verdict {
            pass,
            reason: if pass {
                "cut above target".into()
            } else {
                "cut below target".into()
            },
        };
        let cut = CutEstimate {
            cut,
            ci_low: cut - 0.02,
            ci_high: cut + 0.02,
            method: IntervalMethod::WelchT,
            p_value: 0.01,
        };
        let verdict_copy = verdict.clone();
        Provenance {
            schema: SCHEMA.into(),
            case: case.into(),
            accepted_at: at.into(),
            provider: ProviderInfo {
                provider: "offline".into(),
                model: "longfirst-synth".into(),
                endpoint_host: None,
            },
            prompt: PromptInfo {
                templates: BTreeMap::from([("system".into(), "1".into())]),
                rendered_sha256: sha256_hex("prompt"),
                dialect: Default::default(),
            },
            shown_references: vec![DEFAULT_REFERENCE.into()],
            attempts: vec![Attempt {
                round: 1,
                attempt: 1,
                class: class::PASSED.into(),
                detail: String::new(),
                checker: None,
                tokens: Some(TokenUsage {
                    prompt_tokens: 1000,
                    completion_tokens: 200,
                }),
                seconds: StageSeconds {
                    generate: Some(1.0),
                    compile: Some(0.5),
                    verify: Some(3.0),
                    benchmark: Some(60.0),
                },
            }],
            total_tokens: TokenUsage {
                prompt_tokens: 1000,
                completion_tokens: 200,
            },
            estimated_cost_usd: None,
            kernel_release: "6.12.0-test".into(),
            verdict: verdict.clone(),
            cut,
            benchmark: CaseBench {
                test_id: case.into(),
                test_name: case.into(),
                scheduler: SchedulerRef {
                    kind: "file".into(),
                    path: "candidate.bpf.c".into(),
                    long_comms: vec!["long".into()],
                    classes: Default::default(),
                },
                sizes: BTreeMap::new(),
                scale: 1.0,
                long_scale: 1.0,
                bound: None,
                runs: Vec::new(),
                default: ArmStats::default(),
                custom: ArmStats::default(),
                cut: Some(cut),
                ablation: Default::default(),
                policy_cut: None,
                skeleton_cut: None,
                incumbent: Default::default(),
                incumbent_path: None,
                incumbent_sha256: None,
                vs_incumbent: None,
                incumbent_cut: None,
                production: Vec::new(),
                stopped_early: None,
                resumed_after: Vec::new(),
                retired: Vec::new(),
                data: None,
                programs: None,
                unmeasured: false,
                classifier: None,
                captured: None,
                ablation_best_cut: None,
                policy_of_best: None,
                ablation_list_cut: None,
                policy_of_list: None,
                efficiency: None,
                verdict,
                error: None,
            },
            source_sha256: String::new(),
            contribution: None,
            rounds: Vec::new(),
            confirmation: Some(crate::generate::pipeline::Confirmation {
                round: 1,
                selection_cut: Some(cut),
                selection_verdict: verdict_copy,
                holds: pass,
                seconds: 600.0,
                accepted_stands: None,
            }),
            withdrawn: None,
        }
    }

    /// Every file under `dir`, with its content.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.extend(snapshot(&p));
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn accepted(o: &AcceptOutcome) -> bool {
        matches!(o, AcceptOutcome::Accepted { .. })
    }

    /// `m` as measured head to head against `incumbent_source` (5 runs each), with the
    /// candidate's cut against it `h2h` ± 2 points.
    fn head_to_head(mut m: Provenance, incumbent_source: &str, h2h: f64) -> Provenance {
        m.benchmark.incumbent_path = Some("bpf-generated/ctest_suite.bpf.c".into());
        m.benchmark.incumbent_sha256 = Some(sha256_hex(incumbent_source));
        m.benchmark.incumbent = ArmStats {
            n: 5,
            ..Default::default()
        };
        m.benchmark.vs_incumbent = Some(CutEstimate {
            cut: h2h,
            ci_low: h2h - 0.02,
            ci_high: h2h + 0.02,
            method: IntervalMethod::WelchT,
            p_value: 0.01,
        });
        m
    }

    #[test]
    fn a_first_passing_scheduler_is_accepted_and_read_back() {
        let root = tempfile::tempdir().unwrap();
        let m = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.2, true);
        let o = accept(root.path(), "ctest_suite", "int a;\n", m).unwrap();
        assert!(accepted(&o), "{o:?}");
        let cur = current(root.path(), "ctest_suite").unwrap().unwrap();
        assert_eq!(cur.source, "int a;\n");
        assert_eq!(cur.meta.source_sha256, sha256_hex("int a;\n"));
        assert_eq!(cur.source_path, dir(root.path()).join("ctest_suite.bpf.c"));
        assert!(previous(root.path(), "ctest_suite").unwrap().is_none());
        assert_eq!(list(root.path()).unwrap().len(), 1);
        // No temporary files are left behind.
        let names: Vec<_> = snapshot(&dir(root.path())).into_keys().collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_withdrawn_scheduler_leaves_the_library_for_its_history_with_the_reason() {
        let root = tempfile::tempdir().unwrap();
        let e = withdraw(root.path(), "ctest_suite", "no better than its ablation").unwrap_err();
        assert!(e.to_string().contains("no accepted scheduler"), "{e}");
        let m = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.31, true);
        accept(root.path(), "ctest_suite", "old\n", m).unwrap();
        let e = withdraw(root.path(), "ctest_suite", "  ").unwrap_err();
        assert!(e.to_string().contains("--reason"), "{e}");
        assert!(current(root.path(), "ctest_suite").unwrap().is_some());

        let moved = withdraw(root.path(), "ctest_suite", "no better than its ablation").unwrap();
        let hist = history_dir(root.path(), "ctest_suite");
        assert_eq!(moved, hist.join("2025-06-01T10-00-00Z.bpf.c"));
        assert_eq!(current(root.path(), "ctest_suite").unwrap(), None);
        assert!(list(root.path()).unwrap().is_empty());
        let prev = previous(root.path(), "ctest_suite").unwrap().unwrap();
        assert_eq!(prev.source, "old\n");
        let w = prev.meta.withdrawn.unwrap();
        assert_eq!(w.reason, "no better than its ablation");
        assert!(w.at.ends_with('Z'), "{}", w.at);
        // With nothing accepted, the next passing candidate needs no head-to-head win.
        let next = meta("ctest_suite", "2025-06-02T10:00:00Z", 0.32, true);
        assert!(matches!(
            accept(root.path(), "ctest_suite", "new\n", next).unwrap(),
            AcceptOutcome::Accepted { replaced: None, .. }
        ));
    }

    #[test]
    fn a_head_to_head_win_replaces_the_old_one_which_moves_to_history() {
        let root = tempfile::tempdir().unwrap();
        let old = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.2, true);
        accept(root.path(), "ctest_suite", "old\n", old).unwrap();
        // A lower cut than the old one's, from another sitting: the head-to-head decides.
        let new = head_to_head(
            meta("ctest_suite", "2025-06-02T11:30:00Z", 0.15, true),
            "old\n",
            0.05,
        );
        let o = accept(root.path(), "ctest_suite", "new\n", new).unwrap();
        let hist = history_dir(root.path(), "ctest_suite");
        assert_eq!(
            o,
            AcceptOutcome::Accepted {
                source_path: dir(root.path()).join("ctest_suite.bpf.c"),
                replaced: Some(hist.join("2025-06-01T10-00-00Z.bpf.c")),
            }
        );
        assert_eq!(
            current(root.path(), "ctest_suite").unwrap().unwrap().source,
            "new\n"
        );
        let prev = previous(root.path(), "ctest_suite").unwrap().unwrap();
        assert_eq!(prev.source, "old\n");
        assert_eq!(prev.meta.cut.cut, 0.2);
        assert!(hist.join("2025-06-01T10-00-00Z.json").is_file());

        // A third, better still: history keeps both, `previous` is the newest.
        let third = head_to_head(
            meta("ctest_suite", "2025-06-03T09:00:00Z", 0.3, true),
            "new\n",
            0.04,
        );
        accept(root.path(), "ctest_suite", "third\n", third).unwrap();
        let h = history(root.path(), "ctest_suite").unwrap();
        let sources: Vec<_> = h.iter().map(|a| a.source.as_str()).collect();
        assert_eq!(sources, ["old\n", "new\n"]);
        assert_eq!(
            previous(root.path(), "ctest_suite")
                .unwrap()
                .unwrap()
                .source,
            "new\n"
        );
    }

    #[test]
    fn no_head_to_head_win_is_refused_and_nothing_changes() {
        let root = tempfile::tempdir().unwrap();
        let first = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.2, true);
        accept(root.path(), "ctest_suite", "kept\n", first).unwrap();
        let before = snapshot(root.path());
        let later = || meta("ctest_suite", "2025-06-02T10:00:00Z", 0.4, true);
        let cases = [
            // A higher cut from a separate benchmark is no evidence.
            ("no incumbent", later(), "not measured head to head"),
            // Measured against some other scheduler.
            (
                "another incumbent",
                head_to_head(later(), "other\n", 0.1),
                "not measured head to head",
            ),
            // Head to head, but the interval reaches zero or below.
            (
                "a tie",
                head_to_head(later(), "kept\n", 0.01),
                "does not beat",
            ),
            (
                "slower",
                head_to_head(later(), "kept\n", -0.1),
                "does not beat",
            ),
        ];
        for (what, m, expect) in cases {
            let o = accept(root.path(), "ctest_suite", "new\n", m).unwrap();
            match o {
                AcceptOutcome::Rejected { reason } => {
                    assert!(reason.contains(expect), "{what}: {reason}")
                }
                o => panic!("{what} was accepted: {o:?}"),
            }
            assert_eq!(snapshot(root.path()), before, "{what} changed the disk");
        }
    }

    #[test]
    fn a_failing_verdict_is_refused_even_with_a_better_cut() {
        let root = tempfile::tempdir().unwrap();
        let m = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.5, false);
        let o = accept(root.path(), "ctest_suite", "x\n", m).unwrap();
        match o {
            AcceptOutcome::Rejected { reason } => assert!(reason.contains("FAIL"), "{reason}"),
            o => panic!("accepted: {o:?}"),
        }
        assert!(snapshot(root.path()).is_empty());
        assert!(current(root.path(), "ctest_suite").unwrap().is_none());
    }

    #[test]
    fn a_cut_not_measured_apart_from_the_runs_that_chose_it_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let mut unconfirmed = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.4, true);
        unconfirmed.confirmation = None;
        let mut failed = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.4, true);
        failed.confirmation.as_mut().unwrap().holds = false;
        for (m, says) in [(unconfirmed, "chose it"), (failed, "did not hold up")] {
            match accept(root.path(), "ctest_suite", "x\n", m).unwrap() {
                AcceptOutcome::Rejected { reason } => assert!(reason.contains(says), "{reason}"),
                o => panic!("accepted: {o:?}"),
            }
        }
        assert!(snapshot(root.path()).is_empty());

        // Against an accepted scheduler, losing head to head is what it is told first.
        let old = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.2, true);
        accept(root.path(), "ctest_suite", "old\n", old).unwrap();
        let mut m = head_to_head(
            meta("ctest_suite", "2025-06-02T10:00:00Z", 0.4, true),
            "old\n",
            0.0,
        );
        m.confirmation = None;
        match accept(root.path(), "ctest_suite", "new\n", m).unwrap() {
            AcceptOutcome::Rejected { reason } => {
                assert!(reason.contains("head to head"), "{reason}")
            }
            o => panic!("accepted: {o:?}"),
        }
    }

    #[test]
    fn a_verdict_that_disagrees_with_its_benchmark_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let mut m = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.5, false);
        m.verdict.pass = true;
        let o = accept(root.path(), "ctest_suite", "x\n", m).unwrap();
        assert!(!accepted(&o), "{o:?}");
        assert!(snapshot(root.path()).is_empty());
    }

    #[test]
    fn metadata_round_trips_and_an_empty_date_is_filled() {
        let root = tempfile::tempdir().unwrap();
        let m = meta("ctest_suite", "", 0.2, true);
        accept(root.path(), "ctest_suite", "x\n", m.clone()).unwrap();
        let cur = current(root.path(), "ctest_suite").unwrap().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(&cur.meta.accepted_at).is_ok());
        let mut expect = m;
        expect.accepted_at = cur.meta.accepted_at.clone();
        expect.source_sha256 = sha256_hex("x\n");
        assert_eq!(cur.meta, expect);
    }

    #[test]
    fn a_source_edited_by_hand_or_without_metadata_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let m = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.2, true);
        accept(root.path(), "ctest_suite", "x\n", m).unwrap();
        let src = dir(root.path()).join("ctest_suite.bpf.c");
        std::fs::write(&src, "edited\n").unwrap();
        let e = current(root.path(), "ctest_suite").unwrap_err();
        assert!(format!("{e:#}").contains("does not match"), "{e:#}");
        std::fs::remove_file(dir(root.path()).join("ctest_suite.json")).unwrap();
        let e = current(root.path(), "ctest_suite").unwrap_err();
        assert!(format!("{e:#}").contains("has no metadata"), "{e:#}");
    }

    #[test]
    fn mismatched_or_unsafe_case_ids_are_errors() {
        let root = tempfile::tempdir().unwrap();
        let m = meta("ctest_suite", "2025-06-01T10:00:00Z", 0.2, true);
        assert!(accept(root.path(), "compression", "x", m.clone()).is_err());
        assert!(accept(root.path(), "../etc", "x", m).is_err());
        assert!(current(root.path(), "a/b").is_err());
    }

    #[test]
    fn details_are_one_short_line() {
        assert_eq!(short_detail("a\n  b\tc"), "a b c");
        let long = "x".repeat(1000);
        assert_eq!(short_detail(&long).chars().count(), DETAIL_LIMIT);
        assert_eq!(
            sanitise_time("2025-06-01T10:00:00+02:00"),
            "2025-06-01T10-00-00-02-00"
        );
    }
}
