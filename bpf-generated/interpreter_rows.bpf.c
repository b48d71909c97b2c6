/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lpt_interpreter_rows: longest-expected-work-first scheduler for the `interpreter_rows` case, synthesised offline
 * by schedgen (variant 1) from the task classes its profile learned:
 *
 *   class 1 `long` (long tail): argv[3] is a number ≥ 160000 — expected 1.264 s CPU (1 task)
 *   class 2 `other`: any process — expected 0.027 s CPU (39 tasks)
 *
 * schedgen's classifier puts each process into its class at exec (children inherit it) and
 * records the class's expected CPU time, which schedgen_expected_ns() returns.
 * The long tail's expected CPU time is 47x the shortest class's: it gets the whole
 * head start as soon as the classifier has seen it exec.
 *
 * A long-tail task keeps a CPU to itself: it is queued on that CPU's own queue, keeps running
 * when its slice ends, and takes the CPU back from anything else when it wakes up. Moving it
 * would cost it more than waiting: on these machines a long task moved between CPUs ran
 * measurably slower. Every other task goes through one shared queue that the other CPUs serve,
 * ordered by a key: the time it was queued minus a head start proportional to its expected
 * CPU time (its class's share of the longest class's, times max_head_start_ns). A process not
 * yet through its own exec (still in the class it inherited) gets the whole head start for
 * its first young_ns of CPU, so that every task reaches the exec that identifies it quickly;
 * so do kernel threads, which have no class: the tasks wait on them.
 * A task whose slice runs out while nothing waits stays on its CPU, unless a long-tail task
 * holds it.
 *
 * Guards: a CPU stays a long-tail task's only while no other long-tail task ran there in the
 * last owner_ttl_ns, so two long tasks spread over two CPUs instead of sharing one; and once
 * the head of the shared queue has waited guard_ns past its head start, no long-tail task
 * keeps its CPU until it has run, so nothing waits much longer than the head start's cap.
 * The long tail's slice is short all the same (it is refilled when nothing else is queued on
 * its CPU): a CPU's own kernel threads wait for its end, and virtio-fs, for one, completes
 * its requests in a worker of the CPU that took the interrupt.
 */
#include "schedgen.bpf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	1
#define MAX_CPUS	1024

/* Slice of a task (ns); long-tail tasks get long_slice_ns. */
const volatile u64 slice_ns = 10ULL * 1000 * 1000;
const volatile u64 long_slice_ns = 20ULL * 1000 * 1000;
/* Largest head start a task's expected CPU time buys it in the queue (ns). */
const volatile u64 max_head_start_ns = 2000000000ULL;
/* CPU a process may use before its exec with the full head start (ns). */
const volatile u64 young_ns = 200ULL * 1000 * 1000;
/* How long the head of the shared queue may wait past its head start (ns). */
const volatile u64 guard_ns = 250ULL * 1000 * 1000;
/* How long a CPU stays a long-tail task's after it last ran there (ns). */
const volatile u64 owner_ttl_ns = 50ULL * 1000 * 1000;

/* The long-tail task that last ran on each CPU, and when. */
struct owner {
	u32 pid;
	u64 seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct owner);
} owners SEC(".maps");

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
 * own - record that long-tail task @p runs on its CPU.
 */
static __always_inline void own(const struct task_struct *p)
{
	u32 idx = scx_bpf_task_cpu(p);
	struct owner *o = bpf_map_lookup_elem(&owners, &idx);

	if (o && schedgen_is_long(p)) {
		o->pid = p->pid;
		o->seen = bpf_ktime_get_ns();
	}
}

s32 BPF_STRUCT_OPS(lpt_interpreter_rows_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	if (schedgen_is_long(p) && may_keep_cpu(p, prev_cpu))
		return prev_cpu;
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, schedgen_is_long(p) ? long_slice_ns : slice_ns, 0);
	return cpu;
}

void BPF_STRUCT_OPS(lpt_interpreter_rows_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p), idle;

	if (p->nr_cpus_allowed == 1) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, schedgen_is_long(p) ? long_slice_ns : slice_ns, enq_flags);
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
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, schedgen_is_long(p) ? long_slice_ns : slice_ns, enq_flags);
		return;
	}

	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, schedgen_is_long(p) ? long_slice_ns : slice_ns, task_key(p), enq_flags);
	idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (idle >= 0)
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	else if (schedgen_is_long(p))
		/* A long-tail task that has to queue takes a CPU back from a short one. */
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
}

/*
 * A long-tail task whose slice ran out keeps its CPU while the other CPUs serve the shared
 * queue; otherwise this CPU takes the task with the smallest key.
 */
void BPF_STRUCT_OPS(lpt_interpreter_rows_dispatch, s32 cpu, struct task_struct *prev)
{
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED) && schedgen_is_long(prev) &&
	    may_keep_cpu(prev, cpu)) {
		prev->scx.slice = long_slice_ns;
		return;
	}
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

void BPF_STRUCT_OPS(lpt_interpreter_rows_running, struct task_struct *p)
{
	own(p);
}

void BPF_STRUCT_OPS(lpt_interpreter_rows_tick, struct task_struct *p)
{
	own(p);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(lpt_interpreter_rows_init)
{
	s32 ret = scx_bpf_create_dsq(SHARED_DSQ, -1);

	if (ret)
		scx_bpf_error("cannot create the shared queue: %d", ret);
	return ret;
}

SCHEDGEN_EXIT_INFO(lpt_interpreter_rows)

SEC(".struct_ops.link")
struct sched_ext_ops lpt_interpreter_rows_ops = {
	.select_cpu	= (void *)lpt_interpreter_rows_select_cpu,
	.enqueue	= (void *)lpt_interpreter_rows_enqueue,
	.dispatch	= (void *)lpt_interpreter_rows_dispatch,
	.running	= (void *)lpt_interpreter_rows_running,
	.tick		= (void *)lpt_interpreter_rows_tick,
	.init		= (void *)lpt_interpreter_rows_init,
	.exit		= (void *)lpt_interpreter_rows_exit,
	.timeout_ms	= 5000,
	.name		= "lpt_interpreter_rows",
};
