//! Test case definitions: load `cases/*.toml`, validate them, and apply a scale.
//!
//! A case is data, not code: every command is a POSIX shell snippet and every size is a number the
//! runner multiplies by `--scale`. Validation happens at load time so that a typo in a case file is
//! reported with the file name and the field at fault before anything runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Number of short tasks every case starts.
pub const SHORT_TASKS: usize = 39;
/// Number of long tasks every case starts.
pub const LONG_TASKS: usize = 1;

/// One test case as written in `cases/<id>.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub name: String,
    pub category: Category,
    pub description: String,
    /// The cut a long-task-first scheduler is expected to reach (0.30–0.35 in the original suite).
    pub expected_improvement: f64,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Size parameters; `--scale` multiplies each of them.
    #[serde(default)]
    pub sizes: BTreeMap<String, toml::Value>,
    /// Fixed parameters, never scaled.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// How a scheduler can recognise the long task's processes.
    pub long_task: TaskHint,
    #[serde(default)]
    pub short_task: Option<TaskHint>,
    pub commands: Commands,
    /// Where a case file kept outside the checkout keeps its scripts and data generators:
    /// `<id>/` beside the file (`$CASE_ASSETS`). Set by [`find`], never by the file itself;
    /// `None` for the checkout's own cases, whose assets are in `assets/<id>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_assets: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    FileProcessing,
    Media,
    SoftwareTesting,
    VersionControl,
    DataProcessing,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Category::FileProcessing => "file_processing",
            Category::Media => "media",
            Category::SoftwareTesting => "software_testing",
            Category::VersionControl => "version_control",
            Category::DataProcessing => "data_processing",
        };
        f.write_str(s)
    }
}

/// Something a case needs on the machine, and the Debian package that provides it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// A command that must be found on `PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A Python module that `$PYTHON` must be able to import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_module: Option<String>,
    /// Debian package that provides it.
    pub package: String,
}

impl Dependency {
    /// What is checked, for messages: `ffmpeg` or `python module pandas`.
    pub fn what(&self) -> String {
        match (&self.command, &self.python_module) {
            (Some(c), _) => c.clone(),
            (None, Some(m)) => format!("python module {m}"),
            (None, None) => "?".into(),
        }
    }
}

/// Names by which a scheduler can tell a group's processes apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskHint {
    /// `comm` of every process the task runs (at most 15 bytes each, as the kernel truncates).
    #[serde(default)]
    pub comm: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// Generates the case's input data into `$DATA`; cached per case definition and scale.
    #[serde(default)]
    pub setup: Option<String>,
    pub short: String,
    pub long: String,
    /// Runs after every run, whatever happened.
    #[serde(default)]
    pub cleanup: Option<String>,
}

/// Named scales: `tiny` keeps CI fast, `full` is the size meant for a 4–8 core machine.
pub const SCALE_PRESETS: &[(&str, f64)] = &[
    ("tiny", 0.01),
    ("small", 0.1),
    ("medium", 0.3),
    ("full", 1.0),
];

/// Parse `--scale`: a positive number or one of [`SCALE_PRESETS`].
pub fn parse_scale(s: &str) -> Result<f64, String> {
    if let Some((_, v)) = SCALE_PRESETS.iter().find(|(n, _)| *n == s) {
        return Ok(*v);
    }
    let names: Vec<&str> = SCALE_PRESETS.iter().map(|(n, _)| *n).collect();
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!(
            "expected a positive number or one of {}",
            names.join(", ")
        )),
    }
}

impl Case {
    /// Read and validate one case file.
    pub fn load(path: &Path) -> Result<Case> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read case file {}", path.display()))?;
        let case: Case = toml::from_str(&text)
            .with_context(|| format!("malformed case file {}", path.display()))?;
        if case.own_assets.is_some() {
            bail!(
                "invalid case file {}: unknown field `own_assets` (schedgen sets it: a case \
                 file's assets are the `<id>/` directory beside it)",
                path.display()
            );
        }
        case.validate()
            .with_context(|| format!("invalid case file {}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != case.id {
            bail!(
                "invalid case file {}: id `{}` does not match the file name (expected `{stem}`)",
                path.display(),
                case.id
            );
        }
        Ok(case)
    }

    fn validate(&self) -> Result<()> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("id `{}` must match [a-z0-9_]+", self.id);
        }
        if self.name.trim().is_empty() {
            bail!("name is empty");
        }
        if !(0.0..1.0).contains(&self.expected_improvement) {
            bail!(
                "expected_improvement {} must be a fraction in [0, 1)",
                self.expected_improvement
            );
        }
        for d in &self.dependencies {
            match (&d.command, &d.python_module) {
                (Some(_), Some(_)) => {
                    bail!(
                        "dependency on package `{}` names both a command and a python_module",
                        d.package
                    )
                }
                (None, None) => {
                    bail!(
                        "dependency on package `{}` names neither a command nor a python_module",
                        d.package
                    )
                }
                _ => {}
            }
        }
        for k in self.sizes.keys().chain(self.params.keys()) {
            if !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                bail!("parameter name `{k}` must match [a-z0-9_]+ (it becomes an environment variable)");
            }
            if self.sizes.contains_key(k) && self.params.contains_key(k) {
                bail!("`{k}` is both a size and a param");
            }
        }
        for (k, v) in &self.sizes {
            if !k.starts_with("short_") && !k.starts_with("long_") {
                bail!("size `{k}` must start with short_ or long_ (auto-sizing scales the long task's sizes on their own)");
            }
            match v {
                toml::Value::Integer(i) if *i > 0 => {}
                toml::Value::Float(f) if *f > 0.0 => {}
                _ => bail!("size `{k}` must be a positive number, got {v}"),
            }
        }
        for (k, v) in &self.params {
            match v {
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::String(_) => {}
                _ => bail!("param `{k}` must be a number or a string, got {v}"),
            }
        }
        let hints = self
            .long_task
            .comm
            .iter()
            .chain(self.short_task.iter().flat_map(|h| h.comm.iter()));
        for c in hints {
            if c.is_empty() || c.len() > 15 {
                bail!("comm `{c}` must be 1 to 15 bytes long (the kernel truncates comm to 15)");
            }
        }
        if self.commands.short.trim().is_empty() || self.commands.long.trim().is_empty() {
            bail!("commands.short and commands.long must not be empty");
        }
        Ok(())
    }

    /// The sizes after scaling, as the strings exported to the commands' environment.
    pub fn scaled_sizes(&self, scale: f64) -> BTreeMap<String, String> {
        self.sizes_for(scale, 1.0)
    }

    /// Sizes scaled by `scale`, and the long task's (`long_*`) additionally by `long_scale`:
    /// auto-sizing stretches the long task relative to the short ones.
    pub fn sizes_for(&self, scale: f64, long_scale: f64) -> BTreeMap<String, String> {
        self.sizes
            .iter()
            .map(|(k, v)| {
                let f = if k.starts_with("long_") {
                    scale * long_scale
                } else {
                    scale
                };
                let s = match v {
                    toml::Value::Integer(i) => ((*i as f64 * f).round() as i64).max(1).to_string(),
                    toml::Value::Float(x) => format_float(x * f),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }

    /// The scale the short tasks' sizes really have at `scale` once integers are rounded:
    /// the mean ratio of each scaled short size to its nominal value (`scale` when the case has
    /// none). At small scales a size of 60 becomes 1 or 2, far off `scale · 60`.
    pub fn effective_scale(&self, scale: f64) -> f64 {
        let scaled = self.sizes_for(scale, 1.0);
        let ratios: Vec<f64> = self
            .sizes
            .iter()
            .filter(|(k, _)| !k.starts_with("long_"))
            .filter_map(|(k, v)| {
                let nominal = match v {
                    toml::Value::Integer(i) => *i as f64,
                    toml::Value::Float(x) => *x,
                    _ => return None,
                };
                let now: f64 = scaled.get(k)?.parse().ok()?;
                (nominal > 0.0).then(|| now / nominal)
            })
            .collect();
        if ratios.is_empty() {
            scale
        } else {
            ratios.iter().sum::<f64>() / ratios.len() as f64
        }
    }

    /// Fixed parameters as exported strings.
    pub fn param_values(&self) -> BTreeMap<String, String> {
        self.params
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Float(f) => format_float(*f),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }
}

fn format_float(f: f64) -> String {
    let s = format!("{f:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

/// All cases of a directory, sorted by id. Malformed files are errors, not silently skipped:
/// a case that vanishes from `list` would be worse than a loud failure.
pub fn load_all(dir: &Path) -> Result<Vec<Case>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the cases directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut cases = paths
        .iter()
        .map(|p| Case::load(p))
        .collect::<Result<Vec<_>>>()?;
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(cases)
}

/// Where workloads that are not part of the suite live (`list` and `--all` leave them out;
/// `--test ID` finds them).
pub const EXTRA_DIR: &str = "extra";

/// Where the checkout keeps a case of this id: in the suite, then among the extra workloads.
fn checkout_files(dir: &Path, id: &str) -> [PathBuf; 2] {
    let file = format!("{id}.toml");
    [dir.join(&file), dir.join(EXTRA_DIR).join(file)]
}

/// Whether what the user passed as a case names a file rather than an id.
fn names_a_file(id: &str) -> bool {
    id.ends_with(".toml") || id.contains('/')
}

/// Find one case: by id (in the suite, then among the extra workloads), with a helpful error
/// listing the known ids, or from a case file anywhere (`my/case.toml`), whose id must not be
/// one of the checkout's: results and the library are keyed by id.
pub fn find(dir: &Path, id: &str) -> Result<Case> {
    if names_a_file(id) {
        let path = std::path::absolute(id).with_context(|| format!("cannot resolve {id}"))?;
        let mut case = Case::load(&path)?;
        if let Some(own) = checkout_files(dir, &case.id)
            .into_iter()
            .find(|p| p.exists())
        {
            if std::fs::canonicalize(&own).ok() == std::fs::canonicalize(&path).ok() {
                return Ok(case);
            }
            bail!(
                "{id}: its id `{}` is already the checkout's {}; give your case another id \
                 (and file name), since results and accepted schedulers are kept by id",
                case.id,
                own.display()
            );
        }
        case.own_assets = path.parent().map(|d| d.join(&case.id));
        return Ok(case);
    }
    for path in checkout_files(dir, id) {
        if path.exists() {
            return Case::load(&path);
        }
    }
    let known = load_all(dir)
        .map(|cs| cs.into_iter().map(|c| c.id).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    bail!("unknown test case `{id}` (known: {known}); run `schedgen list`")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "demo"
name = "Demo"
category = "software_testing"
description = "d"
expected_improvement = 0.3
[[dependencies]]
command = "sh"
package = "dash"
[sizes]
short_iters = 100
long_secs = 2.5
[params]
width = 640
[long_task]
comm = ["long_demo"]
[commands]
short = "true"
long = "true"
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_case_file_anywhere_keeps_its_assets_beside_it() {
        let checkout = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let file = write(elsewhere.path(), "demo.toml", GOOD);
        let c = find(checkout.path(), file.to_str().unwrap()).unwrap();
        assert_eq!(c.id, "demo");
        assert_eq!(c.own_assets, Some(elsewhere.path().join("demo")));
        // An id is found in the checkout, whose cases use its assets/<id>.
        write(checkout.path(), "demo.toml", GOOD);
        assert_eq!(find(checkout.path(), "demo").unwrap().own_assets, None);
    }

    #[test]
    fn a_case_file_may_not_take_a_checkout_case_id() {
        let checkout = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let own = write(checkout.path(), "demo.toml", GOOD);
        let file = write(elsewhere.path(), "demo.toml", GOOD);
        let err = format!(
            "{:#}",
            find(checkout.path(), file.to_str().unwrap()).unwrap_err()
        );
        assert!(
            err.contains("already the checkout's") && err.contains("another id"),
            "{err}"
        );
        // The checkout's own file, named by its path, is that case.
        let c = find(checkout.path(), own.to_str().unwrap()).unwrap();
        assert_eq!(c.own_assets, None);
    }

    #[test]
    fn a_case_file_cannot_set_where_its_assets_are() {
        let d = tempfile::tempdir().unwrap();
        let text = GOOD.replace(
            "[[dependencies]]",
            "own_assets = \"/etc\"\n[[dependencies]]",
        );
        let err = format!(
            "{:#}",
            Case::load(&write(d.path(), "demo.toml", &text)).unwrap_err()
        );
        assert!(err.contains("own_assets"), "{err}");
        let err = format!(
            "{:#}",
            find(d.path(), d.path().join("missing.toml").to_str().unwrap()).unwrap_err()
        );
        assert!(err.contains("cannot read case file"), "{err}");
    }

    #[test]
    fn loads_and_scales() {
        let d = tempfile::tempdir().unwrap();
        let c = Case::load(&write(d.path(), "demo.toml", GOOD)).unwrap();
        let s = c.scaled_sizes(0.01);
        assert_eq!(s["short_iters"], "1");
        assert_eq!(s["long_secs"], "0.025");
        assert_eq!(c.scaled_sizes(2.0)["short_iters"], "200");
        let auto = c.sizes_for(1.0, 4.0);
        assert_eq!(
            (auto["short_iters"].as_str(), auto["long_secs"].as_str()),
            ("100", "10")
        );
        let auto = c.sizes_for(1.0, 4.0);
        assert_eq!(
            (auto["short_iters"].as_str(), auto["long_secs"].as_str()),
            ("100", "10")
        );
        assert_eq!(c.param_values()["width"], "640");
    }

    #[test]
    fn the_effective_scale_is_that_of_the_rounded_short_sizes() {
        let d = tempfile::tempdir().unwrap();
        let c = Case::load(&write(d.path(), "demo.toml", GOOD)).unwrap();
        // short_iters = 100 rounds to 1 at 0.012 (a scale of 0.01), to 5 at 0.047.
        assert!((c.effective_scale(0.012) - 0.01).abs() < 1e-12);
        assert!((c.effective_scale(0.047) - 0.05).abs() < 1e-12);
        assert!((c.effective_scale(2.0) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_case_need_not_name_its_processes() {
        // Real workloads do not rename their programs: the profile learns what separates them.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("demo.toml");
        std::fs::write(&p, GOOD.replace("comm = [\"long_demo\"]", "comm = []")).unwrap();
        assert!(Case::load(&p).unwrap().long_task.comm.is_empty());
    }

    #[test]
    fn rejects_bad_files_with_the_reason() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("id = \"demo\"\nname=", "malformed"),
            (
                &GOOD.replace("long_demo", "a_name_longer_than_15") as &str,
                "15 bytes",
            ),
            (
                &GOOD.replace("short_iters = 100", "short_iters = -3"),
                "positive",
            ),
            (
                &GOOD.replace("expected_improvement = 0.3", "expected_improvement = 3"),
                "fraction",
            ),
            (&GOOD.replace("command = \"sh\"", ""), "neither"),
            (
                &GOOD.replace("name = \"Demo\"", "name = \"Demo\"\nbogus = 1"),
                "unknown field",
            ),
        ];
        for (text, want) in cases {
            let err = Case::load(&write(d.path(), "demo.toml", text)).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(want), "error `{msg}` should mention `{want}`");
            assert!(
                msg.contains("demo.toml"),
                "error `{msg}` should name the file"
            );
        }
        let err = Case::load(&write(d.path(), "other.toml", GOOD)).unwrap_err();
        assert!(format!("{err:#}").contains("does not match the file name"));
    }

    #[test]
    fn scale_presets_and_numbers() {
        assert_eq!(parse_scale("tiny"), Ok(0.01));
        assert_eq!(parse_scale("0.5"), Ok(0.5));
        assert!(parse_scale("0").is_err());
        assert!(parse_scale("huge").is_err());
    }

    #[test]
    fn unknown_case_lists_known_ids() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "demo.toml", GOOD);
        let err = find(d.path(), "nope").unwrap_err().to_string();
        assert!(
            err.contains("unknown test case `nope`") && err.contains("demo"),
            "{err}"
        );
    }
}
