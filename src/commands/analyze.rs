//! `schedgen analyze DIR`: re-render a saved benchmark's report and charts from its JSON and
//! print the table, so a report can be regenerated (or improved) without running anything again.

use anyhow::Result;

use super::{EXIT_FAILED, EXIT_OK};
use crate::bench::{export, table};
use crate::cli::AnalyzeArgs;

pub fn run(args: &AnalyzeArgs) -> Result<u8> {
    let r = export::load(&args.dir)?;
    let written = export::rerender(&args.dir, &r)?;
    print!("{}", table::render(&r, table::stdout_color()));
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    println!("wrote {} in {}", names.join(", "), args.dir.display());
    Ok(if r.cases.iter().all(|c| c.verdict.pass) {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
