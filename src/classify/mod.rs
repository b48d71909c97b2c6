//! Task classes: which processes belong to the long tail, learned from a profile and applied
//! while a scheduler runs.
//!
//! - [`rules`]: the rule language and ordered class sets;
//! - [`learn`]: the simplest rule that separates the long task, from a profile's processes;
//! - [`tracer`]: the run-time classifier (a BPF exec/fork/exit tracer whose events userspace
//!   classifies into the kernel map that `schedgen.bpf.h` schedulers read).

pub mod learn;
pub mod rules;
pub mod tracer;

use std::path::Path;

use anyhow::{Context, Result};

/// Read task classes from a file: a profile (`schedgen profile --save`, its `task_classes`),
/// what the learner wrote (`{"classes": [...], ...}`), or a bare list of classes.
pub fn load_classes(path: &Path) -> Result<rules::ClassSet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if let Some(t) = v.get("task_classes") {
        v = t.clone();
    }
    let set = match v.get("classes") {
        Some(c) => c.clone(),
        None => v,
    };
    serde_json::from_value(set).with_context(|| {
        format!(
            "{} holds neither a profile with classes nor a class set",
            path.display()
        )
    })
}
