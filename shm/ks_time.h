/* SPDX-License-Identifier: MIT */
/*
 * ks_time.h - the clocks of a segment, in ns, and the publisher's sleep.
 *
 * Every time in a segment is CLOCK_MONOTONIC in ns (system-wide, so a
 * reader in another process can compare it with its own clock), except
 * the incarnation, which is CLOCK_REALTIME so that it stays unique across
 * reboots.  On x86-64 Linux both are read through the vDSO: no syscall.
 */
#ifndef KVMSTATS_SHM_KS_TIME_H
#define KVMSTATS_SHM_KS_TIME_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define KS_NSEC_PER_SEC		1000000000ull

static inline uint64_t
ks_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * KS_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
ks_mono_ns(void)
{
	return ks_clock_ns(CLOCK_MONOTONIC);
}

static inline uint64_t
ks_realtime_ns(void)
{
	return ks_clock_ns(CLOCK_REALTIME);
}

/*
 * ks_sleep_until() - sleep to the absolute CLOCK_MONOTONIC time @deadline,
 * in slices of at most @slice_ns so that a thread asked to stop (*@stop)
 * notices within a slice even at 1 Hz.  Absolute deadlines keep a periodic
 * loop from drifting by its own cost.
 */
static inline void
ks_sleep_until(uint64_t deadline, uint64_t slice_ns, const atomic_bool *stop)
{
	struct timespec ts;

	while (!atomic_load_explicit(stop, memory_order_relaxed)) {
		uint64_t now = ks_mono_ns(), until = deadline;

		if (now >= deadline)
			return;
		if (deadline - now > slice_ns)
			until = now + slice_ns;
		ts.tv_sec = (time_t)(until / KS_NSEC_PER_SEC);
		ts.tv_nsec = (long)(until % KS_NSEC_PER_SEC);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
}

#endif /* KVMSTATS_SHM_KS_TIME_H */
