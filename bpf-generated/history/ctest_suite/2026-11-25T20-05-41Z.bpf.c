/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lf_ctest_suite: long-task-first scheduler for the `ctest_suite` case, synthesised offline by schedgen
 * from the case's profile (variant 1).
 *
 * The profile shows one long task among 39 short ones. The makespan is shortest when the long
 * task never waits, so its processes (recognised by name below) go to a queue that every CPU
 * serves first; the short tasks share what is left. A CPU that has served long tasks
 * 16 times in a row lets one waiting short task through, so nothing starves.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

#define LONG_DSQ	1
#define SHORT_DSQ	2
#define NR_LONG_NAMES	1

/* Slices: long enough that the long task rarely gives up its CPU; short tasks rotate. */
const volatile u64 long_slice_ns = 40ULL * 1000 * 1000;
const volatile u64 short_slice_ns = 10ULL * 1000 * 1000;
const volatile u32 max_long_streak = 16;

/* Process names (comm) of the long task, from the profile. */
static const char long_names[NR_LONG_NAMES][TASK_COMM_LEN] = {
	"long_integ_test",
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} long_streak SEC(".maps");

/*
 * is_long - whether @p runs under one of the long task's names.
 */
static __always_inline bool is_long(struct task_struct *p)
{
	char comm[TASK_COMM_LEN] = {};
	int i, j;

	bpf_probe_read_kernel_str(comm, sizeof(comm), p->comm);
	for (i = 0; i < NR_LONG_NAMES; i++) {
		bool same = true;

		for (j = 0; j < TASK_COMM_LEN; j++) {
			if (comm[j] != long_names[i][j]) {
				same = false;
				break;
			}
			if (!comm[j])
				break;
		}
		if (same)
			return true;
	}
	return false;
}

s32 BPF_STRUCT_OPS(lf_ctest_suite_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, is_long(p) ? long_slice_ns : short_slice_ns, 0);
	return cpu;
}

void BPF_STRUCT_OPS(lf_ctest_suite_enqueue, struct task_struct *p, u64 enq_flags)
{
	bool long_task = is_long(p);

	scx_bpf_dsq_insert(p, long_task ? LONG_DSQ : SHORT_DSQ,
			   long_task ? long_slice_ns : short_slice_ns, enq_flags);
}

void BPF_STRUCT_OPS(lf_ctest_suite_dispatch, s32 cpu, struct task_struct *prev)
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

s32 BPF_STRUCT_OPS_SLEEPABLE(lf_ctest_suite_init)
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

SCHEDGEN_EXIT_INFO(lf_ctest_suite)

SEC(".struct_ops.link")
struct sched_ext_ops lf_ctest_suite_ops = {
	.select_cpu	= (void *)lf_ctest_suite_select_cpu,
	.enqueue	= (void *)lf_ctest_suite_enqueue,
	.dispatch	= (void *)lf_ctest_suite_dispatch,
	.init		= (void *)lf_ctest_suite_init,
	.exit		= (void *)lf_ctest_suite_exit,
	.timeout_ms	= 5000,
	.name		= "lf_ctest_suite",
};
