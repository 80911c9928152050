/* SPDX-License-Identifier: MIT */
/*
 * stats_json.c - QMP query-stats and query-stats-schemas return values
 * (stats_json.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hmp_units.h"
#include "stats_json.h"

/* StatsValue: a boolean, a scalar (size 1) or a list (histograms). */
static void
write_value(struct ks_json *j, const struct kvmstats_stat_info *si, const uint64_t *v)
{
	if (ks_hmp_is_boolean(si)) {
		ks_json_bool(j, v[0] != 0);
		return;
	}
	if (si->size == 1) {
		ks_json_u64(j, v[0]);
		return;
	}
	ks_json_begin_inline(j);
	for (uint32_t i = 0; i < si->size; i++)
		ks_json_u64(j, v[i]);
	ks_json_end_array(j);
}

/* One result: target @t's stats of provider @p, if any pass the filter. */
static void
write_result(struct ks_json *j, const struct kvmstats_segment *seg, const struct ks_filter *f,
	     unsigned p, unsigned t, const uint64_t *cut)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
	const uint64_t *rec = cut + ti->cut_offset;
	bool opened = false;

	for (unsigned k = 0; k < ti->nr_stats; k++) {
		const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, k);

		if (!si || si->provider != p || !ks_filter_stat(f, si))
			continue;
		if (!opened) {
			ks_json_begin_object(j);
			ks_json_kv_string(j, "provider", si->provider_name);
			if (ti->kind == KVMSTATS_TARGET_VCPU)
				ks_json_kv_string(j, "qom-path", ti->label);
			ks_json_key(j, "stats");
			ks_json_begin_array(j);
			opened = true;
		}
		ks_json_begin_object_inline(j);
		ks_json_kv_string(j, "name", si->name);
		ks_json_key(j, "value");
		write_value(j, si, rec + si->value_index);
		ks_json_end_object(j);
	}
	if (opened) {
		ks_json_end_array(j);
		ks_json_end_object(j);
	}
}

void
ks_stats_write_results(struct ks_json *j, const struct kvmstats_segment *seg,
		       const struct ks_filter *f, const uint64_t *cut)
{
	for (unsigned p = 0; p < kvmstats_nr_providers(seg); p++) {
		if (f->provider && strcmp(f->provider, kvmstats_provider(seg, p)->name) != 0)
			continue;
		for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++)
			if (ks_filter_target(f, seg, t))
				write_result(j, seg, f, p, t, cut);
	}
}

struct stat_set {
	const struct kvmstats_stat_info **v;
	size_t n, cap;
};

static bool
set_has(const struct stat_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->name, name) == 0)
			return true;
	return false;
}

static int
set_add(struct stat_set *s, const struct kvmstats_stat_info *si)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		const struct kvmstats_stat_info **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = si;
	return 0;
}

/*
 * The stats of provider @p on targets of @kind, in descriptor order.  All
 * vCPUs normally share one table (QEMU reads only the first vCPU's); a
 * stat that only some vCPUs have is still described, after the others.
 */
static int
collect(const struct kvmstats_segment *seg, unsigned p, enum kvmstats_target_kind kind,
	struct stat_set *s)
{
	s->n = 0;
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		if (ti->kind != kind)
			continue;
		for (unsigned k = 0; k < ti->nr_stats; k++) {
			const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, k);

			if (!si || si->provider != p || !ks_stat_printable(si) ||
			    set_has(s, si->name))
				continue;
			if (set_add(s, si) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

static void
write_schema_value(struct ks_json *j, const struct kvmstats_stat_info *si)
{
	ks_json_begin_object_inline(j);
	ks_json_kv_string(j, "name", si->name);
	ks_json_kv_string(j, "type", kvmstats_type_name(si->type));
	if (si->unit != KVMSTATS_UNIT_NONE)
		ks_json_kv_string(j, "unit", kvmstats_unit_name(si->unit));
	if (si->exponent != 0)
		ks_json_kv_i64(j, "base", si->base);
	ks_json_kv_i64(j, "exponent", si->exponent);
	if (si->type == KVMSTATS_TYPE_LINEAR_HIST)
		ks_json_kv_u64(j, "bucket-size", si->bucket_size);
	ks_json_end_object(j);
}

int
ks_stats_write_schemas(struct ks_json *j, const struct kvmstats_segment *seg,
		       const char *provider)
{
	static const enum kvmstats_target_kind kinds[] = {
		KVMSTATS_TARGET_VM, KVMSTATS_TARGET_VCPU,
	};
	struct stat_set s = { 0 };
	int r = 0;

	ks_json_begin_array(j);
	for (unsigned p = 0; p < kvmstats_nr_providers(seg) && r == 0; p++) {
		const char *pname = kvmstats_provider(seg, p)->name;

		if (provider && strcmp(provider, pname) != 0)
			continue;
		for (size_t k = 0; k < 2 && r == 0; k++) {
			r = collect(seg, p, kinds[k], &s);
			if (r < 0 || s.n == 0)
				continue;
			ks_json_begin_object(j);
			ks_json_kv_string(j, "provider", pname);
			ks_json_kv_string(j, "target", kvmstats_target_kind_name(kinds[k]));
			ks_json_key(j, "stats");
			ks_json_begin_array(j);
			for (size_t i = 0; i < s.n; i++)
				write_schema_value(j, s.v[i]);
			ks_json_end_array(j);
			ks_json_end_object(j);
		}
	}
	ks_json_end_array(j);
	free(s.v);
	return r;
}
