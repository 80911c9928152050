/* SPDX-License-Identifier: MIT */
/*
 * test_stamp.c - each target's time in a sweep (publisher/core/stamp.h).
 *
 *   the arithmetic   ks_stamp_interp() at and between its pairs, clamped,
 *                    rounded down, with a TSC that stood still or went
 *                    backwards, a zero-length sweep, and products that do
 *                    not fit in 64 bits; ks_stamp_bound(); a real pair
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ks_time.h"
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

static void
interp_between_and_at_the_pairs(void **state)
{
	struct ks_clock_pair p0 = pair(1000, 5000), p1 = pair(3000, 9000);

	(void)state;
	if (!KS_STAMP_HAVE_TSC)
		skip();
	assert_int_equal(ks_stamp_interp(1000, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(3000, &p0, &p1), 9000);
	assert_int_equal(ks_stamp_interp(2000, &p0, &p1), 7000);
	assert_int_equal(ks_stamp_interp(1001, &p0, &p1), 5002);
	assert_int_equal(ks_stamp_interp(2999, &p0, &p1), 8998);
	/* Rounded down: 1000 * 3 / 3000 = 1, 1001 * 3 / 3000 = 1.001. */
	p1 = pair(4000, 5003);
	assert_int_equal(ks_stamp_interp(2000, &p0, &p1), 5001);
	assert_int_equal(ks_stamp_interp(2001, &p0, &p1), 5001);
	assert_int_equal(ks_stamp_interp(1999, &p0, &p1), 5000);
	/* Slower clock than TSC and faster. */
	p1 = pair(1000 + 2600000, 5000 + 1000000);
	assert_int_equal(ks_stamp_interp(1000 + 1300000, &p0, &p1), 5000 + 500000);
	p1 = pair(1010, 5000 + 1000000);
	assert_int_equal(ks_stamp_interp(1001, &p0, &p1), 5000 + 100000);
}

static void
interp_clamps_to_the_sweep(void **state)
{
	struct ks_clock_pair p0 = pair(1000, 5000), p1 = pair(3000, 9000);

	(void)state;
	if (!KS_STAMP_HAVE_TSC)
		skip();
	assert_int_equal(ks_stamp_interp(0, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(999, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(3001, &p0, &p1), 9000);
	assert_int_equal(ks_stamp_interp(UINT64_MAX, &p0, &p1), 9000);
}

/* A TSC that went backwards, or stood still: one of the two ends, never outside them. */
static void
interp_tsc_backwards_or_still(void **state)
{
	struct ks_clock_pair p0 = pair(3000, 5000), p1 = pair(1000, 9000);

	(void)state;
	if (!KS_STAMP_HAVE_TSC)
		skip();
	for (uint64_t x = 0; x < 4000; x += 250) {
		uint64_t r = ks_stamp_interp(x, &p0, &p1);

		assert_true(r == 5000 || r == 9000);
	}
	assert_int_equal(ks_stamp_interp(2000, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(3500, &p0, &p1), 9000);
	/* TSC still, the clock moved. */
	p1 = pair(3000, 9000);
	assert_int_equal(ks_stamp_interp(3000, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(2999, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(3001, &p0, &p1), 9000);
	/* A clock that went backwards (it cannot): the start, not an underflow. */
	p1 = pair(4000, 4000);
	assert_int_equal(ks_stamp_interp(3500, &p0, &p1), 5000);
}

/* Both pairs in the same ns, or in the same TSC tick: no division by zero. */
static void
interp_zero_length_sweep(void **state)
{
	struct ks_clock_pair p0 = pair(7000, 5000), p1 = pair(7000, 5000);

	(void)state;
	if (!KS_STAMP_HAVE_TSC)
		skip();
	assert_int_equal(ks_stamp_interp(7000, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(6999, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(7001, &p0, &p1), 5000);
	/* The clock did not move, the TSC did. */
	p1 = pair(9000, 5000);
	assert_int_equal(ks_stamp_interp(8000, &p0, &p1), 5000);
	/* One tick apart. */
	p1 = pair(7001, 6000);
	assert_int_equal(ks_stamp_interp(7000, &p0, &p1), 5000);
	assert_int_equal(ks_stamp_interp(7001, &p0, &p1), 6000);
}

/* Products far beyond 64 bits: a sweep preempted for minutes, and the extremes. */
static void
interp_product_overflows_64_bits(void **state)
{
	struct ks_clock_pair p0 = pair(10, 100), p1 = pair(10 + (1ull << 62), 100 + 3 * (1ull << 61));
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	(void)state;
	if (!KS_STAMP_HAVE_TSC)
		skip();
	/* 2^61 * 3 * 2^61 = 3 * 2^122. */
	assert_int_equal(ks_stamp_interp(10 + (1ull << 61), &p0, &p1), 100 + 3 * (1ull << 60));
	/* 1000 s at 2.6 GHz: (1.3e12 + 1) * 1e12 / 2.6e12 = 5e11 + 0.38. */
	p0 = pair(0, 0);
	p1 = pair(2600000000000ull, 1000000000000ull);
	assert_int_equal(ks_stamp_interp(1300000000001ull, &p0, &p1), 500000000000ull);
	/* Either side of the 64-bit fast path (both factors below 2^32). */
	p1 = pair(1ull << 33, (1ull << 32) - 1);
	assert_int_equal(ks_stamp_interp((1ull << 32) - 1, &p0, &p1), (1ull << 31) - 1);
	assert_int_equal(ks_stamp_interp(1ull << 32, &p0, &p1), (1ull << 31) - 1);
	assert_int_equal(ks_stamp_interp((1ull << 32) + 2, &p0, &p1), 1ull << 31);
	p1 = pair(1ull << 33, 1ull << 32);
	assert_int_equal(ks_stamp_interp(1ull << 31, &p0, &p1), 1ull << 30);
	assert_int_equal(ks_stamp_interp((1ull << 31) + 1, &p0, &p1), 1ull << 30);
	/* The whole range. */
	p1 = pair(UINT64_MAX, UINT64_MAX);
	assert_int_equal(ks_stamp_interp(1ull << 63, &p0, &p1), 1ull << 63);
	assert_int_equal(ks_stamp_interp(UINT64_MAX - 1, &p0, &p1), UINT64_MAX - 1);
	p1 = pair(UINT64_MAX, 3);
	assert_int_equal(ks_stamp_interp(UINT64_MAX - 1, &p0, &p1), 2);
	p1 = pair(3, UINT64_MAX);
	assert_int_equal(ks_stamp_interp(1, &p0, &p1), UINT64_MAX / 3);
	assert_int_equal(ks_stamp_interp(2, &p0, &p1), UINT64_MAX / 3 * 2);
	/* Random wide pairs: exact floors, within the ends, non-decreasing in x. */
	for (int i = 0; i < 20000; i++) {
		uint64_t a, b, c, d, x, y, r, s;

		rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
		a = rng * 0x2545F4914F6CDD1Dull;
		rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
		b = rng * 0x2545F4914F6CDD1Dull;
		c = a >> (i % 40), d = b >> (i % 23);
		p0 = pair(c / 3, d / 5);
		p1 = pair(c / 3 + c / 2 + 2, d / 5 + d / 2);
		x = p0.tsc + (c / 2 + 2) / 7 * (uint64_t)(i % 8);
		y = x + (c / 2 + 2) / 11;
		r = ks_stamp_interp(x, &p0, &p1);
		s = ks_stamp_interp(y, &p0, &p1);
		assert_true(r >= p0.mono && r <= p1.mono);
		assert_true(s >= r);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
