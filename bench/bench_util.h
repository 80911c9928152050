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
 *
 * Where the TSC advances in coarse steps, p50s of single reads are not
 * figures but multiples of the step.  AMD's Zen parts, for one, count a
 * 100 MHz reference and add the TSC-to-reference ratio at each step (26
 * ticks, 10 ns, at 2.6 GHz; 24.5 at 2.45 GHz, read as 24 and 25 in turn).
 * A sample's start has no relation to the step's phase, so a region of
 * true length d reads floor((t0 + d) / q) - floor(t0 / q) steps, whose
 * expectation over a uniform phase is d / q exactly: the mean is unbiased
 * where the p50 is rounded to the grid.  So
 * on such a timer (a step of 2 ns or more, bench_timer_coarse()) the
 * single-read ratios compare means: of the samples up to p99, so that an
 * interrupt's outliers do not weigh, net of the empty region's mean taken
 * the same way (bench_result.by_mean).
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
	double mean99;			/* the mean of the samples up to p99 */
};

/* The timer, in ticks: what an empty timed region costs, and its step. */
struct bench_timer {
	double ns_per_tick;
	uint64_t p50;		/* the empty region's p50 */
	double mean99;		/* its mean up to p99 */
	double step;		/* the ticks it advances by (1: every tick) */
};

/* Index of p99 in @n sorted samples. */
static inline size_t
bench_p99_index(size_t n)
{
	return (size_t)((double)n * 0.99);
}

/*
 * Sort @v (ticks) and summarise it in ns, each sample less the timer's
 * own cost (@t's p50, clamped at 0; @t NULL: nothing subtracted).  mean99
 * is taken before the clamp, less @t's mean99 (see above).
 */
static inline struct bench_dist
bench_summarise_net(uint64_t *v, size_t n, double ns_per_tick, const struct bench_timer *t)
{
	struct bench_dist d = { 0 };
	uint64_t minus = t ? t->p50 : 0;
	size_t i99 = bench_p99_index(n);
	double sum = 0, sum99 = 0;

	if (n == 0)
		return d;
	qsort(v, n, sizeof(*v), bench_cmp_u64);
	for (size_t i = 0; i <= i99; i++)
		sum99 += (double)v[i];
	sum99 = sum99 / (double)(i99 + 1) - (t ? t->mean99 : 0);
	for (size_t i = 0; i < n; i++) {
		v[i] = v[i] > minus ? v[i] - minus : 0;
		sum += (double)v[i];
	}
	d.p50 = (double)v[n / 2] * ns_per_tick;
	d.p99 = (double)v[i99] * ns_per_tick;
	d.max = (double)v[n - 1] * ns_per_tick;
	d.mean = sum / (double)n * ns_per_tick;
	d.mean99 = (sum99 > 0 ? sum99 : 0) * ns_per_tick;
	return d;
}

static inline struct bench_dist
bench_summarise(uint64_t *v, size_t n, double ns_per_tick)
{
	return bench_summarise_net(v, n, ns_per_tick, NULL);
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
	size_t i99 = bench_p99_index(n);
	double sum = 0, sum99 = 0;

	if (n == 0)
		return d;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	for (size_t i = 0; i < n; i++) {
		sum += v[i];
		if (i <= i99)
			sum99 += v[i];
	}
	d.p50 = v[n / 2];
	d.p99 = v[i99];
	d.max = v[n - 1];
	d.mean = sum / (double)n;
	d.mean99 = sum99 / (double)(i99 + 1);
	return d;
}

static inline struct bench_dist
bench_point(double v)
{
	return (struct bench_dist) { v, v, v, v, v };
}

/*
 * The step the TSC advances by, in ticks (1 for a timer that counts every
 * tick).  Not the gcd of region lengths: where the TSC-to-reference ratio
 * is not a whole number (24.5 at 2.45 GHz over 100 MHz) the steps are 24
 * and 25 ticks in turn, the gcd is 1, and a 10-ns grid looked like a fine
 * timer (it did, on a Zen 3).  Instead, time regions of many true lengths
 * (a chain of 0 to 1023 dependent additions, about 0 to 300 ns) and look
 * at which lengths come up.  On a fine timer they fill the range; on a
 * stepping one they fall in clusters one or two ticks wide, one per step,
 * and the clusters' centres are multiples of the step.  So the step is the
 * span between the first and last centres over the number of steps in it.
 * The steps are counted gap by gap, each in units of the smallest gap: a
 * fractional step makes that unit up to half a tick short, too little to
 * miscount one gap, but over 70 steps it would miscount the span.
 */
enum {
	BENCH_STEP_SPAN = 4096,		/* the longest region length counted, in ticks */
	BENCH_STEP_ROUNDS = 16,		/* the probe's passes over the lengths */
	/* A step's cluster gathers each of its ~25 lengths from every round:
	 * a few stray lengths (an interrupt's) weigh less than one round's. */
	BENCH_STEP_HEAVY = 4 * BENCH_STEP_ROUNDS,
};

/*
 * The step from @seen[len], how often each region length in ticks came up
 * (@heavy: the least weight a step's cluster has; less is stray lengths).
 */
static inline double
bench_step_of(const unsigned *seen, unsigned heavy)
{
	enum { RECUR = 3, WIDE = 4 };
	double centre[BENCH_STEP_SPAN / 2], gap = 0, steps = 0;
	unsigned clusters = 0, widest = 0;

	/* Lengths that recur, in runs of neighbours: one run per step, or one in all. */
	for (unsigned v = 0; v < BENCH_STEP_SPAN;) {
		double sum = 0, weight = 0;
		unsigned w = v;

		for (; w < BENCH_STEP_SPAN && seen[w] >= RECUR; w++) {
			sum += (double)w * seen[w];
			weight += seen[w];
		}
		if (w == v || weight < heavy) {
			v = w + 1;
			continue;
		}
		widest = w - v > widest ? w - v : widest;
		centre[clusters] = sum / weight;
		if (clusters > 0 && (gap == 0 || centre[clusters] - centre[clusters - 1] < gap))
			gap = centre[clusters] - centre[clusters - 1];
		clusters++;
		v = w + 1;	/* runs are separated by at least one length */
	}
	if (widest >= WIDE || clusters < 3 || gap < 2)
		return 1;
	for (unsigned i = 1; i < clusters; i++)
		steps += (double)(uint64_t)((centre[i] - centre[i - 1]) / gap + 0.5);
	return (centre[clusters - 1] - centre[0]) / steps;
}

static inline double
bench_timer_probe_step(void)
{
	enum { CHAINS = 1024 };
	unsigned *seen = calloc(BENCH_STEP_SPAN, sizeof(*seen));
	double step;

	if (seen == NULL)
		return 1;
	for (unsigned r = 0; r < BENCH_STEP_ROUNDS; r++) {
		for (unsigned c = 0; c < CHAINS; c++) {
			/* An odd stride through the lengths: no two runs in a row alike. */
			unsigned k = (c * 389u + r * 97u) % CHAINS;
			uint64_t x = 0, t0 = bench_ticks(), t1;

			for (unsigned i = 0; i < k; i++)
				__asm__ volatile("" : "+r"(x));
			t1 = bench_ticks();
			if (t1 - t0 < BENCH_STEP_SPAN)
				seen[t1 - t0]++;
		}
	}
	step = bench_step_of(seen, BENCH_STEP_HEAVY);
	free(seen);
	return step;
}

static inline void
bench_timer_measure(double ns_per_tick, struct bench_timer *t, struct bench_dist *d)
{
	enum { N = 200000 };
	uint64_t *v = malloc(N * sizeof(*v));

	for (size_t i = 0; i < N; i++) {
		uint64_t t0 = bench_ticks(), t1 = bench_ticks();

		v[i] = t1 - t0;
	}
	*d = bench_summarise(v, N, ns_per_tick);	/* sorts @v */
	t->ns_per_tick = ns_per_tick;
	t->p50 = v[N / 2];
	t->mean99 = d->mean99 / ns_per_tick;
	t->step = bench_timer_probe_step();
	free(v);
}

/* The step the timer advances by, in ns. */
static inline double
bench_timer_step_ns(const struct bench_timer *t)
{
	return t->step * t->ns_per_tick;
}

/* Is the timer's step too coarse for single-read p50s (see above)? */
static inline bool
bench_timer_coarse(const struct bench_timer *t)
{
	return bench_timer_step_ns(t) >= 2.0;
}

/*
 * One measurement.  @ratio_max > 0 is the target: met iff the ratio
 * ours / ref <= ratio_max; @ratio_max == 0: no target.  The ratio is of
 * p50s, or of mean99s if @by_mean (a coarse timer, see above).
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
	bool by_mean;			/* the ratio of mean99s, not of p50s */
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

/* The figure a ratio compares: @d's p50, or its mean99 if @by_mean. */
static inline double
bench_figure(const struct bench_dist *d, bool by_mean)
{
	return by_mean ? d->mean99 : d->p50;
}

/* ours / @ref, of bench_figure()s; 0 if @ref's is 0. */
static inline double
bench_ratio(const struct bench_dist *ours, const struct bench_dist *ref, bool by_mean)
{
	double r = bench_figure(ref, by_mean);

	return r > 0 ? bench_figure(ours, by_mean) / r : 0;
}

/*
 * A human line on stdout and one JSON object on @json (may be NULL).
 * ratio = ours / reference (bench_ratio()): below 1 means ours is faster.
 */
static inline void
bench_emit(FILE *json, const struct bench_result *r)
{
	double ratio = r->ref_name ? bench_ratio(&r->d, &r->ref, r->by_mean) : 0;
	bool has_target = r->ratio_max > 0 && r->ref_name;
	bool met = has_target && ratio <= r->ratio_max;

	printf("%-40s p50 %9.1f  p99 %9.1f  max %10.1f %-3s", r->name, r->d.p50, r->d.p99,
	       r->d.max, r->unit);
	if (r->by_mean)
		printf(" mean99 %8.1f", r->d.mean99);
	if (r->ref_name && r->by_mean)
		printf(" | %-26s mean99 %8.1f | ratio of means %6.3f", r->ref_name, r->ref.mean99,
		       ratio);
	else if (r->ref_name)
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
	fprintf(json, ",\"vcpus\":%u,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f"
		",\"mean99\":%.1f", r->vcpus, r->d.p50, r->d.p99, r->d.max, r->d.mean, r->d.mean99);
	if (r->ref_name) {
		bench_json_str(json, "reference", r->ref_name);
		fprintf(json, ",\"reference_p50\":%.1f,\"reference_p99\":%.1f"
			",\"reference_mean99\":%.1f,\"ratio\":%.4f", r->ref.p50, r->ref.p99,
			r->ref.mean99, ratio);
		bench_json_str(json, "ratio_of", r->by_mean ? "mean99" : "p50");
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
