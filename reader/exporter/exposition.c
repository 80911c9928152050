/* SPDX-License-Identifier: MIT */
/* exposition.c - one scrape in the text format 0.0.4 or OpenMetrics 1.0. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter_log.h"
#include "exposition.h"
#include "metric_map.h"

/* The exporter's own families, claimed first: their ids are their order here. */
enum own_family {
	OWN_VM_UP,
	OWN_VM_ALIVE,
	OWN_VM_AGE,
	OWN_VM_SWEEPS,
	OWN_VM_OVERRUNS,
	OWN_VM_READ_ERRORS,
	OWN_VM_GENERATION,
	OWN_VM_VCPUS,
	OWN_VM_PERIOD,
	OWN_BUILD,
	OWN_SEGMENTS,
	OWN_SCRAPES,
	OWN_ERRORS,
	OWN_DURATION,
	OWN_COUNT
};

static const struct own_desc {
	const char *name;
	enum mm_kind kind;
	const char *unit;
	const char *help;
} own[OWN_COUNT] = {
	[OWN_VM_UP] = { "kvmstats_vm_up", MM_GAUGE, NULL,
		"1 if the VM's publisher is sweeping, 0 if its stats are stale or its "
		"publisher is gone (then its other series are not exported)" },
	[OWN_VM_ALIVE] = { "kvmstats_vm_publisher_alive", MM_GAUGE, NULL,
		"1 while the process that publishes the VM exists, 0 once it died "
		"without ending the segment" },
	[OWN_VM_AGE] = { "kvmstats_vm_heartbeat_age_seconds", MM_GAUGE, "seconds",
		"Time since the publisher last completed a sweep of the VM" },
	[OWN_VM_SWEEPS] = { "kvmstats_vm_sweeps", MM_COUNTER, NULL,
		"Sweeps the publisher completed in this generation of the segment" },
	[OWN_VM_OVERRUNS] = { "kvmstats_vm_overruns", MM_COUNTER, NULL,
		"Sweeps that missed their deadline" },
	[OWN_VM_READ_ERRORS] = { "kvmstats_vm_read_errors", MM_COUNTER, NULL,
		"Reads of a stats file that failed in the publisher (values repeat)" },
	[OWN_VM_GENERATION] = { "kvmstats_vm_generation", MM_GAUGE, NULL,
		"Segment generation: grows when vCPUs are added or removed" },
	[OWN_VM_VCPUS] = { "kvmstats_vm_vcpus", MM_GAUGE, NULL,
		"vCPUs the segment publishes" },
	[OWN_VM_PERIOD] = { "kvmstats_vm_poll_period_seconds", MM_GAUGE, "seconds",
		"The publisher's sweep period" },
	[OWN_BUILD] = { "kvmstats_exporter_build_info", MM_GAUGE, NULL,
		"The exporter's version, as a label; always 1" },
	[OWN_SEGMENTS] = { "kvmstats_exporter_segments", MM_GAUGE, NULL,
		"Segments in the directory at this scrape, by state" },
	[OWN_SCRAPES] = { "kvmstats_exporter_scrapes", MM_COUNTER, NULL,
		"Scrapes served since the exporter started" },
	[OWN_ERRORS] = { "kvmstats_exporter_segment_errors", MM_COUNTER, NULL,
		"Segments skipped (refused at attach, damaged, unfollowable) and reads "
		"given up, since the exporter started; the log says why" },
	[OWN_DURATION] = { "kvmstats_exporter_scrape_duration_seconds", MM_GAUGE, "seconds",
		"Time this scrape took to list, read and format every VM" },
};

int
expo_register_own(struct families *fs)
{
	for (unsigned i = 0; i < OWN_COUNT; i++) {
		struct mm_family d = { .kind = own[i].kind, .unit = own[i].unit };
		int id;

		snprintf(d.name, sizeof(d.name), "%s", own[i].name);
		id = families_add(fs, &d, own[i].help);
		if (id < 0)
			return id;
		if ((unsigned)id != i)
			return -EINVAL;		/* they must come first */
	}
	return 0;
}

/* ---- lines ------------------------------------------------------------- */

struct writer {
	struct outbuf *b;
	enum expo_format fmt;
};

static void
header(struct writer *w, const struct family *f)
{
	if (w->fmt == EXPO_OPENMETRICS)
		outbuf_add(w->b, f->header_om, f->header_om_len);
	else
		outbuf_add(w->b, f->header_text, f->header_text_len);
}

/* name<sfx>{labels[,extra]} */
static void
sample_start(struct writer *w, const char *name, const char *sfx, const char *labels,
	     const char *extra)
{
	outbuf_puts(w->b, name);
	outbuf_puts(w->b, sfx);
	if ((labels && *labels) || extra) {
		outbuf_putc(w->b, '{');
		if (labels && *labels)
			outbuf_puts(w->b, labels);
		if (extra) {
			if (labels && *labels)
				outbuf_putc(w->b, ',');
			outbuf_puts(w->b, extra);
		}
		outbuf_putc(w->b, '}');
	}
	outbuf_putc(w->b, ' ');
}

static void
sample_u64(struct writer *w, const char *name, const char *sfx, const char *labels, uint64_t v)
{
	sample_start(w, name, sfx, labels, NULL);
	outbuf_u64(w->b, v);
	outbuf_putc(w->b, '\n');
}

static void
sample_scaled(struct writer *w, const char *name, const char *sfx, const char *labels,
	      uint64_t v, unsigned base, int exponent)
{
	char num[MM_NUM_MAX];
	size_t n = mm_format_value(num, v, base, exponent);

	sample_start(w, name, sfx, labels, NULL);
	outbuf_add(w->b, num, n);
	outbuf_putc(w->b, '\n');
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- one VM's stats: its series, prefixes made at attach ------------------ */

/*
 * Copy a piece 32 bytes at a time, up to 31 bytes beyond its end: fixed
 * copies the compiler inlines, where a call to memcpy() per piece would
 * cost more than the line's bytes.  Every piece is allocated with
 * PIECE_SLACK bytes after it, and a series' bound leaves as many after
 * every line (vmset.c).
 */
static inline char *
put(char *p, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i += 32)
		memcpy(p + i, s + i, 32);
	return p + n;
}

/* "} ", with the slack of every piece. */
static const char close_brace[PIECE_SLACK + 3] = "} ";

/* A line up to its value: the family's "name{", the labels, the closer. */
static inline char *
line_start(char *p, const struct family *f, int kind, const struct series *se,
	   const char *close, size_t close_len)
{
	p = put(p, f->open[kind], f->open_len[kind]);
	p = put(p, se->labels, se->labels_len);
	return put(p, close, close_len);
}

/*
 * The scalar of a series: the value of its one entry, or for per-VM sums
 * the sum over vCPUs (peaks: the largest; booleans: how many are true).
 */
static inline uint64_t
scalar_of(const struct series *se, const uint64_t *cut, const struct plan_entry *e)
{
	uint64_t acc = 0;

	for (uint32_t i = 0; i < se->count; i++) {
		uint64_t v = cut[e[i].value_at];

		if (se->boolean)
			v = v != 0;
		if (se->peak)
			acc = v > acc ? v : acc;
		else
			acc = sat_add(acc, v);
	}
	return acc;
}

static void
write_series(struct writer *w, const struct family *f, const struct ex_vm *vm,
	     const struct series *se, uint64_t *scratch)
{
	const struct plan_entry *e = &vm->plan[se->first];
	const uint64_t *cut = vm->cut;
	char *p = outbuf_space(w->b, se->bound);

	if (p == NULL)
		return;
	if (!se->histogram) {
		uint64_t v = scalar_of(se, cut, e);

		p = line_start(p, f, SAMPLE_VALUE, se, close_brace, 2);
		p = se->boolean ? mm_put_u64(p, v) : mm_put_value(p, v, se->base, se->exponent);
		*p++ = '\n';
	} else {
		const uint64_t *buckets = cut + e->value_at;
		uint64_t sum = 0, cum = 0;

		if (se->count > 1) {
			memset(scratch, 0, se->size * sizeof(*scratch));
			for (uint32_t i = 0; i < se->count; i++) {
				const uint64_t *v = cut + e[i].value_at;

				for (uint32_t k = 0; k < se->size; k++)
					scratch[k] = sat_add(scratch[k], v[k]);
			}
			buckets = scratch;
		}
		if (se->has_sum)
			for (uint32_t i = 0; i < se->count; i++)
				sum = sat_add(sum, cut[e[i].sum_at]);
		for (uint32_t k = 0; k < se->size; k++) {
			cum = sat_add(cum, buckets[k]);
			p = line_start(p, f, SAMPLE_BUCKET, se, se->le->text + se->le->at[k],
				       se->le->at[k + 1] - se->le->at[k]);
			p = mm_put_u64(p, cum);
			*p++ = '\n';
		}
		/* OpenMetrics: a _count only beside a _sum. */
		if (w->fmt == EXPO_TEXT || se->has_sum) {
			p = line_start(p, f, SAMPLE_COUNT, se, close_brace, 2);
			p = mm_put_u64(p, cum);
			*p++ = '\n';
		}
		if (se->has_sum) {
			p = line_start(p, f, SAMPLE_SUM, se, close_brace, 2);
			p = mm_put_value(p, sum, se->base, se->exponent);
			*p++ = '\n';
		}
	}
	outbuf_advance(w->b, p);
}

/* ---- liveness and the exporter's own ----------------------------------- */

static bool
shows_liveness(const struct ex_vm *vm)
{
	return vm->seg != NULL && (vm->lv.health == KVMSTATS_HEALTH_LIVE ||
				   vm->lv.health == KVMSTATS_HEALTH_STALE ||
				   vm->lv.health == KVMSTATS_HEALTH_DEAD);
}

static void
write_liveness(struct writer *w, const struct vmset *vs, unsigned id)
{
	const struct family *f = families_get(vs->fs, id);
	bool any = false;

	for (size_t i = 0; i < vs->n; i++) {
		const struct ex_vm *vm = vs->vms[i];
		const struct kvmstats_segment_info *info;
		const char *l = vm->vm_label;

		if (!shows_liveness(vm))
			continue;
		if (!any)
			header(w, f);
		any = true;
		info = kvmstats_info(vm->seg);
		switch (id) {
		case OWN_VM_UP:
			sample_u64(w, f->desc.name, "", l, vm->lv.health == KVMSTATS_HEALTH_LIVE);
			break;
		case OWN_VM_ALIVE:
			sample_u64(w, f->desc.name, "", l, vm->lv.health != KVMSTATS_HEALTH_DEAD);
			break;
		case OWN_VM_AGE:
			sample_scaled(w, f->desc.name, "", l, vm->lv.age_ns, 10, -9);
			break;
		case OWN_VM_SWEEPS:
			sample_u64(w, f->desc.name, "_total", l, vm->status.sweep);
			break;
		case OWN_VM_OVERRUNS:
			sample_u64(w, f->desc.name, "_total", l, vm->status.overruns);
			break;
		case OWN_VM_READ_ERRORS:
			sample_u64(w, f->desc.name, "_total", l, vm->status.read_errors);
			break;
		case OWN_VM_GENERATION:
			sample_u64(w, f->desc.name, "", l, info->generation);
			break;
		case OWN_VM_VCPUS:
			sample_u64(w, f->desc.name, "", l, vm->nr_vcpus);
			break;
		case OWN_VM_PERIOD:
			sample_scaled(w, f->desc.name, "", l, info->poll_period_ns, 10, -9);
			break;
		}
	}
}

static void
write_exporter(struct writer *w, const struct vmset *vs, uint64_t start_ns)
{
	static const char *const states[] = { "live", "stale", "dead", "skipped" };
	unsigned count[4] = { 0 };
	const struct family *f;

	for (size_t i = 0; i < vs->n; i++) {
		const struct ex_vm *vm = vs->vms[i];

		if (EX_VM_SKIPPED(vm))
			count[3]++;
		else if (vm->seg == NULL)
			continue;
		else if (vm->lv.health <= KVMSTATS_HEALTH_DEAD) {
			count[vm->lv.health]++;
		}
	}
	f = families_get(vs->fs, OWN_BUILD);
	header(w, f);
	sample_u64(w, f->desc.name, "", "version=\"" KS_VERSION "\"", 1);
	f = families_get(vs->fs, OWN_SEGMENTS);
	header(w, f);
	for (unsigned i = 0; i < 4; i++) {
		char l[32];

		snprintf(l, sizeof(l), "state=\"%s\"", states[i]);
		sample_u64(w, f->desc.name, "", l, count[i]);
	}
	f = families_get(vs->fs, OWN_SCRAPES);
	header(w, f);
	sample_u64(w, f->desc.name, "_total", NULL, vs->scrapes);
	f = families_get(vs->fs, OWN_ERRORS);
	header(w, f);
	sample_u64(w, f->desc.name, "_total", NULL, vs->segment_errors);
	f = families_get(vs->fs, OWN_DURATION);
	header(w, f);
	sample_scaled(w, f->desc.name, "", NULL, kvmstats_now_ns() - start_ns, 10, -9);
}

/* ---- the scrape ------------------------------------------------------- */

/* Where a VM stands in the gather: its next series and its formatted text. */
struct cursor {
	const struct ex_vm *vm;
	size_t next;			/* its first series not gathered yet */
};

/*
 * Phase 1: a VM's series formatted, one VM after another, into its own
 * buffer (kept between scrapes), with where each series ends.  A VM's
 * series, plan and cut are read in order while they are in the cache;
 * done family by family instead, every VM's memory would be visited
 * once per family.
 */
static void
format_vm(const struct ex_vm *vm, enum expo_format fmt, const struct families *fs,
	  uint64_t *scratch)
{
	struct writer w = { .b = vm->text, .fmt = fmt };
	uint64_t *big = NULL;

	vm->text->len = 0;
	vm->text->failed = false;
	for (size_t k = 0; k < vm->nseries; k++) {
		const struct series *se = &vm->series[k];
		uint64_t *s = scratch;

		if (se->histogram && se->size > 65) {	/* linear: any number of buckets */
			free(big);
			big = malloc(se->size * sizeof(*big));
			if (big == NULL) {
				vm->text->failed = true;
				break;
			}
			s = big;
		}
		write_series(&w, families_get(fs, se->family), vm, se, s);
		vm->series_end[k] = vm->text->len;
		if (vm->text->len > EX_VM_TEXT_MAX)
			vm->text->failed = true;
		if (vm->text->failed)
			break;
	}
	free(big);
}

void
expo_write(struct outbuf *b, enum expo_format fmt, struct vmset *vs, uint64_t start_ns)
{
	struct writer w = { .b = b, .fmt = fmt };
	size_t nfam = families_count(vs->fs);
	struct cursor *cursor = calloc(vs->n ? vs->n : 1, sizeof(*cursor));
	size_t ncur = 0;
	uint64_t scratch[65];	/* summed buckets: a log2 histogram has at most 65 */

	if (cursor == NULL) {
		b->failed = true;
		return;
	}
	for (size_t i = 0; i < vs->n; i++) {
		struct ex_vm *vm = vs->vms[i];

		vmset_read(vs, vm);
		if (!ex_vm_exported(vm) || vm->nseries == 0)
			continue;
		format_vm(vm, fmt, vs->fs, scratch);
		/* One VM that cannot be written (too big, no memory) leaves the others. */
		if (outbuf_failed(vm->text)) {
			if (!vm->too_big)
				ex_log("%s: left out of the scrape: its lines take over %u MiB, "
				       "or there is no memory for them", vm->file, EX_VM_TEXT_MAX >> 20);
			vm->too_big = true;
			vs->segment_errors++;
			continue;
		}
		vm->too_big = false;
		cursor[ncur++] = (struct cursor) { vm, 0 };
	}
	for (unsigned id = OWN_VM_UP; id <= OWN_VM_PERIOD; id++)
		write_liveness(&w, vs, id);
	/*
	 * Phase 2: families outside, VMs inside, as the format wants: each
	 * VM's lines of a family are one run of its text, copied whole.
	 */
	for (size_t id = OWN_COUNT; id < nfam && ncur > 0; id++) {
		const struct family *f = families_get(vs->fs, (unsigned)id);
		bool any = false;

		for (size_t i = 0; i < ncur; i++) {
			struct cursor *c = &cursor[i];
			const struct ex_vm *vm = c->vm;
			size_t from;

			while (c->next < vm->nseries && vm->series[c->next].family < id)
				c->next++;
			if (c->next == vm->nseries || vm->series[c->next].family != id)
				continue;
			from = c->next ? vm->series_end[c->next - 1] : 0;
			while (c->next < vm->nseries && vm->series[c->next].family == id)
				c->next++;
			if (!any)
				header(&w, f);
			any = true;
			outbuf_add(b, vm->text->data + from, vm->series_end[c->next - 1] - from);
		}
	}
	free(cursor);
	write_exporter(&w, vs, start_ns);
	if (fmt == EXPO_OPENMETRICS)
		outbuf_puts(b, "# EOF\n");
}
