use std::path::Path;

use anyhow::{Context, Result};

use crate::bpf::session::Knowledge;
use crate::bpf::verify::{self, VerifyOptions, VerifyReport};
use crate::cli::VerifyArgs;
use crate::paths::ProjectPaths;
use crate::sandbox::Backend;

pub fn run(
    paths: &ProjectPaths,
    kernel: Option<&Path>,
    backend: Backend,
    args: &VerifyArgs,
) -> Result<u8> {
    if args.duration.is_nan() || args.duration <= 0.0 {
        anyhow::bail!("--duration must be a positive number of seconds");
    }
    let opts = VerifyOptions {
        duration_s: args.duration,
        backend,
        kernel: kernel.map(Path::to_path_buf),
        cpus: args.cpus,
        memory_mib: args.memory,
        knowledge: Knowledge {
            settings: args.knobs.set.clone(),
            attach_cpu: args.knobs.attach_cpu,
            long_comms: args.long_comms.clone(),
            classes: match &args.classes {
                Some(f) => crate::classify::load_classes(f)?,
                None => Default::default(),
            },
            tracer: None,
        },
        project_headers: paths.bpf_reference(),
        include: args.build.include.clone(),
    };
    let report = verify::verify(&args.scheduler, &opts)?;
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&report));
    }
    Ok(report.exit_status())
}

pub(super) fn summary(r: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let verdict = match r.failure {
        None => "PASS".to_string(),
        Some(crate::bpf::runtime::Failure::Interrupted) => "INTERRUPTED (no verdict)".to_string(),
        Some(f) => format!("FAIL: {}", f.describe()),
    };
    let _ = writeln!(
        s,
        "{} — {verdict} (stage reached: {:?}, kernel {}, {})",
        r.input, r.stage, r.kernel_release, r.place
    );
    if let Some(c) = &r.compile {
        if let Some(v) = &c.scx_headers {
            let _ = writeln!(
                s,
                "  scx dialect: compiled against scx's headers {v} (scx_cargo)"
            );
        }
        if !c.ok {
            for d in c.errors().take(20) {
                let _ = writeln!(s, "  {}:{}:{}: {}", d.file, d.line, d.column, d.message);
            }
            let old_api = std::fs::read_to_string(&r.input).is_ok_and(|src| {
                crate::port::rewrites::uses_old_api(
                    &src,
                    crate::bpf::compile::Dialect::detect(&src),
                )
            });
            if old_api {
                let _ = writeln!(
                    s,
                    "  hint: it calls sched_ext functions an API change renamed or changed: `schedgen port {}` rewrites them",
                    r.input
                );
            }
        }
    }
    if let Some(rt) = &r.runtime {
        if let Some(name) = &rt.ops_name {
            let _ = writeln!(
                s,
                "  loaded in {:.2} s · ran as `{name}` for {:.1} s of {:.1} s under load",
                rt.load_s, rt.enabled_s, rt.requested_s
            );
        }
        if let Some(log) = &rt.verifier_log {
            let lines: Vec<&str> = log.lines().collect();
            let _ = writeln!(s, "  verifier log (last lines of {}):", lines.len());
            for l in &lines[lines.len().saturating_sub(12)..] {
                let _ = writeln!(s, "    {l}");
            }
        }
        if let Some(e) = &rt.exit {
            let from = match e.source {
                crate::bpf::exit::ExitSource::KernelLog => " (from the kernel log)",
                crate::bpf::exit::ExitSource::Scheduler => "",
            };
            let _ = writeln!(s, "  {}{from}", e.line());
            if let Some(d) = &e.dump {
                let lines: Vec<&str> = d.lines().collect();
                let _ = writeln!(
                    s,
                    "  kernel debug dump (first {} of {} lines; all of it with --json):",
                    lines.len().min(12),
                    lines.len()
                );
                for l in lines.iter().take(12) {
                    let _ = writeln!(s, "    {l}");
                }
            }
        }
    }
    if let Some(e) = &r.error {
        if r.failure.is_some() {
            for l in e.lines().take(20) {
                let _ = writeln!(s, "  ! {l}");
            }
        }
    }
    if let Some(c) = &r.console_log {
        let _ = writeln!(s, "  console log: {c}");
    }
    let _ = writeln!(
        s,
        "  total {:.1} s{}",
        r.total_s,
        r.vm_start_s
            .map(|v| format!(" (VM start to job {v:.1} s)"))
            .unwrap_or_default()
    );
    s
}
