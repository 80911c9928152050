/* SPDX-License-Identifier: MIT */
/* top_model.c - the table `kvmstats top` shows, apart from how it is shown. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ks_text.h"
#include "top_model.h"

#define WINDOW_10S	10000000000ull
#define WINDOW_60S	60000000000ull

static const double pct_q[3] = { 0.5, 0.9, 0.99 };

int
top_model_init(struct top_model *m, struct kvmstats_segment *seg, const char *provider,
	       bool per_vcpu)
{
	memset(m, 0, sizeof(*m));
	m->seg = seg;
	m->provider = provider;
	m->per_vcpu = per_vcpu;
	m->sort = TOP_SORT_NAME;
	m->state = "live";
	ks_snap_init(&m->ring_old);
	ks_snap_init(&m->ring_new);
	ks_snap_init(&m->last);
	for (unsigned i = 0; i < TOP_HISTORY; i++)
		ks_snap_init(&m->hist[i]);
	return top_model_set_per_vcpu(m, per_vcpu);
}

void
top_model_free(struct top_model *m)
{
	ks_rows_free(&m->rows);
	ks_snap_free(&m->ring_old);
	ks_snap_free(&m->ring_new);
	ks_snap_free(&m->last);
	for (unsigned i = 0; i < TOP_HISTORY; i++)
		ks_snap_free(&m->hist[i]);
	free(m->lines);
	free(m->buckets);
	free(m->buckets_old);
	if (m->have_filter)
		regfree(&m->filter);
	m->lines = NULL;
}

int
top_model_set_per_vcpu(struct top_model *m, bool per_vcpu)
{
	uint32_t maxb = 1;

	m->per_vcpu = per_vcpu;
	m->nlines = 0;		/* the lines point at the rows: none until rebuilt */
	ks_rows_free(&m->rows);
	if (ks_rows_build(m->seg, m->provider, NULL, per_vcpu, &m->rows) < 0)
		return -ENOMEM;
	free(m->lines);
	m->lines = calloc(m->rows.n ? m->rows.n : 1, sizeof(*m->lines));
	for (size_t i = 0; i < m->rows.n; i++)
		if (m->rows.v[i].st->size > maxb)
			maxb = m->rows.v[i].st->size;
	free(m->buckets);
	free(m->buckets_old);
	m->buckets = calloc(maxb, sizeof(*m->buckets));
	m->buckets_old = calloc(maxb, sizeof(*m->buckets_old));
	if (m->lines == NULL || m->buckets == NULL || m->buckets_old == NULL)
		return -ENOMEM;
	top_model_lines(m);
	return 0;
}

void
top_model_reset_averages(struct top_model *m)
{
	for (unsigned i = 0; i < m->nhist; i++)
		m->hist[i].valid = false;
	m->nhist = 0;
}

int
top_model_set_filter(struct top_model *m, const char *re, char *why, size_t len)
{
	regex_t r;
	int e;

	if (re == NULL || re[0] == '\0') {
		if (m->have_filter)
			regfree(&m->filter);
		m->have_filter = false;
		m->filter_text[0] = '\0';
		top_model_lines(m);
		return 0;
	}
	e = regcomp(&r, re, REG_EXTENDED | REG_NOSUB);
	if (e != 0) {
		regerror(e, &r, why, len);
		regfree(&r);
		return -EINVAL;
	}
	if (m->have_filter)
		regfree(&m->filter);
	m->filter = r;
	m->have_filter = true;
	snprintf(m->filter_text, sizeof(m->filter_text), "%s", re);
	top_model_lines(m);
	return 0;
}

/* Keep @s (a copy) as the newest snapshot of the history, if the last is old enough. */
static void
keep_snapshot(struct top_model *m, const struct ks_snap *s)
{
	if (m->nhist > 0 && !ks_snap_same(&m->hist[m->nhist - 1], s))
		top_model_reset_averages(m);	/* a new generation: the old ones mean nothing */
	if (m->nhist > 0 &&
	    s->samples[0].time_ns - m->hist[m->nhist - 1].samples[0].time_ns < TOP_KEEP_EVERY_NS)
		return;
	if (m->nhist == TOP_HISTORY) {
		struct ks_snap first = m->hist[0];

		memmove(&m->hist[0], &m->hist[1], (TOP_HISTORY - 1) * sizeof(m->hist[0]));
		m->hist[TOP_HISTORY - 1] = first;	/* its buffers are reused */
		m->nhist--;
	}
	ks_snap_copy(&m->hist[m->nhist], s);
	if (m->hist[m->nhist].valid)
		m->nhist++;
}

/*
 * The oldest snapshot kept that is at most @window older than @now, if it
 * covers most of the window (9/10 of it); NULL otherwise.
 */
static const struct ks_snap *
window_start(const struct top_model *m, const struct ks_snap *now, uint64_t window)
{
	uint64_t t = now->samples[0].time_ns;

	for (unsigned i = 0; i < m->nhist; i++) {
		uint64_t ti = m->hist[i].samples[0].time_ns;

		if (ks_snap_same(&m->hist[i], now) && ti < t && t - ti <= window)
			return t - ti >= window / 10 * 9 ? &m->hist[i] : NULL;
	}
	return NULL;
}

/* Whether snapshot @s is of the segment the model has now (its rows index it). */
static bool
of_segment(const struct top_model *m, const struct ks_snap *s)
{
	const struct kvmstats_segment_info *in = kvmstats_info(m->seg);

	return s->valid && s->generation == in->generation && s->incarnation == in->incarnation &&
	       s->words == kvmstats_cut_words(m->seg) && s->nr_targets == kvmstats_nr_targets(m->seg);
}

int
top_model_update(struct top_model *m, bool keep)
{
	struct kvmstats_error err;
	int r;

	kvmstats_liveness(m->seg, &m->lv);
	if (m->lv.health == KVMSTATS_HEALTH_SUPERSEDED || m->lv.health == KVMSTATS_HEALTH_DEAD ||
	    m->lv.health == KVMSTATS_HEALTH_ENDED) {
		/* A new generation, or a publisher restarted under the name: follow it. */
		if (kvmstats_follow(&m->seg, &err) == 1) {
			/* What was read is the old segment's: its words are not the new rows'. */
			m->ring_old.valid = m->ring_new.valid = m->last.valid = false;
			top_model_reset_averages(m);
			if (top_model_set_per_vcpu(m, m->per_vcpu) < 0)
				return -ENOMEM;
			kvmstats_liveness(m->seg, &m->lv);
		}
	}
	m->state = kvmstats_health_name(m->lv.health);
	kvmstats_status(m->seg, &m->st);
	if (m->lv.health == KVMSTATS_HEALTH_ENDED || m->lv.health == KVMSTATS_HEALTH_BROKEN ||
	    m->lv.health == KVMSTATS_HEALTH_SUPERSEDED) {
		top_model_lines(m);
		return 1;
	}
	/* The look before, for RATE/s: a later look of the same segment. */
	if (of_segment(m, &m->ring_new))
		ks_snap_copy(&m->last, &m->ring_new);
	else
		m->last.valid = false;
	r = ks_ring_take(m->seg, &m->ring_old, &m->ring_new);
	if (r == -ENODATA) {
		/* Fewer than two samples yet: totals, no rates from the ring. */
		r = ks_snap_take(m->seg, &m->ring_new);
		m->ring_old.valid = false;
	}
	if (r < 0)
		return r;
	if (keep && m->lv.health == KVMSTATS_HEALTH_LIVE)
		keep_snapshot(m, &m->ring_new);
	top_model_lines(m);
	return 0;
}

static int
cmp_lines(const void *a, const void *b, void *arg)
{
	const struct top_line *x = a, *y = b;
	const struct top_model *m = arg;
	int c;

	switch (m->sort) {
	case TOP_SORT_TOTAL:
		if (x->total != y->total)
			return x->total > y->total ? -1 : 1;
		break;
	case TOP_SORT_RATE: {
		double rx = isnan(x->rate) ? -1 : x->rate, ry = isnan(y->rate) ? -1 : y->rate;

		if (rx != ry)
			return rx > ry ? -1 : 1;
		break;
	}
	default:
		break;
	}
	c = strcmp(x->row->st->name, y->row->st->name);
	if (c != 0)
		return c;
	return x->row->vcpu < y->row->vcpu ? -1 : x->row->vcpu > y->row->vcpu;
}

/* @w: the snapshot 10 s back (NULL: none), the start of the window of the percentiles. */
static void
percentiles(struct top_model *m, struct top_line *l, const struct ks_snap *w)
{
	const struct ks_row *r = l->row;
	uint64_t *b = m->buckets;

	ks_row_buckets(r, &m->ring_new, b);
	l->pct_window = false;
	if (w != NULL) {
		uint64_t moved = 0;

		ks_row_buckets(r, w, m->buckets_old);
		for (uint32_t k = 0; k < r->st->size; k++)
			moved += b[k] >= m->buckets_old[k] ? b[k] - m->buckets_old[k] : 0;
		if (moved > 0) {
			for (uint32_t k = 0; k < r->st->size; k++)
				b[k] = b[k] >= m->buckets_old[k] ? b[k] - m->buckets_old[k] : 0;
			l->pct_window = true;
		}
	}
	for (unsigned i = 0; i < 3; i++)
		l->pct[i].valid = ks_hist_percentile(r->st, b, pct_q[i], &l->pct[i].lo,
						     &l->pct[i].hi) >= 0;
}

void
top_model_lines(struct top_model *m)
{
	const struct ks_snap *w10, *w60, *before;

	m->nlines = 0;
	m->nmatch = 0;
	if (!of_segment(m, &m->ring_new) || m->lines == NULL)
		return;
	/* The same for every row: where the averages start, what RATE/s is from. */
	w10 = window_start(m, &m->ring_new, WINDOW_10S);
	w60 = window_start(m, &m->ring_new, WINDOW_60S);
	/*
	 * RATE/s: from the look before, when there is one (and the publisher
	 * swept in between); else over the ring, whose span is a few periods.
	 */
	before = ks_snap_same(&m->last, &m->ring_new) &&
		 m->last.samples[0].time_ns < m->ring_new.samples[0].time_ns ? &m->last : &m->ring_old;
	for (size_t i = 0; i < m->rows.n; i++) {
		const struct ks_row *r = &m->rows.v[i];
		struct top_line *l = &m->lines[m->nlines];
		bool moves = r->st->type == KVMSTATS_TYPE_CUMULATIVE || ks_row_is_hist(r);

		if (m->have_filter && regexec(&m->filter, r->st->name, 0, NULL, 0) != 0)
			continue;
		m->nmatch++;
		memset(l, 0, sizeof(*l));
		l->row = r;
		l->total = ks_row_total(r, &m->ring_new);
		l->rate = l->avg10 = l->avg60 = NAN;
		if (moves) {
			l->rate = ks_row_rate(r, before, &m->ring_new);
			if (w10 != NULL)
				l->avg10 = ks_row_rate(r, w10, &m->ring_new);
			if (w60 != NULL)
				l->avg60 = ks_row_rate(r, w60, &m->ring_new);
		}
		if (ks_row_is_hist(r))
			percentiles(m, l, w10);
		if (m->hide_zero && l->total == 0 && (isnan(l->rate) || l->rate == 0))
			continue;
		m->nlines++;
	}
	qsort_r(m->lines, m->nlines, sizeof(*m->lines), cmp_lines, m);
}

/* ---- cells ------------------------------------------------------------------- */

void
top_cell_total(const struct top_line *l, char *buf, size_t len)
{
	const struct kvmstats_stat_info *st = l->row->st;

	if (st->unit == KVMSTATS_UNIT_BOOLEAN && !ks_row_is_hist(l->row)) {
		if (l->row->nr_targets > 1)
			snprintf(buf, len, "%llu of %u", (unsigned long long)l->total,
				 l->row->nr_targets);
		else
			snprintf(buf, len, "%s", l->total ? "yes" : "no");
	} else if (ks_row_is_hist(l->row)) {
		snprintf(buf, len, "%llu", (unsigned long long)l->total);	/* a count */
	} else {
		ks_human(buf, len, st, (double)l->total);
	}
}

void
top_cell_rate(const struct top_line *l, double v, char *buf, size_t len)
{
	const struct kvmstats_stat_info *st = l->row->st;
	char h[48];

	if (isnan(v)) {
		snprintf(buf, len, "-");
	} else if (ks_row_is_hist(l->row) || st->unit == KVMSTATS_UNIT_NONE ||
		   st->unit == KVMSTATS_UNIT_CYCLES) {
		double x = ks_row_is_hist(l->row) ? v : v * pow(st->base, st->exponent);

		snprintf(buf, len, x >= 100 ? "%.0f" : "%.1f", x);
	} else {
		snprintf(buf, len, "%s/s", ks_human(h, sizeof(h), st, v));
	}
}

void
top_cell_pct(const struct top_line *l, unsigned i, char *buf, size_t len)
{
	const struct top_pct *p = &l->pct[i];
	char h[48];

	if (!ks_row_is_hist(l->row) || !p->valid)
		snprintf(buf, len, "-");
	else if (p->hi == UINT64_MAX)
		snprintf(buf, len, ">=%s", ks_human(h, sizeof(h), l->row->st, (double)p->lo));
	else
		snprintf(buf, len, "<=%s", ks_human(h, sizeof(h), l->row->st, (double)p->hi));
}

void
top_line_cells(const struct top_line *l, struct top_cells *c)
{
	ks_row_target(l->row, c->target, sizeof(c->target));
	ks_text_escape(c->name, sizeof(c->name), l->row->st->name);
	top_cell_total(l, c->total, sizeof(c->total));
	top_cell_rate(l, l->rate, c->rate, sizeof(c->rate));
	top_cell_rate(l, l->avg10, c->avg10, sizeof(c->avg10));
	top_cell_rate(l, l->avg60, c->avg60, sizeof(c->avg60));
	for (unsigned k = 0; k < 3; k++)
		top_cell_pct(l, k, c->pct[k], sizeof(c->pct[k]));
}

/* ---- --once ------------------------------------------------------------------ */

static void
print_header(const struct top_model *m, FILE *f)
{
	const struct kvmstats_segment_info *in = kvmstats_info(m->seg);
	unsigned vcpus = 0;
	double ring_ms = NAN;

	for (unsigned t = 0; t < kvmstats_nr_targets(m->seg); t++)
		vcpus += kvmstats_target(m->seg, t)->kind == KVMSTATS_TARGET_VCPU;
	if (m->ring_old.valid && m->ring_new.valid)
		ring_ms = (double)(m->ring_new.samples[0].time_ns - m->ring_old.samples[0].time_ns) / 1e6;
	else
		ring_ms = 0;
	fputs("VM ", f);
	ks_text_fputs(f, in->vm_name);
	fprintf(f, "  %s  generation %llu  sweep %llu  %u vCPUs  heartbeat %.0f ms ago  "
		"%.0f Hz  rates over the last %.1f ms (the ring)\n", m->state,
		(unsigned long long)in->generation, (unsigned long long)m->st.sweep, vcpus,
		(double)m->lv.age_ns / 1e6, in->poll_period_ns ? 1e9 / (double)in->poll_period_ns : 0,
		ring_ms);
}

void
top_print_text(const struct top_model *m, FILE *f)
{
	struct top_cells c;

	print_header(m, f);
	fprintf(f, "%-7s %-30s %14s %12s %12s %12s %10s %10s %10s\n", "TARGET", "STAT", "TOTAL",
		"RATE/s", "AVG10/s", "AVG60/s", "P50", "P90", "P99");
	for (size_t i = 0; i < m->nlines; i++) {
		top_line_cells(&m->lines[i], &c);
		fprintf(f, "%-7s %-30s %14s %12s %12s %12s %10s %10s %10s\n", c.target, c.name,
			c.total, c.rate, c.avg10, c.avg60, c.pct[0], c.pct[1], c.pct[2]);
	}
}

static void
json_num(FILE *f, const char *key, double v)
{
	if (isnan(v))
		fprintf(f, ",\"%s\":null", key);
	else
		fprintf(f, ",\"%s\":%.6g", key, v);
}

void
top_print_json(const struct top_model *m, FILE *f)
{
	const struct kvmstats_segment_info *in = kvmstats_info(m->seg);
	static const char *const pname[3] = { "p50", "p90", "p99" };
	char target[32];

	fputs("{\"vm\":", f);
	ks_json_write_string(f, in->vm_name);
	fprintf(f, ",\"state\":\"%s\",\"generation\":%llu,\"sweep\":%llu,\"heartbeat_age_ns\":%llu,"
		"\"rows\":[", m->state, (unsigned long long)in->generation,
		(unsigned long long)m->st.sweep, (unsigned long long)m->lv.age_ns);
	for (size_t i = 0; i < m->nlines; i++) {
		const struct top_line *l = &m->lines[i];
		const struct kvmstats_stat_info *st = l->row->st;

		fprintf(f, "%s\n  {\"target\":\"%s\",\"provider\":", i ? "," : "",
			ks_row_target(l->row, target, sizeof(target)));
		ks_json_write_string(f, st->provider_name);
		fputs(",\"stat\":", f);
		ks_json_write_string(f, st->name);
		fprintf(f, ",\"type\":\"%s\",\"unit\":\"%s\",\"base\":%u,\"exponent\":%d,\"total\":%llu",
			kvmstats_type_name(st->type),
			kvmstats_unit_name(st->unit) ? kvmstats_unit_name(st->unit) : "none", st->base,
			st->exponent, (unsigned long long)l->total);
		json_num(f, "rate", l->rate);
		json_num(f, "avg10", l->avg10);
		json_num(f, "avg60", l->avg60);
		if (ks_row_is_hist(l->row))
			for (unsigned k = 0; k < 3; k++) {
				if (!l->pct[k].valid) {
					fprintf(f, ",\"%s\":null", pname[k]);
					continue;
				}
				fprintf(f, ",\"%s\":{\"lo\":%llu,\"hi\":", pname[k],
					(unsigned long long)l->pct[k].lo);
				if (l->pct[k].hi == UINT64_MAX)
					fputs("null}", f);
				else
					fprintf(f, "%llu}", (unsigned long long)l->pct[k].hi);
			}
		fputc('}', f);
	}
	fputs("\n]}\n", f);
}
