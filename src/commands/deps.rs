use anyhow::Result;

use super::{EXIT_FAILED, EXIT_OK};
use crate::bench::production;
use crate::case;
use crate::cli::DepsArgs;
use crate::paths::ProjectPaths;
use crate::workload::deps;

pub fn run(paths: &ProjectPaths, args: &DepsArgs) -> Result<u8> {
    if !args.production.is_empty() {
        return production(args);
    }
    let cases = match &args.test {
        Some(id) => vec![case::find(&paths.cases(), id)?],
        None => case::load_all(&paths.cases())?,
    };
    let python = deps::default_python();
    let mut missing_pkgs: Vec<String> = Vec::new();
    for c in &cases {
        for st in deps::check(c, &python) {
            if !st.ok {
                println!("{:<24} missing {} (package {})", c.id, st.what, st.package);
                missing_pkgs.push(st.package);
            }
        }
    }
    missing_pkgs.sort();
    missing_pkgs.dedup();
    if missing_pkgs.is_empty() {
        println!("all dependencies of {} case(s) are installed", cases.len());
        return Ok(EXIT_OK);
    }
    if !args.install {
        println!(
            "install with: apt-get install {}  (or `schedgen deps --install` as root)",
            missing_pkgs.join(" ")
        );
        return Ok(EXIT_FAILED);
    }
    deps::install(&missing_pkgs)?;
    let still: Vec<String> = cases
        .iter()
        .flat_map(|c| deps::check(c, &python))
        .filter(|s| !s.ok)
        .map(|s| s.what)
        .collect();
    if still.is_empty() {
        println!("installed {}", missing_pkgs.join(" "));
        Ok(EXIT_OK)
    } else {
        anyhow::bail!("still missing after install: {}", still.join(", "))
    }
}

/// The production schedulers' status, installing the missing ones when asked.
fn production(args: &DepsArgs) -> Result<u8> {
    let mut missing = Vec::new();
    for name in &args.production {
        let found = if args.install {
            Some(production::ensure(name, &|m| eprintln!("schedgen: {m}"))?)
        } else {
            production::find(name)?
        };
        match found {
            Some(p) => println!(
                "{:<14} {} at {}",
                p.binary_name,
                p.version,
                p.binary.display()
            ),
            None => {
                println!("{:<14} not installed", production::crate_name(name)?);
                missing.push(name.as_str());
            }
        }
    }
    if missing.is_empty() {
        return Ok(EXIT_OK);
    }
    println!(
        "install with: schedgen deps --install --production {}",
        missing.join(",")
    );
    Ok(EXIT_FAILED)
}
