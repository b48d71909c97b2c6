//! Static checks before compiling: cheap, precise complaints for the mistakes models make most,
//! phrased so the repair prompt can quote them.
//!
//! This is a lexical pass over the source (comments and strings stripped), not a C parser: it
//! checks the includes, the GPL license section, exactly one named `sched_ext_ops` struct_ops
//! map, and that every `scx_bpf_*` function called is a kfunc of the target kernel (or a macro
//! of `schedgen.bpf.h`), naming the modern replacement of renamed kfuncs.

use std::collections::BTreeSet;

/// Renamed kfuncs and what replaced them.
const RENAMED: &[(&str, &str)] = &[
    ("scx_bpf_dispatch", "scx_bpf_dsq_insert"),
    ("scx_bpf_dispatch_vtime", "scx_bpf_dsq_insert_vtime"),
    ("scx_bpf_consume", "scx_bpf_dsq_move_to_local"),
    ("scx_bpf_dispatch_from_dsq", "scx_bpf_dsq_move"),
    ("scx_bpf_dispatch_vtime_from_dsq", "scx_bpf_dsq_move_vtime"),
];
/// Provided by schedgen.bpf.h as macros, not kfuncs.
const HEADER_MACROS: &[&str] = &["scx_bpf_error"];
const ALLOWED_INCLUDES: &[&str] = &[
    "schedgen.bpf.h",
    "vmlinux.h",
    "kfuncs.h",
    "bpf/bpf_helpers.h",
    "bpf/bpf_tracing.h",
    "bpf/bpf_core_read.h",
];

/// kfunc names declared in a generated `kfuncs.h`.
pub fn kfunc_names(kfuncs_h: &str) -> BTreeSet<String> {
    kfuncs_h
        .lines()
        .filter(|l| l.starts_with("extern "))
        .filter_map(|l| {
            let before = &l[..l.find('(')?];
            let name = before
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()?;
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

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
pub fn check(source: &str, kfuncs: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for line in source.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("#include") {
            let inc = rest
                .trim()
                .trim_matches(|c| c == '"' || c == '<' || c == '>');
            if !ALLOWED_INCLUDES.contains(&inc) {
                problems.push(format!(
                    "#include {} is not available: include only \"schedgen.bpf.h\" (it brings vmlinux.h, the libbpf helpers and this kernel's kfuncs)",
                    rest.trim()
                ));
            }
        }
    }
    let license_ok = source.contains("SEC(\"license\")") && source.contains("\"GPL\"");
    if !license_ok {
        problems.push("no GPL license: add `char _license[] SEC(\"license\") = \"GPL\";` (sched_ext kfuncs are GPL-only)".into());
    }
    let code = strip(source);
    let ops = code.matches("struct sched_ext_ops").count();
    let sec = source.matches("SEC(\".struct_ops").count();
    if ops == 0 || sec == 0 {
        problems.push("no `SEC(\".struct_ops.link\") struct sched_ext_ops <name>_ops = { ... }`: the kernel has nothing to attach".into());
    } else if sec > 1 {
        problems.push(format!(
            "{sec} struct_ops sections: define exactly one sched_ext_ops"
        ));
    }
    if ops > 0 && !source.contains(".name") {
        problems.push("the sched_ext_ops has no `.name = \"...\"`".into());
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
    for name in unknown {
        match RENAMED.iter().find(|(old, _)| *old == name) {
            Some((_, new)) => problems.push(format!("`{name}` does not exist in this kernel: it was renamed `{new}` (check its arguments)")),
            None => problems.push(format!("`{name}` is not a kfunc of the target kernel: use only the kfuncs listed")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kf() -> BTreeSet<String> {
        kfunc_names(
            "extern void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;\n\
             extern bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;\n",
        )
    }

    #[test]
    fn reads_kfunc_names() {
        let k = kf();
        assert!(k.contains("scx_bpf_dsq_insert") && k.contains("scx_bpf_dsq_move_to_local"));
    }

    #[test]
    fn the_reference_schedulers_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf-reference");
        let mut k = kf();
        for extra in [
            "scx_bpf_select_cpu_dfl",
            "scx_bpf_create_dsq",
            "scx_bpf_dsq_insert_vtime",
            "scx_bpf_dsq_nr_queued",
        ] {
            k.insert(extra.into());
        }
        for f in ["fifo.bpf.c", "vtime.bpf.c", "longfirst.bpf.c"] {
            let src = std::fs::read_to_string(dir.join(f)).unwrap();
            assert_eq!(check(&src, &k), Vec::<String>::new(), "{f}");
        }
    }

    #[test]
    fn catches_the_usual_mistakes() {
        let src = "#include <scx/common.bpf.h>\n\
                   // scx_bpf_consume(1) in a comment is fine\n\
                   void f(struct task_struct *p) { scx_bpf_dispatch(p, 0, 0, 0); scx_bpf_made_up(); }\n";
        let p = check(src, &kf());
        let all = p.join("\n");
        assert!(all.contains("scx/common.bpf.h"), "{all}");
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
