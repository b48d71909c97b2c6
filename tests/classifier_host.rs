//! The run-time classifier on this machine's own kernel: it needs BPF (root, BTF) but not
//! sched_ext, so it runs on the host. Processes are classified at exec by their arguments and
//! children inherit their parent's class in the kernel, before they first run.

use std::process::Command;
use std::time::Duration;

use schedgen::classify::rules::{ClassSet, Rule, TaskClass};
use schedgen::classify::tracer::{self, Classifier, TaskRoot};
use schedgen::workload::result::Group;

fn classes() -> ClassSet {
    ClassSet {
        classes: vec![
            TaskClass {
                id: 1,
                name: "long".into(),
                rule: Rule::ArgAny {
                    value: "long-marker".into(),
                },
                expected_cpu_s: 4.0,
                tasks: 1,
                long: true,
            },
            TaskClass {
                id: 2,
                name: "other".into(),
                rule: Rule::Any,
                expected_cpu_s: 0.05,
                tasks: 1,
                long: false,
            },
        ],
    }
}

/// The classifier's tracer compiled for the fetched kernel; the tests need root for BPF.
fn tracer_object() -> std::path::PathBuf {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the classifier needs root (BPF); run the tests as root"
    );
    let kernel =
        schedgen::kernel::select(None).expect("a fetched kernel: run `schedgen kernel fetch`");
    let headers = schedgen::kernel::header_dir(&kernel).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    tracer::tracer_object(&headers, &root.join("bpf-reference")).unwrap()
}

#[test]
fn classifies_at_exec_and_children_inherit() {
    let object = tracer_object();
    let set = classes();
    let c = Classifier::start(&object, &set).unwrap();

    // Each shell names its marker as an argument ($0); its `sleep` child runs /bin/sleep,
    // which no rule matches: it keeps the class it inherited at fork.
    let spawn = |marker: &str| {
        Command::new("/bin/sh")
            .args(["-c", "/bin/sleep 0.6; :", marker])
            .spawn()
            .unwrap()
    };
    let mut long = spawn("long-marker");
    let mut short = spawn("short-marker");
    std::thread::sleep(Duration::from_millis(300));
    let (lp, sp) = (long.id() as i32, short.id() as i32);
    let in_kernel = (c.class_of(lp), c.class_of(sp));
    let service = c.class_of(std::process::id() as i32);
    long.wait().unwrap();
    short.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let log = c.stop();

    let (l, s) = in_kernel;
    let (id, flags, ns) = l.expect("the long shell is in the kernel map");
    assert_eq!((id, flags & 1, ns), (1, 1, 4_000_000_000));
    assert_eq!(
        s.map(|v| (v.0, v.2)),
        Some((2, 50_000_000)),
        "the other shell falls back to class 2, with class 2's expected time"
    );
    // This process runs the classifier: it counts as the longest work, so that a scheduler's
    // head start never queues the classifier behind the tasks it has yet to classify. Its
    // children do not inherit that (the short shell above is a child of this process).
    let (_, sflags, sns) = service.expect("the classifier's own process is in the map");
    assert_eq!((sflags & 4, sns), (4, 4_000_000_000), "{service:?}");
    assert_eq!(s.map(|v| v.1 & 4), Some(0), "{s:?}");
    // Both shells are through their exec: neither still counts as inherited (flag 2), which
    // would give it a young process's whole head start.
    assert_eq!((flags & 2, s.map(|v| v.1 & 2)), (0, Some(0)), "{l:?} {s:?}");

    let child_of = |pid: i32| {
        log.processes
            .iter()
            .find(|p| p.ppid == pid && p.comm == "sleep")
            .unwrap_or_else(|| panic!("no sleep child of {pid} in {:#?}", log.processes))
    };
    let lc = child_of(lp);
    assert_eq!((lc.class, lc.how.as_str()), (1, "inherited"), "{lc:?}");
    let sc = child_of(sp);
    assert_eq!((sc.class, sc.how.as_str()), (2, "fallback"), "{sc:?}");
    assert!(lc.cpu_s.is_some(), "exit events carry CPU time");
    // `sleep 0.6` blocks once at least, so its exit event counts a context switch.
    assert!(
        lc.switches.is_some_and(|n| n >= 1) && lc.moves.is_some(),
        "exit events carry switches and moves: {lc:?}"
    );

    let run = tracer::summarize(
        &log,
        &set,
        &[
            TaskRoot {
                pid: lp,
                index: 39,
                group: Group::Long,
            },
            TaskRoot {
                pid: sp,
                index: 0,
                group: Group::Short,
            },
        ],
    );
    assert_eq!((run.short_as_long, run.long_as_short), (0, 0), "{run:?}");
    assert!(run.long_processes >= 2, "{run:?}");
    assert!(
        run.long_switches >= 1 && run.short_switches >= 1,
        "each task's sleep switched out: {run:?}"
    );
    let p99 = run.latency_p99_ms.expect("execs were classified");
    assert!(p99 < 1000.0, "exec to class took {p99} ms");
    eprintln!(
        "classifier: {} execs, p50 {:?} ms, p99 {:?} ms, {:.3}% CPU, {} dropped",
        run.execs,
        run.latency_p50_ms,
        run.latency_p99_ms,
        run.cpu_share * 100.0,
        run.dropped
    );
}

/// A pipeline's reader inherits the class of the process writing into its stdin pipe, and a
/// file redirected to stdin counts as an input.
#[test]
fn pipeline_readers_inherit_and_stdin_files_are_inputs() {
    let object = tracer_object();
    let set = ClassSet {
        classes: vec![
            TaskClass {
                rule: Rule::InputSizeAtLeast {
                    min_bytes: 1_000_000,
                },
                ..classes().classes[0].clone()
            },
            classes().classes[1].clone(),
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    let small = dir.path().join("small.txt");
    std::fs::write(&big, vec![b'x'; 2_000_000]).unwrap();
    std::fs::write(&small, b"x\n").unwrap();
    let c = Classifier::start(&object, &set).unwrap();

    // `sleep` stands for the pipeline's worker: it names no file, and cat blocks on the full
    // pipe until sleep exits. The file comes through the environment, so that no rule
    // matches the shell and its children inherit nothing from it.
    let spawn = |script: &str, file: &std::path::Path| {
        Command::new("/bin/sh")
            .args(["-c", script])
            .env("F", file)
            .spawn()
            .unwrap()
    };
    let pipeline = "cat \"$F\" | /bin/sleep 0.6; :";
    let redirect = "/bin/sleep 0.6 < \"$F\"; :";
    let mut children = [
        spawn(pipeline, &big),
        spawn(pipeline, &small),
        spawn(redirect, &big),
        spawn(redirect, &small),
    ];
    let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
    for child in &mut children {
        child.wait().unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let log = c.stop();

    let child_of = |pid: i32, comm: &str| {
        log.processes
            .iter()
            .find(|p| p.ppid == pid && p.comm == comm)
            .unwrap_or_else(|| panic!("no {comm} child of {pid} in {:#?}", log.processes))
    };
    let got = |pid: i32, comm: &str| {
        let p = child_of(pid, comm);
        (p.class, p.how.clone())
    };
    assert_eq!(got(pids[0], "cat"), (1, "rule".to_string()));
    assert_eq!(
        got(pids[0], "sleep"),
        (1, "inherited".to_string()),
        "the reader of a long cat's pipe"
    );
    assert_eq!(got(pids[1], "cat"), (2, "fallback".to_string()));
    assert_eq!(got(pids[1], "sleep"), (2, "fallback".to_string()));
    assert_eq!(got(pids[2], "sleep"), (1, "rule".to_string()));
    assert_eq!(got(pids[3], "sleep"), (2, "fallback".to_string()));
}
