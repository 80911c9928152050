/* SPDX-License-Identifier: MIT */
/*
 * test_stamp.c - each target's time in a sweep (publisher/core/stamp.h).
 *
 *   the arithmetic   ks_stamp_interp() at and between its pairs, clamped,
 *                    rounded down, with a TSC that stood still or went
 *                    backwards, a zero-length sweep, and products that do
 *                    not fit in 64 bits; ks_stamp_bound(); a real pair
 *   the bound        the poll thread preempted for 5 ms in the middle of a
 *                    sweep (in a target's read: by a SCHED_FIFO thread on
 *                    its CPU, and by a sleep), at the first, a middle and
 *                    the last target: every published time_ns lies between
 *                    CLOCK_MONOTONIC read at the end of its target's read
 *                    and at the start of the next one, within the bound the
 *                    engine derives from its clock pairs; times never go
 *                    backwards.  With the TSC (where the kernel trusts it)
 *                    and with a clock read per target.
 *
 * Nothing asserted depends on timing luck: the preemption is made certain
 * (a pinned real-time thread, or a sleep) and checked to have happened,
 * and the bound is the one the engine's clock reads give, not a constant.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "ks_time.h"
#include "kvmstats/reader.h"
#include "stamp.h"

/* ---- the arithmetic ------------------------------------------------------ */

static struct ks_clock_pair
pair(uint64_t tsc, uint64_t mono)
{
	return (struct ks_clock_pair) { .tsc = tsc, .mono = mono };
}

/* floor((x - x0) * (m1 - m0) / (x1 - x0)) == r - m0, checked by multiplying back. */
static void
assert_floor_quotient(uint64_t r, uint64_t x, const struct ks_clock_pair *p0,
		      const struct ks_clock_pair *p1)
{
#if KS_STAMP_HAVE_TSC
	unsigned __int128 n = (unsigned __int128)(x - p0->tsc) * (p1->mono - p0->mono);
	unsigned __int128 d = p1->tsc - p0->tsc, q = r - p0->mono;

	assert_true(q * d <= n);
	assert_true(n < (q + 1) * d);
#else
	(void)r, (void)x, (void)p0, (void)p1;
#endif
}

/* ks_stamp_interp(x) between pairs (x0, m0) and (x1, m1) must be want. */
struct interp_case {
	uint64_t x0, m0, x1, m1, x, want;
};

static void
check_cases(const struct interp_case *c, size_t n)
{
	if (!KS_STAMP_HAVE_TSC)
		skip();
	for (size_t i = 0; i < n; i++) {
		struct ks_clock_pair p0 = pair(c[i].x0, c[i].m0), p1 = pair(c[i].x1, c[i].m1);
		uint64_t r = ks_stamp_interp(c[i].x, &p0, &p1);

		if (r != c[i].want)
			fail_msg("case %zu: x %llu between (%llu, %llu) and (%llu, %llu): %llu, want %llu",
				 i, (unsigned long long)c[i].x, (unsigned long long)c[i].x0,
				 (unsigned long long)c[i].m0, (unsigned long long)c[i].x1,
				 (unsigned long long)c[i].m1, (unsigned long long)r,
				 (unsigned long long)c[i].want);
	}
}

#define CHECK_CASES(c)	check_cases((c), sizeof(c) / sizeof((c)[0]))

static void
interp_between_and_at_the_pairs(void **state)
{
	static const struct interp_case c[] = {
		{ 1000, 5000, 3000, 9000, 1000, 5000 },
		{ 1000, 5000, 3000, 9000, 3000, 9000 },
		{ 1000, 5000, 3000, 9000, 2000, 7000 },
		{ 1000, 5000, 3000, 9000, 1001, 5002 },
		{ 1000, 5000, 3000, 9000, 2999, 8998 },
		/* Rounded down: 1000 * 3 / 3000 = 1, 1001 * 3 / 3000 = 1.001. */
		{ 1000, 5000, 4000, 5003, 2000, 5001 },
		{ 1000, 5000, 4000, 5003, 2001, 5001 },
		{ 1000, 5000, 4000, 5003, 1999, 5000 },
		/* A clock slower than the TSC, and faster. */
		{ 1000, 5000, 1000 + 2600000, 5000 + 1000000, 1000 + 1300000, 5000 + 500000 },
		{ 1000, 5000, 1010, 5000 + 1000000, 1001, 5000 + 100000 },
	};

	(void)state;
	CHECK_CASES(c);
}

static void
interp_clamps_to_the_sweep(void **state)
{
	static const struct interp_case c[] = {
		{ 1000, 5000, 3000, 9000, 0, 5000 },
		{ 1000, 5000, 3000, 9000, 999, 5000 },
		{ 1000, 5000, 3000, 9000, 3001, 9000 },
		{ 1000, 5000, 3000, 9000, UINT64_MAX, 9000 },
	};

	(void)state;
	CHECK_CASES(c);
}

/* A TSC that went backwards, or stood still: one of the two ends, never outside them. */
static void
interp_tsc_backwards_or_still(void **state)
{
	static const struct interp_case c[] = {
		{ 3000, 5000, 1000, 9000, 0, 5000 },
		{ 3000, 5000, 1000, 9000, 1000, 5000 },
		{ 3000, 5000, 1000, 9000, 2000, 5000 },
		{ 3000, 5000, 1000, 9000, 3000, 5000 },
		{ 3000, 5000, 1000, 9000, 3500, 9000 },
		/* TSC still, the clock moved. */
		{ 3000, 5000, 3000, 9000, 3000, 5000 },
		{ 3000, 5000, 3000, 9000, 2999, 5000 },
		{ 3000, 5000, 3000, 9000, 3001, 9000 },
		/* A clock that went backwards (it cannot): the start, not an underflow. */
		{ 3000, 5000, 4000, 4000, 3500, 5000 },
	};

	(void)state;
	CHECK_CASES(c);
}

/* Both pairs in the same ns, or in the same TSC tick: no division by zero. */
static void
interp_zero_length_sweep(void **state)
{
	static const struct interp_case c[] = {
		{ 7000, 5000, 7000, 5000, 7000, 5000 },
		{ 7000, 5000, 7000, 5000, 6999, 5000 },
		{ 7000, 5000, 7000, 5000, 7001, 5000 },
		/* The clock did not move, the TSC did. */
		{ 7000, 5000, 9000, 5000, 8000, 5000 },
		/* One tick apart. */
		{ 7000, 5000, 7001, 6000, 7000, 5000 },
		{ 7000, 5000, 7001, 6000, 7001, 6000 },
	};

	(void)state;
	CHECK_CASES(c);
}

static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

/* Products far beyond 64 bits: a sweep preempted for minutes, and the extremes. */
static void
interp_product_overflows_64_bits(void **state)
{
	static const struct interp_case c[] = {
		/* 2^61 * 3 * 2^61 = 3 * 2^122. */
		{ 10, 100, 10 + (1ull << 62), 100 + 3 * (1ull << 61), 10 + (1ull << 61),
		  100 + 3 * (1ull << 60) },
		/* 1000 s at 2.6 GHz: (1.3e12 + 1) * 1e12 / 2.6e12 = 5e11 + 0.38. */
		{ 0, 0, 2600000000000ull, 1000000000000ull, 1300000000001ull, 500000000000ull },
		/* Either side of the 64-bit fast path (both factors below 2^32). */
		{ 0, 0, 1ull << 33, (1ull << 32) - 1, (1ull << 32) - 1, (1ull << 31) - 1 },
		{ 0, 0, 1ull << 33, (1ull << 32) - 1, 1ull << 32, (1ull << 31) - 1 },
		{ 0, 0, 1ull << 33, (1ull << 32) - 1, (1ull << 32) + 2, 1ull << 31 },
		{ 0, 0, 1ull << 33, 1ull << 32, 1ull << 31, 1ull << 30 },
		{ 0, 0, 1ull << 33, 1ull << 32, (1ull << 31) + 1, 1ull << 30 },
		/* The whole range. */
		{ 0, 0, UINT64_MAX, UINT64_MAX, 1ull << 63, 1ull << 63 },
		{ 0, 0, UINT64_MAX, UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1 },
		{ 0, 0, UINT64_MAX, 3, UINT64_MAX - 1, 2 },
		{ 0, 0, 3, UINT64_MAX, 1, UINT64_MAX / 3 },
		{ 0, 0, 3, UINT64_MAX, 2, UINT64_MAX / 3 * 2 },
	};
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	(void)state;
	CHECK_CASES(c);
	/* Random wide pairs: exact floors, within the ends, non-decreasing in x. */
	for (int i = 0; i < 20000; i++) {
		uint64_t a = next_rand(&rng), b = next_rand(&rng), x, y, r, q;
		uint64_t w = a >> (i % 40), h = b >> (i % 23);
		struct ks_clock_pair p0 = pair(w / 3, h / 5), p1 = pair(w / 3 + w / 2 + 2, h / 5 + h / 2);

		x = p0.tsc + (w / 2 + 2) / 7 * (uint64_t)(i % 8);
		y = x + (w / 2 + 2) / 11;
		r = ks_stamp_interp(x, &p0, &p1);
		q = ks_stamp_interp(y, &p0, &p1);
		assert_true(r >= p0.mono && r <= p1.mono);
		assert_true(q >= r);
		if (x > p0.tsc && x < p1.tsc)
			assert_floor_quotient(r, x, &p0, &p1);
	}
}

static void
bound_of_two_pairs(void **state)
{
	struct ks_clock_pair p0 = { .tsc = 1, .mono = 1000, .half_ns = 30 };
	struct ks_clock_pair p1 = { .tsc = 9, .mono = 1000 + 5000000, .half_ns = 45 };

	(void)state;
	/* The wider half width, 1 ppm of 5 ms, 1 for rounding. */
	assert_int_equal(ks_stamp_bound(&p0, &p1), 45 + 5 + 1);
	p1.half_ns = 20;
	assert_int_equal(ks_stamp_bound(&p0, &p1), 30 + 5 + 1);
	p1.mono = 900;
	assert_int_equal(ks_stamp_bound(&p0, &p1), 30 + 0 + 1);
}

/* A real pair: its time lies between clock reads made before and after it. */
static void
real_pair_lies_between_clock_reads(void **state)
{
	char why[160] = "";
	bool trusted = ks_stamp_tsc_trusted(why, sizeof(why));

	(void)state;
	printf("TSC %s%s%s\n", trusted ? "trusted" : "not trusted", trusted ? "" : ": ", why);
	if (!KS_STAMP_HAVE_TSC)
		skip();
	for (int i = 0; i < 1000; i++) {
		struct ks_clock_pair p;
		uint64_t before = ks_mono_ns(), after, x0 = ks_tsc_read(), x1;

		ks_clock_pair_read(&p);
		x1 = ks_tsc_read();
		after = ks_mono_ns();
		assert_true(before <= p.mono - p.half_ns + 1);
		assert_true(p.mono + p.half_ns <= after);
		assert_true(p.mono <= p.last_ns && p.last_ns <= after);
		assert_true(x0 <= p.tsc && p.tsc <= x1);
	}
}

/* ---- the bound, with the poll thread preempted ----------------------------- */

#define NR_TARGETS	16		/* a VM and 15 vCPUs */
#define WORDS		4
#define RING		1024		/* every sweep of the run stays in the ring */
#define HZ		200
#define PREEMPT_NS	(5 * 1000 * 1000ull)
#define SWEEPS		16		/* wait for this many */

enum preempt { BY_FIFO_THREAD, BY_SLEEP };

/* Sweep s preempts target preempt_target(s) (or none: NR_TARGETS). */
static uint32_t
preempt_target(uint64_t s)
{
	switch (s) {
	case 4: return 0;
	case 7: return NR_TARGETS / 2;
	case 10: return NR_TARGETS - 1;
	case 11: return 5;
	default: return NR_TARGETS;
	}
}

struct record {
	uint64_t sweep;
	uint64_t start, end;		/* CLOCK_MONOTONIC at the read's start and end */
	long nivcsw;			/* involuntary switches during it */
};

struct run {
	enum preempt how;
	sem_t hog_go;
	pthread_t hog;
	bool hog_started;
	atomic_bool hog_stop;
	struct record rec[RING][NR_TARGETS];	/* by sweep % RING; the poll thread writes */
	uint64_t preempted;			/* reads preempted */
};

struct src {
	struct run *r;
	uint32_t target;
};

static long
nivcsw(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nivcsw;
}

/* The real-time thread: woken, it takes the CPU for PREEMPT_NS, then sleeps again. */
static void *
hog(void *arg)
{
	struct run *r = arg;

	for (;;) {
		uint64_t t0;

		while (sem_wait(&r->hog_go) < 0 && errno == EINTR)
			;
		if (atomic_load(&r->hog_stop))
			return NULL;
		t0 = ks_mono_ns();
		while (ks_mono_ns() - t0 < PREEMPT_NS)
			;
	}
}

static int
src_read(void *ctx, _Atomic uint64_t *dst, uint32_t words, uint64_t sweep)
{
	struct src *c = ctx;
	struct record *rec = &c->r->rec[sweep % RING][c->target];
	long sw = nivcsw();

	rec->start = ks_mono_ns();
	if (preempt_target(sweep) == c->target) {
		if (c->r->how == BY_FIFO_THREAD) {
			/* The hog wakes on this CPU and preempts us on the way out of sem_post(). */
			sem_post(&c->r->hog_go);
		} else {
			struct timespec ts = { 0, (long)PREEMPT_NS };

			while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
				;
		}
	}
	for (uint32_t w = 0; w < words; w++)
		atomic_store_explicit(&dst[w], sweep, memory_order_relaxed);
	rec->nivcsw = nivcsw() - sw;
	rec->sweep = sweep;
	rec->end = ks_mono_ns();
	return 0;
}

static void
src_release(void *ctx)
{
	free(ctx);
}

static const struct ks_source_ops src_ops = { .read = src_read, .release = src_release };

static const struct ks_seg_stat_def stat = {
	.name = "c0", .type = KS_TYPE_CUMULATIVE, .unit = KS_UNIT_NONE, .base = 10, .size = 1,
};

/*
 * The kernel's clock discipline (adjtimex(2)).  The clock's rate relative
 * to the TSC changes beyond the kernel's own steps (which the engine's
 * bound covers) only when an NTP daemon changes the frequency or the
 * tick, or while an offset is being slewed.
 */
struct discipline {
	struct timex tx;
	struct timeval adj;
};

static void
discipline_read(struct discipline *d)
{
	memset(d, 0, sizeof(*d));
	assert_true(adjtimex(&d->tx) >= 0);
	assert_int_equal(adjtime(NULL, &d->adj), 0);
}

static bool
discipline_steady(const struct discipline *a, const struct discipline *b)
{
	return a->tx.freq == b->tx.freq && a->tx.tick == b->tx.tick && a->tx.offset == 0 &&
	       b->tx.offset == 0 && a->adj.tv_sec == 0 && a->adj.tv_usec == 0 &&
	       b->adj.tv_sec == 0 && b->adj.tv_usec == 0;
}

/* Pin the calling thread (and threads it makes) to @cpu; return the old mask in @old. */
static int
pin(int cpu, cpu_set_t *old)
{
	cpu_set_t set;

	if (old)
		sched_getaffinity(0, sizeof(*old), old);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int
last_cpu(void)
{
	cpu_set_t set;
	int cpu = 0;

	sched_getaffinity(0, sizeof(set), &set);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			cpu = c;
	return cpu;
}

/* The SCHED_FIFO thread on @cpu; false (and why) if this system does not let us. */
static bool
hog_start(struct run *r, int cpu)
{
	struct sched_param sp = { .sched_priority = 1 };
	pthread_attr_t attr;
	cpu_set_t set;
	int ret;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	ret = pthread_create(&r->hog, &attr, hog, r);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		printf("SKIP the SCHED_FIFO preemption: cannot make a real-time thread: %s\n",
		       strerror(ret));
		return false;
	}
	r->hog_started = true;
	return true;
}

static void
hog_stop(struct run *r)
{
	if (!r->hog_started)
		return;
	atomic_store(&r->hog_stop, true);
	sem_post(&r->hog_go);
	pthread_join(r->hog, NULL);
}

static void
run_preempted(enum preempt how, enum ks_stamp_mode stamp)
{
	struct ks_engine_config cfg;
	struct ks_engine_stats st;
	struct kvmstats_error err;
	struct kvmstats_segment *seg;
	struct ks_target_def targets[NR_TARGETS];
	struct ks_block_def blocks[NR_TARGETS];
	struct discipline d0, d1;
	struct ks_engine *e;
	struct run *r = calloc(1, sizeof(*r));
	struct kvmstats_sample (*smp)[RING] = calloc(NR_TARGETS, sizeof(*smp));
	uint64_t *vals = calloc((size_t)RING * WORDS, sizeof(*vals));
	unsigned got[NR_TARGETS];
	uint64_t first = UINT64_MAX, last = 0, max_out = 0, max_pre = 0, bound, slew_d = 0;
	uint64_t stopped, added;
	char vm[64];
	cpu_set_t old;
	int cpu = last_cpu();
	bool under_valgrind = getenv("KVMSTATS_UNDER_VALGRIND") != NULL;

	assert_non_null(r);
	r->how = how;
	sem_init(&r->hog_go, 0, 0);
	if (how == BY_FIFO_THREAD && under_valgrind) {
		/* Its threads take turns at valgrind's lock: no real preemption. */
		printf("SKIP the SCHED_FIFO preemption under valgrind\n");
		sem_destroy(&r->hog_go);
		free(r), free(smp), free(vals);
		skip();
	}
	if (how == BY_FIFO_THREAD && !hog_start(r, cpu)) {
		sem_destroy(&r->hog_go);
		free(r), free(smp), free(vals);
		skip();
	}
	snprintf(vm, sizeof(vm), "stamp-%d-%d-%d", getpid(), (int)how, (int)stamp);
	for (uint32_t t = 0; t < NR_TARGETS; t++) {
		struct src *c = calloc(1, sizeof(*c));

		assert_non_null(c);
		*c = (struct src) { .r = r, .target = t };
		blocks[t] = (struct ks_block_def) {
			.provider = "kvm", .nr_stats = 1, .stats = &stat, .words = WORDS,
			.ops = &src_ops, .ctx = c,
		};
		targets[t] = (struct ks_target_def) {
			.kind = t ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = t ? t - 1 : KS_VCPU_INDEX_NONE,
			.label = "", .id = "", .nr_blocks = 1, .blocks = &blocks[t],
		};
	}
	ks_engine_config_init(&cfg);
	cfg.hz = HZ;
	cfg.ring_depth = RING;
	cfg.ring_min_bytes = 0;
	cfg.stamp = stamp;
	discipline_read(&d0);
	/* The poll thread, made by this one, is pinned to the hog's CPU. */
	assert_int_equal(pin(cpu, &old), 0);
	added = ks_mono_ns();
	if (ks_engine_create(&cfg, &e, &err) < 0 ||
	    ks_engine_add_vm(e, &(struct ks_vm_def) { .vm_name = vm, .nr_targets = NR_TARGETS,
			     .targets = targets }, NULL, &err) < 0 ||
	    ks_engine_start(e, &err) < 0)
		fail_msg("engine: %s", err.msg);
	sched_setaffinity(0, sizeof(old), &old);
	do {
		usleep(10 * 1000);
		ks_engine_get_stats(e, &st);
	} while (st.sweeps < SWEEPS);
	ks_engine_stop(e);		/* joins the poll thread: its records are ours now */
	stopped = ks_mono_ns();
	discipline_read(&d1);
	hog_stop(r);
	ks_engine_get_stats(e, &st);
	assert_true(st.stamp_tsc == (stamp != KS_STAMP_CLOCK && ks_stamp_tsc_trusted(NULL, 0)));

	if (kvmstats_attach(vm, NULL, &seg, &err) < 0)
		fail_msg("attach: %s", err.msg);
	for (uint32_t t = 0; t < NR_TARGETS; t++) {
		assert_int_equal(kvmstats_read_history(seg, t, RING - 1, vals, (size_t)RING * WORDS,
						       smp[t], &got[t]), 0);
		assert_true(got[t] >= SWEEPS - 2);
		assert_int_equal(got[t], got[0]);
	}
	kvmstats_detach(&seg);

	/* The longest span a sweep's two clock pairs can have had, for the NTP term. */
	for (unsigned k = 0; k < got[0]; k++) {
		uint64_t s = smp[0][k].sweep;
		const struct record *prev = &r->rec[(s - 1) % RING][NR_TARGETS - 1];
		const struct record *next = &r->rec[(s + 1) % RING][0];
		uint64_t from = s > 1 && prev->sweep == s - 1 ? prev->end : added;
		uint64_t to = next->sweep == s + 1 ? next->start : stopped;

		if (to - from > slew_d)
			slew_d = to - from;
	}
	bound = st.stamp_tsc ? st.stamp_bound_ns : 0;
	/*
	 * A rate that changed by up to 20% (chrony slews with the tick,
	 * +-10%, the most there is) adds a quarter of that of the sweep.
	 */
	if (st.stamp_tsc && !discipline_steady(&d0, &d1)) {
		printf("the kernel's clock is being disciplined (adjtimex: freq %ld -> %ld, tick "
		       "%ld -> %ld, offset %ld -> %ld): the bound allows for its rate changing\n",
		       d0.tx.freq, d1.tx.freq, d0.tx.tick, d1.tx.tick, d0.tx.offset, d1.tx.offset);
		bound += slew_d / 20;
	}

	for (unsigned k = 0; k < got[0]; k++) {
		uint64_t s = smp[0][k].sweep;

		for (uint32_t t = 0; t < NR_TARGETS; t++) {
			const struct kvmstats_sample *x = &smp[t][k];
			const struct record *rec = &r->rec[s % RING][t], *nx;
			uint64_t hi;

			assert_int_equal(x->sweep, s);
			assert_int_equal(rec->sweep, s);
			/* The truth: after this read's end, before the next read's start. */
			nx = t + 1 < NR_TARGETS ? &r->rec[s % RING][t + 1] : &r->rec[(s + 1) % RING][0];
			hi = nx->sweep == (t + 1 < NR_TARGETS ? s : s + 1) ? nx->start : stopped;
			if (x->time_ns + bound < rec->end || x->time_ns > hi + bound)
				fail_msg("sweep %llu target %u: time_ns %llu, the read ended at %llu and "
					 "the next began at %llu: off by more than the bound %llu ns",
					 (unsigned long long)s, t, (unsigned long long)x->time_ns,
					 (unsigned long long)rec->end, (unsigned long long)hi,
					 (unsigned long long)bound);
			/* How far outside the truth's window; and after the read in preempted sweeps. */
			if (x->time_ns < rec->end && rec->end - x->time_ns > max_out)
				max_out = rec->end - x->time_ns;
			if (x->time_ns > hi && x->time_ns - hi > max_out)
				max_out = x->time_ns - hi;
			/* Read before the preemption: one stamp per sweep would be 5 ms off. */
			if (t < preempt_target(s) && x->time_ns > rec->end &&
			    x->time_ns - rec->end > max_pre)
				max_pre = x->time_ns - rec->end;
			/* Never backwards: along the sweep, and from one sweep to the next (newest first). */
			if (t > 0)
				assert_true(x->time_ns >= smp[t - 1][k].time_ns);
			if (k > 0 && t == NR_TARGETS - 1)
				assert_true(x->time_ns <= smp[0][k - 1].time_ns);
			if (preempt_target(s) == t) {
				assert_true(rec->end - rec->start >= PREEMPT_NS);
				if (how == BY_FIFO_THREAD)	/* preempted, not blocked */
					assert_true(rec->nivcsw >= 1);
				r->preempted++;
			}
			if (s < first)
				first = s;
			if (s > last)
				last = s;
		}
	}
	/* Each of the four preemptions was in the sweeps checked. */
	assert_true(first <= 4 && last >= 11);
	assert_int_equal(r->preempted, 4);
	/*
	 * The bound itself is the clock pairs' half width and 1 ppm: a few
	 * hundred ns, whatever the preemption.  (Under valgrind a clock read
	 * is far slower, and so is every pair.)
	 */
	if (st.stamp_tsc && !under_valgrind)
		assert_true(st.stamp_bound_ns <= KS_CLOCK_PAIR_MAX_NS / 2 + slew_d / 1000000 + 1);
	printf("%s, %s: sweeps %llu-%llu, 4 reads preempted for 5 ms; time_ns at most %llu ns "
	       "outside [its read's end, the next read's start] (bound %llu ns); targets read "
	       "before a preemption: at most %llu ns after their read's end\n",
	       how == BY_FIFO_THREAD ? "SCHED_FIFO thread" : "sleep",
	       st.stamp_tsc ? "TSC stamps" : "a clock read per target",
	       (unsigned long long)first, (unsigned long long)last, (unsigned long long)max_out,
	       (unsigned long long)bound, (unsigned long long)max_pre);
	ks_engine_destroy(&e);
	sem_destroy(&r->hog_go);
	free(r);
	free(smp);
	free(vals);
}

static void
preempted_by_fifo_thread_tsc(void **state)
{
	(void)state;
	run_preempted(BY_FIFO_THREAD, KS_STAMP_TSC);
}

static void
preempted_by_sleep_tsc(void **state)
{
	(void)state;
	run_preempted(BY_SLEEP, KS_STAMP_TSC);
}

static void
preempted_by_fifo_thread_clock(void **state)
{
	(void)state;
	run_preempted(BY_FIFO_THREAD, KS_STAMP_CLOCK);
}

static void
preempted_by_sleep_clock(void **state)
{
	(void)state;
	run_preempted(BY_SLEEP, KS_STAMP_CLOCK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(interp_between_and_at_the_pairs),
		cmocka_unit_test(interp_clamps_to_the_sweep),
		cmocka_unit_test(interp_tsc_backwards_or_still),
		cmocka_unit_test(interp_zero_length_sweep),
		cmocka_unit_test(interp_product_overflows_64_bits),
		cmocka_unit_test(bound_of_two_pairs),
		cmocka_unit_test(real_pair_lies_between_clock_reads),
		cmocka_unit_test(preempted_by_fifo_thread_tsc),
		cmocka_unit_test(preempted_by_sleep_tsc),
		cmocka_unit_test(preempted_by_fifo_thread_clock),
		cmocka_unit_test(preempted_by_sleep_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
