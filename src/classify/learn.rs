//! Learn the simplest rule that tells the long task's processes from every short task's.
//!
//! Input: the processes a profile saw, each with its task, its parent and what it ran; the
//! exact CPU of every task. The learner proposes rules from what the long task's processes ran
//! (their `comm`, executable, arguments, numeric arguments, input sizes, cgroup), keeps those
//! that match no short task's process and still reach every process that does the long task's
//! work (directly, through an ancestor whose class it inherits, or through the process that
//! writes into its stdin pipe), and picks the simplest.
//! It never proposes anything from the runner's own artefacts: the runner's shell at a task's
//! root and argument positions that carry the task's index or directory are masked.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::rules::{parse_number, ClassSet, ProcessView, Rule, TaskClass};
use crate::workload::result::Group;

/// A process of the long task counts as doing its work when it used this share of the task's
/// sampled CPU.
const HEAVY_SHARE: f64 = 0.05;

/// When the work is spread over many small processes (a script running a tool per file), the
/// processes that do it are the largest ones that together used this share of the task's
/// sampled CPU.
const WORK_COVERAGE: f64 = 0.5;

/// At most this many small processes join the ones above HEAVY_SHARE: every one of them must
/// be reached by the rule, and a few dozen already say that a common ancestor is what reaches
/// them.
const MAX_SPREAD: usize = 64;

/// One process the profile saw.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Observed {
    pub pid: i32,
    pub ppid: i32,
    pub task: usize,
    pub group: Group,
    pub view: ProcessView,
    pub cpu_s: f64,
    /// The runner's own `sh -c` at the task's root: not part of the workload.
    pub runner_shell: bool,
    /// Argument positions holding a runner artefact (the task index, the task directory).
    pub masked: Vec<usize>,
    /// It ended before `/proc` could be read: its executable and cgroup are unknown, so a rule
    /// on them may match it.
    #[serde(default)]
    pub partial: bool,
}

/// A task's exact CPU (rusage of the task and its descendants).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TaskCpu {
    pub index: usize,
    pub group: Group,
    pub cpu_s: f64,
}

/// What the learner concluded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Learned {
    /// The classes, empty when nothing separates the long task.
    pub classes: ClassSet,
    pub separable: bool,
    /// In one or two sentences: which rule, what it reaches, or why nothing works.
    pub explanation: String,
    /// How many distinct candidate rules were tried.
    pub candidates: usize,
    /// The long task's processes that do its work (pid, comm, share of the task's CPU).
    pub heavy: Vec<(i32, String, f64)>,
}

struct Candidate {
    rule: Rule,
    /// An argument rule whose value is the path of a file the process reads: it names one file
    /// of this data set, where a size rule on the same file says why the work is long.
    names_input: bool,
    direct: usize,
    /// For thresholds: how far apart the two sides are (long / short), larger is safer.
    margin: f64,
}

/// Learn the classes of a 39 + 1 style workload (any number of short and long tasks).
pub fn learn(procs: &[Observed], tasks: &[TaskCpu]) -> Learned {
    let long_tasks: BTreeSet<usize> = tasks
        .iter()
        .filter(|t| t.group == Group::Long)
        .map(|t| t.index)
        .collect();
    let workload: Vec<&Observed> = procs.iter().filter(|p| !p.runner_shell).collect();
    let shorts: Vec<&Observed> = workload
        .iter()
        .copied()
        .filter(|p| p.group == Group::Short)
        .collect();
    let by_pid: HashMap<i32, &Observed> = procs.iter().map(|p| (p.pid, p)).collect();

    // The processes that do the long tasks' work.
    let mut heavy: Vec<&Observed> = Vec::new();
    for t in &long_tasks {
        let mine: Vec<&Observed> = workload.iter().copied().filter(|p| p.task == *t).collect();
        heavy.extend(working(&mine));
    }
    let heavy_info = heavy
        .iter()
        .map(|h| {
            let total: f64 = workload
                .iter()
                .filter(|p| p.task == h.task)
                .map(|p| p.cpu_s.max(0.0))
                .sum();
            (h.pid, h.view.comm.clone(), h.cpu_s / total.max(1e-9))
        })
        .collect();
    if heavy.is_empty() {
        return Learned {
            explanation: "the profile saw no process of the long task use CPU (too short a run?), so there is nothing to learn from".into(),
            heavy: heavy_info,
            ..Learned::default()
        };
    }

    // A rule is checked against the short tasks' processes the monitor saw; a short task whose
    // processes all ran between its samples (sampling, not tracing) shows only the runner's
    // shell, and absence there proves nothing ("no short task runs awk" when the monitor saw no
    // short task's awk).
    let short_tasks = tasks.iter().filter(|t| t.group == Group::Short).count();
    let seen_short = shorts.iter().map(|p| p.task).collect::<BTreeSet<_>>().len();
    if seen_short * 2 < short_tasks {
        return Learned {
            explanation: format!(
                "the monitor saw the processes of only {seen_short} of the {short_tasks} short \
                 tasks (the others' ran between its samples), too few to check that a rule \
                 matches no short task's process; profile at larger sizes"
            ),
            heavy: heavy_info,
            ..Learned::default()
        };
    }

    // The processes of a task that write into each pipe.
    let mut writers: HashMap<(usize, u64), Vec<&Observed>> = HashMap::new();
    for p in procs {
        if let Some(pipe) = p.view.stdout_pipe() {
            writers.entry((p.task, pipe)).or_default().push(p);
        }
    }
    // What a rule may match to reach a heavy process: the process itself, its ancestors inside
    // the task (a child inherits its parent's class), and, when its stdin is a pipe, the
    // processes writing into it (a pipeline's reader inherits its writer's), and theirs in turn.
    let reach = |h: &Observed, through_pipes: bool| -> Vec<&Observed> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut frontier = vec![by_pid[&h.pid]];
        while let Some(p) = frontier.pop() {
            if p.task != h.task || !seen.insert(p.pid) || seen.len() > 256 {
                continue;
            }
            if !p.runner_shell {
                out.push(p);
            }
            frontier.extend(by_pid.get(&p.ppid).filter(|q| q.pid != p.pid));
            if let Some(pipe) = p.view.stdin_pipe().filter(|_| through_pipes) {
                frontier.extend(writers.get(&(p.task, pipe)).into_iter().flatten());
            }
        }
        out
    };
    let lineages: Vec<Vec<&Observed>> = heavy.iter().map(|h| reach(h, true)).collect();

    let mut proposals: Vec<(Rule, f64)> = Vec::new();
    let sources: Vec<&Observed> = {
        let mut seen = BTreeSet::new();
        lineages
            .iter()
            .flatten()
            .copied()
            .filter(|p| seen.insert(p.pid))
            .collect()
    };
    for p in &sources {
        propose(p, &shorts, &mut proposals);
    }
    if let Some(prefix) = common_prefix(heavy.iter().map(|h| h.view.comm.as_str())) {
        proposals.push((Rule::CommPrefix { value: prefix }, 1.0));
    }

    let mut tried = 0;
    let mut valid: Vec<Candidate> = Vec::new();
    let mut seen_rules: Vec<Rule> = Vec::new();
    for (rule, margin) in proposals {
        if seen_rules.contains(&rule) {
            continue;
        }
        seen_rules.push(rule.clone());
        tried += 1;
        if shorts.iter().any(|s| matches_conservatively(&rule, s)) {
            continue;
        }
        if !lineages
            .iter()
            .all(|l| l.iter().any(|p| matches_conservatively(&rule, p)))
        {
            continue;
        }
        let direct = heavy.iter().filter(|h| rule.matches(&h.view)).count();
        let names_input = sources.iter().any(|p| names_an_input(&rule, p));
        valid.push(Candidate {
            rule,
            names_input,
            direct,
            margin,
        });
    }
    valid.sort_by(|a, b| {
        a.rank()
            .cmp(&b.rank())
            .then(b.direct.cmp(&a.direct))
            .then(b.margin.total_cmp(&a.margin))
    });

    let mean = |g: Group| {
        let v: Vec<f64> = tasks
            .iter()
            .filter(|t| t.group == g)
            .map(|t| t.cpu_s)
            .collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let Some(best) = valid.into_iter().next() else {
        let comms: BTreeSet<&str> = heavy.iter().map(|h| h.view.comm.as_str()).collect();
        return Learned {
            explanation: format!(
                "nothing separates the long task: {tried} candidate rules from its processes ({}) \
                 each also match a short task's process or miss part of the long task's work",
                comms.into_iter().collect::<Vec<_>>().join(", ")
            ),
            candidates: tried,
            heavy: heavy_info,
            ..Learned::default()
        };
    };
    let inherited = heavy.len() - best.direct;
    // Of those, the ones no ancestor reaches get it through a pipe.
    let piped = heavy
        .iter()
        .filter(|h| {
            !reach(h, false)
                .iter()
                .any(|p| matches_conservatively(&best.rule, p))
        })
        .count();
    let explanation = format!(
        "the long task's processes are recognised by: {}; it matches no short task's process{}{}",
        best.rule.describe(),
        if seen_short < short_tasks {
            format!(" the monitor saw (it saw those of {seen_short} of the {short_tasks} short tasks)")
        } else {
            String::new()
        },
        match (inherited - piped, piped) {
            (0, 0) => String::new(),
            (parent, 0) => format!(
                " ({parent} of its {} working processes inherit the class from a parent that matches)",
                heavy.len()
            ),
            (0, piped) => format!(
                " ({piped} of its {} working processes get the class from the process writing \
                 into their stdin pipe, which matches or inherits it)",
                heavy.len()
            ),
            (parent, piped) => format!(
                " (of its {} working processes, {parent} inherit the class from a parent that \
                 matches, {piped} get it from the process writing into their stdin pipe)",
                heavy.len()
            ),
        }
    );
    Learned {
        classes: ClassSet {
            classes: vec![
                TaskClass {
                    id: 1,
                    name: "long".into(),
                    rule: best.rule,
                    expected_cpu_s: mean(Group::Long),
                    tasks: long_tasks.len(),
                    long: true,
                },
                TaskClass {
                    id: 2,
                    name: "other".into(),
                    rule: Rule::Any,
                    expected_cpu_s: mean(Group::Short),
                    tasks: short_tasks,
                    long: false,
                },
            ],
        },
        separable: true,
        explanation,
        candidates: tried,
        heavy: heavy_info,
    }
}

/// Of one long task's processes, those that do its work: every one that used at least
/// [`HEAVY_SHARE`] of the task's sampled CPU and, when those together used less than
/// [`WORK_COVERAGE`] of it, the largest of the others until they do. Without the second part
/// a task of a hundred equal processes would have no working process at all. Kept in the
/// profile's order.
fn working<'a>(mine: &[&'a Observed]) -> Vec<&'a Observed> {
    let total: f64 = mine.iter().map(|p| p.cpu_s.max(0.0)).sum();
    let mut by_cpu: Vec<&Observed> = mine.iter().copied().filter(|p| p.cpu_s > 0.0).collect();
    by_cpu.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s).then(a.pid.cmp(&b.pid)));
    let mut covered = 0.0;
    let mut spread = 0;
    let mut chosen = BTreeSet::new();
    for p in by_cpu {
        if p.cpu_s < HEAVY_SHARE * total {
            if covered >= WORK_COVERAGE * total || spread >= MAX_SPREAD {
                break;
            }
            spread += 1;
        }
        covered += p.cpu_s;
        chosen.insert(p.pid);
    }
    mine.iter()
        .copied()
        .filter(|p| chosen.contains(&p.pid))
        .collect()
}

impl Candidate {
    /// Simplest first; an argument that is an input file's path ranks just after a rule on
    /// that file's size, so that the size rule is chosen when both separate.
    fn rank(&self) -> u32 {
        let size = Rule::InputSizeAtLeast { min_bytes: 0 }.complexity();
        if self.names_input {
            2 * size + 1
        } else {
            2 * self.rule.complexity()
        }
    }
}

/// Whether `rule` compares one of `p`'s arguments that names a file it reads.
fn names_an_input(rule: &Rule, p: &Observed) -> bool {
    let is_input = |i: usize| p.view.inputs.iter().any(|(j, _)| *j == i);
    match rule {
        Rule::ArgEquals { index, value } => {
            p.view.argv.get(*index) == Some(value) && is_input(*index)
        }
        Rule::ArgAny { value } => p
            .view
            .argv
            .iter()
            .enumerate()
            .any(|(i, a)| a == value && is_input(i)),
        _ => false,
    }
}

/// Whether `rule` matches `p`, assuming the worst of what is not known about a short task's
/// process: a masked argument's real value is the runner's, so a rule that reads it could match
/// at run time, and a rule on what a partial view lacks (its executable, its cgroup) could
/// match what it was.
fn matches_conservatively(rule: &Rule, p: &Observed) -> bool {
    let unknown = match rule {
        Rule::ArgEquals { index, .. } | Rule::ArgNumberAtLeast { index, .. } => {
            p.masked.contains(index)
        }
        Rule::ArgAny { .. } => !p.masked.is_empty(),
        Rule::ExeEquals { .. } | Rule::CgroupPrefix { .. } => p.partial,
        Rule::CommEquals { .. }
        | Rule::CommPrefix { .. }
        | Rule::InputSizeAtLeast { .. }
        | Rule::Any => false,
    };
    (unknown && p.group == Group::Short) || rule.matches(&p.view)
}

fn propose(p: &Observed, shorts: &[&Observed], out: &mut Vec<(Rule, f64)>) {
    let v = &p.view;
    if !v.comm.is_empty() {
        out.push((
            Rule::CommEquals {
                value: v.comm.clone(),
            },
            1.0,
        ));
    }
    if !v.exe.is_empty() {
        out.push((
            Rule::ExeEquals {
                value: v.exe.clone(),
            },
            1.0,
        ));
    }
    for (i, a) in v.argv.iter().enumerate() {
        if p.masked.contains(&i) || a.is_empty() {
            continue;
        }
        // A number is a quantity: compare it with a threshold, not for equality.
        let number = parse_number(a);
        if i > 0 && number.is_none() {
            out.push((
                Rule::ArgEquals {
                    index: i,
                    value: a.clone(),
                },
                1.0,
            ));
            out.push((Rule::ArgAny { value: a.clone() }, 1.0));
        }
        if let Some(x) = number.filter(|x| *x > 0.0) {
            let below = shorts
                .iter()
                .filter(|s| !s.masked.contains(&i))
                .filter_map(|s| s.view.argv.get(i).and_then(|a| parse_number(a)))
                .fold(f64::NEG_INFINITY, f64::max);
            if below < x {
                let (min, margin) = threshold(below, x);
                out.push((Rule::ArgNumberAtLeast { index: i, min }, margin));
            }
        }
    }
    if let Some(size) = v.largest_input().filter(|s| *s > 0) {
        let below = shorts
            .iter()
            .filter_map(|s| s.view.largest_input())
            .max()
            .map(|s| s as f64)
            .unwrap_or(f64::NEG_INFINITY);
        if below < size as f64 {
            let (min, margin) = threshold(below, size as f64);
            out.push((
                Rule::InputSizeAtLeast {
                    min_bytes: min.ceil() as u64,
                },
                margin,
            ));
        }
    }
    if !v.cgroup.is_empty() {
        out.push((
            Rule::CgroupPrefix {
                value: v.cgroup.clone(),
            },
            1.0,
        ));
    }
}

/// A threshold between the largest short value and the long one: their geometric mean (sizes
/// spread over orders of magnitude), or half the long value when no short task has one.
fn threshold(below: f64, long: f64) -> (f64, f64) {
    if below > 0.0 {
        let t = (below * long).sqrt();
        (
            round_nice(t).clamp(below * (1.0 + 1e-9), long),
            long / below,
        )
    } else {
        (round_nice(long / 2.0).max(f64::MIN_POSITIVE), f64::INFINITY)
    }
}

/// Two significant digits, so a rule reads `≥ 510000000`, not `≥ 514373098.63`.
fn round_nice(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let mag = 10f64.powi(x.log10().floor() as i32 - 1);
    (x / mag).round() * mag
}

/// The longest common prefix of several names, when there are at least two and it is a real
/// prefix (3 bytes or more, shorter than some name).
fn common_prefix<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    let names: BTreeSet<&str> = names.collect();
    if names.len() < 2 {
        return None;
    }
    let first = *names.iter().next()?;
    let mut len = first.len();
    for n in &names {
        len = len.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    (len >= 3).then(|| first[..len].to_string())
}

/// Mask the runner's artefacts in one process's arguments: the task index (as a word) and the
/// task's directory.
pub fn runner_masks(argv: &[String], task: usize, task_dir: Option<&str>) -> Vec<usize> {
    let index = task.to_string();
    let padded = format!("task-{task:02}");
    argv.iter()
        .enumerate()
        .filter(|(_, a)| {
            **a == index
                || a.contains(&padded)
                || task_dir.is_some_and(|d| !d.is_empty() && a.contains(d))
        })
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(pid: i32, ppid: i32, task: usize, comm: &str, argv: &[&str], cpu: f64) -> Observed {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        Observed {
            pid,
            ppid,
            task,
            group: if task == 39 {
                Group::Long
            } else {
                Group::Short
            },
            masked: runner_masks(&argv, task, None),
            view: ProcessView {
                comm: comm.into(),
                exe: format!("/usr/bin/{comm}"),
                argv,
                inputs: vec![],
                cgroup: "/user.slice".into(),
                ..ProcessView::default()
            },
            cpu_s: cpu,
            runner_shell: false,
            partial: false,
        }
    }

    fn tasks() -> Vec<TaskCpu> {
        (0..40)
            .map(|i| TaskCpu {
                index: i,
                group: if i == 39 { Group::Long } else { Group::Short },
                cpu_s: if i == 39 { 4.0 } else { 0.1 },
            })
            .collect()
    }

    #[test]
    fn planted_names_give_a_comm_rule() {
        let mut p: Vec<Observed> = (0..39)
            .map(|i| {
                obs(
                    100 + i as i32,
                    1,
                    i,
                    "short_test",
                    &["short_test", &i.to_string(), "2100"],
                    0.1,
                )
            })
            .collect();
        p.push(obs(500, 1, 39, "long_test", &["long_test", "12600"], 4.0));
        let l = learn(&p, &tasks());
        assert!(l.separable, "{}", l.explanation);
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::CommEquals {
                value: "long_test".into()
            }
        );
        assert!((l.classes.classes[0].expected_cpu_s - 4.0).abs() < 1e-12);
        assert!((l.classes.classes[1].expected_cpu_s - 0.1).abs() < 1e-12);
    }

    #[test]
    fn the_same_binary_is_told_apart_by_its_numeric_argument() {
        let mut p: Vec<Observed> = (0..39)
            .map(|i| {
                obs(
                    100 + i as i32,
                    1,
                    i,
                    "work",
                    &["work", "--iterations", "2000000"],
                    0.1,
                )
            })
            .collect();
        p.push(obs(
            500,
            1,
            39,
            "work",
            &["work", "--iterations", "80000000"],
            4.0,
        ));
        let l = learn(&p, &tasks());
        assert!(l.separable, "{}", l.explanation);
        // Numbers are compared with a threshold between the two sides, never for equality.
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::ArgNumberAtLeast {
                index: 2,
                min: 13_000_000.0
            }
        );
    }

    #[test]
    fn a_threshold_when_short_values_differ() {
        let mut p: Vec<Observed> = (0..39)
            .map(|i| {
                let n = (1_000_000 + 1000 * i).to_string();
                obs(
                    100 + i as i32,
                    1,
                    i,
                    "python3",
                    &["python3", "job.py", "--rows", &n],
                    0.1,
                )
            })
            .collect();
        p.push(obs(
            500,
            1,
            39,
            "python3",
            &["python3", "job.py", "--rows", "40000000"],
            4.0,
        ));
        let l = learn(&p, &tasks());
        let r = &l.classes.classes[0].rule;
        assert!(
            matches!(r, Rule::ArgNumberAtLeast { index: 3, .. }),
            "{r:?}"
        );
        assert!(r.matches(&p[39].view));
        assert!(p[..39].iter().all(|s| !r.matches(&s.view)));
        let (min, _) = threshold(1_038_000.0, 40_000_000.0);
        assert!(min > 1_038_000.0 && min < 40_000_000.0);
    }

    #[test]
    fn children_inherit_so_a_rule_on_the_parent_is_enough() {
        // gcc big.c → cc1, as: only gcc's argument names the big file.
        let mut p = Vec::new();
        for i in 0..39 {
            let base = 100 + 10 * i as i32;
            let file = format!("unit_{i:02}.c");
            let mut g = obs(base, 1, i, "gcc", &["gcc", "-O2", "-c", &file], 0.001);
            g.view.inputs = vec![(3, 2_000)];
            p.push(g);
            p.push(obs(
                base + 1,
                base,
                i,
                "cc1",
                &["cc1", "-quiet", "-O2"],
                0.09,
            ));
            p.push(obs(base + 2, base, i, "as", &["as", "-o", "x.o"], 0.01));
        }
        let mut g = obs(
            900,
            1,
            39,
            "gcc",
            &["gcc", "-O2", "-c", "generated.c"],
            0.001,
        );
        g.view.inputs = vec![(3, 400_000)];
        p.push(g);
        p.push(obs(901, 900, 39, "cc1", &["cc1", "-quiet", "-O2"], 3.9));
        p.push(obs(902, 900, 39, "as", &["as", "-o", "x.o"], 0.1));
        let l = learn(&p, &tasks());
        assert!(l.separable, "{}", l.explanation);
        let r = &l.classes.classes[0].rule;
        assert!(
            matches!(
                r,
                Rule::ArgEquals { index: 3, .. }
                    | Rule::ArgAny { .. }
                    | Rule::InputSizeAtLeast { .. }
            ),
            "{r:?}"
        );
        assert!(l.explanation.contains("inherit"), "{}", l.explanation);
    }

    #[test]
    fn an_input_file_is_recognised_by_its_size_not_its_path() {
        // gzip -c chunk_NN.txt: the long task's chunk is 20 times larger. Its path separates
        // too, but names one file of this data set; its size says why the work is long.
        let chunk = |i: usize| format!("/data/chunk_{i:02}.txt");
        let mut p: Vec<Observed> = (0..40)
            .map(|i| {
                let mut g = obs(
                    100 + i as i32,
                    1,
                    i,
                    "gzip",
                    &["gzip", "-c", &chunk(i)],
                    0.1,
                );
                g.view.inputs = vec![(2, if i == 39 { 40_000_000 } else { 2_000_000 })];
                g
            })
            .collect();
        p[39].cpu_s = 4.0;
        let l = learn(&p, &tasks());
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::InputSizeAtLeast {
                min_bytes: 8_900_000
            },
            "{}",
            l.explanation
        );
        // A path that is not a file it reads (an output, a label) stays an argument rule.
        for g in &mut p {
            g.view.inputs.clear();
        }
        let l = learn(&p, &tasks());
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::ArgEquals {
                index: 2,
                value: chunk(39)
            }
        );
    }

    #[test]
    fn says_so_when_nothing_separates() {
        let mut p: Vec<Observed> = (0..39)
            .map(|i| obs(100 + i as i32, 1, i, "work", &["work"], 0.1))
            .collect();
        p.push(obs(500, 1, 39, "work", &["work"], 4.0));
        let l = learn(&p, &tasks());
        assert!(!l.separable);
        assert!(l.classes.is_empty());
        assert!(
            l.explanation.starts_with("nothing separates"),
            "{}",
            l.explanation
        );
    }

    #[test]
    fn runner_artefacts_are_never_learned() {
        // Only the task index tells the long task apart: that is the runner's, not the workload's.
        let mut p: Vec<Observed> = (0..39)
            .map(|i| obs(100 + i as i32, 1, i, "work", &["work", &i.to_string()], 0.1))
            .collect();
        p.push(obs(500, 1, 39, "work", &["work", "39"], 4.0));
        let l = learn(&p, &tasks());
        assert!(!l.separable, "learned {:?}", l.classes);
        // The runner's own shell is ignored even though its script differs.
        let mut p: Vec<Observed> = (0..39)
            .map(|i| {
                let mut s = obs(100 + i as i32, 1, i, "sh", &["/bin/sh", "-c", "short"], 0.0);
                s.runner_shell = true;
                s
            })
            .collect();
        let mut l = obs(500, 1, 39, "sh", &["/bin/sh", "-c", "long"], 0.0);
        l.runner_shell = true;
        p.push(l);
        p.extend((0..39).map(|i| obs(200 + i as i32, 100 + i as i32, i, "work", &["work"], 0.1)));
        p.push(obs(600, 500, 39, "work", &["work"], 4.0));
        assert!(!learn(&p, &tasks()).separable);
    }

    #[test]
    fn a_common_prefix_covers_sibling_processes() {
        // A pipeline whose parts are siblings under a shell that looks like the short ones'.
        let mut p = Vec::new();
        for i in 0..39 {
            let b = 100 + 10 * i as i32;
            p.push(obs(b, 1, i, "sh", &["sh", "pipeline.sh"], 0.0));
            p.push(obs(b + 1, b, i, "short_gzip", &["short_gzip", "-dc"], 0.05));
            p.push(obs(b + 2, b, i, "short_sort", &["short_sort"], 0.05));
        }
        p.push(obs(900, 1, 39, "sh", &["sh", "pipeline.sh"], 0.0));
        p.push(obs(901, 900, 39, "long_gzip", &["long_gzip", "-dc"], 2.0));
        p.push(obs(902, 900, 39, "long_sort", &["long_sort"], 2.0));
        let l = learn(&p, &tasks());
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::CommPrefix {
                value: "long_".into()
            }
        );
    }

    #[test]
    fn a_pipeline_reader_is_reached_through_the_pipe_its_writer_fills() {
        // `cat chunk_NN.txt | gzip -6`, both children of the runner's shell: only cat names
        // the file, and gzip does the work.
        use crate::classify::rules::Stream;
        let build = |with_pipes: bool| {
            let mut p = Vec::new();
            for i in 0..40 {
                let b = 100 + 10 * i as i32;
                let mut shell = obs(b, 1, i, "sh", &["sh", "-c", "gate"], 0.0);
                shell.runner_shell = true;
                p.push(shell);
                let file = format!("/data/chunk_{i:02}.txt");
                let mut cat = obs(b + 1, b, i, "cat", &["cat", &file], 0.01);
                cat.view.inputs = vec![(1, if i == 39 { 40_000_000 } else { 2_000_000 })];
                let mut gzip = obs(b + 2, b, i, "gzip", &["gzip", "-6"], 0.1);
                if i == 39 {
                    gzip.cpu_s = 4.0;
                }
                if with_pipes {
                    let pipe = Stream::Pipe {
                        inode: 5000 + i as u64,
                    };
                    cat.view.stdout = Some(pipe);
                    gzip.view.stdin = Some(pipe);
                }
                p.push(cat);
                p.push(gzip);
            }
            p
        };
        let l = learn(&build(true), &tasks());
        assert!(l.separable, "{}", l.explanation);
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::InputSizeAtLeast {
                min_bytes: 8_900_000
            }
        );
        assert!(l.explanation.contains("stdin pipe"), "{}", l.explanation);
        // Without the pipe gzip is a sibling of cat, and nothing that matches reaches it.
        let l = learn(&build(false), &tasks());
        assert!(!l.separable, "learned {:?}", l.classes);
    }

    #[test]
    fn a_file_on_stdin_is_an_input() {
        // `gzip -6 < chunk_NN.txt`: no argument names the file.
        use crate::classify::rules::Stream;
        let p: Vec<Observed> = (0..40)
            .map(|i| {
                let mut g = obs(100 + i as i32, 1, i, "gzip", &["gzip", "-6"], 0.1);
                g.view.stdin = Some(Stream::File {
                    bytes: if i == 39 { 40_000_000 } else { 2_000_000 },
                });
                if i == 39 {
                    g.cpu_s = 4.0;
                }
                g
            })
            .collect();
        let l = learn(&p, &tasks());
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::InputSizeAtLeast {
                min_bytes: 8_900_000
            },
            "{}",
            l.explanation
        );
        assert!(!l.explanation.contains("inherit"), "{}", l.explanation);
    }

    #[test]
    fn work_spread_over_many_small_processes_is_reached_through_the_script_that_starts_them() {
        // `sh pack.sh /data/set_NN` runs one gzip per file of its directory; every file is the
        // same size, and set_17 (the long task's) has 20 times as many. No process of the long
        // task uses 5% of its CPU: only the script's argument tells it apart.
        let mut p = Vec::new();
        let mut pid = 100;
        for i in 0..40 {
            let (set, files) = match i {
                39 => (17, 100),
                17.. => (i + 1, 5),
                _ => (i, 5),
            };
            let dir = format!("/data/set_{set:02}");
            let script = pid;
            p.push(obs(script, 1, i, "sh", &["sh", "pack.sh", &dir], 0.0));
            for f in 0..files {
                pid += 1;
                let file = format!("{dir}/part_{f:03}");
                // 1/16 s: sums of these are exact, so "half" is 50 of them.
                let mut g = obs(pid, script, i, "gzip", &["gzip", "-6", "-c", &file], 0.0625);
                g.view.inputs = vec![(3, 32_768)];
                p.push(g);
            }
            pid += 1;
        }
        let l = learn(&p, &tasks());
        assert!(l.separable, "{}", l.explanation);
        assert_eq!(
            l.classes.classes[0].rule,
            Rule::ArgEquals {
                index: 2,
                value: "/data/set_17".into()
            },
            "{}",
            l.explanation
        );
        // The largest of them until half the task's CPU is covered, and no more.
        assert_eq!(l.heavy.len(), 50, "{:?}", l.heavy);
        assert!(l.explanation.contains("inherit"), "{}", l.explanation);

        // A dominant process still stands alone: one gzip of the long task that does most of
        // its work is all that must be reached.
        let big = p.iter().position(|o| o.task == 39 && o.view.comm == "gzip");
        p[big.unwrap()].cpu_s = 40.0;
        let l = learn(&p, &tasks());
        assert_eq!(l.heavy.len(), 1, "{:?}", l.heavy);
    }

    #[test]
    fn absence_in_short_tasks_the_monitor_did_not_see_proves_nothing() {
        // Every task runs `work ROWS`; the monitor saw the short tasks' `work` in only `seen`
        // of them (the rest show the runner's shell alone). Were the long task's `work` named
        // differently, the short tasks it missed could still run that name.
        let profile = |seen: usize| {
            let mut p = Vec::new();
            for i in 0..40 {
                let shell = 1000 + i as i32 * 10;
                let mut sh = obs(shell, 1, i, "sh", &["/bin/sh", "-c", "gate; work"], 0.0);
                sh.runner_shell = true;
                p.push(sh);
                if i == 39 {
                    p.push(obs(shell + 1, shell, i, "work", &["work", "90000"], 4.0));
                } else if i < seen {
                    p.push(obs(shell + 1, shell, i, "work", &["work", "3000"], 0.1));
                }
            }
            learn(&p, &tasks())
        };
        let l = profile(10);
        assert!(!l.separable, "learned {:?}", l.classes);
        assert!(
            l.explanation.contains("only 10 of the 39 short tasks"),
            "{}",
            l.explanation
        );
        let l = profile(30);
        assert!(l.separable, "{}", l.explanation);
        assert!(
            l.explanation
                .contains("saw those of 30 of the 39 short tasks"),
            "{}",
            l.explanation
        );
        assert!(!profile(39).explanation.contains("short tasks)"));
    }

    #[test]
    fn what_a_short_process_that_ended_too_soon_did_not_show_may_have_matched() {
        // Same comm and arguments everywhere; only the executable differs, and one short task's
        // process ended before the tracer could read which one it ran.
        let mut p: Vec<Observed> = (0..40)
            .map(|i| obs(100 + i as i32, 1, i, "run", &["run", "job"], 0.1))
            .collect();
        p[39].cpu_s = 4.0;
        p[39].view.exe = "/opt/v2/run".into();
        for o in &mut p[..39] {
            o.view.exe = "/opt/v1/run".into();
        }
        let l = learn(&p, &tasks());
        assert_eq!(
            l.classes.classes.first().map(|c| &c.rule),
            Some(&Rule::ExeEquals {
                value: "/opt/v2/run".into()
            }),
            "{}",
            l.explanation
        );
        p[7].view.exe.clear();
        p[7].partial = true;
        let l = learn(&p, &tasks());
        assert!(!l.separable, "learned {:?}", l.classes);
    }
}
