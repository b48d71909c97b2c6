/* SPDX-License-Identifier: GPL-2.0 */
/*
 * longfirst: run the long task first, whatever the workload.
 *
 * When 39 short tasks and one long task start together, the makespan is shortest if the long
 * task never waits: it should hold a CPU from the start while the short tasks share the others.
 * Which processes are "long" is not compiled in: the loader writes their names (`comm`, from a
 * case's hint or a profile) into the `long_comms` map before attaching, so this one object serves
 * every case.
 *
 * Two queues: long tasks in LONG_DSQ, everything else in SHORT_DSQ. A CPU looking for work
 * takes a long task first. Starvation guard: after @max_long_streak consecutive long dispatches
 * on a CPU, a waiting short task goes first once, so short tasks always progress even when
 * there are more long tasks than CPUs.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

#define LONG_DSQ	1
#define SHORT_DSQ	2

/* Slice of a long task: long enough that it rarely gives up its CPU (ns). */
const volatile u64 long_slice_ns = 40ULL * 1000 * 1000;
/* Slice of a short task (ns). */
const volatile u64 short_slice_ns = 10ULL * 1000 * 1000;
/* Long dispatches in a row on one CPU before a waiting short task is let through. */
const volatile u32 max_long_streak = 16;

SCHEDGEN_LONG_COMMS;

/* Consecutive long dispatches on each CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} long_streak SEC(".maps");

/* Counters the loader may read: tasks queued as long and as short. */
volatile u64 nr_long_enqueued, nr_short_enqueued;

/*
 * is_long - whether @p runs under one of the long task's names.
 */
static __always_inline bool is_long(struct task_struct *p)
{
	char comm[TASK_COMM_LEN] = {};

	bpf_probe_read_kernel_str(comm, sizeof(comm), p->comm);
	return bpf_map_lookup_elem(&long_comms, comm) != NULL;
}

/*
 * longfirst_select_cpu - run a waking task at once on an idle CPU, with its group's slice.
 */
s32 BPF_STRUCT_OPS(longfirst_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL,
				   is_long(p) ? long_slice_ns : short_slice_ns, 0);
	return cpu;
}

/*
 * longfirst_enqueue - queue @p with its group.
 */
void BPF_STRUCT_OPS(longfirst_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (is_long(p)) {
		__sync_fetch_and_add(&nr_long_enqueued, 1);
		scx_bpf_dsq_insert(p, LONG_DSQ, long_slice_ns, enq_flags);
	} else {
		__sync_fetch_and_add(&nr_short_enqueued, 1);
		scx_bpf_dsq_insert(p, SHORT_DSQ, short_slice_ns, enq_flags);
	}
}

/*
 * longfirst_dispatch - long tasks first, unless short ones have waited out a streak.
 */
void BPF_STRUCT_OPS(longfirst_dispatch, s32 cpu, struct task_struct *prev)
{
	u32 zero = 0;
	u32 *streak = bpf_map_lookup_elem(&long_streak, &zero);

	if (!streak)
		return;
	if (*streak >= max_long_streak && scx_bpf_dsq_nr_queued(SHORT_DSQ) > 0 &&
	    scx_bpf_dsq_move_to_local(SHORT_DSQ)) {
		*streak = 0;
		return;
	}
	if (scx_bpf_dsq_move_to_local(LONG_DSQ)) {
		*streak += 1;
		return;
	}
	if (scx_bpf_dsq_move_to_local(SHORT_DSQ))
		*streak = 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(longfirst_init)
{
	s32 ret = scx_bpf_create_dsq(LONG_DSQ, -1);

	if (ret) {
		scx_bpf_error("cannot create the long-task queue: %d", ret);
		return ret;
	}
	ret = scx_bpf_create_dsq(SHORT_DSQ, -1);
	if (ret)
		scx_bpf_error("cannot create the short-task queue: %d", ret);
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
