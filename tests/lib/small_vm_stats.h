/* SPDX-License-Identifier: MIT */
/*
 * small_vm_stats.h - the stat tables of a small test VM with two providers
 * ("kvm" and "sim"): a name used by both providers, every kind of stat a
 * reader formats differently.  Shared by the ABI tests and the fuzzers'
 * seed segments, so both exercise the same schema.
 */
#ifndef KVMSTATS_TESTS_SMALL_VM_STATS_H
#define KVMSTATS_TESTS_SMALL_VM_STATS_H

#include "segment_writer.h"

static const char *const providers[] = { "kvm", "sim" };

static const struct ks_seg_stat_def vm_stats[] = {
	{ .name = "pages_4k", .provider = 0, .type = KS_TYPE_INSTANT, .unit = KS_UNIT_BYTES,
	  .base = 2, .exponent = 12, .size = 1, .value_index = 0 },
	{ .name = "flag", .provider = 1, .type = KS_TYPE_INSTANT, .unit = KS_UNIT_BOOLEAN,
	  .base = 10, .size = 1, .value_index = 1 },
};

static const struct ks_seg_stat_def vcpu_stats[] = {
	{ .name = "exits", .provider = 0, .type = KS_TYPE_CUMULATIVE, .unit = KS_UNIT_NONE,
	  .base = 10, .size = 1, .value_index = 0 },
	{ .name = "halt_wait_hist", .provider = 0, .type = KS_TYPE_LOG_HIST,
	  .unit = KS_UNIT_SECONDS, .base = 10, .exponent = -9, .size = 4, .value_index = 1 },
	{ .name = "lin", .provider = 0, .type = KS_TYPE_LINEAR_HIST, .unit = KS_UNIT_NONE,
	  .base = 10, .size = 3, .bucket_size = 10, .value_index = 5 },
	{ .name = "exits", .provider = 1, .type = KS_TYPE_PEAK, .unit = KS_UNIT_CYCLES,
	  .base = 10, .size = 1, .value_index = 8 },
};

#endif /* KVMSTATS_TESTS_SMALL_VM_STATS_H */
