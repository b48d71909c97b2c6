//! The offline provider: writes a scheduler from the profile's task classes, with no network.
//!
//! It answers the same conversation an LLM would get, in the same format (one C code block), so
//! the rest of the loop cannot tell the difference. It is deterministic and reads only the task
//! classes the profile learned (their rules, expected CPU times and which is the long tail),
//! never the case file's hints. The policy is longest expected work first: a long-tail task
//! keeps a CPU to itself (its own CPU's queue, its slice refilled, preempting on wake-up) while
//! every other task goes through one queue ordered by queued time minus a head start
//! proportional to the class's expected CPU time; guards keep two long tasks off one CPU and
//! give the queue's head a CPU once it has waited past its head start; a CPU's own kernel
//! threads (I/O completions) preempt the short tasks there; a task a long-tail task takes its
//! CPU from keeps its place in the queue. Asked to improve (the
//! loop marks such requests and attaches what the benchmark measured), it doubles the long
//! tail's slice and halves the others', unless the scheduler was already within 5% of the best
//! order of its own CPU time, or that variant was already tried: then it declines, saying why,
//! and the loop stops. It cannot repair code it did not get right, so a repair request gets the
//! same source back (and the loop reports that).

use std::time::Instant;

use super::llm::{
    CallRecord, ChatProvider, Conversation, LlmError, Measured, ProviderInfo, Purpose, Reply,
};
use crate::bpf::compile::Dialect;
use crate::classify::rules::ClassSet;

pub const MODEL: &str = "schedgen-offline-lpt-v10";

/// Asked to improve a scheduler whose schedule efficiency was within this of a perfect order,
/// the synthesiser declines (see [`declines`]).
const ORDER_SLACK: f64 = 0.05;

/// The head start's cap (ns): below the 5 s watchdog with room to spare.
const MAX_HEAD_START_NS: u64 = 2_000_000_000;

pub struct OfflineProvider {
    classes: ClassSet,
    case_id: String,
    dialect: Dialect,
}

impl OfflineProvider {
    /// Writes in `dialect`, the one the prompt asks for.
    pub fn new(case_id: &str, classes: &ClassSet, dialect: Dialect) -> OfflineProvider {
        OfflineProvider {
            classes: classes.clone(),
            case_id: case_id.to_string(),
            dialect,
        }
    }
}

/// The lines that differ between the dialects.
struct DialectText {
    includes: &'static str,
    exit_decl: &'static str,
    move_args: &'static str,
}

fn dialect_text(dialect: Dialect) -> DialectText {
    match dialect {
        Dialect::Schedgen => DialectText {
            includes: "#include \"schedgen.bpf.h\"\n",
            exit_decl: "",
            move_args: "SHARED_DSQ",
        },
        Dialect::Scx => DialectText {
            includes: "#include <scx/common.bpf.h>\n#include \"schedgen_classes.bpf.h\"\n",
            exit_decl: "\nUEI_DEFINE(uei);\n",
            move_args: "SHARED_DSQ, 0",
        },
    }
}

fn exit_and_ops(name: &str, dialect: Dialect) -> String {
    let fields = [
        ("select_cpu", format!("(void *){name}_select_cpu")),
        ("enqueue", format!("(void *){name}_enqueue")),
        ("dispatch", format!("(void *){name}_dispatch")),
        ("running", format!("(void *){name}_running")),
        ("tick", format!("(void *){name}_tick")),
        ("stopping", format!("(void *){name}_stopping")),
        ("init", format!("(void *){name}_init")),
        ("exit", format!("(void *){name}_exit")),
        ("timeout_ms", "5000".to_string()),
        ("name", format!("\"{name}\"")),
    ];
    let tabs = |f: &str, indent: usize| {
        if f.len() + indent < 16 {
            "\t\t"
        } else {
            "\t"
        }
    };
    match dialect {
        Dialect::Schedgen => {
            let body: Vec<String> = fields
                .iter()
                .map(|(f, v)| format!("\t.{f}{}= {v},", tabs(f, 9)))
                .collect();
            format!(
                "SCHEDGEN_EXIT_INFO({name})\n\nSEC(\".struct_ops.link\")\nstruct sched_ext_ops {name}_ops = {{\n{}\n}};\n",
                body.join("\n")
            )
        }
        Dialect::Scx => {
            let body: Vec<String> = fields
                .iter()
                .map(|(f, v)| format!("\t       .{f}{}= {v}", tabs(f, 9)))
                .collect();
            format!(
                "void BPF_STRUCT_OPS({name}_exit, struct scx_exit_info *ei)\n{{\n\tUEI_RECORD(uei, ei);\n}}\n\n\
                 SCX_OPS_DEFINE({name}_ops,\n{});\n",
                body.join(",\n")
            )
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
    format!("lpt_{n}")
}

/// Text safe inside a C block comment.
fn comment_safe(s: &str) -> String {
    s.replace("*/", "* /").replace('\n', " ")
}

/// The scheduler source for `variant` (1: the long tail keeps a CPU, the rest LPT with aging;
/// 2: the long tail's slice doubled and the others' halved).
pub fn synthesize(case_id: &str, classes: &ClassSet, variant: u32, dialect: Dialect) -> String {
    let name = ops_name(case_id);
    let dt = dialect_text(dialect);
    let improved = variant >= 2;
    let class_lines: Vec<String> = if classes.is_empty() {
        vec![" *   (none: the profile found nothing that separates the long task)".into()]
    } else {
        classes
            .describe()
            .iter()
            .map(|l| format!(" *   {}", comment_safe(l)))
            .collect()
    };
    let shortest = classes
        .classes
        .iter()
        .map(|c| c.expected_cpu_s)
        .fold(f64::INFINITY, f64::min);
    let longest = classes
        .long_classes()
        .map(|c| c.expected_cpu_s)
        .fold(0.0, f64::max);
    // The head start scales with the class's share of the longest class's expected CPU time
    // (schedgen_expected_share()). v2 gave every class its own expected time, capped: a 1.2 s
    // short class then trailed a 36 s long one by only 0.8 s of queueing, and the long task
    // spent about 9 s of a 50 s run waiting behind short ones.
    let ratio = if shortest.is_finite() && shortest > 0.0 {
        format!(
            "\n * The long tail's expected CPU time is {:.0}x the shortest class's: it gets the whole\n * head start as soon as the classifier has seen it exec.",
            longest / shortest
        )
    } else {
        String::new()
    };
    // Short slices keep the many short tasks (and every task's start) moving; the long tail
    // rarely gives up its CPU. Asked to improve, it holds it longer still and short tasks
    // rotate faster.
    let (long_slice_ms, slice_ms) = if improved { (40, 5) } else { (20, 10) };
    let slice_of = "schedgen_is_long(p) ? long_slice_ns : slice_ns";
    let variant_note = if improved {
        "\n * Variant 2 (asked to improve): the long tail's slice doubles, short tasks' halves."
    } else {
        ""
    };
    format!(
        r#"/* SPDX-License-Identifier: GPL-2.0 */
/*
 * {name}: longest-expected-work-first scheduler for the `{case_id}` case, synthesised offline
 * by schedgen (variant {variant}) from the task classes its profile learned:
 *
{classes}
 *
 * schedgen's classifier puts each process into its class at exec (children inherit it) and
 * records the class's expected CPU time, which schedgen_expected_ns() returns.{ratio}
 *
 * A long-tail task keeps a CPU to itself: it is queued on that CPU's own queue, keeps running
 * when its slice ends, and takes the CPU back from anything else when it wakes up. Moving it
 * would cost it more than waiting: on these machines a long task moved between CPUs ran
 * measurably slower. Every other task goes through one shared queue that the other CPUs serve,
 * ordered by a key: the time it was queued minus a head start proportional to its expected
 * CPU time (its class's share of the longest class's, times max_head_start_ns). A process not
 * yet through its own exec since its fork (still in the class it inherited) gets the whole
 * head start for its first young_ns of CPU, so that every task reaches the exec that
 * identifies it quickly; so do kernel threads, which have no class: the tasks wait on them.
 * A CPU's own kernel threads (the worker that completes a virtio-fs or disk request, for one)
 * preempt a short task running there: a task sleeping on that request would otherwise wait
 * out a slice. They wait for a long-tail task's slice to end: preempted about a hundred times
 * a second, a CPU-bound long task ran 10-30% slower under emulation.
 * A task whose slice runs out while nothing waits stays on its CPU, unless a long-tail task
 * holds it.
 *
 * Guards: a CPU stays a long-tail task's only while no other long-tail task ran there in the
 * last owner_ttl_ns, so two long tasks spread over two CPUs instead of sharing one (a
 * process of the long tail and its parent or child count as one: a shell and the program
 * it waits for); and once
 * the head of the shared queue has waited guard_ns past its head start, no long-tail task
 * keeps its CPU until it has run, so nothing waits much longer than the head start's cap.
 * The long tail's slice is short all the same (it is refilled when nothing else is queued on
 * its CPU), so that the shared queue's guard is checked often and a kernel thread of its
 * CPU waits little.
 * A task a long-tail task takes its CPU from keeps its place in the shared queue: a long
 * tail of several processes at once (a pipeline's stages) takes a CPU back thousands of times
 * a second, and each time the task it took it from would go behind every other waiting one,
 * so that all of them crawled along together and ended together, last.
 * Nor does it take a CPU back on waking while another process of its own task runs on
 * another CPU: the stages of a pipeline wake each other whenever a page of the pipe between
 * them is freed or filled, and taking a CPU for each page preempted every short task about a
 * thousand times, which cost more CPU than the long tail gained. Such a process waits for
 * that CPU's next tick, at which a short task running there yields to it, or for the process
 * that runs elsewhere to block (it may be waiting for this one), whichever comes first.{variant_note}
 */
{includes}
char _license[] SEC("license") = "GPL";
{exit_decl}
#define SHARED_DSQ	1
#define MAX_CPUS	1024

/* Slice of a task (ns); long-tail tasks get long_slice_ns. */
const volatile u64 slice_ns = {slice_ms}ULL * 1000 * 1000;
const volatile u64 long_slice_ns = {long_slice_ms}ULL * 1000 * 1000;
/* Largest head start a task's expected CPU time buys it in the queue (ns). */
const volatile u64 max_head_start_ns = {cap}ULL;
/* CPU a process may use before its exec with the full head start (ns). */
const volatile u64 young_ns = 200ULL * 1000 * 1000;
/* How long the head of the shared queue may wait past its head start (ns). */
const volatile u64 guard_ns = 250ULL * 1000 * 1000;
/* How long a CPU stays a long-tail task's after it last ran there (ns). */
const volatile u64 owner_ttl_ns = 50ULL * 1000 * 1000;

/*
 * The long-tail task that last ran on each CPU, and when; and whether a long-tail task runs
 * there now.
 */
struct owner {{
	u32 pid;
	u32 ptgid;	/* its parent's process */
	u32 long_now;
	u32 taken;	/* a long-tail task took the CPU from the task running there */
	u32 deferred;	/* a long-tail task waits in this CPU's queue for its next tick */
	u64 seen;
}};

struct {{
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct owner);
}} owners SEC(".maps");

/*
 * task_key - queue position of @p: now, minus a head start that is its class's share of
 * the longest class's expected CPU time, times the cap.
 */
static __always_inline u64 task_key(const struct task_struct *p)
{{
	struct schedgen_task_class *c = schedgen_class_of(p);
	u64 head = 0;

	if (schedgen_is_kthread(p))
		head = max_head_start_ns;
	else if (c && schedgen_before_exec(p) && p->se.sum_exec_runtime < young_ns)
		head = max_head_start_ns;
	else if (c)
		head = schedgen_expected_share(p) * (max_head_start_ns / 1024);
	return bpf_ktime_get_ns() - head;
}}

/*
 * starving - whether the head of the shared queue has waited @guard_ns past its head start.
 */
static __always_inline bool starving(u64 now)
{{
	struct task_struct *head = NULL;
	struct bpf_iter_scx_dsq it;
	bool ret = false;

	if (!bpf_iter_scx_dsq_new(&it, SHARED_DSQ, 0))
		head = bpf_iter_scx_dsq_next(&it);
	if (head)
		ret = (s64)(now - head->scx.dsq_vtime) > (s64)(max_head_start_ns + guard_ns);
	bpf_iter_scx_dsq_destroy(&it);
	return ret;
}}

/*
 * held_by_another - whether a long-tail task other than @p ran on @cpu lately. @p's parent
 * process and its child do not count: a long task is often a chain of processes, a shell
 * and the program it waits for (which wakes it as it exits), and each would otherwise push
 * the next to another CPU.
 */
static __always_inline bool held_by_another(const struct task_struct *p, s32 cpu)
{{
	u32 idx = cpu;
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	if (!o)
		return true;
	if (o->pid == p->pid || o->ptgid == p->tgid || o->pid == p->real_parent->tgid)
		return false;
	return bpf_ktime_get_ns() - o->seen < owner_ttl_ns;
}}

/*
 * long_runs_on - whether a long-tail task runs on @cpu now.
 */
static __always_inline bool long_runs_on(s32 cpu)
{{
	u32 idx = cpu;
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	return o && o->long_now;
}}

/*
 * kin_runs_elsewhere - whether another process of @p's own long-tail task runs on a CPU other
 * than @cpu right now: its parent, a child or a sibling (a pipeline's other stage), but not a
 * sibling by way of schedgen's runner, whose children are separate tasks.
 */
static __always_inline bool kin_runs_elsewhere(const struct task_struct *p, s32 cpu)
{{
	u32 ptgid = p->real_parent->tgid, nr = scx_bpf_nr_cpu_ids();
	struct schedgen_task_class *parent = bpf_map_lookup_elem(&schedgen_classes, &ptgid);
	bool siblings = !(parent && (parent->flags & SCHEDGEN_CLASS_SERVICE));
	struct bpf_iter_num it;
	bool ret = false;
	int *i;

	bpf_iter_num_new(&it, 0, nr < MAX_CPUS ? nr : MAX_CPUS);
	while ((i = bpf_iter_num_next(&it))) {{
		u32 idx = *i;
		struct owner *o;

		if (idx == (u32)cpu)
			continue;
		o = bpf_map_lookup_elem(&owners, &idx);
		if (o && o->long_now &&
		    (o->ptgid == p->tgid || o->pid == ptgid || (siblings && o->ptgid == ptgid))) {{
			ret = true;
			break;
		}}
	}}
	bpf_iter_num_destroy(&it);
	return ret;
}}

/*
 * may_keep_cpu - whether long-tail task @p may stay on @cpu: it may run there, no other
 * long-tail task ran there lately, and nothing in the shared queue is starving.
 */
static __always_inline bool may_keep_cpu(const struct task_struct *p, s32 cpu)
{{
	if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr) || held_by_another(p, cpu))
		return false;
	return !starving(bpf_ktime_get_ns());
}}

/*
 * take - preempt whatever runs on @cpu for a long-tail task, marking that it was taken.
 */
static __always_inline void take(s32 cpu)
{{
	u32 idx = cpu;
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	if (o)
		o->taken = 1;
	scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
}}

/*
 * take_or_defer - take @cpu for waking long-tail task @p, unless another process of its own
 * task runs elsewhere: then @p waits for @cpu's next tick or for that process to block.
 */
static __always_inline void take_or_defer(const struct task_struct *p, s32 cpu)
{{
	u32 idx = cpu;
	struct owner *o;

	if (!kin_runs_elsewhere(p, cpu)) {{
		take(cpu);
		return;
	}}
	o = bpf_map_lookup_elem(&owners, &idx);
	if (o)
		o->deferred = 1;
}}

/*
 * take_deferred - take every CPU but @cpu where a long-tail task waits for the tick.
 */
static __always_inline void take_deferred(s32 cpu)
{{
	u32 nr = scx_bpf_nr_cpu_ids();
	struct bpf_iter_num it;
	int *i;

	bpf_iter_num_new(&it, 0, nr < MAX_CPUS ? nr : MAX_CPUS);
	while ((i = bpf_iter_num_next(&it))) {{
		u32 idx = *i;
		struct owner *o;

		if (idx == (u32)cpu)
			continue;
		o = bpf_map_lookup_elem(&owners, &idx);
		if (o && o->deferred) {{
			o->deferred = 0;
			take(idx);
		}}
	}}
	bpf_iter_num_destroy(&it);
}}

/*
 * was_taken - whether the task being put back on @cpu's queue lost the CPU to a long-tail
 * task; clears the mark.
 */
static __always_inline bool was_taken(s32 cpu)
{{
	u32 idx = cpu;
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);
	bool ret;

	if (!o)
		return false;
	ret = o->taken;
	o->taken = 0;
	return ret;
}}

/*
 * own - record whether @p, running on its CPU, is a long-tail task, and if so that it holds
 * the CPU.
 */
static __always_inline void own(const struct task_struct *p)
{{
	u32 idx = scx_bpf_task_cpu(p);
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	if (!o)
		return;
	/* Whatever a take() preempted has been put back by now. */
	o->taken = 0;
	o->long_now = schedgen_is_long(p);
	if (o->long_now) {{
		o->deferred = 0;
		o->pid = p->pid;
		o->ptgid = p->real_parent->tgid;
		o->seen = bpf_ktime_get_ns();
	}}
}}

s32 BPF_STRUCT_OPS({name}_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{{
	bool is_idle = false;
	s32 cpu;

	if (schedgen_is_long(p) && may_keep_cpu(p, prev_cpu))
		return prev_cpu;
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, {slice_of}, 0);
	return cpu;
}}

void BPF_STRUCT_OPS({name}_enqueue, struct task_struct *p, u64 enq_flags)
{{
	s32 cpu = scx_bpf_task_cpu(p), idle;
	u64 key;

	/*
	 * A CPU's own kernel thread runs before a short task there: it is often the worker
	 * completing the I/O a task sleeps on, which would otherwise wait out a whole slice.
	 * A long-tail task is not preempted for it (a CPU-bound one would lose far more).
	 */
	if (p->nr_cpus_allowed == 1) {{
		if (schedgen_is_kthread(p) && !long_runs_on(cpu))
			enq_flags |= SCX_ENQ_PREEMPT;
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, {slice_of}, enq_flags);
		return;
	}}
	if (schedgen_is_long(p) && may_keep_cpu(p, cpu)) {{
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, long_slice_ns, enq_flags);
		if (enq_flags & SCX_ENQ_WAKEUP)
			take_or_defer(p, cpu);
		return;
	}}
	/*
	 * Any other task whose slice ran out, or that was preempted, while nothing waits and no
	 * long-tail task holds its CPU stays there: moving a lone task costs it more than it
	 * gains. A new process (it has not run yet) goes through the shared queue, so that an
	 * idle CPU takes it rather than the one it was forked on.
	 */
	if (!(enq_flags & SCX_ENQ_WAKEUP) && p->se.sum_exec_runtime &&
	    !scx_bpf_dsq_nr_queued(SHARED_DSQ) && !held_by_another(p, cpu)) {{
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, {slice_of}, enq_flags);
		return;
	}}

	/*
	 * Put back after a long-tail task took its CPU: the place it had (see take()), but none
	 * older than the largest head start, or the head of the queue would look starved.
	 */
	key = task_key(p);
	if (!(enq_flags & SCX_ENQ_WAKEUP) && was_taken(cpu)) {{
		u64 oldest = bpf_ktime_get_ns() - max_head_start_ns;
		u64 kept = p->scx.dsq_vtime > oldest ? p->scx.dsq_vtime : oldest;

		if (kept < key)
			key = kept;
	}}
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, {slice_of}, key, enq_flags);
	idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (idle >= 0)
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	else if (schedgen_is_long(p) && !long_runs_on(cpu))
		/*
		 * A long-tail task that has to queue takes a CPU back from a short one (from a
		 * long-tail one it would get straight back).
		 */
		take(cpu);
}}

/*
 * A long-tail task whose slice ran out keeps its CPU while the other CPUs serve the shared
 * queue; otherwise this CPU takes the task with the smallest key.
 */
void BPF_STRUCT_OPS({name}_dispatch, s32 cpu, struct task_struct *prev)
{{
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED) && schedgen_is_long(prev) &&
	    may_keep_cpu(prev, cpu)) {{
		prev->scx.slice = long_slice_ns;
		return;
	}}
	scx_bpf_dsq_move_to_local({move_args});
}}

void BPF_STRUCT_OPS({name}_running, struct task_struct *p)
{{
	own(p);
}}

/*
 * A task that is not in the long tail yields at the tick to one waiting in its CPU's own
 * queue (see take_or_defer()), keeping its place in the shared queue.
 */
void BPF_STRUCT_OPS({name}_tick, struct task_struct *p)
{{
	u32 idx = scx_bpf_task_cpu(p);
	struct owner *o;

	own(p);
	if (schedgen_is_long(p) || !scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL))
		return;
	o = bpf_map_lookup_elem(&owners, &idx);
	if (o)
		o->taken = 1;
	p->scx.slice = 0;
}}

/*
 * A long-tail task that blocks may be what a deferred one of its own task was woken for.
 */
void BPF_STRUCT_OPS({name}_stopping, struct task_struct *p, bool runnable)
{{
	u32 idx = scx_bpf_task_cpu(p);
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	if (o)
		o->long_now = 0;
	if (!runnable && schedgen_is_long(p))
		take_deferred(idx);
}}

s32 BPF_STRUCT_OPS_SLEEPABLE({name}_init)
{{
	s32 ret = scx_bpf_create_dsq(SHARED_DSQ, -1);

	if (ret)
		scx_bpf_error("cannot create the shared queue: %d", ret);
	return ret;
}}

{exit_and_ops}"#,
        classes = class_lines.join("\n"),
        cap = MAX_HEAD_START_NS,
        includes = dt.includes,
        exit_decl = dt.exit_decl,
        move_args = dt.move_args,
        exit_and_ops = exit_and_ops(&name, dialect),
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
        let variant = 1 + conversation.requests(Purpose::Improve) as u32;
        let record = |t: Instant| CallRecord {
            model: MODEL.into(),
            served_model: None,
            usage: Some(Default::default()),
            latency_s: t.elapsed().as_secs_f64(),
            attempts: 1,
            failures: Vec::new(),
            finish_reason: Some("stop".into()),
            warnings: Vec::new(),
        };
        if let Some(why) = conversation.improving().and_then(|m| declines(m, variant)) {
            return Ok(Reply {
                text: format!("No change to offer: {why}.\n"),
                record: record(t),
                declined: Some(why),
            });
        }
        let source = synthesize(&self.case_id, &self.classes, variant, self.dialect);
        Ok(Reply {
            text: format!(
                "Longest-expected-work-first scheduler for `{}`, from the profile's task classes:\n\n```c\n{source}```\n",
                self.case_id
            ),
            record: record(t),
            declined: None,
        })
    }
}

/// Why the synthesiser has no change for an improve request about a scheduler measured as `m`,
/// when it has none. Its one improved variant doubles the long tail's slices and halves the
/// others': that wins back time the long task spent waiting, which a schedule already close to
/// the best order of its own CPU time did not spend.
fn declines(m: &Measured, variant: u32) -> Option<String> {
    if variant > 2 {
        return Some(
            "the synthesiser has one improved variant (longer slices for the long tail, shorter \
             ones for the rest), and the previous round was it"
                .into(),
        );
    }
    let e = m.efficiency.filter(|e| *e <= 1.0 + ORDER_SLACK)?;
    let room = if e <= 1.0 {
        "no order of the same work is faster".to_string()
    } else {
        format!(
            "no order of the same work is more than {:.0}% faster",
            (1.0 - 1.0 / e) * 100.0
        )
    };
    Some(format!(
        "its makespan was {e:.2} times the best its tasks' CPU time allows on these CPUs, so \
         {room}, and the synthesiser's one change (longer slices for the long tail, shorter \
         ones for the rest) only wins back waiting"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::rules::{Rule, TaskClass};
    use crate::generate::extract::extract_scheduler;

    fn classes() -> ClassSet {
        ClassSet {
            classes: vec![
                TaskClass {
                    id: 1,
                    name: "long".into(),
                    rule: Rule::ArgNumberAtLeast {
                        index: 2,
                        min: 13e6,
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
                    tasks: 39,
                    long: false,
                },
            ],
        }
    }

    #[test]
    fn writes_its_policy_from_the_profiles_classes() {
        let p = OfflineProvider::new("same_binary_args", &classes(), Dialect::Schedgen);
        let r = p.chat(&Conversation::new("sys", "write it")).unwrap();
        let src = extract_scheduler(&r.text).unwrap().source;
        // It names the classes it was written from, and reads them at run time.
        assert!(src.contains("argv[2] is a number ≥ 13000000"), "{src}");
        assert!(src.contains("80x the shortest class"), "{src}");
        assert!(src.contains("schedgen_class_of(p)") && src.contains("expected_ns"));
        assert!(!src.contains("comm"), "no process names in the policy");
        assert!(src.contains("20ULL * 1000 * 1000") && src.contains("SCX_KICK_PREEMPT"));
        // The longest class gets the whole head start, the others their share of it.
        assert!(
            src.contains("schedgen_expected_share(p) * (max_head_start_ns / 1024)"),
            "{src}"
        );
        // Kernel threads, which have no class, get the whole head start.
        assert!(
            src.contains("if (schedgen_is_kthread(p))\n\t\thead = max_head_start_ns;"),
            "{src}"
        );
        // The long tail keeps its CPU: its own CPU's queue, a refilled slice at the end of one,
        // and a guard for other long tasks and for the shared queue's starving head.
        assert!(src.contains(
            "if (schedgen_is_long(p) && may_keep_cpu(p, cpu)) {\n\t\tscx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu"
        ), "{src}");
        assert!(src.contains("prev->scx.slice = long_slice_ns;"), "{src}");
        assert!(
            src.contains("return bpf_ktime_get_ns() - o->seen < owner_ttl_ns;"),
            "{src}"
        );
        // A parent and its child are one owner.
        assert!(
            src.contains("if (o->pid == p->pid || o->ptgid == p->tgid || o->pid == p->real_parent->tgid)\n\t\treturn false;"),
            "{src}"
        );
        assert!(
            src.contains("(s64)(now - head->scx.dsq_vtime) > (s64)(max_head_start_ns + guard_ns)")
        );
        // A CPU's own kernel threads preempt a short task, and wait for a long-tail one's
        // short slice; the youth head start lasts only until a process's own exec.
        assert!(
            src.contains("if (schedgen_is_kthread(p) && !long_runs_on(cpu))\n\t\t\tenq_flags |= SCX_ENQ_PREEMPT;"),
            "{src}"
        );
        assert!(src.contains("o->long_now = schedgen_is_long(p);"), "{src}");
        assert!(
            src.contains("c && schedgen_before_exec(p) && p->se.sum_exec_runtime < young_ns"),
            "{src}"
        );
        assert!(
            src.contains("\t.tick\t\t= (void *)lpt_same_binary_args_tick,"),
            "{src}"
        );
        // A waking long-tail process does not take a CPU while its own task runs elsewhere
        // (a pipeline's stages): it waits for the tick, at which a short task yields, or for
        // that process to block.
        assert!(
            src.contains("\t\tif (enq_flags & SCX_ENQ_WAKEUP)\n\t\t\ttake_or_defer(p, cpu);"),
            "{src}"
        );
        assert!(
            src.contains("(siblings && o->ptgid == ptgid)")
                && src.contains("SCHEDGEN_CLASS_SERVICE"),
            "{src}"
        );
        assert!(
            src.contains(
                "if (schedgen_is_long(p) || !scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL))\n\t\treturn;"
            ),
            "{src}"
        );
        assert!(
            src.contains("if (!runnable && schedgen_is_long(p))\n\t\ttake_deferred(idx);"),
            "{src}"
        );
        assert!(
            src.contains("\t.stopping\t= (void *)lpt_same_binary_args_stopping,"),
            "{src}"
        );

        // An improvement request (marked as such, whatever its text) gives variant 2.
        let mut c = Conversation::new("sys", "write it");
        c.push_assistant(r.text.clone());
        c.push_request(
            Purpose::Repair,
            "not fast enough (this text does not matter)",
        );
        let same = extract_scheduler(&p.chat(&c).unwrap().text).unwrap().source;
        assert_eq!(same, src, "a repair request gets the same file back");
        c.push_request(Purpose::Improve, "numbers");
        let again = extract_scheduler(&p.chat(&c).unwrap().text).unwrap().source;
        assert!(again.contains("40ULL * 1000 * 1000") && again.contains("variant 2"));
    }

    #[test]
    fn declines_to_reorder_a_schedule_already_near_the_best_order() {
        let p = OfflineProvider::new("same_binary_args", &classes(), Dialect::Schedgen);
        let measured = |efficiency| Measured {
            efficiency: Some(efficiency),
        };
        let first = p.chat(&Conversation::new("sys", "write it")).unwrap();
        let asked = |efficiency| {
            let mut c = Conversation::new("sys", "write it");
            c.push_assistant(first.text.clone());
            c.push_improve("numbers", measured(efficiency));
            c
        };
        // The long task waited: the improved variant may win that back.
        let waited = p.chat(&asked(1.25)).unwrap();
        assert_eq!(waited.declined, None);
        assert!(extract_scheduler(&waited.text)
            .unwrap()
            .source
            .contains("variant 2"));
        // At 1.03 of the best order no reordering gains more than 3%: it says so, with no code.
        let near = p.chat(&asked(1.03)).unwrap();
        let why = near.declined.expect("declines");
        assert!(
            why.contains("1.03 times the best") && why.contains("3% faster"),
            "{why}"
        );
        assert!(extract_scheduler(&near.text).is_err(), "{}", near.text);
        // At or below 1 (the CPU accounting can put it there) there is no room at all.
        let below = p.chat(&asked(0.96)).unwrap().declined.unwrap();
        assert!(
            below.contains("0.96 times") && below.contains("is faster,"),
            "{below}"
        );
        // A third round would get the second's variant again: it declines that too.
        let mut c = asked(1.25);
        c.push_assistant(waited.text);
        c.push_improve("numbers", measured(1.25));
        assert!(p
            .chat(&c)
            .unwrap()
            .declined
            .unwrap()
            .contains("one improved variant"));
        // A repair request after an improve one is answered, not declined.
        let mut c = asked(1.03);
        c.push_request(Purpose::Repair, "fix it");
        assert_eq!(p.chat(&c).unwrap().declined, None);
    }

    #[test]
    fn says_so_when_there_are_no_classes() {
        let src = synthesize("x", &ClassSet::default(), 1, Dialect::Schedgen);
        assert!(src.contains("nothing that separates the long task"));
    }

    #[test]
    fn writes_scx_dialect_when_asked() {
        let src = synthesize("ctest_suite", &classes(), 1, Dialect::Scx);
        assert_eq!(Dialect::detect(&src), Dialect::Scx);
        assert!(src.contains("#include <scx/common.bpf.h>\n#include \"schedgen_classes.bpf.h\""));
        assert!(src.contains("UEI_DEFINE(uei);") && src.contains("UEI_RECORD(uei, ei);"));
        assert!(src.contains("SCX_OPS_DEFINE(lpt_ctest_suite_ops,"), "{src}");
        assert!(src.contains("scx_bpf_dsq_move_to_local(SHARED_DSQ, 0);"));
        assert!(!src.contains("SCHEDGEN_EXIT_INFO") && !src.contains("schedgen.bpf.h\""));
        let ours = synthesize("ctest_suite", &classes(), 1, Dialect::Schedgen);
        assert!(ours.contains("SCHEDGEN_EXIT_INFO(lpt_ctest_suite)"));
        assert!(
            ours.contains("struct sched_ext_ops lpt_ctest_suite_ops = {\n\t.select_cpu\t= "),
            "{ours}"
        );
    }
}
