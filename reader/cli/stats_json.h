/* SPDX-License-Identifier: MIT */
/*
 * stats_json.h - the return values of QMP query-stats and
 * query-stats-schemas, written from a segment: one place for their shape,
 * shared by "kvmstats query", "kvmstats schema" and "kvmstats qmp".
 */
#ifndef KVMSTATS_CLI_STATS_JSON_H
#define KVMSTATS_CLI_STATS_JSON_H

#include <stdint.h>

#include "filter.h"
#include "json.h"
#include "kvmstats/reader.h"

/*
 * ks_stats_write_results() - the StatsResult objects that filter @f selects
 * from the cut @cut, as elements of an array the caller has opened:
 * providers outer, each provider's targets inner, as QEMU builds them;
 * stats in descriptor order.  A target left with no stat gets no entry;
 * the vm target's entry has no "qom-path".
 */
void ks_stats_write_results(struct ks_json *j, const struct kvmstats_segment *seg,
			    const struct ks_filter *f, const uint64_t *cut);

/*
 * ks_stats_write_schemas() - the StatsSchema array (opened and closed
 * here) of provider @provider (NULL: every provider): one entry per
 * provider and target kind that has stats.  Return: 0, or -ENOMEM.
 */
int ks_stats_write_schemas(struct ks_json *j, const struct kvmstats_segment *seg,
			   const char *provider);

#endif /* KVMSTATS_CLI_STATS_JSON_H */
