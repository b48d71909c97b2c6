//! The fallback static checks: a lexical pass over the source (comments and strings blanked
//! out), used when libclang cannot be loaded. It sees text, not C: it cannot follow macros or
//! types, so it checks the includes, the license, the struct_ops section and the `scx_bpf_*`
//! calls by their spelling.

use std::collections::BTreeSet;

use crate::bpf::compile::Dialect;

use super::{
    include_problem, unknown_kfunc_problem, GPL_LICENSES, HEADER_MACROS, NO_LICENSE, NO_NAME,
    NO_OPS,
};

/// Blank out comments and string/char literals, keeping line structure.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            out.push(q as char);
            i += 1;
            while i < b.len() && b[i] != q {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push(q as char);
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every problem found; empty when the source looks like a valid schedgen scheduler.
pub(super) fn check(source: &str, kfuncs: &BTreeSet<String>) -> Vec<String> {
    let dialect = Dialect::detect(source);
    let mut problems = Vec::new();
    for line in source.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("#include") {
            let inc = rest
                .trim()
                .trim_matches(|c| c == '"' || c == '<' || c == '>');
            problems.extend(include_problem(inc, dialect));
        }
    }
    let license_ok = source.contains("SEC(\"license\")")
        && GPL_LICENSES
            .iter()
            .any(|l| source.contains(&format!("\"{l}\"")));
    if !license_ok {
        problems.push(NO_LICENSE.into());
    }
    let code = strip(source);
    // scx's `SCX_OPS_DEFINE(name, ...)` declares the struct_ops map in its section.
    let defined = code.matches("SCX_OPS_DEFINE(").count();
    let ops = code.matches("struct sched_ext_ops").count() + defined;
    let sec = source.matches("SEC(\".struct_ops").count() + defined;
    if ops == 0 || sec == 0 {
        problems.push(NO_OPS.into());
    } else if sec > 1 {
        problems.push(format!(
            "{sec} struct_ops sections: define exactly one sched_ext_ops"
        ));
    }
    if ops > 0 && !source.contains(".name") {
        problems.push(NO_NAME.into());
    }
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(pos) = code[i..].find("scx_bpf_") {
        let start = i + pos;
        let ident_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &code[start..end];
        let called = code[end..].trim_start().starts_with('(');
        if ident_start && called && !kfuncs.contains(name) && !HEADER_MACROS.contains(&name) {
            unknown.insert(name.to_string());
        }
        i = end;
    }
    problems.extend(unknown.iter().map(|n| unknown_kfunc_problem(n)));
    problems
}

#[cfg(test)]
mod tests {
    use super::super::test_kfuncs as kf;
    use super::*;

    #[test]
    fn the_reference_schedulers_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf-reference");
        let mut k = kf();
        for extra in [
            "scx_bpf_select_cpu_dfl",
            "scx_bpf_create_dsq",
            "scx_bpf_dsq_insert_vtime",
            "scx_bpf_dsq_nr_queued",
            "scx_bpf_kick_cpu",
            "scx_bpf_task_cpu",
            "scx_bpf_pick_idle_cpu",
            "bpf_cpumask_test_cpu",
            "bpf_iter_scx_dsq_new",
            "bpf_iter_scx_dsq_next",
            "bpf_iter_scx_dsq_destroy",
        ] {
            k.insert(extra.into());
        }
        for f in ["fifo.bpf.c", "vtime.bpf.c", "longfirst.bpf.c"] {
            let src = std::fs::read_to_string(dir.join(f)).unwrap();
            assert_eq!(check(&src, &k), Vec::<String>::new(), "{f}");
        }
    }

    #[test]
    fn the_scx_dialect_is_accepted() {
        let src = "#include <scx/common.bpf.h>\n#include \"schedgen_classes.bpf.h\"\n\
                   char _license[] SEC(\"license\") = \"GPL\";\n\
                   void BPF_STRUCT_OPS(s_enqueue, struct task_struct *p, u64 f)\n\
                   { scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, f); }\n\
                   SCX_OPS_DEFINE(s_ops, .enqueue = (void *)s_enqueue, .name = \"s\");\n";
        assert_eq!(check(src, &kf()), Vec::<String>::new());
        let bad = src.replace(
            "<scx/common.bpf.h>",
            "<scx/common.bpf.h>\n#include <linux/sched.h>",
        );
        assert!(check(&bad, &kf())
            .join("\n")
            .contains("scx's dialect includes <scx/common.bpf.h>"));
    }

    #[test]
    fn catches_the_usual_mistakes() {
        let src = "#include <linux/sched.h>\n\
                   // scx_bpf_consume(1) in a comment is fine\n\
                   void f(struct task_struct *p) { scx_bpf_dispatch(p, 0, 0, 0); scx_bpf_made_up(); }\n";
        let p = check(src, &kf());
        let all = p.join("\n");
        assert!(all.contains("linux/sched.h"), "{all}");
        assert!(all.contains("GPL"), "{all}");
        assert!(all.contains("struct_ops"), "{all}");
        assert!(all.contains("renamed `scx_bpf_dsq_insert`"), "{all}");
        assert!(all.contains("scx_bpf_made_up"), "{all}");
        assert!(
            !all.contains("scx_bpf_consume"),
            "comments are ignored: {all}"
        );
    }
}
