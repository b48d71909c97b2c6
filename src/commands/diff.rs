//! `schedgen diff CASE`: what the model changed. A unified diff (3 lines of context) of the
//! accepted scheduler against the reference it was shown, the scheduler it replaced, or any file,
//! so a reviewer reads the change rather than the whole source.
//!
//! The accepted scheduler is always the new side (`+++`). The exit status is 0 whether or not the
//! files differ: this is for reading, not for scripts testing equality.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use similar::TextDiff;

use super::library::shown;
use super::EXIT_OK;
use crate::bench::table::stdout_color;
use crate::cli::DiffArgs;
use crate::library::{self, Accepted, DiffAgainst, DEFAULT_REFERENCE};
use crate::paths::ProjectPaths;

/// One side of a comparison: a label for the header and the text.
struct Side {
    label: String,
    text: String,
}

fn read_side(path: &Path, label: String) -> Result<Side> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Side { label, text })
}

/// The accepted scheduler for `case`, or an error that lists the cases that have one.
fn accepted(paths: &ProjectPaths, case: &str) -> Result<Accepted> {
    let dir = library::dir(&paths.root);
    let on_disk = ["bpf.c", "json"]
        .iter()
        .any(|ext| dir.join(format!("{case}.{ext}")).is_file());
    match library::current(&paths.root, case) {
        Ok(Some(a)) => return Ok(a),
        // A damaged pair: say what is wrong with it rather than "none".
        Err(e) if on_disk => return Err(e),
        _ => {}
    }
    let have: Vec<String> = library::list(&paths.root)
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.meta.case)
        .collect();
    let which = if have.is_empty() {
        "no case has one yet (run `schedgen generate --test ID`)".to_string()
    } else {
        format!("cases with one: {}", have.join(", "))
    };
    if paths.cases().join(format!("{case}.toml")).is_file() {
        bail!("no accepted scheduler for `{case}` yet; {which}");
    }
    bail!("`{case}` is not a case with an accepted scheduler; {which}");
}

/// The old sides to compare the accepted scheduler with.
fn old_sides(paths: &ProjectPaths, a: &Accepted, against: &DiffAgainst) -> Result<Vec<Side>> {
    let root = &paths.root;
    match against {
        DiffAgainst::Reference => {
            let refs: Vec<String> = if a.meta.shown_references.is_empty() {
                vec![DEFAULT_REFERENCE.to_string()]
            } else {
                a.meta.shown_references.clone()
            };
            refs.iter()
                .map(|r| {
                    read_side(&root.join(r), format!("{r} (reference)")).with_context(|| {
                        format!("the reference {r} that {} was shown", a.meta.case)
                    })
                })
                .collect()
        }
        DiffAgainst::Previous => {
            let Some(prev) = library::previous(root, &a.meta.case)? else {
                bail!(
                    "`{}` has no previous accepted scheduler: {} is empty (the current one was \
                     the first accepted); try --against reference",
                    a.meta.case,
                    shown(root, &library::history_dir(root, &a.meta.case))
                );
            };
            Ok(vec![Side {
                label: format!(
                    "{} (accepted {})",
                    shown(root, &prev.source_path),
                    prev.meta.accepted_at
                ),
                text: prev.source,
            }])
        }
        DiffAgainst::File(p) => Ok(vec![read_side(p, p.display().to_string())?]),
    }
}

/// The unified diff of `old` → `new`, or `None` when they are the same.
fn unified(old: &Side, new: &Side, color: bool) -> Option<String> {
    if old.text == new.text {
        return None;
    }
    let diff = TextDiff::from_lines(&old.text, &new.text);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&old.label, &new.label)
        .to_string();
    if !color {
        return Some(text);
    }
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let code = if i < 2 {
            "1"
        } else if line.starts_with("@@") {
            "36"
        } else if line.starts_with('-') {
            "31"
        } else if line.starts_with('+') {
            "32"
        } else {
            ""
        };
        if code.is_empty() {
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "\x1b[{code}m{line}\x1b[0m");
        }
    }
    Some(out)
}

pub fn run(paths: &ProjectPaths, args: &DiffArgs) -> Result<u8> {
    let a = accepted(paths, &args.case)?;
    let new = Side {
        label: format!(
            "{} (accepted {})",
            shown(&paths.root, &a.source_path),
            a.meta.accepted_at
        ),
        text: a.source.clone(),
    };
    let color = stdout_color();
    for old in old_sides(paths, &a, &args.against)? {
        match unified(&old, &new, color) {
            Some(d) => print!("{d}"),
            None => println!("identical: {} and {}", old.label, new.label),
        }
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(label: &str, text: &str) -> Side {
        Side {
            label: label.into(),
            text: text.into(),
        }
    }

    #[test]
    fn diff_has_headers_context_and_colour_only_on_request() {
        let old = side("a.bpf.c", "1\n2\n3\n4\n5\n6\n7\n8\n");
        let new = side("b.bpf.c", "1\n2\n3\n4\nfive\n6\n7\n8\n");
        let plain = unified(&old, &new, false).unwrap();
        assert!(
            plain.starts_with("--- a.bpf.c\n+++ b.bpf.c\n@@ -2,7 +2,7 @@\n"),
            "{plain}"
        );
        assert!(plain.contains("\n-5\n+five\n"), "{plain}");
        assert!(!plain.contains('\x1b'));
        let coloured = unified(&old, &new, true).unwrap();
        assert!(coloured.contains("\x1b[31m-5\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[32m+five\x1b[0m"), "{coloured}");
        assert!(unified(&old, &old, false).is_none());
    }
}
