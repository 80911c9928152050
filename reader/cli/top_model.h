/* SPDX-License-Identifier: MIT */
/*
 * top_model.h - the table `kvmstats top` shows, apart from how it is shown
 * (curses, or --once as text or JSON): per row a stat's total, its rate
 * per second over the segment's own ring (exact: the publisher's times of
 * two samples), its averages over 10 s and 60 s from the snapshots top
 * keeps, and for histograms the count per second and p50/p90/p99 as the
 * bounds of the bucket that holds them.  RATE/s is from the look before to
 * this one (the publisher's times of both); on the first look, and with
 * --once, over the segment's ring.  An average is shown once top has
 * looked for most of its window (9 of 10 s, 54 of 60 s).
 */
#ifndef KVMSTATS_CLI_TOP_MODEL_H
#define KVMSTATS_CLI_TOP_MODEL_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmstats/reader.h"
#include "sampler.h"
#include "series.h"

#define TOP_HISTORY	128	/* snapshots kept for the averages */
#define TOP_KEEP_EVERY_NS	500000000ull	/* 128 of them: 64 s */

enum top_sort { TOP_SORT_NAME, TOP_SORT_TOTAL, TOP_SORT_RATE };

struct top_pct {
	bool valid;
	uint64_t lo, hi;		/* raw units; hi UINT64_MAX: unbounded */
};

struct top_line {
	const struct ks_row *row;
	uint64_t total;
	double rate, avg10, avg60;	/* per second; NaN: not known (yet) */
	struct top_pct pct[3];		/* p50, p90, p99 (histograms) */
	bool pct_window;		/* percentiles of the last 10 s, not of all time */
};

struct top_model {
	struct kvmstats_segment *seg;
	const char *provider;
	bool per_vcpu, hide_zero;
	enum top_sort sort;
	regex_t filter;
	bool have_filter;
	char filter_text[128];
	struct ks_rows rows;
	struct ks_snap ring_old, ring_new;	/* the segment's ring: its oldest, newest sample */
	struct ks_snap last;		/* the look before: RATE/s is from it to ring_new */
	/*
	 * The snapshots the averages come from, oldest first, at least
	 * TOP_KEEP_EVERY_NS apart, so that TOP_HISTORY of them span more than
	 * 60 s at any refresh.
	 */
	struct ks_snap hist[TOP_HISTORY];
	unsigned nhist;
	struct top_line *lines;		/* shown, after filter, hide-zero and sort */
	size_t nlines, nmatch;
	uint64_t *buckets, *buckets_old;	/* scratch for percentiles */
	struct kvmstats_liveness lv;
	struct kvmstats_status st;
	const char *state;		/* kvmstats_health_name() of the last update */
};

/* Return: 0, or -ENOMEM. */
int top_model_init(struct top_model *m, struct kvmstats_segment *seg, const char *provider,
		   bool per_vcpu);
void top_model_free(struct top_model *m);

/*
 * top_model_update() - a fresh look at the segment: follow a new
 * generation, judge the publisher, read the ring and keep a snapshot (when
 * @keep), recompute the lines.  Return: 0; 1 when the VM ended (the lines
 * keep its last values); -errno on a read error.
 */
int top_model_update(struct top_model *m, bool keep);

/* Recompute the lines (after a change of filter, sort, view) from what was read. */
void top_model_lines(struct top_model *m);

/* Set the filter (NULL or "": none).  Return: 0, or -EINVAL with @why filled. */
int top_model_set_filter(struct top_model *m, const char *re, char *why, size_t len);

/* Toggle per-vCPU rows (rebuilds the rows). */
int top_model_set_per_vcpu(struct top_model *m, bool per_vcpu);

/* Forget the snapshots the averages are computed from. */
void top_model_reset_averages(struct top_model *m);

/* The cells of one line, as text, for every view. */
struct top_cells {
	char target[32], name[256], total[48], rate[48], avg10[48], avg60[48], pct[3][48];
};

void top_line_cells(const struct top_line *l, struct top_cells *c);
void top_cell_total(const struct top_line *l, char *buf, size_t len);
void top_cell_rate(const struct top_line *l, double v, char *buf, size_t len);
void top_cell_pct(const struct top_line *l, unsigned i, char *buf, size_t len);

/* --once: the table as plain text (@width columns), or as JSON. */
void top_print_text(const struct top_model *m, FILE *f);
void top_print_json(const struct top_model *m, FILE *f);

#endif /* KVMSTATS_CLI_TOP_MODEL_H */
