/* SPDX-License-Identifier: MIT */
/*
 * ks_reader.h - the reader library's private view of an attached segment.
 * NOT A PUBLIC API: only the reader library includes it.
 *
 * Everything here was derived at attach time from a private, validated
 * copy of the schema.  The read paths compute addresses from these fields
 * only; what they load from the mapping (sweeps, stamps, values, state) is
 * data and never used to address anything but a slot index taken modulo
 * the private ring depth.
 */
#ifndef KVMSTATS_READER_KS_READER_H
#define KVMSTATS_READER_KS_READER_H

#include <stdint.h>
#include <sys/types.h>

#include "kvmstats/reader.h"
#include "ks_abi.h"
#include "ks_magic.h"
#include "ks_section_copy.h"
#include "ks_sigbus.h"

/* Every public function that takes a segment checks it first (ks_magic.h). */
#define CHECK_SEGMENT(seg)	KS_CHECK_HANDLE(seg, KS_MAGIC_SEGMENT, "segment")

/* Where a target's samples are, in the mapping. */
struct ks_ring {
	const uint8_t *ring;		/* slot 0 */
	uint32_t stride;		/* bytes between slots */
	uint32_t words;			/* record_words */
	uint32_t stats_first;		/* into seg->stats: known stats only */
	uint32_t stats_count;		/* its known stats */
	size_t cut_offset;		/* its record's first word in a cut */
};

struct kvmstats_segment {
	unsigned magic;			/* KS_MAGIC_SEGMENT while attached */
	int fd;				/* O_RDONLY: for the liveness lock (ks_liveness.h) */
	dev_t dev;			/* the file, to tell whether its name moved on */
	ino_t ino;
	const uint8_t *map;		/* PROT_READ, MAP_SHARED */
	size_t map_size;
	struct ks_bus_guard *guard;	/* SIGBUS: the file truncated under us */
	atomic_bool faulted;
	const struct ks_shm_header *hdr;	/* in the mapping: hot fields only */
	uint32_t ring_depth;		/* private copy: slot index = sweep % this */
	uint32_t ring_mask;		/* ring_depth - 1 if a power of two, else 0 */
	enum ks_copy copy;		/* how read sections copy (ks_section_copy.h) */
	uint32_t nr_targets;
	uint32_t nr_providers;
	uint32_t nr_stats;		/* in seg->stats: the stat table's known entries */
	size_t cut_words;
	void *schema;			/* validated copy of [0, data_off) */
	char *dir;			/* for kvmstats_reattach() */
	char *file;
	uid_t owner_opt;
	struct kvmstats_segment_info info;
	const char *note;		/* in seg->schema, or "" (kvmstats_note()) */
	struct kvmstats_provider_info *providers;
	struct kvmstats_target_info *targets;
	struct kvmstats_stat_info *stats;
	struct ks_ring *rings;
};

/*
 * Where this thread's next read of one target will likely find the
 * newest sweep (read.c says how it is used): the segment of its last such
 * read, the sweep that read took, by how many sweeps it had moved on from
 * the one before, and the range of sweeps ahead of it the next read
 * prefetches.  Per thread, so that threads sharing a handle neither
 * bounce a line between them nor spoil each other's steps.
 */
struct ks_sweep_guess {
	const struct kvmstats_segment *seg;
	uint64_t last;
	uint32_t step;		/* 1..KS_GUESS_AHEAD, or 0: not a step the guess follows */
	uint16_t lo, hi;	/* sweeps last + lo .. last + hi; hi 0: off */
};

/* This thread's guess, for the tests and the bench; not exported. */
struct ks_sweep_guess ks_read_guess(void);

/* Switch it off for this thread's next read (the bench's row without it). */
void ks_read_guess_off(void);

/* Build the private schema (reader/schema.c) from seg->schema. */
int ks_reader_build_schema(struct kvmstats_segment *seg, struct kvmstats_error *err);

/* Free what ks_reader_build_schema() allocated. */
void ks_reader_free_schema(struct kvmstats_segment *seg);

#endif /* KVMSTATS_READER_KS_READER_H */
