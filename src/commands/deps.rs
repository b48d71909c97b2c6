use anyhow::Result;

use super::{EXIT_FAILED, EXIT_OK};
use crate::case;
use crate::cli::DepsArgs;
use crate::paths::ProjectPaths;
use crate::workload::deps;

pub fn run(paths: &ProjectPaths, args: &DepsArgs) -> Result<u8> {
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
