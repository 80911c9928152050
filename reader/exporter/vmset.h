/* SPDX-License-Identifier: MIT */
/*
 * vmset.h - every segment of the directory, kept attached between scrapes.
 *
 * Attaching validates a whole segment; a scrape must not pay that for
 * every VM every time.  So the set keeps each segment attached, with its
 * plan (which stat becomes which family, with which labels and bucket
 * edges), and a scrape only lists the directory, judges each VM's
 * liveness (one fcntl), follows a VM that was restarted or got a new
 * generation, and reads one consistent cut per live VM.
 *
 * Callers serialise: one scrape at a time runs vmset_refresh() and the
 * exposition (exposition.h), under the exporter's scrape lock.
 */
#ifndef KVMSTATS_EXPORTER_VMSET_H
#define KVMSTATS_EXPORTER_VMSET_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "families.h"
#include "outbuf.h"
#include "kvmstats/reader.h"

/*
 * A segment not ready this long is no longer taken for one being built: a
 * publisher writes its whole segment in microseconds to milliseconds.
 */
#define EX_NOT_READY_NS		10000000000ull

/*
 * Labels longer than this (a segment's target labels may be any length)
 * are not put on series: the target's per-vCPU series are left out.
 */
#define EX_LABEL_MAX		1024
/* A VM whose lines would take more is left out of the scrape, said once. */
#define EX_VM_TEXT_MAX		(64u << 20)

/* Whether @vm counts as skipped (refused, or never ready). */
#define EX_VM_SKIPPED(vm) \
	((vm)->seg == NULL && (((vm)->fail_code != 0 && (vm)->fail_code != -EAGAIN && \
				(vm)->fail_code != -ENOENT) || (vm)->not_ready_logged))

struct ex_config {
	const char *dir;		/* the segment directory, resolved */
	uid_t owner;			/* KVMSTATS_OWNER_DEFAULT: root or ours */
	bool per_vcpu;			/* one series per vCPU, not per-VM sums */
	const regex_t *include;		/* stat names to export; NULL: all */
	const regex_t *exclude;		/* stat names not to export; NULL: none */
};

/*
 * The ends of the bucket lines of one histogram shape, up to the value:
 * ',le="1.023e-06"} ' ... ',le="+Inf"} ', shared by the VM's stats of
 * that shape.
 */
struct le_set {
	enum kvmstats_type type;
	unsigned base;
	int exponent;
	uint32_t size, bucket_size;
	char *text;			/* the size closers, back to back */
	uint32_t *at;			/* where closer i starts; at[size]: the end */
	uint32_t longest;
};

/* One exported stat of one target. */
struct plan_entry {
	unsigned family;
	unsigned target;
	const struct kvmstats_stat_info *st;
	bool has_sum;			/* histograms: the kernel adds the same values to a
					   counter (its _sum, at sum_at) */
	const struct le_set *le;	/* histograms */
	/* Where in the VM's cut: its first value; its _sum's (if has_sum). */
	size_t value_at, sum_at;
	unsigned order;			/* in the schema: of two clashing stats, the first wins */
};

/*
 * One series of the exposition (or one histogram's lines), as a scrape
 * writes it: each line is pieces made once and copied (the family's
 * "name{", the labels, a bucket's closer) and a number.  The pieces are
 * shared, and so hot in the cache: a line never reads memory of its own.
 */
struct series {
	unsigned family;
	uint32_t first, count;		/* its plan entries */
	bool sum_targets;		/* one series over all of them (per-VM sums) */
	const char *labels;		/* its labels, escaped: vm="x"[,vcpu=...] */
	uint32_t labels_len;
	const struct le_set *le;	/* histograms */
	size_t bound;			/* bytes its lines take at most */
	/* What writing it needs of the stat, here so that a scrape reads nothing else. */
	bool histogram, boolean, peak, has_sum;
	uint32_t size;
	unsigned base;
	int exponent;
};

struct ex_vm {
	char *file;			/* "kvmstats.x" */
	const char *vm_name;		/* "x", inside file */
	struct kvmstats_segment *seg;	/* NULL: not attached (see fail_*) */
	struct plan_entry *plan;	/* sorted by (family, target) */
	size_t nplan;
	struct le_set **les;		/* each its own allocation: entries point at them */
	size_t nles;
	struct series *series;		/* in family order */
	size_t nseries;
	/* A scrape's formatted lines of this VM, and where each series ends in them. */
	struct outbuf *text;
	size_t *series_end;
	char *vm_label;			/* vm="x", escaped */
	char **target_label;		/* per target: its labels, escaped */
	unsigned nr_labels;		/* entries of target_label */
	unsigned nr_vcpus;		/* vCPU targets */
	uint64_t *cut;
	size_t cut_words;
	struct kvmstats_sample *samples;
	/* This scrape's view. */
	struct kvmstats_liveness lv;
	struct kvmstats_status status;
	bool have_cut;
	bool read_failing;		/* the last read gave up: said once */
	bool too_big;			/* its lines were over EX_VM_TEXT_MAX: said once */
	char follow_msg[512];		/* the last failure to follow, said once */
	/* An attach that failed is tried again when the file changes. */
	int fail_code;
	uint64_t not_ready_since_ns;	/* fail_code -EAGAIN since then */
	bool not_ready_logged;		/* ... for EX_NOT_READY_NS: skipped */
	struct stat fail_st;
	char fail_msg[512];
};

struct vmset {
	struct ex_config cfg;
	struct families *fs;
	struct ex_vm **vms;		/* sorted by file name */
	size_t n;
	uint64_t segment_errors;	/* segments skipped, reads given up, directory
					   listings failed: since start */
	uint64_t scrapes;
	char list_error[512];		/* the directory could not be listed, "" if it could */
};

int vmset_init(struct vmset *vs, const struct ex_config *cfg, struct families *fs);
void vmset_clear(struct vmset *vs);

/*
 * vmset_refresh() - bring the set up to date with the directory: attach
 * new segments, follow renewed ones, judge every VM's liveness.
 */
void vmset_refresh(struct vmset *vs);

/*
 * vmset_read() - one cut of @vm, if it is live.  Called VM by VM just
 * before the VM's lines are written, so that its values are still in the
 * cache when they are formatted.
 */
void vmset_read(struct vmset *vs, struct ex_vm *vm);

/* Whether @vm's stats are exported this scrape (live, and read). */
static inline bool
ex_vm_exported(const struct ex_vm *vm)
{
	return vm->seg != NULL && vm->have_cut;
}

#endif /* KVMSTATS_EXPORTER_VMSET_H */
