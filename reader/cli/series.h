/* SPDX-License-Identifier: MIT */
/*
 * series.h - the rows `kvmstats top` and `kvmstats watch` show of a VM:
 * one per stat of the VM target, and per stat of the vCPUs either one
 * summed over every vCPU (the VM view) or one per vCPU.  A row knows where
 * its values are in a cut; what is computed from them is sampler.h's.
 */
#ifndef KVMSTATS_CLI_SERIES_H
#define KVMSTATS_CLI_SERIES_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmstats/reader.h"
#include "sampler.h"

#define KS_ROW_ALL_VCPUS	UINT32_MAX	/* a row summed over every vCPU */

struct ks_row {
	const struct kvmstats_stat_info *st;	/* of the first target it covers */
	enum kvmstats_target_kind kind;
	uint32_t vcpu;			/* vCPU index, or KS_ROW_ALL_VCPUS */
	unsigned *targets;		/* the targets it sums (one, or every vCPU) */
	unsigned nr_targets;
	uint32_t *words;		/* per target: where the stat starts in a cut */
};

struct ks_rows {
	struct ks_row *v;
	size_t n;
};

/*
 * ks_rows_build() - the rows of @seg: stats of provider @provider (NULL:
 * all) whose name matches @re (NULL: all), per vCPU or summed.  vCPUs
 * whose stat differs in type, unit or size from vCPU 0's are left out of
 * its sum.  Return: 0 or -ENOMEM.
 */
int ks_rows_build(const struct kvmstats_segment *seg, const char *provider, const regex_t *re,
		  bool per_vcpu, struct ks_rows *rows);
void ks_rows_free(struct ks_rows *rows);

/* The row's value now: its sum (histograms: their count). */
uint64_t ks_row_total(const struct ks_row *r, const struct ks_snap *s);

/* Per second from @old to @new_ (NaN if not comparable). */
double ks_row_rate(const struct ks_row *r, const struct ks_snap *old, const struct ks_snap *new_);

/* A histogram row's buckets, summed over its targets, into @out (st->size words). */
void ks_row_buckets(const struct ks_row *r, const struct ks_snap *s, uint64_t *out);

/* "vm", "vcpus" (summed) or "vcpu3", for the target column. */
const char *ks_row_target(const struct ks_row *r, char *buf, size_t len);

/* Whether the row is a histogram (its total is a count of values). */
static inline bool
ks_row_is_hist(const struct ks_row *r)
{
	return r->st->type == KVMSTATS_TYPE_LINEAR_HIST || r->st->type == KVMSTATS_TYPE_LOG_HIST;
}

#endif /* KVMSTATS_CLI_SERIES_H */
