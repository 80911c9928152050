/* SPDX-License-Identifier: MIT */
/*
 * test_sched.c - provider "sched": the parsers of /proc's per-thread text
 * (publisher/sched/sched_parse.c) on good, odd and hostile input, and the
 * source (sched_source.c) through the builder, the engine and the reader
 * library, against threads of this process whose behaviour the test
 * controls: a busy thread's run time grows, a thread that shares its CPU
 * with another busy one waits, a thread that exits leaves its vCPU's slots
 * stale, a runner named later replaces the creator.  Every wait is for a
 * condition, with a deadline; none is for a time.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "kvmstats/reader.h"
#include "ks_shmdir.h"
#include "ks_time.h"
#include "log_capture.h"
#include "sched_parse.h"
#include "sched_source.h"
#include "sim_vm.h"
#include "vm_builder.h"

#define DEADLINE_NS	(60 * KS_NSEC_PER_SEC)

/* ---- the parsers ---------------------------------------------------------- */

static int
schedstat(const char *s, uint64_t v[3])
{
	const char *why = NULL;
	int ret = ks_sched_parse_schedstat(s, strlen(s), v, &why);

	assert_true(ret == 0 || (ret == -EBADMSG && why != NULL));
	return ret;
}

static void
parse_schedstat(void **state)
{
	uint64_t v[3];

	(void)state;
	assert_int_equal(schedstat("176825 1893123 2\n", v), 0);
	assert_true(v[0] == 176825 && v[1] == 1893123 && v[2] == 2);
	assert_int_equal(schedstat("18446744073709551615 0 0", v), 0);	/* no newline: fine */
	assert_true(v[0] == UINT64_MAX);
	assert_int_equal(schedstat("18446744073709551616 0 0\n", v), -EBADMSG);	/* 2^64 */
	assert_int_equal(schedstat("1 2\n", v), -EBADMSG);
	assert_int_equal(schedstat("1 2 3 4\n", v), -EBADMSG);
	assert_int_equal(schedstat("1  2 3\n", v), -EBADMSG);
	assert_int_equal(schedstat("-1 2 3\n", v), -EBADMSG);
	assert_int_equal(schedstat("1 2 3\n\n", v), -EBADMSG);
	assert_int_equal(schedstat("", v), -EBADMSG);
}

/* A stat line whose field 39 is @cpu, with comm @comm. */
static void
stat_line(char *buf, size_t len, const char *comm, const char *cpu)
{
	int n = snprintf(buf, len, "4242 (%s) S", comm);

	for (int f = 4; f < KS_SCHED_STAT_PROCESSOR_FIELD; f++)
		n += snprintf(buf + n, len - (size_t)n, " %d", f == 19 ? -5 : f);
	snprintf(buf + n, len - (size_t)n, " %s 0 0 0 0 0 0 0 0 0 0 0 0 0\n", cpu);
}

static int
stat_cpu(const char *s, uint64_t *cpu)
{
	const char *why = NULL;
	int ret = ks_sched_parse_stat_cpu(s, strlen(s), cpu, &why);

	assert_true(ret == 0 || (ret == -EBADMSG && why != NULL));
	return ret;
}

static void
parse_stat(void **state)
{
	char buf[512];
	uint64_t cpu = 99;

	(void)state;
	stat_line(buf, sizeof(buf), "CPU 0/KVM", "7");
	assert_int_equal(stat_cpu(buf, &cpu), 0);
	assert_int_equal(cpu, 7);
	/* A comm that fakes the end of itself and other fields: the last ')' counts. */
	stat_line(buf, sizeof(buf), "x) R 1 2 3 4 5 (", "3");
	assert_int_equal(stat_cpu(buf, &cpu), 0);
	assert_int_equal(cpu, 3);
	stat_line(buf, sizeof(buf), "a\nb", "1");
	assert_int_equal(stat_cpu(buf, &cpu), 0);
	assert_int_equal(cpu, 1);
	stat_line(buf, sizeof(buf), "vcpu", "-1");
	assert_int_equal(stat_cpu(buf, &cpu), -EBADMSG);
	stat_line(buf, sizeof(buf), "vcpu", "4294967296");
	assert_int_equal(stat_cpu(buf, &cpu), -EBADMSG);
	stat_line(buf, sizeof(buf), "vcpu", "2x");
	assert_int_equal(stat_cpu(buf, &cpu), -EBADMSG);
	/* Cut short before field 39, and no comm at all. */
	assert_int_equal(stat_cpu("4242 (vcpu) S 1 2 3\n", &cpu), -EBADMSG);
	assert_int_equal(stat_cpu("4242 vcpu S 1 2 3\n", &cpu), -EBADMSG);
	assert_int_equal(stat_cpu(")", &cpu), -EBADMSG);
}

static int
status(const char *s, uint64_t *vol, uint64_t *invol)
{
	const char *why = NULL;
	int ret = ks_sched_parse_status(s, strlen(s), vol, invol, &why);

	assert_true(ret == 0 || (ret == -EBADMSG && why != NULL));
	return ret;
}

static void
parse_status(void **state)
{
	uint64_t vol = 0, invol = 0;

	(void)state;
	assert_int_equal(status("Name:\tCPU 0/KVM\nState:\tS (sleeping)\n"
				"voluntary_ctxt_switches:\t12\n"
				"nonvoluntary_ctxt_switches:\t34\n", &vol, &invol), 0);
	assert_true(vol == 12 && invol == 34);
	/* Last line without its newline. */
	assert_int_equal(status("voluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t2",
				&vol, &invol), 0);
	assert_true(vol == 1 && invol == 2);
	/* A key only counts at the start of a line (the kernel escapes a comm's newline). */
	assert_int_equal(status("Name:\tx voluntary_ctxt_switches:\t9\n"
				"voluntary_ctxt_switches:\t1\n"
				"nonvoluntary_ctxt_switches:\t2\n", &vol, &invol), 0);
	assert_int_equal(vol, 1);
	assert_int_equal(status("voluntary_ctxt_switches:\t1\n", &vol, &invol), -EBADMSG);
	assert_int_equal(status("voluntary_ctxt_switches:\t1\nvoluntary_ctxt_switches:\t1\n"
				"nonvoluntary_ctxt_switches:\t2\n", &vol, &invol), -EBADMSG);
	assert_int_equal(status("voluntary_ctxt_switches:\tx\n"
				"nonvoluntary_ctxt_switches:\t2\n", &vol, &invol), -EBADMSG);
	assert_int_equal(status("voluntary_ctxt_switches:\t1 2\n"
				"nonvoluntary_ctxt_switches:\t2\n", &vol, &invol), -EBADMSG);
	assert_int_equal(status("", &vol, &invol), -EBADMSG);
}

static void
creator_of(void **state)
{
	(void)state;
	assert_int_equal(ks_sched_creator_of("kvm-1234/vcpu-0"), 1234);
	assert_int_equal(ks_sched_creator_of("kvm-1234"), 0);		/* a VM's */
	assert_int_equal(ks_sched_creator_of("kvm-/vcpu-0"), 0);
	assert_int_equal(ks_sched_creator_of("kvm-0/vcpu-0"), 0);
	assert_int_equal(ks_sched_creator_of("kvm-99999999999/vcpu-0"), 0);
	assert_int_equal(ks_sched_creator_of("qemu-12/vcpu-0"), 0);
	assert_int_equal(ks_sched_creator_of("kvm-12x/vcpu-0"), 0);
}

/* ---- threads the test controls -------------------------------------------- */

struct worker {
	pthread_t thread;
	_Atomic pid_t tid;
	atomic_bool stop;
	int cpu;			/* -1: anywhere */
};

static void *
spin(void *arg)
{
	struct worker *w = arg;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			fail_msg("sched_setaffinity: %s", strerror(errno));
	}
	atomic_store(&w->tid, gettid());
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed))
		;
	return NULL;
}

static void
worker_start(struct worker *w, int cpu)
{
	memset(w, 0, sizeof(*w));
	w->cpu = cpu;
	assert_int_equal(pthread_create(&w->thread, NULL, spin, w), 0);
	while (atomic_load(&w->tid) == 0)
		sched_yield();
}

static void
worker_stop(struct worker *w)
{
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
}

/* ---- a simulated VM with sched blocks, swept by hand ---------------------- */

struct rig {
	struct ks_sim_vm *sim;
	struct ks_engine *e;
	struct ks_sched_vm *sched;
	struct kvmstats_segment *seg;
};

/*
 * A VM of @vcpus simulated vCPUs whose threads are @runners (tid 0: the
 * creator from the id, which is this process's main thread, as the
 * simulated ids say kvm-<pid>).  Sched reads at 1 kHz, so that the test's
 * sweeps find them due.
 */
static void
rig_open(struct rig *r, unsigned vcpus, const struct ks_sched_thread *runners, uint32_t nr)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_fd_target fds[1 + 4];
	struct ks_vm_build b;
	struct ks_vm_sched how = {
		.pid = getpid(), .hz = KS_SCHED_HZ_MAX, .runners = runners, .nr_runners = nr,
		.warn = log_capture_line,
	};

	assert_true(vcpus <= 4);
	memset(r, 0, sizeof(*r));
	assert_int_equal(ks_sim_vm_create(vcpus, &r->sim, &err), 0);
	for (unsigned i = 0; i <= vcpus; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = i ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = i ? i - 1 : KS_VCPU_INDEX_NONE,
			.fd = ks_sim_vm_stats_fd(r->sim, (int)i - 1),
		};
	ks_engine_config_init(&cfg);
	cfg.hz = 1000;
	if (ks_engine_create(&cfg, &r->e, &err) < 0 ||
	    ks_vm_build(NULL, fds, vcpus + 1, NULL, &b, &err) < 0)
		fail_msg("setup: %s", err.msg);
	if (ks_vm_build_add_sched(&b, &how, &r->sched, &err) < 0)
		fail_msg("sched: %s", err.msg);
	if (ks_engine_add_vm(r->e, &b.def, NULL, &err) < 0)
		fail_msg("add: %s", err.msg);
	ks_vm_build_clear(&b, true);
	if (kvmstats_attach(ks_sim_vm_name(r->sim), NULL, &r->seg, &err) < 0)
		fail_msg("attach: %s", err.msg);
}

static void
rig_close(struct rig *r)
{
	kvmstats_detach(&r->seg);
	ks_sched_vm_put(r->sched);
	ks_engine_destroy(&r->e);
	ks_sim_vm_destroy(&r->sim);
}

static uint64_t
value(const struct rig *r, unsigned target, const char *name, struct kvmstats_sample *smp)
{
	struct kvmstats_stat_handle h;
	uint64_t v;

	if (kvmstats_stat_lookup(r->seg, target, "sched", name, &h) < 0)
		fail_msg("target %u has no sched stat %s", target, name);
	assert_int_equal(kvmstats_read_scalar(r->seg, &h, &v, smp), 0);
	return v;
}

/* One sweep, a millisecond after the last: sched reads at 1 kHz are then due. */
static void
sweep(struct rig *r)
{
	struct timespec ms = { 0, 1000 * 1000 };

	nanosleep(&ms, NULL);
	assert_int_equal(ks_engine_sweep(r->e), 0);
}

/* Sweep until target @t's sched stat @name is at least @want; false at the deadline. */
static bool
sweep_until_at_least(struct rig *r, unsigned t, const char *name, uint64_t want)
{
	uint64_t end = ks_mono_ns() + DEADLINE_NS;

	while (ks_mono_ns() < end) {
		sweep(r);
		if (value(r, t, name, NULL) >= want)
			return true;
	}
	return false;
}

static void
schema_has_sched(void **state)
{
	static const struct { const char *name; unsigned type, unit; int exp; } want[] = {
		{ "run_ns", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_SECONDS, -9 },
		{ "wait_ns", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_SECONDS, -9 },
		{ "timeslices", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_NONE, 0 },
		{ "voluntary_switches", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_NONE, 0 },
		{ "involuntary_switches", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_NONE, 0 },
		{ "last_cpu", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_NONE, 0 },
		{ "thread_id", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_NONE, 0 },
		{ "thread_runs_vcpu", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_BOOLEAN, 0 },
	};
	struct rig r;
	int p;

	(void)state;
	rig_open(&r, 2, NULL, 0);
	assert_int_equal(kvmstats_nr_providers(r.seg), 2);
	assert_string_equal(kvmstats_provider(r.seg, 0)->name, "kvm");
	p = kvmstats_provider_lookup(r.seg, "sched");
	assert_int_equal(p, 1);
	for (unsigned t = 0; t < 3; t++) {
		unsigned n = t ? 8 : 5, got = 0;	/* the VM: the five sums */

		for (unsigned j = 0; j < kvmstats_target(r.seg, t)->nr_stats; j++) {
			const struct kvmstats_stat_info *si = kvmstats_target_stat(r.seg, t, j);

			if (si->provider != (unsigned)p)
				continue;
			assert_string_equal(si->name, want[got].name);
			assert_int_equal(si->type, want[got].type);
			assert_int_equal(si->unit, want[got].unit);
			assert_int_equal(si->exponent, want[got].exp);
			assert_int_equal(si->base, 10);
			assert_int_equal(si->size, 1);
			got++;
		}
		assert_int_equal(got, n);
	}
	/* No runner named: each vCPU's thread is its creator, this process's main thread. */
	assert_int_equal(value(&r, 1, "thread_id", NULL), (uint64_t)getpid());
	assert_int_equal(value(&r, 2, "thread_runs_vcpu", NULL), 0);
	rig_close(&r);
}

/* A busy thread's run time keeps growing, and the VM's sum is its vCPUs' in one cut. */
static void
busy_thread_runs(void **state)
{
	struct worker w;
	struct rig r;
	uint64_t run0, *cut;
	struct ks_sched_thread runner;
	struct kvmstats_stat_handle h[3];

	(void)state;
	worker_start(&w, -1);
	runner = (struct ks_sched_thread) { .vcpu_index = 1, .tid = atomic_load(&w.tid) };
	rig_open(&r, 2, &runner, 1);
	assert_int_equal(value(&r, 2, "thread_id", NULL), (uint64_t)runner.tid);
	assert_int_equal(value(&r, 2, "thread_runs_vcpu", NULL), 1);
	assert_int_equal(value(&r, 1, "thread_runs_vcpu", NULL), 0);
	run0 = value(&r, 2, "run_ns", NULL);
	/* 50 ms more CPU time, however long the shared machine takes to give it. */
	assert_true(sweep_until_at_least(&r, 2, "run_ns", run0 + 50 * 1000 * 1000));
	assert_true(value(&r, 2, "timeslices", NULL) >= 1);

	cut = calloc(kvmstats_cut_words(r.seg), sizeof(*cut));
	for (unsigned t = 0; t < 3; t++)
		assert_int_equal(kvmstats_stat_lookup(r.seg, t, "sched", "run_ns", &h[t]), 0);
	assert_int_equal(kvmstats_read_cut(r.seg, cut, kvmstats_cut_words(r.seg), NULL), 0);
	assert_int_equal(cut[kvmstats_target(r.seg, 0)->cut_offset + h[0].info->value_index],
			 cut[kvmstats_target(r.seg, 1)->cut_offset + h[1].info->value_index] +
			 cut[kvmstats_target(r.seg, 2)->cut_offset + h[2].info->value_index]);
	free(cut);
	worker_stop(&w);
	rig_close(&r);
}

/* A thread that shares one CPU with a busy loop waits on its run queue. */
static void
competing_thread_waits(void **state)
{
	struct worker vcpu, hog;
	struct ks_sched_thread runner;
	struct rig r;
	uint64_t wait0;

	(void)state;
	worker_start(&vcpu, 0);
	worker_start(&hog, 0);
	runner = (struct ks_sched_thread) { .vcpu_index = 0, .tid = atomic_load(&vcpu.tid) };
	rig_open(&r, 1, &runner, 1);
	wait0 = value(&r, 1, "wait_ns", NULL);
	assert_true(sweep_until_at_least(&r, 1, "wait_ns", wait0 + 20 * 1000 * 1000));
	assert_true(sweep_until_at_least(&r, 1, "involuntary_switches", 1));
	assert_int_equal(value(&r, 1, "last_cpu", NULL), 0);
	worker_stop(&hog);
	worker_stop(&vcpu);
	rig_close(&r);
}

/*
 * The vCPU's thread exits: its slots go stale with the last values, the
 * publisher says so once, and the VM target's sums stay fresh.  Naming a
 * live runner then brings the vCPU back.
 */
static void
exited_thread_goes_stale(void **state)
{
	struct worker w, next;
	struct ks_sched_thread runner;
	struct kvmstats_sample smp;
	struct rig r;
	uint64_t end, run;

	(void)state;
	log_capture_reset();
	worker_start(&w, -1);
	runner = (struct ks_sched_thread) { .vcpu_index = 0, .tid = atomic_load(&w.tid) };
	rig_open(&r, 1, &runner, 1);
	/* A sample that shows it ran, so that "the last values" are not zeros. */
	assert_true(sweep_until_at_least(&r, 1, "run_ns", 1));
	worker_stop(&w);
	end = ks_mono_ns() + DEADLINE_NS;
	do {
		sweep(&r);
		run = value(&r, 1, "run_ns", &smp);
	} while (!(smp.flags & KVMSTATS_SAMPLE_STALE) && ks_mono_ns() < end);
	assert_true(smp.flags & KVMSTATS_SAMPLE_STALE);
	assert_true(run > 0);				/* the last values, not zeros */
	assert_int_equal(value(&r, 1, "thread_id", NULL), (uint64_t)runner.tid);
	assert_true(log_capture_has("the thread exited"));
	sweep(&r);
	assert_int_equal(log_capture_count("the thread exited"), 1);
	value(&r, 0, "run_ns", &smp);
	assert_false(smp.flags & KVMSTATS_SAMPLE_STALE);

	worker_start(&next, -1);
	assert_int_equal(ks_sched_set_runner(r.sched, 0, atomic_load(&next.tid)), 0);
	assert_int_equal(ks_sched_set_runner(r.sched, 7, atomic_load(&next.tid)), -ENOENT);
	end = ks_mono_ns() + DEADLINE_NS;
	do {
		sweep(&r);
		value(&r, 1, "thread_id", &smp);
	} while ((smp.flags & KVMSTATS_SAMPLE_STALE) && ks_mono_ns() < end);
	assert_false(smp.flags & KVMSTATS_SAMPLE_STALE);
	assert_int_equal(value(&r, 1, "thread_id", NULL), (uint64_t)atomic_load(&next.tid));
	assert_int_equal(value(&r, 1, "thread_runs_vcpu", NULL), 1);
	worker_stop(&next);
	rig_close(&r);
}

/* A creator that is not a thread of the process: that vCPU has no sched block. */
static void
foreign_thread_left_out(void **state)
{
	struct kvmstats_error err;
	struct ks_sched_thread t[2] = {
		{ .vcpu_index = 0, .tid = getpid() },
		{ .vcpu_index = 1, .tid = 1 },		/* init: not ours */
	};
	struct ks_sched_vm *s;
	struct ks_block_def b;

	(void)state;
	log_capture_reset();
	assert_int_equal(ks_sched_vm_create(getpid(), 10, "vm-x", log_capture_line, t, 2, false, &s,
					    &err), 0);
	assert_true(ks_sched_vcpu_block(s, 0, &b));
	{
		struct ks_block_def none;

		assert_false(ks_sched_vcpu_block(s, 1, &none));
	}
	assert_true(log_capture_has("VM vm-x vCPU 1: no sched stats: /proc/"));
	assert_true(log_capture_has("no such thread in that process"));
	b.ops->release(b.ctx);
	ks_sched_vm_put(s);
	/* None readable: an error that says so. */
	assert_int_equal(ks_sched_vm_create(getpid(), 10, "vm-x", NULL, &t[1], 1, false, &s, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "no vCPU thread's sched stats can be read"));
	assert_int_equal(ks_sched_vm_create(getpid(), 0, "vm-x", NULL, t, 1, false, &s, &err),
			 -EINVAL);
	assert_int_equal(ks_sched_available(&err), 0);
}

/*
 * In a pid namespace of its own, with the host's /proc: the simulated VM's
 * ids say kvm-1 (its pid there), and /proc/1 is the host's init.  KVM's
 * ids number threads as the initial namespace does, so there they must not
 * be looked up at all: the vCPUs are left out, and that is said.  Exit
 * status: 0 right, else which check failed.
 */
static int
ids_child(void)
{
	struct kvmstats_error err;
	struct ks_fd_target fds[2];
	struct ks_sim_vm *sim;
	struct ks_vm_build b;
	struct ks_vm_sched how = { .pid = getpid(), .warn = log_capture_line };
	int ret;

	if (ks_sched_ids_usable(NULL, 0))
		return 10;
	if (ks_sim_vm_create(1, &sim, &err) < 0)
		return 11;
	for (unsigned i = 0; i < 2; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = i ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = i ? 0 : KS_VCPU_INDEX_NONE,
			.fd = ks_sim_vm_stats_fd(sim, (int)i - 1),
		};
	if (ks_vm_build(NULL, fds, 2, NULL, &b, &err) < 0)
		return 12;
	log_capture_reset();
	ret = ks_vm_build_add_sched(&b, &how, NULL, &err);
	if (ret != -ENOENT)
		return 13;		/* 0: it read some thread of the host's init */
	if (!log_capture_has("vCPU threads from KVM's ids left out: this process is in a "
			     "pid namespace of its own"))
		return 14;
	ks_vm_build_clear(&b, false);	/* never handed to an engine: release the blocks */
	ks_sim_vm_destroy(&sim);
	return 0;
}

static void
ids_left_out_in_pid_namespace(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	assert_true(ks_sched_ids_usable(NULL, 0));	/* the tests run in the initial one */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pid_t g;

		if (unshare(CLONE_NEWPID) < 0)
			_exit(77);
		g = fork();
		if (g == 0)
			_exit(ids_child());
		_exit(g > 0 && waitpid(g, &status, 0) == g && WIFEXITED(status) ?
		      WEXITSTATUS(status) : 99);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();			/* no CAP_SYS_ADMIN here */
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- an old-layout reader ---------------------------------------------------- */

static uint32_t
u32_at(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint64_t
u64_at(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

/*
 * The bytes of a two-provider segment, read as a reader of ABI 1.0 reads
 * them, with docs/ABI.md's 1.0 offsets written out here (no ks_abi.h
 * struct): still major 1 and the minor of before, the same header and
 * entry sizes, and KVM's stats where 1.0 put them (value_index = the
 * descriptor's offset / 8: the "kvm" block first); the sched stats are
 * just more entries of a known type, found by provider index.  So the ABI
 * did not change: sched needs no new field, flag or version.
 */
static void
old_layout_reader(void **state)
{
	struct rig r;
	char path[512];
	struct stat st;
	const uint8_t *b;
	uint32_t nr_providers, nr_targets, targets_off, stats_off, strings_off, sched = 99;
	uint64_t sweep, slot, exits_lib, exits_raw = 0;
	unsigned found = 0;
	struct kvmstats_stat_handle h;
	int fd;

	(void)state;
	rig_open(&r, 2, NULL, 0);
	snprintf(path, sizeof(path), "%s/kvmstats.%s", ks_shm_dir(NULL), ks_sim_vm_name(r.sim));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	b = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(b != MAP_FAILED);
	assert_memory_equal(b, "KVMSTATS", 8);
	assert_int_equal(u32_at(b, 8) & 0xffff, 1);		/* abi_major */
	assert_int_equal(u32_at(b, 8) >> 16, 2);		/* abi_minor: 1.2, as before */
	assert_int_equal(u32_at(b, 12), 256);			/* header_size */
	assert_int_equal(u32_at(b, 108) & 0xffff, 16);		/* provider_entry_size */
	assert_int_equal(u32_at(b, 108) >> 16, 64);		/* target_entry_size */
	assert_int_equal(u32_at(b, 112) & 0xffff, 32);		/* stat_entry_size */
	nr_providers = u32_at(b, 76);
	nr_targets = u32_at(b, 80);
	targets_off = u32_at(b, 92);
	stats_off = u32_at(b, 96);
	strings_off = u32_at(b, 100);
	assert_int_equal(nr_providers, 2);
	for (uint32_t p = 0; p < nr_providers; p++)
		if (strcmp((const char *)b + strings_off + u32_at(b, u32_at(b, 88) + 16 * p),
			   "sched") == 0)
			sched = p;
	assert_int_equal(sched, 1);
	/* vCPU 1 (target 2): walk its stats by the declared entry size. */
	assert_int_equal(nr_targets, 3);
	{
		size_t t = targets_off + 64 * 2;
		uint32_t first = u32_at(b, t + 24), count = u32_at(b, t + 28);

		sweep = u64_at(b, 192);
		slot = u64_at(b, t + 40) + (sweep % u32_at(b, 72)) * u32_at(b, t + 36);
		for (uint32_t j = first; j < first + count; j++) {
			size_t e = stats_off + 32 * (size_t)j;
			const char *name = (const char *)b + strings_off + u32_at(b, e);
			uint16_t provider = (uint16_t)(u32_at(b, e + 8) & 0xffff);
			uint32_t vi = u32_at(b, e + 24);

			if (provider == 0 && strcmp(name, "exits") == 0) {
				assert_int_equal(vi, 904 / 8);	/* KVM's x86 offset, as in 1.0 */
				exits_raw = u64_at(b, slot + 32 + 8 * vi);
			}
			found += provider == sched;
		}
	}
	assert_int_equal(found, 8);
	assert_int_equal(u64_at(b, slot + 8), sweep);		/* the slot is of that sweep */
	assert_int_equal(kvmstats_stat_lookup(r.seg, 2, "kvm", "exits", &h), 0);
	assert_int_equal(kvmstats_read_scalar(r.seg, &h, &exits_lib, NULL), 0);
	assert_int_equal(exits_raw, exits_lib);			/* no sweep since: by hand */
	munmap((void *)b, (size_t)st.st_size);
	close(fd);
	rig_close(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_schedstat),
		cmocka_unit_test(parse_stat),
		cmocka_unit_test(parse_status),
		cmocka_unit_test(creator_of),
		cmocka_unit_test(schema_has_sched),
		cmocka_unit_test(busy_thread_runs),
		cmocka_unit_test(competing_thread_waits),
		cmocka_unit_test(exited_thread_goes_stale),
		cmocka_unit_test(foreign_thread_left_out),
		cmocka_unit_test(ids_left_out_in_pid_namespace),
		cmocka_unit_test(old_layout_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
