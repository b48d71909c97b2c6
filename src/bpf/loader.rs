//! Load a compiled scheduler with libbpf, attach it, and read why it stopped.
//!
//! Only meaningful on a kernel with sched_ext, as root: in schedgen that is inside the sandbox
//! VM (or on a sched_ext host when the user asks for it). libbpf's own messages, including the
//! kernel verifier's log when a program is rejected, are captured so that a rejection can be
//! reported (and fed back to a model) in full.

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use libbpf_rs::{Link, MapCore, MapFlags, MapType, Object, ObjectBuilder, PrintLevel};

use super::exit::SchedExit;

/// Name of the exit-info map defined by `SCHEDGEN_EXIT_INFO` in `schedgen.bpf.h`.
const EXIT_MAP: &str = "schedgen_exit";
/// Name of the long-task `comm` map defined by `SCHEDGEN_LONG_COMMS`.
const LONG_COMMS_MAP: &str = "long_comms";
const COMM_LEN: usize = 16;

static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn capture(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        // Verifier logs can be megabytes; the end is what explains a rejection.
        if log.len() > 4 << 20 {
            let cut = log.len() - (2 << 20);
            let cut = (cut..log.len())
                .find(|i| log.is_char_boundary(*i))
                .unwrap_or(cut);
            log.drain(..cut);
        }
        log.push_str(&msg);
    }
}

fn take_log() -> String {
    LIBBPF_LOG
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// Why loading failed, with everything libbpf said (the verifier's log among it).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    pub message: String,
    pub libbpf_log: String,
}

impl LoadError {
    /// The kernel verifier's own log, if libbpf printed one.
    pub fn verifier_log(&self) -> Option<String> {
        extract_verifier_log(&self.libbpf_log)
    }
}

/// The part of libbpf's output between its prog-load-log markers.
pub fn extract_verifier_log(libbpf_log: &str) -> Option<String> {
    let start = libbpf_log.find("-- BEGIN PROG LOAD LOG --")?;
    let rest = &libbpf_log[start..];
    let body_start = rest.find('\n').map(|i| i + 1).unwrap_or(rest.len());
    let end = rest.find("-- END PROG LOAD LOG --").unwrap_or(rest.len());
    Some(rest[body_start..end.max(body_start)].trim_end().to_string())
}

/// A scheduler loaded into the kernel (verified), not yet or no longer attached.
pub struct LoadedScheduler {
    object: Object,
    link: Option<Link>,
    pub has_exit_info: bool,
}

impl LoadedScheduler {
    /// Open and load `object` (the kernel verifier runs here), then tell it the long task's
    /// names when it has a `long_comms` map. With `classes`, the object's class map (see
    /// `schedgen.bpf.h`) is the classifier's own, so the scheduler reads the classifier's
    /// verdicts.
    pub fn load(
        object: &Path,
        long_comms: &[String],
        classes: Option<BorrowedFd<'_>>,
    ) -> Result<LoadedScheduler, LoadError> {
        take_log();
        let prev = libbpf_rs::set_print(Some((PrintLevel::Debug, capture)));
        let result = ObjectBuilder::default()
            .open_file(object)
            .and_then(|mut open| {
                if let Some(fd) = classes {
                    if let Some(mut map) = open
                        .maps_mut()
                        .find(|m| m.name() == crate::classify::tracer::CLASS_MAP)
                    {
                        map.reuse_fd(fd)?;
                    }
                }
                open.load()
            });
        libbpf_rs::set_print(prev);
        let object = result.map_err(|e| LoadError {
            message: format!("{e}"),
            libbpf_log: take_log(),
        })?;
        let has_exit_info = object.maps().any(|m| m.name() == EXIT_MAP);
        let mut loaded = LoadedScheduler {
            object,
            link: None,
            has_exit_info,
        };
        loaded.set_long_comms(long_comms).map_err(|e| LoadError {
            message: format!("{e:#}"),
            libbpf_log: take_log(),
        })?;
        Ok(loaded)
    }

    fn set_long_comms(&mut self, comms: &[String]) -> Result<()> {
        let Some(map) = self.object.maps().find(|m| m.name() == LONG_COMMS_MAP) else {
            return Ok(());
        };
        for c in comms {
            let mut key = [0u8; COMM_LEN];
            let bytes = c.as_bytes();
            let n = bytes.len().min(COMM_LEN - 1);
            key[..n].copy_from_slice(&bytes[..n]);
            map.update(&key, &[1u8], MapFlags::ANY)
                .with_context(|| format!("cannot write `{c}` into the {LONG_COMMS_MAP} map"))?;
        }
        Ok(())
    }

    /// Attach the scheduler's `sched_ext_ops`: from here on it schedules the machine.
    pub fn attach(&mut self) -> Result<()> {
        let prev = libbpf_rs::set_print(Some((PrintLevel::Debug, capture)));
        let mut result = Err(anyhow!("the object has no struct_ops map (no `SEC(\".struct_ops.link\") struct sched_ext_ops`)"));
        for mut map in self.object.maps_mut() {
            if map.map_type() == MapType::StructOps {
                result = map
                    .attach_struct_ops()
                    .map_err(|e| anyhow!("attaching sched_ext_ops failed: {e}"));
                break;
            }
        }
        libbpf_rs::set_print(prev);
        let log = take_log();
        match result {
            Ok(link) => {
                self.link = Some(link);
                Ok(())
            }
            Err(e) if log.trim().is_empty() => Err(e),
            Err(e) => Err(e.context(log.trim().to_string())),
        }
    }

    /// Detach (drop the link): the kernel unregisters the scheduler and calls its `exit`.
    pub fn detach(&mut self) {
        self.link.take();
    }

    /// Detach, wait (up to 5 s) until the kernel has finished unregistering it, so its `exit`
    /// callback has run, and return the exit info it recorded.
    pub fn detach_and_collect(&mut self) -> Option<SchedExit> {
        self.detach();
        super::scx_state::wait_for("disabled", std::time::Duration::from_secs(5));
        self.exit_info()
    }

    /// The exit info the scheduler recorded, if it has the exit map and has exited.
    pub fn exit_info(&self) -> Option<SchedExit> {
        let map = self.object.maps().find(|m| m.name() == EXIT_MAP)?;
        let bytes = map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok()??;
        parse_exit(&bytes)
    }
}

/// Decode `struct schedgen_exit` (see `bpf-reference/schedgen.bpf.h`).
pub fn parse_exit(bytes: &[u8]) -> Option<SchedExit> {
    if bytes.len() < 16 + 128 + 1024 {
        return None;
    }
    let kind = i32::from_ne_bytes(bytes[0..4].try_into().ok()?);
    if kind == 0 {
        return None;
    }
    let exit_code = i64::from_ne_bytes(bytes[8..16].try_into().ok()?);
    let cstr = |b: &[u8]| {
        let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).trim().to_string()
    };
    Some(SchedExit::new(
        kind,
        exit_code,
        cstr(&bytes[16..144]),
        cstr(&bytes[144..144 + 1024]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_verifier_log() {
        let log = "libbpf: prog 'x': BPF program load failed: Permission denied\n\
                   libbpf: prog 'x': -- BEGIN PROG LOAD LOG --\n\
                   0: R1=ctx() R10=fp0\n\
                   invalid mem access 'scalar'\n\
                   -- END PROG LOAD LOG --\nlibbpf: failed to load object";
        let v = extract_verifier_log(log).unwrap();
        assert!(v.starts_with("0: R1=ctx()"));
        assert!(v.ends_with("invalid mem access 'scalar'"));
        assert!(extract_verifier_log("nothing here").is_none());
    }

    #[test]
    fn decodes_exit_records() {
        let mut b = vec![0u8; 1168];
        b[0..4].copy_from_slice(&1026i32.to_ne_bytes());
        b[16..16 + 5].copy_from_slice(b"stall");
        b[144..144 + 3].copy_from_slice(b"msg");
        let e = parse_exit(&b).unwrap();
        assert_eq!(
            (e.kind, e.reason.as_str(), e.msg.as_str()),
            (1026, "stall", "msg")
        );
        assert!(
            parse_exit(&vec![0u8; 1168]).is_none(),
            "kind 0 means still running"
        );
    }
}
