/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ks_err.h"
#include "ks_shmdir.h"
#include "ks_text.h"
#include "statsfd_source.h"
#include "vm_builder.h"

static void
describe_fd(char *buf, size_t len, const char *vm_name, const struct ks_fd_target *ft)
{
	if (ft->kind == KS_TARGET_VM)
		snprintf(buf, len, "VM %s: VM stats fd %d", vm_name ? vm_name : "?", ft->fd);
	else
		snprintf(buf, len, "VM %s: vCPU %u stats fd %d", vm_name ? vm_name : "?",
			 ft->vcpu_index, ft->fd);
}

/* Target @i's blocks: "kvm" first, then "sched" if it has one. */
static struct ks_block_def *
blocks_of(const struct ks_vm_build *b, uint32_t i)
{
	return &b->blocks[(size_t)i * KS_BUILD_MAX_BLOCKS];
}

/* Report skipped descriptors of one layout. */
static void
report_skips(const struct ks_statsfd_schema *s, const char *what, ks_log_fn warn)
{
	for (uint32_t i = 0; i < s->nr_skipped; i++)
		ks_logf(warn, "%s: skipping stat \"%s\": unknown type, unit or base (flags 0x%x), "
			"probably from a kernel newer than this kvmstats",
			what, s->skipped[i].name, s->skipped[i].flags);
}

/* Every way in names VMs by the one rule (ks_shmdir.h). */
static int
check_vm_name(const char *name, struct kvmstats_error *err)
{
	char why[128];

	if (ks_vm_name_fault(name, why, sizeof(why)) != NULL)
		return ks_err(err, -EINVAL, "VM name \"%s\" %s: it cannot name a segment",
			      name, why);
	return 0;
}

static char *
default_vm_name(const char *id)
{
	const char *slash = strchr(id, '/');

	return slash ? strndup(id, (size_t)(slash - id)) : strdup(id);
}

/*
 * KVM names a VM's stats "kvm-<pid>" and a vCPU's "kvm-<pid>/vcpu-<id>"
 * (virt/kvm/kvm_main.c), the id being the one given to KVM_CREATE_VCPU:
 * an fd offered as the wrong kind, or as another vCPU, is refused.
 */
int
ks_fd_kind_check(const char *what, const struct ks_fd_target *ft, const char *id,
		 struct kvmstats_error *err)
{
	const char *slash = strchr(id, '/'), *num;
	unsigned long long n;
	char *end;

	if (ft->kind == KS_TARGET_VM) {
		if (slash != NULL)
			return ks_err(err, -EINVAL, "%s: offered as a VM's stats fd, but its id "
				      "\"%s\" is a vCPU's", what, id);
		return 0;
	}
	if (slash == NULL || strncmp(slash, "/vcpu-", 6) != 0)
		return ks_err(err, -EINVAL, "%s: offered as a vCPU's stats fd, but its id \"%s\" "
			      "is %s", what, id, slash == NULL ? "a VM's" : "not a vCPU's");
	num = slash + 6;
	errno = 0;
	n = strtoull(num, &end, 10);
	if (num[0] < '0' || num[0] > '9' || *end != '\0' || errno != 0 || n != ft->vcpu_index)
		return ks_err(err, -EINVAL, "%s: offered as vCPU %u, but its id \"%s\" names "
			      "another", what, ft->vcpu_index, id);
	return 0;
}

/* A label every reader can show: printable text of at most KS_LABEL_MAX bytes. */
static int
check_label(const char *what, const char *label, struct kvmstats_error *err)
{
	size_t len = strlen(label), at;
	const char *fault;

	if (len > KS_LABEL_MAX)
		return ks_err(err, -EINVAL, "%s: label of %zu bytes, over the limit of %d",
			      what, len, KS_LABEL_MAX);
	fault = ks_text_fault(label, len, &at);
	if (fault != NULL)
		return ks_err(err, -EINVAL, "%s: label has %s at byte %zu", what, fault, at);
	return 0;
}

/* Parse fd @i into target @i of @out.  On error the fd is not taken. */
static int
build_target(struct ks_vm_build *out, const char *vm_name,
	     const struct ks_fd_target *ft, uint32_t i, bool *reported,
	     ks_log_fn warn, struct kvmstats_error *err)
{
	struct ks_statsfd_schema s = { 0 };	/* cleared on every error path, parsed or not */
	char what[160];
	int ret;

	describe_fd(what, sizeof(what), vm_name ? vm_name : out->vm_name, ft);
	if (ft->label != NULL && (ret = check_label(what, ft->label, err)) < 0)
		return ret;
	/* What is no stats fd (a pipe, a file on disk) is said as such, not as a parse error. */
	ret = ks_statsfd_check_fd(ft->fd, what, err);
	if (ret == 0)
		ret = ks_statsfd_parse(ft->fd, what, &s, err);
	if (ret == 0)
		ret = ks_fd_kind_check(what, ft, s.id, err);
	if (ret == 0 && out->vm_name == NULL) {
		out->vm_name = vm_name ? strdup(vm_name) : default_vm_name(s.id);
		if (out->vm_name != NULL)
			ret = check_vm_name(out->vm_name, err);
	}
	if (ret < 0) {
		ks_statsfd_schema_clear(&s);
		return ret;
	}
	out->labels[i] = strdup(ft->label ? ft->label : s.id);
	out->ids[i] = strdup(s.id);
	if (!out->vm_name || !out->labels[i] || !out->ids[i]) {
		ks_statsfd_schema_clear(&s);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	/* KVM reports the same skips for every vCPU: say it once per layout. */
	if (!*reported) {
		report_skips(&s, what, warn);
		*reported = true;
	}
	ret = ks_statsfd_block(ft->fd, ft->own_fd, &s, blocks_of(out, i), err);
	ks_statsfd_schema_clear(&s);
	if (ret < 0)
		return ret;
	out->targets[i] = (struct ks_target_def) {
		.kind = ft->kind,
		.vcpu_index = ft->kind == KS_TARGET_VM ? KS_VCPU_INDEX_NONE : ft->vcpu_index,
		.label = out->labels[i],
		.id = out->ids[i],
		.nr_blocks = 1,
		.blocks = blocks_of(out, i),
	};
	out->nr = i + 1;
	return 0;
}

int
ks_vm_build(const char *vm_name, const struct ks_fd_target *fds, uint32_t nr_fds,
	    ks_log_fn warn, struct ks_vm_build *out, struct kvmstats_error *err)
{
	bool vm_reported = false, vcpu_reported = false;
	uint32_t i = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	if (vm_name != NULL)
		vm_name = ks_vm_name_of(vm_name);	/* "kvmstats.x" names VM "x" */
	if (nr_fds == 0) {
		return ks_err(err, -EINVAL, "VM %s: no stats fds to publish",
			      vm_name ? vm_name : "?");
	}
	out->targets = calloc(nr_fds, sizeof(*out->targets));
	out->blocks = calloc((size_t)nr_fds * KS_BUILD_MAX_BLOCKS, sizeof(*out->blocks));
	out->labels = calloc(nr_fds, sizeof(*out->labels));
	out->ids = calloc(nr_fds, sizeof(*out->ids));
	out->cap = nr_fds;
	if (!out->targets || !out->blocks || !out->labels || !out->ids) {
		ret = ks_err(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < nr_fds; i++) {
		bool *reported = fds[i].kind == KS_TARGET_VM ? &vm_reported : &vcpu_reported;

		ret = build_target(out, vm_name, &fds[i], i, reported, warn, err);
		if (ret < 0)
			goto fail;
	}
	out->def = (struct ks_vm_def) {
		.vm_name = out->vm_name,
		.nr_targets = nr_fds,
		.targets = out->targets,
	};
	for (i = 0; i < nr_fds && fds[i].kind != KS_TARGET_VM; i++)
		;
	if (i == nr_fds && ks_vm_build_set_note(out, "no VM stats: no VM stats fd was given") < 0) {
		ret = ks_err(err, -ENOMEM, "out of memory");
		goto fail;
	}
	return 0;

fail:
	/* Built targets own their fds through their blocks; close the rest. */
	for (uint32_t j = out->nr; j < nr_fds; j++)
		if (fds[j].own_fd && fds[j].fd >= 0)
			close(fds[j].fd);
	ks_vm_build_clear(out, false);
	return ret;
}

/* Grow every per-target array by one entry; the new entry is the last. */
static int
grow_one(struct ks_vm_build *b)
{
	uint32_t n = b->cap + 1;
	struct ks_target_def *t = realloc(b->targets, n * sizeof(*t));
	struct ks_block_def *bl;
	char **l, **id;

	if (t == NULL)
		return -ENOMEM;
	b->targets = t;
	if ((bl = realloc(b->blocks, (size_t)n * KS_BUILD_MAX_BLOCKS * sizeof(*bl))) == NULL)
		return -ENOMEM;
	b->blocks = bl;
	if ((l = realloc(b->labels, n * sizeof(*l))) == NULL)
		return -ENOMEM;
	b->labels = l;
	if ((id = realloc(b->ids, n * sizeof(*id))) == NULL)
		return -ENOMEM;
	b->ids = id;
	b->labels[b->cap] = b->ids[b->cap] = NULL;
	b->cap = n;
	return 0;
}

int
ks_vm_build_add_vm(struct ks_vm_build *b, const char *id, const struct ks_block_def *block,
		   struct kvmstats_error *err)
{
	char *label = strdup(id), *idc = strdup(id);
	uint32_t n = b->nr;

	for (uint32_t i = 0; i < n; i++)
		if (b->targets[i].kind == KS_TARGET_VM) {
			free(label);
			free(idc);
			return ks_err(err, -EEXIST, "VM %s has a VM target already", b->vm_name);
		}
	if (label == NULL || idc == NULL || b->nr != b->cap || grow_one(b) < 0) {
		free(label);
		free(idc);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	/* The VM first, then the vCPUs, as every VM is listed (docs/ABI.md 5.2). */
	memmove(&b->targets[1], &b->targets[0], n * sizeof(*b->targets));
	memmove(blocks_of(b, 1), blocks_of(b, 0), (size_t)n * KS_BUILD_MAX_BLOCKS * sizeof(*b->blocks));
	memmove(&b->labels[1], &b->labels[0], n * sizeof(*b->labels));
	memmove(&b->ids[1], &b->ids[0], n * sizeof(*b->ids));
	*blocks_of(b, 0) = *block;
	b->labels[0] = label;
	b->ids[0] = idc;
	b->targets[0] = (struct ks_target_def) {
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE,
		.label = label, .id = idc, .nr_blocks = 1,
	};
	b->nr = n + 1;
	for (uint32_t i = 0; i < b->nr; i++)
		b->targets[i].blocks = blocks_of(b, i);
	b->def.targets = b->targets;
	b->def.nr_targets = b->nr;
	return 0;
}

int
ks_vm_build_set_note(struct ks_vm_build *b, const char *fmt, ...)
{
	va_list ap;
	char *raw, *note;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	/*
	 * It quotes paths and messages from outside (--debugfs, errors cut
	 * mid-character): escaped and cut to the engine's limit here, so that a
	 * note can never be the reason a VM is not published.
	 */
	note = malloc(KS_NOTE_MAX + 1);
	if (note == NULL) {
		free(raw);
		return -ENOMEM;
	}
	ks_text_escape(note, KS_NOTE_MAX + 1, raw);
	free(raw);
	free(b->note);
	b->note = note;
	b->def.note = note;
	return 0;
}

int
ks_vm_build_set_label(struct ks_vm_build *b, uint32_t i, const char *label,
		      struct kvmstats_error *err)
{
	char what[96], *copy;
	int ret;

	if (i >= b->nr)
		return ks_err(err, -EINVAL, "no target %u to label", i);
	snprintf(what, sizeof(what), "VM %s target %u", b->vm_name, i);
	ret = check_label(what, label, err);
	if (ret < 0)
		return ret;
	copy = strdup(label);
	if (copy == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	free(b->labels[i]);
	b->labels[i] = copy;
	b->targets[i].label = copy;
	return 0;
}

void
ks_vm_build_clear(struct ks_vm_build *b, bool handed_over)
{
	for (uint32_t i = 0; i < b->nr; i++)
		for (uint32_t k = 0; !handed_over && k < b->targets[i].nr_blocks; k++)
			ks_block_release(&blocks_of(b, i)[k]);
	/* Up to cap: a target that failed half-way has its strings too. */
	if (b->labels)
		for (uint32_t i = 0; i < b->cap; i++)
			free(b->labels[i]);
	if (b->ids)
		for (uint32_t i = 0; i < b->cap; i++)
			free(b->ids[i]);
	free(b->labels);
	free(b->ids);
	free(b->targets);
	free(b->blocks);
	free(b->vm_name);
	free(b->note);
	memset(b, 0, sizeof(*b));
}

pid_t
ks_sched_creator_of(const char *id)
{
	const char *p = id;
	unsigned long long tid = 0;

	/* KVM writes "kvm-%d/vcpu-%d" (virt/kvm/kvm_main.c): nothing else is taken. */
	if (strncmp(p, "kvm-", 4) != 0)
		return 0;
	for (p += 4; *p >= '0' && *p <= '9'; p++) {
		tid = tid * 10 + (unsigned long long)(*p - '0');
		if (tid > INT32_MAX)
			return 0;
	}
	if (p == id + 4 || strncmp(p, "/vcpu-", 6) != 0 || tid == 0)
		return 0;
	return (pid_t)tid;
}

/* The kernel's first pid namespace's inode number (PROC_PID_INIT_INO, include/linux/proc_ns.h). */
#define KS_PROC_PID_INIT_INO	0xEFFFFFFCu

bool
ks_sched_ids_usable(char *why, size_t len)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) < 0 || st.st_ino == KS_PROC_PID_INIT_INO)
		return true;
	if (why != NULL)
		snprintf(why, len, "this process is in a pid namespace of its own "
			 "(pid:[%llu]), and KVM's ids number threads as the initial one does",
			 (unsigned long long)st.st_ino);
	return false;
}

static const struct ks_sched_thread *
thread_in(const struct ks_sched_thread *list, uint32_t n, uint32_t vcpu_index)
{
	for (uint32_t k = 0; list != NULL && k < n; k++)
		if (list[k].vcpu_index == vcpu_index && list[k].tid > 0)
			return &list[k];
	return NULL;
}

/* The thread of vCPU target @t: a runner @how names, else its creator (ks_vm_sched). */
static struct ks_sched_thread
thread_of(const struct ks_target_def *t, const struct ks_vm_sched *how, bool ids)
{
	const struct ks_sched_thread *k = thread_in(how->runners, how->nr_runners, t->vcpu_index);
	struct ks_sched_thread r = { .vcpu_index = t->vcpu_index, .runs = k != NULL };

	if (k == NULL)
		k = thread_in(how->creators, how->nr_creators, t->vcpu_index);
	if (k != NULL)
		r.tid = k->tid;
	else if (how->creators == NULL && ids)
		r.tid = ks_sched_creator_of(t->id);
	return r;
}

int
ks_vm_build_add_sched(struct ks_vm_build *b, const struct ks_vm_sched *how,
		      struct ks_sched_vm **keep, struct kvmstats_error *err)
{
	struct ks_sched_thread *threads = calloc(b->nr ? b->nr : 1, sizeof(*threads));
	uint32_t *target_of = calloc(b->nr ? b->nr : 1, sizeof(*target_of)), n = 0;
	struct ks_sched_vm *s = NULL;
	bool ids = true, checked = false;
	char why[160] = "";
	int ret;

	if (threads == NULL || target_of == NULL) {
		ret = ks_err(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < b->nr; i++)
		if (b->targets[i].kind == KS_TARGET_VCPU && b->targets[i].nr_blocks == 1) {
			uint32_t idx = b->targets[i].vcpu_index;

			/* Asked once, and only if some vCPU's thread would come from its id. */
			if (!checked && how->creators == NULL &&
			    !thread_in(how->runners, how->nr_runners, idx)) {
				checked = true;
				ids = ks_sched_ids_usable(why, sizeof(why));
			}
			target_of[n] = i;
			threads[n++] = thread_of(&b->targets[i], how, ids);
		}
	if (!ids)
		ks_logf(how->warn, "VM %s: vCPU threads from KVM's ids left out: %s",
			b->vm_name, why);
	if (n == 0) {
		ret = ks_err(err, -ENOENT, "VM %s: no vCPUs for sched stats", b->vm_name);
		goto out;
	}
	ret = ks_sched_vm_create(how->pid, how->hz ? how->hz : KS_SCHED_HZ_DEFAULT, b->vm_name,
				 how->warn, threads, n, how->later, &s, err);
	if (ret < 0)
		goto out;
	for (uint32_t k = 0; k < n; k++) {
		struct ks_target_def *t = &b->targets[target_of[k]];

		if (ks_sched_vcpu_block(s, k, &blocks_of(b, target_of[k])[1]))
			t->nr_blocks = 2;
	}
	for (uint32_t i = 0; i < b->nr; i++)
		if (b->targets[i].kind == KS_TARGET_VM && b->targets[i].nr_blocks == 1) {
			ks_sched_vm_block(s, &blocks_of(b, i)[1]);
			b->targets[i].nr_blocks = 2;
		}
	if (keep != NULL)
		*keep = ks_sched_vm_get(s);
out:
	/* Never a reason not to publish: kvm alone, and why. */
	if (ret < 0)
		ks_logf(how->warn, "VM %s: no sched provider: %s; publishing kvm alone",
			b->vm_name, err->msg);
	ks_sched_vm_put(s);
	free(threads);
	free(target_of);
	return ret;
}
