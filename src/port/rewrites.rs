//! The deterministic part of porting: sched_ext's known API changes, each as a rewrite of the
//! calls it changed, with the kernel (or scx header) release that made it.
//!
//! Rewrites work on calls, not text: `scx_bpf_consume(DSQ)` is found as an identifier followed
//! by a parenthesised argument list (nested parentheses, comments and strings respected), so
//! `my_scx_bpf_consume(…)` and a mention in a comment are left alone.

use serde::Serialize;

use crate::bpf::compile::Dialect;

/// One API change.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Change {
    /// The old call.
    pub old: &'static str,
    /// What it becomes.
    pub new: &'static str,
    /// The release that made the change: a kernel version, or scx's headers.
    pub since: &'static str,
    /// The dialects whose sources need it.
    #[serde(skip)]
    pub dialects: &'static [Dialect],
    #[serde(skip)]
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Same arguments, new name.
    Rename,
    /// One argument more at the end, with this value.
    AppendArg(&'static str),
    /// The call (a whole statement) goes away.
    Remove,
}

const BOTH: &[Dialect] = &[Dialect::Schedgen, Dialect::Scx];
const SCX: &[Dialect] = &[Dialect::Scx];

/// Oldest change first: a source from before one change needs the later ones too.
pub const CHANGES: &[Change] = &[
    Change {
        old: "scx_bpf_switch_all",
        new: "(nothing: every task is switched unless ops.flags has SCX_OPS_SWITCH_PARTIAL)",
        since: "kernel 6.12",
        dialects: BOTH,
        kind: Kind::Remove,
    },
    Change {
        old: "scx_bpf_dispatch",
        new: "scx_bpf_dsq_insert",
        since: "kernel 6.13",
        dialects: BOTH,
        kind: Kind::Rename,
    },
    Change {
        old: "scx_bpf_dispatch_vtime",
        new: "scx_bpf_dsq_insert_vtime",
        since: "kernel 6.13",
        dialects: BOTH,
        kind: Kind::Rename,
    },
    Change {
        old: "scx_bpf_consume",
        new: "scx_bpf_dsq_move_to_local",
        since: "kernel 6.13",
        dialects: BOTH,
        kind: Kind::Rename,
    },
    Change {
        old: "scx_bpf_dispatch_from_dsq_set_slice",
        new: "scx_bpf_dsq_move_set_slice",
        since: "kernel 6.13",
        dialects: BOTH,
        kind: Kind::Rename,
    },
    Change {
        old: "scx_bpf_dispatch_from_dsq_set_vtime",
        new: "scx_bpf_dsq_move_set_vtime",
        since: "kernel 6.13",
        dialects: BOTH,
        kind: Kind::Rename,
    },
    Change {
        old: "scx_bpf_dispatch_from_dsq",
        new: "scx_bpf_dsq_move",
        since: "kernel 6.13",
        dialects: BOTH,
        kind: Kind::Rename,
    },
    Change {
        old: "scx_bpf_dispatch_vtime_from_dsq",
        new: "scx_bpf_dsq_move_vtime",
        since: "kernel 6.13",
        dialects: BOTH,
        kind: Kind::Rename,
    },
    Change {
        old: "__COMPAT_scx_bpf_dsq_move_set_slice",
        new: "scx_bpf_dsq_move_set_slice",
        since: "scx headers 1.1",
        dialects: SCX,
        kind: Kind::Rename,
    },
    Change {
        old: "__COMPAT_scx_bpf_dsq_move_set_vtime",
        new: "scx_bpf_dsq_move_set_vtime",
        since: "scx headers 1.1",
        dialects: SCX,
        kind: Kind::Rename,
    },
    Change {
        old: "__COMPAT_scx_bpf_dsq_move_vtime",
        new: "scx_bpf_dsq_move_vtime",
        since: "scx headers 1.1",
        dialects: SCX,
        kind: Kind::Rename,
    },
    Change {
        old: "__COMPAT_scx_bpf_dsq_move",
        new: "scx_bpf_dsq_move",
        since: "scx headers 1.1",
        dialects: SCX,
        kind: Kind::Rename,
    },
    Change {
        old: "scx_bpf_dsq_move_to_local",
        new: "scx_bpf_dsq_move_to_local(dsq_id, 0)",
        since: "kernel 7.1 (enq_flags; scx headers 1.1 require it)",
        dialects: SCX,
        kind: Kind::AppendArg("0"),
    },
];

/// A rewrite made, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Applied {
    pub line: usize,
    pub old: String,
    pub new: String,
    pub since: String,
}

/// A call found in the source.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    /// Byte range of the name.
    name: (usize, usize),
    /// Byte positions of the opening and closing parentheses.
    open: usize,
    close: usize,
    /// Top-level argument count.
    args: usize,
}

/// Byte ranges of `src` that are code (not comments, strings or character literals).
fn code_mask(src: &str) -> Vec<bool> {
    let b = src.as_bytes();
    let mut mask = vec![true; b.len()];
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
        } else if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            i += 1;
            while i < b.len() && b[i] != q && b[i] != b'\n' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else {
            i += 1;
            continue;
        }
        for m in &mut mask[start..i] {
            *m = false;
        }
    }
    mask
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Calls of `name` in code.
fn calls(src: &str, mask: &[bool], name: &str) -> Vec<Call> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(off) = src[from..].find(name) {
        let start = from + off;
        let end = start + name.len();
        from = end;
        if !mask[start]
            || (start > 0 && is_ident(b[start - 1]))
            || (end < b.len() && is_ident(b[end]))
        {
            continue;
        }
        let mut open = end;
        while open < b.len() && b[open].is_ascii_whitespace() {
            open += 1;
        }
        if b.get(open) != Some(&b'(') {
            continue;
        }
        let (mut depth, mut args, mut any, mut i) = (0i32, 0usize, false, open);
        let mut close = None;
        while i < b.len() {
            if mask[i] {
                match b[i] {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(i);
                            break;
                        }
                    }
                    b',' if depth == 1 => args += 1,
                    c if depth >= 1 && !c.is_ascii_whitespace() => any = true,
                    _ => {}
                }
            } else if depth >= 1 {
                any = true;
            }
            i += 1;
        }
        let Some(close) = close else { continue };
        out.push(Call {
            name: (start, end),
            open,
            close,
            args: if any { args + 1 } else { 0 },
        });
    }
    out
}

fn line_of(src: &str, pos: usize) -> usize {
    src[..pos].bytes().filter(|c| *c == b'\n').count() + 1
}

/// The statement around a call: from the call to its `;`, for removal.
fn statement_end(src: &str, close: usize) -> usize {
    let b = src.as_bytes();
    let mut i = close + 1;
    while i < b.len() && b[i].is_ascii_whitespace() && b[i] != b'\n' {
        i += 1;
    }
    if b.get(i) == Some(&b';') {
        i + 1
    } else {
        close + 1
    }
}

fn apply_one(src: &str, change: &Change, applied: &mut Vec<Applied>) -> String {
    let mask = code_mask(src);
    let mut found = calls(src, &mask, change.old);
    if let Kind::AppendArg(_) = change.kind {
        // Only calls that still lack the argument.
        found.retain(|c| c.args == 1);
    }
    if found.is_empty() {
        return src.to_string();
    }
    let mut out = String::with_capacity(src.len() + 16);
    let mut last = 0;
    for c in &found {
        let old_text = &src[c.name.0..=c.close];
        let (replace_end, new_text) = match change.kind {
            Kind::Rename => (c.name.1, change.new.to_string()),
            Kind::AppendArg(v) => (c.close + 1, format!("{}, {v})", &src[c.name.0..c.close])),
            Kind::Remove => (statement_end(src, c.close), String::new()),
        };
        out.push_str(&src[last..c.name.0]);
        out.push_str(&new_text);
        last = replace_end;
        let shown_new = match change.kind {
            Kind::Rename => format!("{}{}", change.new, &src[c.name.1..=c.close]),
            Kind::AppendArg(_) => new_text.clone(),
            Kind::Remove => "(removed)".into(),
        };
        applied.push(Applied {
            line: line_of(src, c.name.0),
            old: old_text.to_string(),
            new: shown_new,
            since: change.since.to_string(),
        });
    }
    out.push_str(&src[last..]);
    out
}

/// Apply every change `dialect` needs, oldest first.
pub fn apply(src: &str, dialect: Dialect) -> (String, Vec<Applied>) {
    let mut text = src.to_string();
    let mut applied = Vec::new();
    for change in CHANGES.iter().filter(|c| c.dialects.contains(&dialect)) {
        text = apply_one(&text, change, &mut applied);
    }
    applied.sort_by_key(|a| a.line);
    (text, applied)
}

/// Whether `src` calls anything a change replaced (a hint that it needs `schedgen port`).
pub fn uses_old_api(src: &str, dialect: Dialect) -> bool {
    let (_, applied) = apply(src, dialect);
    !applied.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_calls_and_leaves_comments_and_lookalikes() {
        let src = "// scx_bpf_consume(X) in a comment\n\
                   void f(void) {\n\
                   \tscx_bpf_consume(SHARED);\n\
                   \tmy_scx_bpf_consume(SHARED);\n\
                   \tscx_bpf_dispatch(p, SCX_DSQ_GLOBAL, f(1, 2), 0);\n\
                   }\n";
        let (out, applied) = apply(src, Dialect::Schedgen);
        assert!(out.contains("// scx_bpf_consume(X) in a comment"));
        assert!(out.contains("\tscx_bpf_dsq_move_to_local(SHARED);"));
        assert!(out.contains("my_scx_bpf_consume(SHARED)"));
        assert!(out.contains("scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, f(1, 2), 0);"));
        assert_eq!(applied.len(), 2);
        assert_eq!(applied[0].line, 3);
        assert_eq!(applied[0].since, "kernel 6.13");
    }

    #[test]
    fn the_scx_dialect_gets_enq_flags_once() {
        let src = "scx_bpf_consume(DSQ);\nif (scx_bpf_dsq_move_to_local(A, SCX_ENQ_HEAD)) x();\n";
        let (out, applied) = apply(src, Dialect::Scx);
        assert_eq!(
            out,
            "scx_bpf_dsq_move_to_local(DSQ, 0);\nif (scx_bpf_dsq_move_to_local(A, SCX_ENQ_HEAD)) x();\n"
        );
        assert_eq!(applied.len(), 2, "{applied:?}");
        let (again, more) = apply(&out, Dialect::Scx);
        assert_eq!(again, out, "porting twice changes nothing");
        assert!(more.is_empty());
    }

    #[test]
    fn compat_wrappers_and_switch_all() {
        let src = "s32 init(void) {\n\tscx_bpf_switch_all();\n\treturn 0;\n}\n\
                   __COMPAT_scx_bpf_dsq_move_set_slice(it, 5);\n__COMPAT_scx_bpf_dsq_move(it, p, D, 0);\n";
        let (out, _) = apply(src, Dialect::Scx);
        assert!(!out.contains("switch_all"), "{out}");
        assert!(
            out.contains("\tscx_bpf_dsq_move_set_slice(it, 5);")
                || out.contains("scx_bpf_dsq_move_set_slice(it, 5);")
        );
        assert!(out.contains("scx_bpf_dsq_move(it, p, D, 0);"));
        assert!(!out.contains("__COMPAT_"));
    }

    #[test]
    fn strings_do_not_end_early_on_escapes() {
        let src = "bpf_printk(\"a \\\" scx_bpf_consume(1)\"); scx_bpf_consume(2);";
        let (out, applied) = apply(src, Dialect::Schedgen);
        assert_eq!(applied.len(), 1);
        assert!(out.ends_with("scx_bpf_dsq_move_to_local(2);"));
    }
}
