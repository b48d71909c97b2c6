//! What a model contributed: a reply compared with the reference schedulers its prompt showed.
//!
//! Comments and whitespace do not count. A reply whose code is the reference's is a copy; one
//! that differs only in numeric constants changed constants (and says which); anything else is
//! the model's own code.

use serde::{Deserialize, Serialize};

/// How a candidate relates to the references shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Contribution {
    /// The code of `reference`, comments and whitespace aside.
    Copy { reference: String },
    /// `reference` with only numeric constants changed: `(old, new)` in order.
    ConstantsOnly {
        reference: String,
        changed: Vec<(String, String)>,
    },
    /// Code of its own.
    Changed,
}

impl Contribution {
    /// One phrase for summaries: `a copy of X`, `X with constants changed (…)`, `its own code`.
    pub fn describe(&self) -> String {
        match self {
            Contribution::Copy { reference } => format!("a copy of {reference}"),
            Contribution::ConstantsOnly { reference, changed } => format!(
                "{reference} with only constants changed ({})",
                changed
                    .iter()
                    .map(|(a, b)| format!("{a}→{b}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Contribution::Changed => "its own code".into(),
        }
    }

    pub fn is_own(&self) -> bool {
        matches!(self, Contribution::Changed)
    }
}

/// C tokens with comments and whitespace gone (strings and character literals kept whole).
pub fn tokens(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
        } else if c == b'"' || c == b'\'' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push(src[start..i].to_string());
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            // Numbers keep their suffixes and dots (`80ULL`, `0x1f`, `1.5`).
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || (b[i] == b'.' && c.is_ascii_digit()))
            {
                i += 1;
            }
            out.push(src[start..i].to_string());
        } else {
            out.push((c as char).to_string());
            i += 1;
        }
    }
    out
}

fn is_number(t: &str) -> bool {
    t.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Compare `candidate` with each `(name, source)` reference.
pub fn assess(candidate: &str, references: &[(String, String)]) -> Contribution {
    let cand = tokens(candidate);
    for (name, src) in references {
        let reference = tokens(src);
        if cand == reference {
            return Contribution::Copy {
                reference: name.clone(),
            };
        }
        if cand.len() == reference.len() {
            let mut changed = Vec::new();
            let mut only_numbers = true;
            for (a, b) in reference.iter().zip(&cand) {
                if a != b {
                    if is_number(a) && is_number(b) {
                        changed.push((a.clone(), b.clone()));
                    } else {
                        only_numbers = false;
                        break;
                    }
                }
            }
            if only_numbers {
                return Contribution::ConstantsOnly {
                    reference: name.clone(),
                    changed,
                };
            }
        }
    }
    Contribution::Changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> Vec<(String, String)> {
        vec![(
            "ref.bpf.c".to_string(),
            "/* policy */\nconst volatile u64 slice_ns = 10ULL * 1000;\nint f(void) { return \"a b\"[0]; }\n"
                .to_string(),
        )]
    }

    #[test]
    fn a_copy_without_comments_is_a_copy() {
        let c = assess(
            "const volatile u64 slice_ns=10ULL*1000; // mine\nint f(void){return \"a b\"[0];}",
            &refs(),
        );
        assert_eq!(
            c,
            Contribution::Copy {
                reference: "ref.bpf.c".into()
            }
        );
        assert_eq!(c.describe(), "a copy of ref.bpf.c");
    }

    #[test]
    fn only_constants_changed_says_which() {
        let c = assess(
            "const volatile u64 slice_ns = 5ULL * 1000;\nint f(void) { return \"a b\"[0]; }",
            &refs(),
        );
        assert_eq!(
            c.describe(),
            "ref.bpf.c with only constants changed (10ULL→5ULL)"
        );
    }

    #[test]
    fn a_string_or_a_name_changed_is_its_own_code() {
        for own in [
            "const volatile u64 slice_ns = 10ULL * 1000;\nint f(void) { return \"a  b\"[0]; }",
            "const volatile u64 slice = 10ULL * 1000;\nint f(void) { return \"a b\"[0]; }",
        ] {
            assert!(assess(own, &refs()).is_own(), "{own}");
        }
    }
}
