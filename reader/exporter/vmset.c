/* SPDX-License-Identifier: MIT */
/* vmset.c - every segment of the directory, kept attached between scrapes. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter_log.h"
#include "metric_map.h"
#include "vmset.h"

/* Per-stat refusals logged for one segment; the rest are counted. */
#define PLAN_LOG_MAX	3
/* Reads of a cut tried per scrape before the VM's stats are left out. */
#define CUT_TRIES	4

/* ---- labels ------------------------------------------------------------ */

/* Append @s as a label value: '\', '"' and newline escaped (both formats). */
static void
put_label_value(char **o, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			*(*o)++ = '\\';
			*(*o)++ = *s == '\n' ? 'n' : *s;
		} else {
			*(*o)++ = *s;
		}
	}
}

/* name1="v1",name2="v2"... for @n pairs; a malloc()ed string. */
static char *
make_labels(unsigned n, const char *const *names, const char *const *values)
{
	size_t len = 1;
	char *out, *o;

	for (unsigned i = 0; i < n; i++)
		len += strlen(names[i]) + 4 + 2 * strlen(values[i]);
	out = o = calloc(1, len + PIECE_SLACK);	/* a piece of sample lines */
	if (out == NULL)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		o = stpcpy(o, names[i]);
		o = stpcpy(o, "=\"");
		put_label_value(&o, values[i]);
		*o++ = '"';
	}
	*o = '\0';
	return out;
}

/* ---- the plan: which stat becomes which family ------------------------- */

static void
plan_clear(struct ex_vm *vm)
{
	free(vm->series);
	vm->series = NULL;
	vm->nseries = 0;
	free(vm->series_end);
	vm->series_end = NULL;
	if (vm->text != NULL)
		outbuf_free(vm->text);
	free(vm->text);
	vm->text = NULL;
	free(vm->plan);
	vm->plan = NULL;
	vm->nplan = 0;
	for (size_t i = 0; i < vm->nles; i++) {
		free(vm->les[i]->text);
		free(vm->les[i]->at);
		free(vm->les[i]);
	}
	free(vm->les);
	vm->les = NULL;
	vm->nles = 0;
	if (vm->target_label != NULL)
		for (unsigned t = 0; t < vm->nr_labels; t++)
			free(vm->target_label[t]);
	free(vm->target_label);
	vm->target_label = NULL;
	vm->nr_labels = 0;
	vm->nr_vcpus = 0;
	free(vm->cut);
	vm->cut = NULL;
	free(vm->samples);
	vm->samples = NULL;
}

static bool
same_shape(const struct kvmstats_stat_info *a, const struct kvmstats_stat_info *b)
{
	return a->type == b->type && a->unit == b->unit && a->base == b->base &&
	       a->exponent == b->exponent && a->size == b->size &&
	       a->bucket_size == b->bucket_size;
}

/* The edges of histograms shaped like @st, made once per VM. */
static const struct le_set *
le_get(struct ex_vm *vm, const struct kvmstats_stat_info *st)
{
	struct le_set *ls, **les;
	size_t len = 0;
	char num[MM_NUM_MAX];

	for (size_t i = 0; i < vm->nles; i++) {
		ls = vm->les[i];
		if (ls->type == st->type && ls->base == st->base && ls->exponent == st->exponent &&
		    ls->size == st->size && ls->bucket_size == st->bucket_size)
			return ls;
	}
	les = realloc(vm->les, (vm->nles + 1) * sizeof(*les));
	if (les == NULL)
		return NULL;
	vm->les = les;
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return NULL;
	ls->type = st->type;
	ls->base = st->base;
	ls->exponent = st->exponent;
	ls->size = st->size;
	ls->bucket_size = st->bucket_size;
	ls->text = calloc(1, (size_t)st->size * (MM_NUM_MAX + 8) + PIECE_SLACK);
	ls->at = calloc((size_t)st->size + 1, sizeof(*ls->at));
	if (ls->text == NULL || ls->at == NULL) {
		free(ls->text);
		free(ls->at);
		free(ls);
		return NULL;
	}
	for (uint32_t i = 0; i < st->size; i++) {
		uint64_t upper;
		size_t n;

		ls->at[i] = (uint32_t)len;
		if (mm_bucket_upper(st, i, &upper))
			mm_format_le(num, upper, st->base, st->exponent);
		else
			strcpy(num, "+Inf");
		n = (size_t)sprintf(ls->text + len, ",le=\"%s\"} ", num);
		len += n;
		if (n > ls->longest)
			ls->longest = (uint32_t)n;
	}
	ls->at[st->size] = (uint32_t)len;
	vm->les[vm->nles++] = ls;
	return ls;
}

/*
 * The HELP text: what the stat is in the schema's own words, and what
 * a per-VM series of vCPU stats holds.
 */
static void
make_help(char *buf, size_t len, const struct ex_config *cfg, enum kvmstats_target_kind kind,
	  const struct kvmstats_stat_info *st)
{
	const char *unit = kvmstats_unit_name(st->unit);
	const char *how = "";

	if (kind == KVMSTATS_TARGET_VCPU && !cfg->per_vcpu)
		how = st->type == KVMSTATS_TYPE_PEAK ? ", the largest of the VM's vCPUs"
		      : st->unit == KVMSTATS_UNIT_BOOLEAN ? ", the number of the VM's vCPUs for which it is true"
		      : ", summed over the VM's vCPUs";
	snprintf(buf, len, "%s %s statistic %s (%s%s%s)%s", st->provider_name,
		 kvmstats_target_kind_name(kind), st->name, kvmstats_type_name(st->type),
		 unit ? ", " : "", unit ? unit : "", how);
}

static bool
selected(const struct ex_config *cfg, const char *name)
{
	if (cfg->include != NULL && regexec(cfg->include, name, 0, NULL, 0) != 0)
		return false;
	return cfg->exclude == NULL || regexec(cfg->exclude, name, 0, NULL, 0) != 0;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct plan_entry *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

struct refusals {
	const struct ex_vm *vm;
	unsigned n;
};

static void __attribute__((format(printf, 2, 3)))
refuse(struct refusals *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (r->n++ >= PLAN_LOG_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ex_log("%s: %s", r->vm->file, msg);
}

/*
 * A family's entries in one VM must be one stat: the same name on every
 * target, one entry per target and, where vCPUs are summed, one shape.
 * Two stats that map onto one family name ("a-b" and "a_b") would give
 * the same series twice; the later is left out.
 */
static size_t
plan_dedupe(struct ex_vm *vm, const struct ex_config *cfg, struct refusals *r)
{
	size_t out = 0;

	for (size_t i = 0; i < vm->nplan; i++) {
		struct plan_entry *e = &vm->plan[i];
		const struct plan_entry *first = NULL;

		for (size_t k = out; k-- > 0 && vm->plan[k].family == e->family;)
			first = &vm->plan[k];
		if (first != NULL) {
			bool same_target = vm->plan[out - 1].target == e->target;

			if (strcmp(first->st->name, e->st->name) != 0 || same_target) {
				refuse(r, "stat '%s' not exported: its metric name is that of '%s'",
				       e->st->name, first->st->name);
				continue;
			}
			if (!cfg->per_vcpu && !same_shape(first->st, e->st)) {
				refuse(r, "stat '%s' of target %u not exported: its type, unit or "
				       "buckets differ from target %u's, so they cannot be summed",
				       e->st->name, e->target, first->target);
				continue;
			}
		}
		vm->plan[out++] = *e;
	}
	return out;
}

/* ---- the series: prefixes made once ------------------------------------- */

/* What a scrape needs of one series, and the most bytes its lines can take. */
static void
series_init(const struct family *f, const struct plan_entry *e, const char *labels,
	    struct series *se)
{
	uint32_t lines = 1, longest_close = 2;	/* "} " */

	se->labels = labels;
	se->labels_len = (uint32_t)strlen(labels);
	se->histogram = f->desc.kind == MM_HISTOGRAM;
	se->boolean = f->desc.boolean;
	se->peak = e->st->type == KVMSTATS_TYPE_PEAK;
	se->size = e->st->size;
	se->base = e->st->base;
	se->exponent = e->st->exponent;
	se->le = e->le;
	se->has_sum = true;
	for (uint32_t i = 0; i < se->count; i++)
		if (!e[i].has_sum)
			se->has_sum = false;
	if (se->histogram) {
		lines = se->size + 2;
		if (e->le->longest > longest_close)
			longest_close = e->le->longest;
	}
	/* At most 1026 lines of at most a few kB (labels <= EX_LABEL_MAX, escaped). */
	se->bound = (size_t)lines * (MM_NAME_MAX + 8 + (size_t)se->labels_len + longest_close +
				     MM_NUM_MAX + 1) + PIECE_SLACK;
}

static int
series_build(struct vmset *vs, struct ex_vm *vm)
{
	vm->series = calloc(vm->nplan ? vm->nplan : 1, sizeof(*vm->series));
	vm->series_end = calloc(vm->nplan ? vm->nplan : 1, sizeof(*vm->series_end));
	vm->text = calloc(1, sizeof(*vm->text));
	if (vm->series == NULL || vm->series_end == NULL || vm->text == NULL)
		return -ENOMEM;
	outbuf_init(vm->text);
	for (size_t i = 0; i < vm->nplan;) {
		const struct plan_entry *e = &vm->plan[i];
		const struct family *f = families_get(vs->fs, e->family);
		bool vcpu = kvmstats_target(vm->seg, e->target)->kind == KVMSTATS_TARGET_VCPU;
		size_t end = i + 1;

		while (end < vm->nplan && vm->plan[end].family == e->family)
			end++;
		if (vcpu && !vs->cfg.per_vcpu) {
			struct series *se = &vm->series[vm->nseries++];

			se->family = e->family;
			se->first = (uint32_t)i;
			se->count = (uint32_t)(end - i);
			se->sum_targets = true;
			series_init(f, e, vm->vm_label, se);
		} else {
			for (size_t k = i; k < end; k++) {
				struct series *se = &vm->series[vm->nseries++];

				se->family = e->family;
				se->first = (uint32_t)k;
				se->count = 1;
				series_init(f, &vm->plan[k], vm->target_label[vm->plan[k].target], se);
			}
		}
		i = end;
	}
	return 0;
}

static int
plan_build(struct vmset *vs, struct ex_vm *vm)
{
	const struct ex_config *cfg = &vs->cfg;
	unsigned nt = kvmstats_nr_targets(vm->seg);
	struct refusals r = { .vm = vm };
	size_t cap = 0;

	vm->target_label = calloc(nt ? nt : 1, sizeof(*vm->target_label));
	vm->nr_labels = vm->target_label ? nt : 0;
	vm->cut_words = kvmstats_cut_words(vm->seg);
	vm->cut = malloc((vm->cut_words ? vm->cut_words : 1) * sizeof(*vm->cut));
	vm->samples = calloc(nt ? nt : 1, sizeof(*vm->samples));
	if (vm->target_label == NULL || vm->cut == NULL || vm->samples == NULL)
		return -ENOMEM;
	for (unsigned t = 0; t < nt; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(vm->seg, t);
		char idx[16];
		const char *names[] = { "vm", "vcpu", "qom_path" };
		const char *values[] = { vm->vm_name, idx, ti->label };
		bool per_target = ti->kind == KVMSTATS_TARGET_VCPU && cfg->per_vcpu;

		if (ti->kind == KVMSTATS_TARGET_VCPU)
			vm->nr_vcpus++;
		snprintf(idx, sizeof(idx), "%" PRIu32, ti->vcpu_index);
		vm->target_label[t] = make_labels(per_target ? 3 : 1, names, values);
		if (vm->target_label[t] == NULL)
			return -ENOMEM;
		cap += ti->nr_stats;
	}
	vm->plan = calloc(cap ? cap : 1, sizeof(*vm->plan));
	if (vm->plan == NULL)
		return -ENOMEM;
	for (unsigned t = 0; t < nt; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(vm->seg, t);

		if (ti->kind == KVMSTATS_TARGET_VCPU && cfg->per_vcpu &&
		    strlen(ti->label) > EX_LABEL_MAX) {
			refuse(&r, "vCPU %u not exported: its label is over %u bytes", ti->vcpu_index,
			       EX_LABEL_MAX);
			continue;
		}
		for (unsigned j = 0; j < ti->nr_stats; j++) {
			const struct kvmstats_stat_info *st = kvmstats_target_stat(vm->seg, t, j);
			struct plan_entry *e = &vm->plan[vm->nplan];
			struct mm_family desc;
			const char *why, *sum;
			char help[512];
			int id;

			if (st == NULL || !selected(cfg, st->name))
				continue;
			why = mm_family_of(st->provider_name, ti->kind, st, &desc);
			if (why != NULL) {
				refuse(&r, "stat '%s' not exported: %s", st->name, why);
				continue;
			}
			make_help(help, sizeof(help), cfg, ti->kind, st);
			id = families_add(vs->fs, &desc, help);
			if (id < 0) {
				refuse(&r, "stat '%s' not exported: %s", st->name,
				       id == -EEXIST ? "its metric name is taken by another metric"
				       : id == -ENOSPC ? "too many metric families in all"
				       : "out of memory");
				continue;
			}
			e->family = (unsigned)id;
			e->target = t;
			e->order = (unsigned)vm->nplan;
			e->st = st;
			e->has_sum = false;
			e->value_at = ti->cut_offset + st->value_index;
			if (desc.kind == MM_HISTOGRAM) {
				struct kvmstats_stat_handle h;

				e->le = le_get(vm, st);
				if (e->le == NULL)
					return -ENOMEM;
				sum = mm_hist_sum_stat(st->provider_name, st->name);
				if (sum != NULL &&
				    kvmstats_stat_lookup(vm->seg, t, st->provider_name, sum, &h) == 0 &&
				    h.info->type == KVMSTATS_TYPE_CUMULATIVE && h.info->size == 1 &&
				    h.info->unit == st->unit && h.info->base == st->base &&
				    h.info->exponent == st->exponent) {
					e->has_sum = true;
					e->sum_at = ti->cut_offset + h.info->value_index;
				}
			}
			vm->nplan++;
		}
	}
	qsort(vm->plan, vm->nplan, sizeof(*vm->plan), cmp_entry);
	vm->nplan = plan_dedupe(vm, cfg, &r);
	if (r.n > PLAN_LOG_MAX)
		ex_log("%s: %u more stats not exported", vm->file, r.n - PLAN_LOG_MAX);
	return series_build(vs, vm);
}

/* ---- attaching, following, reading ------------------------------------- */

static void
vm_detach(struct ex_vm *vm)
{
	plan_clear(vm);
	kvmstats_detach(&vm->seg);
}

static void
vm_free(struct ex_vm *vm)
{
	if (vm == NULL)
		return;
	if (vm->seg != NULL)
		vm_detach(vm);
	free(vm->vm_label);
	free(vm->file);
	free(vm);
}

static struct ex_vm *
vm_new(const char *file)
{
	struct ex_vm *vm = calloc(1, sizeof(*vm));
	const char *names[] = { "vm" };
	const char *values[1];

	if (vm == NULL)
		return NULL;
	vm->file = strdup(file);
	if (vm->file == NULL) {
		free(vm);
		return NULL;
	}
	vm->vm_name = vm->file + strlen(KVMSTATS_SEGMENT_PREFIX);
	values[0] = vm->vm_name;
	vm->vm_label = make_labels(1, names, values);
	if (vm->vm_label == NULL) {
		vm_free(vm);
		return NULL;
	}
	return vm;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* stat() of @vm's file, without following a link: the reader refuses links anyway. */
static int
vm_stat(const struct vmset *vs, const struct ex_vm *vm, struct stat *st)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", vs->cfg.dir, vm->file) >= sizeof(path))
		return -ENAMETOOLONG;
	return lstat(path, st) == 0 ? 0 : -errno;
}

static bool
refused_for_content(int code)
{
	return code == -EBADMSG || code == -EPROTO || code == -EPERM || code == -EACCES ||
	       code == -ELOOP || code == -EINVAL;
}

static void
vm_attach(struct vmset *vs, struct ex_vm *vm)
{
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err;
	struct stat st;
	int rc;

	/*
	 * A segment refused for what it is (its bytes, owner or mode) stays
	 * refused until its file changes; anything else (out of fds or memory)
	 * is tried again at the next scrape.
	 */
	if (refused_for_content(vm->fail_code) && vm_stat(vs, vm, &st) == 0 &&
	    same_file(&st, &vm->fail_st))
		return;
	kvmstats_attach_opts_init(&opts);
	opts.dir = vs->cfg.dir;
	opts.owner = vs->cfg.owner;
	rc = kvmstats_attach(vm->file, &opts, &vm->seg, &err);
	if (rc == 0) {
		rc = plan_build(vs, vm);
		if (rc == 0) {
			if (vm->fail_code != 0 && vm->fail_code != -EAGAIN)
				ex_log("%s: attached", vm->file);
			vm->fail_code = 0;
			vm->not_ready_logged = false;
			return;
		}
		vm_detach(vm);
		snprintf(err.msg, sizeof(err.msg), "out of memory");
	}
	/* Gone since the listing: nothing to say. */
	if (rc == -ENOENT) {
		vm->fail_code = rc;
		return;
	}
	/*
	 * Not ready: a publisher building it has a moment more; a file that
	 * stays so was left by a publisher that died building it, or is no
	 * segment at all (anybody may create files in /dev/shm).
	 */
	if (rc == -EAGAIN) {
		uint64_t now = kvmstats_now_ns();

		if (vm->fail_code != -EAGAIN)
			vm->not_ready_since_ns = now;
		vm->fail_code = rc;
		if (!vm->not_ready_logged && now - vm->not_ready_since_ns >= EX_NOT_READY_NS) {
			ex_log("%s skipped: %s, for %u s now: it is a dead publisher's, or no "
			       "segment", vm->file, err.msg, (unsigned)(EX_NOT_READY_NS / 1000000000u));
			vm->not_ready_logged = true;
			vs->segment_errors++;
		}
		return;
	}
	vm->not_ready_logged = false;
	if (vm_stat(vs, vm, &vm->fail_st) < 0)
		memset(&vm->fail_st, 0, sizeof(vm->fail_st));
	if (rc != vm->fail_code || strcmp(err.msg, vm->fail_msg) != 0) {
		ex_log("%s skipped: %s", vm->file, err.msg);
		snprintf(vm->fail_msg, sizeof(vm->fail_msg), "%s", err.msg);
	}
	vm->fail_code = rc;
	vs->segment_errors++;
}

/* Judge the VM now; follow it to a newer segment under its name. */
static void
vm_judge(struct vmset *vs, struct ex_vm *vm)
{
	struct kvmstats_error err;
	int rc;

	if (kvmstats_liveness(vm->seg, &vm->lv) < 0)
		vm->lv.health = KVMSTATS_HEALTH_BROKEN;
	if (vm->lv.health == KVMSTATS_HEALTH_LIVE || vm->lv.health == KVMSTATS_HEALTH_STALE)
		return;
	/* Superseded, restarted after a death or an end: the name's new file. */
	rc = kvmstats_follow(&vm->seg, &err);
	if (rc == 1) {
		/* The plan pointed into the old handle, which follow freed. */
		plan_clear(vm);
		if (plan_build(vs, vm) < 0) {
			vm_detach(vm);
			return;
		}
		if (kvmstats_liveness(vm->seg, &vm->lv) < 0)
			vm->lv.health = KVMSTATS_HEALTH_BROKEN;
	} else if (rc < 0 && rc != -EAGAIN) {
		if (strcmp(vm->follow_msg, err.msg) != 0)
			ex_log("%s: cannot follow to its new segment: %s", vm->file, err.msg);
		snprintf(vm->follow_msg, sizeof(vm->follow_msg), "%s", err.msg);
		vs->segment_errors++;
	}
	if (rc >= 0)
		vm->follow_msg[0] = '\0';
	if (vm->lv.health == KVMSTATS_HEALTH_BROKEN) {
		ex_log("%s: damaged or truncated under the exporter; detached", vm->file);
		vs->segment_errors++;
		vm_detach(vm);
	}
}

void
vmset_read(struct vmset *vs, struct ex_vm *vm)
{
	int rc = -EAGAIN;

	vm->have_cut = false;
	if (vm->seg == NULL || vm->lv.health != KVMSTATS_HEALTH_LIVE)
		return;
	for (int i = 0; i < CUT_TRIES && rc == -EAGAIN; i++)
		rc = kvmstats_read_cut(vm->seg, vm->cut, vm->cut_words, vm->samples);
	if (rc == 0) {
		if (vm->read_failing)
			ex_log("%s: consistent reads again", vm->file);
		vm->read_failing = false;
		vm->have_cut = true;
		return;
	}
	if (rc != -ENODATA) {
		/* Said once, not at every scrape; counted every time. */
		if (!vm->read_failing)
			ex_log("%s: no consistent read (%s): its stats are left out until "
			       "there is one", vm->file, strerror(-rc));
		vm->read_failing = true;
		vs->segment_errors++;
	}
}

/* ---- the set ----------------------------------------------------------- */

int
vmset_init(struct vmset *vs, const struct ex_config *cfg, struct families *fs)
{
	memset(vs, 0, sizeof(*vs));
	vs->cfg = *cfg;
	vs->fs = fs;
	return 0;
}

void
vmset_clear(struct vmset *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		vm_free(vs->vms[i]);
	free(vs->vms);
	vs->vms = NULL;
	vs->n = 0;
}

struct listing {
	char **v;
	size_t n, cap;
	bool failed;
};

static int
add_name(const char *segment_file, void *arg)
{
	struct listing *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL) {
			l->failed = true;
			return 1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = strdup(segment_file);
	if (l->v[l->n] == NULL) {
		l->failed = true;
		return 1;
	}
	l->n++;
	return 0;
}

/* Make vs->vms hold exactly the listed names (both are in name order). */
static void
merge_listing(struct vmset *vs, const struct listing *l)
{
	struct ex_vm **vms = calloc(l->n ? l->n : 1, sizeof(*vms));
	size_t i = 0, j = 0, out = 0;

	if (vms == NULL)
		return;		/* keep the old set this time */
	while (i < vs->n || j < l->n) {
		int c = i == vs->n ? 1 : j == l->n ? -1 : strcmp(vs->vms[i]->file, l->v[j]);

		if (c < 0) {
			vm_free(vs->vms[i++]);		/* gone from the directory */
		} else if (c == 0) {
			vms[out++] = vs->vms[i++];
			j++;
		} else {
			struct ex_vm *vm = vm_new(l->v[j++]);

			if (vm != NULL)
				vms[out++] = vm;
		}
	}
	free(vs->vms);
	vs->vms = vms;
	vs->n = out;
}

void
vmset_refresh(struct vmset *vs)
{
	struct listing l = { 0 };
	struct kvmstats_error err;

	vs->scrapes++;
	if (kvmstats_enumerate(vs->cfg.dir, add_name, &l, &err) < 0 && !l.failed) {
		if (strcmp(vs->list_error, err.msg) != 0)
			ex_log("%s", err.msg);
		snprintf(vs->list_error, sizeof(vs->list_error), "%s", err.msg);
		vs->segment_errors++;
		/* An unlistable directory has no VMs we could vouch for. */
		l.n = 0;
	} else {
		vs->list_error[0] = '\0';
	}
	if (!l.failed)
		merge_listing(vs, &l);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	for (size_t i = 0; i < vs->n; i++) {
		struct ex_vm *vm = vs->vms[i];

		vm->have_cut = false;
		if (vm->seg == NULL)
			vm_attach(vs, vm);
		if (vm->seg != NULL)
			vm_judge(vs, vm);
		if (vm->seg != NULL)
			kvmstats_status(vm->seg, &vm->status);
	}
}
