/* SPDX-License-Identifier: MIT */
/*
 * segment_writer.h - create, publish and retire one kvmstats segment.
 *
 * Life of a segment: ks_segment_create() makes it under a temporary name
 * with O_EXCL, reserves every byte (so a full /dev/shm fails now with
 * ENOSPC, not with SIGBUS in a reader later) and writes the whole schema;
 * the caller writes a first sample into the slots; ks_segment_publish()
 * opens the ready gate and renames the segment over its public name; at
 * the end ks_segment_set_state() marks it ended or superseded and
 * ks_segment_unlink() removes the name.  The schema never changes and the
 * file never shrinks while mapped.
 */
#ifndef KVMSTATS_PUBLISHER_SEGMENT_WRITER_H
#define KVMSTATS_PUBLISHER_SEGMENT_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstats/types.h"
#include "ks_abi.h"

struct ks_seg_stat_def {
	const char *name;
	uint16_t provider;		/* index into ks_seg_def.providers */
	uint8_t type, unit, base;
	int16_t exponent;
	uint16_t size;
	uint32_t bucket_size;
	uint32_t value_index;		/* in the target's record */
};

struct ks_seg_target_def {
	enum ks_target_kind kind;
	uint32_t vcpu_index;
	const char *label;
	const char *id;
	uint32_t nr_stats;
	const struct ks_seg_stat_def *stats;	/* equal arrays are stored once */
	uint32_t record_words;
};

struct ks_seg_def {
	const char *vm_name;
	uint64_t incarnation;
	uint64_t generation;
	uint64_t poll_period_ns;
	uint32_t ring_depth;		/* >= 2 */
	uint32_t nr_providers;
	const char *const *providers;
	uint32_t nr_targets;
	const struct ks_seg_target_def *targets;
};

struct ks_seg_place {
	const char *dir;		/* directory of the segment files */
	const char *file;		/* public file name, e.g. "kvmstats.kvm-1234" */
	mode_t mode;			/* e.g. 0640 */
	gid_t gid;			/* (gid_t)-1: leave as created */
};

struct ks_segment_writer {
	int dirfd;
	int fd;
	char *file;			/* public name */
	char *tmp_file;			/* name until published, NULL after */
	uint8_t *base;
	size_t size;
	struct ks_shm_header *hdr;
	uint32_t ring_depth;
	uint32_t nr_targets;
	struct ks_writer_target {
		uint8_t *ring;		/* slot 0 */
		uint32_t stride;
		uint32_t words;
	} *targets;
};

int ks_segment_create(const struct ks_seg_def *def, const struct ks_seg_place *place,
		      struct ks_segment_writer **out, struct kvmstats_error *err);

/* The slot that sweep @sweep of target @t lands in. */
static inline struct ks_shm_slot *
ks_segment_slot(const struct ks_segment_writer *w, uint32_t t, uint64_t sweep)
{
	const struct ks_writer_target *wt = &w->targets[t];

	return (struct ks_shm_slot *)(wt->ring +
		(uint64_t)ks_slot_of_sweep(sweep, w->ring_depth) * wt->stride);
}

/* Open the ready gate, state LIVE, rename over the public name (atomically replacing it). */
int ks_segment_publish(struct ks_segment_writer *w, struct kvmstats_error *err);

void ks_segment_set_state(struct ks_segment_writer *w, enum ks_shm_state state);

/*
 * Remove the public name, unless a newer segment was renamed over it
 * (then -ENOENT); the mapping stays valid for readers.
 */
int ks_segment_unlink(struct ks_segment_writer *w);

/*
 * Unmap and close; sets *@wp to NULL.  A published segment keeps its name
 * (ks_segment_unlink() removes it); an unpublished one loses its temporary file.
 */
void ks_segment_destroy(struct ks_segment_writer **wp);

#endif /* KVMSTATS_PUBLISHER_SEGMENT_WRITER_H */
