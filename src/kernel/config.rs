//! A kernel's build configuration (`config`, `.config`, `/proc/config.gz` text): the options
//! schedgen needs, checked by name so an error can say exactly which one is missing.
//!
//! Two groups matter: what sched_ext itself needs (a scheduler can be loaded at all) and what
//! the VM sandbox needs built in (there is no initramfs, so virtiofs, the console and devtmpfs
//! cannot be modules).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Needed to load and run a BPF scheduler, and to compile against the kernel's own types.
pub const SCHED_EXT_OPTIONS: &[&str] = &[
    "CONFIG_SCHED_CLASS_EXT",
    "CONFIG_BPF_SYSCALL",
    "CONFIG_DEBUG_INFO_BTF",
];

/// Needed built in (`=y`) to boot the kernel with schedgen's VM layout: virtiofs root, no
/// initramfs, serial console.
pub const VM_OPTIONS: &[&str] = &[
    "CONFIG_VIRTIO_PCI",
    "CONFIG_VIRTIO_FS",
    "CONFIG_FUSE_FS",
    "CONFIG_DEVTMPFS",
    "CONFIG_TMPFS",
    "CONFIG_SERIAL_8250_CONSOLE",
];

/// One option's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConfigCheck {
    pub option: String,
    /// The value found (`y`, `m`, ...), or none when the option is not set.
    pub value: Option<String>,
    pub ok: bool,
}

/// The `CONFIG_*` assignments of a config file.
#[derive(Debug, Clone, Default)]
pub struct KernelConfig {
    values: BTreeMap<String, String>,
}

impl KernelConfig {
    pub fn parse(text: &str) -> KernelConfig {
        let values = text
            .lines()
            .filter(|l| l.starts_with("CONFIG_"))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        KernelConfig { values }
    }

    pub fn load(path: &Path) -> Result<KernelConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read kernel config {}", path.display()))?;
        Ok(KernelConfig::parse(&text))
    }

    pub fn get(&self, option: &str) -> Option<&str> {
        self.values.get(option).map(String::as_str)
    }

    /// Check that each option is built in.
    pub fn check_builtin(&self, options: &[&str]) -> Vec<ConfigCheck> {
        options
            .iter()
            .map(|o| {
                let value = self.get(o).map(str::to_string);
                ConfigCheck {
                    option: o.to_string(),
                    ok: value.as_deref() == Some("y"),
                    value,
                }
            })
            .collect()
    }
}

/// The failed checks as `CONFIG_X (is m)` / `CONFIG_Y (not set)`, for error messages.
pub fn describe_failures(checks: &[ConfigCheck]) -> Option<String> {
    let bad: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| match &c.value {
            Some(v) => format!("{} (is {v}, needs y)", c.option),
            None => format!("{} (not set)", c.option),
        })
        .collect();
    (!bad.is_empty()).then(|| bad.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_check_names_what_is_wrong() {
        let c = KernelConfig::parse(
            "# comment\nCONFIG_SCHED_CLASS_EXT=y\nCONFIG_BPF_SYSCALL=m\n# CONFIG_DEBUG_INFO_BTF is not set\n",
        );
        let checks = c.check_builtin(SCHED_EXT_OPTIONS);
        assert!(checks[0].ok);
        assert!(!checks[1].ok);
        let msg = describe_failures(&checks).unwrap();
        assert!(msg.contains("CONFIG_BPF_SYSCALL (is m, needs y)"), "{msg}");
        assert!(msg.contains("CONFIG_DEBUG_INFO_BTF (not set)"), "{msg}");
    }
}
