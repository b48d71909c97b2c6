/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedgen's task classes, for a scheduler in either dialect: schedgen.bpf.h includes it, and
 * a scheduler written against scx's headers includes it after <scx/common.bpf.h>:
 *
 *   #include <scx/common.bpf.h>
 *   #include "schedgen_classes.bpf.h"
 *
 *   schedgen_class_of(p)            the class schedgen's classifier gave @p's process, or NULL
 *   schedgen_expected_ns(p)         the CPU time a task of that class used in the profile (0
 *                                   when unclassified): order work by it, longest first
 *   schedgen_is_long(p)             whether that class is the workload's long tail
 *   schedgen_expected_share(p)      that expected time as a share of the longest class's, in
 *                                   1/1024ths: 1024 for the longest work, 0 when unclassified
 *   schedgen_is_kthread(p)          whether @p is a kernel thread (it has no class)
 *
 * schedgen's own process (the classifier that writes the map, and the runner that starts the
 * tasks) is in the map as the longest work, flagged SCHEDGEN_CLASS_SERVICE: a task must never
 * wait for its own classification behind tasks already classified. Kernel threads are not in
 * the map; the workload waits on them too (I/O completion, writeback), so a scheduler that
 * gives classified work a head start should give them the whole of it.
 */
#ifndef __SCHEDGEN_CLASSES_BPF_H
#define __SCHEDGEN_CLASSES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/*
 * Task classes. schedgen learns from a profile which processes form the long tail (by what
 * they run: comm, executable, arguments, input sizes) and, while a scheduler is attached,
 * classifies every process as it execs; a new process inherits its parent's class at fork.
 * The classifier shares this map with the scheduler, keyed by process (tgid).
 */
struct schedgen_task_class {
	u32 id;			/* the profile's class id, 1.. */
	u32 flags;		/* SCHEDGEN_CLASS_* */
	u64 expected_ns;	/* CPU a task of this class used in the profile */
};

#define SCHEDGEN_CLASS_LONG		1	/* the class is the long tail */
#define SCHEDGEN_CLASS_INHERITED	2	/* given by the parent or a pipe's writer, not a rule */
#define SCHEDGEN_CLASS_SERVICE		4	/* schedgen's own process; not inherited */
#define SCHEDGEN_MAX_CLASSIFIED		32768

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SCHEDGEN_MAX_CLASSIFIED);
	__type(key, u32);
	__type(value, struct schedgen_task_class);
} schedgen_classes SEC(".maps");

/*
 * schedgen_class_of - the class of @p's process, or NULL when it has none (yet).
 */
static __always_inline struct schedgen_task_class *schedgen_class_of(const struct task_struct *p)
{
	u32 tgid = p->tgid;

	return bpf_map_lookup_elem(&schedgen_classes, &tgid);
}

/*
 * schedgen_expected_ns - expected CPU time of @p's task, 0 when unclassified.
 */
static __always_inline u64 schedgen_expected_ns(const struct task_struct *p)
{
	struct schedgen_task_class *c = schedgen_class_of(p);

	return c ? c->expected_ns : 0;
}

/*
 * schedgen_is_long - whether @p belongs to the workload's long tail.
 */
static __always_inline bool schedgen_is_long(const struct task_struct *p)
{
	struct schedgen_task_class *c = schedgen_class_of(p);

	return c && (c->flags & SCHEDGEN_CLASS_LONG);
}

/*
 * The longest class's expected CPU time (ns). schedgen's loader sets it before load from the
 * classes the classifier uses; 0 when it runs without classes.
 */
const volatile u64 schedgen_longest_ns = 0;

/*
 * schedgen_expected_share - @p's expected CPU time as a share of the longest class's, in
 * 1/1024ths (1024 for a task of the longest class, 0 when unclassified or no class is known).
 * Scaling a priority by it orders work longest first whatever the workload's absolute times.
 */
static __always_inline u64 schedgen_expected_share(const struct task_struct *p)
{
	u64 expected = schedgen_expected_ns(p);
	u64 longest = schedgen_longest_ns;

	if (!longest)
		return 0;
	if (expected >= longest)
		return 1024;
	return expected / (longest / 1024 ? longest / 1024 : 1);
}

#ifndef PF_KTHREAD
#define PF_KTHREAD	0x00200000	/* include/linux/sched.h */
#endif

/*
 * schedgen_is_kthread - whether @p is a kernel thread.
 */
static __always_inline bool schedgen_is_kthread(const struct task_struct *p)
{
	return p->flags & PF_KTHREAD;
}

/*
 * schedgen_before_exec - whether @p has not exec'd since it was forked. Its class, if any, is
 * still the one it inherited, and the exec that may give it a class of its own is to come.
 * The kernel counts a process's execs and gives a child its parent's count at fork.
 */
static __always_inline bool schedgen_before_exec(const struct task_struct *p)
{
	return p->self_exec_id == p->parent_exec_id;
}

#endif /* __SCHEDGEN_CLASSES_BPF_H */
