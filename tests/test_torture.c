/* SPDX-License-Identifier: MIT */
/*
 * test_torture.c - the publisher at its maximum rate against several reader
 * processes, and not one torn read.
 *
 * The publisher sweeps a synthetic VM (tests/lib/synth_vm.h) at KS_HZ_MAX,
 * so it is almost always inside a write.  Reader processes (fork()ed before
 * the engine starts, as unrelated processes would be) read single stats,
 * histograms, whole records, VM-wide cuts and histories, and check every
 * value against the function of the sweep the sample claims to be, and
 * every time: a cut's in target order, a history's in sweep order, none
 * after the reader's clock.  One of the vCPU sources fails every 7th sweep,
 * so stale slots are read too.  Times come from the TSC where the kernel
 * trusts it (the publisher then keeps all of a sweep's slots open until
 * its end), and from a clock read per target in one more run.
 *
 * KVMSTATS_TORTURE_READS sets the total number of checked reads (default
 * 10 million; `make torture` runs 200 million).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "ks_time.h"
#include "kvmstats/reader.h"
#include "synth_vm.h"

#define NR_READERS		3
#define NR_VCPUS		8
#define FAIL_TARGET		2
#define FAIL_EVERY		7
#define DEFAULT_READS		10000000ull
#define DEADLINE_S		300

struct report {
	uint64_t reads;
	uint64_t torn;			/* a value that is not the sweep's */
	uint64_t mixed_cut;		/* a cut whose targets disagree on the sweep */
	uint64_t backwards;		/* a newest sample older than one seen before */
	uint64_t eagain;		/* no consistent sample within the retry bound */
	uint64_t retries;
	uint64_t stale;
	uint64_t max_sweep;
	uint64_t attach_failed;
	uint64_t bad_time;		/* out of order, or after the reader's clock */
};

struct reader_state {
	const struct synth_vm *sv;
	struct kvmstats_segment *seg;
	struct report r;
	uint64_t last_sweep[NR_VCPUS + 1];
	struct kvmstats_stat_handle scalar[NR_VCPUS + 1];
	struct kvmstats_stat_handle hist[NR_VCPUS + 1];
	uint64_t *buf;
	size_t buf_words;
	struct kvmstats_sample *samples;
	unsigned depth;
	uint64_t rng;
};

static uint64_t
next_rand(uint64_t *s)
{
	/* xorshift64*: cheap, and good enough to pick operations. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static void
check_words(struct reader_state *st, uint32_t t, const uint64_t *v, uint32_t first,
	    uint32_t n, const struct kvmstats_sample *s)
{
	uint64_t want = synth_expected_sweep(st->sv, t, s->sweep);

	for (uint32_t w = 0; w < n; w++)
		if (v[w] != synth_value(want, t, first + w)) {
			st->r.torn++;
			return;
		}
}

/* A newest-sample read: sweeps never go back, and stale slots are counted. */
static void
account(struct reader_state *st, uint32_t t, const struct kvmstats_sample *s)
{
	if (s->sweep < st->last_sweep[t])
		st->r.backwards++;
	st->last_sweep[t] = s->sweep;
	if (s->sweep > st->r.max_sweep)
		st->r.max_sweep = s->sweep;
	if (s->flags & KVMSTATS_SAMPLE_STALE)
		st->r.stale++;
	st->r.retries += s->retries;
}

static bool
failed(struct reader_state *st, int ret)
{
	if (ret == 0)
		return false;
	if (ret == -EAGAIN)
		st->r.eagain++;
	else
		st->r.torn++;		/* any other error is a broken protocol */
	return true;
}

static void
op_scalar(struct reader_state *st, uint32_t t)
{
	struct kvmstats_sample s;
	uint64_t v;

	if (failed(st, kvmstats_read_scalar(st->seg, &st->scalar[t], &v, &s)))
		return;
	check_words(st, t, &v, st->scalar[t].info->value_index, 1, &s);
	account(st, t, &s);
}

static void
op_hist(struct reader_state *st, uint32_t t)
{
	const struct kvmstats_stat_info *i = st->hist[t].info;
	struct kvmstats_sample s;

	if (failed(st, kvmstats_read_values(st->seg, &st->hist[t], st->buf, st->buf_words, &s)))
		return;
	check_words(st, t, st->buf, i->value_index, i->size, &s);
	account(st, t, &s);
}

static void
op_record(struct reader_state *st, uint32_t t)
{
	uint32_t words = kvmstats_target(st->seg, t)->record_words;
	struct kvmstats_sample s;

	if (failed(st, kvmstats_read_record(st->seg, t, st->buf, st->buf_words, &s)))
		return;
	check_words(st, t, st->buf, 0, words, &s);
	account(st, t, &s);
}

static void
op_cut(struct reader_state *st)
{
	unsigned n = kvmstats_nr_targets(st->seg);

	if (failed(st, kvmstats_read_cut(st->seg, st->buf, st->buf_words, st->samples)))
		return;
	if (st->samples[n - 1].time_ns > ks_mono_ns())
		st->r.bad_time++;
	for (unsigned t = 0; t < n; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(st->seg, t);

		if (st->samples[t].sweep != st->samples[0].sweep)
			st->r.mixed_cut++;
		if (t > 0 && st->samples[t].time_ns < st->samples[t - 1].time_ns)
			st->r.bad_time++;
		check_words(st, t, st->buf + ti->cut_offset, 0, ti->record_words,
			    &st->samples[t]);
		account(st, t, &st->samples[t]);
	}
}

static void
op_history(struct reader_state *st, uint32_t t)
{
	uint32_t words = kvmstats_target(st->seg, t)->record_words;
	unsigned got = 0;

	if (failed(st, kvmstats_read_history(st->seg, t, st->depth - 1, st->buf,
					     st->buf_words, st->samples, &got)))
		return;
	for (unsigned k = 0; k < got; k++) {
		if (k > 0 && st->samples[k].sweep + 1 != st->samples[k - 1].sweep)
			st->r.torn++;
		if (k > 0 && st->samples[k].time_ns > st->samples[k - 1].time_ns)
			st->r.bad_time++;
		check_words(st, t, st->buf + (size_t)k * words, 0, words, &st->samples[k]);
	}
	if (got > 0)
		account(st, t, &st->samples[0]);
}

static int
attach_when_ready(const char *vm, struct kvmstats_segment **seg)
{
	struct kvmstats_error err;
	struct timespec pause = { .tv_sec = 0, .tv_nsec = 2 * 1000 * 1000 };

	for (int i = 0; i < 5000; i++) {
		if (kvmstats_attach(vm, NULL, seg, &err) == 0)
			return 0;
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "torture reader: cannot attach: %s\n", err.msg);
	return -1;
}

static void
reader_main(int wfd, const struct synth_vm *sv, const char *vm, uint64_t quota,
	    unsigned depth, unsigned id)
{
	struct reader_state st = { .sv = sv, .depth = depth };
	unsigned n;

	st.rng = 0x9E3779B97F4A7C15ull * (id + 1);
	if (attach_when_ready(vm, &st.seg) < 0) {
		st.r.attach_failed = 1;
		goto out;
	}
	n = kvmstats_nr_targets(st.seg);
	st.buf_words = kvmstats_cut_words(st.seg) * depth;
	st.buf = calloc(st.buf_words, sizeof(*st.buf));
	st.samples = calloc(n > depth ? n : depth, sizeof(*st.samples));
	for (uint32_t t = 0; t < n; t++) {
		int a = kvmstats_stat_lookup(st.seg, t, "kvm", t ? "c5" : "vm_c3", &st.scalar[t]);
		int b = kvmstats_stat_lookup(st.seg, t, NULL, t ? "hist1" : "vm_c14", &st.hist[t]);

		if (a < 0 || b < 0)
			st.r.torn++;
	}
	/*
	 * The quota, and a publisher really raced: the checks below want more
	 * than 100 sweeps seen and a stale slot read, which a slow publisher
	 * (valgrind, a loaded host) may not have given by the quota.  The
	 * parent's deadline still bounds the run.
	 */
	while ((st.r.reads < quota || st.r.max_sweep <= 100 || st.r.stale == 0) &&
	       st.r.torn == 0) {
		uint64_t x = next_rand(&st.rng);
		uint32_t t = (uint32_t)((x >> 8) % n);

		unsigned op = (unsigned)(x & 15);

		/* Mostly single stats, the common monitoring read. */
		if (op <= 8)
			op_scalar(&st, t);
		else if (op <= 10)
			op_hist(&st, t);
		else if (op <= 12)
			op_record(&st, t);
		else if (op <= 14)
			op_history(&st, t);
		else
			op_cut(&st);
		st.r.reads++;
	}
	free(st.buf);
	free(st.samples);
	kvmstats_detach(&st.seg);
out:
	if (write(wfd, &st.r, sizeof(st.r)) != (ssize_t)sizeof(st.r))
		_exit(3);
	_exit(0);
}

static uint64_t
total_reads(void)
{
	const char *s = getenv("KVMSTATS_TORTURE_READS");
	unsigned long long v;

	if (s && sscanf(s, "%llu", &v) == 1 && v > 0)
		return v;
	return DEFAULT_READS;
}

static void
sum_report(struct report *sum, const struct report *r)
{
	sum->reads += r->reads;
	sum->torn += r->torn;
	sum->mixed_cut += r->mixed_cut;
	sum->backwards += r->backwards;
	sum->eagain += r->eagain;
	sum->retries += r->retries;
	sum->stale += r->stale;
	sum->attach_failed += r->attach_failed;
	sum->bad_time += r->bad_time;
	if (r->max_sweep > sum->max_sweep)
		sum->max_sweep = r->max_sweep;
}

/* Wait for every reader, killing all of them if the deadline passes. */
static int
collect(pid_t *pids, int *fds, struct report *sum)
{
	time_t end = time(NULL) + DEADLINE_S;
	int left = NR_READERS, bad = 0;

	while (left > 0) {
		int status;
		pid_t p = waitpid(-1, &status, WNOHANG);

		if (p == 0) {
			if (time(NULL) > end) {
				/* Only those not reaped yet: a reaped pid may be anybody's now. */
				for (int i = 0; i < NR_READERS; i++)
					if (pids[i] > 0)
						kill(pids[i], SIGKILL);
				fail_msg("torture readers still running after %d s", DEADLINE_S);
			}
			usleep(10000);
			continue;
		}
		if (p < 0)
			break;
		for (int i = 0; i < NR_READERS; i++)
			if (pids[i] == p)
				pids[i] = -1;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
		left--;
	}
	for (int i = 0; i < NR_READERS; i++) {
		struct report r = { 0 };

		if (read(fds[i], &r, sizeof(r)) != (ssize_t)sizeof(r))
			bad++;
		sum_report(sum, &r);
		close(fds[i]);
	}
	return bad;
}

static void
torture(unsigned depth, enum ks_stamp_mode stamp, uint64_t reads)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e = NULL;
	struct ks_engine_stats es;
	struct synth_vm sv;
	struct report sum = { 0 };
	pid_t pids[NR_READERS];
	int fds[NR_READERS];
	uint64_t per_reader = (reads + NR_READERS - 1) / NR_READERS;
	char vm[64];

	snprintf(vm, sizeof(vm), "torture-%d-d%u-s%d", getpid(), depth, (int)stamp);
	assert_int_equal(synth_vm_init(&sv, vm, NR_VCPUS, FAIL_TARGET, FAIL_EVERY), 0);

	for (int i = 0; i < NR_READERS; i++) {
		int p[2];

		assert_int_equal(pipe(p), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(p[0]);
			reader_main(p[1], &sv, vm, per_reader, depth, (unsigned)i);
		}
		close(p[1]);
		fds[i] = p[0];
	}

	ks_engine_config_init(&cfg);
	cfg.hz = KS_HZ_MAX;
	cfg.ring_depth = depth;
	cfg.ring_min_bytes = 0;		/* this depth, however small the VM: laps are the point */
	cfg.stamp = stamp;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), 0);
	if (ks_engine_add_vm(e, &sv.def, NULL, &err) < 0)
		fail_msg("add_vm: %s", err.msg);
	synth_vm_clear(&sv);
	assert_int_equal(ks_engine_start(e, &err), 0);

	int bad = collect(pids, fds, &sum);

	ks_engine_get_stats(e, &es);
	ks_engine_destroy(&e);

	print_message("torture depth %u, %s: %llu checked reads by %d processes, %llu torn, "
		      "%llu mixed cuts, %llu backwards, %llu bad times, %llu EAGAIN, %llu retries "
		      "(%.2g per read), %llu stale samples seen; publisher %llu sweeps, "
		      "%llu overruns, mean sweep %.2f us\n",
		      depth, es.stamp_bound_ns ? "TSC stamps" : "a clock read per target",
		      (unsigned long long)sum.reads, NR_READERS,
		      (unsigned long long)sum.torn, (unsigned long long)sum.mixed_cut,
		      (unsigned long long)sum.backwards, (unsigned long long)sum.bad_time,
		      (unsigned long long)sum.eagain,
		      (unsigned long long)sum.retries,
		      sum.reads ? (double)sum.retries / (double)sum.reads : 0.0,
		      (unsigned long long)sum.stale, (unsigned long long)es.sweeps,
		      (unsigned long long)es.overruns,
		      es.sweeps ? (double)es.sweep_ns_total / (double)es.sweeps / 1e3 : 0.0);

	assert_int_equal(bad, 0);
	assert_int_equal(sum.attach_failed, 0);
	assert_int_equal(sum.torn, 0);
	assert_int_equal(sum.mixed_cut, 0);
	assert_int_equal(sum.backwards, 0);
	assert_int_equal(sum.bad_time, 0);
	/*
	 * A read gives up only after KVMSTATS_READ_RETRIES laps of the ring:
	 * rare however loaded the machine.  A reader looking in the wrong slot
	 * is never torn (the slot's stamp says so) but gives up on most reads.
	 */
	if (sum.eagain * 100 > sum.reads)
		fail_msg("depth %u: %llu of %llu reads gave up (EAGAIN)", depth,
			 (unsigned long long)sum.eagain, (unsigned long long)sum.reads);
	assert_true(sum.reads >= reads);
	/* The readers really raced a moving publisher, stale slots included. */
	assert_true(es.sweeps > 100);
	assert_true(sum.max_sweep > 100);
	assert_true(sum.stale > 0);
}

static void
torture_default_depth(void **state)
{
	(void)state;
	torture(KS_RING_DEPTH_DEFAULT, KS_STAMP_TSC, total_reads());
}

static void
torture_minimum_depth(void **state)
{
	(void)state;
	/* Two slots: the plain latch, where the publisher laps readers most. */
	torture(KS_RING_DEPTH_MIN, KS_STAMP_TSC, total_reads() / 4);
}

static void
torture_clock_stamps(void **state)
{
	(void)state;
	/* One slot open at a time, each stamped as it closes. */
	torture(KS_RING_DEPTH_DEFAULT, KS_STAMP_CLOCK, total_reads() / 4);
}

static void
torture_odd_depth(void **state)
{
	(void)state;
	/*
	 * Not a power of two: the readers find slots by division, not by the
	 * mask every other depth here uses (reader/lib/read.c, slot_index()).
	 */
	torture(3, KS_STAMP_TSC, total_reads() / 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(torture_default_depth),
		cmocka_unit_test(torture_minimum_depth),
		cmocka_unit_test(torture_odd_depth),
		cmocka_unit_test(torture_clock_stamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
