//! The static checks proper: parse the candidate with libclang (through clang-sys, loaded at run
//! time) exactly as the compiler will see it, then walk the translation unit.
//!
//! What a parse gives that text matching cannot: macros are expanded (a `SEC` hidden in a macro,
//! kfuncs called through `scx_bpf_error`), types are resolved (a `sched_ext_ops` behind a
//! typedef), and calls are tied to declarations, so "a function with no body that is not one of
//! this kernel's kfuncs" is a precise question.

// libclang's cursor kinds keep their C names.
#![allow(non_upper_case_globals)]

use std::collections::{BTreeSet, HashMap};
use std::ffi::{c_char, c_int, c_uint, c_ulong, CStr, CString};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use clang_sys::*;

use crate::bpf::compile::Dialect;

use super::{
    include_problem, unknown_kfunc_problem, CheckReport, Target, GPL_LICENSES, HEADER_MACROS,
    NO_LICENSE, NO_NAME, NO_OPS,
};

/// The most compiler errors quoted back; the first few are the ones that matter.
const MAX_ERRORS: usize = 12;

/// libclang, loaded once per process and handed to each thread that checks.
fn library() -> Result<Arc<SharedLibrary>, String> {
    static LIB: OnceLock<Result<Arc<SharedLibrary>, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        load_manually().map(Arc::new).map_err(|e| {
            format!("libclang not loaded: {e}; install libclang1-19 or set LIBCLANG_PATH")
        })
    })
    .clone()
}

/// Restores the thread's previous libclang when dropped, even if the check panics.
struct UseLibrary(Option<Arc<SharedLibrary>>);

impl UseLibrary {
    fn new(lib: Arc<SharedLibrary>) -> Self {
        UseLibrary(set_library(Some(lib)))
    }
}

impl Drop for UseLibrary {
    fn drop(&mut self) {
        set_library(self.0.take());
    }
}

/// Parse `source` and check it; `Err` only when libclang itself is unavailable or cannot parse.
pub(super) fn check(source: &str, target: &Target) -> Result<CheckReport, String> {
    let lib = library()?;
    let _in_use = UseLibrary::new(lib);
    let version = unsafe { text(clang_getClangVersion()) };
    let version = version
        .split("clang version ")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or(&version)
        .to_string();
    let tu = Unit::parse(source, target)?;
    let (problems, compiler_errors) = tu.problems(target, Dialect::detect(source));
    Ok(CheckReport {
        checker: format!("libclang {version}"),
        problems,
        compiler_errors,
    })
}

/// Own a `CXString`'s text and free it.
unsafe fn text(s: CXString) -> String {
    let p = clang_getCString(s);
    let out = if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    };
    clang_disposeString(s);
    out
}

/// Visit every cursor under `root`, depth first; `f` says whether to descend.
fn walk(root: CXCursor, f: &mut dyn FnMut(CXCursor) -> bool) {
    extern "C" fn visit(c: CXCursor, _parent: CXCursor, data: CXClientData) -> CXChildVisitResult {
        // SAFETY: `data` is the `&mut dyn FnMut` passed below, alive for the whole visit.
        let f = unsafe { &mut *(data as *mut &mut dyn FnMut(CXCursor) -> bool) };
        if f(c) {
            CXChildVisit_Recurse
        } else {
            CXChildVisit_Continue
        }
    }
    let mut f = f;
    unsafe {
        clang_visitChildren(root, visit, &mut f as *mut _ as CXClientData);
    }
}

/// A `struct sched_ext_ops` variable of the candidate.
struct OpsDecl {
    var: String,
    /// Its `SEC(...)`, if any.
    section: Option<String>,
    /// Its `.name = "..."`, if any.
    name: Option<String>,
}

impl OpsDecl {
    fn is_struct_ops(&self) -> bool {
        self.section
            .as_deref()
            .is_some_and(|s| s.starts_with(".struct_ops"))
    }
}

#[derive(Clone)]
struct Token {
    kind: CXTokenKind,
    spelling: String,
    offset: u32,
    line: u32,
}

/// A parsed translation unit and its index, disposed together.
struct Unit {
    index: CXIndex,
    tu: CXTranslationUnit,
    /// Every token of the candidate file, in order.
    tokens: Vec<Token>,
    /// The candidate's own file.
    file: CXFile,
}

impl Drop for Unit {
    fn drop(&mut self) {
        unsafe {
            clang_disposeTranslationUnit(self.tu);
            clang_disposeIndex(self.index);
        }
    }
}

impl Unit {
    fn parse(source: &str, target: &Target) -> Result<Unit, String> {
        let name = CString::new("scheduler.bpf.c").unwrap();
        let contents = CString::new(source).map_err(|_| "the source contains a NUL byte")?;
        let scx = crate::bpf::compile::scx_for_parse(target.headers, source);
        let mut args: Vec<String> =
            crate::bpf::compile::language_args(target.headers, scx.as_ref());
        args.push("-Wno-unused-value".into());
        let args: Vec<CString> = args
            .into_iter()
            .map(|a| CString::new(a).expect("no NUL in compiler flags"))
            .collect();
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        let mut unsaved = CXUnsavedFile {
            Filename: name.as_ptr(),
            Contents: contents.as_ptr(),
            Length: source.len() as c_ulong,
        };
        unsafe {
            let index = clang_createIndex(0, 0);
            let mut tu: CXTranslationUnit = std::ptr::null_mut();
            let code = clang_parseTranslationUnit2(
                index,
                name.as_ptr(),
                argv.as_ptr(),
                argv.len() as c_int,
                &mut unsaved,
                1,
                CXTranslationUnit_DetailedPreprocessingRecord | CXTranslationUnit_KeepGoing,
                &mut tu,
            );
            if code != CXError_Success || tu.is_null() {
                clang_disposeIndex(index);
                return Err(format!(
                    "libclang could not parse the source (error {code})"
                ));
            }
            let mut unit = Unit {
                index,
                tu,
                tokens: Vec::new(),
                file: clang_getFile(tu, name.as_ptr()),
            };
            unit.tokens = unit.file_tokens(source.len());
            Ok(unit)
        }
    }

    /// Whether a cursor comes from the candidate, macro expansions in it included (a callback
    /// body generated by `BPF_STRUCT_OPS` has its location in the macro, not in the file).
    fn in_candidate(&self, c: CXCursor) -> bool {
        let mut file: CXFile = std::ptr::null_mut();
        unsafe {
            clang_getExpansionLocation(
                clang_getCursorLocation(c),
                &mut file,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            !file.is_null() && clang_File_isEqual(file, self.file) != 0
        }
    }

    unsafe fn file_tokens(&self, len: usize) -> Vec<Token> {
        let file = self.file;
        if file.is_null() {
            return Vec::new();
        }
        let range = clang_getRange(
            clang_getLocationForOffset(self.tu, file, 0),
            clang_getLocationForOffset(self.tu, file, len as c_uint),
        );
        let mut raw: *mut CXToken = std::ptr::null_mut();
        let mut n: c_uint = 0;
        clang_tokenize(self.tu, range, &mut raw, &mut n);
        if raw.is_null() {
            return Vec::new();
        }
        let tokens = (0..n as usize)
            .map(|i| {
                let t = *raw.add(i);
                let (mut line, mut offset) = (0, 0);
                clang_getSpellingLocation(
                    clang_getTokenLocation(self.tu, t),
                    std::ptr::null_mut(),
                    &mut line,
                    std::ptr::null_mut(),
                    &mut offset,
                );
                Token {
                    kind: clang_getTokenKind(t),
                    spelling: text(clang_getTokenSpelling(self.tu, t)),
                    offset,
                    line,
                }
            })
            .collect();
        clang_disposeTokens(self.tu, raw, n);
        tokens
    }

    /// The tokens of any cursor, in whichever file it sits.
    fn tokens_of(&self, c: CXCursor) -> Vec<Token> {
        unsafe {
            let mut raw: *mut CXToken = std::ptr::null_mut();
            let mut n: c_uint = 0;
            clang_tokenize(self.tu, clang_getCursorExtent(c), &mut raw, &mut n);
            if raw.is_null() {
                return Vec::new();
            }
            let tokens = (0..n as usize)
                .map(|i| {
                    let t = *raw.add(i);
                    Token {
                        kind: clang_getTokenKind(t),
                        spelling: text(clang_getTokenSpelling(self.tu, t)),
                        offset: 0,
                        line: 0,
                    }
                })
                .collect();
            clang_disposeTokens(self.tu, raw, n);
            tokens
        }
    }

    /// `tokens` with object-like macro uses replaced by their definitions, a few levels deep, so
    /// a `SEC(...)` or `.name = ...` behind a project macro is still found. `SEC` itself stays.
    fn expand(
        &self,
        tokens: &[Token],
        macros: &HashMap<String, CXCursor>,
        depth: u32,
    ) -> Vec<Token> {
        let mut out = Vec::with_capacity(tokens.len());
        for t in tokens {
            match macros.get(&t.spelling) {
                Some(&m)
                    if depth > 0
                        && t.kind == CXToken_Identifier
                        && t.spelling != "SEC"
                        && unsafe { clang_Cursor_isMacroFunctionLike(m) } == 0 =>
                {
                    let body: Vec<Token> = self.tokens_of(m).into_iter().skip(1).collect();
                    out.extend(self.expand(&body, macros, depth - 1));
                }
                // A function-like macro that declares (scx's `SCX_OPS_DEFINE(name, ...)`):
                // its body's `SEC(...)` counts, its arguments (`.name = ...`) stay as written.
                Some(&m)
                    if depth > 0
                        && t.kind == CXToken_Identifier
                        && t.spelling != "SEC"
                        && unsafe { clang_Cursor_isMacroFunctionLike(m) } != 0 =>
                {
                    let all = self.tokens_of(m);
                    let params_end = all.iter().position(|t| t.spelling == ")").unwrap_or(0);
                    let body = &all[(params_end + 1).min(all.len())..];
                    if body.iter().any(|t| t.spelling == "SEC") {
                        out.extend(self.expand(body, macros, depth - 1));
                    }
                    out.push(t.clone());
                }
                _ => out.push(t.clone()),
            }
        }
        out
    }

    /// The tokens of a top-level declaration: its own extent plus what precedes it back to the
    /// previous declaration or preprocessor directive (where a leading `SEC(...)` sits).
    fn decl_tokens(&self, c: CXCursor, directives: &[(u32, u32)]) -> &[Token] {
        let (start, end) = extent(c);
        let last = self.tokens.partition_point(|t| t.offset < end);
        let mut first = self.tokens.partition_point(|t| t.offset < start);
        while first > 0 {
            let prev = &self.tokens[first - 1];
            let in_directive = directives
                .iter()
                .any(|&(s, e)| s <= prev.line && prev.line <= e);
            if in_directive || matches!(prev.spelling.as_str(), ";" | "}") {
                break;
            }
            first -= 1;
        }
        &self.tokens[first..last]
    }

    /// The problems the checks explain, and the compiler errors left over.
    fn problems(&self, target: &Target, dialect: Dialect) -> (Vec<String>, Vec<String>) {
        // scx's headers declare every kfunc they wrap `__weak` and pick, with
        // `bpf_ksym_exists`, one the running kernel has: their calls are theirs to get right.
        let trusted_decl = |callee: CXCursor| dialect == Dialect::Scx && !self.in_candidate(callee);
        let mut problems = Vec::new();
        let mut bad_includes = BTreeSet::new();
        let mut ops: Vec<OpsDecl> = Vec::new();
        let mut license: Option<String> = None;
        let mut unknown_calls = BTreeSet::new();
        let mut undefined_calls = BTreeSet::new();
        let mut macros: HashMap<String, CXCursor> = HashMap::new();
        let mut vars: Vec<(CXCursor, String)> = Vec::new();
        let mut directives: Vec<(u32, u32)> = Vec::new();

        let root = unsafe { clang_getTranslationUnitCursor(self.tu) };
        walk(root, &mut |c| unsafe {
            let kind = clang_getCursorKind(c);
            let main_file = self.in_candidate(c);
            if kind == CXCursor_MacroDefinition {
                macros.insert(text(clang_getCursorSpelling(c)), c);
            }
            if !main_file {
                return false;
            }
            if matches!(kind, CXCursor_MacroDefinition | CXCursor_InclusionDirective) {
                // A directive owns whole lines, its `#` included.
                directives.push(lines(c));
            }
            match kind {
                CXCursor_InclusionDirective => {
                    let spelled = text(clang_getCursorSpelling(c));
                    if let Some(p) = include_problem(&spelled, dialect) {
                        problems.push(p);
                        bad_includes.insert(spelled);
                    }
                    false
                }
                CXCursor_VarDecl
                    if clang_equalCursors(clang_getCursorSemanticParent(c), root) != 0 =>
                {
                    let ty = text(clang_getTypeSpelling(clang_getCanonicalType(
                        clang_getCursorType(c),
                    )));
                    vars.push((c, ty));
                    true
                }
                CXCursor_CallExpr => {
                    let callee = clang_getCursorReferenced(c);
                    if clang_Cursor_isNull(callee) == 0
                        && clang_getCursorKind(callee) == CXCursor_FunctionDecl
                        && clang_Cursor_isNull(clang_getCursorDefinition(callee)) != 0
                    {
                        let name = text(clang_getCursorSpelling(callee));
                        let builtin = ["__builtin", "__sync", "__atomic"]
                            .iter()
                            .any(|p| name.starts_with(p));
                        if !builtin
                            && !trusted_decl(callee)
                            && !target.kfuncs.contains(&name)
                            && !HEADER_MACROS.contains(&name.as_str())
                        {
                            if name.starts_with("scx_") || name.starts_with("bpf_") {
                                unknown_calls.insert(name);
                            } else {
                                undefined_calls.insert(name);
                            }
                        }
                    }
                    true
                }
                _ => true,
            }
        });

        // Read the declarations once every macro definition is known.
        for (c, ty) in vars {
            let raw = self.decl_tokens(c, &directives);
            let tokens = self.expand(raw, &macros, 3);
            let section = section_of(&tokens);
            let name = unsafe { text(clang_getCursorSpelling(c)) };
            if ty == "struct sched_ext_ops" {
                ops.push(OpsDecl {
                    var: name,
                    section,
                    name: ops_name(&tokens),
                });
            } else if section.as_deref() == Some("license") {
                license = Some(first_string(&tokens, "=").unwrap_or_default());
            }
        }

        match license {
            None => problems.push(NO_LICENSE.into()),
            Some(l) if !GPL_LICENSES.contains(&l.as_str()) => problems.push(format!(
                "license \"{l}\" is not GPL-compatible: sched_ext kfuncs are GPL-only, use \"GPL\""
            )),
            Some(_) => {}
        }
        let attached: Vec<&OpsDecl> = ops.iter().filter(|o| o.is_struct_ops()).collect();
        for OpsDecl { var, .. } in ops.iter().filter(|o| !o.is_struct_ops()) {
            problems.push(format!(
                "`{var}` is a sched_ext_ops outside a struct_ops section: declare it `SEC(\".struct_ops.link\") struct sched_ext_ops {var} = {{ ... }}`"
            ));
        }
        match attached.len() {
            0 if ops.is_empty() => problems.push(NO_OPS.into()),
            0 => {}
            1 if attached[0].name.as_deref().unwrap_or("").is_empty() => {
                problems.push(NO_NAME.into())
            }
            1 => {}
            n => problems.push(format!(
                "{n} sched_ext_ops struct_ops maps ({}): define exactly one",
                attached
                    .iter()
                    .map(|o| format!("`{}`", o.var))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        problems.extend(unknown_calls.iter().map(|n| unknown_kfunc_problem(n)));
        problems.extend(undefined_calls.iter().map(|n| {
            format!("`{n}` is called but never defined: define it (static) or use a kfunc or helper that exists")
        }));
        let errors = self.errors(&bad_includes, &unknown_calls, &undefined_calls);
        (problems, errors)
    }

    /// Compiler errors, minus the ones a problem above already explains.
    fn errors(
        &self,
        bad_includes: &BTreeSet<String>,
        unknown: &BTreeSet<String>,
        undefined: &BTreeSet<String>,
    ) -> Vec<String> {
        let explained = |msg: &str| {
            bad_includes
                .iter()
                .any(|i| msg == format!("'{i}' file not found"))
                || unknown
                    .iter()
                    .chain(undefined)
                    .any(|f| msg.starts_with(&format!("call to undeclared function '{f}'")))
        };
        let mut out = Vec::new();
        unsafe {
            for i in 0..clang_getNumDiagnostics(self.tu) {
                let d = clang_getDiagnostic(self.tu, i);
                let severity = clang_getDiagnosticSeverity(d);
                if severity >= CXDiagnostic_Error {
                    let msg = text(clang_getDiagnosticSpelling(d));
                    if !explained(&msg) {
                        let mut file: CXFile = std::ptr::null_mut();
                        let (mut line, mut col) = (0, 0);
                        clang_getSpellingLocation(
                            clang_getDiagnosticLocation(d),
                            &mut file,
                            &mut line,
                            &mut col,
                            std::ptr::null_mut(),
                        );
                        let where_ = if file.is_null() {
                            String::new()
                        } else {
                            let f = text(clang_getFileName(file));
                            let base = Path::new(&f)
                                .file_name()
                                .map(|b| b.to_string_lossy().into_owned())
                                .unwrap_or(f);
                            if base == "scheduler.bpf.c" {
                                format!("line {line}:{col}: ")
                            } else {
                                format!("{base}:{line}:{col}: ")
                            }
                        };
                        out.push(format!("error: {where_}{msg}"));
                    }
                }
                clang_disposeDiagnostic(d);
            }
        }
        if out.len() > MAX_ERRORS {
            let more = out.len() - MAX_ERRORS;
            out.truncate(MAX_ERRORS);
            out.push(format!("... and {more} more compiler error(s)"));
        }
        out
    }
}

/// Start and end offsets of a cursor in the candidate file, macro uses counted where they are
/// written (not where the macro was defined).
fn extent(c: CXCursor) -> (u32, u32) {
    unsafe {
        let r = clang_getCursorExtent(c);
        (offset(clang_getRangeStart(r)), offset(clang_getRangeEnd(r)))
    }
}

/// First and last line of a cursor in the candidate file.
fn lines(c: CXCursor) -> (u32, u32) {
    unsafe {
        let r = clang_getCursorExtent(c);
        (line(clang_getRangeStart(r)), line(clang_getRangeEnd(r)))
    }
}

unsafe fn offset(loc: CXSourceLocation) -> u32 {
    let mut off: c_uint = 0;
    clang_getExpansionLocation(
        loc,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        &mut off,
    );
    off
}

unsafe fn line(loc: CXSourceLocation) -> u32 {
    let mut line: c_uint = 0;
    clang_getExpansionLocation(
        loc,
        std::ptr::null_mut(),
        &mut line,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    line
}

/// The string value of a literal token (quotes off; escapes left as written).
fn literal(t: &Token) -> Option<String> {
    (t.kind == CXToken_Literal && t.spelling.starts_with('"'))
        .then(|| t.spelling.trim_matches('"').to_string())
}

/// The section named by `SEC("...")` or `__attribute__((section("...")))` among `tokens`: the
/// last one, the closest to the declaration (a macro use before it may hold others).
fn section_of(tokens: &[Token]) -> Option<String> {
    tokens.windows(3).rev().find_map(|w| {
        (matches!(w[0].spelling.as_str(), "SEC" | "section") && w[1].spelling == "(")
            .then(|| literal(&w[2]))
            .flatten()
    })
}

/// The first string literal after the token `after`.
fn first_string(tokens: &[Token], after: &str) -> Option<String> {
    let at = tokens.iter().position(|t| t.spelling == after)?;
    tokens[at + 1..].iter().find_map(literal)
}

/// The `.name = "..."` of a sched_ext_ops initializer.
fn ops_name(tokens: &[Token]) -> Option<String> {
    tokens.windows(4).find_map(|w| {
        (w[0].spelling == "." && w[1].spelling == "name" && w[2].spelling == "=")
            .then(|| literal(&w[3]))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::compile::Headers;

    /// A miniature target: just enough of vmlinux.h, kfuncs.h and schedgen.bpf.h for the checks
    /// to have something real to resolve against.
    fn target_dirs() -> (tempfile::TempDir, Headers) {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("kernel");
        let project = dir.path().join("project");
        std::fs::create_dir_all(&kernel).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            kernel.join("vmlinux.h"),
            "typedef unsigned long long u64;\n\
             typedef int s32;\n\
             struct task_struct { int pid; char comm[16]; };\n\
             struct sched_ext_ops { void (*enqueue)(struct task_struct *p, u64 f); char name[128]; };\n\
             typedef struct sched_ext_ops ops_t;\n",
        )
        .unwrap();
        std::fs::write(
            kernel.join("kfuncs.h"),
            "extern void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;\n",
        )
        .unwrap();
        std::fs::write(
            project.join("schedgen.bpf.h"),
            "#include \"vmlinux.h\"\n\
             #define SEC(name) __attribute__((section(name), used))\n\
             #define __ksym __attribute__((section(\".ksyms\")))\n\
             #include \"kfuncs.h\"\n",
        )
        .unwrap();
        (
            dir,
            Headers {
                kernel_dir: kernel,
                project_dir: project,
                scx: Vec::new(),
                include: Vec::new(),
            },
        )
    }

    fn run(src: &str) -> CheckReport {
        let (_dir, headers) = target_dirs();
        let kfuncs = super::super::kfunc_names(
            &std::fs::read_to_string(headers.kernel_dir.join("kfuncs.h")).unwrap(),
        );
        check(
            src,
            &Target {
                kfuncs: &kfuncs,
                headers: &headers,
            },
        )
        .expect("libclang loads (clang-19 depends on libclang1-19)")
    }

    const GOOD: &str = r#"#include "schedgen.bpf.h"
char _license[] SEC("license") = "GPL";
SEC("struct_ops/t_enqueue") void t_enqueue(struct task_struct *p, u64 f)
{
    __sync_fetch_and_add(&p->pid, 0);
    scx_bpf_dsq_insert(p, 0, 0, f);
}
SEC(".struct_ops.link") struct sched_ext_ops t_ops = {
    .enqueue = (void *)t_enqueue,
    .name = "t",
};
"#;

    #[test]
    fn a_valid_scheduler_has_no_problems() {
        let r = run(GOOD);
        assert!(r.checker.starts_with("libclang 19"), "{}", r.checker);
        assert_eq!(r.problems, Vec::<String>::new());
        assert_eq!(r.compiler_errors, Vec::<String>::new());
    }

    #[test]
    fn sees_through_macros_and_typedefs() {
        let src = GOOD
            .replace(
                "SEC(\".struct_ops.link\") struct sched_ext_ops t_ops",
                "#define OPS_SEC SEC(\".struct_ops.link\")\nOPS_SEC ops_t t_ops",
            )
            .replace("scx_bpf_dsq_insert(p, 0, 0, f);", "INSERT(p);")
            .replace(
                "char _license",
                "#define INSERT(p) scx_bpf_dsq_insert(p, 0, 0, 0)\nchar _license",
            );
        let r = run(&src);
        assert_eq!(r.problems, Vec::<String>::new(), "{src}");
    }

    #[test]
    fn catches_the_usual_mistakes() {
        let src = r#"#include "schedgen.bpf.h"
#include <scx/common.bpf.h>
char _license[] SEC("license") = "MIT";
/* scx_bpf_consume(1) in a comment is fine */
void t_enqueue(struct task_struct *p, u64 f)
{
    scx_bpf_dispatch(p, 0, 0, f);
    scx_bpf_made_up();
    helper_nobody_wrote(p);
}
SEC(".struct_ops.link") struct sched_ext_ops a_ops = { .name = "a" };
SEC(".struct_ops.link") struct sched_ext_ops b_ops = { .name = "b" };
struct sched_ext_ops c_ops = { .name = "c" };
"#;
        let r = run(src);
        let all = r.problems.join("\n");
        assert!(
            all.contains("#include <scx/common.bpf.h> is not available"),
            "{all}"
        );
        assert!(
            all.contains("license \"MIT\" is not GPL-compatible"),
            "{all}"
        );
        assert!(all.contains("renamed `scx_bpf_dsq_insert`"), "{all}");
        assert!(
            all.contains("`scx_bpf_made_up` is not a kfunc of the target kernel"),
            "{all}"
        );
        assert!(
            all.contains("`helper_nobody_wrote` is called but never defined"),
            "{all}"
        );
        assert!(
            !all.contains("scx_bpf_consume"),
            "comments are ignored: {all}"
        );
        assert!(
            all.contains("2 sched_ext_ops struct_ops maps (`a_ops`, `b_ops`)"),
            "{all}"
        );
        assert!(
            all.contains("`c_ops` is a sched_ext_ops outside a struct_ops section"),
            "{all}"
        );
        let errors = r.compiler_errors.join("\n");
        assert!(
            !errors.contains("undeclared function") && !errors.contains("file not found"),
            "the compiler's own errors are not repeated: {errors}"
        );
    }

    #[test]
    fn missing_license_ops_and_name() {
        let r = run("#include \"schedgen.bpf.h\"\nint x;\n");
        assert_eq!(r.problems, vec![NO_LICENSE.to_string(), NO_OPS.to_string()]);
        let r = run(&GOOD.replace(".name = \"t\",", ""));
        assert_eq!(r.problems, vec![NO_NAME.to_string()]);
    }

    #[test]
    fn reports_other_compiler_errors_with_their_line() {
        let r = run(&GOOD.replace("scx_bpf_dsq_insert(p, 0, 0, f);", "p->no_such_field = 1;"));
        assert_eq!(r.problems, Vec::<String>::new());
        assert_eq!(r.compiler_errors.len(), 1, "{:?}", r.compiler_errors);
        let e = &r.compiler_errors[0];
        assert!(
            e.starts_with("error: line 6:") && e.contains("no_such_field"),
            "{e}"
        );
    }
}
