/* SPDX-License-Identifier: GPL-2.0 */
/*
 * longfirst: run the longest expected work first, whatever the workload.
 *
 * When 39 short tasks and one long task start together, the makespan is shortest if the long
 * task never waits: it should hold a CPU from the start while the short tasks share the others.
 * Which work is long is not compiled in: schedgen's classifier puts every process into one of
 * the classes learned from the workload's profile and records the CPU time a task of that class
 * needs (schedgen_expected_ns() in schedgen.bpf.h), so this one object serves every workload.
 *
 * One queue ordered by a key: the time a task was queued, minus a head start proportional to
 * its expected CPU time (longest processing time first): the longest class gets all of
 * @max_head_start_ns, the others their share of it (schedgen_expected_share()). Scaling by
 * the share, not using the expected time itself, keeps the classes apart: a 1 s short class
 * and a 36 s long one would otherwise both sit near the cap, and the long task would queue
 * behind short ones. The cap is the starvation guard: a task that has waited longer than the
 * cap goes before any task queued after it, whatever their classes, so nothing waits much
 * longer than the cap.
 *
 * A process forked but not yet through its own exec (its class is still the inherited one)
 * gets the whole head start for its first @young_ns of CPU: the work is recognised at exec,
 * so every task should get there quickly. Kernel threads get it too: they have no class, and
 * the tasks wait on them (I/O completion, writeback); queued behind classified work they
 * would serialise the very tasks that wait on them. The long tail runs with long slices, so that it
 * rarely gives up its CPU, and a long-tail task that has to queue preempts whatever runs on its
 * CPU; everything else rotates with short slices. A task whose slice runs out while nothing
 * waits stays on its CPU.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	1

/* Slices of the long tail and of every other task (ns). */
const volatile u64 long_slice_ns = 80ULL * 1000 * 1000;
const volatile u64 slice_ns = 10ULL * 1000 * 1000;
/* Largest head start a task's expected CPU time can buy it in the queue (ns). */
const volatile u64 max_head_start_ns = 2000ULL * 1000 * 1000;
/* CPU a process may use before its exec with the full head start (ns). */
const volatile u64 young_ns = 200ULL * 1000 * 1000;

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
	if ((c->flags & SCHEDGEN_CLASS_INHERITED) && p->se.sum_exec_runtime < young_ns)
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
 * longfirst_select_cpu - run a waking task at once on an idle CPU.
 */
s32 BPF_STRUCT_OPS(longfirst_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, task_slice(p), 0);
	return cpu;
}

/*
 * longfirst_enqueue - queue @p by its key: queued time minus its head start.
 *
 * A task queued without waking up (its slice ran out, it was preempted or it is new) while
 * nothing waits stays on its CPU instead: through the shared queue the other CPU may take it,
 * and every move starts it on a cold cache and TLB.
 */
void BPF_STRUCT_OPS(longfirst_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 key;

	if (!(enq_flags & SCX_ENQ_WAKEUP) && !scx_bpf_dsq_nr_queued(SHARED_DSQ)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, task_slice(p), enq_flags);
		return;
	}

	key = bpf_ktime_get_ns() - head_start(p);
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, task_slice(p), key, enq_flags);
	if (schedgen_is_long(p))
		scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_PREEMPT);
}

/*
 * longfirst_dispatch - give this CPU the task with the smallest key.
 */
void BPF_STRUCT_OPS(longfirst_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(longfirst_init)
{
	s32 ret = scx_bpf_create_dsq(SHARED_DSQ, -1);

	if (ret)
		scx_bpf_error("cannot create the shared queue: %d", ret);
	return ret;
}

SCHEDGEN_EXIT_INFO(longfirst)

SEC(".struct_ops.link")
struct sched_ext_ops longfirst_ops = {
	.select_cpu	= (void *)longfirst_select_cpu,
	.enqueue	= (void *)longfirst_enqueue,
	.dispatch	= (void *)longfirst_dispatch,
	.init		= (void *)longfirst_init,
	.exit		= (void *)longfirst_exit,
	.timeout_ms	= 5000,
	.name		= "schedgen_longfirst",
};
