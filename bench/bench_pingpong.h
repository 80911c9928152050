/* SPDX-License-Identifier: MIT */
/*
 * bench_pingpong.h - the one-way cache-line transfer between CPU 0 and
 * CPU 1, the floor of any read of data the other CPU just wrote.
 *
 * Measured just before what depends on it: the host may move this VM's two
 * vCPUs at any time, and every cross-CPU figure moves with it (on the AMD
 * EPYC of 2026-12-02, 33-48 ns one way at some times and 155-171 ns at
 * others, as between two cores that share an L3 and two that do not).
 */
#ifndef KVMSTATS_BENCH_PINGPONG_H
#define KVMSTATS_BENCH_PINGPONG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench_util.h"

struct pingpong {
	_Alignas(64) _Atomic uint64_t line;
	atomic_bool quit;
};

static inline void *
pong_main(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t want = 1;

	bench_pin(1);
	while (!atomic_load_explicit(&pp->quit, memory_order_relaxed)) {
		if (atomic_load_explicit(&pp->line, memory_order_acquire) != want)
			continue;
		atomic_store_explicit(&pp->line, want + 1, memory_order_release);
		want += 2;
	}
	return NULL;
}

/*
 * One-way cache-line transfer between CPU 0 and CPU 1: half a round trip
 * of a line bounced by two spinning threads, the caller on CPU 0 (it must
 * be pinned there), a thread of its own on CPU 1.  Timed in batches of 100
 * round trips, so the timer is negligible; distribution over batches.
 */
static inline struct bench_dist
pingpong(double ns_per_tick, size_t batches)
{
	enum { RT = 100 };
	struct pingpong *pp = aligned_alloc(64, sizeof(*pp));
	uint64_t next = 1;
	double *v = calloc(batches, sizeof(*v));
	struct bench_dist d;
	pthread_t th;

	atomic_init(&pp->line, 0);
	atomic_init(&pp->quit, false);
	pthread_create(&th, NULL, pong_main, pp);
	for (size_t i = 0; i < batches + 100; i++) {
		uint64_t t0 = bench_ticks();

		for (int k = 0; k < RT; k++, next += 2) {
			atomic_store_explicit(&pp->line, next, memory_order_release);
			while (atomic_load_explicit(&pp->line, memory_order_acquire) != next + 1)
				;
		}
		if (i >= 100)		/* the first batches warm up */
			v[i - 100] = (double)(bench_ticks() - t0) * ns_per_tick / RT / 2;
	}
	atomic_store(&pp->quit, true);
	atomic_store(&pp->line, 0);
	pthread_join(th, NULL);
	d = bench_summarise_d(v, batches);
	free(v);
	free(pp);
	return d;
}

#endif /* KVMSTATS_BENCH_PINGPONG_H */
