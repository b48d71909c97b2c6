//! Runner overhead: schedgen's runner against the same 40 commands started from a plain shell.
//!
//! `cargo bench --bench runner_overhead` (environment: `BENCH_CASE`, default `ctest_suite`;
//! `BENCH_SCALE`, default `small`; `BENCH_ROUNDS`, default 5). Rounds alternate the three arms
//! (shell, runner without monitor, runner with monitor) so drift hits all equally, and only
//! ratios within this one run are reported: absolute seconds on a shared 2-core machine mean
//! little across runs.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use schedgen::case::{self, SHORT_TASKS};
use schedgen::paths::ProjectPaths;
use schedgen::workload::{self, prepare, RunRequest};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A plain `sh` script that starts the 40 tasks in the background and waits for all of them.
fn shell_script(req: &RunRequest, data_dir: &std::path::Path, work: &std::path::Path) -> String {
    let mut s = String::new();
    let base = prepare::base_env(req, data_dir);
    for (k, v) in &base {
        let _ = writeln!(s, "export {k}={}", quote(v));
    }
    let _ = writeln!(s, "export WORK={}", quote(&work.display().to_string()));
    for i in 0..=SHORT_TASKS {
        let (group, cmd) = if i < SHORT_TASKS {
            ("short", &req.case.commands.short)
        } else {
            ("long", &req.case.commands.long)
        };
        let dir = work.join(format!("task-{i:02}"));
        let dir = quote(&dir.display().to_string());
        let _ = writeln!(
            s,
            "mkdir -p {dir}; (cd {dir} && TASK_DIR={dir} TASK_INDEX={i} TASK_GROUP={group} sh -c {} >/dev/null 2>&1) &",
            quote(cmd)
        );
    }
    s.push_str("wait\n");
    s
}

fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn main() -> anyhow::Result<()> {
    let case_id = env_or("BENCH_CASE", "ctest_suite");
    let scale = case::parse_scale(&env_or("BENCH_SCALE", "small")).map_err(anyhow::Error::msg)?;
    let rounds: usize = env_or("BENCH_ROUNDS", "5").parse()?;
    let paths = ProjectPaths::discover(None)?;
    let mut req = RunRequest::new(case::find(&paths.cases(), &case_id)?, paths.assets());
    req.scale = scale;
    let setup = prepare::prepare(&req)?;
    let data_dir = std::path::PathBuf::from(&setup.data_dir);
    println!("runner overhead: case {case_id}, scale {scale}, {rounds} rounds per arm (setup cached: {})", setup.cached);

    let (mut sh_wall, mut bare_wall, mut bare_span, mut mon_wall, mut mon_span, mut mon_cpu) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // Plain shell.
        let work = tempfile::tempdir()?;
        let script = shell_script(&req, &data_dir, work.path());
        let t = Instant::now();
        let st = Command::new("/bin/sh").arg("-c").arg(&script).status()?;
        sh_wall.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(st.success(), "plain shell run failed");
        // Runner without and with the monitor.
        for monitor in [false, true] {
            req.monitor_interval_ms = monitor.then_some(100);
            let t = Instant::now();
            let r = workload::run_case(&req, &|_| {});
            let wall = t.elapsed().as_secs_f64();
            anyhow::ensure!(r.error.is_none(), "runner failed: {:?}", r.error);
            if monitor {
                mon_wall.push(wall);
                mon_span.push(r.makespan_s);
                mon_cpu.push(r.monitor.map(|m| m.self_cpu_share).unwrap_or(0.0));
            } else {
                bare_wall.push(wall);
                bare_span.push(r.makespan_s);
            }
        }
        println!(
            "  round {}: shell {:.3} s · runner {:.3} s (makespan {:.3}) · runner+monitor {:.3} s (makespan {:.3}, monitor {:.2}% of a core)",
            round + 1,
            sh_wall[round],
            bare_wall[round],
            bare_span[round],
            mon_wall[round],
            mon_span[round],
            mon_cpu[round] * 100.0
        );
    }
    let base = mean(&sh_wall);
    let rel = |x: f64| (x / base - 1.0) * 100.0;
    println!("mean plain shell wall        {:.3} s", base);
    println!(
        "runner makespan              {:.3} s  ({:+.2}% vs shell)",
        mean(&bare_span),
        rel(mean(&bare_span))
    );
    println!(
        "runner whole command         {:.3} s  ({:+.2}% vs shell)",
        mean(&bare_wall),
        rel(mean(&bare_wall))
    );
    println!(
        "runner+monitor makespan      {:.3} s  ({:+.2}% vs shell)",
        mean(&mon_span),
        rel(mean(&mon_span))
    );
    println!(
        "runner+monitor whole command {:.3} s  ({:+.2}% vs shell)",
        mean(&mon_wall),
        rel(mean(&mon_wall))
    );
    println!(
        "monitor CPU                  {:.2}% of one core (mean)",
        mean(&mon_cpu) * 100.0
    );
    Ok(())
}
