//! The host side of a VM job: boot the sched_ext kernel in QEMU with the host root shared
//! read-only and the job directory shared read-write (one virtiofsd each), stream the job's
//! output, enforce a hard timeout, and leave nothing behind.
//!
//! Every helper process is owned by a guard whose `Drop` kills it and removes its socket, so an
//! error, a timeout or Ctrl-C all end the same way; the children also get a parent-death signal
//! so even a killed schedgen takes them along. The job directory (with the console log) is
//! kept for inspection.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::guest::JOB_TAG;
use super::job::{self, Job, JobResult};
use crate::kernel::Kernel;
use crate::workload::prepare::cache_root;

/// Job directories kept after a run (older ones are removed).
const KEEP_JOB_DIRS: usize = 20;
const ROOT_TAG: &str = "rootfs";
/// Kernel parameters that shorten an emulated boot (together about 0.5 s under TCG): no timer
/// check, one serial port to probe, no speculation mitigations, crypto self-tests, keyboard
/// controller probing, audit or AER, and no lockup detector (an emulated CPU on a busy host
/// looks locked up; sched_ext's own watchdog is not affected). Not `tsc=reliable`: it makes the
/// kernel flip the sched_clock static key while booting, and under multi-threaded TCG on a busy
/// host that text patch was seen to crash the guest (`Oops: int3` in `sched_clock_cpu`).
const BOOT_SPEEDUPS: &str = "no_timer_check 8250.nr_uarts=1 mitigations=off cryptomgr.notests \
    i8042.noaux i8042.nokbd i8042.nopnp audit=0 pci=noaer nowatchdog";

/// Kernel parameters that keep emulation from inflating what real hardware does for free:
/// Debian's kernel zeroes every page it allocates (`CONFIG_INIT_ON_ALLOC_DEFAULT_ON`), page
/// cache too, where a read overwrites it at once. Under TCG that zeroing is emulated store by
/// store: profiled on git_add_different (a sampling profile in the guest), it was most of the
/// long task's kernel time in readahead, and a long-first scheduler's runs took 21.3-25.3 s
/// with it (up to 38.6 s in earlier sittings) and 17.1-17.5 s without. The guest is thrown
/// away after each job, so the hardening it gives is not needed there.
const EMULATION_FIDELITY: &str = "init_on_alloc=0";

/// How to size and bound the VM.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// vCPUs [default: min(host cores, 4)]; never more than the host's cores.
    pub cpus: Option<usize>,
    pub memory_mib: u64,
    /// Hard limit from QEMU's start to its exit, boot included, for each boot (a boot that
    /// crashes or hangs before the job starts is tried once more, with the whole limit again).
    pub timeout: Duration,
    /// The schedgen binary the guest runs as init [default: this executable].
    pub init_binary: Option<PathBuf>,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            cpus: None,
            memory_mib: 2048,
            timeout: Duration::from_secs(300),
            init_binary: None,
        }
    }
}

/// How a VM run ended.
#[derive(Debug)]
pub enum VmEnd {
    /// The guest ran the job and reported its result.
    Finished(JobResult),
    /// QEMU stopped without a result: the boot or the guest init failed.
    NoResult,
    TimedOut,
    /// The guest did not reach the job within [`boot_deadline`]; only a last boot reports it.
    BootHung,
    Interrupted,
}

/// What a VM run produced, besides the streamed output.
#[derive(Debug)]
pub struct VmReport {
    pub end: VmEnd,
    pub job_dir: PathBuf,
    /// From QEMU's start to the guest's marker just before the job's first instruction.
    pub start_to_job: Option<Duration>,
    pub wall: Duration,
    pub cpus: usize,
    pub accel: &'static str,
}

impl VmReport {
    pub fn console_log(&self) -> PathBuf {
        self.job_dir.join(job::CONSOLE_FILE)
    }

    /// The last `n` lines of the serial console.
    pub fn console_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.console_log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return "(the console is empty: the kernel printed no warning)".into();
        }
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Parse `512M`, `2G`, `2048` (MiB) into MiB.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'M' => 1,
                'G' => 1024,
                _ => return Err(format!("unknown unit in {s:?}: use M or G")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (e.g. 512M, 2G)"))?;
    let mib = n * mult;
    if mib < 256 {
        return Err(format!(
            "{s} is too little memory for the VM: give at least 256M"
        ));
    }
    Ok(mib)
}

/// Whether hardware virtualisation can boot a stock kernel here: only the real KVM modules
/// can (`kvm_pvm`, for one, cannot).
pub fn kvm_usable() -> bool {
    (Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists())
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

/// vCPUs for a request: default min(host, 4), never above the host's cores.
pub fn vcpus(requested: Option<usize>) -> usize {
    let host = crate::system::cpu_count();
    match requested {
        Some(n) if n > host => {
            eprintln!(
                "schedgen: warning: --cpus {n} is more than this machine's {host} cores; using {host} (more vCPUs than cores distorts every measurement)"
            );
            host
        }
        Some(n) => n.max(1),
        None => host.min(4),
    }
}

fn find_program(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain(extra.iter().cloned())
        .find(|p| p.is_file())
}

pub fn find_virtiofsd() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    let extra = [
        home.join(".cargo/bin/virtiofsd"),
        PathBuf::from("/usr/libexec/virtiofsd"),
        PathBuf::from("/usr/lib/qemu/virtiofsd"),
    ];
    find_program("virtiofsd", &extra).context(
        "virtiofsd is not installed (it shares the host's files with the VM): install it with \
         `apt-get install -y libcap-ng-dev libseccomp-dev && cargo install virtiofsd --locked`",
    )
}

pub fn find_qemu() -> Result<PathBuf> {
    find_program("qemu-system-x86_64", &[]).context(
        "qemu-system-x86_64 is not installed: install it with `apt-get install qemu-system-x86`",
    )
}

/// The binary the guest runs as init. It must stay visible in the guest, whose /tmp is a fresh
/// tmpfs, so a binary under /tmp is copied into the cache first.
fn guest_init_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    let exe = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().context("cannot find the schedgen executable")?,
    };
    let exe = exe
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", exe.display()))?;
    if !exe.starts_with("/tmp") && !exe.to_string_lossy().contains(char::is_whitespace) {
        return Ok(exe);
    }
    let dir = cache_root().join("vm/bin");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let copy = dir.join(format!("schedgen-{}", std::process::id()));
    std::fs::copy(&exe, &copy)
        .with_context(|| format!("cannot copy {} to {}", exe.display(), copy.display()))?;
    Ok(copy)
}

fn new_job_dir() -> Result<PathBuf> {
    let jobs = cache_root().join("vm/jobs");
    std::fs::create_dir_all(&jobs).with_context(|| format!("cannot create {}", jobs.display()))?;
    let mut old: Vec<PathBuf> = std::fs::read_dir(&jobs)?
        .flatten()
        .map(|e| e.path())
        .collect();
    old.sort();
    for p in old.iter().rev().skip(KEEP_JOB_DIRS - 1) {
        let _ = std::fs::remove_dir_all(p);
    }
    let name = format!(
        "{}-{}",
        chrono::Local::now().format("%Y%m%d-%H%M%S%.3f"),
        std::process::id()
    );
    let dir = jobs.join(name);
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Helper processes and sockets that must not outlive the run.
#[derive(Default)]
struct Cleanup {
    children: Vec<Child>,
    sockets: Vec<PathBuf>,
}

impl Cleanup {
    /// Ask the children to stop (they were started in their own process groups) and reap them.
    fn finish(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for c in &mut self.children {
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !matches!(c.try_wait(), Ok(Some(_))) {
                // SAFETY: kill(2) on the process group of a child we started.
                unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.children.clear();
        for s in self.sockets.drain(..) {
            // virtiofsd writes `<socket>.pid` beside its socket.
            let mut pid = s.clone().into_os_string();
            pid.push(".pid");
            let _ = std::fs::remove_file(pid);
            let _ = std::fs::remove_file(s);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.finish(Duration::ZERO);
    }
}

/// Remove sockets left by a schedgen that was killed outright (its helpers died with it, by
/// their parent-death signal, but files cannot). Sockets are named `<pid>-<tag>.sock*`.
fn remove_stale_sockets(run_dir: &Path) {
    for e in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Start `cmd` as a helper: own process group, killed if schedgen dies, output to `log`.
fn spawn_helper(mut cmd: Command, log: &Path, what: &str) -> Result<Child> {
    let out =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("cannot start {what}"))
}

fn wait_for_socket(sock: &Path, child: &mut Child, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "virtiofsd exited ({status}) before it was ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default().trim()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "virtiofsd did not create {} within 10 s (log: {})",
                sock.display(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Copies what the guest appends to a file in the job directory to one of our streams.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    pos: u64,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            file: None,
            pos: 0,
        }
    }

    fn pump(&mut self, out: &mut dyn Write) {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else { return };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.pos)).is_ok()
            && f.read_to_end(&mut buf).is_ok()
            && !buf.is_empty()
        {
            self.pos += buf.len() as u64;
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
    }
}

fn chardev_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// The image QEMU loads. Under TCG, decompressing a bzImage costs seconds of emulated CPU, so
/// the uncompressed vmlinux (fetched kernels have it) is booted through its PVH entry point.
/// Under KVM the bzImage is used: the PVH path was seen to hang there.
fn boot_image(kernel: &Kernel, accel: &str) -> PathBuf {
    match &kernel.vmlinux {
        Some(v) if accel == "tcg" && std::env::var_os("SCHEDGEN_VM_BZIMAGE").is_none() => v.clone(),
        _ => kernel.vmlinuz.clone(),
    }
}

/// Boot `kernel`, run `job` in it, stream its stdout and stderr to ours, and return how it
/// ended. Blocks until the guest powers off, the timeout passes, or Ctrl-C.
pub fn run(kernel: &Kernel, job: &Job, opts: &VmOptions) -> Result<VmReport> {
    kernel.ensure_bootable()?;
    let setup = Setup {
        virtiofsd: find_virtiofsd()?,
        qemu: find_qemu()?,
        init: guest_init_binary(opts.init_binary.as_deref())?,
        cpus: vcpus(opts.cpus),
        job_dir: new_job_dir()?,
    };
    job::write_json(&setup.job_dir.join(job::JOB_FILE), job)?;
    // libbpf resolves a program's `CONFIG_*` externs from /boot/config-<release>; the guest
    // init puts this copy there, since the host's /boot belongs to another kernel.
    std::fs::copy(&kernel.config, setup.job_dir.join(job::KERNEL_CONFIG_FILE))
        .with_context(|| format!("cannot copy the kernel config {}", kernel.config.display()))?;
    let start = Instant::now();
    let mut attempt = 1;
    loop {
        let (end, start_to_job, accel) = boot(kernel, &setup, opts)?;
        let console = setup.job_dir.join(job::CONSOLE_FILE);
        let failed_boot = if matches!(end, VmEnd::BootHung) {
            Some(format!(
                "the guest did not reach the job within {} s (boots here take 2-6 s)",
                boot_deadline().as_secs_f64()
            ))
        } else if crashed_while_booting(&end, &setup.job_dir) {
            Some("the guest kernel crashed before the job started".to_string())
        } else {
            None
        };
        if let (Some(what), true) = (&failed_boot, attempt < BOOT_ATTEMPTS) {
            let kept = setup.job_dir.join(format!("console-boot{attempt}.log"));
            let _ = std::fs::rename(&console, &kept);
            eprintln!(
                "schedgen: {what} (emulated CPUs make this happen now and then; log kept in {}); \
                 booting again",
                kept.display()
            );
            attempt += 1;
            continue;
        }
        return Ok(VmReport {
            end,
            job_dir: setup.job_dir,
            start_to_job,
            wall: start.elapsed(),
            cpus: setup.cpus,
            accel,
        });
    }
}

impl VmReport {
    /// Whether the guest kernel died (a panic on the console) instead of finishing the job.
    /// Multi-threaded TCG occasionally runs stale code across a kernel text patch (a static key
    /// flips when a sched_ext scheduler is enabled or disabled), which kills the guest with an
    /// `Oops: int3`: the job itself is not at fault and can be run again.
    pub fn guest_crashed(&self) -> bool {
        self.crash_line().is_some()
    }

    /// The console line that names the guest kernel's crash (`Oops: …`, else `Kernel panic …`),
    /// when the guest died instead of finishing.
    pub fn crash_line(&self) -> Option<String> {
        if !matches!(self.end, VmEnd::NoResult) {
            return None;
        }
        let console = std::fs::read_to_string(self.console_log()).unwrap_or_default();
        if !console.contains("Kernel panic") {
            return None;
        }
        let find = |needle: &str| {
            console
                .lines()
                .find(|l| l.contains(needle))
                .map(|l| l.trim().to_string())
        };
        find("Oops:").or_else(|| find("Kernel panic"))
    }
}

/// Boots tried before a crash or hang during boot is reported.
const BOOT_ATTEMPTS: u32 = 2;

/// A boot that has not reached the job by then has hung [default: 60 s;
/// `SCHEDGEN_VM_BOOT_DEADLINE=SECONDS` for a slower host]. Boots to the job take 2-6 s here,
/// also on a busy host; one seen in CI printed nothing and never got there (its verify timed
/// out after 124 s), so waiting longer only delays the second boot.
fn boot_deadline() -> Duration {
    std::env::var("SCHEDGEN_VM_BOOT_DEADLINE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(60))
}

/// Whether the kernel died before the job's first instruction: nothing of the job ran, so a
/// second boot is safe. Seen under multi-threaded TCG: an `Oops: int3` in freshly patched
/// kernel text (a static key flipped while another vCPU ran it).
fn crashed_while_booting(end: &VmEnd, job_dir: &Path) -> bool {
    if !matches!(end, VmEnd::NoResult) || job_dir.join(job::STARTED_FILE).exists() {
        return false;
    }
    let console = std::fs::read_to_string(job_dir.join(job::CONSOLE_FILE)).unwrap_or_default();
    console.contains("Kernel panic") && !console.contains("Requested init")
}

/// What every boot attempt of one run shares.
struct Setup {
    virtiofsd: PathBuf,
    qemu: PathBuf,
    init: PathBuf,
    cpus: usize,
    job_dir: PathBuf,
}

/// One boot: start the helpers and QEMU, stream output until the guest powers off, the
/// timeout or the boot deadline passes or Ctrl-C, and clean up.
fn boot(
    kernel: &Kernel,
    setup: &Setup,
    opts: &VmOptions,
) -> Result<(VmEnd, Option<Duration>, &'static str)> {
    let Setup {
        virtiofsd,
        qemu,
        init,
        cpus,
        job_dir,
    } = setup;
    let cpus = *cpus;

    let run_dir = cache_root().join("vm/run");
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    remove_stale_sockets(&run_dir);
    let mut cleanup = Cleanup::default();
    // Unique per run, also for several VMs started by one process.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("{}-{n}", std::process::id());
    let mut shares = Vec::new();
    for (tag, dir, readonly) in [
        (ROOT_TAG, Path::new("/"), true),
        (JOB_TAG, job_dir.as_path(), false),
    ] {
        let sock = run_dir.join(format!("{id}-{tag}.sock"));
        if sock.as_os_str().len() > 100 {
            bail!("socket path {} is too long for a Unix socket; set SCHEDGEN_CACHE to a shorter directory", sock.display());
        }
        let _ = std::fs::remove_file(&sock);
        let log = job_dir.join(format!("virtiofsd-{tag}.log"));
        let mut cmd = Command::new(virtiofsd);
        cmd.arg(format!("--socket-path={}", sock.display()))
            .arg(format!("--shared-dir={}", dir.display()))
            .arg("--sandbox=none");
        if readonly {
            cmd.args(["--cache=always", "--readonly"]);
        } else {
            cmd.arg("--cache=never");
        }
        cleanup.sockets.push(sock.clone());
        cleanup.children.push(spawn_helper(cmd, &log, "virtiofsd")?);
        let child = cleanup.children.last_mut().expect("just pushed");
        wait_for_socket(&sock, child, &log)?;
        shares.push((tag, sock));
    }

    let accel = if kvm_usable() { "kvm" } else { "tcg" };
    let mem = format!("{}M", opts.memory_mib);
    // Extra kernel parameters for debugging a boot, e.g. SCHEDGEN_VM_APPEND=loglevel=7.
    let extra = std::env::var("SCHEDGEN_VM_APPEND").unwrap_or_default();
    let append = format!(
        "console=ttyS0 rootfstype=virtiofs root={ROOT_TAG} ro init={} panic=-1 quiet {BOOT_SPEEDUPS} {EMULATION_FIDELITY} {extra} -- guest-init",
        init.display()
    );
    let mut cmd = Command::new(qemu);
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]);
    // For measuring QEMU's instruction-counting clock (README: the sandbox's noise notes), e.g.
    // SCHEDGEN_VM_ICOUNT=shift=auto,sleep=off; it needs single-threaded TCG.
    let icount = std::env::var("SCHEDGEN_VM_ICOUNT").unwrap_or_default();
    match accel {
        "kvm" => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        _ if !icount.is_empty() => cmd.args([
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-icount",
            &icount,
        ]),
        _ => cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
    };
    cmd.args(["-smp", &cpus.to_string(), "-m", &mem])
        .args([
            "-object",
            &format!("memory-backend-memfd,id=mem,size={mem},share=on"),
        ])
        .args(["-numa", "node,memdev=mem"]);
    for (tag, sock) in &shares {
        cmd.args([
            "-chardev",
            &format!("socket,id={tag},path={}", chardev_path(sock)),
        ])
        .args([
            "-device",
            &format!("vhost-user-fs-pci,chardev={tag},tag={tag}"),
        ]);
    }
    cmd.args([
        "-chardev",
        &format!(
            "file,id=console,path={}",
            chardev_path(&job_dir.join(job::CONSOLE_FILE))
        ),
    ])
    .args(["-serial", "chardev:console"])
    .arg("-kernel")
    .arg(boot_image(kernel, accel))
    .args(["-append", &append]);

    let start = Instant::now();
    cleanup.children.insert(
        0,
        spawn_helper(cmd, &job_dir.join("qemu.log"), "qemu-system-x86_64")?,
    );
    let mut stdout = Tail::new(job_dir.join(job::STDOUT_FILE));
    let mut stderr = Tail::new(job_dir.join(job::STDERR_FILE));
    let started = job_dir.join(job::STARTED_FILE);
    let deadline = boot_deadline();
    let mut start_to_job = None;
    let end = loop {
        stdout.pump(&mut std::io::stdout());
        stderr.pump(&mut std::io::stderr());
        if start_to_job.is_none() && started.exists() {
            start_to_job = Some(start.elapsed());
        }
        let qemu_child = &mut cleanup.children[0];
        if let Some(status) = qemu_child.try_wait().context("lost track of QEMU")? {
            stdout.pump(&mut std::io::stdout());
            stderr.pump(&mut std::io::stderr());
            let result = job_dir.join(job::RESULT_FILE);
            if result.exists() {
                break VmEnd::Finished(job::read_json(&result)?);
            }
            if !status.success() {
                let log = std::fs::read_to_string(job_dir.join("qemu.log")).unwrap_or_default();
                eprintln!("schedgen: QEMU exited with {status}: {}", log.trim());
            }
            break VmEnd::NoResult;
        }
        if start.elapsed() > opts.timeout {
            break VmEnd::TimedOut;
        }
        if start_to_job.is_none() && start.elapsed() > deadline {
            break VmEnd::BootHung;
        }
        if crate::interrupt::requested() {
            break VmEnd::Interrupted;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // QEMU has exited or must be killed now; the virtiofsds exit when QEMU lets go of them.
    if !matches!(end, VmEnd::Finished(_) | VmEnd::NoResult) {
        cleanup.finish(Duration::ZERO);
    } else {
        cleanup.finish(Duration::from_secs(2));
    }
    Ok((end, start_to_job, accel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("2G").unwrap(), 2048);
        assert_eq!(parse_memory("512m").unwrap(), 512);
        assert_eq!(parse_memory("1024").unwrap(), 1024);
        assert!(parse_memory("12").is_err());
        assert!(parse_memory("2T").is_err());
    }

    #[test]
    fn never_more_vcpus_than_cores() {
        let host = crate::system::cpu_count();
        assert_eq!(vcpus(Some(host + 8)), host);
        assert_eq!(vcpus(None), host.min(4));
    }
}
