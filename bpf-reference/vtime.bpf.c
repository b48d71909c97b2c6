/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vtime: weighted fair sharing by virtual time.
 *
 * Each task accumulates virtual time as it runs, scaled down by its weight (its nice value), and
 * the shared queue is ordered by virtual time, so the task that has had the least weighted CPU
 * runs next. This is the idea behind the kernel's own fair scheduler, written in a few lines: the
 * baseline that shows what sched_ext costs when it does nothing clever.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

/* The one user dispatch queue, ordered by virtual time. */
#define SHARED_DSQ 0

/* Largest virtual time any task has started running with: the system's "now". */
static u64 vtime_now;

static __always_inline bool vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

/*
 * vtime_select_cpu - pick a CPU for a waking task; if it is idle, run the task there directly.
 */
s32 BPF_STRUCT_OPS(vtime_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	return cpu;
}

/*
 * vtime_enqueue - queue @p by its virtual time. A task that slept gets at most one slice of
 * credit, so it cannot monopolise the CPU after a long sleep.
 */
void BPF_STRUCT_OPS(vtime_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;

	if (vtime_before(vtime, vtime_now - SCX_SLICE_DFL))
		vtime = vtime_now - SCX_SLICE_DFL;
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, SCX_SLICE_DFL, vtime, enq_flags);
}

/*
 * vtime_dispatch - give this CPU the task with the smallest virtual time.
 */
void BPF_STRUCT_OPS(vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

/*
 * vtime_running - advance the global clock to the virtual time of the task starting to run.
 */
void BPF_STRUCT_OPS(vtime_running, struct task_struct *p)
{
	if (vtime_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

/*
 * vtime_stopping - charge @p for the part of its slice it used, inversely to its weight.
 */
void BPF_STRUCT_OPS(vtime_stopping, struct task_struct *p, bool runnable)
{
	p->scx.dsq_vtime += (SCX_SLICE_DFL - p->scx.slice) * 100 / p->scx.weight;
}

/*
 * vtime_enable - a task joining the scheduler starts at the current virtual time.
 */
void BPF_STRUCT_OPS(vtime_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(vtime_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDGEN_EXIT_INFO(vtime)

SEC(".struct_ops.link")
struct sched_ext_ops vtime_ops = {
	.select_cpu	= (void *)vtime_select_cpu,
	.enqueue	= (void *)vtime_enqueue,
	.dispatch	= (void *)vtime_dispatch,
	.running	= (void *)vtime_running,
	.stopping	= (void *)vtime_stopping,
	.enable		= (void *)vtime_enable,
	.init		= (void *)vtime_init,
	.exit		= (void *)vtime_exit,
	.timeout_ms	= 5000,
	.name		= "schedgen_vtime",
};
