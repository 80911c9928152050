/* SPDX-License-Identifier: MIT */
/*
 * sampler.h - what `kvmstats top` and `kvmstats watch` compute from a
 * segment: snapshots (one cut with each target's publisher timestamp),
 * rates between two of them, rates from the segment's own ring, and
 * percentiles of histograms with the bounds of their bucket.
 *
 * Rates use the publisher's timestamps of the samples, never the time
 * the reader looked, so a reader that is descheduled between two looks
 * still gets the exact rate over the interval the values cover (series.h,
 * ks_row_rate()).
 */
#ifndef KVMSTATS_CLI_SAMPLER_H
#define KVMSTATS_CLI_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmstats/reader.h"

/* One consistent cut of a segment, and when each target was sampled. */
struct ks_snap {
	uint64_t *values;		/* kvmstats_cut_words() words */
	struct kvmstats_sample *samples;	/* one per target */
	size_t words;
	unsigned nr_targets;
	uint64_t generation, incarnation;
	bool valid;
};

void ks_snap_init(struct ks_snap *s);
void ks_snap_free(struct ks_snap *s);
/* Return: 0, or what kvmstats_read_cut() says (-ENODATA, -EAGAIN, -EIO, -ENOMEM). */
int ks_snap_take(const struct kvmstats_segment *seg, struct ks_snap *s);
void ks_snap_copy(struct ks_snap *dst, const struct ks_snap *src);

/* Whether two snapshots are of the same segment generation (their rates mean something). */
bool ks_snap_same(const struct ks_snap *a, const struct ks_snap *b);

/* The sum of the @n values at @word of the cut (one target's stat, or its buckets). */
uint64_t ks_snap_sum(const struct ks_snap *s, uint32_t word, uint32_t n);

/*
 * ks_ring_take() - the segment's own ring, as two snapshots: each target's
 * newest sample into @newest and the oldest the ring still holds into
 * @oldest, with the publisher's times, so that ks_row_rate(row, @oldest,
 * @newest) is the rate over the ring.  One read per target.
 * Return: 0, -ENODATA when a target has fewer than two samples yet, or
 * what kvmstats_read_history() says.
 */
int ks_ring_take(const struct kvmstats_segment *seg, struct ks_snap *oldest,
		 struct ks_snap *newest);

/*
 * ks_hist_percentile() - the bucket that holds the @q quantile (0..1) of
 * @buckets (counts of histogram @st), and its bounds in raw units
 * (*@hi UINT64_MAX: the last bucket, unbounded).  Return: the bucket, or
 * -1 if the histogram is empty.
 */
int ks_hist_percentile(const struct kvmstats_stat_info *st, const uint64_t *buckets, double q,
		       uint64_t *lo, uint64_t *hi);

/*
 * ks_human() - @v raw units of @st as a person reads it: seconds as
 * ns/us/ms/s, bytes as B/KiB/MiB/GiB, others as the number scaled by
 * base^exponent.  Return: @buf.
 */
char *ks_human(char *buf, size_t len, const struct kvmstats_stat_info *st, double v);

#endif /* KVMSTATS_CLI_SAMPLER_H */
