//! Process records from the classifier's tracer: every process a task started, however short.
//!
//! The tracer reports each fork with the process that forked it, so a process belongs to the
//! task whose root process it descends from, even when its parent has exited and it was adopted
//! elsewhere since.

use std::collections::HashMap;
use std::time::Instant;

use crate::classify::tracer::{monotonic_ns, root_above, Life};
use crate::workload::result::{Group, ProcessRecord};

/// The records of the processes in `lives` that descend from a task root (its pid → task index
/// and group), in order of birth; times are seconds since `origin`.
pub fn records(
    lives: &HashMap<i32, Life>,
    roots: &HashMap<i32, (usize, Group)>,
    origin: Instant,
) -> Vec<ProcessRecord> {
    let now_ns = monotonic_ns();
    let origin_ns = now_ns.saturating_sub(origin.elapsed().as_nanos() as u64);
    let since_origin = |ns: u64| (ns as f64 - origin_ns as f64) * 1e-9;
    let mut out: Vec<ProcessRecord> = lives
        .iter()
        .filter_map(|(&pid, life)| {
            // The task whose root forked it or one of its ancestors.
            let (task, group) = root_above(pid, roots, |p| lives.get(&p).map(|l| l.parent))?;
            let (voluntary, involuntary) = life.switches.unwrap_or((0, 0));
            Some(ProcessRecord {
                pid,
                ppid: life.parent,
                task,
                group,
                comm: life.view.comm.clone(),
                exe: life.view.exe.clone(),
                cmdline: life.view.argv.clone(),
                inputs: life.view.inputs.clone(),
                cgroup: life.view.cgroup.clone(),
                stdin: life.view.stdin,
                stdout: life.view.stdout,
                partial: life.partial,
                first_seen_s: since_origin(life.born_ns),
                last_seen_s: since_origin(life.ended_ns.unwrap_or(now_ns)),
                // Still running when the tracer stopped (a straggler the runner killed since):
                // what it has used so far.
                cpu_s: life.cpu_s.unwrap_or_else(|| cpu_so_far(pid)),
                voluntary_switches: voluntary,
                involuntary_switches: involuntary,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.first_seen_s
            .total_cmp(&b.first_seen_s)
            .then(a.pid.cmp(&b.pid))
    });
    out
}

/// CPU seconds a live process has used (`/proc/<pid>/schedstat`, nanoseconds); 0 if gone.
fn cpu_so_far(pid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::rules::ProcessView;

    fn life(parent: i32, comm: &str, cpu: Option<f64>) -> Life {
        Life {
            view: ProcessView {
                comm: comm.into(),
                exe: format!("/usr/bin/{comm}"),
                argv: vec![comm.into()],
                ..ProcessView::default()
            },
            parent,
            born_ns: monotonic_ns(),
            ended_ns: cpu.map(|_| monotonic_ns()),
            cpu_s: cpu,
            switches: Some((5, 2)),
            ..Life::default()
        }
    }

    #[test]
    fn a_process_belongs_to_the_task_it_descends_from_and_others_are_left_out() {
        let origin = Instant::now();
        // Task 0's root 100 runs a script (101) whose gzip (102) is orphaned when 101 exits:
        // it is still 100's, through the process that forked it. 200 is task 39's root, 300 is
        // somebody else's process, 400's ancestry is unknown.
        let lives: HashMap<i32, Life> = [
            (100, life(1, "sh", Some(0.01))),
            (101, life(100, "sh", Some(0.02))),
            (102, life(101, "gzip", Some(0.5))),
            (200, life(1, "sh", Some(0.01))),
            (201, life(200, "gzip", Some(9.0))),
            (300, life(1, "cron", Some(0.1))),
            (400, life(399, "gzip", Some(0.1))),
        ]
        .into_iter()
        .collect();
        let roots: HashMap<i32, (usize, Group)> =
            [(100, (0, Group::Short)), (200, (39, Group::Long))]
                .into_iter()
                .collect();
        let recs = records(&lives, &roots, origin);
        let of = |pid: i32| recs.iter().find(|r| r.pid == pid);
        assert_eq!(recs.len(), 5, "{recs:?}");
        assert_eq!(of(102).map(|r| (r.task, r.group)), Some((0, Group::Short)));
        assert_eq!(of(201).map(|r| (r.task, r.group)), Some((39, Group::Long)));
        assert!(of(300).is_none() && of(400).is_none());
        let gzip = of(201).unwrap();
        assert_eq!(
            (gzip.cpu_s, gzip.ppid, gzip.exe.as_str()),
            (9.0, 200, "/usr/bin/gzip")
        );
        assert_eq!((gzip.voluntary_switches, gzip.involuntary_switches), (5, 2));
        assert!(gzip.first_seen_s >= 0.0 && gzip.last_seen_s >= gzip.first_seen_s);
    }

    #[test]
    fn a_cycle_in_the_recorded_parents_ends_the_search() {
        let lives: HashMap<i32, Life> = [(10, life(11, "a", None)), (11, life(10, "b", None))]
            .into_iter()
            .collect();
        let roots = HashMap::from([(100, (0, Group::Short))]);
        assert!(records(&lives, &roots, Instant::now()).is_empty());
    }
}
