/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h - timing, percentiles and result lines for the benchmarks.
 *
 * Single operations are timed with the TSC where there is one (rdtscp
 * waits for earlier instructions, lfence keeps later ones from starting
 * early), converted to ns with a ratio calibrated against CLOCK_MONOTONIC
 * in the same run.  Every figure is printed beside its baseline as a
 * ratio, because these machines are shared and noisy: absolute numbers
 * drift, ratios measured in one run much less.
 */
#ifndef KVMSTATS_BENCH_UTIL_H
#define KVMSTATS_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

static inline uint64_t
bench_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A timestamp in ticks: TSC on x86-64, else ns. */
static inline uint64_t
bench_ticks(void)
{
#if defined(__x86_64__)
	unsigned aux;
	uint64_t t = __rdtscp(&aux);

	_mm_lfence();
	return t;
#else
	return bench_mono_ns();
#endif
}

/* ns per tick, measured over ~50 ms. */
static inline double
bench_calibrate(void)
{
	uint64_t n0 = bench_mono_ns(), t0 = bench_ticks(), n1, t1;

	do
		n1 = bench_mono_ns();
	while (n1 - n0 < 50 * 1000 * 1000);
	t1 = bench_ticks();
	return (double)(n1 - n0) / (double)(t1 - t0);
}

static int
bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct bench_dist {
	double p50, p99, max, mean;	/* ns */
};

/* Sort @v (ticks) and summarise it in ns. */
static inline struct bench_dist
bench_summarise(uint64_t *v, size_t n, double ns_per_tick)
{
	struct bench_dist d = { 0 };
	double sum = 0;

	if (n == 0)
		return d;
	qsort(v, n, sizeof(*v), bench_cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	d.p50 = (double)v[n / 2] * ns_per_tick;
	d.p99 = (double)v[(size_t)((double)n * 0.99)] * ns_per_tick;
	d.max = (double)v[n - 1] * ns_per_tick;
	d.mean = sum / (double)n * ns_per_tick;
	return d;
}

/*
 * One result: a human line on stdout and a JSON object on @json (may be
 * NULL).  @ratio is baseline / measured at p50, >1 means we are faster.
 */
static inline void
bench_report(FILE *json, const char *name, const char *env, struct bench_dist d,
	     const char *ref_name, struct bench_dist ref, double extra_retries)
{
	double ratio = d.p50 > 0 ? ref.p50 / d.p50 : 0;

	printf("%-34s p50 %9.1f ns  p99 %9.1f ns  max %10.1f ns | %-22s p50 %9.1f ns  "
	       "p99 %9.1f ns | %s/ours %6.2fx\n",
	       name, d.p50, d.p99, d.max, ref_name, ref.p50, ref.p99, ref_name, ratio);
	if (json)
		fprintf(json, "{\"name\":\"%s\",\"unit\":\"ns\",\"env\":\"%s\",\"p50\":%.1f,"
			"\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"reference\":\"%s\","
			"\"reference_p50\":%.1f,\"reference_p99\":%.1f,\"ratio\":%.3f,"
			"\"retries_per_read\":%.6f}\n",
			name, env, d.p50, d.p99, d.max, d.mean, ref_name, ref.p50, ref.p99,
			ratio, extra_retries);
}

#endif /* KVMSTATS_BENCH_UTIL_H */
