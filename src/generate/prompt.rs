//! Prompt templates: versioned text files in `prompts/` (`<name>.v<N>.md`), rendered by
//! replacing `{{key}}` placeholders. A placeholder left without a value is an error, not an empty
//! string: a prompt with a hole in it would silently mislead the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// One loaded template.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub version: u32,
    pub path: PathBuf,
    pub text: String,
}

impl Template {
    /// The newest version of template `name` in `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<Template> {
        let mut best: Option<(u32, PathBuf)> = None;
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read prompt templates in {}", dir.display()))?;
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = file.strip_prefix(&format!("{name}.v")) else {
                continue;
            };
            let Some(v) = rest.strip_suffix(".md").and_then(|v| v.parse::<u32>().ok()) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, e.path()));
            }
        }
        let (version, path) = best
            .with_context(|| format!("no prompt template `{name}.v<N>.md` in {}", dir.display()))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Template {
            name: name.into(),
            version,
            path,
            text,
        })
    }

    /// `name.vN`, as recorded in metadata.
    pub fn id(&self) -> String {
        format!("{}.v{}", self.name, self.version)
    }

    pub fn render(&self, values: &BTreeMap<&str, String>) -> Result<String> {
        render(&self.text, values).with_context(|| format!("rendering {}", self.path.display()))
    }
}

pub fn render(text: &str, values: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unterminated placeholder");
        };
        let key = after[..end].trim();
        match values.get(key) {
            Some(v) => out.push_str(v),
            None => bail!("no value for placeholder {{{{{key}}}}}"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Hash of a rendered conversation, recorded with an accepted scheduler.
pub fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses_holes() {
        let mut v = BTreeMap::new();
        v.insert("a", "x".to_string());
        assert_eq!(render("1 {{a}} 2 {{ a }}", &v).unwrap(), "1 x 2 x");
        assert!(render("{{b}}", &v)
            .unwrap_err()
            .to_string()
            .contains("{{b}}"));
    }

    #[test]
    fn the_project_templates_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        for name in ["system", "generate", "repair", "improve"] {
            let t = Template::load(&dir, name).unwrap();
            assert!(t.version >= 1 && !t.text.is_empty());
        }
    }
}
