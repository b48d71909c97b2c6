//! A scheduler object's global variables, found through its BTF: the `const volatile` knobs a
//! user may set before load (`--set NAME=VALUE`), the `__SCX_*` slots scx's headers expect the
//! loader to fill from the running kernel's enums, and where `UEI_DEFINE` keeps the exit info.
//!
//! scx's own loaders fill the enum slots from generated code; schedgen does it by name: a
//! read-only global `__SCX_FOO` receives the value of the kernel enumerator `SCX_FOO`, so
//! a scheduler built against any scx release gets the values of the kernel that runs it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::btf::types::{Array, DataSec, Enum, Enum64, Int, IntEncoding};
use libbpf_rs::btf::{BtfKind, BtfType};
use libbpf_rs::{AsRawLibbpf, Btf, ObjectBuilder, OpenObject};
use serde::{Deserialize, Serialize};

/// Prefix of the read-only globals scx's enum headers declare for the loader to fill.
const ENUM_SLOT_PREFIX: &str = "__SCX_";

/// What a global holds, as far as setting it from the command line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalar {
    Unsigned,
    Signed,
    Bool,
    /// Anything else (arrays, structs): listed, not settable.
    Other,
}

/// One global variable of a data section.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub scalar: Scalar,
    /// The C type as BTF names it (`u64`, `bool`, `struct user_exit_info`).
    pub type_name: String,
    /// Elements, when it is an array.
    pub array_len: Option<usize>,
}

/// A `const volatile` knob, as `verify --json` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knob {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub size: usize,
    /// The value compiled into the object (decimal, or `true`/`false`).
    pub default: Option<String>,
    pub settable: bool,
}

/// `NAME=VALUE` from the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

impl std::str::FromStr for Setting {
    type Err = String;

    fn from_str(s: &str) -> Result<Setting, String> {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("`{name}` is not a C identifier"));
        }
        Ok(Setting {
            name: name.to_string(),
            value: value.trim().to_string(),
        })
    }
}

fn type_name(ty: BtfType<'_>) -> String {
    let mut quals = Vec::new();
    let mut t = ty;
    loop {
        match t.kind() {
            BtfKind::Const => quals.push("const"),
            BtfKind::Volatile => quals.push("volatile"),
            BtfKind::Typedef => {
                return t
                    .name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }
            _ => break,
        }
        match t.next_type() {
            Some(n) => t = n,
            None => break,
        }
    }
    let name = t
        .name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match t.kind() {
        BtfKind::Struct => format!("struct {name}"),
        BtfKind::Union => format!("union {name}"),
        BtfKind::Enum | BtfKind::Enum64 => format!("enum {name}"),
        BtfKind::Array => "array".into(),
        _ => name,
    }
}

fn scalar_of(ty: BtfType<'_>) -> Scalar {
    let t = ty.skip_mods_and_typedefs();
    match t.kind() {
        BtfKind::Int => match Int::try_from(t) {
            Ok(i) => match i.encoding {
                IntEncoding::Bool => Scalar::Bool,
                IntEncoding::Signed => Scalar::Signed,
                _ => Scalar::Unsigned,
            },
            Err(_) => Scalar::Other,
        },
        BtfKind::Enum | BtfKind::Enum64 => Scalar::Signed,
        _ => Scalar::Other,
    }
}

/// The globals of `section` (`.rodata`, `.data`, …) in an opened object.
pub fn globals(open: &OpenObject, section: &str) -> Vec<Global> {
    // SAFETY: the pointer is the live object `open` owns; the BTF borrows it only here.
    let raw = unsafe { open.as_libbpf_object().as_ref() };
    let Ok(Some(btf)) = Btf::from_bpf_object(raw) else {
        return Vec::new();
    };
    let Some(sec) = btf.type_by_name::<DataSec>(section) else {
        return Vec::new();
    };
    sec.iter()
        .filter_map(|v| {
            let var: BtfType<'_> = btf.type_by_id(v.ty)?;
            let name = var.name()?.to_string_lossy().into_owned();
            let ty = var.next_type()?;
            let array_len = Array::try_from(ty.skip_mods_and_typedefs())
                .ok()
                .map(|a| a.capacity());
            Some(Global {
                name,
                offset: v.offset as usize,
                size: v.size,
                scalar: scalar_of(ty),
                type_name: type_name(ty),
                array_len,
            })
        })
        .collect()
}

/// The map libbpf made for `section` (it names them `<object prefix><section>`).
fn section_map_name(open: &OpenObject, section: &str) -> Option<String> {
    open.maps()
        .map(|m| m.name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(section))
}

/// Overwrite `size` bytes at `offset` of `section`'s initial value.
fn write_initial(open: &mut OpenObject, section: &str, offset: usize, bytes: &[u8]) -> Result<()> {
    let name = section_map_name(open, section)
        .ok_or_else(|| anyhow!("the object has no {section} map"))?;
    let mut map = open
        .maps_mut()
        .find(|m| m.name().to_string_lossy() == name)
        .ok_or_else(|| anyhow!("the object has no {section} map"))?;
    let data = map
        .initial_value_mut()
        .ok_or_else(|| anyhow!("{section} has no initial value"))?;
    let end = offset + bytes.len();
    if end > data.len() {
        bail!(
            "{section} is {} bytes; cannot write at {offset}..{end}",
            data.len()
        );
    }
    data[offset..end].copy_from_slice(bytes);
    Ok(())
}

fn encode(value: &str, g: &Global) -> Result<Vec<u8>> {
    let v = value.trim();
    let parse_u = |v: &str| -> Option<u64> {
        let v = v.replace('_', "");
        match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    };
    let n: i128 = match g.scalar {
        Scalar::Bool => match v {
            "true" | "1" | "yes" | "on" => 1,
            "false" | "0" | "no" | "off" => 0,
            _ => bail!("`{}` is a bool: give true or false, not `{v}`", g.name),
        },
        Scalar::Unsigned => parse_u(v).map(i128::from).ok_or_else(|| {
            anyhow!(
                "`{}` is a {}: `{v}` is not an unsigned number",
                g.name,
                g.type_name
            )
        })?,
        Scalar::Signed => match v.strip_prefix('-') {
            Some(rest) => {
                -(parse_u(rest).map(i128::from).ok_or_else(|| {
                    anyhow!("`{}` is a {}: `{v}` is not a number", g.name, g.type_name)
                })?)
            }
            None => parse_u(v).map(i128::from).ok_or_else(|| {
                anyhow!("`{}` is a {}: `{v}` is not a number", g.name, g.type_name)
            })?,
        },
        Scalar::Other => bail!(
            "`{}` is a {} and cannot be set from the command line",
            g.name,
            g.type_name
        ),
    };
    let bits = (g.size * 8) as u32;
    let (lo, hi) = match g.scalar {
        Scalar::Signed => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
        _ => (0, (1i128 << bits) - 1),
    };
    if n < lo || n > hi {
        bail!(
            "{v} does not fit `{}` ({}, {} bytes)",
            g.name,
            g.type_name,
            g.size
        );
    }
    Ok(n.to_le_bytes()[..g.size].to_vec())
}

fn decode(bytes: &[u8], g: &Global) -> Option<String> {
    let b = bytes.get(g.offset..g.offset + g.size)?;
    if g.scalar == Scalar::Other || g.size > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    buf[..g.size].copy_from_slice(b);
    let u = u64::from_le_bytes(buf);
    Some(match g.scalar {
        Scalar::Bool => (u != 0).to_string(),
        Scalar::Signed => {
            let shift = 64 - g.size * 8;
            (((u << shift) as i64) >> shift).to_string()
        }
        _ => u.to_string(),
    })
}

/// The knobs of an opened object: its read-only globals, minus scx's enum slots.
fn knobs_of(open: &OpenObject) -> Vec<Knob> {
    let initial = section_map_name(open, ".rodata").and_then(|name| {
        open.maps()
            .find(|m| m.name().to_string_lossy() == name)
            .and_then(|m| m.initial_value().map(<[u8]>::to_vec))
    });
    globals(open, ".rodata")
        .into_iter()
        .filter(|g| !g.name.starts_with(ENUM_SLOT_PREFIX))
        .map(|g| Knob {
            default: initial.as_deref().and_then(|b| decode(b, &g)),
            settable: g.scalar != Scalar::Other && g.size <= 8,
            name: g.name,
            type_name: g.type_name,
            size: g.size,
        })
        .collect()
}

/// Check `settings` against a compiled object's knobs before anything boots (opening it needs
/// no privileges), and return the knobs with their compiled-in defaults.
pub fn check_settings(object: &Path, settings: &[Setting]) -> Result<Vec<Knob>> {
    let open = ObjectBuilder::default()
        .open_file(object)
        .with_context(|| format!("cannot open {}", object.display()))?;
    let all = globals(&open, ".rodata");
    let knobs = knobs_of(&open);
    for s in settings {
        encode(&s.value, find_knob(&all, &s.name, &knobs)?)?;
    }
    Ok(knobs)
}

fn find_knob<'g>(all: &'g [Global], name: &str, knobs: &[Knob]) -> Result<&'g Global> {
    all.iter()
        .find(|g| g.name == name && !g.name.starts_with(ENUM_SLOT_PREFIX))
        .ok_or_else(|| {
            let names: Vec<&str> = knobs.iter().map(|k| k.name.as_str()).collect();
            if names.is_empty() {
                anyhow!("`{name}` is not a knob: this scheduler has no `const volatile` globals")
            } else {
                anyhow!(
                    "`{name}` is not a knob of this scheduler; it has: {}",
                    names.join(", ")
                )
            }
        })
}

/// Set `settings` in an opened object's read-only data, before load.
pub fn apply_settings(open: &mut OpenObject, settings: &[Setting]) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    let all = globals(open, ".rodata");
    let knobs = knobs_of(open);
    for s in settings {
        let g = find_knob(&all, &s.name, &knobs)?;
        let bytes = encode(&s.value, g)?;
        write_initial(open, ".rodata", g.offset, &bytes)
            .with_context(|| format!("cannot set `{}`", s.name))?;
    }
    Ok(())
}

/// Every enumerator of the running kernel's BTF, by name.
fn kernel_enumerators() -> Result<HashMap<String, i128>> {
    let btf = Btf::from_vmlinux().context("cannot read the kernel's BTF")?;
    let mut out = HashMap::new();
    for e in btf.type_by_kind::<Enum<'_>>() {
        for m in e.iter() {
            if let Some(n) = m.name {
                out.insert(n.to_string_lossy().into_owned(), i128::from(m.value));
            }
        }
    }
    for e in btf.type_by_kind::<Enum64<'_>>() {
        for m in e.iter() {
            if let Some(n) = m.name {
                out.insert(n.to_string_lossy().into_owned(), m.value);
            }
        }
    }
    Ok(out)
}

/// Fill scx's `__SCX_*` slots from the running kernel's enums. Returns the names the kernel
/// has no enumerator for (they stay 0, as scx's `__COMPAT_ENUM_OR_ZERO` expects).
pub fn fill_enum_slots(open: &mut OpenObject) -> Result<Vec<String>> {
    let slots: Vec<Global> = globals(open, ".rodata")
        .into_iter()
        .filter(|g| g.name.starts_with(ENUM_SLOT_PREFIX) && g.size <= 8)
        .collect();
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let kernel = kernel_enumerators()?;
    let mut missing = Vec::new();
    for g in &slots {
        let Some(v) = kernel.get(&g.name[2..]) else {
            missing.push(g.name.clone());
            continue;
        };
        let bytes = (*v as u64).to_le_bytes();
        write_initial(open, ".rodata", g.offset, &bytes[..g.size])?;
    }
    Ok(missing)
}

/// Give scx's `RESIZABLE_ARRAY`s one element per possible CPU, as scx's loaders do for the
/// per-CPU state they hold: a one-element array alone in its own `.data.NAME` or `.bss.NAME`
/// section. `skip` names sections sized otherwise (UEI's dump). Returns the sections resized.
pub fn resize_per_cpu_arrays(open: &mut OpenObject, skip: &[String]) -> Result<Vec<String>> {
    let cpus = libbpf_rs::num_possible_cpus().context("cannot count the possible CPUs")?;
    let sections: Vec<String> = open
        .maps()
        .map(|m| m.name().to_string_lossy().into_owned())
        .filter(|n| (n.starts_with(".data.") || n.starts_with(".bss.")) && !skip.contains(n))
        .collect();
    let mut resized = Vec::new();
    for section in sections {
        let vars = globals(open, &section);
        let [one] = vars.as_slice() else { continue };
        if one.array_len != Some(1) {
            continue;
        }
        let size = (one.size * cpus) as u32;
        if let Some(mut m) = open
            .maps_mut()
            .find(|m| m.name().to_string_lossy() == section)
        {
            m.set_value_size(size)
                .with_context(|| format!("cannot resize {section} to {cpus} CPUs"))?;
            resized.push(section);
        }
    }
    Ok(resized)
}

/// Where `UEI_DEFINE` put the exit info: the offset of the `.data` global of type
/// `struct user_exit_info`.
pub fn uei_offset(open: &OpenObject) -> Option<usize> {
    globals(open, ".data")
        .into_iter()
        .find(|g| g.type_name == "struct user_exit_info")
        .map(|g| g.offset)
}

/// The name of the map holding `section`.
pub fn data_map_name(open: &OpenObject, section: &str) -> Option<String> {
    section_map_name(open, section)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(scalar: Scalar, size: usize) -> Global {
        Global {
            name: "k".into(),
            offset: 0,
            size,
            scalar,
            type_name: "t".into(),
            array_len: None,
        }
    }

    #[test]
    fn parses_settings() {
        let s: Setting = "slice_ns=5000000".parse().unwrap();
        assert_eq!((s.name.as_str(), s.value.as_str()), ("slice_ns", "5000000"));
        assert!("novalue".parse::<Setting>().is_err());
        assert!("a b=1".parse::<Setting>().is_err());
    }

    #[test]
    fn encodes_by_type_and_refuses_what_does_not_fit() {
        assert_eq!(
            encode("0x10", &g(Scalar::Unsigned, 4)).unwrap(),
            [16, 0, 0, 0]
        );
        assert_eq!(encode("-1", &g(Scalar::Signed, 2)).unwrap(), [0xff, 0xff]);
        assert_eq!(encode("true", &g(Scalar::Bool, 1)).unwrap(), [1]);
        assert!(encode("256", &g(Scalar::Unsigned, 1)).is_err());
        assert!(encode("-1", &g(Scalar::Unsigned, 8)).is_err());
        assert!(encode("maybe", &g(Scalar::Bool, 1)).is_err());
        assert!(encode("1", &g(Scalar::Other, 8)).is_err());
    }

    #[test]
    fn decodes_defaults() {
        let mut k = g(Scalar::Signed, 4);
        k.offset = 4;
        let bytes = [0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff];
        assert_eq!(decode(&bytes, &k).as_deref(), Some("-2"));
        assert_eq!(
            decode(&[7, 0, 0, 0, 0, 0, 0, 0], &g(Scalar::Unsigned, 8)).as_deref(),
            Some("7")
        );
    }
}
