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

use crate::kernel::scx_headers::{self, ScxHeaders};

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
    #[serde(default)]
    pub dialect: Dialect,
    /// The scx header release it was compiled against (scx's dialect only).
    #[serde(default)]
    pub scx_headers: Option<String>,
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

/// Which headers a scheduler is written against.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// schedgen's own `schedgen.bpf.h` (vmlinux.h, libbpf's helpers, this kernel's kfuncs).
    #[default]
    Schedgen,
    /// scx's `scx/common.bpf.h` and friends, as the ecosystem writes schedulers.
    Scx,
}

impl Dialect {
    /// scx's when the source includes an `scx/…` header and not `schedgen.bpf.h` (a file that
    /// includes both is schedgen's, told that scx's headers do not mix with it), else
    /// schedgen's.
    pub fn detect(source: &str) -> Dialect {
        let included: Vec<&str> = source
            .lines()
            .filter_map(|l| {
                let rest = l.trim_start().strip_prefix('#')?.trim_start();
                let rest = rest.strip_prefix("include")?.trim_start();
                Some(rest.trim_start_matches(['<', '"']))
            })
            .collect();
        let scx = included.iter().any(|i| i.starts_with("scx/"));
        let ours = included.iter().any(|i| i.starts_with("schedgen.bpf.h"));
        if scx && !ours {
            Dialect::Scx
        } else {
            Dialect::Schedgen
        }
    }
}

/// Headers a scheduler is compiled against.
#[derive(Debug, Clone)]
pub struct Headers {
    /// Directory holding the target kernel's `vmlinux.h` and `kfuncs.h`.
    pub kernel_dir: PathBuf,
    /// The project's `bpf-reference/` (for `schedgen.bpf.h`).
    pub project_dir: PathBuf,
    /// scx header releases that serve the target kernel, newest first (for the scx dialect).
    pub scx: Vec<ScxHeaders>,
    /// The scheduler's own include directories (`-I DIR`), searched first.
    pub include: Vec<PathBuf>,
}

impl Headers {
    /// The kernel's and the project's headers, with whichever scx releases for that kernel are
    /// in the cache.
    pub fn new(kernel_dir: &Path, project_dir: &Path) -> Headers {
        Headers {
            kernel_dir: kernel_dir.to_path_buf(),
            project_dir: project_dir.to_path_buf(),
            scx: scx_headers::cached_for_kernel_dir(kernel_dir),
            include: Vec::new(),
        }
    }

    pub fn with_include(mut self, include: &[PathBuf]) -> Headers {
        self.include = include.to_vec();
        self
    }

    /// The scx releases to try, fetching them on first use.
    fn scx_releases(&self) -> Result<Vec<ScxHeaders>> {
        if !self.scx.is_empty() {
            return Ok(self.scx.clone());
        }
        let release = scx_headers::release_of_kernel_dir(&self.kernel_dir);
        let fetched = scx_headers::ensure(&release, &|m| eprintln!("schedgen: {m}"))?;
        if fetched.is_empty() {
            bail!(
                "no release of scx's headers serves kernel {release} (they start at {}.{})",
                scx_headers::RELEASES[scx_headers::RELEASES.len() - 1]
                    .min_kernel
                    .0,
                scx_headers::RELEASES[scx_headers::RELEASES.len() - 1]
                    .min_kernel
                    .1
            );
        }
        Ok(fetched)
    }
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
/// `scx` is the scx header release for a scheduler in scx's dialect.
pub fn language_args(headers: &Headers, scx: Option<&ScxHeaders>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-target".into(),
        "bpf".into(),
        "-D__TARGET_ARCH_x86".into(),
        // vmlinux.h of 7.x kernels has tagged anonymous members (`struct ns_tree;` inside a
        // union) that clang drops with a warning unless Microsoft extensions are on.
        "-fms-extensions".into(),
        "-Wno-microsoft-anon-tag".into(),
        "-Wno-missing-declarations".into(),
        "-fno-color-diagnostics".into(),
    ];
    args.extend(headers.include.iter().map(|d| format!("-I{}", d.display())));
    args.push(format!("-I{}", headers.kernel_dir.display()));
    args.push(format!("-I{}", headers.project_dir.display()));
    if let Some(scx) = scx {
        // As scx builds its schedulers: its headers use 32-bit atomics and the arch define.
        args.push("-mcpu=v3".into());
        args.push("-D__SCX_TARGET_ARCH_x86".into());
        args.extend(
            scx.include_dirs()
                .iter()
                .map(|d| format!("-I{}", d.display())),
        );
    }
    args
}

/// The scx release a libclang parse of `source` should use, for a source in scx's dialect:
/// the newest that serves the kernel and that the source compiles with (a syntax-only clang
/// pass per release, as `compile` picks), else the newest.
pub fn scx_for_parse(headers: &Headers, source: &str) -> Option<ScxHeaders> {
    use std::io::Write;
    if Dialect::detect(source) != Dialect::Scx {
        return None;
    }
    let releases = headers.scx_releases().ok()?;
    let clang = find_clang().ok()?;
    let compiles = |scx: &ScxHeaders| -> bool {
        let child = Command::new(&clang)
            .args(language_args(headers, Some(scx)))
            .args(["-fsyntax-only", "-x", "c", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else { return false };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(source.as_bytes());
        }
        child.wait().is_ok_and(|s| s.success())
    };
    releases
        .iter()
        .find(|r| compiles(r))
        .or(releases.first())
        .cloned()
}

/// Compile `source` into `object`. An error only when clang cannot run at all; a source that
/// does not compile gives a report with `ok: false` and the diagnostics.
///
/// A scheduler in scx's dialect is compiled against each scx release that serves the kernel,
/// newest first, and the first it compiles with is kept (its version is in the report): scx's
/// headers dropped calls that schedulers written a few months earlier still make. When none
/// works, the report is the newest release's, with a line per other release tried.
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
    let text = std::fs::read_to_string(source)
        .with_context(|| format!("cannot read {}", source.display()))?;
    let dialect = Dialect::detect(&text);
    if dialect == Dialect::Schedgen {
        return compile_with(&clang, source, object, headers, None);
    }
    let mut failed: Vec<CompileReport> = Vec::new();
    for scx in headers.scx_releases()? {
        let report = compile_with(&clang, source, object, headers, Some(&scx))?;
        if report.ok {
            return Ok(report);
        }
        failed.push(report);
    }
    let mut first = failed.remove(0);
    for other in &failed {
        let errors = other.errors().count();
        let what = other
            .errors()
            .next()
            .map(|d| format!(", first: {}:{}: {}", d.file, d.line, d.message))
            .unwrap_or_default();
        first.output.push_str(&format!(
            "schedgen: with scx's headers {} instead: {errors} error(s){what}\n",
            other.scx_headers.as_deref().unwrap_or("?")
        ));
    }
    Ok(first)
}

fn compile_with(
    clang: &Path,
    source: &Path,
    object: &Path,
    headers: &Headers,
    scx: Option<&ScxHeaders>,
) -> Result<CompileReport> {
    let _ = std::fs::remove_file(object);
    let mut args = language_args(headers, scx);
    args.splice(0..0, ["-g".to_string(), "-O2".to_string()]);
    args.extend([
        "-c".into(),
        source.display().to_string(),
        "-o".into(),
        object.display().to_string(),
    ]);
    let start = Instant::now();
    let out = Command::new(clang)
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
        dialect: if scx.is_some() {
            Dialect::Scx
        } else {
            Dialect::Schedgen
        },
        scx_headers: scx.map(|h| h.version.clone()),
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

    #[test]
    fn detects_the_dialect_from_the_includes() {
        assert_eq!(
            Dialect::detect("// x\n#include <scx/common.bpf.h>\n"),
            Dialect::Scx
        );
        assert_eq!(
            Dialect::detect("#  include \"scx/common.bpf.h\""),
            Dialect::Scx
        );
        assert_eq!(
            Dialect::detect("#include \"schedgen.bpf.h\"\n// see <scx/common.bpf.h>\n"),
            Dialect::Schedgen
        );
        assert_eq!(
            Dialect::detect("#include \"schedgen.bpf.h\"\n#include <scx/common.bpf.h>\n"),
            Dialect::Schedgen,
            "mixing the two is schedgen's dialect with a bad include"
        );
    }
}
