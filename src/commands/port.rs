//! `schedgen port FILE [-o OUT]`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::bpf::session::Knowledge;
use crate::bpf::verify::VerifyOptions;
use crate::cli::PortArgs;
use crate::generate::llm::{ChatProvider, OpenAiProvider};
use crate::paths::ProjectPaths;
use crate::port::{self, PortOptions, PortReport};
use crate::sandbox::Backend;

fn default_output(source: &Path) -> PathBuf {
    let name = source
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("scheduler.bpf.c");
    let stem = name.trim_end_matches(".c").trim_end_matches(".bpf");
    PathBuf::from(format!("{stem}.ported.bpf.c"))
}

fn provider(args: &PortArgs) -> Result<Option<Box<dyn ChatProvider>>> {
    if !args.model.uses_model() {
        return Ok(None);
    }
    let config = args.model.endpoint()?;
    Ok(Some(Box::new(
        OpenAiProvider::new(config)?.with_retry_notice(|l| eprintln!("port: {l}")),
    )))
}

pub fn run(
    paths: &ProjectPaths,
    kernel: Option<&Path>,
    backend: Backend,
    args: &PortArgs,
) -> Result<u8> {
    if args.duration.is_nan() || args.duration <= 0.0 {
        anyhow::bail!("--duration must be a positive number of seconds");
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.source));
    let model = provider(args)?;
    let opts = PortOptions {
        backend,
        kernel: kernel.map(Path::to_path_buf),
        verify: !args.no_verify,
        duration_s: args.duration,
        verify_template: VerifyOptions {
            duration_s: args.duration,
            backend,
            kernel: kernel.map(Path::to_path_buf),
            cpus: None,
            memory_mib: 2048,
            knowledge: Knowledge {
                settings: args.knobs.set.clone(),
                attach_cpu: args.knobs.attach_cpu,
                ..Knowledge::default()
            },
            project_headers: paths.bpf_reference(),
            include: args.build.include.clone(),
        },
        max_repairs: args.max_repairs,
    };
    let say = |m: &str| eprintln!("port: {m}");
    let report = port::port(&args.source, &output, &opts, model.as_deref(), &say)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let original = std::fs::read_to_string(&args.source)
            .with_context(|| format!("cannot read {}", args.source.display()))?;
        let ported = std::fs::read_to_string(&output)
            .with_context(|| format!("cannot read {}", output.display()))?;
        print!("{}", text(&report, &original, &ported));
    }
    Ok(report.exit_status())
}

fn text(r: &PortReport, original: &str, ported: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if r.changes.is_empty() {
        let _ = writeln!(s, "no known API change applies to {}", r.input);
    } else {
        let _ = writeln!(s, "rewrites for kernel {}:", r.kernel_release);
        for c in &r.changes {
            let _ = writeln!(
                s,
                "  line {:4}: {} → {}   [{}]",
                c.line, c.old, c.new, c.since
            );
        }
    }
    for rep in &r.repairs {
        let _ = writeln!(
            s,
            "model repair {} after \"{}\": {}",
            rep.attempt,
            rep.failure,
            if rep.extracted {
                "new file"
            } else {
                "no code in the reply"
            }
        );
    }
    let diff = similar::TextDiff::from_lines(original, ported);
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&r.input, &r.output)
        .to_string();
    if !unified.is_empty() {
        s.push_str(&unified);
        if !unified.ends_with('\n') {
            s.push('\n');
        }
    }
    match &r.verify {
        Some(v) => s.push_str(&super::verify::summary(v)),
        None => match &r.compile {
            Some(c) if c.ok => {
                let _ = writeln!(s, "{}: compiles (not verified: --no-verify)", r.output);
            }
            Some(c) => {
                let _ = writeln!(s, "{}: does not compile", r.output);
                for d in c.errors().take(20) {
                    let _ = writeln!(s, "  {}:{}:{}: {}", d.file, d.line, d.column, d.message);
                }
            }
            None => {}
        },
    }
    s
}
