/* SPDX-License-Identifier: MIT */
/* sampler.c - snapshots, rates and percentiles for `kvmstats top` and `watch`. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_hist.h"
#include "sampler.h"

#define SNAP_TRIES	16

void
ks_snap_init(struct ks_snap *s)
{
	memset(s, 0, sizeof(*s));
}

void
ks_snap_free(struct ks_snap *s)
{
	free(s->values);
	free(s->samples);
	ks_snap_init(s);
}

static int
snap_size(struct ks_snap *s, size_t words, unsigned nt)
{
	if (s->words == words && s->nr_targets == nt && s->values != NULL)
		return 0;
	ks_snap_free(s);
	s->values = calloc(words ? words : 1, sizeof(*s->values));
	s->samples = calloc(nt ? nt : 1, sizeof(*s->samples));
	if (s->values == NULL || s->samples == NULL) {
		ks_snap_free(s);
		return -ENOMEM;
	}
	s->words = words;
	s->nr_targets = nt;
	return 0;
}

int
ks_snap_take(const struct kvmstats_segment *seg, struct ks_snap *s)
{
	const struct kvmstats_segment_info *in = kvmstats_info(seg);
	int r = snap_size(s, kvmstats_cut_words(seg), kvmstats_nr_targets(seg));

	s->valid = false;
	if (r < 0)
		return r;
	r = -EAGAIN;
	for (int i = 0; i < SNAP_TRIES && r == -EAGAIN; i++)
		r = kvmstats_read_cut(seg, s->values, s->words, s->samples);
	if (r < 0)
		return r;
	s->generation = in->generation;
	s->incarnation = in->incarnation;
	s->valid = true;
	return 0;
}

void
ks_snap_copy(struct ks_snap *dst, const struct ks_snap *src)
{
	if (!src->valid || snap_size(dst, src->words, src->nr_targets) < 0) {
		dst->valid = false;
		return;
	}
	memcpy(dst->values, src->values, src->words * sizeof(*dst->values));
	memcpy(dst->samples, src->samples, src->nr_targets * sizeof(*dst->samples));
	dst->generation = src->generation;
	dst->incarnation = src->incarnation;
	dst->valid = true;
}

bool
ks_snap_same(const struct ks_snap *a, const struct ks_snap *b)
{
	return a->valid && b->valid && a->generation == b->generation &&
	       a->incarnation == b->incarnation && a->words == b->words &&
	       a->nr_targets == b->nr_targets;
}

uint64_t
ks_snap_sum(const struct ks_snap *s, uint32_t word, uint32_t n)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < n; i++)
		sum += s->values[word + i];
	return sum;
}

int
ks_ring_take(const struct kvmstats_segment *seg, struct ks_snap *oldest, struct ks_snap *newest)
{
	const struct kvmstats_segment_info *in = kvmstats_info(seg);
	unsigned nt = kvmstats_nr_targets(seg), depth = in->ring_depth;
	size_t words = kvmstats_cut_words(seg), maxrec = 0;
	struct kvmstats_sample *smp;
	uint64_t *rec;
	int r = 0;

	oldest->valid = newest->valid = false;
	if (snap_size(oldest, words, nt) < 0 || snap_size(newest, words, nt) < 0)
		return -ENOMEM;
	for (unsigned t = 0; t < nt; t++)
		if (kvmstats_target(seg, t)->record_words > maxrec)
			maxrec = kvmstats_target(seg, t)->record_words;
	/* Ask for all of it: depth - 1 samples are guaranteed (reader.h), often depth are there. */
	rec = calloc((size_t)depth * maxrec + 1, sizeof(*rec));
	smp = calloc(depth, sizeof(*smp));
	if (rec == NULL || smp == NULL) {
		free(rec);
		free(smp);
		return -ENOMEM;
	}
	for (unsigned t = 0; t < nt && r == 0; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
		unsigned got = 0;

		r = -EAGAIN;
		for (int i = 0; i < SNAP_TRIES && r == -EAGAIN; i++)
			r = kvmstats_read_history(seg, t, depth, rec, (size_t)depth * maxrec, smp, &got);
		if (r == 0 && got < 2)
			r = -ENODATA;
		if (r < 0)
			break;
		memcpy(newest->values + ti->cut_offset, rec, ti->record_words * sizeof(*rec));
		memcpy(oldest->values + ti->cut_offset, rec + (size_t)(got - 1) * ti->record_words,
		       ti->record_words * sizeof(*rec));
		newest->samples[t] = smp[0];
		oldest->samples[t] = smp[got - 1];
	}
	free(rec);
	free(smp);
	if (r < 0)
		return r;
	newest->generation = oldest->generation = in->generation;
	newest->incarnation = oldest->incarnation = in->incarnation;
	newest->valid = oldest->valid = true;
	return 0;
}

int
ks_hist_percentile(const struct kvmstats_stat_info *st, const uint64_t *buckets, double q,
		   uint64_t *lo, uint64_t *hi)
{
	bool linear = st->type == KVMSTATS_TYPE_LINEAR_HIST;
	uint64_t total = 0, cum = 0;
	double rank;

	for (uint32_t i = 0; i < st->size; i++)
		total += buckets[i];
	if (total == 0)
		return -1;
	/* The smallest bucket whose cumulative count reaches q of the total. */
	rank = q * (double)total;
	for (uint32_t i = 0; i < st->size; i++) {
		cum += buckets[i];
		if ((double)cum >= rank && buckets[i] > 0) {
			if (!ks_hist_bounds(linear, st->size, st->bucket_size, i, lo, hi))
				return -1;
			return (int)i;
		}
	}
	return -1;
}

char *
ks_human(char *buf, size_t len, const struct kvmstats_stat_info *st, double v)
{
	double x = v * pow(st->base, st->exponent);

	if (isnan(v)) {
		snprintf(buf, len, "-");
		return buf;
	}
	switch (st->unit) {
	case KVMSTATS_UNIT_SECONDS:
		if (x < 1e-6)
			snprintf(buf, len, "%.0f ns", x * 1e9);
		else if (x < 1e-3)
			snprintf(buf, len, "%.1f us", x * 1e6);
		else if (x < 1)
			snprintf(buf, len, "%.1f ms", x * 1e3);
		else
			snprintf(buf, len, "%.2f s", x);
		break;
	case KVMSTATS_UNIT_BYTES: {
		static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
		unsigned u = 0;

		while (x >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
			x /= 1024;
			u++;
		}
		snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", x, units[u]);
		break;
	}
	default:
		if (x == floor(x) && fabs(x) < 1e15)
			snprintf(buf, len, "%.0f", x);
		else
			snprintf(buf, len, "%.1f", x);
		break;
	}
	return buf;
}
