/* SPDX-License-Identifier: GPL-2.0 */
/*
 * longfirst: run the longest expected work first, whatever the workload.
 *
 * When 39 short tasks and one long task start together, the makespan is shortest if the long
 * task never waits: it should hold a CPU from the start while the short tasks share the others.
 * Which work is long is not compiled in: schedgen's classifier puts every process into one of
 * the classes learned from the workload's profile and records the CPU time a task of that class
 * needs (schedgen_expected_ns() in schedgen_classes.bpf.h), so this one object serves every
 * workload.
 *
 * A long-tail task keeps a CPU to itself: it is queued on that CPU's own queue, keeps running
 * when its slice ends, and takes the CPU back from anything else when it wakes up. Moving it
 * would cost it more than waiting: on these machines a long task moved between CPUs ran
 * measurably slower.
 *
 * Every other task goes through one shared queue that the other CPUs serve, ordered by a key:
 * the time it was queued, minus a head start proportional to its expected CPU time (longest
 * processing time first): the longest class gets all of @max_head_start_ns, the others their
 * share of it (schedgen_expected_share()). Scaling by the share, not using the expected time
 * itself, keeps the classes apart: a 1 s short class and a 36 s long one would otherwise both
 * sit near the cap.
 *
 * A process forked but not yet through its own exec (its class is still the inherited one)
 * gets the whole head start for its first @young_ns of CPU: the work is recognised at exec,
 * so every task should get there quickly. Kernel threads get it too: they have no class, and
 * the tasks wait on them (I/O completion, writeback).
 *
 * A CPU's own kernel threads (the worker completing a virtio-fs or disk request, for one)
 * preempt a short task running there: a task sleeping on that request would otherwise wait
 * out a slice (on script_per_file, 2026-12-07, the long task slept 3.8 s of a 19.5 s run
 * where the default scheduler's slept 1.3 s). They wait for a long-tail task's slice to end:
 * letting them preempt it cost a CPU-bound long task 10-30% (about a hundred preemptions a
 * second), and with 80 ms slices the other tasks' file lookups queued behind it, so the long
 * tail's slice is short all the same (it is refilled when nothing else is queued on its CPU).
 *
 * A task whose slice runs out while nothing waits stays on its CPU, unless a long-tail task
 * holds it: moving a lone task costs it more than it gains.
 *
 * Guards: a CPU stays a long-tail task's only while no other long-tail task ran there in the
 * last @owner_ttl_ns, so two long tasks spread over two CPUs instead of sharing one; and once
 * the head of the shared queue has waited @guard_ns past its head start, no long-tail task
 * keeps its CPU until it has run, so nothing waits much longer than the head start's cap.
 *
 * The same scheduler as longfirst.bpf.c, written in scx's dialect: scx's headers, UEI for the
 * exit info and SCX_OPS_DEFINE for the ops.
 */
#include <scx/common.bpf.h>
#include "schedgen_classes.bpf.h"

char _license[] SEC("license") = "GPL";

UEI_DEFINE(uei);

#define SHARED_DSQ	1
#define MAX_CPUS	1024

/* Slices of the long tail and of every other task (ns). */
const volatile u64 long_slice_ns = 20ULL * 1000 * 1000;
const volatile u64 slice_ns = 10ULL * 1000 * 1000;
/* Largest head start a task's expected CPU time can buy it in the queue (ns). */
const volatile u64 max_head_start_ns = 2000ULL * 1000 * 1000;
/* CPU a process may use before its exec with the full head start (ns). */
const volatile u64 young_ns = 200ULL * 1000 * 1000;
/* How long the head of the shared queue may wait past its head start (ns). */
const volatile u64 guard_ns = 250ULL * 1000 * 1000;
/* How long a CPU stays a long-tail task's after it last ran there (ns). */
const volatile u64 owner_ttl_ns = 50ULL * 1000 * 1000;

/* Counters the loader may read: tasks queued with a class, and without one. */
volatile u64 nr_classified, nr_unclassified;

/*
 * head_start - how much earlier than now @p counts as queued: its share of the longest
 * class's expected CPU time, times the cap.
 */
static __always_inline u64 head_start(const struct task_struct *p)
{
	struct schedgen_task_class *c = schedgen_class_of(p);

	if (schedgen_is_kthread(p))
		return max_head_start_ns;
	if (!c) {
		__sync_fetch_and_add(&nr_unclassified, 1);
		return 0;
	}
	__sync_fetch_and_add(&nr_classified, 1);
	if (schedgen_before_exec(p) && p->se.sum_exec_runtime < young_ns)
		return max_head_start_ns;
	return schedgen_expected_share(p) * (max_head_start_ns / 1024);
}

/*
 * task_slice - the long tail keeps its CPU longer.
 */
static __always_inline u64 task_slice(const struct task_struct *p)
{
	return schedgen_is_long(p) ? long_slice_ns : slice_ns;
}

/*
 * The long-tail task that last ran on each CPU, and when; and whether the task that last
 * started running there is a long-tail one.
 */
struct owner {
	u32 pid;
	u32 long_now;
	u64 seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct owner);
} owners SEC(".maps");

/*
 * starving - whether the head of the shared queue has waited @guard_ns past its head start.
 */
static __always_inline bool starving(u64 now)
{
	struct task_struct *head = NULL;
	struct bpf_iter_scx_dsq it;
	bool ret = false;

	if (!bpf_iter_scx_dsq_new(&it, SHARED_DSQ, 0))
		head = bpf_iter_scx_dsq_next(&it);
	if (head)
		ret = (s64)(now - head->scx.dsq_vtime) > (s64)(max_head_start_ns + guard_ns);
	bpf_iter_scx_dsq_destroy(&it);
	return ret;
}

/*
 * held_by_another - whether a long-tail task other than @p ran on @cpu lately.
 */
static __always_inline bool held_by_another(const struct task_struct *p, s32 cpu)
{
	u32 idx = cpu;
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	return !o || (o->pid != p->pid && bpf_ktime_get_ns() - o->seen < owner_ttl_ns);
}

/*
 * long_runs_on - whether the task that last started running on @cpu is a long-tail task.
 */
static __always_inline bool long_runs_on(s32 cpu)
{
	u32 idx = cpu;
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	return o && o->long_now;
}

/*
 * may_keep_cpu - whether long-tail task @p may stay on @cpu: it may run there, no other
 * long-tail task ran there lately, and nothing in the shared queue is starving.
 */
static __always_inline bool may_keep_cpu(const struct task_struct *p, s32 cpu)
{
	if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr) || held_by_another(p, cpu))
		return false;
	return !starving(bpf_ktime_get_ns());
}

/*
 * own - record whether @p, running on its CPU, is a long-tail task, and if so that it holds
 * the CPU.
 */
static __always_inline void own(const struct task_struct *p)
{
	u32 idx = scx_bpf_task_cpu(p);
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	if (!o)
		return;
	o->long_now = schedgen_is_long(p);
	if (o->long_now) {
		o->pid = p->pid;
		o->seen = bpf_ktime_get_ns();
	}
}

/*
 * longfirst_select_cpu - keep a long-tail task where it was; run any other waking task at
 * once on an idle CPU.
 */
s32 BPF_STRUCT_OPS(longfirst_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	if (schedgen_is_long(p) && may_keep_cpu(p, prev_cpu))
		return prev_cpu;
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, task_slice(p), 0);
	return cpu;
}

/*
 * longfirst_enqueue - a CPU's own kernel threads and a long-tail task that may keep its CPU
 * go to that CPU's queue; everything else to the shared queue by its key, waking an idle CPU.
 */
void BPF_STRUCT_OPS(longfirst_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p), idle;
	u64 key;

	if (p->nr_cpus_allowed == 1) {
		if (schedgen_is_kthread(p) && !long_runs_on(cpu))
			enq_flags |= SCX_ENQ_PREEMPT;
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, task_slice(p), enq_flags);
		return;
	}
	if (schedgen_is_long(p) && may_keep_cpu(p, cpu)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, long_slice_ns, enq_flags);
		if (enq_flags & SCX_ENQ_WAKEUP)
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		return;
	}
	/*
	 * Any other task whose slice ran out, or that was preempted, while nothing waits and no
	 * long-tail task holds its CPU stays there: moving a lone task costs it more than it
	 * gains. A new process (it has not run yet) goes through the shared queue, so that an
	 * idle CPU takes it rather than the one it was forked on.
	 */
	if (!(enq_flags & SCX_ENQ_WAKEUP) && p->se.sum_exec_runtime &&
	    !scx_bpf_dsq_nr_queued(SHARED_DSQ) && !held_by_another(p, cpu)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, task_slice(p), enq_flags);
		return;
	}

	key = bpf_ktime_get_ns() - head_start(p);
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, task_slice(p), key, enq_flags);
	idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (idle >= 0)
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	else if (schedgen_is_long(p))
		/* A long-tail task that has to queue takes a CPU back from a short one. */
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
}

/*
 * longfirst_dispatch - a long-tail task whose slice ran out keeps its CPU while the other
 * CPUs serve the shared queue; otherwise this CPU takes the task with the smallest key.
 */
void BPF_STRUCT_OPS(longfirst_dispatch, s32 cpu, struct task_struct *prev)
{
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED) && schedgen_is_long(prev) &&
	    may_keep_cpu(prev, cpu)) {
		prev->scx.slice = long_slice_ns;
		return;
	}
	scx_bpf_dsq_move_to_local(SHARED_DSQ, 0);
}

void BPF_STRUCT_OPS(longfirst_running, struct task_struct *p)
{
	own(p);
}

void BPF_STRUCT_OPS(longfirst_tick, struct task_struct *p)
{
	own(p);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(longfirst_init)
{
	s32 ret = scx_bpf_create_dsq(SHARED_DSQ, -1);

	if (ret)
		scx_bpf_error("cannot create the shared queue: %d", ret);
	return ret;
}

void BPF_STRUCT_OPS(longfirst_exit, struct scx_exit_info *ei)
{
	UEI_RECORD(uei, ei);
}

SCX_OPS_DEFINE(longfirst_ops,
	       .select_cpu	= (void *)longfirst_select_cpu,
	       .enqueue		= (void *)longfirst_enqueue,
	       .dispatch	= (void *)longfirst_dispatch,
	       .running		= (void *)longfirst_running,
	       .tick		= (void *)longfirst_tick,
	       .init		= (void *)longfirst_init,
	       .exit		= (void *)longfirst_exit,
	       .timeout_ms	= 5000,
	       .name		= "schedgen_longfirst");
