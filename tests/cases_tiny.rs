//! Every case in `cases/` end to end at tiny scale, through the library's runner: real tools,
//! real data, and measurements that hang together.

use std::path::PathBuf;

use schedgen::case;
use schedgen::paths::ProjectPaths;
use schedgen::workload::result::{Group, RunResult, RunStatus};
use schedgen::workload::{run_case, RunRequest};

/// The pandas cases pay about 0.45 s of `import pandas` per task whatever their size, so at
/// 0.01 their long task is barely longer than a short one; and file_checksum's long task at
/// 0.01 hashes in about 30 ms, ctest_suite's runs 32 ms of CPU in 130 ms, too short for a
/// sampling monitor to see reliably (a full `cargo test` once saw no sample of ctest_suite's).
/// 0.05 gives them a clear margin.
fn scale_for(id: &str) -> f64 {
    match id {
        "hotkey_aggregation"
        | "ddos_log_analysis"
        | "viral_product_analytics"
        | "file_checksum"
        | "ctest_suite" => 0.05,
        _ => case::parse_scale("tiny").unwrap(),
    }
}

fn run_tiny(id: &str) -> RunResult {
    let paths = ProjectPaths::discover(Some(&PathBuf::from(env!("CARGO_MANIFEST_DIR")))).unwrap();
    let c = case::find(&paths.cases(), id).unwrap();
    let mut req = RunRequest::new(c, paths.assets());
    req.scale = scale_for(id);
    req.timeout_s = 600.0;
    req.monitor_interval_ms = Some(20);
    run_case(&req, &|_| {})
}

fn check(r: &RunResult) {
    let id = &r.test_id;
    assert_eq!(r.status, RunStatus::Success, "{id}: {:?}", r.error);
    assert_eq!(r.tasks.len(), 40, "{id}");
    assert_eq!(r.short.count, 39, "{id}");
    assert_eq!(r.long.count, 1, "{id}");
    assert!(r.cleanup.ok, "{id}: {:?}", r.cleanup.error);
    let longest = r.tasks.iter().map(|t| t.wall_s).fold(0.0, f64::max);
    assert!(
        r.makespan_s + 1e-9 >= longest,
        "{id}: makespan below the longest task"
    );
    let cpu_total: f64 = r.tasks.iter().map(|t| t.cpu_s).sum();
    let capacity = r.makespan_s * r.system.cpus as f64;
    assert!(
        cpu_total <= capacity * 1.02 + 0.05,
        "{id}: {cpu_total} s of CPU in {capacity} CPU-s"
    );
    for t in &r.tasks {
        assert!(
            t.succeeded(),
            "{id}: task {} failed: {:?}",
            t.index,
            t.stderr_tail
        );
        assert!(
            t.cpu_s > 0.0,
            "{id}: task {} used no CPU: did it do any work?",
            t.index
        );
    }
    // The long task is the longest by CPU, exactly measured.
    let long = r.tasks.iter().find(|t| t.group == Group::Long).unwrap();
    let max_short = r
        .tasks
        .iter()
        .filter(|t| t.group == Group::Short)
        .map(|t| t.cpu_s)
        .fold(0.0, f64::max);
    assert!(
        long.cpu_s > max_short,
        "{id}: long task cpu {} ≤ a short task's {max_short}",
        long.cpu_s
    );
    let m = r.model.expect("model");
    assert!(m.optimal_makespan_s <= m.fair_share_makespan_s + 1e-9);
    // The monitor found the long task, and it runs under the names the case file promises.
    let mon = r.monitor.as_ref().expect("monitor report");
    assert!(
        mon.long_tail.detected,
        "{id}: monitor did not single out the long task: {:?}",
        mon.long_tail
    );
    assert!(
        mon.long_tail.matches_hint,
        "{id}: the long task ran as {:?}, the case file says {:?}",
        mon.long_tail.tail_comms, r.long_task_comm
    );
}

macro_rules! tiny_case {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(&run_tiny(stringify!($name)));
            }
        )*

        #[test]
        fn every_case_file_has_a_test() {
            let paths = ProjectPaths::discover(Some(&PathBuf::from(env!("CARGO_MANIFEST_DIR")))).unwrap();
            let mut ids: Vec<String> = case::load_all(&paths.cases()).unwrap().into_iter().map(|c| c.id).collect();
            ids.sort();
            let mut tested = vec![$(stringify!($name).to_string()),*];
            tested.sort();
            assert_eq!(ids, tested);
        }
    };
}

tiny_case!(
    compression,
    ctest_suite,
    ddos_log_analysis,
    file_checksum,
    git_add_different,
    hotkey_aggregation,
    log_processing,
    video_transcode,
    viral_product_analytics,
);
