/* SPDX-License-Identifier: MIT */
/*
 * test_noscall.c - proof that the read paths make no system call.
 *
 * A child attaches to a live segment, then installs a seccomp filter that
 * allows exit and exit_group only and kills the process on anything else.
 * It then reads thousands of snapshots through every read function while
 * the parent's writer thread keeps sweeping, checks each against the
 * values the writer derives from the sweep number, and reports through its
 * exit status alone.  A SIGSYS death means a read made a system call.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmstats/reader.h"
#include "ks_sanitizers.h"
#include "ks_seqlock.h"
#include "segment_writer.h"
#include "shm_dir.h"

#define NR_VCPUS	4
#define WORDS		6
#define DEPTH		8
#define HIST		4
#define ROUNDS_MIN	100000		/* read rounds the child must complete */
#define ROUNDS_MAX	20000000	/* ... and gives up after */
#define SWEEPS_MIN	300		/* distinct sweeps it must have seen */

/* Child exit codes: one per kind of failure. */
enum {
	XC_OK = 0,
	XC_ATTACH = 10,
	XC_LOOKUP = 11,
	XC_NO_NEW_PRIVS = 12,
	XC_SECCOMP = 13,
	XC_SCALAR = 20,
	XC_VALUES = 21,
	XC_RECORD = 22,
	XC_CUT = 23,
	XC_HISTORY = 24,
	XC_STATUS = 25,
	XC_CLOCK = 26,
	XC_ERRNO = 27,
	XC_STARVED = 28,
	XC_BACKWARDS = 29,
	XC_PROBE_SURVIVED = 30,
};

static const char *const exit_names[] = {
	[XC_ATTACH] = "attach failed", [XC_LOOKUP] = "lookup failed",
	[XC_NO_NEW_PRIVS] = "PR_SET_NO_NEW_PRIVS failed",
	[XC_SECCOMP] = "installing the seccomp filter failed",
	[XC_SCALAR] = "scalar read inconsistent", [XC_VALUES] = "values read inconsistent",
	[XC_RECORD] = "record read inconsistent", [XC_CUT] = "cut inconsistent",
	[XC_HISTORY] = "history inconsistent", [XC_STATUS] = "status wrong",
	[XC_CLOCK] = "kvmstats_now_ns went backwards",
	[XC_ERRNO] = "a read returned an unexpected error",
	[XC_STARVED] = "too few successful reads or sweeps",
	[XC_BACKWARDS] = "the newest sweep went backwards",
	[XC_PROBE_SURVIVED] = "a system call survived the filter",
};

static char shm_dir[4096];

/*
 * A sanitizer's runtime makes system calls of its own (ASan's signal
 * stack, TSan's clock and trace handling), so under one the filter would
 * measure the runtime, not the library.  Sanitized builds still run every
 * read and check every value in the child, without the filter; the proof
 * itself comes from the plain gcc and clang builds.
 */
#define KS_SANITIZED	(KS_ASAN || KS_TSAN)

/* ---- the segment and its writer ---- */

static const char *const providers[] = { "kvm" };

static const struct ks_seg_stat_def stats[] = {
	{ .name = "exits", .type = KS_TYPE_CUMULATIVE, .base = 10, .size = 1, .value_index = 0 },
	{ .name = "hist", .type = KS_TYPE_LOG_HIST, .base = 10, .size = 4, .value_index = 1 },
	{ .name = "peak", .type = KS_TYPE_PEAK, .base = 10, .size = 1, .value_index = 5 },
};

static uint64_t
val(uint64_t sweep, uint32_t t, uint32_t w)
{
	return sweep * 1000003u + t * 101u + w;
}

struct writer {
	struct ks_segment_writer *w;
	_Atomic int stop;
	uint64_t sweeps;
};

static void
write_sweep(struct ks_segment_writer *w, uint64_t s)
{
	uint64_t v[WORDS];

	for (uint32_t t = 0; t < w->nr_targets; t++) {
		struct ks_shm_slot *slot = ks_segment_slot(w, t, s);

		for (uint32_t i = 0; i < WORDS; i++)
			v[i] = val(s, t, i);
		ks_slot_write_begin(slot);
		ks_slot_stamp(slot, s, s * 10 + t, s % 5 == 0 ? KS_SLOT_STALE : 0);
		ks_store_words(slot->values, v, WORDS);
		ks_slot_write_end(slot);
	}
	ks_header_publish_sweep(w->hdr, s, s * 10 + 9);
}

static void *
writer_main(void *arg)
{
	struct writer *wr = arg;
	const struct timespec pause = { 0, 20000 };

	while (!atomic_load(&wr->stop)) {
		write_sweep(wr->w, ++wr->sweeps);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static struct ks_segment_writer *
publish(const char *vm)
{
	struct ks_seg_target_def t[NR_VCPUS];
	struct ks_seg_place pl = { .dir = shm_dir, .mode = 0600, .gid = (gid_t)-1 };
	struct ks_seg_def def = {
		.vm_name = vm, .generation = 1, .poll_period_ns = 20000, .ring_depth = DEPTH,
		.nr_providers = 1, .providers = providers, .nr_targets = NR_VCPUS, .targets = t,
	};
	struct ks_segment_writer *w;
	struct kvmstats_error err;

	for (uint32_t i = 0; i < NR_VCPUS; i++)
		t[i] = (struct ks_seg_target_def){
			.kind = KS_TARGET_VCPU, .vcpu_index = i, .label = "", .id = "",
			.nr_stats = 3, .stats = stats, .record_words = WORDS,
		};
	if (ks_segment_create(&def, &pl, &w, &err) < 0 || ks_segment_publish(w, NULL, &err) < 0)
		fail_msg("publishing %s: %s", vm, err.msg);
	return w;
}

/* ---- the child: a filter, then reads ---- */

static void
child_exit(int code)
{
	/* exit_group directly: no atexit handlers, no stdio flush. */
	syscall(SYS_exit_group, code);
	for (;;)
		;
}

static int
install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return XC_NO_NEW_PRIVS;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return XC_SECCOMP;
	return XC_OK;
}

struct reader {
	struct kvmstats_segment *seg;
	struct kvmstats_stat_handle exits, hist, peak;
	uint64_t last_sweep, last_now, good, sweeps_seen;
	bool use_clock;
};

/* A read either succeeded or was refused for a documented reason. */
static bool
soft_error(int rc)
{
	return rc == -EAGAIN || rc == -ENODATA;
}

static bool
sample_ok(const struct kvmstats_sample *s, uint32_t t)
{
	return s->time_ns == s->sweep * 10 + t &&
	       s->flags == (s->sweep % 5 == 0 ? KVMSTATS_SAMPLE_STALE : 0u);
}

static bool
record_ok(const uint64_t *v, uint64_t sweep, uint32_t t)
{
	for (uint32_t i = 0; i < WORDS; i++)
		if (v[i] != val(sweep, t, i))
			return false;
	return true;
}

static int
read_one(struct reader *r, uint32_t t)
{
	struct kvmstats_sample s;
	uint64_t v[WORDS];
	int rc;

	r->exits.target = t;
	rc = kvmstats_read_scalar(r->seg, &r->exits, v, &s);
	if (rc == 0 && (v[0] != val(s.sweep, t, 0) || !sample_ok(&s, t)))
		return XC_SCALAR;
	if (rc == 0 && s.sweep < r->last_sweep)
		return XC_BACKWARDS;
	if (rc == 0) {
		r->sweeps_seen += s.sweep != r->last_sweep;
		r->last_sweep = s.sweep;
		r->good++;
	}
	if (rc < 0 && !soft_error(rc))
		return XC_ERRNO;
	r->peak.target = t;
	rc = kvmstats_read_scalar(r->seg, &r->peak, v, &s);
	if (rc == 0 && (v[0] != val(s.sweep, t, 5) || !sample_ok(&s, t)))
		return XC_SCALAR;
	if (rc < 0 && !soft_error(rc))
		return XC_ERRNO;
	r->hist.target = t;
	rc = kvmstats_read_values(r->seg, &r->hist, v, WORDS, &s);
	for (uint32_t i = 0; rc == 0 && i < 4; i++)
		if (v[i] != val(s.sweep, t, 1 + i) || !sample_ok(&s, t))
			return XC_VALUES;
	if (rc < 0 && !soft_error(rc))
		return XC_ERRNO;
	rc = kvmstats_read_record(r->seg, t, v, WORDS, &s);
	if (rc == 0 && (!record_ok(v, s.sweep, t) || !sample_ok(&s, t)))
		return XC_RECORD;
	return rc < 0 && !soft_error(rc) ? XC_ERRNO : XC_OK;
}

static int
read_cut(struct reader *r)
{
	struct kvmstats_sample s[NR_VCPUS];
	uint64_t v[NR_VCPUS * WORDS];
	int rc = kvmstats_read_cut(r->seg, v, NR_VCPUS * WORDS, s);

	if (rc < 0)
		return soft_error(rc) ? XC_OK : XC_ERRNO;
	for (uint32_t t = 0; t < NR_VCPUS; t++)
		if (s[t].sweep != s[0].sweep || !sample_ok(&s[t], t) ||
		    !record_ok(v + kvmstats_target(r->seg, t)->cut_offset, s[0].sweep, t))
			return XC_CUT;
	return XC_OK;
}

static int
read_history(struct reader *r, uint32_t t)
{
	struct kvmstats_sample s[HIST];
	uint64_t v[HIST * WORDS];
	unsigned got;
	int rc = kvmstats_read_history(r->seg, t, HIST, v, HIST * WORDS, s, &got);

	if (rc < 0)
		return soft_error(rc) ? XC_OK : XC_ERRNO;
	if (got < 1 || got > HIST)
		return XC_HISTORY;
	for (unsigned k = 0; k < got; k++)
		if (s[k].sweep != s[0].sweep - k || !sample_ok(&s[k], t) ||
		    !record_ok(v + k * WORDS, s[k].sweep, t))
			return XC_HISTORY;
	return XC_OK;
}

static int
read_status(struct reader *r)
{
	struct kvmstats_status st;
	uint64_t now;

	kvmstats_status(r->seg, &st);
	if (st.state != KVMSTATS_STATE_LIVE || st.sweep < r->last_sweep ||
	    (st.sweep > 0 && st.heartbeat_ns < 10))
		return XC_STATUS;
	if (!r->use_clock)
		return XC_OK;
	now = kvmstats_now_ns();
	if (now < r->last_now)
		return XC_CLOCK;
	r->last_now = now;
	return XC_OK;
}

static int
read_round(struct reader *r, uint64_t round)
{
	uint32_t t = (uint32_t)(round % NR_VCPUS);
	int rc;

	rc = read_one(r, t);
	if (rc == XC_OK)
		rc = read_cut(r);
	if (rc == XC_OK)
		rc = read_history(r, t);
	if (rc == XC_OK)
		rc = read_status(r);
	return rc;
}

static int
child_lookup(struct reader *r, const char *vm)
{
	struct kvmstats_error err;

	if (kvmstats_attach(vm, NULL, &r->seg, &err) < 0)
		return XC_ATTACH;
	if (kvmstats_stat_lookup(r->seg, 0, "kvm", "exits", &r->exits) < 0 ||
	    kvmstats_stat_lookup(r->seg, 0, "kvm", "hist", &r->hist) < 0 ||
	    kvmstats_stat_lookup(r->seg, 0, NULL, "peak", &r->peak) < 0)
		return XC_LOOKUP;
	return XC_OK;
}

static void
child_main(const char *vm, bool use_clock)
{
	struct reader r = { .use_clock = use_clock };
	uint64_t round;
	int rc;

	rc = child_lookup(&r, vm);
	if (rc == XC_OK && !KS_SANITIZED)
		rc = install_filter();
	if (rc != XC_OK)
		child_exit(rc);
	/* From here on, any system call kills this process with SIGSYS. */
	for (round = 0; round < ROUNDS_MAX; round++) {
		rc = read_round(&r, round);
		if (rc != XC_OK)
			child_exit(rc);
		if (round >= ROUNDS_MIN && r.sweeps_seen >= SWEEPS_MIN)
			child_exit(XC_OK);
	}
	child_exit(XC_STARVED);
}

/* ---- the parent ---- */

static void
expect_clean_exit(pid_t pid, const char *what)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		fail_msg("%s: the reader made a system call (killed by SIGSYS)", what);
	if (WIFSIGNALED(status))
		fail_msg("%s: the reader died of signal %d", what, WTERMSIG(status));
	if (WEXITSTATUS(status) != 0) {
		int code = WEXITSTATUS(status);
		const char *name = code < (int)(sizeof(exit_names) / sizeof(exit_names[0])) ?
				   exit_names[code] : NULL;

		fail_msg("%s: the reader exited with %d (%s)", what, code,
			 name != NULL ? name : "?");
	}
}

static void
skip_under_valgrind(void)
{
	if (getenv("KVMSTATS_UNDER_VALGRIND") != NULL) {
		print_message("skipped: valgrind cannot run seccomp-filtered children\n");
		skip();
	}
}

/* The filter really kills: without this, a filter allowing everything would pass. */
static void
test_filter_kills(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	skip_under_valgrind();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = install_filter();

		if (rc != XC_OK)
			child_exit(rc);
		(void)syscall(SYS_getppid);
		child_exit(XC_PROBE_SURVIVED);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status))
		fail_msg("the probe child was not killed: exit %d", WEXITSTATUS(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

/* Is CLOCK_MONOTONIC served without a syscall here?  (A platform fact.) */
static bool
clock_is_vdso(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = install_filter();

		if (rc != XC_OK)
			child_exit(rc);
		(void)kvmstats_now_ns();
		child_exit(XC_OK);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void
test_reads_make_no_syscall(void **state)
{
	struct writer wr = { 0 };
	bool use_clock;
	pthread_t th;
	pid_t pid;

	(void)state;
	skip_under_valgrind();
	use_clock = KS_SANITIZED || clock_is_vdso();
	if (KS_SANITIZED)
		print_message("note: sanitizer build: reads are checked without the seccomp "
			      "filter (the runtime makes syscalls of its own)\n");
	if (!use_clock)
		print_message("note: CLOCK_MONOTONIC is not served by the vDSO here; "
			      "kvmstats_now_ns() left out of the proof\n");
	wr.w = publish("noscall");
	write_sweep(wr.w, ++wr.sweeps);
	/* Fork before the writer thread exists: the child is a clean copy. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_main("noscall", use_clock);
	assert_int_equal(pthread_create(&th, NULL, writer_main, &wr), 0);
	expect_clean_exit(pid, "snapshot reads under seccomp");
	atomic_store(&wr.stop, 1);
	pthread_join(th, NULL);
	print_message("writer made %llu sweeps while the child read\n",
		      (unsigned long long)wr.sweeps);
	ks_segment_unlink(wr.w);
	ks_segment_destroy(&wr.w);
}

static int
setup_dir(void **state)
{
	(void)state;
	return test_shm_dir(shm_dir, sizeof(shm_dir), "test_noscall");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_kills),
		cmocka_unit_test(test_reads_make_no_syscall),
	};

	return cmocka_run_group_tests(tests, setup_dir, NULL);
}
