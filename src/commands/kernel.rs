//! `schedgen kernel fetch|info`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::{KernelArgs, KernelCommand};
use crate::kernel::{self, scx_headers, FetchOutcome, Kernel};
use crate::sandbox::{self, Backend};

pub fn run(
    explicit: &Option<PathBuf>,
    backend: Backend,
    args: &KernelArgs,
    quiet: bool,
) -> Result<u8> {
    match args.command {
        KernelCommand::Fetch { force } => fetch(force, quiet),
        KernelCommand::Info { json } => info(explicit, backend, json),
    }
}

fn fetch(force: bool, quiet: bool) -> Result<u8> {
    let start = Instant::now();
    let progress = |step: &str| {
        if !quiet {
            eprintln!("[{:5.1}s] {step}", start.elapsed().as_secs_f64());
        }
    };
    let k = match kernel::fetch(force, &progress)? {
        FetchOutcome::AlreadyCached(k) => {
            println!(
                "{} already cached in {}",
                k.release,
                k.vmlinuz.parent().unwrap_or(&k.vmlinuz).display()
            );
            k
        }
        FetchOutcome::Fetched(k) => {
            println!(
                "fetched {} in {:.1}s",
                k.release,
                start.elapsed().as_secs_f64()
            );
            print_kernel(&k);
            k
        }
    };
    // scx's headers, so schedulers written for them compile without a network later.
    let headers = scx_headers::ensure(&k.release, &progress)?;
    for h in &headers {
        println!(
            "scx headers {} (libbpf {}) in {}",
            h.version,
            h.libbpf_version,
            h.dir.display()
        );
    }
    Ok(EXIT_OK)
}

#[derive(Serialize)]
struct Info {
    /// The kernel VM jobs will boot, or why there is none.
    selected: Result<Kernel, String>,
    cached: Vec<Kernel>,
    backend: Backend,
    place: Result<sandbox::Place, String>,
    host_unfit: Option<String>,
    kvm: bool,
    /// scx header releases for the selected kernel (for schedulers in scx's dialect).
    scx_headers: Vec<scx_headers::Status>,
}

fn info(explicit: &Option<PathBuf>, backend: Backend, json: bool) -> Result<u8> {
    let info = Info {
        scx_headers: kernel::select(explicit.as_deref())
            .map(|k| scx_headers::status(&k.release))
            .unwrap_or_default(),
        selected: kernel::select(explicit.as_deref()).map_err(|e| format!("{e:#}")),
        cached: kernel::cached(),
        backend,
        place: sandbox::choose(backend).map_err(|e| format!("{e:#}")),
        host_unfit: sandbox::host_unfit_reason(),
        kvm: sandbox::vm::kvm_usable(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("cached kernels in {}:", kernel::kernels_dir().display());
        if info.cached.is_empty() {
            println!("  none (run `schedgen kernel fetch`)");
        }
        for k in &info.cached {
            let when = k
                .fetched
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            println!(
                "  {}  (Debian {}, fetched {when})",
                k.release,
                k.package_version.as_deref().unwrap_or("?")
            );
        }
        match &info.selected {
            Ok(k) => {
                println!("will use:");
                print_kernel(k);
            }
            Err(e) => println!("will use: nothing: {e}"),
        }
        match &info.place {
            Ok(p) => println!("backend {backend:?} runs sched_ext jobs on: {p:?}"),
            Err(e) => println!("backend {backend:?}: {e}"),
        }
        if let Some(why) = &info.host_unfit {
            println!("  host unfit: {why}");
        }
        println!(
            "  VM acceleration: {}",
            if info.kvm {
                "KVM"
            } else {
                "TCG (no kvm_intel/kvm_amd)"
            }
        );
    }
    Ok(if info.selected.is_ok() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn print_kernel(k: &Kernel) {
    println!("  release   {} ({:?})", k.release, k.source);
    println!("  vmlinuz   {}", k.vmlinuz.display());
    println!("  config    {}", k.config.display());
    let opt = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into())
    };
    println!("  vmlinux   {}", opt(&k.vmlinux));
    println!("  vmlinux.h {}", opt(&k.vmlinux_h));
    match k.kfunc_count {
        Some(n) => println!("  kfuncs.h  {} ({n} kfuncs)", opt(&k.kfuncs_h)),
        None => println!("  kfuncs.h  -"),
    }
    let releases = scx_headers::compatible(&k.release);
    if releases.is_empty() {
        println!("  scx hdrs  none serves this kernel (scx's dialect cannot be compiled)");
    }
    for (i, r) in releases.iter().enumerate() {
        let state = match scx_headers::cached(r.version) {
            Some(h) => h.dir.display().to_string(),
            None => "not fetched (`schedgen kernel fetch`)".into(),
        };
        println!(
            "  {} scx_cargo {}: {state}\n              {}",
            if i == 0 { "scx hdrs " } else { "         " },
            r.version,
            r.api
        );
    }
    for c in k.sched_ext_checks.iter().chain(&k.vm_checks) {
        let v = c.value.as_deref().unwrap_or("not set");
        println!("  {} {}={v}", if c.ok { "ok  " } else { "BAD " }, c.option);
    }
}
