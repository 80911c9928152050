/* SPDX-License-Identifier: MIT */
/*
 * sched_source.c - provider "sched" (sched_source.h): per-thread files of
 * /proc read at a rate of their own, copied into every sweep's slots.
 *
 * Threads: the blocks are read by whichever thread sweeps their VM (one
 * at a time, as the engine hands a VM over), which alone touches the
 * entries' fds, values and due times; ks_sched_set_runner() from any
 * thread only stores the wanted thread, which the sweeping thread picks up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks_err.h"
#include "ks_time.h"
#include "sched_parse.h"
#include "sched_source.h"

/* Where each value lies in a vCPU's block; the VM's block is the first five. */
enum {
	W_RUN_NS, W_WAIT_NS, W_TIMESLICES, W_VOLUNTARY, W_INVOLUNTARY,
	W_LAST_CPU, W_THREAD_ID, W_THREAD_RUNS,
};
_Static_assert(W_THREAD_RUNS + 1 == KS_SCHED_VCPU_WORDS, "vCPU block words");
_Static_assert(W_INVOLUNTARY + 1 == KS_SCHED_VM_WORDS, "VM block words");

#define NS(n, w)	{ .name = n, .type = KS_TYPE_CUMULATIVE, .unit = KS_UNIT_SECONDS, \
			  .base = 10, .exponent = -9, .size = 1, .value_index = w }
#define COUNT(n, w)	{ .name = n, .type = KS_TYPE_CUMULATIVE, .unit = KS_UNIT_NONE, \
			  .base = 10, .size = 1, .value_index = w }

static const struct ks_seg_stat_def vcpu_stats[] = {
	NS("run_ns", W_RUN_NS),
	NS("wait_ns", W_WAIT_NS),
	COUNT("timeslices", W_TIMESLICES),
	COUNT("voluntary_switches", W_VOLUNTARY),
	COUNT("involuntary_switches", W_INVOLUNTARY),
	{ .name = "last_cpu", .type = KS_TYPE_INSTANT, .unit = KS_UNIT_NONE, .base = 10,
	  .size = 1, .value_index = W_LAST_CPU },
	{ .name = "thread_id", .type = KS_TYPE_INSTANT, .unit = KS_UNIT_NONE, .base = 10,
	  .size = 1, .value_index = W_THREAD_ID },
	{ .name = "thread_runs_vcpu", .type = KS_TYPE_INSTANT, .unit = KS_UNIT_BOOLEAN,
	  .base = 10, .size = 1, .value_index = W_THREAD_RUNS },
};
/* The VM's: the sums of the cumulative ones, which are the first five. */
static const struct ks_seg_stat_def *const vm_stats = vcpu_stats;

enum { F_SCHEDSTAT, F_STAT, F_STATUS, NR_FILES };
static const char *const file_names[NR_FILES] = { "schedstat", "stat", "status" };

struct sched_entry {
	struct ks_sched_vm *g;
	uint32_t vcpu_index;
	/* The thread to read: tid | runs << 32; stored by anyone, read by the sweeper. */
	_Atomic uint64_t want;
	/* The sweeper's own, below. */
	uint64_t followed;		/* the last want acted on */
	pid_t tid;			/* whose files fd[] are; 0: none */
	bool runs;
	bool have;			/* val[] holds a sample */
	bool block;			/* has a block: readable at first, or a runner may come */
	bool fresh;			/* the files are a thread not read yet: take_counters() */
	/* Cumulative words: val = off + the thread's counter; raw: the counter last read. */
	uint64_t off[KS_SCHED_VM_WORDS];
	uint64_t raw[KS_SCHED_VM_WORDS];
	bool warned;			/* the current failure was said */
	int err;			/* the last read's, 0 or a negative errno */
	int fd[NR_FILES];
	uint64_t due_ns;
	uint64_t val[KS_SCHED_VCPU_WORDS];
};

struct ks_sched_vm {
	atomic_uint refs;
	pid_t pid;
	uint64_t period_ns;
	char *vm_name;
	ks_log_fn warn;
	uint64_t sweep;			/* the last sweep refreshed */
	uint64_t sum[KS_SCHED_VM_WORDS];	/* the VM's: see add_to_sum() */
	uint32_t nr;
	struct sched_entry *e;
	/* status is the longest file: about 1.5 KiB, more with many CPUs in its masks. */
	char buf[16384];
};

static uint64_t
want_of(pid_t tid, bool runs)
{
	return (uint64_t)(uint32_t)tid | (uint64_t)runs << 32;
}

static void
close_files(struct sched_entry *e)
{
	for (int f = 0; f < NR_FILES; f++) {
		if (e->fd[f] >= 0)
			close(e->fd[f]);
		e->fd[f] = -1;
	}
	e->tid = 0;
}

/* Open @tid's files; on error none stays open and *@why says which failed. */
static int
open_files(struct sched_entry *e, pid_t tid, char *why, size_t len)
{
	char path[96];

	close_files(e);
	for (int f = 0; f < NR_FILES; f++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)e->g->pid, (int)tid,
			 file_names[f]);
		e->fd[f] = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (e->fd[f] < 0) {
			int ret = -errno;

			snprintf(why, len, "%s: %s%s", path, strerror(errno),
				 ret == -ENOENT ? " (no such thread in that process)" : "");
			close_files(e);
			return ret;
		}
	}
	e->tid = tid;
	e->fresh = true;
	return 0;
}

/* One file's text into g->buf; its length, or a negative errno. */
static ssize_t
read_file(struct ks_sched_vm *g, int fd)
{
	ssize_t n = pread(fd, g->buf, sizeof(g->buf), 0);

	if (n < 0)
		return -errno;
	if ((size_t)n == sizeof(g->buf))
		return -E2BIG;		/* cut: what we need may lie past the end */
	return n;
}

/*
 * Does @e count for the VM's sums: is it the first entry on its thread?
 * (The simulated VM's one thread runs every vCPU: counted once.)
 */
static bool
owns_thread(const struct sched_entry *e)
{
	const struct ks_sched_vm *g = e->g;

	for (const struct sched_entry *o = g->e; o < e; o++)
		if (o->tid == e->tid)
			return false;
	return true;
}

/*
 * The VM's sums grow by what each thread added since its last read, each
 * thread once (owns_thread()); a vCPU moving to another thread adds
 * nothing at the switch (its values stay where they were), so the sums
 * never go back, whichever threads come and go, and a thread that exited
 * keeps what it added.
 */
static void
add_to_sum(struct sched_entry *e, const uint64_t *delta)
{
	if (!owns_thread(e))
		return;
	for (uint32_t w = 0; w < KS_SCHED_VM_WORDS; w++)
		e->g->sum[w] += delta[w];
}

/*
 * The counters of @e's thread, @now, into e->val.  The cumulative values
 * are the vCPU's, not the thread's: when the files are a thread read for
 * the first time (a runner named, or the vCPU moved on), the vCPU's values
 * carry on from its last published ones (off = last - counter), so they
 * never go back or jump; they start at the counter itself only if nothing
 * was published before.  (Time the old thread ran after its last read is
 * lost, up to one period: undercounted, never counted twice.)
 */
static void
take_counters(struct sched_entry *e, const uint64_t *now)
{
	uint64_t delta[KS_SCHED_VM_WORDS];

	for (uint32_t w = 0; w < KS_SCHED_VM_WORDS; w++) {
		if (!e->fresh)
			delta[w] = now[w] >= e->raw[w] ? now[w] - e->raw[w] : 0;
		else if (e->have)
			delta[w] = 0;
		else
			delta[w] = now[w];
		if (e->fresh)
			e->off[w] = e->have ? e->val[w] - now[w] : 0;	/* modulo 2^64 */
		e->raw[w] = now[w];
		e->val[w] = e->off[w] + now[w];
	}
	e->fresh = false;
	add_to_sum(e, delta);
}

/* Read @e's three files into e->val; a negative errno with *@why on failure. */
static int
read_entry(struct sched_entry *e, const char **why)
{
	struct ks_sched_vm *g = e->g;
	uint64_t ss[3], cpu, vol, invol;
	ssize_t n;
	int ret;

	*why = NULL;
	if ((n = read_file(g, e->fd[F_SCHEDSTAT])) < 0)
		return (int)n;
	if ((ret = ks_sched_parse_schedstat(g->buf, (size_t)n, ss, why)) < 0)
		return ret;
	if ((n = read_file(g, e->fd[F_STAT])) < 0)
		return (int)n;
	if ((ret = ks_sched_parse_stat_cpu(g->buf, (size_t)n, &cpu, why)) < 0)
		return ret;
	if ((n = read_file(g, e->fd[F_STATUS])) < 0)
		return (int)n;
	if ((ret = ks_sched_parse_status(g->buf, (size_t)n, &vol, &invol, why)) < 0)
		return ret;
	take_counters(e, (const uint64_t[KS_SCHED_VM_WORDS]) {
		[W_RUN_NS] = ss[0], [W_WAIT_NS] = ss[1], [W_TIMESLICES] = ss[2],
		[W_VOLUNTARY] = vol, [W_INVOLUNTARY] = invol,
	});
	e->val[W_LAST_CPU] = cpu;
	e->val[W_THREAD_ID] = (uint64_t)e->tid;
	e->val[W_THREAD_RUNS] = e->runs;
	e->have = true;
	return 0;
}

static void
say_failure(struct sched_entry *e, pid_t tid, const char *what)
{
	if (e->warned)
		return;
	e->warned = true;
	ks_logf(e->g->warn, "VM %s vCPU %u: sched stats of thread %d: %s; its slots are "
		"stale until the thread can be read again", e->g->vm_name, e->vcpu_index,
		(int)tid, what);
}

/*
 * A read failed.  The thread exited (ESRCH: the fds name it, not its
 * number, so it never comes back): its files are closed and the vCPU stays
 * stale until another thread is named for it.
 */
static void
entry_failed(struct sched_entry *e, int ret, const char *why)
{
	char what[160];

	e->err = ret;
	if (ret == -ESRCH)
		snprintf(what, sizeof(what), "the thread exited");
	else
		snprintf(what, sizeof(what), "%s", why ? why : strerror(-ret));
	say_failure(e, e->tid, what);
	if (ret == -ESRCH)
		close_files(e);
}

static void
read_and_note(struct sched_entry *e)
{
	const char *why;
	int ret;

	if (e->tid == 0)
		return;			/* gone, or never opened: e->err says why */
	ret = read_entry(e, &why);
	if (ret < 0) {
		entry_failed(e, ret, why);
		return;
	}
	e->err = 0;
	e->warned = false;
}

/* Someone named another thread (or said it runs the vCPU): follow it now. */
static void
follow_want(struct sched_entry *e, uint64_t want)
{
	pid_t tid = (pid_t)(uint32_t)want;
	char why[200];
	int ret;

	e->runs = (want >> 32) & 1;
	if (tid == e->tid && tid != 0)
		return;			/* the same thread, now known to run the vCPU */
	e->warned = false;
	ret = open_files(e, tid, why, sizeof(why));
	if (ret < 0) {
		e->err = ret;
		say_failure(e, tid, why);
	}
}

/* Once per sweep, on its first block: read the threads that are due. */
static void
refresh(struct ks_sched_vm *g, uint64_t sweep)
{
	uint64_t now;

	if (sweep == g->sweep)
		return;
	g->sweep = sweep;
	now = ks_mono_ns();
	for (uint32_t i = 0; i < g->nr; i++) {
		struct sched_entry *e = &g->e[i];
		uint64_t want = atomic_load_explicit(&e->want, memory_order_relaxed);

		if (want != e->followed) {
			e->followed = want;
			follow_want(e, want);
			e->due_ns = now;
		}
		if (now < e->due_ns)
			continue;
		read_and_note(e);
		e->due_ns += g->period_ns;
		/* Late: no burst to catch up, but the same phase, so the stagger stays. */
		if (e->due_ns <= now)
			e->due_ns += ((now - e->due_ns) / g->period_ns + 1) * g->period_ns;
	}
}

static void
store_words(_Atomic uint64_t *dst, const uint64_t *src, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		atomic_store_explicit(&dst[i], src[i], memory_order_relaxed);
}

static int
vcpu_read(void *ctx, _Atomic uint64_t *dst, uint32_t words, uint64_t sweep)
{
	struct sched_entry *e = ctx;

	if (words != KS_SCHED_VCPU_WORDS)
		return -EINVAL;
	refresh(e->g, sweep);
	if (e->err < 0)
		return e->err;
	if (!e->have)
		return -EAGAIN;
	store_words(dst, e->val, KS_SCHED_VCPU_WORDS);
	return 0;
}

static int
vm_read(void *ctx, _Atomic uint64_t *dst, uint32_t words, uint64_t sweep)
{
	struct ks_sched_vm *g = ctx;

	if (words != KS_SCHED_VM_WORDS)
		return -EINVAL;
	refresh(g, sweep);
	store_words(dst, g->sum, KS_SCHED_VM_WORDS);
	return 0;
}

struct ks_sched_vm *
ks_sched_vm_get(struct ks_sched_vm *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void
ks_sched_vm_put(struct ks_sched_vm *s)
{
	if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (uint32_t i = 0; i < s->nr; i++)
		close_files(&s->e[i]);
	free(s->e);
	free(s->vm_name);
	free(s);
}

static void
vcpu_release(void *ctx)
{
	ks_sched_vm_put(((struct sched_entry *)ctx)->g);
}

static void
vm_release(void *ctx)
{
	ks_sched_vm_put(ctx);
}

static const struct ks_source_ops vcpu_ops = { .read = vcpu_read, .release = vcpu_release };
static const struct ks_source_ops vm_ops = { .read = vm_read, .release = vm_release };

bool
ks_sched_vcpu_block(struct ks_sched_vm *s, uint32_t i, struct ks_block_def *out)
{
	if (i >= s->nr || !s->e[i].block)
		return false;
	*out = (struct ks_block_def) {
		.provider = KS_SCHED_PROVIDER,
		.nr_stats = sizeof(vcpu_stats) / sizeof(vcpu_stats[0]),
		.stats = vcpu_stats,
		.words = KS_SCHED_VCPU_WORDS,
		.ops = &vcpu_ops,
		.ctx = &ks_sched_vm_get(s)->e[i],
	};
	return true;
}

void
ks_sched_vm_block(struct ks_sched_vm *s, struct ks_block_def *out)
{
	*out = (struct ks_block_def) {
		.provider = KS_SCHED_PROVIDER,
		.nr_stats = KS_SCHED_VM_WORDS,
		.stats = vm_stats,
		.words = KS_SCHED_VM_WORDS,
		.ops = &vm_ops,
		.ctx = ks_sched_vm_get(s),
	};
}

int
ks_sched_set_runner(struct ks_sched_vm *s, uint32_t vcpu_index, pid_t tid)
{
	if (tid <= 0)
		return -EINVAL;
	for (uint32_t i = 0; i < s->nr; i++)
		if (s->e[i].vcpu_index == vcpu_index && s->e[i].block) {
			atomic_store_explicit(&s->e[i].want, want_of(tid, true),
					      memory_order_relaxed);
			return 0;
		}
	return -ENOENT;
}

/*
 * Open and read thread @t once; false (said through @warn) if it cannot be
 * read.  @later: a runner may still be named, so the vCPU keeps a block,
 * stale (e->err) until then.
 */
static bool
first_read(struct sched_entry *e, const struct ks_sched_thread *t, bool later)
{
	const char *then = later ? "sched stats stale until the thread that runs it is seen"
				 : "no sched stats";
	char why[200];
	const char *pwhy;
	int ret;

	e->block = later;
	if (t->tid <= 0) {
		ks_logf(e->g->warn, "VM %s vCPU %u: %s: no thread is known for it",
			e->g->vm_name, e->vcpu_index, then);
		e->err = -ESRCH;
		return false;
	}
	ret = open_files(e, t->tid, why, sizeof(why));
	if (ret == 0 && (ret = read_entry(e, &pwhy)) < 0)
		snprintf(why, sizeof(why), "/proc/%d/task/%d: %s", (int)e->g->pid, (int)t->tid,
			 pwhy ? pwhy : strerror(-ret));
	if (ret < 0) {
		ks_logf(e->g->warn, "VM %s vCPU %u: %s: %s", e->g->vm_name, e->vcpu_index, then,
			why);
		close_files(e);
		e->have = false;
		e->err = ret;
		return false;
	}
	e->block = true;
	return true;
}

int
ks_sched_vm_create(pid_t pid, unsigned hz, const char *vm_name, ks_log_fn warn,
		   const struct ks_sched_thread *threads, uint32_t nr, bool later,
		   struct ks_sched_vm **out, struct kvmstats_error *err)
{
	struct ks_sched_vm *g;
	uint32_t readable = 0;
	uint64_t now = ks_mono_ns();

	if (hz < 1 || hz > KS_SCHED_HZ_MAX)
		return ks_err(err, -EINVAL, "sched stats rate %u Hz out of range: use 1 to %u",
			      hz, KS_SCHED_HZ_MAX);
	if (pid <= 0 || nr == 0)
		return ks_err(err, -EINVAL, "VM %s: no process or no threads for sched stats",
			      vm_name);
	g = calloc(1, sizeof(*g));
	if (g == NULL || (g->e = calloc(nr, sizeof(*g->e))) == NULL ||
	    (g->vm_name = strdup(vm_name)) == NULL) {
		if (g)
			free(g->e);
		free(g);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	atomic_init(&g->refs, 1);
	g->pid = pid;
	g->period_ns = KS_NSEC_PER_SEC / hz;
	g->warn = warn;
	g->nr = nr;
	for (uint32_t i = 0; i < nr; i++) {
		struct sched_entry *e = &g->e[i];

		e->g = g;
		e->vcpu_index = threads[i].vcpu_index;
		for (int f = 0; f < NR_FILES; f++)
			e->fd[f] = -1;
		e->runs = threads[i].runs;
		/* Each thread at its own phase: the reads spread over the period's sweeps. */
		e->due_ns = now + g->period_ns * i / nr;
		if (first_read(e, &threads[i], later))
			readable++;
		e->followed = want_of(e->tid, e->runs);
		atomic_init(&e->want, e->followed);
	}
	if (readable == 0 && !later) {
		ks_sched_vm_put(g);
		return ks_err(err, -ENOENT, "VM %s: no vCPU thread's sched stats can be read "
			      "(/proc/%d/task/...)", vm_name, (int)pid);
	}
	*out = g;
	return 0;
}

int
ks_sched_available(struct kvmstats_error *err)
{
	const char *path = "/proc/thread-self/schedstat", *why;
	char buf[128];
	uint64_t v[3];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return ks_err(err, -errno, "no sched stats: %s: %s%s", path, strerror(errno),
			      errno == ENOENT ? " (a kernel without CONFIG_SCHED_INFO)" : "");
	n = read(fd, buf, sizeof(buf));
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (ret < 0)
		return ks_err(err, ret, "no sched stats: %s: %s", path, strerror(-ret));
	if (ks_sched_parse_schedstat(buf, (size_t)n, v, &why) < 0)
		return ks_err(err, -EBADMSG, "no sched stats: %s: %s", path, why);
	/* This thread has run to get here: zeros mean the kernel keeps no sched_info. */
	if (v[0] == 0 && v[2] == 0)
		return ks_err(err, -ENOTSUP, "no sched stats: %s reads \"0 0 0\": the kernel keeps "
			      "no per-task sched_info (built without CONFIG_SCHEDSTATS, and delay "
			      "accounting off: boot with delayacct, or sysctl kernel.task_delayacct=1)",
			      path);
	return 0;
}
