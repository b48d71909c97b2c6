//! The profile learns what separates the long task from what the processes run, on workloads
//! whose long task shares its program with the short ones (`cases/extra/`), and finds the
//! planted name where there is one. Real runs on this host, small sizes.

use std::path::PathBuf;
use std::sync::Mutex;

use schedgen::bench::driver::with_process_tracer;
use schedgen::case;
use schedgen::classify::rules::Rule;
use schedgen::paths::ProjectPaths;
use schedgen::profile::{self, Profile};
use schedgen::workload::result::{Group, ProcessSource, RunStatus};
use schedgen::workload::{run_case, RunRequest};

/// Profiles are measurements: six 40-task workloads at once on two CPUs would distort each
/// other's times, and starve a sampling monitor (as root the monitor traces instead).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn profile_of(id: &str, scale: f64) -> Profile {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let paths = ProjectPaths::discover(Some(&PathBuf::from(env!("CARGO_MANIFEST_DIR")))).unwrap();
    let c = case::find(&paths.cases(), id).unwrap();
    let description = c.description.clone();
    let mut req = RunRequest::new(c, paths.assets());
    req.scale = scale;
    req.timeout_s = 600.0;
    req.monitor_interval_ms = Some(10);
    let run = with_process_tracer(&paths, &mut req, |req| run_case(req, &|_| {}));
    assert_eq!(run.status, RunStatus::Success, "{id}: {:?}", run.error);
    profile::from_run(&run, &description).unwrap()
}

/// The learned rule matches every long-task process that did real work (or an ancestor of
/// it) and no short task's process.
fn check_separates(p: &Profile) {
    let l = &p.task_classes;
    assert!(l.separable, "{}: {}", p.test_id, l.explanation);
    let long = &l.classes.classes[0];
    assert!(long.long && long.expected_cpu_s > 0.0, "{long:?}");
    assert_eq!(l.classes.classes[1].rule, Rule::Any);
    assert!(p.long_tail.recognise_by.contains(&long.rule.describe()));
    for proc in p.processes.iter().filter(|x| x.group == Group::Short) {
        let view = schedgen::classify::rules::ProcessView {
            comm: proc.comm.clone(),
            exe: proc.exe.clone(),
            argv: proc.argv.clone(),
            inputs: proc.inputs.clone(),
            cgroup: proc.cgroup.clone(),
            stdin: proc.stdin,
            stdout: proc.stdout,
        };
        assert!(
            !long.rule.matches(&view),
            "{}: {:?} matches short process {:?}",
            p.test_id,
            long.rule,
            proc.argv
        );
    }
}

#[test]
fn same_binary_different_argument() {
    let p = profile_of("same_binary_args", 0.05);
    check_separates(&p);
    assert!(
        matches!(
            p.task_classes.classes.classes[0].rule,
            Rule::ArgNumberAtLeast { .. }
        ),
        "{:?}",
        p.task_classes.classes
    );
}

#[test]
fn interpreter_with_a_row_count() {
    let p = profile_of("interpreter_rows", 0.05);
    check_separates(&p);
    assert!(
        matches!(
            p.task_classes.classes.classes[0].rule,
            Rule::ArgNumberAtLeast { .. }
        ),
        "{:?}",
        p.task_classes.classes
    );
}

#[test]
fn compiler_build_is_recognised_by_what_it_compiles() {
    let p = profile_of("compiler_build", 0.05);
    check_separates(&p);
    // Every process is gcc, cc1 or as in every task: the rule is on the size of the file they
    // were asked to compile (and the assembler file cc1 wrote from it), not on a program.
    let rule = &p.task_classes.classes.classes[0].rule;
    assert!(matches!(rule, Rule::InputSizeAtLeast { .. }), "{rule:?}");
}

#[test]
fn planted_names_are_found() {
    let p = profile_of("ctest_suite", 0.05);
    check_separates(&p);
    assert_eq!(
        p.task_classes.classes.classes[0].rule,
        Rule::CommEquals {
            value: "long_integ_test".into()
        }
    );
}

#[test]
fn a_pipeline_is_recognised_by_the_file_its_first_process_reads() {
    // cat day_NN.log | awk … | sort: awk does the work and names no file; it reads the pipe
    // cat writes, and cat's file is 20 times larger in the long task. At the full sizes a
    // short task's awk runs long enough for the 10 ms monitor to see it.
    let p = profile_of("log_pipeline", 1.0);
    check_separates(&p);
    let rule = &p.task_classes.classes.classes[0].rule;
    assert!(matches!(rule, Rule::InputSizeAtLeast { .. }), "{rule:?}");
    let heavy = &p.task_classes.heavy;
    assert!(
        heavy.iter().any(|(_, comm, _)| comm == "awk"),
        "awk does the long task's work: {heavy:?}"
    );
    assert!(
        p.task_classes.explanation.contains("stdin pipe"),
        "{}",
        p.task_classes.explanation
    );
}

#[test]
fn every_short_process_is_seen_however_short() {
    // At a fifth of its sizes a short task of log_pipeline uses about 10 ms of CPU in all: a
    // sampling monitor saw the processes of 8 to 18 of the 39 short tasks. The tracer sees
    // every fork, exec and exit (it needs root: run the tests as root, as CI does).
    let p = profile_of("log_pipeline", 0.2);
    assert_eq!(
        p.process_source,
        ProcessSource::Traced,
        "not traced: {:?}",
        p.tracer_error
    );
    for task in 0..40 {
        let comms: Vec<&str> = p
            .processes
            .iter()
            .filter(|q| q.task == task)
            .map(|q| q.comm.as_str())
            .collect();
        for comm in ["cat", "awk", "sort"] {
            assert!(
                comms.contains(&comm),
                "task {task}: {comm} missing in {comms:?}"
            );
        }
    }
    // Exact CPU, not clock ticks: a short task's cat reads its 0.5 MB in a few ms.
    assert!(p
        .processes
        .iter()
        .any(|q| q.comm == "cat" && q.cpu_s > 0.0 && q.cpu_s < 0.01));
    check_separates(&p);
    let rule = &p.task_classes.classes.classes[0].rule;
    assert!(matches!(rule, Rule::InputSizeAtLeast { .. }), "{rule:?}");
}

#[test]
fn work_spread_over_many_processes_is_recognised_by_the_script_that_starts_them() {
    // sh pack.sh $DATA/set_NN: one gzip per 512 KiB file, directory 17 with 20 times the files.
    // No process of the long task does 5% of its work; the rule is on the script's argument.
    let p = profile_of("script_per_file", 0.05);
    check_separates(&p);
    let rule = &p.task_classes.classes.classes[0].rule;
    assert!(
        matches!(rule, Rule::ArgEquals { value, .. } | Rule::ArgAny { value } if value.ends_with("/set_17")),
        "{rule:?}: {}",
        p.task_classes.explanation
    );
    let heavy = &p.task_classes.heavy;
    assert!(
        heavy.iter().filter(|(_, comm, _)| comm == "gzip").count() > 1,
        "the gzips do the long task's work: {heavy:?}"
    );
    assert!(
        p.task_classes.explanation.contains("inherit"),
        "{}",
        p.task_classes.explanation
    );
}

#[test]
fn a_pipe_into_xargs_is_recognised_by_the_tree_find_walks() {
    // find tree_NN | xargs -n 8 sha256sum: only find names the tree; xargs reads find's pipe and
    // starts the sha256sums, which do the work, eight files each, in every task alike.
    let p = profile_of("checksum_tree", 0.1);
    check_separates(&p);
    let rule = &p.task_classes.classes.classes[0].rule;
    assert!(
        matches!(rule, Rule::ArgEquals { value, .. } | Rule::ArgAny { value } if value.ends_with("/tree_17")),
        "{rule:?}: {}",
        p.task_classes.explanation
    );
    let heavy = &p.task_classes.heavy;
    assert!(
        heavy
            .iter()
            .filter(|(_, comm, _)| comm == "sha256sum")
            .count()
            > 1,
        "the sha256sums do the long task's work: {heavy:?}"
    );
    assert!(
        p.task_classes.explanation.contains("stdin pipe"),
        "{}",
        p.task_classes.explanation
    );
}
