/* SPDX-License-Identifier: MIT */
/*
 * segment_writer.h - create, publish and retire one kvmstats segment.
 *
 * Life of a segment: ks_segment_create() makes it under a temporary name
 * with O_EXCL, takes its liveness lock (ks_liveness.h), reserves every
 * byte (so a full /dev/shm fails now with ENOSPC, not with SIGBUS in a
 * reader later), guards the mapping against truncation (ks_sigbus.h) and
 * writes the whole schema; the caller writes a first sample into the
 * slots; ks_segment_publish() opens the ready gate and gives the segment
 * its public name, never taking the name from a file that is not ours to
 * replace (segment_names.c); at the end ks_segment_set_state() marks it
 * ended or superseded and ks_segment_unlink() removes the name if it is
 * still ours.  The schema never changes and the file never shrinks while
 * mapped, unless its owner truncates it: then ks_segment_faulted() turns
 * true and ks_segment_clone() makes a replacement.
 */
#ifndef KVMSTATS_PUBLISHER_SEGMENT_WRITER_H
#define KVMSTATS_PUBLISHER_SEGMENT_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstats/types.h"
#include "ks_abi.h"
#include "ks_log.h"
#include "ks_sigbus.h"

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

/*
 * Readers cost the writer least where the frame it writes next has left
 * the readers' caches.  A reader holds the lines of each frame it read
 * until its own caches evict them, and the sweep that comes back to that
 * frame must take every such line back: on an Intel Xeon several times
 * dearer while the line is still in the reader's L1 than once it is only
 * in its L2.  And a reader's hardware prefetchers, streaming through the
 * newest frame, run on past its end into the next frame, the one being
 * written.  So each frame is padded to a page boundary and then by
 * KS_FRAME_GAP more (the prefetchers stop at a page, and some fetch the
 * next page too), and, given ring_min_bytes, the ring is doubled (up to
 * KS_RING_DEPTH_AUTO_MAX) until it spans that.  Measured with
 * bench_interference -n 2000..3000 -t 0 (bench/REPORT.md section 3): on
 * the Xeon one reader cost an 8-vCPU sweep 1.49-1.53x with four unpadded
 * frames of 9.4 KB, 1.27x unpadded at depth 32, 1.35x padded at depth 4,
 * 1.05-1.07x padded at depth 16 and 1.01-1.02x padded at depth 32 (the
 * default's 512 KiB).
 *
 * Why not deeper.  On an AMD EPYC (Zen 4, 1 MiB of L2 per core) the
 * reader's L2 holds a whole 512 KiB-plus ring, and one reader cost a
 * 64-vCPU sweep 1.05-1.48x and a 256-vCPU one 1.00-1.59x (more when the
 * host had put the two CPUs where they share no L3); rings of 2 MiB took
 * that to 0.99-1.01x and 0.96-1.01x.  But they made the fresh reads that
 * are the point of the segment dearer: a record just published, against
 * a plain copy of the same fresh bytes, 1.26-1.81x at 64 vCPUs and
 * 1.44-1.60x at 256 where 512 KiB gives 1.07-1.33x and 1.14-1.19x
 * (bench_reader -v 8,64,256 -n 10000, alternating builds, three runs
 * each), and the sweep with no reader 3% more.  Readers come first, so
 * the default stays at 512 KiB; --ring-depth sets a deeper ring where
 * many readers poll a large VM on such a CPU.
 */
#define KS_FRAME_ALIGN		4096
#define KS_FRAME_GAP		4096
#define KS_RING_DEPTH_AUTO_MAX	64

/* The frame that holds @slot_bytes of slots, padded as above. */
static inline uint64_t
ks_seg_frame_bytes(uint64_t slot_bytes)
{
	return (slot_bytes + KS_FRAME_ALIGN - 1) / KS_FRAME_ALIGN * KS_FRAME_ALIGN + KS_FRAME_GAP;
}

struct ks_seg_def {
	const char *vm_name;		/* a valid VM name (ks_vm_name_fault()), no prefix */
	const char *note;		/* printable text on the VM's sources, or NULL */
	uint64_t incarnation;
	uint64_t generation;
	uint64_t poll_period_ns;
	uint32_t ring_depth;		/* >= 2 */
	uint64_t ring_min_bytes;	/* deepen the ring to span this (below); 0: ring_depth exactly */
	uint32_t nr_providers;
	const char *const *providers;
	uint32_t nr_targets;
	const struct ks_seg_target_def *targets;
};

/* Where the segment goes; its file name is always kvmstats.<vm_name>. */
struct ks_seg_place {
	const char *dir;		/* directory of the segment files */
	mode_t mode;			/* e.g. 0640 */
	gid_t gid;			/* (gid_t)-1: leave as created */
};

struct ks_segment_writer {
	int dirfd;
	int fd;				/* O_RDWR; holds the liveness lock */
	char *dir;			/* for messages */
	char *file;			/* public name */
	char *tmp_file;			/* name until published, NULL after */
	char *vm_name;
	mode_t mode;
	uid_t uid;			/* the file's owner, as created */
	gid_t gid;
	uint8_t *base;
	size_t size;
	struct ks_shm_header *hdr;
	void *schema;			/* private copy of [0, data_off) as written */
	uint32_t ring_depth;
	uint32_t nr_targets;
	struct ks_writer_target {
		uint8_t *ring;		/* slot 0 */
		uint32_t stride;
		uint32_t words;
	} *targets;
	struct ks_bus_guard *guard;
	atomic_bool faulted;		/* the file was truncated under the mapping */
};

int ks_segment_create(const struct ks_seg_def *def, const struct ks_seg_place *place,
		      struct ks_segment_writer **out, struct kvmstats_error *err);

/*
 * ks_segment_clone() - a new, unpublished segment with @old's schema and
 * place, for generation @generation: the replacement of a segment that was
 * truncated.  Its slots are empty.
 */
int ks_segment_clone(const struct ks_segment_writer *old, uint64_t generation,
		     struct ks_segment_writer **out, struct kvmstats_error *err);

/* The slot that sweep @sweep of target @t lands in. */
static inline struct ks_shm_slot *
ks_segment_slot(const struct ks_segment_writer *w, uint32_t t, uint64_t sweep)
{
	const struct ks_writer_target *wt = &w->targets[t];

	return (struct ks_shm_slot *)(wt->ring +
		(uint64_t)ks_slot_of_sweep(sweep, w->ring_depth) * wt->stride);
}

/*
 * ks_segment_publish() - open the ready gate (state LIVE) and give the
 * segment its public name.  The name is taken only if it is free, or holds
 * @predecessor's file (the generation this one replaces; may be NULL), or
 * a segment of our uid whose publisher ended or died (a restart); never a
 * file that is not a kvmstats segment, nor a live publisher's (-EEXIST,
 * @err says whose).  See segment_names.c.
 */
int ks_segment_publish(struct ks_segment_writer *w, const struct ks_segment_writer *predecessor,
		       struct kvmstats_error *err);

void ks_segment_set_state(struct ks_segment_writer *w, enum ks_shm_state state);

/* Whether the file was truncated under the mapping (see ks_sigbus.h). */
static inline bool
ks_segment_faulted(const struct ks_segment_writer *w)
{
	return atomic_load_explicit(&w->faulted, memory_order_relaxed);
}

/*
 * ks_segment_check() - has somebody (the file's owner or root) changed a
 * published, live segment under us?  Truncated (ks_segment_faulted()),
 * resized (a shrink within the last page or a growth faults nobody), its
 * mode or owner changed, its name removed or given to another file, its
 * gate or state changed, or written over where it never changes (a file
 * zeroed and re-extended, a hole punched into its schema, a header word
 * rewritten).  Readers refuse, misread or cannot find such a segment, so
 * its publisher replaces it.  A hole in the rings needs nothing: the
 * sweeps rewrite them.
 *
 * One step of the check: at *@cursor 0 the file, the gate and the header;
 * then the schema's bytes from *@cursor against the writer's own copy, at
 * most *@budget of them (which is decreased by what was compared).
 * Return: 1 all checked and intact; 0 intact so far, *@cursor moved on
 * (call again); -1 damaged, @why filled.  *@cursor is back at 0 after 1
 * and -1.
 */
int ks_segment_check(const struct ks_segment_writer *w, uint64_t *cursor, uint64_t *budget,
		     char *why, size_t len);

/*
 * Remove the public name if it still names our file.  Return: 0; -ENOENT
 * if the name is gone or names another file (a newer generation, a
 * successor), which is left alone; another -errno.  The mapping stays
 * valid for readers.
 */
int ks_segment_unlink(struct ks_segment_writer *w);

/*
 * Unmap and close (which drops the liveness lock); sets *@wp to NULL.  A
 * published segment keeps its name (ks_segment_unlink() removes it); an
 * unpublished one loses its temporary file.
 */
void ks_segment_destroy(struct ks_segment_writer **wp);

/* ---- the segment directory (segment_names.c) ---- */

/*
 * ks_segment_reap() - at a publisher's start: remove from @dir (NULL: the
 * default) the segments and temporary files of our uid whose publisher
 * died (no liveness lock) without ending them.  Ended segments (kept on
 * purpose with --keep) stay.  One line per file to @log.  Return: how many were removed, or -errno.
 */
int ks_segment_reap(const char *dir, ks_log_fn log);

/*
 * ks_segment_name_check() - could a new VM @vm_name be published in @dir
 * now, without taking the name from anybody (ks_segment_publish()'s rules,
 * with no predecessor)?  For early refusals; publishing checks again.
 * Return: 0 yes, -EEXIST no (why in @err), or another -errno.
 */
int ks_segment_name_check(const char *dir, const char *vm_name, struct kvmstats_error *err);

#endif /* KVMSTATS_PUBLISHER_SEGMENT_WRITER_H */
