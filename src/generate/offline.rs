//! The offline provider: writes a long-task-first scheduler from the profile, with no network.
//!
//! It answers the same conversation an LLM would get, in the same format (one C code block), so
//! the rest of the loop cannot tell the difference. It is deterministic: the first answer is
//! the plain long-first policy with the profile's long-task names built in; asked to improve,
//! it also preempts a short task when a long one wakes. It cannot repair code it did not get
//! right, so a repair request gets the same source back (and the loop reports that).

use std::time::Instant;

use super::llm::{CallRecord, ChatProvider, Conversation, LlmError, ProviderInfo, Reply, Role};

pub const MODEL: &str = "schedgen-offline-longfirst-v1";

pub struct OfflineProvider {
    long_comms: Vec<String>,
    case_id: String,
}

impl OfflineProvider {
    pub fn new(case_id: &str, long_comms: &[String]) -> OfflineProvider {
        OfflineProvider {
            long_comms: long_comms.to_vec(),
            case_id: case_id.to_string(),
        }
    }
}

/// A C identifier-safe short name for the ops struct.
fn ops_name(case_id: &str) -> String {
    let mut n: String = case_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    n.truncate(18);
    format!("lf_{n}")
}

fn c_string(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .map(|c| match c {
            '"' | '\\' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect()
}

/// The scheduler source for `variant` (1: long first; 2: long first + wake-up preemption).
pub fn synthesize(case_id: &str, long_comms: &[String], variant: u32) -> String {
    let names: Vec<String> = long_comms
        .iter()
        .take(16)
        .map(|c| format!("\t\"{}\",", c_string(&c[..c.len().min(15)])))
        .collect();
    let name = ops_name(case_id);
    let preempt = variant >= 2;
    let long_slice_ms = if preempt { 80 } else { 40 };
    let wake_preempt = if preempt {
        "\n\t/* A long task that wakes while every CPU is busy takes its previous CPU back. */\n\
         \tif (long_task)\n\t\tscx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_PREEMPT);"
    } else {
        ""
    };
    format!(
        r#"/* SPDX-License-Identifier: GPL-2.0 */
/*
 * {name}: long-task-first scheduler for the `{case_id}` case, synthesised offline by schedgen
 * from the case's profile (variant {variant}).
 *
 * The profile shows one long task among 39 short ones. The makespan is shortest when the long
 * task never waits, so its processes (recognised by name below) go to a queue that every CPU
 * serves first; the short tasks share what is left. A CPU that has served long tasks
 * {streak} times in a row lets one waiting short task through, so nothing starves.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

#define LONG_DSQ	1
#define SHORT_DSQ	2
#define NR_LONG_NAMES	{n}

/* Slices: long enough that the long task rarely gives up its CPU; short tasks rotate. */
const volatile u64 long_slice_ns = {long_slice_ms}ULL * 1000 * 1000;
const volatile u64 short_slice_ns = 10ULL * 1000 * 1000;
const volatile u32 max_long_streak = {streak};

/* Process names (comm) of the long task, from the profile. */
static const char long_names[NR_LONG_NAMES][TASK_COMM_LEN] = {{
{names}
}};

struct {{
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
}} long_streak SEC(".maps");

/*
 * is_long - whether @p runs under one of the long task's names.
 */
static __always_inline bool is_long(struct task_struct *p)
{{
	char comm[TASK_COMM_LEN] = {{}};
	int i, j;

	bpf_probe_read_kernel_str(comm, sizeof(comm), p->comm);
	for (i = 0; i < NR_LONG_NAMES; i++) {{
		bool same = true;

		for (j = 0; j < TASK_COMM_LEN; j++) {{
			if (comm[j] != long_names[i][j]) {{
				same = false;
				break;
			}}
			if (!comm[j])
				break;
		}}
		if (same)
			return true;
	}}
	return false;
}}

s32 BPF_STRUCT_OPS({name}_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, is_long(p) ? long_slice_ns : short_slice_ns, 0);
	return cpu;
}}

void BPF_STRUCT_OPS({name}_enqueue, struct task_struct *p, u64 enq_flags)
{{
	bool long_task = is_long(p);

	scx_bpf_dsq_insert(p, long_task ? LONG_DSQ : SHORT_DSQ,
			   long_task ? long_slice_ns : short_slice_ns, enq_flags);{wake_preempt}
}}

void BPF_STRUCT_OPS({name}_dispatch, s32 cpu, struct task_struct *prev)
{{
	u32 zero = 0;
	u32 *streak = bpf_map_lookup_elem(&long_streak, &zero);

	if (!streak)
		return;
	if (*streak >= max_long_streak && scx_bpf_dsq_nr_queued(SHORT_DSQ) > 0 &&
	    scx_bpf_dsq_move_to_local(SHORT_DSQ)) {{
		*streak = 0;
		return;
	}}
	if (scx_bpf_dsq_move_to_local(LONG_DSQ)) {{
		*streak += 1;
		return;
	}}
	if (scx_bpf_dsq_move_to_local(SHORT_DSQ))
		*streak = 0;
}}

s32 BPF_STRUCT_OPS_SLEEPABLE({name}_init)
{{
	s32 ret = scx_bpf_create_dsq(LONG_DSQ, -1);

	if (ret) {{
		scx_bpf_error("cannot create the long-task queue: %d", ret);
		return ret;
	}}
	ret = scx_bpf_create_dsq(SHORT_DSQ, -1);
	if (ret)
		scx_bpf_error("cannot create the short-task queue: %d", ret);
	return ret;
}}

SCHEDGEN_EXIT_INFO({name})

SEC(".struct_ops.link")
struct sched_ext_ops {name}_ops = {{
	.select_cpu	= (void *){name}_select_cpu,
	.enqueue	= (void *){name}_enqueue,
	.dispatch	= (void *){name}_dispatch,
	.init		= (void *){name}_init,
	.exit		= (void *){name}_exit,
	.timeout_ms	= 5000,
	.name		= "{name}",
}};
"#,
        n = names.len().max(1),
        names = if names.is_empty() {
            "\t\"\",".to_string()
        } else {
            names.join("\n")
        },
        streak = 16,
    )
}

impl ChatProvider for OfflineProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            provider: "offline".into(),
            model: MODEL.into(),
            endpoint_host: None,
        }
    }

    fn chat(&self, conversation: &Conversation) -> Result<Reply, LlmError> {
        let t = Instant::now();
        let improve_requests = conversation
            .messages
            .iter()
            .filter(|m| m.role == Role::User && m.content.contains("not fast enough"))
            .count() as u32;
        let source = synthesize(&self.case_id, &self.long_comms, 1 + improve_requests);
        Ok(Reply {
            text: format!(
                "Long-task-first scheduler for `{}`:\n\n```c\n{source}```\n",
                self.case_id
            ),
            record: CallRecord {
                model: MODEL.into(),
                served_model: None,
                usage: Some(Default::default()),
                latency_s: t.elapsed().as_secs_f64(),
                attempts: 1,
                failures: Vec::new(),
                finish_reason: Some("stop".into()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::extract::extract_scheduler;

    #[test]
    fn answers_with_one_scheduler_naming_the_long_task() {
        let p = OfflineProvider::new("log_processing", &["long_gzip".into(), "long_awk".into()]);
        let r = p.chat(&Conversation::new("sys", "write it")).unwrap();
        let src = extract_scheduler(&r.text).unwrap().source;
        assert!(src.contains("\"long_gzip\",") && src.contains("\"long_awk\","));
        assert!(src.contains("#define NR_LONG_NAMES\t2"));
        assert!(!src.contains("SCX_KICK_PREEMPT"));
        let mut c = Conversation::new("sys", "write it");
        c.push_assistant(r.text);
        c.push_user("Your scheduler works but is not fast enough: ...");
        let again = extract_scheduler(&p.chat(&c).unwrap().text).unwrap().source;
        assert!(
            again.contains("SCX_KICK_PREEMPT"),
            "the second variant preempts"
        );
    }
}
