/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fifo: one global first-in first-out queue.
 *
 * The smallest useful sched_ext scheduler: every runnable task goes to the kernel's global
 * dispatch queue with the default slice, and idle CPUs take tasks from it in arrival order. It
 * knows nothing about the workload, which makes it the baseline a smarter scheduler must beat.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

/*
 * fifo_enqueue - queue @p at the tail of the global DSQ.
 */
void BPF_STRUCT_OPS(fifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SCHEDGEN_EXIT_INFO(fifo)

SEC(".struct_ops.link")
struct sched_ext_ops fifo_ops = {
	.enqueue	= (void *)fifo_enqueue,
	.exit		= (void *)fifo_exit,
	.timeout_ms	= 5000,
	.name		= "schedgen_fifo",
};
