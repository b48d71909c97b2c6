use std::path::Path;

use anyhow::{Context, Result};

use super::{EXIT_FAILED, EXIT_OK};
use crate::bpf::compile::Headers;
use crate::cli::CheckArgs;
use crate::generate::checks;
use crate::paths::ProjectPaths;

pub fn run(paths: &ProjectPaths, kernel: Option<&Path>, args: &CheckArgs) -> Result<u8> {
    let source = std::fs::read_to_string(&args.source)
        .with_context(|| format!("cannot read {}", args.source.display()))?;
    let k = crate::kernel::select(kernel)?;
    let kfuncs_h = k
        .kfuncs_h
        .as_ref()
        .context("the kernel has no kfuncs.h: run `schedgen kernel fetch`")?;
    let kfuncs = checks::kfunc_names(
        &std::fs::read_to_string(kfuncs_h)
            .with_context(|| format!("cannot read {}", kfuncs_h.display()))?,
    );
    let headers = Headers::new(&crate::kernel::header_dir(&k)?, &paths.bpf_reference())
        .with_include(&args.build.include);
    let report = checks::check(
        &source,
        &checks::Target {
            kfuncs: &kfuncs,
            headers: &headers,
        },
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in report.problems.iter().chain(&report.compiler_errors) {
            println!("{}: {p}", args.source.display());
        }
        let n = report.problems.len() + report.compiler_errors.len();
        println!(
            "{}: {} for {} ({})",
            args.source.display(),
            match n {
                0 => "no problems".to_string(),
                n => format!("{n} problem(s)"),
            },
            k.release,
            report.checker
        );
        if report.checker.starts_with("lexical") {
            eprintln!(
                "note: lexical checks only see spelling; install libclang1-19 for the full checks"
            );
        }
    }
    Ok(
        if report.problems.is_empty() && report.compiler_errors.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED
        },
    )
}
