//! The kernel's own types, for compiling schedulers against exactly the kernel that runs them:
//! the ELF `vmlinux` recovered from a zstd-compressed `vmlinuz`, `vmlinux.h` from bpftool, and
//! a header declaring the kfuncs that kernel really exports.
//!
//! bpftool's C dump has no kfunc prototypes, and the sched_ext kfunc API changes between
//! releases (renames, added arguments), so the declarations are derived from the kernel's BTF:
//! every `FUNC` carrying the `bpf_kfunc` declaration tag, plus any `scx_bpf_*` function for
//! kernels too old to tag them.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// Decompress the ELF kernel image embedded in a zstd-compressed bzImage into `out`.
///
/// The compressed payload is followed by other data, so `zstd` complains about trailing bytes
/// after writing the whole ELF; the result is judged by its content, not by zstd's status.
pub fn extract_vmlinux(vmlinuz: &Path, out: &Path) -> Result<()> {
    let image =
        std::fs::read(vmlinuz).with_context(|| format!("cannot read {}", vmlinuz.display()))?;
    let start = image
        .windows(4)
        .position(|w| w == ZSTD_MAGIC)
        .with_context(|| {
            format!(
                "{} holds no zstd-compressed kernel; pass a kernel with a vmlinux (ELF with BTF) beside it",
                vmlinuz.display()
            )
        })?;
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut child = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run zstd: install it with `apt-get install zstd`")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // zstd may stop reading at the end of the frame; a broken pipe then is expected.
    let _ = stdin.write_all(&image[start..]);
    drop(stdin);
    child.wait().context("zstd did not finish")?;
    let mut head = [0u8; 4];
    let ok = std::fs::File::open(out)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && head == ELF_MAGIC;
    if !ok {
        bail!(
            "decompressing {} did not give an ELF vmlinux (zstd payload at byte {start})",
            vmlinuz.display()
        );
    }
    Ok(())
}

fn bpftool(args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .context("cannot run bpftool: install it with `apt-get install bpftool`")?;
    if !out.status.success() {
        bail!(
            "bpftool {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Write `vmlinux.h` (every type of the kernel, as C) for a file holding BTF.
pub fn write_vmlinux_h(btf_file: &Path, out: &Path) -> Result<()> {
    let file = btf_file.to_string_lossy();
    let c = bpftool(&["btf", "dump", "file", &file, "format", "c"])?;
    std::fs::write(out, c).with_context(|| format!("cannot write {}", out.display()))
}

/// Write the kfunc declarations header; returns how many kfuncs it declares.
pub fn write_kfuncs_h(btf_file: &Path, release: &str, out: &Path) -> Result<usize> {
    let file = btf_file.to_string_lossy();
    let json = bpftool(&["btf", "dump", "file", &file, "-j"])?;
    let doc: Value = serde_json::from_slice(&json).context("bpftool printed malformed JSON")?;
    let types = Btf::from_json(&doc)?;
    let (text, n) = types.kfuncs_header(release);
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(n)
}

/// The types of a BTF dump, by id (bpftool's JSON form).
struct Btf<'a> {
    by_id: HashMap<u64, &'a Value>,
    all: &'a [Value],
}

fn str_of<'a>(t: &'a Value, key: &str) -> &'a str {
    t.get(key).and_then(Value::as_str).unwrap_or("")
}

fn id_of(t: &Value, key: &str) -> u64 {
    t.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Wrap a declarator in parentheses when a pointer must bind before `[]` or `()`.
fn bind(inner: &str) -> String {
    if inner.starts_with('*') || inner.starts_with("const ") || inner.starts_with("volatile ") {
        format!("({inner})")
    } else {
        inner.to_string()
    }
}

impl<'a> Btf<'a> {
    fn from_json(doc: &'a Value) -> Result<Btf<'a>> {
        let all = doc
            .get("types")
            .and_then(Value::as_array)
            .context("bpftool JSON has no \"types\" array")?;
        let by_id = all.iter().map(|t| (id_of(t, "id"), t)).collect();
        Ok(Btf { by_id, all })
    }

    /// C declaration of `inner` (a name, or a partial declarator) with type `id`; `None` when
    /// the type cannot be spelled in C (an anonymous struct passed by value, say).
    fn decl(&self, id: u64, inner: &str) -> Option<String> {
        let join = |base: String| {
            if inner.is_empty() {
                base
            } else {
                format!("{base} {inner}")
            }
        };
        if id == 0 {
            return Some(join("void".into()));
        }
        let t = self.by_id.get(&id)?;
        let name = str_of(t, "name");
        let named = |prefix: &str| -> Option<String> {
            if name.is_empty() || name == "(anon)" {
                None
            } else {
                Some(join(format!("{prefix}{name}")))
            }
        };
        match str_of(t, "kind") {
            "INT" | "FLOAT" | "TYPEDEF" => named(""),
            "STRUCT" => named("struct "),
            "UNION" => named("union "),
            "ENUM" | "ENUM64" => named("enum "),
            "FWD" => {
                let kind = if str_of(t, "fwd_kind") == "union" {
                    "union "
                } else {
                    "struct "
                };
                named(kind)
            }
            "PTR" => self.decl(id_of(t, "type_id"), &format!("*{inner}")),
            "CONST" => self.decl(id_of(t, "type_id"), &format!("const {inner}")),
            "VOLATILE" => self.decl(id_of(t, "type_id"), &format!("volatile {inner}")),
            "RESTRICT" => self.decl(id_of(t, "type_id"), &format!("restrict {inner}")),
            "TYPE_TAG" | "DECL_TAG" => self.decl(id_of(t, "type_id"), inner),
            "ARRAY" => {
                let n = id_of(t, "nr_elems");
                self.decl(id_of(t, "type_id"), &format!("{}[{n}]", bind(inner)))
            }
            "FUNC_PROTO" => {
                let params = self.params(t)?;
                self.decl(
                    id_of(t, "ret_type_id"),
                    &format!("{}({params})", bind(inner)),
                )
            }
            _ => None,
        }
    }

    fn params(&self, proto: &Value) -> Option<String> {
        let list = proto.get("params").and_then(Value::as_array);
        let list = match list {
            Some(l) if !l.is_empty() => l,
            _ => return Some("void".into()),
        };
        let mut out = Vec::new();
        for p in list {
            let ty = id_of(p, "type_id");
            if ty == 0 {
                out.push("...".to_string());
                continue;
            }
            // bpftool spells a missing name "(anon)".
            let name = match str_of(p, "name") {
                "(anon)" => "",
                n => n,
            };
            out.push(self.decl(ty, name)?);
        }
        Some(out.join(", "))
    }

    /// Names of the functions tagged `bpf_kfunc`, plus untagged `scx_bpf_*` ones.
    fn kfunc_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .all
            .iter()
            .filter(|t| str_of(t, "kind") == "DECL_TAG" && str_of(t, "name") == "bpf_kfunc")
            .map(|t| id_of(t, "type_id"))
            .collect();
        ids.extend(
            self.all
                .iter()
                .filter(|t| {
                    str_of(t, "kind") == "FUNC" && str_of(t, "name").starts_with("scx_bpf_")
                })
                .map(|t| id_of(t, "id")),
        );
        let mut seen = std::collections::HashSet::new();
        let mut funcs: Vec<(&str, u64)> = ids
            .into_iter()
            .filter_map(|id| self.by_id.get(&id).map(|t| (str_of(t, "name"), id)))
            .filter(|(n, _)| !n.is_empty() && seen.insert(n.to_string()))
            .collect();
        funcs.sort();
        funcs.into_iter().map(|(_, id)| id).collect()
    }

    fn kfuncs_header(&self, release: &str) -> (String, usize) {
        let mut body = String::new();
        let mut skipped = Vec::new();
        let mut n = 0;
        for id in self.kfunc_ids() {
            let f = self.by_id[&id];
            let name = str_of(f, "name");
            match self.decl(id_of(f, "type_id"), name) {
                Some(d) => {
                    body.push_str(&format!("extern {d} __ksym;\n"));
                    n += 1;
                }
                None => skipped.push(name.to_string()),
            }
        }
        let mut text = format!(
            "/* SPDX-License-Identifier: GPL-2.0 */\n\
             /*\n * kfuncs of Linux {release}, generated by schedgen from the kernel's BTF.\n\
             * Include after vmlinux.h. Do not edit: `schedgen kernel fetch` rewrites it.\n */\n\
             #ifndef __SCHEDGEN_KFUNCS_H\n#define __SCHEDGEN_KFUNCS_H\n\n\
             #ifndef __ksym\n#define __ksym __attribute__((section(\".ksyms\")))\n#endif\n\n"
        );
        if !skipped.is_empty() {
            text.push_str(&format!(
                "/* not expressible in C, left out: {} */\n\n",
                skipped.join(", ")
            ));
        }
        text.push_str(&body);
        text.push_str("\n#endif /* __SCHEDGEN_KFUNCS_H */\n");
        (text, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn declarations_are_spelled_as_c() {
        let doc = json!({"types": [
            {"id": 1, "kind": "INT", "name": "int"},
            {"id": 2, "kind": "TYPEDEF", "name": "u64", "type_id": 1},
            {"id": 3, "kind": "STRUCT", "name": "task_struct"},
            {"id": 4, "kind": "PTR", "type_id": 3},
            {"id": 5, "kind": "CONST", "type_id": 3},
            {"id": 6, "kind": "PTR", "type_id": 5},
            {"id": 7, "kind": "FUNC_PROTO", "ret_type_id": 1,
             "params": [{"name": "p", "type_id": 6}, {"name": "flags", "type_id": 2}]},
            {"id": 8, "kind": "FUNC", "name": "scx_bpf_x", "type_id": 7},
            {"id": 9, "kind": "FUNC_PROTO", "ret_type_id": 0, "params": []},
            {"id": 10, "kind": "PTR", "type_id": 9},
            {"id": 11, "kind": "FUNC_PROTO", "ret_type_id": 4, "params": [{"name": "cb", "type_id": 10}]},
            {"id": 12, "kind": "FUNC", "name": "bpf_y", "type_id": 11},
            {"id": 13, "kind": "DECL_TAG", "name": "bpf_kfunc", "type_id": 12, "component_idx": -1},
            {"id": 14, "kind": "FUNC", "name": "not_a_kfunc", "type_id": 9}
        ]});
        let btf = Btf::from_json(&doc).unwrap();
        let (h, n) = btf.kfuncs_header("1.0");
        assert_eq!(n, 2, "{h}");
        assert!(
            h.contains("extern int scx_bpf_x(struct task_struct const *p, u64 flags) __ksym;"),
            "{h}"
        );
        assert!(
            h.contains("extern struct task_struct *bpf_y(void (*cb)(void)) __ksym;"),
            "{h}"
        );
        assert!(!h.contains("not_a_kfunc"));
    }
}
