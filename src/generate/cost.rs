//! What a generate run cost: token counts times a price table.
//!
//! Prices change and local models are free, so the built-in table is small (a few hosted OpenAI
//! models, USD per million tokens as listed on the provider's pricing page in mid-2025) and the
//! user can override or extend it with a file named by `$SCHEDGEN_PRICES` (or passed to
//! [`PriceTable::load`]). A model that is in neither has an *unknown* cost, never zero: the run's
//! metadata then says so instead of claiming it was free.
//!
//! The file is TOML, or JSON when its name ends in `.json`. Entries replace built-in ones of the
//! same name; the rest of the built-in table stays:
//!
//! ```toml
//! # USD per 1 million tokens
//! [models."gpt-4.1"]
//! input = 2.0      # prompt tokens
//! output = 8.0     # completion tokens
//!
//! [models."qwen2.5-coder:32b"]   # a local server: free
//! input = 0.0
//! output = 0.0
//! ```
//!
//! ```json
//! { "models": { "gpt-4.1": { "input": 2.0, "output": 8.0 } } }
//! ```
//!
//! A name matches a model exactly, or as a prefix followed by `-` (so `gpt-4o` prices the dated
//! snapshot `gpt-4o-2024-08-06`, and the longer `gpt-4o-mini` wins for `gpt-4o-mini-...`). A
//! router prefix such as `openai/` is ignored when the full name is not listed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::llm::{CallRecord, TokenUsage};

/// Environment variable naming a price file.
pub const PRICES_ENV: &str = "SCHEDGEN_PRICES";

/// USD per one million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt (input) tokens.
    pub input: f64,
    /// Per million completion (output) tokens.
    pub output: f64,
}

/// The layout of a price file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceFile {
    pub models: BTreeMap<String, Price>,
}

/// Built-in prices, USD per million tokens (input, output).
const BUILTIN: &[(&str, f64, f64)] = &[
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("o3", 2.00, 8.00),
    ("o4-mini", 1.10, 4.40),
    ("gpt-5", 1.25, 10.00),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5-nano", 0.05, 0.40),
];

/// Model name → price.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, Price>,
}

/// The estimated cost of several calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Total in USD; `None` when any call could not be priced (unknown model or no usage).
    pub usd: Option<f64>,
    /// Calls that had no price or no token counts.
    pub unpriced_calls: u32,
}

impl PriceTable {
    /// The built-in table only.
    pub fn builtin() -> PriceTable {
        PriceTable {
            models: BUILTIN
                .iter()
                .map(|&(name, input, output)| (name.to_string(), Price { input, output }))
                .collect(),
        }
    }

    /// The built-in table overlaid with the file named by `$SCHEDGEN_PRICES`, if set.
    pub fn from_env() -> Result<PriceTable> {
        match std::env::var_os(PRICES_ENV) {
            Some(path) if !path.is_empty() => PriceTable::load(Path::new(&path))
                .with_context(|| format!("the price file named by ${PRICES_ENV} is unusable")),
            _ => Ok(PriceTable::builtin()),
        }
    }

    /// The built-in table overlaid with the price file at `path`.
    pub fn load(path: &Path) -> Result<PriceTable> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read price file {}", path.display()))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let file: PriceFile = if is_json {
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a price file: expected {{\"models\": {{\"NAME\": {{\"input\": \
                     USD, \"output\": USD}}}}}} (USD per million tokens)",
                    path.display()
                )
            })?
        } else {
            toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not a price file: expected [models.\"NAME\"] tables with input = USD \
                     and output = USD (per million tokens); name it *.json for JSON",
                    path.display()
                )
            })?
        };
        let mut table = PriceTable::builtin();
        table
            .overlay(file)
            .with_context(|| format!("bad price in {}", path.display()))?;
        Ok(table)
    }

    /// Adds or replaces the file's entries.
    pub fn overlay(&mut self, file: PriceFile) -> Result<()> {
        for (name, price) in file.models {
            for (what, v) in [("input", price.input), ("output", price.output)] {
                if !v.is_finite() || v < 0.0 {
                    bail!("model {name:?}: {what} price {v} must be a number >= 0");
                }
            }
            self.models.insert(name, price);
        }
        Ok(())
    }

    /// The entry that prices `model`, with its name.
    pub fn price(&self, model: &str) -> Option<(&str, Price)> {
        self.lookup(model).or_else(|| {
            let (_, bare) = model.rsplit_once('/')?;
            self.lookup(bare)
        })
    }

    fn lookup(&self, model: &str) -> Option<(&str, Price)> {
        if let Some((name, price)) = self.models.get_key_value(model) {
            return Some((name.as_str(), *price));
        }
        self.models
            .iter()
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(name, price)| (name.as_str(), *price))
    }

    /// USD for one call's tokens, or `None` when the model has no price.
    pub fn estimate(&self, model: &str, usage: TokenUsage) -> Option<f64> {
        let (_, price) = self.price(model)?;
        Some(
            (usage.prompt_tokens as f64 * price.input
                + usage.completion_tokens as f64 * price.output)
                / 1e6,
        )
    }

    /// The cost of a run's calls, priced by the model asked for, else the one that answered.
    pub fn estimate_calls(&self, calls: &[CallRecord]) -> CostEstimate {
        let mut usd = 0.0;
        let mut unpriced_calls = 0;
        for call in calls {
            let priced = call.usage.and_then(|usage| {
                self.estimate(&call.model, usage).or_else(|| {
                    call.served_model
                        .as_deref()
                        .and_then(|m| self.estimate(m, usage))
                })
            });
            match priced {
                Some(v) => usd += v,
                None => unpriced_calls += 1,
            }
        }
        CostEstimate {
            usd: (unpriced_calls == 0).then_some(usd),
            unpriced_calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt_tokens: u64, completion_tokens: u64) -> TokenUsage {
        TokenUsage {
            prompt_tokens,
            completion_tokens,
        }
    }

    fn call(model: &str, usage: Option<TokenUsage>) -> CallRecord {
        CallRecord {
            model: model.to_string(),
            served_model: None,
            usage,
            latency_s: 1.0,
            attempts: 1,
            failures: vec![],
            finish_reason: None,
            warnings: vec![],
        }
    }

    #[test]
    fn prices_known_models_and_snapshots() {
        let t = PriceTable::builtin();
        let cost = t.estimate("gpt-4.1", usage(1_000_000, 500_000)).unwrap();
        assert!((cost - 6.0).abs() < 1e-9, "{cost}");
        assert_eq!(t.price("gpt-4o-2024-08-06").unwrap().0, "gpt-4o");
        assert_eq!(t.price("gpt-4o-mini-2024-07-18").unwrap().0, "gpt-4o-mini");
        assert_eq!(t.price("openai/gpt-4.1-mini").unwrap().0, "gpt-4.1-mini");
        // "gpt-4o" must not price "gpt-4oX": only a '-' may follow the prefix.
        assert!(t.price("gpt-4ox").is_none());
    }

    #[test]
    fn unknown_model_is_unknown_not_free() {
        let t = PriceTable::builtin();
        assert_eq!(t.estimate("llama3.1:8b", usage(100, 100)), None);
        let e = t.estimate_calls(&[
            call("gpt-4o", Some(usage(10, 10))),
            call("llama3.1:8b", Some(usage(10, 10))),
            call("gpt-4o", None),
        ]);
        assert_eq!(e.usd, None);
        assert_eq!(e.unpriced_calls, 2);
    }

    #[test]
    fn files_override_and_extend_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("prices.toml");
        std::fs::write(
            &toml_path,
            "[models.\"gpt-4.1\"]\ninput = 1.0\noutput = 1.0\n\n\
             [models.\"llama3.1:8b\"]\ninput = 0.0\noutput = 0.0\n",
        )
        .unwrap();
        let t = PriceTable::load(&toml_path).unwrap();
        assert_eq!(
            t.estimate("gpt-4.1", usage(1_000_000, 1_000_000)),
            Some(2.0)
        );
        assert_eq!(t.estimate("llama3.1:8b", usage(5, 5)), Some(0.0));
        assert!(t.price("gpt-4o").is_some(), "built-ins stay");

        let json_path = dir.path().join("prices.json");
        std::fs::write(
            &json_path,
            r#"{"models": {"my-model": {"input": 3, "output": 4}}}"#,
        )
        .unwrap();
        let t = PriceTable::load(&json_path).unwrap();
        assert_eq!(t.estimate("my-model", usage(1_000_000, 0)), Some(3.0));
        let e = t.estimate_calls(&[call("my-model", Some(usage(0, 1_000_000)))]);
        assert_eq!(e.usd, Some(4.0));
    }

    #[test]
    fn bad_files_say_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(&p, "[models.x]\ninput = 1\n").unwrap();
        let e = format!("{:#}", PriceTable::load(&p).unwrap_err());
        assert!(e.contains("not a price file"), "{e}");
        std::fs::write(&p, "[models.x]\ninput = -1\noutput = 1\n").unwrap();
        let e = format!("{:#}", PriceTable::load(&p).unwrap_err());
        assert!(e.contains("must be a number >= 0"), "{e}");
        let e = format!(
            "{:#}",
            PriceTable::load(&dir.path().join("none")).unwrap_err()
        );
        assert!(e.contains("cannot read price file"), "{e}");
    }
}
