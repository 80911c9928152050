/* SPDX-License-Identifier: MIT */
/*
 * ks_hist.h - which values a bucket of a KVM histogram holds.
 *
 * The kernel's placement (virt/kvm/binary_stats.c, include/linux/kvm_host.h):
 * a log2 histogram puts value v in bucket min(fls64(v), size - 1), so
 * bucket 0 holds 0 and bucket i (1 <= i <= size - 2) the integers
 * 2^(i-1) .. 2^i - 1; a linear one puts it in min(v / bucket_size,
 * size - 1), so bucket i holds i * bucket_size .. (i + 1) * bucket_size - 1.
 * The last bucket of either holds everything above.  One place for the
 * rule: the exporter's "le" and the CLI's percentiles both come from here.
 */
#ifndef KVMSTATS_SHM_KS_HIST_H
#define KVMSTATS_SHM_KS_HIST_H

#include <stdbool.h>
#include <stdint.h>

/*
 * ks_hist_bounds() - the raw values bucket @i holds: [*@lo, *@hi], where
 * *@hi is UINT64_MAX for the last bucket (and everything above).
 * @linear: a linear histogram of @bucket_size, else log2.
 * Return: false if @i is not a bucket of the histogram (i >= size), or a
 * bound does not fit in 64 bits.
 */
bool ks_hist_bounds(bool linear, uint32_t size, uint32_t bucket_size, uint32_t i,
		    uint64_t *lo, uint64_t *hi);

#endif /* KVMSTATS_SHM_KS_HIST_H */
