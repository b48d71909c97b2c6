use anyhow::Result;
use serde::Serialize;

use super::EXIT_OK;
use crate::case;
use crate::cli::ListArgs;
use crate::paths::ProjectPaths;
use crate::workload::deps::{self, DepStatus};

#[derive(Serialize)]
struct Row {
    id: String,
    category: String,
    name: String,
    dependencies: Vec<DepStatus>,
}

pub fn run(paths: &ProjectPaths, args: &ListArgs) -> Result<u8> {
    let python = deps::default_python();
    let rows: Vec<Row> = case::load_all(&paths.cases())?
        .into_iter()
        .map(|c| Row {
            dependencies: deps::check(&c, &python),
            id: c.id,
            category: c.category.to_string(),
            name: c.name,
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(EXIT_OK);
    }
    println!("{:<24} {:<17} {:<9} NAME", "ID", "CATEGORY", "DEPS");
    for r in &rows {
        let missing: Vec<&str> = r
            .dependencies
            .iter()
            .filter(|d| !d.ok)
            .map(|d| d.package.as_str())
            .collect();
        let deps = if missing.is_empty() {
            "ok".to_string()
        } else {
            "missing".to_string()
        };
        println!("{:<24} {:<17} {:<9} {}", r.id, r.category, deps, r.name);
        if !missing.is_empty() {
            println!("{:<24} needs: {}", "", missing.join(" "));
        }
    }
    Ok(EXIT_OK)
}
