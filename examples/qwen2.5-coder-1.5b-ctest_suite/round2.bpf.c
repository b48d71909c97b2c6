#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	1
#define LONG_DSQ	2

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
 * head_start - how much earlier than now @p counts as queued: its expected CPU time, capped.
 */
static __always_inline u64 head_start(const struct task_struct *p)
{
	struct schedgen_task_class *c = schedgen_class_of(p);

	if (!c) {
		__sync_fetch_and_add(&nr_unclassified, 1);
		return 0;
	}
	__sync_fetch_and_add(&nr_classified, 1);
	if ((c->flags & SCHEDGEN_CLASS_INHERITED) && p->se.sum_exec_runtime < young_ns)
		return max_head_start_ns;
	return c->expected_ns < max_head_start_ns ? c->expected_ns : max_head_start_ns;
}

/*
 * task_slice - the long tail keeps its CPU longer.
 */
static __always_inline u64 task_slice(const struct task_struct *p)
{
	return schedgen_is_long(p) ? long_slice_ns : slice_ns;
}

/*
 * enqueue - queue @p by its key: queued time minus its head start.
 */
void BPF_STRUCT_OPS(enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 key = bpf_ktime_get_ns() - head_start(p);

	if (schedgen_is_long(p))
		scx_bpf_dsq_insert(p, LONG_DSQ, task_slice(p), 0);
	else
		scx_bpf_dsq_insert(p, SHARED_DSQ, task_slice(p), 0);
}

/*
 * dispatch - give this CPU the task with the smallest key.
 */
void BPF_STRUCT_OPS(dispatch, s32 cpu, struct task_struct *prev)
{
	if (!scx_bpf_dsq_move_to_local(LONG_DSQ)) scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(init)
{
	s32 ret = scx_bpf_create_dsq(SHARED_DSQ, -1);

	if (ret)
		scx_bpf_error("cannot create the shared queue: %d", ret);

	ret = scx_bpf_create_dsq(LONG_DSQ, -1);
	if (ret)
		scx_bpf_error("cannot create the long queue: %d", ret);
	return ret;
}

SCHEDGEN_EXIT_INFO(longfirst)

SEC(".struct_ops.link")
struct sched_ext_ops longfirst_ops = {
	.enqueue	= (void *)enqueue,
	.dispatch	= (void *)dispatch,
	.init		= (void *)init,
	.exit		= (void *)longfirst_exit,
	.timeout_ms	= 5000,
	.name		= "schedgen_longfirst",
};
