/* SPDX-License-Identifier: MIT */
/*
 * seg_check.h - waiting on a published segment and checking it, for the
 * cmocka tests.
 */
#ifndef KVMSTATS_TESTS_SEG_CHECK_H
#define KVMSTATS_TESTS_SEG_CHECK_H

#include "kvmstats/reader.h"
#include "statsfd.h"

void sleep_ms(unsigned ms);

/* Poll @seg every 5 ms for up to @ms until its state is @want.  Return: the last state seen. */
enum kvmstats_state seg_wait_state(const struct kvmstats_segment *seg,
				   enum kvmstats_state want, unsigned ms);

/* Within @ms a few sweeps go by without a read error, the segment live. */
void seg_check_sweeping(const struct kvmstats_segment *seg, unsigned ms);

/* Stat @si (non-NULL) is the kernel's descriptor @d: name, kind, unit, size, place. */
void check_stat_is_desc(const struct kvmstats_stat_info *si, const struct ks_kvm_desc *d);

/*
 * How many of target @t's stats are provider @provider's ("kvm": those of
 * its stats fd; the "sched" provider's follow them in the record).
 */
unsigned seg_provider_stats(const struct kvmstats_segment *seg, unsigned t,
			    const char *provider);

/*
 * Target @t of @seg is the stats file @fd: same id, every stat equal to the
 * parser's descriptor, the record's kvm block equal to a pread() of the
 * data block (so nothing may be writing the file meanwhile); a "sched"
 * block may follow it.
 */
void check_target_is_fd(const struct kvmstats_segment *seg, unsigned t, int fd);

#endif
