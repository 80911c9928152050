/* SPDX-License-Identifier: MIT */
/*
 * metric_map.h - how a kvmstats stat becomes a Prometheus metric family.
 *
 * One place for the naming and value rules of the exporter (README.md,
 * "Prometheus exporter", shows the results):
 *
 *   name    <provider>_<target kind>_<stat name>, lower case, every byte
 *           outside [a-z0-9_] replaced by '_'; a stat in seconds, bytes or
 *           cycles loses a unit suffix of its own ("_ns", "_us", "_kb", ...)
 *           and gains the base unit's ("_seconds", "_bytes", "_cycles");
 *   type    cumulative: counter (samples end in "_total"); instant and
 *           peak: gauge; log2 and linear histograms: histogram;
 *   values  the stat's raw value times base^exponent, written exactly
 *           (a decimal point moved, never a rounded product) wherever the
 *           base is 10 or the result is an integer; booleans 0 or 1;
 *   buckets exact to the kernel's placement (kvm_stats_log_hist_update,
 *           kvm_stats_linear_hist_update): mm_bucket_upper().
 *
 * These are pure functions of the schema, computed once per segment.
 */
#ifndef KVMSTATS_EXPORTER_METRIC_MAP_H
#define KVMSTATS_EXPORTER_METRIC_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmstats/reader.h"

/* Family names are cut at this many bytes: a longer one is not exported. */
#define MM_NAME_MAX	160
/* Room for any number mm_format_*() writes, with its NUL. */
#define MM_NUM_MAX	72
/*
 * Histograms of more buckets are not exported: KVM's have 32 at most, and
 * a scrape's lines grow with the buckets (a segment could declare 65535).
 */
#define MM_HIST_MAX_BUCKETS	1024

enum mm_kind {
	MM_COUNTER,
	MM_GAUGE,
	MM_HISTOGRAM,
};

struct mm_family {
	char name[MM_NAME_MAX];		/* the family name: no "_total" */
	enum mm_kind kind;
	const char *unit;		/* OpenMetrics UNIT ("seconds", ...), or NULL */
	bool boolean;			/* values shown as 0 or 1 */
};

/*
 * mm_family_of() - the family of stat @st of provider @provider on a
 * target of kind @kind.  Return: NULL with *@out filled, or why the stat
 * cannot be exported (a static string for the exporter's log).
 */
const char *mm_family_of(const char *provider, enum kvmstats_target_kind kind,
			 const struct kvmstats_stat_info *st, struct mm_family *out);

/*
 * mm_bucket_upper() - the largest raw value that bucket @i of histogram
 * @st holds: 0 for log2 bucket 0, 2^i - 1 for log2 buckets 1..size-2,
 * (i + 1) * bucket_size - 1 for linear buckets 0..size-2.  Return: true
 * with *@upper set; false for the last bucket, which holds everything
 * above the one before it (le="+Inf").
 */
bool mm_bucket_upper(const struct kvmstats_stat_info *st, uint32_t i, uint64_t *upper);

/*
 * mm_hist_shape_fault() - NULL if every bucket edge of @st is an integer
 * that fits in 64 bits and, scaled to base units, a finite double greater
 * than the edge before (so that no two buckets share an le), else why
 * not.  A log2 histogram has at most 65 buckets (values are 64-bit), any
 * histogram at most MM_HIST_MAX_BUCKETS.
 */
const char *mm_hist_shape_fault(const struct kvmstats_stat_info *st);

/*
 * mm_format_value() - @v * @base^@exponent as a sample value, exactly
 * where the result has a finite decimal form of reasonable length, else
 * to the nearest double ("%.17g", which reads back to the same double).
 * Return: the length written to @buf (MM_NUM_MAX bytes).
 */
size_t mm_format_value(char *buf, uint64_t v, unsigned base, int exponent);

/*
 * The same two, for the scrape's hot loop: written at @p (room for
 * MM_NUM_MAX bytes, no NUL), returning the end.  mm_put_u64() is @v in
 * decimal (at most 20 bytes).
 */
char *mm_put_u64(char *p, uint64_t v);
char *mm_put_value(char *p, uint64_t v, unsigned base, int exponent);

/*
 * mm_format_le() - the same number in OpenMetrics' canonical form, for
 * "le" labels: the nearest double, in the shortest digits that read back
 * to it, as "%g" would choose between fixed and exponent form for six
 * digits ("1e-09", "1.023e-06", "0.001048575", "1.048575e+06"), with
 * ".0" added to a number that has neither '.' nor 'e' ("0.0", "1023.0").
 * Prometheus' own client library writes le the same way.
 */
size_t mm_format_le(char *buf, uint64_t v, unsigned base, int exponent);

/*
 * mm_hist_sum_stat() - the cumulative stat to which the kernel adds every
 * value it counts in histogram @hist of provider @provider, or NULL: the
 * source of the histogram's "_sum".  kvm_main.c adds the same nanoseconds
 * to halt_poll_success_ns / halt_poll_fail_ns / halt_wait_ns as it counts
 * in the matching _hist (update_halt_poll_stats(), kvm_vcpu_halt()).  No
 * name rule is guessed for other stats: a wrong _sum would be worse than
 * none.
 */
const char *mm_hist_sum_stat(const char *provider, const char *hist);

#endif /* KVMSTATS_EXPORTER_METRIC_MAP_H */
