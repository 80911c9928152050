/* SPDX-License-Identifier: MIT */
/*
 * filter.h - the CLI's filters, with QMP query-stats semantics.
 *
 * A list filter that was not given matches everything; one that was given
 * matches exactly its items (exact string compare), so an empty list
 * matches nothing.  Unknown names are not errors here: QMP ignores them.
 */
#ifndef KVMSTATS_CLI_FILTER_H
#define KVMSTATS_CLI_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "kvmstats/reader.h"

struct ks_strlist {
	bool present;		/* false: no filter, everything matches */
	unsigned n;
	char **items;		/* point into buf */
	char *buf;
};

/*
 * ks_strlist_parse() - split @arg on commas.  "" gives an empty (match
 * nothing) list; an empty item inside a list ("a,,b", "a,") is refused,
 * because it is always a typo.  Return: 0, -EINVAL (empty item), -ENOMEM.
 */
int ks_strlist_parse(struct ks_strlist *l, const char *arg);

bool ks_strlist_match(const struct ks_strlist *l, const char *s);

void ks_strlist_free(struct ks_strlist *l);

/*
 * struct ks_filter - what to show of one segment.
 * @provider: NULL for all providers, else that provider's name.
 * @names: stat names.
 * @kind: target kind.
 * @targets: per target index, selected or not (NULL: every target of @kind).
 */
struct ks_filter {
	const char *provider;
	struct ks_strlist names;
	enum kvmstats_target_kind kind;
	bool *targets;
};

/* ks_filter_stat() - whether stat @si passes the provider and name filters. */
bool ks_filter_stat(const struct ks_filter *f, const struct kvmstats_stat_info *si);

/* ks_filter_target() - whether target @t passes the kind and target filters. */
bool ks_filter_target(const struct ks_filter *f, const struct kvmstats_segment *seg,
		      unsigned t);

/*
 * ks_filter_select_targets() - resolve a list of vCPU labels, ids or
 * index numbers to f->targets.  Return: 0; -ENOENT with *@bad set to the
 * item that names no target; -ENOMEM.
 */
int ks_filter_select_targets(struct ks_filter *f, const struct kvmstats_segment *seg,
			     const struct ks_strlist *which, const char **bad);

/*
 * ks_filter_select_labels() - QMP's vCPU filter: f->targets holds the
 * targets of f->kind whose label (QOM path) is exactly one of @which;
 * a label no target has is ignored, an empty list selects nothing.
 * Return: 0, or -ENOMEM.
 */
int ks_filter_select_labels(struct ks_filter *f, const struct kvmstats_segment *seg,
			    const struct ks_strlist *which);

/* Whether the segment has a provider called @name. */
bool ks_filter_provider_known(const struct kvmstats_segment *seg, const char *name);

/* Whether the stat's type and unit are known to this tool (QEMU skips others). */
bool ks_stat_printable(const struct kvmstats_stat_info *si);

void ks_filter_free(struct ks_filter *f);

#endif /* KVMSTATS_CLI_FILTER_H */
