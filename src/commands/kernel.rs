//! `schedgen kernel fetch|info`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::{KernelArgs, KernelCommand};
use crate::kernel::{self, FetchOutcome, Kernel};
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
    match kernel::fetch(force, &progress)? {
        FetchOutcome::AlreadyCached(k) => {
            println!(
                "{} already cached in {}",
                k.release,
                k.vmlinuz.parent().unwrap_or(&k.vmlinuz).display()
            );
        }
        FetchOutcome::Fetched(k) => {
            println!(
                "fetched {} in {:.1}s",
                k.release,
                start.elapsed().as_secs_f64()
            );
            print_kernel(&k);
        }
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
}

fn info(explicit: &Option<PathBuf>, backend: Backend, json: bool) -> Result<u8> {
    let info = Info {
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
    for c in k.sched_ext_checks.iter().chain(&k.vm_checks) {
        let v = c.value.as_deref().unwrap_or("not set");
        println!("  {} {}={v}", if c.ok { "ok  " } else { "BAD " }, c.option);
    }
}
