/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedgen's task classifier, kernel half.
 *
 * Reports every exec, fork and exit of a process to userspace over a ring buffer; userspace
 * evaluates the workload's class rules on the exec'd image and writes the verdict into
 * schedgen_classes, the map it shares with the attached scheduler. A new process inherits
 * its parent's class here, at fork, so a pipeline's or a compiler driver's children are in
 * the right class before they first run.
 */
/*
 * Only the class map's header: the tracer also runs on a host whose kernel has no sched_ext
 * (to trace a profile's processes), where schedgen.bpf.h's sched_ext types do not exist.
 */
#include "schedgen_classes.bpf.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

char _license[] SEC("license") = "GPL";

/* Bytes of the argument block an exec event carries (a power of two). */
#define ARGS_MAX	1024

/* What a standard stream of an exec'd process is (stat's S_IF* file types). */
#define SCHEDGEN_S_IFMT		00170000
#define SCHEDGEN_S_IFREG	0100000
#define SCHEDGEN_S_IFIFO	0010000

enum schedgen_stream_kind {
	SCHEDGEN_STREAM_OTHER = 0,	/* closed, a terminal, a device, a socket */
	SCHEDGEN_STREAM_FILE = 1,
	SCHEDGEN_STREAM_PIPE = 2,
};

struct schedgen_stream {
	u32 kind;
	u32 _pad;
	u64 ino;
	u64 size;
};

enum schedgen_event_kind {
	SCHEDGEN_EV_EXEC = 1,
	SCHEDGEN_EV_FORK = 2,
	SCHEDGEN_EV_EXIT = 3,
};

/* One event; the layout is shared with src/classify/tracer.rs. */
struct schedgen_event {
	u32 kind;
	u32 tgid;
	u32 ppid;		/* the parent process (tgid) */
	u32 cur_class;		/* the class the process had when the event fired, 0 if none */
	u64 ts_ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	u64 cpu_ns;		/* exit: CPU time of the whole process */
	char comm[TASK_COMM_LEN];
	u32 args_len;
	u32 moves;		/* exit: moves between CPUs of the main thread */
	u64 switches;		/* exit: context switches of the main thread */
	u64 voluntary;		/* exit: of those, the ones where it gave up the CPU itself */
	struct schedgen_stream fds[2];	/* exec: its stdin and stdout */
	char args[ARGS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} schedgen_events SEC(".maps");

/* Events lost because the ring buffer was full (userspace reads it from .bss). */
volatile u64 nr_dropped;

static __always_inline struct schedgen_event *new_event(u32 kind, u32 tgid)
{
	struct schedgen_event *e;
	struct schedgen_task_class *c;

	e = bpf_ringbuf_reserve(&schedgen_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&nr_dropped, 1);
		return NULL;
	}
	c = bpf_map_lookup_elem(&schedgen_classes, &tgid);
	e->kind = kind;
	e->tgid = tgid;
	e->ppid = 0;
	e->cur_class = c ? c->id : 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->cpu_ns = 0;
	e->args_len = 0;
	e->moves = 0;
	e->switches = 0;
	e->voluntary = 0;
	__builtin_memset(e->fds, 0, sizeof(e->fds));
	return e;
}

/*
 * read_stream - what descriptor @fd of @p is. Read here rather than from /proc, where a short
 * process may already be gone when userspace gets to it.
 */
static __always_inline void read_stream(struct task_struct *p, u32 fd, struct schedgen_stream *s)
{
	struct fdtable *fdt = BPF_CORE_READ(p, files, fdt);
	struct file **fds, *f = NULL;
	struct inode *inode;
	u32 mode;

	if (!fdt || BPF_CORE_READ(fdt, max_fds) <= fd)
		return;
	fds = BPF_CORE_READ(fdt, fd);
	if (!fds || bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return;
	inode = BPF_CORE_READ(f, f_inode);
	if (!inode)
		return;
	mode = BPF_CORE_READ(inode, i_mode) & SCHEDGEN_S_IFMT;
	if (mode == SCHEDGEN_S_IFREG)
		s->kind = SCHEDGEN_STREAM_FILE;
	else if (mode == SCHEDGEN_S_IFIFO)
		s->kind = SCHEDGEN_STREAM_PIPE;
	else
		return;
	s->ino = BPF_CORE_READ(inode, i_ino);
	s->size = BPF_CORE_READ(inode, i_size);
}

/*
 * schedgen_on_exec - a process replaced its image: send its comm and arguments.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(schedgen_on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct schedgen_event *e;
	unsigned long start, end, len;

	e = new_event(SCHEDGEN_EV_EXEC, p->tgid);
	if (!e)
		return 0;
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->comm);
	start = BPF_CORE_READ(p, mm, arg_start);
	end = BPF_CORE_READ(p, mm, arg_end);
	len = end > start ? end - start : 0;
	if (len > ARGS_MAX - 1)
		len = ARGS_MAX - 1;
	len &= ARGS_MAX - 1;
	if (len && !bpf_probe_read_user(e->args, len, (void *)start))
		e->args_len = len;
	read_stream(p, 0, &e->fds[0]);
	read_stream(p, 1, &e->fds[1]);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/*
 * schedgen_on_fork - a new process inherits its parent's class; threads share theirs already.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(schedgen_on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct schedgen_task_class *c, inherited;
	struct schedgen_event *e;
	u32 ptgid = parent->tgid, ctgid = child->tgid;

	if (ctgid == ptgid)
		return 0;
	c = bpf_map_lookup_elem(&schedgen_classes, &ptgid);
	if (c) {
		inherited = *c;
		inherited.flags |= SCHEDGEN_CLASS_INHERITED;
		/*
		 * schedgen's own process counts as the longest work; what it starts is a task
		 * on its way to the exec that classifies it, and must not keep that.
		 */
		if (c->flags & SCHEDGEN_CLASS_SERVICE) {
			inherited.flags &= ~SCHEDGEN_CLASS_SERVICE;
			inherited.expected_ns = 0;
		}
		bpf_map_update_elem(&schedgen_classes, &ctgid, &inherited, BPF_ANY);
	}
	e = new_event(SCHEDGEN_EV_FORK, ctgid);
	if (!e)
		return 0;
	e->ppid = ptgid;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), parent->comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/*
 * schedgen_on_exit - a process ended: report its CPU time, how often it moved between CPUs
 * and was switched out, and forget its class. Moves are worth counting: under emulation a
 * long task that moved between the vCPUs ran measurably slower per CPU-second.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(schedgen_on_exit, struct task_struct *p)
{
	struct schedgen_event *e;
	u32 tgid = p->tgid;

	if (p->pid != p->tgid)
		return 0;
	e = new_event(SCHEDGEN_EV_EXIT, tgid);
	if (e) {
		e->ppid = BPF_CORE_READ(p, real_parent, tgid);
		e->cpu_ns = p->se.sum_exec_runtime + BPF_CORE_READ(p, signal, sum_sched_runtime);
		e->moves = p->se.nr_migrations;
		e->switches = p->nvcsw + p->nivcsw;
		e->voluntary = p->nvcsw;
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->comm);
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&schedgen_classes, &tgid);
	return 0;
}
