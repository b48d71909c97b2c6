use std::path::Path;

use anyhow::Result;

use super::{EXIT_FAILED, EXIT_OK};
use crate::bpf::{compile, verify};
use crate::cli::CompileArgs;
use crate::paths::ProjectPaths;

pub fn run(paths: &ProjectPaths, kernel: Option<&Path>, args: &CompileArgs) -> Result<u8> {
    if !args.source.exists() {
        anyhow::bail!("{} does not exist", args.source.display());
    }
    let k = crate::kernel::select(kernel)?;
    let kernel_dir = &crate::kernel::header_dir(&k)?;
    let report = match &args.output {
        Some(out) => compile::compile(
            &args.source,
            out,
            &compile::Headers::new(kernel_dir, &paths.bpf_reference())
                .with_include(&args.build.include),
        )?,
        None => verify::compile_for(
            &args.source,
            kernel_dir,
            &paths.bpf_reference(),
            &args.build.include,
        )?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        eprint!("{}", report.output);
        match &report.object {
            Some(o) => println!(
                "compiled {} for {} in {:.2} s: {o}",
                args.source.display(),
                k.release,
                report.seconds
            ),
            None => println!(
                "{} does not compile for {} ({} error(s))",
                args.source.display(),
                k.release,
                report.errors().count()
            ),
        }
    }
    Ok(if report.ok { EXIT_OK } else { EXIT_FAILED })
}
