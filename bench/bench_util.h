/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h - timing, percentiles, references and result lines for the
 * benchmarks.
 *
 * Single operations are timed with the TSC (rdtscp waits for earlier
 * instructions, lfence keeps later ones from starting early), converted to
 * ns with a ratio calibrated against CLOCK_MONOTONIC in the same run.  On
 * a KVM guest the timed pair itself costs tens of ns, so every program
 * measures it first (an empty timed region, bench_timer_overhead()) and
 * every single-operation figure is reported NET of it: each sample minus
 * the empty region's p50, clamped at 0.  Figures that are too short for
 * that to be honest (the cache-line ping-pong) are timed in batches
 * instead and say so.
 *
 * Every figure is printed beside its reference, measured in the same run,
 * as a ratio ours/reference at p50: these machines are shared and noisy,
 * absolute numbers drift, ratios measured in one run much less.
 */
#ifndef KVMSTATS_BENCH_UTIL_H
#define KVMSTATS_BENCH_UTIL_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ks_time.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

static inline uint64_t
bench_mono_ns(void)
{
	return ks_mono_ns();
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

static inline int
bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int
bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct bench_dist {
	double p50, p99, max, mean;	/* ns, or the result's unit */
};

/*
 * Sort @v (ticks) and summarise it in ns, each sample less @minus_ticks
 * (the timer's own cost; 0 for none), clamped at 0.
 */
static inline struct bench_dist
bench_summarise_net(uint64_t *v, size_t n, double ns_per_tick, uint64_t minus_ticks)
{
	struct bench_dist d = { 0 };
	double sum = 0;

	if (n == 0)
		return d;
	for (size_t i = 0; i < n; i++)
		v[i] = v[i] > minus_ticks ? v[i] - minus_ticks : 0;
	qsort(v, n, sizeof(*v), bench_cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	d.p50 = (double)v[n / 2] * ns_per_tick;
	d.p99 = (double)v[(size_t)((double)n * 0.99)] * ns_per_tick;
	d.max = (double)v[n - 1] * ns_per_tick;
	d.mean = sum / (double)n * ns_per_tick;
	return d;
}

static inline struct bench_dist
bench_summarise(uint64_t *v, size_t n, double ns_per_tick)
{
	return bench_summarise_net(v, n, ns_per_tick, 0);
}

/* Summarise values already in their unit (doubles). */
static int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static inline struct bench_dist
bench_summarise_d(double *v, size_t n)
{
	struct bench_dist d = { 0 };
	double sum = 0;

	if (n == 0)
		return d;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	d.p50 = v[n / 2];
	d.p99 = v[(size_t)((double)n * 0.99)];
	d.max = v[n - 1];
	d.mean = sum / (double)n;
	return d;
}

static inline struct bench_dist
bench_point(double v)
{
	return (struct bench_dist) { v, v, v, v };
}

/*
 * The timer's own cost: an empty timed region, in ticks (p50), and its
 * distribution in ns for the report.
 */
static inline uint64_t
bench_timer_overhead(double ns_per_tick, struct bench_dist *d)
{
	enum { N = 200000 };
	uint64_t *v = malloc(N * sizeof(*v)), p50;

	for (size_t i = 0; i < N; i++) {
		uint64_t t0 = bench_ticks(), t1 = bench_ticks();

		v[i] = t1 - t0;
	}
	qsort(v, N, sizeof(*v), bench_cmp_u64);
	p50 = v[N / 2];
	*d = bench_summarise(v, N, ns_per_tick);
	free(v);
	return p50;
}

/*
 * One measurement.  @ratio_max > 0 is the target: met iff
 * ours.p50 / ref.p50 <= ratio_max; @ratio_max == 0: no target.
 */
struct bench_result {
	const char *name;
	const char *unit;		/* "ns", "B", "%", "Hz", ... */
	const char *env;		/* where: host sim memfds, host /dev/kvm, ... */
	const char *timing;		/* "net of timer", "batched", ... */
	struct bench_dist d;
	const char *ref_name;		/* NULL: none */
	struct bench_dist ref;
	double retries_per_read;	/* < 0: not applicable */
	double ratio_max;
	const char *target;		/* the target in words, or NULL */
	unsigned vcpus;			/* 0: not applicable */
	const char *group;		/* for the plots: "reader", "publisher", ... */
};

static inline void
bench_json_str(FILE *f, const char *key, const char *s)
{
	fprintf(f, ",\"%s\":\"", key);
	for (; s && *s; s++)
		fputc(*s == '"' || *s == '\\' ? '\'' : *s, f);
	fputc('"', f);
}

/*
 * A human line on stdout and one JSON object on @json (may be NULL).
 * ratio = ours / reference at p50: below 1 means ours is faster.
 */
static inline void
bench_emit(FILE *json, const struct bench_result *r)
{
	double ratio = r->ref_name && r->ref.p50 > 0 ? r->d.p50 / r->ref.p50 : 0;
	bool has_target = r->ratio_max > 0 && r->ref_name;
	bool met = has_target && ratio <= r->ratio_max;

	printf("%-40s p50 %9.1f  p99 %9.1f  max %10.1f %-3s", r->name, r->d.p50, r->d.p99,
	       r->d.max, r->unit);
	if (r->ref_name)
		printf(" | %-26s p50 %9.1f | ratio %6.3f", r->ref_name, r->ref.p50, ratio);
	if (r->retries_per_read >= 0)
		printf(" | retries/read %.2g", r->retries_per_read);
	if (has_target)
		printf(" | target <= %.3g: %s", r->ratio_max, met ? "met" : "MISSED");
	putchar('\n');
	if (!json)
		return;
	fputc('{', json);
	fprintf(json, "\"schema\":1");
	bench_json_str(json, "name", r->name);
	bench_json_str(json, "group", r->group ? r->group : "");
	bench_json_str(json, "unit", r->unit);
	bench_json_str(json, "env", r->env);
	bench_json_str(json, "timing", r->timing ? r->timing : "");
	fprintf(json, ",\"vcpus\":%u,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f",
		r->vcpus, r->d.p50, r->d.p99, r->d.max, r->d.mean);
	if (r->ref_name) {
		bench_json_str(json, "reference", r->ref_name);
		fprintf(json, ",\"reference_p50\":%.1f,\"reference_p99\":%.1f,\"ratio\":%.4f",
			r->ref.p50, r->ref.p99, ratio);
	} else {
		fprintf(json, ",\"reference\":null,\"ratio\":null");
	}
	if (r->retries_per_read >= 0)
		fprintf(json, ",\"retries_per_read\":%.8f", r->retries_per_read);
	if (has_target) {
		bench_json_str(json, "target", r->target ? r->target : "");
		fprintf(json, ",\"ratio_max\":%.4g,\"met\":%s", r->ratio_max, met ? "true" : "false");
	}
	fputs("}\n", json);
	fflush(json);
}

/* Read a "Key:   123 kB" line of /proc/<pid>/status, in bytes; -1 if absent. */
static inline long long
bench_proc_status_kb(const char *pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoll(line + klen + 1, NULL, 10) * 1024;
			break;
		}
	fclose(f);
	return v;
}

#endif /* KVMSTATS_BENCH_UTIL_H */
