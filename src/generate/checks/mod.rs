//! Static checks before compiling: cheap, precise complaints for the mistakes models make most,
//! phrased so the repair prompt can quote them.
//!
//! The checks parse the candidate with libclang ([`ast`]) against the same headers and flags the
//! compiler will use, so they see the program as clang does: one `sched_ext_ops` struct_ops with
//! a name, a GPL license, only includes schedgen provides, and only kfuncs the target kernel
//! exports (with the modern name of renamed ones). libclang is loaded at run time; on a machine
//! without it the checks fall back to a lexical pass ([`lexical`]) and say so.

mod ast;
mod lexical;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::bpf::compile::{Dialect, Headers};

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
    "schedgen_classes.bpf.h",
    "vmlinux.h",
    "kfuncs.h",
    "bpf/bpf_helpers.h",
    "bpf/bpf_tracing.h",
    "bpf/bpf_core_read.h",
];
/// License strings the kernel counts as GPL-compatible (`license_is_gpl_compatible`).
const GPL_LICENSES: &[&str] = &[
    "GPL",
    "GPL v2",
    "GPL and additional rights",
    "Dual BSD/GPL",
    "Dual MIT/GPL",
    "Dual MPL/GPL",
];

/// What the checks need to know about the target.
pub struct Target<'a> {
    /// The kfuncs the target kernel exports.
    pub kfuncs: &'a BTreeSet<String>,
    /// The headers the candidate will be compiled against.
    pub headers: &'a Headers,
}

/// The outcome of the static checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckReport {
    /// Which pass ran: `libclang <version>`, or `lexical` with the reason libclang was not used.
    pub checker: String,
    /// Every problem the checks explain; empty when the source looks like a valid scheduler.
    pub problems: Vec<String>,
    /// Compiler errors libclang saw that no check explains (trimmed). They fail the compile
    /// step anyway, with clang's full output; they are here so that one repair request can
    /// carry them along with the problems.
    #[serde(default)]
    pub compiler_errors: Vec<String>,
}

/// Check `source` with libclang, or lexically when libclang cannot be loaded.
pub fn check(source: &str, target: &Target) -> CheckReport {
    match ast::check(source, target) {
        Ok(report) => report,
        Err(why) => CheckReport {
            checker: format!("lexical ({why})"),
            problems: lexical::check(source, target.kfuncs),
            compiler_errors: Vec::new(),
        },
    }
}

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

fn include_problem(spelled: &str, dialect: Dialect) -> Option<String> {
    match dialect {
        Dialect::Schedgen if spelled.starts_with("scx/") => Some(format!(
            "#include <{spelled}> is not available beside \"schedgen.bpf.h\": write in one dialect, schedgen's header or scx's (<scx/common.bpf.h> without schedgen.bpf.h)"
        )),
        Dialect::Schedgen => (!ALLOWED_INCLUDES.contains(&spelled)).then(|| format!(
            "#include <{spelled}> is not available: include only \"schedgen.bpf.h\" (it brings vmlinux.h, the libbpf helpers and this kernel's kfuncs)"
        )),
        // scx's headers, libbpf's BPF headers and the kernel's vmlinux.h are all there.
        Dialect::Scx => (!(spelled.starts_with("scx/")
            || spelled.starts_with("bpf/")
            || spelled.starts_with("lib/")
            || ALLOWED_INCLUDES.contains(&spelled)
            || matches!(spelled, "bpf_experimental.h" | "bpf_atomic.h" | "bpf_arena_common.bpf.h")))
        .then(|| format!(
            "#include <{spelled}> is not available: a scheduler in scx's dialect includes <scx/common.bpf.h> (and other scx/ or bpf/ headers)"
        )),
    }
}

fn unknown_kfunc_problem(name: &str) -> String {
    match RENAMED.iter().find(|(old, _)| *old == name) {
        Some((_, new)) => format!(
            "`{name}` does not exist in this kernel: it was renamed `{new}` (check its arguments; `schedgen port` rewrites such calls)"
        ),
        None => format!("`{name}` is not a kfunc of the target kernel: use only the kfuncs listed"),
    }
}

const NO_LICENSE: &str =
    "no GPL license: add `char _license[] SEC(\"license\") = \"GPL\";` (sched_ext kfuncs are GPL-only)";
const NO_OPS: &str = "no `SEC(\".struct_ops.link\") struct sched_ext_ops <name>_ops = { ... }`: the kernel has nothing to attach";
const NO_NAME: &str = "the sched_ext_ops has no `.name = \"...\"`";

#[cfg(test)]
fn test_kfuncs() -> BTreeSet<String> {
    kfunc_names(
        "extern void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;\n\
         extern bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kfunc_names() {
        let k = test_kfuncs();
        assert!(k.contains("scx_bpf_dsq_insert") && k.contains("scx_bpf_dsq_move_to_local"));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn renamed_kfuncs_name_their_replacement() {
        assert!(unknown_kfunc_problem("scx_bpf_consume").contains("`scx_bpf_dsq_move_to_local`"));
        assert!(unknown_kfunc_problem("scx_bpf_nope").contains("not a kfunc"));
    }
}
