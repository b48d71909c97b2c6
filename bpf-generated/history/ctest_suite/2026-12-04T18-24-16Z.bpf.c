/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lpt_ctest_suite: longest-expected-work-first scheduler for the `ctest_suite` case, synthesised offline
 * by schedgen (variant 1) from the task classes its profile learned:
 *
 *   class 1 `long` (long tail): comm is `long_integ_test` — expected 2.314 s CPU (1 task)
 *   class 2 `other`: any process — expected 0.042 s CPU (39 tasks)
 *
 * schedgen's classifier puts each process into its class at exec (children inherit it) and
 * records the class's expected CPU time, which schedgen_expected_ns() returns.
 * The long tail's expected CPU time is 55x the shortest class's: it gets the whole
 * head start as soon as the classifier has seen it exec.
 *
 * One queue ordered by a key: the time a task was queued minus a head start proportional to
 * its expected CPU time, the longest class getting all of max_head_start_ns
 * (schedgen_expected_share()). The cap is the starvation guard: a task that has waited longer
 * than the cap goes before any task queued after it. A process not yet through its own exec
 * (still in the class it inherited) gets the whole head start for its first young_ns of CPU,
 * so that every task reaches the exec that identifies it quickly. So do kernel threads, which
 * have no class: the tasks wait on them (I/O completion, writeback).
 * The long tail runs with long slices, and a long-tail task that has to queue preempts
 * whatever runs on its CPU; everything else rotates with short slices.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	1

/* Slice of a task (ns); long-tail tasks get long_slice_ns. */
const volatile u64 slice_ns = 10ULL * 1000 * 1000;
const volatile u64 long_slice_ns = 80ULL * 1000 * 1000;
/* Largest head start a task's expected CPU time buys it in the queue (ns). */
const volatile u64 max_head_start_ns = 2000000000ULL;
/* CPU a process may use before its exec with the full head start (ns). */
const volatile u64 young_ns = 200ULL * 1000 * 1000;

/*
 * task_key - queue position of @p: now, minus a head start that is its class's share of
 * the longest class's expected CPU time, times the cap.
 */
static __always_inline u64 task_key(const struct task_struct *p)
{
	struct schedgen_task_class *c = schedgen_class_of(p);
	u64 head = 0;

	if (schedgen_is_kthread(p))
		head = max_head_start_ns;
	else if (c && (c->flags & SCHEDGEN_CLASS_INHERITED) &&
		 p->se.sum_exec_runtime < young_ns)
		head = max_head_start_ns;
	else if (c)
		head = schedgen_expected_share(p) * (max_head_start_ns / 1024);
	return bpf_ktime_get_ns() - head;
}

s32 BPF_STRUCT_OPS(lpt_ctest_suite_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, schedgen_is_long(p) ? long_slice_ns : slice_ns, 0);
	return cpu;
}

void BPF_STRUCT_OPS(lpt_ctest_suite_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, schedgen_is_long(p) ? long_slice_ns : slice_ns, task_key(p), enq_flags);

	/* A long-tail task that has to queue takes a CPU back from a short one. */
	if (schedgen_is_long(p))
		scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_PREEMPT);
}

void BPF_STRUCT_OPS(lpt_ctest_suite_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(lpt_ctest_suite_init)
{
	s32 ret = scx_bpf_create_dsq(SHARED_DSQ, -1);

	if (ret)
		scx_bpf_error("cannot create the shared queue: %d", ret);
	return ret;
}

SCHEDGEN_EXIT_INFO(lpt_ctest_suite)

SEC(".struct_ops.link")
struct sched_ext_ops lpt_ctest_suite_ops = {
	.select_cpu	= (void *)lpt_ctest_suite_select_cpu,
	.enqueue	= (void *)lpt_ctest_suite_enqueue,
	.dispatch	= (void *)lpt_ctest_suite_dispatch,
	.init		= (void *)lpt_ctest_suite_init,
	.exit		= (void *)lpt_ctest_suite_exit,
	.timeout_ms	= 5000,
	.name		= "lpt_ctest_suite",
};
