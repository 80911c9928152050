/* SPDX-License-Identifier: MIT */
/*
 * schema.c - the private schema of an attached segment and its lookups.
 *
 * Built once at attach from the validated copy; strings point into that
 * copy, ring addresses are computed from its offsets.  Nothing here is
 * ever re-read from the shared mapping.
 *
 * Stats whose type, unit or base this library does not know (a later
 * minor version's, see ks_stat_known()) are left out of seg->stats, and
 * each target's range is renumbered into what remains, so that no lookup
 * or enumeration can hand one out.  Records keep their words as they are:
 * such a stat's values are still read with the record, just not described.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ks_err.h"
#include "ks_reader.h"
#include "ks_validate.h"

static void
build_providers(struct kvmstats_segment *seg)
{
	for (uint32_t p = 0; p < seg->nr_providers; p++) {
		struct ks_shm_provider e;

		ks_copy_provider(seg->schema, p, &e);
		seg->providers[p].index = p;
		seg->providers[p].name = ks_copy_string(seg->schema, e.name_off);
	}
}

/*
 * known[i]: how many of the stat table's entries [0, i) this library knows,
 * for i in [0, nr_stats].  Filtering keeps the table's order, so a target's
 * range [first, first + count) of the table becomes the contiguous range
 * [known[first], known[first + count]) of seg->stats.
 */
static uint32_t *
count_known(const void *schema, uint32_t nr_stats)
{
	uint32_t *known = malloc(((size_t)nr_stats + 1) * sizeof(*known));

	if (known == NULL)
		return NULL;
	known[0] = 0;
	for (uint32_t i = 0; i < nr_stats; i++) {
		struct ks_shm_stat e;

		ks_copy_stat(schema, i, &e);
		known[i + 1] = known[i] + (ks_stat_known(e.type, e.unit, e.base) ? 1 : 0);
	}
	return known;
}

static void
build_stats(struct kvmstats_segment *seg, uint32_t nr_entries)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < nr_entries; i++) {
		struct kvmstats_stat_info *si = &seg->stats[k];
		struct ks_shm_stat e;

		ks_copy_stat(seg->schema, i, &e);
		if (!ks_stat_known(e.type, e.unit, e.base))
			continue;
		si->name = ks_copy_string(seg->schema, e.name_off);
		si->provider = e.provider;
		si->provider_name = seg->providers[e.provider].name;
		si->type = (enum kvmstats_type)e.type;
		si->unit = (enum kvmstats_unit)e.unit;
		si->base = e.base;
		si->exponent = e.exponent;
		si->size = e.size;
		si->bucket_size = e.bucket_size;
		si->value_index = e.value_index;
		k++;
	}
}

static void
build_targets(struct kvmstats_segment *seg, const uint32_t *known)
{
	size_t cut = 0;

	for (uint32_t t = 0; t < seg->nr_targets; t++) {
		struct kvmstats_target_info *ti = &seg->targets[t];
		struct ks_ring *r = &seg->rings[t];
		struct ks_shm_target e;
		uint32_t first, end;

		ks_copy_target(seg->schema, t, &e);
		/* Validated: stats_first + stats_count <= nr_stats (in 64 bits). */
		first = known[e.stats_first];
		end = known[(uint64_t)e.stats_first + e.stats_count];
		ti->index = t;
		ti->kind = (enum kvmstats_target_kind)e.kind;
		ti->vcpu_index = e.vcpu_index;
		ti->label = ks_copy_string(seg->schema, e.label_off);
		ti->id = ks_copy_string(seg->schema, e.id_off);
		ti->nr_stats = end - first;
		ti->record_words = e.record_words;
		ti->cut_offset = cut;
		cut += e.record_words;
		/* ring_off and the whole ring were checked against the mapping's size. */
		r->ring = seg->map + e.ring_off;
		r->stride = e.slot_stride;
		r->words = e.record_words;
		r->stats_first = first;
		r->stats_count = end - first;
		r->cut_offset = ti->cut_offset;
	}
	seg->cut_words = cut;
}

int
ks_reader_build_schema(struct kvmstats_segment *seg, struct kvmstats_error *err)
{
	const struct ks_shm_header *h = seg->schema;
	uint32_t *known = count_known(seg->schema, h->nr_stats);

	if (known == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	seg->ring_depth = h->ring_depth;
	/* A mask where it can: a 64-bit division costs more than a record's copy. */
	seg->ring_mask = (h->ring_depth & (h->ring_depth - 1)) == 0 ? h->ring_depth - 1 : 0;
	seg->copy = ks_section_copy_best();
	seg->nr_providers = h->nr_providers;
	seg->nr_targets = h->nr_targets;
	seg->nr_stats = known[h->nr_stats];
	seg->providers = calloc(seg->nr_providers, sizeof(*seg->providers));
	seg->targets = calloc(seg->nr_targets, sizeof(*seg->targets));
	seg->rings = calloc(seg->nr_targets, sizeof(*seg->rings));
	/* +1: a segment may have no (known) stats at all; calloc(0) may give NULL. */
	seg->stats = calloc((size_t)seg->nr_stats + 1, sizeof(*seg->stats));
	if (seg->providers == NULL || seg->targets == NULL || seg->rings == NULL ||
	    seg->stats == NULL) {
		free(known);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	build_providers(seg);
	build_stats(seg, h->nr_stats);
	build_targets(seg, known);
	free(known);
	return 0;
}

void
ks_reader_free_schema(struct kvmstats_segment *seg)
{
	free(seg->providers);
	free(seg->targets);
	free(seg->rings);
	free(seg->stats);
	seg->providers = NULL;
	seg->targets = NULL;
	seg->rings = NULL;
	seg->stats = NULL;
}

/* ---------------------------------------------------------------- */

const struct kvmstats_segment_info *
kvmstats_info(const struct kvmstats_segment *seg)
{
	CHECK_SEGMENT(seg);
	return &seg->info;
}

const char *
kvmstats_note(const struct kvmstats_segment *seg)
{
	CHECK_SEGMENT(seg);
	return seg->note;
}

unsigned
kvmstats_nr_providers(const struct kvmstats_segment *seg)
{
	CHECK_SEGMENT(seg);
	return seg->nr_providers;
}

const struct kvmstats_provider_info *
kvmstats_provider(const struct kvmstats_segment *seg, unsigned i)
{
	CHECK_SEGMENT(seg);
	return i < seg->nr_providers ? &seg->providers[i] : NULL;
}

int
kvmstats_provider_lookup(const struct kvmstats_segment *seg, const char *name)
{
	CHECK_SEGMENT(seg);
	if (name == NULL)
		return -ENOENT;
	for (uint32_t p = 0; p < seg->nr_providers; p++)
		if (strcmp(seg->providers[p].name, name) == 0)
			return (int)p;
	return -ENOENT;
}

unsigned
kvmstats_nr_targets(const struct kvmstats_segment *seg)
{
	CHECK_SEGMENT(seg);
	return seg->nr_targets;
}

const struct kvmstats_target_info *
kvmstats_target(const struct kvmstats_segment *seg, unsigned i)
{
	CHECK_SEGMENT(seg);
	return i < seg->nr_targets ? &seg->targets[i] : NULL;
}

/* A vCPU index written in decimal, nothing else ("3", not "3x" or "-3"). */
static bool
parse_index(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v >= KS_VCPU_INDEX_NONE)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

int
kvmstats_target_lookup(const struct kvmstats_segment *seg, enum kvmstats_target_kind kind,
		       const char *what)
{
	uint32_t index;
	bool by_index;

	CHECK_SEGMENT(seg);
	if (what == NULL)
		return -ENOENT;
	by_index = kind == KVMSTATS_TARGET_VCPU && parse_index(what, &index);
	/* Labels and ids first: a label that looks like a number wins. */
	for (uint32_t t = 0; t < seg->nr_targets; t++) {
		const struct kvmstats_target_info *ti = &seg->targets[t];

		if (ti->kind == kind && (strcmp(ti->label, what) == 0 ||
					 (ti->id[0] != '\0' && strcmp(ti->id, what) == 0)))
			return (int)t;
	}
	for (uint32_t t = 0; by_index && t < seg->nr_targets; t++)
		if (seg->targets[t].kind == kind && seg->targets[t].vcpu_index == index)
			return (int)t;
	return -ENOENT;
}

const struct kvmstats_stat_info *
kvmstats_target_stat(const struct kvmstats_segment *seg, unsigned t, unsigned j)
{
	CHECK_SEGMENT(seg);
	if (t >= seg->nr_targets || j >= seg->rings[t].stats_count)
		return NULL;
	return &seg->stats[seg->rings[t].stats_first + j];
}

int
kvmstats_stat_lookup(const struct kvmstats_segment *seg, unsigned target,
		     const char *provider, const char *name,
		     struct kvmstats_stat_handle *h)
{
	const struct ks_ring *r;

	CHECK_SEGMENT(seg);
	if (target >= seg->nr_targets || name == NULL)
		return -ENOENT;
	r = &seg->rings[target];
	for (uint32_t j = 0; j < r->stats_count; j++) {
		const struct kvmstats_stat_info *si = &seg->stats[r->stats_first + j];

		if (strcmp(si->name, name) != 0)
			continue;
		if (provider != NULL && strcmp(si->provider_name, provider) != 0)
			continue;
		h->target = target;
		h->info = si;
		return 0;
	}
	return -ENOENT;
}
