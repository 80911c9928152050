/* SPDX-License-Identifier: MIT */
/*
 * filter.c - the CLI's filters (filter.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

int
ks_strlist_parse(struct ks_strlist *l, const char *arg)
{
	size_t n = 1;

	memset(l, 0, sizeof(*l));
	l->present = true;
	if (arg[0] == '\0')
		return 0;
	for (const char *p = arg; *p; p++)
		n += *p == ',';
	l->buf = strdup(arg);
	l->items = calloc(n, sizeof(*l->items));
	if (!l->buf || !l->items) {
		ks_strlist_free(l);
		return -ENOMEM;
	}
	for (char *rest = l->buf; rest != NULL;) {
		char *tok = strsep(&rest, ",");

		if (tok[0] == '\0') {
			ks_strlist_free(l);
			return -EINVAL;
		}
		l->items[l->n++] = tok;
	}
	return 0;
}

bool
ks_strlist_match(const struct ks_strlist *l, const char *s)
{
	if (!l->present)
		return true;
	for (unsigned i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

void
ks_strlist_free(struct ks_strlist *l)
{
	free(l->items);
	free(l->buf);
	l->items = NULL;
	l->buf = NULL;
	l->n = 0;
}

bool
ks_stat_printable(const struct kvmstats_stat_info *si)
{
	return kvmstats_type_name(si->type) != NULL &&
	       (si->unit == KVMSTATS_UNIT_NONE || kvmstats_unit_name(si->unit) != NULL);
}

bool
ks_filter_stat(const struct ks_filter *f, const struct kvmstats_stat_info *si)
{
	if (!ks_stat_printable(si))
		return false;
	if (f->provider && strcmp(f->provider, si->provider_name) != 0)
		return false;
	return ks_strlist_match(&f->names, si->name);
}

bool
ks_filter_target(const struct ks_filter *f, const struct kvmstats_segment *seg,
		 unsigned t)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

	if (!ti || ti->kind != f->kind)
		return false;
	return f->targets == NULL || f->targets[t];
}

/* One extra element: calloc(0) may return NULL, an empty list may not. */
static int
alloc_targets(struct ks_filter *f, const struct kvmstats_segment *seg)
{
	f->targets = calloc(kvmstats_nr_targets(seg) + 1, sizeof(*f->targets));
	return f->targets ? 0 : -ENOMEM;
}

int
ks_filter_select_labels(struct ks_filter *f, const struct kvmstats_segment *seg,
			const struct ks_strlist *which)
{
	if (alloc_targets(f, seg) < 0)
		return -ENOMEM;
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		f->targets[t] = ti && ti->kind == f->kind && ks_strlist_match(which, ti->label);
	}
	return 0;
}

int
ks_filter_select_targets(struct ks_filter *f, const struct kvmstats_segment *seg,
			 const struct ks_strlist *which, const char **bad)
{
	unsigned nt = kvmstats_nr_targets(seg);

	if (alloc_targets(f, seg) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < which->n; i++) {
		int t = kvmstats_target_lookup(seg, f->kind, which->items[i]);

		if (t < 0 || (unsigned)t >= nt) {
			*bad = which->items[i];
			return -ENOENT;
		}
		f->targets[t] = true;
	}
	return 0;
}

bool
ks_filter_provider_known(const struct kvmstats_segment *seg, const char *name)
{
	return kvmstats_provider_lookup(seg, name) >= 0;
}

void
ks_filter_free(struct ks_filter *f)
{
	ks_strlist_free(&f->names);
	free(f->targets);
	f->targets = NULL;
}
