/* SPDX-License-Identifier: MIT */
/* exposition.c - one scrape in the text format 0.0.4 or OpenMetrics 1.0. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char *
type_word(enum mm_kind kind)
{
	return kind == MM_COUNTER ? "counter" : kind == MM_GAUGE ? "gauge" : "histogram";
}

static void
header(struct writer *w, const struct family *f)
{
	const char *name = f->desc.name;
	bool om = w->fmt == EXPO_OPENMETRICS;
	const char *sfx = !om && f->desc.kind == MM_COUNTER ? "_total" : "";

	if (om) {
		outbuf_printf(w->b, "# TYPE %s %s\n", name, type_word(f->desc.kind));
		if (f->desc.unit != NULL)
			outbuf_printf(w->b, "# UNIT %s %s\n", name, f->desc.unit);
		outbuf_printf(w->b, "# HELP %s %s\n", name, f->help);
	} else {
		outbuf_printf(w->b, "# HELP %s%s %s\n", name, sfx, f->help);
		outbuf_printf(w->b, "# TYPE %s%s %s\n", name, sfx, type_word(f->desc.kind));
	}
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

/* ---- one VM's stats ------------------------------------------------------ */

static const uint64_t *
values_of(const struct ex_vm *vm, const struct plan_entry *e)
{
	return vm->cut + kvmstats_target(vm->seg, e->target)->cut_offset + e->st->value_index;
}

/* The entries [e, end) of one family in one VM: one series, or one per target. */
static void
write_scalar(struct writer *w, const struct family *f, const struct ex_vm *vm,
	     const struct plan_entry *e, const struct plan_entry *end, bool sum_targets)
{
	const char *sfx = f->desc.kind == MM_COUNTER ? "_total" : "";
	const struct kvmstats_stat_info *st = e->st;

	if (!sum_targets) {
		for (; e < end; e++) {
			uint64_t v = values_of(vm, e)[0];
			const char *labels = vm->target_label[e->target];

			if (f->desc.boolean)
				sample_u64(w, f->desc.name, sfx, labels, v != 0);
			else
				sample_scaled(w, f->desc.name, sfx, labels, v, st->base, st->exponent);
		}
		return;
	}
	{
		uint64_t acc = 0;

		for (; e < end; e++) {
			uint64_t v = values_of(vm, e)[0];

			if (f->desc.boolean)
				v = v != 0;
			if (st->type == KVMSTATS_TYPE_PEAK)
				acc = v > acc ? v : acc;
			else
				acc = sat_add(acc, v);
		}
		if (f->desc.boolean)
			sample_u64(w, f->desc.name, sfx, vm->vm_label, acc);
		else
			sample_scaled(w, f->desc.name, sfx, vm->vm_label, acc, st->base, st->exponent);
	}
}

static void
write_buckets(struct writer *w, const struct family *f, const char *labels,
	      const struct kvmstats_stat_info *st, const struct le_set *le,
	      const uint64_t *buckets, bool has_sum, uint64_t sum)
{
	char extra[MM_NUM_MAX + 8];
	uint64_t cum = 0;

	for (uint32_t i = 0; i < st->size; i++) {
		cum = sat_add(cum, buckets[i]);
		snprintf(extra, sizeof(extra), "le=\"%s\"",
			 i + 1 < st->size ? le->text + le->at[i] : "+Inf");
		sample_start(w, f->desc.name, "_bucket", labels, extra);
		outbuf_u64(w->b, cum);
		outbuf_putc(w->b, '\n');
	}
	/* OpenMetrics: a _count only beside a _sum. */
	if (w->fmt == EXPO_TEXT || has_sum)
		sample_u64(w, f->desc.name, "_count", labels, cum);
	if (has_sum)
		sample_scaled(w, f->desc.name, "_sum", labels, sum, st->base, st->exponent);
}

static void
write_hist(struct writer *w, const struct family *f, const struct ex_vm *vm,
	   const struct plan_entry *e, const struct plan_entry *end, bool sum_targets,
	   uint64_t *scratch)
{
	const struct kvmstats_stat_info *st = e->st;

	if (!sum_targets) {
		for (; e < end; e++) {
			const uint64_t *rec = vm->cut + kvmstats_target(vm->seg, e->target)->cut_offset;

			write_buckets(w, f, vm->target_label[e->target], st, e->le, values_of(vm, e),
				      e->sum_index >= 0, e->sum_index >= 0 ? rec[e->sum_index] : 0);
		}
		return;
	}
	{
		bool has_sum = true;
		uint64_t sum = 0;

		memset(scratch, 0, st->size * sizeof(*scratch));
		for (const struct plan_entry *x = e; x < end; x++) {
			const uint64_t *v = values_of(vm, x);
			const uint64_t *rec = vm->cut + kvmstats_target(vm->seg, x->target)->cut_offset;

			for (uint32_t i = 0; i < st->size; i++)
				scratch[i] = sat_add(scratch[i], v[i]);
			if (x->sum_index < 0)
				has_sum = false;
			else
				sum = sat_add(sum, rec[x->sum_index]);
		}
		write_buckets(w, f, vm->vm_label, st, e->le, scratch, has_sum, sum);
	}
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

void
expo_write(struct outbuf *b, enum expo_format fmt, const struct vmset *vs, uint64_t start_ns)
{
	struct writer w = { .b = b, .fmt = fmt };
	size_t nfam = families_count(vs->fs);
	size_t *cursor = calloc(vs->n ? vs->n : 1, sizeof(*cursor));
	uint64_t scratch[65];	/* summed buckets: a histogram has at most 65 (log2) ... */
	uint64_t *big = NULL;	/* ... or any number (linear) */

	if (cursor == NULL) {
		b->failed = true;
		return;
	}
	for (unsigned id = OWN_VM_UP; id <= OWN_VM_PERIOD; id++)
		write_liveness(&w, vs, id);
	for (size_t id = OWN_COUNT; id < nfam; id++) {
		const struct family *f = families_get(vs->fs, (unsigned)id);
		bool any = false;

		for (size_t i = 0; i < vs->n; i++) {
			const struct ex_vm *vm = vs->vms[i];
			const struct plan_entry *e, *end;
			bool sum_targets;

			if (!ex_vm_exported(vm))
				continue;
			while (cursor[i] < vm->nplan && vm->plan[cursor[i]].family < id)
				cursor[i]++;
			if (cursor[i] == vm->nplan || vm->plan[cursor[i]].family != id)
				continue;
			e = &vm->plan[cursor[i]];
			end = e;
			while (end < vm->plan + vm->nplan && end->family == id)
				end++;
			if (!any)
				header(&w, f);
			any = true;
			sum_targets = !vs->cfg.per_vcpu &&
				      kvmstats_target(vm->seg, e->target)->kind == KVMSTATS_TARGET_VCPU;
			if (f->desc.kind != MM_HISTOGRAM) {
				write_scalar(&w, f, vm, e, end, sum_targets);
			} else {
				uint64_t *s = scratch;

				if (e->st->size > 65) {
					free(big);
					big = malloc(e->st->size * sizeof(*big));
					if (big == NULL) {
						b->failed = true;
						break;
					}
					s = big;
				}
				write_hist(&w, f, vm, e, end, sum_targets, s);
			}
			cursor[i] = (size_t)(end - vm->plan);
		}
	}
	free(big);
	free(cursor);
	write_exporter(&w, vs, start_ns);
	if (fmt == EXPO_OPENMETRICS)
		outbuf_puts(b, "# EOF\n");
}
