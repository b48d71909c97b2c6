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
use libbpf_rs::{Link, MapCore, MapFlags, MapType, Object, ObjectBuilder, OpenObject, PrintLevel};

use super::exit::SchedExit;
use super::globals::{self, Setting};

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

/// Whether a compiled scheduler has the `long_comms` map (schedulers written before task
/// classes): only then are the case's long-task names given to it. Opening needs no privileges.
pub fn takes_long_comms(object: &Path) -> Result<bool> {
    let open = ObjectBuilder::default()
        .open_file(object)
        .with_context(|| format!("cannot open {}", object.display()))?;
    let found = open.maps().any(|m| m.name() == LONG_COMMS_MAP);
    Ok(found)
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

/// Size of the debug dump schedgen asks scx's `UEI_DEFINE` to keep (the kernel's default
/// `exit_dump_len`).
const UEI_DUMP_LEN: u32 = 32768;

/// Where an scx-dialect scheduler keeps its exit info (`UEI_DEFINE(name)`).
struct Uei {
    data_map: String,
    offset: usize,
    dump_map: Option<String>,
}

/// A scheduler loaded into the kernel (verified), not yet or no longer attached.
pub struct LoadedScheduler {
    object: Object,
    link: Option<Link>,
    uei: Option<Uei>,
    pub has_exit_info: bool,
    /// scx enum slots the running kernel has no enumerator for (left 0).
    pub missing_enums: Vec<String>,
}

/// Prepare an scx-dialect object before load: the kernel's enum values into the `__SCX_*`
/// slots, room for the exit dump, the user's knob settings. Returns where UEI lives.
fn prepare(
    open: &mut OpenObject,
    settings: &[Setting],
) -> anyhow::Result<(Option<Uei>, Vec<String>)> {
    let missing = globals::fill_enum_slots(open)?;
    let uei = match globals::globals(open, ".data")
        .into_iter()
        .find(|g| g.type_name == "struct user_exit_info")
    {
        None => None,
        Some(g) => {
            let data_map = globals::data_map_name(open, ".data")
                .ok_or_else(|| anyhow!("the object has UEI but no .data map"))?;
            let dump_section = format!(".data.{}_dump", g.name);
            let len_knob = format!("{}_dump_len", g.name);
            let mut dump_map = None;
            if let Some(name) = globals::data_map_name(open, &dump_section) {
                let has_len = globals::globals(open, ".rodata")
                    .iter()
                    .any(|k| k.name == len_knob);
                if has_len {
                    if let Some(mut m) =
                        open.maps_mut().find(|m| m.name().to_string_lossy() == name)
                    {
                        m.set_value_size(UEI_DUMP_LEN)
                            .context("cannot make room for the exit dump")?;
                    }
                    globals::apply_settings(
                        open,
                        &[Setting {
                            name: len_knob,
                            value: UEI_DUMP_LEN.to_string(),
                        }],
                    )?;
                    dump_map = Some(name);
                }
            }
            Some(Uei {
                data_map,
                offset: g.offset,
                dump_map,
            })
        }
    };
    let skip: Vec<String> = uei.iter().filter_map(|u| u.dump_map.clone()).collect();
    globals::resize_per_cpu_arrays(open, &skip)?;
    globals::apply_settings(open, settings)?;
    Ok((uei, missing))
}

impl LoadedScheduler {
    /// Open and load `object` (the kernel verifier runs here), then tell it the long task's
    /// names when it has a `long_comms` map. With `classes`, the object's class map (see
    /// `schedgen.bpf.h`) is the classifier's own, so the scheduler reads the classifier's
    /// verdicts.
    /// `settings` are the user's `--set NAME=VALUE` for the object's `const volatile` knobs.
    pub fn load(
        object: &Path,
        long_comms: &[String],
        classes: Option<BorrowedFd<'_>>,
        settings: &[Setting],
    ) -> Result<LoadedScheduler, LoadError> {
        take_log();
        let prev = libbpf_rs::set_print(Some((PrintLevel::Debug, capture)));
        let mut prepared = None;
        let result = ObjectBuilder::default()
            .open_file(object)
            .map_err(anyhow::Error::from)
            .and_then(|mut open| {
                prepared = Some(prepare(&mut open, settings)?);
                if let Some(fd) = classes {
                    if let Some(mut map) = open
                        .maps_mut()
                        .find(|m| m.name() == crate::classify::tracer::CLASS_MAP)
                    {
                        map.reuse_fd(fd)?;
                    }
                }
                Ok(open.load()?)
            });
        libbpf_rs::set_print(prev);
        let object = result.map_err(|e| LoadError {
            message: format!("{e:#}"),
            libbpf_log: take_log(),
        })?;
        let (uei, missing_enums) = prepared.unwrap_or_default();
        let has_exit_info = uei.is_some() || object.maps().any(|m| m.name() == EXIT_MAP);
        let mut loaded = LoadedScheduler {
            object,
            link: None,
            uei,
            has_exit_info,
            missing_enums,
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

    /// The exit info the scheduler recorded (schedgen's `SCHEDGEN_EXIT_INFO` or scx's
    /// `UEI_DEFINE`), if it has one and has exited.
    pub fn exit_info(&self) -> Option<SchedExit> {
        if let Some(uei) = &self.uei {
            let value = |name: &str| {
                let map = self
                    .object
                    .maps()
                    .find(|m| m.name().to_string_lossy() == name)?;
                map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok()?
            };
            let data = value(&uei.data_map)?;
            let mut exit = parse_exit(data.get(uei.offset..)?)?;
            exit.dump = uei
                .dump_map
                .as_deref()
                .and_then(value)
                .map(|d| {
                    let end = d.iter().position(|c| *c == 0).unwrap_or(d.len());
                    String::from_utf8_lossy(&d[..end]).trim_end().to_string()
                })
                .filter(|d| !d.is_empty());
            return Some(exit);
        }
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
