//! `schedgen port`: bring a scheduler written for an older sched_ext API to the target kernel.
//!
//! First the deterministic rewrites of the known API changes (`rewrites`); then, when a model
//! is configured and the result still fails, the model repairs it from the compiler's or the
//! kernel's diagnostics, as `generate` repairs its own candidates; finally `verify`. The input
//! file is only ever read.

pub mod rewrites;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::bpf::compile::{CompileReport, Dialect};
use crate::bpf::runtime::Failure;
use crate::bpf::verify::{self, VerifyOptions, VerifyReport};
use crate::generate::extract::extract_scheduler;
use crate::generate::llm::{ChatProvider, Conversation, Purpose};
use crate::sandbox::{self, Backend};
use rewrites::Applied;

pub const PORT_SCHEMA: &str = "schedgen.port.v1";
/// Recorded with every model repair, so a port says which instructions the model had.
pub const PROMPT_VERSION: &str = "port.v1";

/// How to port.
pub struct PortOptions {
    pub backend: Backend,
    pub kernel: Option<PathBuf>,
    /// Verify in the sandbox; otherwise only compile.
    pub verify: bool,
    pub duration_s: f64,
    pub verify_template: VerifyOptions,
    pub max_repairs: u32,
}

/// One model repair.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    pub attempt: u32,
    /// What failed before it.
    pub failure: String,
    /// The model's reply had a scheduler in it.
    pub extracted: bool,
    /// As the server reported them (`None`: it did not).
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// Everything a port did.
#[derive(Debug, Clone, Serialize)]
pub struct PortReport {
    pub schema: String,
    pub input: String,
    pub output: String,
    pub dialect: Dialect,
    pub kernel_release: String,
    /// The deterministic rewrites, in source order.
    pub changes: Vec<Applied>,
    pub repairs: Vec<Repair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    /// The last compilation (when verifying, it is inside `verify` as well).
    pub compile: Option<CompileReport>,
    pub verify: Option<VerifyReport>,
    /// Compiled (and, when asked, verified).
    pub passed: bool,
    pub failure: Option<Failure>,
}

impl PortReport {
    pub fn exit_status(&self) -> u8 {
        self.failure.map(Failure::exit_status).unwrap_or(0)
    }
}

/// How one check of the port came out.
enum Checked {
    Passed,
    Failed { failure: Failure, feedback: String },
}

fn check(output: &Path, opts: &PortOptions, report: &mut PortReport) -> Result<Checked> {
    if opts.verify {
        let vr = verify::verify(output, &opts.verify_template)?;
        report.compile = vr.compile.clone();
        let outcome = match vr.failure {
            None => Checked::Passed,
            Some(f) => Checked::Failed {
                failure: f,
                feedback: crate::generate::pipeline::verify_feedback(&vr).1,
            },
        };
        report.verify = Some(vr);
        return Ok(outcome);
    }
    let place = sandbox::choose(opts.backend)?;
    let (_, kernel_dir) = verify::target_headers(place, opts.kernel.as_deref())?;
    let c = verify::compile_for(
        output,
        &kernel_dir,
        &opts.verify_template.project_headers,
        &opts.verify_template.include,
    )?;
    let outcome = if c.ok {
        Checked::Passed
    } else {
        Checked::Failed {
            failure: Failure::CompileError,
            feedback: c
                .errors()
                .take(25)
                .map(|d| format!("line {}:{}: error: {}", d.line, d.column, d.message))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    };
    report.compile = Some(c);
    Ok(outcome)
}

fn system_prompt(release: &str, dialect: Dialect) -> String {
    let headers = match dialect {
        Dialect::Scx => "scx's BPF headers (`#include <scx/common.bpf.h>`)",
        Dialect::Schedgen => "schedgen's header (`#include \"schedgen.bpf.h\"`)",
    };
    format!(
        "You port Linux sched_ext BPF schedulers (C, compiled with clang for the BPF target) to \
         kernel {release}. The scheduler includes {headers}. Keep its policy exactly as it is: \
         change only what the diagnostics require (renamed kfuncs, changed arguments, removed \
         helpers). Reply with the whole corrected file in one ```c block and nothing else."
    )
}

fn repair_request(source: &str, failure: Failure, feedback: &str) -> String {
    format!(
        "This port {}:\n\n{feedback}\n\nThe current file:\n\n```c\n{source}```\n\nFix it and reply \
         with the whole file in one ```c block.",
        failure.describe()
    )
}

/// Port `input` into `output`. `provider`, when given, repairs what the rewrites leave broken.
pub fn port(
    input: &Path,
    output: &Path,
    opts: &PortOptions,
    provider: Option<&dyn ChatProvider>,
    say: &dyn Fn(&str),
) -> Result<PortReport> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    anyhow::ensure!(
        !same(input, output),
        "the output {} is the input: port never modifies its input (give -o OUT)",
        output.display()
    );
    let original = std::fs::read_to_string(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let dialect = Dialect::detect(&original);
    let (ported, changes) = rewrites::apply(&original, dialect);
    std::fs::write(output, &ported)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let place = sandbox::choose(opts.backend)?;
    let (release, _) = verify::target_headers(place, opts.kernel.as_deref())?;
    say(&format!(
        "{}: {} rewrite(s) for kernel {release}; wrote {}",
        input.display(),
        changes.len(),
        output.display()
    ));
    let mut report = PortReport {
        schema: PORT_SCHEMA.into(),
        input: input.display().to_string(),
        output: output.display().to_string(),
        dialect,
        kernel_release: release.clone(),
        changes,
        repairs: Vec::new(),
        prompt_version: None,
        compile: None,
        verify: None,
        passed: false,
        failure: None,
    };
    let mut conversation: Option<Conversation> = None;
    let mut attempt = 0;
    loop {
        say(if opts.verify {
            "compiling and verifying in the sandbox"
        } else {
            "compiling"
        });
        let (failure, feedback) = match check(output, opts, &mut report)? {
            Checked::Passed => {
                report.passed = true;
                report.failure = None;
                return Ok(report);
            }
            Checked::Failed { failure, feedback } => (failure, feedback),
        };
        report.failure = Some(failure);
        let Some(model) = provider else {
            return Ok(report);
        };
        if attempt >= opts.max_repairs
            || failure == Failure::Interrupted
            || crate::interrupt::requested()
        {
            return Ok(report);
        }
        attempt += 1;
        let current = std::fs::read_to_string(output)?;
        let request = repair_request(&current, failure, &feedback);
        let conv = conversation.get_or_insert_with(|| {
            Conversation::new(system_prompt(&release, dialect), String::new())
        });
        if conv.messages.len() == 2 && conv.messages[1].content.is_empty() {
            conv.messages[1].content = request;
            conv.messages[1].purpose = Some(Purpose::Repair);
        } else {
            conv.push_request(Purpose::Repair, request);
        }
        report.prompt_version = Some(PROMPT_VERSION.into());
        say(&format!(
            "repair {attempt}/{}: asking {} ({})",
            opts.max_repairs,
            model.info().provider,
            model.info().model
        ));
        let reply = model.chat(conv).map_err(|e| anyhow::anyhow!("{e}"))?;
        conv.push_assistant(reply.text.clone());
        let usage = reply.record.usage.as_ref();
        let extracted = extract_scheduler(&reply.text);
        report.repairs.push(Repair {
            attempt,
            failure: failure.describe().into(),
            extracted: extracted.is_ok(),
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
        });
        match extracted {
            Ok(x) => std::fs::write(output, &x.source)
                .with_context(|| format!("cannot write {}", output.display()))?,
            Err(e) => say(&format!("repair {attempt}: {e}; keeping the previous file")),
        }
    }
}
