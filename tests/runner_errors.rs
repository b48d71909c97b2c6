//! The runner's failure paths, driven through the real binary: bad input gives a clear error and
//! a non-zero exit, cleanup always runs, and nothing is left running or lying around.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A throw-away schedgen root with its own cases, cache and temp directory.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cases", "assets", "cache", "tmp", "out"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Root { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn case(&self, id: &str, body: &str) {
        let text = format!(
            "id = \"{id}\"\nname = \"{id} test\"\ncategory = \"software_testing\"\n\
             description = \"fixture\"\nexpected_improvement = 0.3\n{body}"
        );
        std::fs::write(self.path(&format!("cases/{id}.toml")), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_schedgen"));
        c.arg("--root")
            .arg(self.dir.path())
            .arg("--quiet")
            .args(args)
            .env("SCHEDGEN_CACHE", self.path("cache"))
            .env("TMPDIR", self.path("tmp"))
            .env("MARK", self.path("out"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn json(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.path(&format!("out/{name}"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The per-run work directories must all be gone.
    fn assert_no_work_dirs(&self) {
        let left: Vec<_> = std::fs::read_dir(self.path("tmp"))
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "work directories left behind: {left:?}");
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn processes_matching(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok())
        {
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(marker) {
                    found.push(cmd);
                }
            }
        }
    }
    found
}

const HINT: &str = "[long_task]\ncomm = [\"sleep\"]\n";

fn simple(short: &str, long: &str) -> String {
    format!(
        "{HINT}[commands]\nshort = '{short}'\nlong = '{long}'\ncleanup = 'touch \"$MARK/cleanup-ran\"'\n"
    )
}

#[test]
fn unknown_case_is_a_usage_error_naming_known_ids() {
    let r = Root::new();
    r.case("good", &simple("true", "true"));
    let o = r.run(&["run", "--test", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown test case `nope`") && err.contains("good"),
        "{err}"
    );
}

#[test]
fn malformed_case_file_names_the_file_and_field() {
    let r = Root::new();
    r.case(
        "bad",
        "[long_task]\ncomm = [\"a_name_longer_than_15_bytes\"]\n[commands]\nshort = 'true'\nlong = 'true'\n",
    );
    let o = r.run(&["run", "--test", "bad"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("15 bytes"),
        "{err}"
    );
    let o = r.run(&["list"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "list must not hide a broken case: {}",
        text(&o)
    );
}

#[test]
fn missing_dependency_names_the_debian_package() {
    let r = Root::new();
    r.case(
        "needy",
        &format!(
            "[[dependencies]]\ncommand = \"schedgen-no-such-tool\"\npackage = \"no-such-pkg\"\n{}",
            simple("true", "true")
        ),
    );
    let o = r.run(&[
        "run",
        "--test",
        "needy",
        "--save",
        &r.path("out/n.json").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("[skipped]") && out.contains("no-such-pkg"),
        "{out}"
    );
    assert_eq!(r.json("n.json")["status"], "skipped");
    let o = r.run(&["deps", "--test", "needy"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("apt-get install no-such-pkg"));
}

#[test]
fn failing_task_is_reported_and_cleanup_still_runs() {
    let r = Root::new();
    r.case(
        "fails",
        &simple(
            "if [ \"$TASK_INDEX\" = 7 ]; then echo boom-from-seven >&2; exit 3; fi",
            "sleep 0.2",
        ),
    );
    let o = r.run(&[
        "run",
        "--test",
        "fails",
        "--save",
        &r.path("out/f.json").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("task 7 (short) ended with exit status 3"),
        "{out}"
    );
    assert!(
        out.contains("boom-from-seven"),
        "stderr of the failed task is shown: {out}"
    );
    let j = r.json("f.json");
    assert_eq!(j["status"], "failed");
    assert_eq!(j["tasks"].as_array().unwrap().len(), 40);
    assert_eq!(j["tasks"][7]["exit_code"], 3);
    assert!(r.path("out/cleanup-ran").exists());
    r.assert_no_work_dirs();
}

#[test]
fn timeout_kills_every_task_process_and_cleans_up() {
    let r = Root::new();
    let marker = format!("schedgen-timeout-{}", std::process::id());
    // Background jobs too: the whole process group must die.
    let long = format!("sleep 300 & sh -c \"sleep 301; : {marker}\" & exec sleep 302 # {marker}");
    r.case("slow", &simple("true", &long));
    let start = Instant::now();
    let o = r.run(&[
        "run",
        "--test",
        "slow",
        "--timeout",
        "1.5",
        "--save",
        &r.path("out/t.json").display().to_string(),
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "timeout not enforced"
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(r.json("t.json")["status"], "timeout");
    assert!(String::from_utf8_lossy(&o.stdout).contains("timeout"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        processes_matching(&marker).is_empty(),
        "left running: {:?}",
        processes_matching(&marker)
    );
    assert!(r.path("out/cleanup-ran").exists());
    r.assert_no_work_dirs();
}

#[test]
fn ctrl_c_stops_the_run_kills_tasks_and_cleans_up() {
    let r = Root::new();
    let marker = format!("schedgen-sigint-{}", std::process::id());
    let long = format!("touch \"$MARK/started\"; sh -c \"sleep 303; : {marker}\"");
    r.case("held", &simple("sleep 0.1", &long));
    let child = r
        .command(&[
            "run",
            "--test",
            "held",
            "--save",
            &r.path("out/i.json").display().to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !r.path("out/started").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the long task never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sending SIGINT to our own child, as a terminal's Ctrl-C would.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert_eq!(r.json("i.json")["status"], "interrupted");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        processes_matching(&marker).is_empty(),
        "left running: {:?}",
        processes_matching(&marker)
    );
    assert!(
        r.path("out/cleanup-ran").exists(),
        "cleanup must run after Ctrl-C"
    );
    r.assert_no_work_dirs();
}

#[test]
fn setup_runs_once_per_case_and_is_cached() {
    let r = Root::new();
    let body = format!(
        "[sizes]\nshort_n = 10\n{HINT}[commands]\n\
         setup = 'echo x >> \"$MARK/setup-count\"; seq $SHORT_N > \"$DATA/input\"'\n\
         short = 'wc -l < \"$DATA/input\" > out'\nlong = 'sort -r \"$DATA/input\" > out'\n"
    );
    r.case("cached", &body);
    let save = r.path("out/c.json").display().to_string();
    let o = r.run(&["run", "--test", "cached", "--save", &save]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r.json("c.json")["setup"]["cached"], false);
    let o = r.run(&["run", "--test", "cached", "--save", &save]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r.json("c.json")["setup"]["cached"], true);
    let count = std::fs::read_to_string(r.path("out/setup-count")).unwrap();
    assert_eq!(
        count.lines().count(),
        1,
        "setup must run once, not per task or per run"
    );
    // Another scale is another data set.
    let o = r.run(&["run", "--test", "cached", "--scale", "2", "--save", &save]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r.json("c.json")["sizes"]["short_n"], "20");
    assert_eq!(
        std::fs::read_to_string(r.path("out/setup-count"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn failed_setup_shows_its_output_and_leaves_no_partial_data() {
    let r = Root::new();
    let body = format!(
        "{HINT}[commands]\nsetup = 'echo partial > \"$DATA/half\"; echo setup-broke-here >&2; false'\n\
         short = 'true'\nlong = 'true'\n"
    );
    r.case("brokensetup", &body);
    let o = r.run(&[
        "run",
        "--test",
        "brokensetup",
        "--save",
        &r.path("out/s.json").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("setup") && out.contains("setup-broke-here"),
        "{out}"
    );
    let data = r.path("cache/data/brokensetup");
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != ".lock")
        .collect();
    assert!(leftovers.is_empty(), "partial data kept: {leftovers:?}");
}

#[test]
fn all_reports_skipped_and_failed_cases_and_goes_on() {
    let r = Root::new();
    r.case("a_ok", &simple("true", "sleep 0.1"));
    r.case("b_fail", &simple("exit 1", "true"));
    r.case(
        "c_skip",
        &format!(
            "[[dependencies]]\ncommand = \"schedgen-no-such-tool\"\npackage = \"no-such-pkg\"\n{}",
            simple("true", "true")
        ),
    );
    r.case("d_ok", &simple("true", "true"));
    let o = r.run(&[
        "run",
        "--all",
        "--save",
        &r.path("out/all.json").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = r.json("all.json");
    let statuses: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["success", "failed", "skipped", "success"]);
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("2 succeeded, 1 failed, 0 timed out, 1 skipped"));
}

#[test]
fn measurements_are_consistent() {
    let r = Root::new();
    // A CPU-bound long task and short tasks: timings must add up.
    r.case(
        "spin",
        "[long_task]\ncomm = [\"sh\"]\n[commands]\n\
         short = 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done'\n\
         long = 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done'\n",
    );
    let o = r.run(&[
        "run",
        "--test",
        "spin",
        "--monitor-interval",
        "20",
        "--save",
        &r.path("out/m.json").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    check_consistency(&r.json("m.json"));
}

/// Invariants every successful run must satisfy; shared with the per-case tests in spirit.
fn check_consistency(j: &Value) {
    let tasks = j["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 40);
    assert_eq!(j["short"]["count"], 39);
    assert_eq!(j["long"]["count"], 1);
    assert_eq!(tasks[39]["group"], "long");
    let f = |v: &Value| v.as_f64().unwrap();
    let makespan = f(&j["makespan_s"]);
    let cpus = f(&j["system"]["cpus"]);
    let mut cpu_total = 0.0;
    for t in tasks {
        assert_eq!(t["exit_code"], 0);
        assert!(
            f(&t["wall_s"]) <= makespan + 1e-6,
            "a task outlasted the makespan"
        );
        assert!(
            f(&t["cpu_s"]) <= f(&t["wall_s"]) * cpus + 0.05,
            "cpu beyond wall × cpus: {t}"
        );
        cpu_total += f(&t["cpu_s"]);
    }
    // The CPUs cannot have done more work than makespan × CPUs.
    assert!(
        cpu_total <= makespan * cpus * 1.02 + 0.05,
        "cpu {cpu_total} vs capacity {}",
        makespan * cpus
    );
    let model = &j["model"];
    assert!(f(&model["optimal_makespan_s"]) <= f(&model["fair_share_makespan_s"]) + 1e-9);
    assert!(f(&j["long"]["cpu_s"]["max"]) > f(&j["short"]["cpu_s"]["max"]));
    let lt = &j["monitor"]["long_tail"];
    assert_eq!(lt["detected"], true, "monitor long tail: {lt}");
    assert_eq!(lt["tail_task"], 39);
}

#[test]
fn a_case_file_outside_the_checkout_runs_with_the_scripts_beside_it() {
    let r = Root::new();
    let mine = r.path("mine");
    std::fs::create_dir_all(mine.join("own_job")).unwrap();
    std::fs::write(
        mine.join("own_job/gen.sh"),
        "seq \"$1\" > \"$DATA/input\"\necho x >> \"$MARK/setup-count\"\n",
    )
    .unwrap();
    std::fs::write(
        mine.join("own_job.toml"),
        format!(
            "id = \"own_job\"\nname = \"mine\"\ncategory = \"data_processing\"\n\
             description = \"fixture\"\nexpected_improvement = 0.3\n[sizes]\nshort_rows = 50\n{HINT}\
             [commands]\nsetup = 'sh \"$CASE_ASSETS/gen.sh\" \"$SHORT_ROWS\"'\n\
             short = 'wc -l < \"$DATA/input\" > out'\nlong = 'sort -r \"$DATA/input\" > out'\n"
        ),
    )
    .unwrap();
    let file = mine.join("own_job.toml").display().to_string();
    let save = r.path("out/own.json").display().to_string();
    let o = r.run(&["run", "--test", &file, "--save", &save]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r.json("own.json")["test_id"], "own_job");
    assert_eq!(
        std::fs::read_to_string(r.path("out/setup-count"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    // Its scripts are part of what setup's cache is keyed on.
    std::fs::write(
        mine.join("own_job/gen.sh"),
        "seq \"$1\" > \"$DATA/input\"; echo y >> \"$MARK/setup-count\"\n",
    )
    .unwrap();
    let o = r.run(&["run", "--test", &file, "--save", &save]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r.json("own.json")["setup"]["cached"], false);

    // A file that takes a checkout case's id is refused before anything runs.
    r.case("own_job", &simple("true", "true"));
    let o = r.run(&["run", "--test", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("another id"), "{}", text(&o));
}

#[test]
fn generate_says_why_a_case_ended_in_error() {
    // This root has cases/ and assets/ but none of a checkout's prompts: whichever step stops
    // the case (no sched_ext here for --backend host, or the missing prompts), the case's own
    // line says so; the summary table is only printed for several cases.
    let r = Root::new();
    r.case("good", &simple("true", "true"));
    let o = r.run(&[
        "generate",
        "--test",
        "good",
        "--backend",
        "host",
        "--scale",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("good: ERROR: "))
        .unwrap_or_else(|| panic!("no ERROR line for the case: {}", text(&o)));
    assert!(line.len() > "good: ERROR: ".len() + 10, "{line}");
}
