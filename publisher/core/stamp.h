/* SPDX-License-Identifier: MIT */
/*
 * stamp.h - each target's CLOCK_MONOTONIC time in a sweep, from the TSC.
 *
 * A sweep stamps every target with the time its read ended.  Right after
 * a pread() a clock read costs 30-40 ns, a tenth of the pread(), and an
 * rdtscp about 20.  So, where the TSC can be trusted, a sweep reads:
 *
 *   pair 0          clock a0, TSC x0, clock b0     (ks_clock_pair_read())
 *   target t        its reads, then TSC x_t        (ks_tsc_read())
 *   pair 1          clock a1, TSC x1, clock b1
 *
 * and gives target t the time interpolated linearly between the pairs,
 * clamped to them (ks_stamp_interp()).
 *
 * Why that is right.  With the kernel's clocksource "tsc", CLOCK_MONOTONIC
 * is a function of the TSC: each timekeeping update k sets a base, a
 * cycle_last and a rate mult/shift, and until the next update the clock at
 * TSC value x is base_k + ((x - cycle_last_k) * mult_k >> shift).  Call
 * that C(x): piecewise linear, non-decreasing, the same on every CPU (the
 * kernel keeps that clocksource only while its watchdog finds the TSCs of
 * all CPUs in step).  Each clock read computes C() of a TSC read inside
 * clock_gettime(); fences keep the three TSC reads of a pair in program
 * order, so a <= C(x) <= b: the pair's midpoint is C(x) within half its
 * width.  A preemption anywhere outside the two pairs only stretches the
 * interval between them; the TSC counts on, the pairs are real clock
 * reads, and the interpolation stays as good as C() is straight:
 *
 *   |time(x_t) - C(x_t)|  <=  max(half widths)  +  D * dr / 4
 *
 * where D is the time between the pairs and dr the change, within it, of
 * C()'s rate relative to the TSC.  The kernel changes that rate only at a
 * timekeeping update: by one unit of mult (a few 1e-7) to track NTP's
 * frequency, which ks_stamp_bound() covers with D / 10^6; by more only
 * when an NTP daemon changes the frequency or slews an offset
 * (adjtimex(2): up to +-500 ppm each) or changes the tick (chrony's fast
 * slews: up to +-10%) -- those the engine cannot see, and they add
 * D * dr / 4.  Compare one clock read
 * per sweep (off by the whole preemption) or the TSC extrapolated with a
 * calibrated rate (off by the rate's error times the preemption, and
 * CLOCK_MONOTONIC itself is slewed by up to 500 ppm).
 *
 * Trusted means: x86-64, CPUID's invariant TSC (it runs at one rate in
 * every power state), and the kernel's current clocksource "tsc", read once
 * (ks_stamp_tsc_trusted()).  Where the TSC is not trusted, or went
 * backwards across a sweep anyway, the engine reads the clock per target.
 * The clamp keeps even a wrong TSC from putting a time outside its sweep.
 */
#ifndef KVMSTATS_PUBLISHER_STAMP_H
#define KVMSTATS_PUBLISHER_STAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ks_time.h"

#if defined(__x86_64__) && defined(__SIZEOF_INT128__)
#define KS_STAMP_HAVE_TSC	1
#include <x86intrin.h>
#else
#define KS_STAMP_HAVE_TSC	0
#endif

/*
 * A pair wider than this is read again (an interrupt or a preemption fell
 * between its clock reads), up to KS_CLOCK_PAIR_TRIES times; the narrowest
 * is kept.  A pair is 40-70 ns wide on a quiet CPU.
 */
#define KS_CLOCK_PAIR_MAX_NS	1000
#define KS_CLOCK_PAIR_TRIES	8

/* A TSC value and CLOCK_MONOTONIC at it, within half_ns. */
struct ks_clock_pair {
	uint64_t tsc;
	uint64_t mono;		/* the midpoint of the two clock reads */
	uint64_t half_ns;	/* half their distance, rounded up */
	uint64_t last_ns;	/* the last clock read of all tries: the latest time known */
};

/*
 * ks_stamp_tsc_trusted() - may a sweep's times come from the TSC here?
 * Reads CPUID and /sys/devices/system/clocksource/clocksource0/
 * current_clocksource.  Return: true, or false with @why (of @len bytes;
 * NULL, 0: not wanted) saying why not.
 */
bool ks_stamp_tsc_trusted(char *why, size_t len);

/*
 * ks_stamp_interp() - the time of TSC value @x, between pairs @p0 and @p1
 * (read in that order): C() interpolated linearly through the pairs'
 * points, clamped to [p0->mono, p1->mono].  Exact in 128 bits, rounded
 * down.  A TSC that stood still or went backwards between the pairs gives
 * every @x one of the two ends, never a time outside them.
 */
static inline uint64_t
ks_stamp_interp(uint64_t x, const struct ks_clock_pair *p0, const struct ks_clock_pair *p1)
{
#if KS_STAMP_HAVE_TSC
	uint64_t dx, dm;

	if (x <= p0->tsc || p1->mono <= p0->mono)
		return p0->mono;
	if (x >= p1->tsc)
		return p1->mono;
	/*
	 * Here p0->tsc < x < p1->tsc, so the divisor is at least 2, and
	 * dx / (p1->tsc - p0->tsc) < 1: the quotient is below dm and the sum
	 * cannot overflow.  Factors below 2^32 (any sweep shorter than 4 s)
	 * multiply within 64 bits, at a quarter of the 128-bit division's
	 * cost; any others within 128.
	 */
	dx = x - p0->tsc;
	dm = p1->mono - p0->mono;
	if (((dx | dm) >> 32) == 0)
		return p0->mono + dx * dm / (p1->tsc - p0->tsc);
	return p0->mono + (uint64_t)((unsigned __int128)dx * dm / (p1->tsc - p0->tsc));
#else
	(void)x;
	(void)p1;
	return p0->mono;
#endif
}

/*
 * ks_stamp_bound() - what a time ks_stamp_interp() gave between @p0 and
 * @p1 may be off from C() by, in ns, while no NTP daemon changes the
 * clock's rate meanwhile (see above): the wider pair's half width, one
 * part in 10^6 of the interval for the kernel's own rate steps, and 1 ns
 * for rounding down.
 */
static inline uint64_t
ks_stamp_bound(const struct ks_clock_pair *p0, const struct ks_clock_pair *p1)
{
	uint64_t half = p0->half_ns > p1->half_ns ? p0->half_ns : p1->half_ns;
	uint64_t d = p1->mono > p0->mono ? p1->mono - p0->mono : 0;

	return half + d / 1000000 + 1;
}

#if KS_STAMP_HAVE_TSC
/*
 * ks_tsc_read() - the TSC once every instruction before it has executed
 * (rdtscp waits for them; the read is complete), for a target's time.
 */
static inline uint64_t
ks_tsc_read(void)
{
	unsigned aux;

	return __rdtscp(&aux);
}

/*
 * ks_clock_pair_once() - CLOCK_MONOTONIC paired with the TSC.  lfence
 * lets no later instruction start before every earlier one has completed:
 * the first keeps our rdtsc after the first clock read's own TSC read, the
 * second keeps the second clock read's TSC read after ours.  So the three
 * TSC values are in program order and, C() being non-decreasing, C(tsc)
 * lies between the two clock reads.
 */
static inline void
ks_clock_pair_once(struct ks_clock_pair *p)
{
	uint64_t a = ks_mono_ns(), x, b;

	_mm_lfence();
	x = __rdtsc();
	_mm_lfence();
	b = ks_mono_ns();
	p->tsc = x;
	p->mono = a + (b - a) / 2;
	p->half_ns = (b - a + 1) / 2;
	p->last_ns = b;
}

/* The narrowest of up to KS_CLOCK_PAIR_TRIES, the first no wider than KS_CLOCK_PAIR_MAX_NS. */
static inline void
ks_clock_pair_read(struct ks_clock_pair *p)
{
	struct ks_clock_pair q;

	ks_clock_pair_once(p);
	for (int i = 1; i < KS_CLOCK_PAIR_TRIES && 2 * p->half_ns > KS_CLOCK_PAIR_MAX_NS; i++) {
		ks_clock_pair_once(&q);
		if (q.half_ns < p->half_ns)
			*p = q;
		p->last_ns = q.last_ns;
	}
}
#else
/* Never called: without a TSC ks_stamp_tsc_trusted() says no. */
static inline uint64_t
ks_tsc_read(void)
{
	return 0;
}

static inline void
ks_clock_pair_read(struct ks_clock_pair *p)
{
	p->tsc = 0;
	p->mono = p->last_ns = ks_mono_ns();
	p->half_ns = 0;
}
#endif

#endif /* KVMSTATS_PUBLISHER_STAMP_H */
