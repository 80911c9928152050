/* SPDX-License-Identifier: MIT */
/*
 * test_bench_timer.c - the benches' estimate of the TSC's step
 * (bench/bench_util.h, bench_step_of()), on the region lengths of timers
 * made up to be fine, stepping by whole ticks and stepping by 24.5 ticks
 * as a Zen 3 guest's does.  The step decides whether single-read ratios
 * are of p50s or of means: a stepping timer taken for a fine one made
 * every single-read ratio a ratio of two points on a 10-ns grid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../bench/bench_util.h"

static unsigned seen[BENCH_STEP_SPAN];

/*
 * What a timer that steps by @step ticks reads at true time @t: the count
 * of whole steps, in whole ticks (a step of 24.5 shows as 24 and 25).
 */
static uint64_t
reading(double step, double t)
{
	return (uint64_t)((double)(uint64_t)(t / step) * step);
}

/* Regions of true length @from to @to ticks, @per each, read on a timer of @step. */
static void
lengths_on(double step, double from, double to, unsigned per)
{
	memset(seen, 0, sizeof(seen));
	for (double d = from; d < to; d += 0.25) {
		for (unsigned p = 0; p < per; p++) {
			/* Each start at its own phase of the step. */
			double t0 = 1000.0 + (double)p * 0.37 * step;
			uint64_t len = reading(step, t0 + d) - reading(step, t0);

			if (len < BENCH_STEP_SPAN)
				seen[len]++;
		}
	}
}

static void
test_fine_timer(void **state)
{
	(void)state;
	lengths_on(1, 70, 1700, 4);
	assert_true(bench_step_of(seen, BENCH_STEP_HEAVY) == 1);
}

static void
test_whole_step(void **state)
{
	(void)state;
	lengths_on(26, 60, 1700, 4);
	assert_float_equal(bench_step_of(seen, BENCH_STEP_HEAVY), 26, 0.01);
}

static void
test_fractional_step(void **state)
{
	(void)state;
	/* 24 and 25 ticks in turn: the gcd of the lengths is 1. */
	lengths_on(24.5, 60, 1700, 4);
	assert_float_equal(bench_step_of(seen, BENCH_STEP_HEAVY), 24.5, 0.01);
	/* Over a long span: the smallest gap, 24, must not miscount it. */
	lengths_on(24.5, 60, 4000, 4);
	assert_float_equal(bench_step_of(seen, BENCH_STEP_HEAVY), 24.5, 0.01);
}

static void
test_strays_and_gaps(void **state)
{
	(void)state;
	lengths_on(24.5, 60, 1700, 4);
	/* An interrupt's lengths, a few times each, between steps and beyond. */
	seen[86] += 9;
	seen[87] += 9;
	seen[2500] += 20;
	for (unsigned v = 100; v < 1700; v += 37)
		seen[v] += 1;
	/* A step nobody's region fell on. */
	memset(seen + 290, 0, 10 * sizeof(seen[0]));
	assert_float_equal(bench_step_of(seen, BENCH_STEP_HEAVY), 24.5, 0.01);
}

static void
test_too_little_to_tell(void **state)
{
	(void)state;
	/* Every region as long as the next: one length, no step to see. */
	memset(seen, 0, sizeof(seen));
	seen[73] = 5000;
	seen[74] = 5000;
	assert_true(bench_step_of(seen, BENCH_STEP_HEAVY) == 1);
	/* Two clusters are not yet a lattice. */
	seen[98] = 5000;
	assert_true(bench_step_of(seen, BENCH_STEP_HEAVY) == 1);
	memset(seen, 0, sizeof(seen));
	assert_true(bench_step_of(seen, BENCH_STEP_HEAVY) == 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fine_timer),
		cmocka_unit_test(test_whole_step),
		cmocka_unit_test(test_fractional_step),
		cmocka_unit_test(test_strays_and_gaps),
		cmocka_unit_test(test_too_little_to_tell),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
