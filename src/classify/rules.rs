//! The rule language: how a process is recognised as belonging to a task class.
//!
//! A rule looks only at what the workload itself defines about a process: its `comm`, the file
//! it executes, its arguments, the files it reads (named in its arguments, or redirected to its
//! standard input), its cgroup. It never looks at
//! anything the runner adds (pid, task index, task directory, environment), so a rule learned
//! here means the same thing outside schedgen.
//!
//! | kind | matches when |
//! |---|---|
//! | `comm_equals` | `comm` is exactly `value` |
//! | `comm_prefix` | `comm` starts with `value` |
//! | `exe_equals` | the executed file (`/proc/<pid>/exe`) is exactly `value` |
//! | `arg_equals` | `argv[index]` is exactly `value` |
//! | `arg_any` | some argument (`argv[1..]`) is exactly `value` |
//! | `arg_number_at_least` | `argv[index]` is a number ≥ `min` |
//! | `input_size_at_least` | the largest regular file named by an argument or open as its stdin is ≥ `min_bytes` |
//! | `cgroup_prefix` | the process's cgroup path starts with `value` |
//! | `any` | always (the catch-all class) |
//!
//! A [`ClassSet`] is an ordered list of classes; the first whose rule matches wins. A process
//! that matches no specific rule keeps the class it inherited: from its parent (`gcc`'s `cc1`,
//! whatever `sh -c` starts), or, when its stdin is a pipe, from the process writing into it
//! (`cat big.log | grep …`'s `grep`); only then does it fall back to the catch-all.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One way of recognising a process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    CommEquals { value: String },
    CommPrefix { value: String },
    ExeEquals { value: String },
    ArgEquals { index: usize, value: String },
    ArgAny { value: String },
    ArgNumberAtLeast { index: usize, min: f64 },
    InputSizeAtLeast { min_bytes: u64 },
    CgroupPrefix { value: String },
    Any,
}

impl Rule {
    /// How much a reader must know to follow the rule: the learner prefers the simplest.
    pub fn complexity(&self) -> u32 {
        match self {
            Rule::Any => 0,
            Rule::CommEquals { .. } => 1,
            Rule::ExeEquals { .. } => 2,
            Rule::CommPrefix { .. } => 3,
            Rule::ArgEquals { .. } => 4,
            Rule::ArgAny { .. } => 5,
            Rule::ArgNumberAtLeast { .. } => 6,
            Rule::InputSizeAtLeast { .. } => 7,
            Rule::CgroupPrefix { .. } => 8,
        }
    }

    pub fn matches(&self, p: &ProcessView) -> bool {
        match self {
            Rule::CommEquals { value } => p.comm == *value,
            Rule::CommPrefix { value } => p.comm.starts_with(value.as_str()),
            Rule::ExeEquals { value } => p.exe == *value,
            Rule::ArgEquals { index, value } => p.argv.get(*index) == Some(value),
            Rule::ArgAny { value } => p.argv.iter().skip(1).any(|a| a == value),
            Rule::ArgNumberAtLeast { index, min } => p
                .argv
                .get(*index)
                .and_then(|a| parse_number(a))
                .is_some_and(|v| v >= *min),
            Rule::InputSizeAtLeast { min_bytes } => {
                p.largest_input().is_some_and(|s| s >= *min_bytes)
            }
            Rule::CgroupPrefix { value } => p.cgroup.starts_with(value.as_str()),
            Rule::Any => true,
        }
    }

    /// The rule in one phrase, for profiles, prompts and reports.
    pub fn describe(&self) -> String {
        match self {
            Rule::CommEquals { value } => format!("comm is `{value}`"),
            Rule::CommPrefix { value } => format!("comm starts with `{value}`"),
            Rule::ExeEquals { value } => format!("the executable is `{value}`"),
            Rule::ArgEquals { index, value } => format!("argv[{index}] is `{value}`"),
            Rule::ArgAny { value } => format!("an argument is `{value}`"),
            Rule::ArgNumberAtLeast { index, min } => {
                format!("argv[{index}] is a number ≥ {}", fmt_number(*min))
            }
            Rule::InputSizeAtLeast { min_bytes } => format!(
                "an input file (named in its arguments or its stdin) is ≥ {}",
                fmt_bytes(*min_bytes)
            ),
            Rule::CgroupPrefix { value } => format!("its cgroup starts with `{value}`"),
            Rule::Any => "any process".into(),
        }
    }
}

/// A number as a command line writes it: `1260000000`, `1.5`, `2e6`.
pub fn parse_number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

fn fmt_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} bytes")
    }
}

/// What is known about one process image (after an `exec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessView {
    pub comm: String,
    pub exe: String,
    pub argv: Vec<String>,
    /// Sizes of the regular files the arguments name: (argument index, bytes).
    #[serde(default)]
    pub inputs: Vec<(usize, u64)>,
    #[serde(default)]
    pub cgroup: String,
    /// What its standard input is, when a file or a pipe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<Stream>,
    /// Its standard output, when a pipe (a file there is output, and the runner's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<Stream>,
}

/// What a standard stream is connected to, where that says something about the work: a
/// regular file it reads (`gzip < big`) or a pipe between two processes of one job.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stream {
    File { bytes: u64 },
    Pipe { inode: u64 },
}

impl Stream {
    /// Read what descriptor `fd` of process `pid` is, from `/proc`: `None` for a terminal,
    /// `/dev/null`, a socket, or a process that is gone.
    pub fn of(pid: i32, fd: u32) -> Option<Stream> {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
        let text = link.to_str()?;
        if let Some(inode) = text
            .strip_prefix("pipe:[")
            .and_then(|r| r.strip_suffix(']'))
        {
            return inode.parse().ok().map(|inode| Stream::Pipe { inode });
        }
        // The descriptor itself, not the path: the file may have been renamed or unlinked.
        let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
        m.is_file().then_some(Stream::File { bytes: m.len() })
    }

    pub fn pipe(self) -> Option<u64> {
        match self {
            Stream::Pipe { inode } => Some(inode),
            Stream::File { .. } => None,
        }
    }
}

impl ProcessView {
    /// The largest file it reads: named in its arguments, or its stdin.
    pub fn largest_input(&self) -> Option<u64> {
        let stdin = match self.stdin {
            Some(Stream::File { bytes }) => Some(bytes),
            _ => None,
        };
        self.inputs.iter().map(|(_, s)| *s).chain(stdin).max()
    }

    /// The pipe its stdin reads, if any.
    pub fn stdin_pipe(&self) -> Option<u64> {
        self.stdin.and_then(Stream::pipe)
    }

    /// The pipe its stdout writes, if any.
    pub fn stdout_pipe(&self) -> Option<u64> {
        self.stdout.and_then(Stream::pipe)
    }

    /// Read a live process's view from `/proc`, with `argv` given when already known (an exec
    /// event carries it, and the process may be gone by the time `/proc` is read).
    pub fn from_proc(pid: i32, argv: Option<Vec<String>>, comm: Option<String>) -> ProcessView {
        let dir = PathBuf::from(format!("/proc/{pid}"));
        let argv = argv.unwrap_or_else(|| read_cmdline(&dir.join("cmdline")));
        let comm = comm.unwrap_or_else(|| {
            std::fs::read_to_string(dir.join("comm"))
                .map(|s| s.trim_end().to_string())
                .unwrap_or_default()
        });
        let exe = std::fs::read_link(dir.join("exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let cwd = std::fs::read_link(dir.join("cwd")).ok();
        let cgroup = std::fs::read_to_string(dir.join("cgroup"))
            .ok()
            .and_then(|t| {
                // cgroup v2: `0::/path`; v1 lines name controllers, take the first path.
                t.lines()
                    .find_map(|l| l.splitn(3, ':').nth(2).map(str::to_string))
            })
            .unwrap_or_default();
        let inputs = input_sizes(&argv, cwd.as_deref());
        ProcessView {
            comm,
            exe,
            argv,
            inputs,
            cgroup,
            stdin: Stream::of(pid, 0),
            stdout: Stream::of(pid, 1).filter(|s| s.pipe().is_some()),
        }
    }
}

/// `/proc/<pid>/cmdline` as a list of arguments.
pub fn read_cmdline(path: &Path) -> Vec<String> {
    std::fs::read(path)
        .map(|b| split_args(&b))
        .unwrap_or_default()
}

/// A NUL-separated argument block (as in `/proc/<pid>/cmdline` or the exec event).
pub fn split_args(block: &[u8]) -> Vec<String> {
    let block = block.strip_suffix(&[0]).unwrap_or(block);
    if block.is_empty() {
        return Vec::new();
    }
    block
        .split(|c| *c == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The sizes of regular files named by arguments 1.., relative names resolved against `cwd`.
/// `--flag=path` names `path`.
pub fn input_sizes(argv: &[String], cwd: Option<&Path>) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    for (i, a) in argv.iter().enumerate().skip(1) {
        let candidate = a.split_once('=').map(|(_, v)| v).unwrap_or(a);
        if candidate.is_empty() || candidate.starts_with('-') || candidate.len() > 4096 {
            continue;
        }
        let p = Path::new(candidate);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            match cwd {
                Some(c) => c.join(p),
                None => continue,
            }
        };
        if let Ok(m) = std::fs::metadata(&full) {
            if m.is_file() {
                out.push((i, m.len()));
            }
        }
    }
    out
}

/// One class of tasks and what a scheduler may expect of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskClass {
    /// 1.. (0 means "unclassified" in the kernel map).
    pub id: u32,
    pub name: String,
    pub rule: Rule,
    /// Mean CPU seconds a task of this class used in the profile (the whole task: all of its
    /// processes), so a scheduler can order work by expected length.
    pub expected_cpu_s: f64,
    /// Tasks of the profile in this class.
    pub tasks: usize,
    /// This is the long tail: the class whose tasks set the makespan.
    pub long: bool,
}

/// The ordered classes of a workload. Empty when nothing separates the long task. Written as a
/// plain JSON list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct ClassSet {
    pub classes: Vec<TaskClass>,
}

/// The class a process gets, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A specific rule matched this process.
    Matched(u32),
    /// No specific rule matched; it keeps what it inherited.
    Inherited(u32),
    /// Only the catch-all matched.
    Fallback(u32),
    Unclassified,
}

impl Verdict {
    pub fn class(self) -> Option<u32> {
        match self {
            Verdict::Matched(c) | Verdict::Inherited(c) | Verdict::Fallback(c) => Some(c),
            Verdict::Unclassified => None,
        }
    }
}

impl ClassSet {
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    pub fn get(&self, id: u32) -> Option<&TaskClass> {
        self.classes.iter().find(|c| c.id == id)
    }

    /// Decide the class of a process image. `inherited` is the class it had before (from its
    /// parent, or from before an exec), if any; a catch-all never overrides it.
    pub fn classify(&self, p: &ProcessView, inherited: Option<u32>) -> Verdict {
        if let Some(c) = self
            .classes
            .iter()
            .find(|c| c.rule != Rule::Any && c.rule.matches(p))
        {
            return Verdict::Matched(c.id);
        }
        if let Some(i) = inherited.filter(|i| self.get(*i).is_some_and(|c| c.rule != Rule::Any)) {
            return Verdict::Inherited(i);
        }
        match self.classes.iter().find(|c| c.rule == Rule::Any) {
            Some(c) => Verdict::Fallback(c.id),
            None => Verdict::Unclassified,
        }
    }

    /// The same classes with the knowledge taken away: every process in one class whose
    /// expected CPU is the mean over all tasks. A scheduler run with it keeps its queues, slices
    /// and CPU selection but cannot tell the long task from the others (the ablation).
    pub fn merged(&self) -> ClassSet {
        let tasks: usize = self.classes.iter().map(|c| c.tasks).sum();
        let cpu: f64 = self
            .classes
            .iter()
            .map(|c| c.expected_cpu_s * c.tasks as f64)
            .sum();
        ClassSet {
            classes: vec![TaskClass {
                id: 1,
                name: "all".into(),
                rule: Rule::Any,
                expected_cpu_s: if tasks > 0 { cpu / tasks as f64 } else { 0.0 },
                tasks,
                long: false,
            }],
        }
    }

    /// The longest class's expected CPU seconds (0 without classes): what the loader tells a
    /// scheduler as `schedgen_longest_ns`, and what schedgen's own process counts as.
    pub fn longest_expected_cpu_s(&self) -> f64 {
        self.classes
            .iter()
            .map(|c| c.expected_cpu_s)
            .fold(0.0, f64::max)
    }

    /// The long tail's classes.
    pub fn long_classes(&self) -> impl Iterator<Item = &TaskClass> {
        self.classes.iter().filter(|c| c.long)
    }

    /// One line per class, for terminals, prompts and file headers.
    pub fn describe(&self) -> Vec<String> {
        self.classes
            .iter()
            .map(|c| {
                format!(
                    "class {} `{}`{}: {} — expected {:.3} s CPU ({} task{})",
                    c.id,
                    c.name,
                    if c.long { " (long tail)" } else { "" },
                    c.rule.describe(),
                    c.expected_cpu_s,
                    c.tasks,
                    if c.tasks == 1 { "" } else { "s" }
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(comm: &str, argv: &[&str]) -> ProcessView {
        ProcessView {
            comm: comm.into(),
            exe: format!("/usr/bin/{comm}"),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            inputs: vec![],
            cgroup: "/user.slice".into(),
            ..ProcessView::default()
        }
    }

    #[test]
    fn each_rule_kind_matches_what_it_says() {
        let p = ProcessView {
            inputs: vec![(2, 5_000_000)],
            ..view("work", &["work", "--iterations", "1260000000"])
        };
        let yes = [
            Rule::CommEquals {
                value: "work".into(),
            },
            Rule::CommPrefix { value: "wo".into() },
            Rule::ExeEquals {
                value: "/usr/bin/work".into(),
            },
            Rule::ArgEquals {
                index: 1,
                value: "--iterations".into(),
            },
            Rule::ArgAny {
                value: "1260000000".into(),
            },
            Rule::ArgNumberAtLeast { index: 2, min: 1e9 },
            Rule::InputSizeAtLeast {
                min_bytes: 4_000_000,
            },
            Rule::CgroupPrefix {
                value: "/user".into(),
            },
            Rule::Any,
        ];
        for r in &yes {
            assert!(r.matches(&p), "{r:?} should match");
        }
        let no = [
            Rule::CommEquals {
                value: "wor".into(),
            },
            Rule::ExeEquals {
                value: "/bin/work".into(),
            },
            Rule::ArgEquals {
                index: 2,
                value: "--iterations".into(),
            },
            Rule::ArgAny {
                value: "work".into(),
            },
            Rule::ArgNumberAtLeast { index: 2, min: 2e9 },
            Rule::ArgNumberAtLeast { index: 1, min: 0.0 },
            Rule::InputSizeAtLeast {
                min_bytes: 6_000_000,
            },
            Rule::CgroupPrefix {
                value: "/system".into(),
            },
        ];
        for r in &no {
            assert!(!r.matches(&p), "{r:?} should not match");
        }
    }

    fn set() -> ClassSet {
        ClassSet {
            classes: vec![
                TaskClass {
                    id: 1,
                    name: "long".into(),
                    rule: Rule::ArgNumberAtLeast { index: 2, min: 1e9 },
                    expected_cpu_s: 4.0,
                    tasks: 1,
                    long: true,
                },
                TaskClass {
                    id: 2,
                    name: "other".into(),
                    rule: Rule::Any,
                    expected_cpu_s: 0.1,
                    tasks: 39,
                    long: false,
                },
            ],
        }
    }

    #[test]
    fn specific_rules_win_then_inheritance_then_the_catch_all() {
        let s = set();
        let long = view("work", &["work", "-n", "2000000000"]);
        let short = view("work", &["work", "-n", "1000"]);
        assert_eq!(s.classify(&long, None), Verdict::Matched(1));
        assert_eq!(s.classify(&short, None), Verdict::Fallback(2));
        // A child of the long task keeps its class; the catch-all does not override it.
        assert_eq!(s.classify(&short, Some(1)), Verdict::Inherited(1));
        assert_eq!(s.classify(&short, Some(2)), Verdict::Fallback(2));
        assert_eq!(
            ClassSet::default().classify(&long, None),
            Verdict::Unclassified
        );
    }

    #[test]
    fn the_ablation_has_one_class_with_the_mean_cpu() {
        let m = set().merged();
        assert_eq!(m.classes.len(), 1);
        assert_eq!(m.classes[0].rule, Rule::Any);
        assert!(!m.classes[0].long);
        assert!((m.classes[0].expected_cpu_s - (4.0 + 39.0 * 0.1) / 40.0).abs() < 1e-12);
        let long = view("work", &["work", "-n", "2000000000"]);
        assert_eq!(m.classify(&long, None), Verdict::Fallback(1));
    }

    #[test]
    fn arguments_and_input_files_are_read() {
        assert_eq!(split_args(b"a\0b c\0\0d\0"), vec!["a", "b c", "", "d"]);
        assert!(split_args(b"").is_empty());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.c"), vec![b'x'; 1000]).unwrap();
        let argv: Vec<String> = ["gcc", "-c", "big.c", "--out=big.c", "missing.c", "-o"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            input_sizes(&argv, Some(dir.path())),
            vec![(2, 1000), (3, 1000)]
        );
        assert!(input_sizes(&argv, None).is_empty());
        let me = ProcessView::from_proc(std::process::id() as i32, None, None);
        assert!(!me.argv.is_empty() && !me.exe.is_empty() && !me.comm.is_empty());
    }

    #[test]
    fn stdin_files_and_pipes_between_processes_are_read() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'x'; 1234]).unwrap();
        // `sleep < big.txt | sleep`: the first reads a file on stdin and writes a pipe the
        // second reads.
        let mut writer = Command::new("sleep")
            .arg("5")
            .stdin(std::fs::File::open(&big).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = Command::new("sleep")
            .arg("5")
            .stdin(Stdio::from(writer.stdout.take().unwrap()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let w = ProcessView::from_proc(writer.id() as i32, None, None);
        let r = ProcessView::from_proc(reader.id() as i32, None, None);
        let _ = (writer.kill(), reader.kill(), writer.wait(), reader.wait());

        assert_eq!(w.stdin, Some(Stream::File { bytes: 1234 }));
        assert_eq!(w.largest_input(), Some(1234));
        assert!(Rule::InputSizeAtLeast { min_bytes: 1000 }.matches(&w));
        let pipe = w.stdout_pipe().expect("the writer's stdout is a pipe");
        assert_eq!(r.stdin_pipe(), Some(pipe));
        // /dev/null is neither a file that is read nor a pipe.
        assert_eq!(r.stdout, None);
        assert_eq!(r.largest_input(), None);
        assert!(!Rule::InputSizeAtLeast { min_bytes: 1 }.matches(&r));
    }
}
