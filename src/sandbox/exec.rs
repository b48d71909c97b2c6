//! Execute a job. The same function runs on a sched_ext host and as the guest's PID 1, so the
//! VM adds nothing but a kernel: whatever works in one place works in the other.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::job::{Job, JobResult, Work};

/// Where the job's output goes, and the file to create just before it starts.
pub struct ExecIo {
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub started_marker: Option<PathBuf>,
}

impl ExecIo {
    /// Output to this process's own stdout and stderr.
    pub fn inherit() -> ExecIo {
        ExecIo {
            stdout: Stdio::inherit(),
            stderr: Stdio::inherit(),
            started_marker: None,
        }
    }
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Run the job to completion (or until Ctrl-C, which kills it). Never panics: every failure is
/// reported in the result.
pub fn execute(job: &Job, io: ExecIo) -> JobResult {
    match &job.work {
        Work::RunCommand { argv, cwd, env } => run_command(argv, cwd.as_ref(), env, io),
    }
}

fn run_command(
    argv: &[String],
    cwd: Option<&PathBuf>,
    env: &[(String, String)],
    io: ExecIo,
) -> JobResult {
    let fail = |error: String| JobResult {
        error: Some(error),
        ..Default::default()
    };
    let Some((program, args)) = argv.split_first() else {
        return fail("the job has an empty command".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(io.stdout)
        .stderr(io.stderr);
    cmd.process_group(0);
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", DEFAULT_PATH);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(marker) = &io.started_marker {
        let _ = std::fs::write(marker, b"");
    }
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run {program}: {e}")),
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        if crate::interrupt::requested() {
            // SAFETY: kill(2) on the child's own process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let duration_secs = start.elapsed().as_secs_f64();
    match status {
        Ok(s) => JobResult {
            exit_code: s.code(),
            signal: s.signal(),
            duration_secs,
            ..Default::default()
        },
        Err(e) => fail(format!("lost track of {program}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(argv: &[&str]) -> Job {
        Job {
            work: Work::RunCommand {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                cwd: None,
                env: vec![("SCHEDGEN_TEST".into(), "7".into())],
            },
        }
    }

    #[test]
    fn runs_a_command_on_the_host() {
        let r = execute(
            &job(&["sh", "-c", "exit $SCHEDGEN_TEST"]),
            ExecIo::inherit(),
        );
        assert_eq!(r.exit_code, Some(7));
        assert_eq!(r.status_code(), 7);
    }

    #[test]
    fn reports_a_missing_program_and_a_signal() {
        let r = execute(&job(&["/nonexistent/program"]), ExecIo::inherit());
        assert!(r.error.unwrap().contains("cannot run /nonexistent/program"));
        let r = execute(&job(&["sh", "-c", "kill -TERM $$"]), ExecIo::inherit());
        assert_eq!(r.status_code(), 128 + libc::SIGTERM);
    }
}
