/* SPDX-License-Identifier: MIT */
/* series.c - the rows `kvmstats top` and `kvmstats watch` show of a VM. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

void
ks_rows_free(struct ks_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		free(rows->v[i].targets);
		free(rows->v[i].words);
	}
	free(rows->v);
	rows->v = NULL;
	rows->n = 0;
}

static bool
wanted(const struct kvmstats_stat_info *st, const char *provider, const regex_t *re)
{
	if (provider != NULL && strcmp(st->provider_name, provider) != 0)
		return false;
	return re == NULL || regexec(re, st->name, 0, NULL, 0) == 0;
}

static bool
same_shape(const struct kvmstats_stat_info *a, const struct kvmstats_stat_info *b)
{
	return a->type == b->type && a->unit == b->unit && a->base == b->base &&
	       a->exponent == b->exponent && a->size == b->size &&
	       a->bucket_size == b->bucket_size;
}

static struct ks_row *
add_row(struct ks_rows *rows, size_t *cap, unsigned nmax)
{
	struct ks_row *r;

	if (rows->n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct ks_row *v = realloc(rows->v, c * sizeof(*v));

		if (v == NULL)
			return NULL;
		rows->v = v;
		*cap = c;
	}
	r = &rows->v[rows->n];
	memset(r, 0, sizeof(*r));
	r->targets = calloc(nmax ? nmax : 1, sizeof(*r->targets));
	r->words = calloc(nmax ? nmax : 1, sizeof(*r->words));
	if (r->targets == NULL || r->words == NULL) {
		free(r->targets);
		free(r->words);
		return NULL;
	}
	rows->n++;
	return r;
}

static void
row_add_target(struct ks_row *r, const struct kvmstats_target_info *ti,
	       const struct kvmstats_stat_info *st)
{
	r->targets[r->nr_targets] = ti->index;
	r->words[r->nr_targets] = (uint32_t)(ti->cut_offset + st->value_index);
	r->nr_targets++;
}

int
ks_rows_build(const struct kvmstats_segment *seg, const char *provider, const regex_t *re,
	      bool per_vcpu, struct ks_rows *rows)
{
	unsigned nt = kvmstats_nr_targets(seg), first_vcpu = nt;
	size_t cap = 0;

	memset(rows, 0, sizeof(*rows));
	for (unsigned t = 0; t < nt; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		if (ti->kind == KVMSTATS_TARGET_VCPU && first_vcpu == nt)
			first_vcpu = t;
		/* The VM, and in the per-vCPU view each vCPU: a row per stat. */
		if (ti->kind == KVMSTATS_TARGET_VM || per_vcpu) {
			for (unsigned j = 0; j < ti->nr_stats; j++) {
				const struct kvmstats_stat_info *st = kvmstats_target_stat(seg, t, j);
				struct ks_row *r;

				if (!wanted(st, provider, re))
					continue;
				r = add_row(rows, &cap, 1);
				if (r == NULL)
					goto oom;
				r->st = st;
				r->kind = ti->kind;
				r->vcpu = ti->kind == KVMSTATS_TARGET_VCPU ? ti->vcpu_index : 0;
				row_add_target(r, ti, st);
			}
		}
	}
	if (per_vcpu || first_vcpu == nt)
		return 0;
	/* The VM view: vCPU 0's stats, each summed over every vCPU that has it alike. */
	{
		const struct kvmstats_target_info *t0 = kvmstats_target(seg, first_vcpu);

		for (unsigned j = 0; j < t0->nr_stats; j++) {
			const struct kvmstats_stat_info *st = kvmstats_target_stat(seg, first_vcpu, j);
			struct ks_row *r;

			if (!wanted(st, provider, re))
				continue;
			r = add_row(rows, &cap, nt);
			if (r == NULL)
				goto oom;
			r->st = st;
			r->kind = KVMSTATS_TARGET_VCPU;
			r->vcpu = KS_ROW_ALL_VCPUS;
			for (unsigned t = first_vcpu; t < nt; t++) {
				const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
				struct kvmstats_stat_handle h;

				if (ti->kind != KVMSTATS_TARGET_VCPU ||
				    kvmstats_stat_lookup(seg, t, st->provider_name, st->name, &h) < 0 ||
				    !same_shape(h.info, st))
					continue;
				row_add_target(r, ti, h.info);
			}
		}
	}
	return 0;
oom:
	ks_rows_free(rows);
	return -ENOMEM;
}

uint64_t
ks_row_total(const struct ks_row *r, const struct ks_snap *s)
{
	uint64_t sum = 0;
	uint32_t n = ks_row_is_hist(r) ? r->st->size : 1;

	for (unsigned i = 0; i < r->nr_targets; i++) {
		uint64_t v = ks_snap_sum(s, r->words[i], n);

		/* A peak over vCPUs is the largest; the rest add up (booleans: how many). */
		if (r->st->type == KVMSTATS_TYPE_PEAK)
			sum = v > sum ? v : sum;
		else
			sum += v;
	}
	return sum;
}

/*
 * The change of the row's total over the change of its first target's
 * sample time: for one target exactly its rate; for a sum over vCPUs
 * (sampled within one sweep, microseconds apart) the sum's change over the
 * time the row shows.
 */
double
ks_row_rate(const struct ks_row *r, const struct ks_snap *old, const struct ks_snap *new_)
{
	uint64_t a, b, ta, tb;

	if (!ks_snap_same(old, new_) || r->nr_targets == 0)
		return NAN;
	ta = old->samples[r->targets[0]].time_ns;
	tb = new_->samples[r->targets[0]].time_ns;
	a = ks_row_total(r, old);
	b = ks_row_total(r, new_);
	if (tb <= ta || b < a)
		return NAN;
	return (double)(b - a) * 1e9 / (double)(tb - ta);
}

void
ks_row_buckets(const struct ks_row *r, const struct ks_snap *s, uint64_t *out)
{
	memset(out, 0, r->st->size * sizeof(*out));
	for (unsigned i = 0; i < r->nr_targets; i++)
		for (uint32_t k = 0; k < r->st->size; k++)
			out[k] += s->values[r->words[i] + k];
}

const char *
ks_row_target(const struct ks_row *r, char *buf, size_t len)
{
	if (r->kind == KVMSTATS_TARGET_VM)
		snprintf(buf, len, "vm");
	else if (r->vcpu == KS_ROW_ALL_VCPUS)
		snprintf(buf, len, "vcpus");
	else
		snprintf(buf, len, "vcpu%u", r->vcpu);
	return buf;
}
