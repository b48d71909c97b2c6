//! Compile a scheduler's C source for the BPF target, against the target kernel's own headers.
//!
//! The include path puts the kernel's generated `vmlinux.h` and `kfuncs.h` first and the
//! project's `bpf-reference/schedgen.bpf.h` second, so a scheduler sees exactly the kfuncs the
//! kernel that will run it exports: API drift between kernel versions shows up here, as a
//! compiler error with a line number, not as a mysterious load failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Oldest clang that compiles current sched_ext code.
const MIN_CLANG: u32 = 19;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// One compiler message, located in a file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompileReport {
    pub ok: bool,
    pub source: String,
    pub object: Option<String>,
    pub clang: String,
    pub command: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
    /// Everything clang printed, untrimmed.
    pub output: String,
    pub seconds: f64,
}

impl CompileReport {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

/// Headers a scheduler is compiled against.
#[derive(Debug, Clone)]
pub struct Headers {
    /// Directory holding the target kernel's `vmlinux.h` and `kfuncs.h`.
    pub kernel_dir: PathBuf,
    /// The project's `bpf-reference/` (for `schedgen.bpf.h`).
    pub project_dir: PathBuf,
}

fn clang_version(bin: &Path) -> Option<u32> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text.split("clang version ").nth(1)?;
    after.split('.').next()?.trim().parse().ok()
}

/// `$SCHEDGEN_CLANG`, else the newest `clang-N` (N ≥ 19) on `PATH`, else `clang` if new enough.
pub fn find_clang() -> Result<PathBuf> {
    if let Ok(c) = std::env::var("SCHEDGEN_CLANG") {
        return Ok(PathBuf::from(c));
    }
    for v in (MIN_CLANG..=30).rev() {
        if let Some(p) = crate::workload::deps::which(&format!("clang-{v}")) {
            return Ok(p);
        }
    }
    if let Some(p) = crate::workload::deps::which("clang") {
        match clang_version(&p) {
            Some(v) if v >= MIN_CLANG => return Ok(p),
            Some(v) => bail!("clang {v} is too old for sched_ext code: install clang-{MIN_CLANG} (`apt-get install clang-{MIN_CLANG}`)"),
            None => {}
        }
    }
    bail!("no clang ≥ {MIN_CLANG} found: install it with `apt-get install clang-{MIN_CLANG}` or set SCHEDGEN_CLANG")
}

/// Parse clang's `file:line:col: severity: message` lines.
pub fn parse_diagnostics(output: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for line in output.lines() {
        let mut parts = line.splitn(5, ':');
        let (Some(file), Some(l), Some(c), Some(sev), Some(msg)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            continue;
        };
        let (Ok(line_no), Ok(col)) = (l.trim().parse(), c.trim().parse()) else {
            continue;
        };
        let severity = match sev.trim() {
            "error" | "fatal error" => Severity::Error,
            "warning" => Severity::Warning,
            "note" => Severity::Note,
            _ => continue,
        };
        out.push(Diagnostic {
            file: file.to_string(),
            line: line_no,
            column: col,
            severity,
            message: msg.trim().to_string(),
        });
    }
    out
}

/// The flags that decide how a scheduler's C is read (target, defines, extensions, include
/// path): shared by the compiler and the libclang static checks, so both see the same program.
pub fn language_args(headers: &Headers) -> Vec<String> {
    vec![
        "-target".into(),
        "bpf".into(),
        "-D__TARGET_ARCH_x86".into(),
        // vmlinux.h of 7.x kernels has tagged anonymous members (`struct ns_tree;` inside a
        // union) that clang drops with a warning unless Microsoft extensions are on.
        "-fms-extensions".into(),
        "-Wno-microsoft-anon-tag".into(),
        "-Wno-missing-declarations".into(),
        "-fno-color-diagnostics".into(),
        format!("-I{}", headers.kernel_dir.display()),
        format!("-I{}", headers.project_dir.display()),
    ]
}

/// Compile `source` into `object`. An error only when clang cannot run at all; a source that
/// does not compile gives a report with `ok: false` and the diagnostics.
pub fn compile(source: &Path, object: &Path, headers: &Headers) -> Result<CompileReport> {
    let clang = find_clang()?;
    for (what, p) in [
        ("vmlinux.h", &headers.kernel_dir),
        ("kfuncs.h", &headers.kernel_dir),
    ] {
        if !p.join(what).exists() {
            bail!("{} has no {what}: run `schedgen kernel fetch`", p.display());
        }
    }
    if let Some(dir) = object.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut args = language_args(headers);
    args.splice(0..0, ["-g".to_string(), "-O2".to_string()]);
    args.extend([
        "-c".into(),
        source.display().to_string(),
        "-o".into(),
        object.display().to_string(),
    ]);
    let start = Instant::now();
    let out = Command::new(&clang)
        .args(&args)
        .output()
        .with_context(|| format!("cannot run {}", clang.display()))?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = out.status.success() && object.exists();
    let mut command = vec![clang.display().to_string()];
    command.extend(args);
    Ok(CompileReport {
        ok,
        source: source.display().to_string(),
        object: ok.then(|| object.display().to_string()),
        clang: clang.display().to_string(),
        command,
        diagnostics: parse_diagnostics(&output),
        output,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_clang_diagnostics() {
        let text = "sched.bpf.c:12:5: error: use of undeclared identifier 'foo'\n\
                    12 |     foo();\n\
                    sched.bpf.c:3:1: warning: unused variable 'x' [-Wunused-variable]\n\
                    ./schedgen.bpf.h:40:2: note: expanded from macro 'X'\n\
                    x.c:1:1: fatal error: 'missing.h' file not found\n\
                    2 errors generated.";
        let d = parse_diagnostics(text);
        assert_eq!(d.len(), 4);
        assert_eq!(
            (d[0].file.as_str(), d[0].line, d[0].column),
            ("sched.bpf.c", 12, 5)
        );
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(d[0].message, "use of undeclared identifier 'foo'");
        assert_eq!(d[1].severity, Severity::Warning);
        assert_eq!(d[2].severity, Severity::Note);
        assert_eq!(d[3].severity, Severity::Error);
    }
}
