/* SPDX-License-Identifier: MIT */
/*
 * segment_writer.c - lay out, create, publish and retire one segment.
 *
 * Layout (docs/ABI.md): the 256-byte header; the provider, target, stat
 * and string tables, each on its own 64-byte boundary; then, from a page
 * boundary, ring_depth frames, each holding one slot of every target.
 * Targets with equal stat arrays (the vCPUs of a VM) share one range of
 * the stat table.  Before the segment is
 * published it is checked with the same validator the readers run, so a
 * bad definition fails here with a message instead of in every reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dir_check.h"
#include "ks_err.h"
#include "ks_liveness.h"
#include "ks_shmdir.h"
#include "ks_text.h"
#include "ks_time.h"
#include "ks_validate.h"
#include "segment_names.h"
#include "segment_writer.h"

#define ROUNDUP(x, a)	(((x) + (uint64_t)(a) - 1) / (uint64_t)(a) * (uint64_t)(a))
/* One frame (a sweep's slots of every target) is every slot_stride, a u32. */
#define KS_FRAME_MAX	(1u << 30)

/* Everything the layout needs, computed before any byte is written. */
struct layout {
	uint32_t *stats_first;		/* per target, into the stat table */
	uint32_t nr_stats;		/* entries in the stat table */
	uint64_t providers_off, targets_off, stats_off, strings_off;
	uint64_t strings_size;
	uint64_t data_off, data_size;
	uint64_t *ring_off;		/* per target, in frame 0 */
	uint32_t frame;			/* bytes; every target's slot_stride */
	uint32_t ring_depth;		/* frames: def->ring_depth, or more (segment_writer.h) */
};

static bool
stat_def_equal(const struct ks_seg_stat_def *a, const struct ks_seg_stat_def *b)
{
	return strcmp(a->name, b->name) == 0 && a->provider == b->provider &&
	       a->type == b->type && a->unit == b->unit && a->base == b->base &&
	       a->exponent == b->exponent && a->size == b->size &&
	       a->bucket_size == b->bucket_size && a->value_index == b->value_index;
}

static bool
stat_array_equal(const struct ks_seg_target_def *a, const struct ks_seg_target_def *b)
{
	if (a->nr_stats != b->nr_stats)
		return false;
	if (a->stats == b->stats)
		return true;
	for (uint32_t i = 0; i < a->nr_stats; i++)
		if (!stat_def_equal(&a->stats[i], &b->stats[i]))
			return false;
	return true;
}

static uint64_t
str_bytes(const char *s)
{
	return (s != NULL ? strlen(s) : 0) + 1;
}

/*
 * The definition must be sane enough for the layout arithmetic; the rest
 * (enums, value ranges, duplicates) is left to the validator afterwards.
 */
static int
check_def(const struct ks_seg_def *def, struct kvmstats_error *err)
{
	char why[128], esc[256];

	if (def->vm_name == NULL)
		return ks_err(err, -EINVAL, "segment definition: no VM name");
	/* The caller says which VM (no prefix); the file name is made from it, here only. */
	if (ks_vm_name_fault(def->vm_name, why, sizeof(why)) != NULL)
		return ks_err(err, -EINVAL, "segment definition: VM name \"%s\" %s",
			      ks_text_escape(esc, sizeof(esc), def->vm_name), why);
	if (def->providers == NULL || def->targets == NULL)
		return ks_err(err, -EINVAL, "VM %s: no provider or target array", def->vm_name);
	if (def->ring_depth < 2 || def->ring_depth > KS_RING_DEPTH_LIMIT)
		return ks_err(err, -EINVAL, "VM %s: ring depth %u outside 2..%u",
			      def->vm_name, def->ring_depth, KS_RING_DEPTH_LIMIT);
	if (def->nr_providers < 1 || def->nr_providers > KS_PROVIDERS_MAX)
		return ks_err(err, -EINVAL, "VM %s: %u providers, expected 1..%u",
			      def->vm_name, def->nr_providers, KS_PROVIDERS_MAX);
	if (def->nr_targets < 1 || def->nr_targets > KS_TARGETS_MAX)
		return ks_err(err, -EINVAL, "VM %s: %u targets, expected 1..%u",
			      def->vm_name, def->nr_targets, KS_TARGETS_MAX);
	for (uint32_t p = 0; p < def->nr_providers; p++)
		if (def->providers[p] == NULL)
			return ks_err(err, -EINVAL, "VM %s: provider %u has no name",
				      def->vm_name, p);
	for (uint32_t t = 0; t < def->nr_targets; t++) {
		const struct ks_seg_target_def *td = &def->targets[t];

		/* A slot's size must not overflow; the frame check bounds the sum. */
		if (td->record_words > (1u << 28))
			return ks_err(err, -EINVAL, "VM %s: target %u: %u words per record is too many",
				      def->vm_name, t, td->record_words);
		if (td->nr_stats > KS_STATS_MAX || (td->nr_stats > 0 && td->stats == NULL))
			return ks_err(err, -EINVAL, "VM %s: target %u: bad stat array (%u stats)",
				      def->vm_name, t, td->nr_stats);
		for (uint32_t i = 0; i < td->nr_stats; i++)
			if (td->stats[i].name == NULL)
				return ks_err(err, -EINVAL, "VM %s: target %u: stat %u has no name",
					      def->vm_name, t, i);
	}
	return 0;
}

/* Give each target its range of the stat table, sharing equal arrays. */
static int
layout_stats(const struct ks_seg_def *def, struct layout *lo, uint64_t *strings,
	     struct kvmstats_error *err)
{
	uint64_t total = 0;

	for (uint32_t t = 0; t < def->nr_targets; t++) {
		const struct ks_seg_target_def *td = &def->targets[t];
		uint32_t u;

		/* An earlier target with an equal array lends its range. */
		for (u = 0; u < t; u++)
			if (stat_array_equal(&def->targets[u], td))
				break;
		if (u < t) {
			lo->stats_first[t] = lo->stats_first[u];
			continue;
		}
		lo->stats_first[t] = (uint32_t)total;
		total += td->nr_stats;
		if (total > KS_STATS_MAX)
			return ks_err(err, -EINVAL, "VM %s: more than %u distinct stats",
				      def->vm_name, KS_STATS_MAX);
		for (uint32_t i = 0; i < td->nr_stats; i++)
			*strings += str_bytes(td->stats[i].name);
	}
	lo->nr_stats = (uint32_t)total;
	return 0;
}

static int
layout_compute(const struct ks_seg_def *def, struct layout *lo, struct kvmstats_error *err)
{
	uint64_t strings = str_bytes(def->vm_name) +
			   (def->note != NULL && def->note[0] != '\0' ? str_bytes(def->note) : 0);
	uint64_t data = 0;
	int rc;

	rc = layout_stats(def, lo, &strings, err);
	if (rc < 0)
		return rc;
	for (uint32_t p = 0; p < def->nr_providers; p++)
		strings += str_bytes(def->providers[p]);
	for (uint32_t t = 0; t < def->nr_targets; t++)
		strings += str_bytes(def->targets[t].label) + str_bytes(def->targets[t].id);

	lo->providers_off = sizeof(struct ks_shm_header);
	lo->targets_off = ROUNDUP(lo->providers_off +
		(uint64_t)def->nr_providers * sizeof(struct ks_shm_provider), KS_CACHELINE);
	lo->stats_off = ROUNDUP(lo->targets_off +
		(uint64_t)def->nr_targets * sizeof(struct ks_shm_target), KS_CACHELINE);
	lo->strings_off = ROUNDUP(lo->stats_off +
		(uint64_t)lo->nr_stats * sizeof(struct ks_shm_stat), KS_CACHELINE);
	lo->strings_size = strings;
	lo->data_off = ROUNDUP(lo->strings_off + strings, KS_DATA_ALIGN);
	if (lo->data_off > KS_SCHEMA_MAX)
		return ks_err(err, -EINVAL, "VM %s: schema of %llu bytes exceeds %u",
			      def->vm_name, (unsigned long long)lo->data_off, KS_SCHEMA_MAX);

	/*
	 * Frames: frame k holds slot k of every target, in target order, each
	 * slot rounded up to 64 bytes.  One sweep writes one frame front to
	 * back and a reader's cut reads it the same way, so both stream through
	 * contiguous memory that the hardware prefetchers follow; rings of
	 * their own would put a target's next slot a whole ring away.  Then
	 * the frame's padding and the ring's depth (segment_writer.h).
	 */
	uint64_t frame = 0;

	for (uint32_t t = 0; t < def->nr_targets; t++) {
		lo->ring_off[t] = lo->data_off + frame;
		frame += ROUNDUP(ks_slot_bytes(def->targets[t].record_words), KS_SLOT_ALIGN);
	}
	/* Every slot_stride is the frame, a u32: keep one frame well below 4 GiB. */
	if (frame > KS_FRAME_MAX)
		return ks_err(err, -EINVAL, "VM %s: one sweep's slots take %llu bytes, over %u",
			      def->vm_name, (unsigned long long)frame, KS_FRAME_MAX);
	frame = ks_seg_frame_bytes(frame);
	lo->frame = (uint32_t)frame;
	lo->ring_depth = def->ring_depth;
	while (def->ring_min_bytes && (uint64_t)lo->ring_depth * frame < def->ring_min_bytes &&
	       lo->ring_depth * 2 <= KS_RING_DEPTH_AUTO_MAX)
		lo->ring_depth *= 2;
	data = frame * lo->ring_depth;
	lo->data_size = data;
	if (lo->data_off + data > (uint64_t)SIZE_MAX / 2 || lo->data_off + data > (uint64_t)INT64_MAX)
		return ks_err(err, -EINVAL, "VM %s: segment too large", def->vm_name);
	return 0;
}

/* Append @s (NULL: "") to the string table; return its offset. */
static uint32_t
put_string(uint8_t *strings, uint64_t *used, const char *s, uint32_t *len)
{
	uint64_t off = *used;
	size_t n = s != NULL ? strlen(s) : 0;

	if (n > 0)
		memcpy(strings + off, s, n);
	strings[off + n] = '\0';
	*used = off + n + 1;
	*len = (uint32_t)n;
	return (uint32_t)off;
}

static void
write_header(struct ks_segment_writer *w, const struct ks_seg_def *def,
	     const struct layout *lo)
{
	struct ks_shm_header *h = w->hdr;

	memcpy(h->magic, KS_ABI_MAGIC, KS_ABI_MAGIC_LEN);
	h->abi_major = KS_ABI_MAJOR;
	h->abi_minor = KS_ABI_MINOR;
	h->header_size = sizeof(*h);
	h->endian = KS_ABI_ENDIAN;
	h->segment_size = w->size;
	h->publisher_pid = (int32_t)getpid();
	h->incarnation = def->incarnation;
	h->generation = def->generation;
	h->created_mono_ns = ks_mono_ns();
	h->poll_period_ns = def->poll_period_ns;
	h->ring_depth = lo->ring_depth;
	h->nr_providers = def->nr_providers;
	h->nr_targets = def->nr_targets;
	h->nr_stats = lo->nr_stats;
	h->providers_off = (uint32_t)lo->providers_off;
	h->targets_off = (uint32_t)lo->targets_off;
	h->stats_off = (uint32_t)lo->stats_off;
	h->strings_off = (uint32_t)lo->strings_off;
	h->strings_size = (uint32_t)lo->strings_size;
	h->provider_entry_size = sizeof(struct ks_shm_provider);
	h->target_entry_size = sizeof(struct ks_shm_target);
	h->stat_entry_size = sizeof(struct ks_shm_stat);
	h->data_off = lo->data_off;
	h->data_size = lo->data_size;
	/* Nobody can see the file yet: plain stores would do, but these are atomics. */
	atomic_store_explicit(&h->state, KS_STATE_BUILDING, memory_order_relaxed);
	atomic_store_explicit(&h->ready, 0, memory_order_relaxed);
}

static void
write_stats(uint8_t *base, const struct ks_seg_target_def *td, uint32_t first,
	    uint8_t *strings, uint64_t *used)
{
	struct ks_shm_stat *st = (struct ks_shm_stat *)(base + ((struct ks_shm_header *)base)->stats_off);

	for (uint32_t i = 0; i < td->nr_stats; i++) {
		const struct ks_seg_stat_def *sd = &td->stats[i];
		struct ks_shm_stat *e = &st[first + i];

		e->name_off = put_string(strings, used, sd->name, &e->name_len);
		e->provider = sd->provider;
		e->type = sd->type;
		e->unit = sd->unit;
		e->base = sd->base;
		e->exponent = sd->exponent;
		e->size = sd->size;
		e->bucket_size = sd->bucket_size;
		e->value_index = sd->value_index;
	}
}

static void
write_tables(struct ks_segment_writer *w, const struct ks_seg_def *def,
	     const struct layout *lo)
{
	struct ks_shm_header *h = w->hdr;
	struct ks_shm_provider *prov = (struct ks_shm_provider *)(w->base + lo->providers_off);
	struct ks_shm_target *tgt = (struct ks_shm_target *)(w->base + lo->targets_off);
	uint8_t *strings = w->base + lo->strings_off;
	uint64_t used = 0;
	uint32_t next_first = 0;

	h->vm_name_off = put_string(strings, &used, def->vm_name, &h->vm_name_len);
	if (def->note != NULL && def->note[0] != '\0')
		h->note_off = put_string(strings, &used, def->note, &h->note_len);
	for (uint32_t p = 0; p < def->nr_providers; p++)
		prov[p].name_off = put_string(strings, &used, def->providers[p],
					      &prov[p].name_len);
	for (uint32_t t = 0; t < def->nr_targets; t++) {
		const struct ks_seg_target_def *td = &def->targets[t];
		struct ks_shm_target *e = &tgt[t];

		e->kind = td->kind;
		e->vcpu_index = td->vcpu_index;
		e->label_off = put_string(strings, &used, td->label, &e->label_len);
		e->id_off = put_string(strings, &used, td->id, &e->id_len);
		e->stats_first = lo->stats_first[t];
		e->stats_count = td->nr_stats;
		e->record_words = td->record_words;
		e->slot_stride = lo->frame;
		e->ring_off = lo->ring_off[t];
		/* Only the target that introduced a range writes its entries. */
		if (lo->stats_first[t] == next_first && td->nr_stats > 0) {
			write_stats(w->base, td, next_first, strings, &used);
			next_first += td->nr_stats;
		}
	}
}

/* ---- the file --------------------------------------------------------- */

/*
 * Created 0600 and locked before anybody else may open it: a reader that
 * got in first could hold a read lock that keeps the liveness lock out.
 */
static int
open_tmp(struct ks_segment_writer *w, struct kvmstats_error *err)
{
	int rc;

	for (int tries = 0; tries < 8; tries++) {
		free(w->tmp_file);
		w->tmp_file = ks_name_tmp(w->file);
		if (w->tmp_file == NULL)
			return ks_err(err, -ENOMEM, "out of memory");
		w->fd = openat(w->dirfd, w->tmp_file,
			       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w->fd >= 0)
			break;
		if (errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		rc = -errno;
		free(w->tmp_file);
		w->tmp_file = NULL;
		return ks_err(err, rc, "cannot create a segment file in %s: %s", w->dir,
			      strerror(-rc));
	}
	rc = ks_liveness_lock(w->fd);
	if (rc < 0)
		return ks_err(err, rc, "%s/%s: cannot take the liveness lock (F_OFD_SETLK): %s",
			      w->dir, w->tmp_file, strerror(-rc));
	return 0;
}

/* Mode, group and every byte of storage, before anything is mapped. */
static int
size_file(struct ks_segment_writer *w, struct kvmstats_error *err)
{
	struct stat st;
	int rc;

	/* The final mode, now that the lock is ours (and exactly it: no umask). */
	if (fchmod(w->fd, w->mode) < 0)
		return ks_err(err, -errno, "%s/%s: fchmod %04o: %s", w->dir, w->tmp_file,
			      (unsigned)w->mode, strerror(errno));
	if (w->gid != (gid_t)-1 && fchown(w->fd, (uid_t)-1, w->gid) < 0)
		return ks_err(err, -errno, "%s/%s: cannot give the segment to group %u: %s",
			      w->dir, w->tmp_file, (unsigned)w->gid, strerror(errno));
	/* Its owner as made, for ks_segment_check() (a VMM may change uid later). */
	if (fstat(w->fd, &st) < 0)
		return ks_err(err, -errno, "%s/%s: fstat: %s", w->dir, w->tmp_file,
			      strerror(errno));
	w->uid = st.st_uid;
	if (ftruncate(w->fd, (off_t)w->size) < 0)
		return ks_err(err, -errno, "%s/%s: ftruncate to %zu bytes: %s", w->dir,
			      w->tmp_file, w->size, strerror(errno));
	/*
	 * Reserve every page now: on a full tmpfs a sparse file would fail
	 * later, as SIGBUS in the publisher or in a reader.
	 */
	rc = posix_fallocate(w->fd, 0, (off_t)w->size);
	if (rc == ENOSPC)
		return ks_err(err, -ENOSPC,
			      "no room for a %zu-byte segment in %s: free space there (or lower the ring depth)",
			      w->size, w->dir);
	if (rc != 0)
		return ks_err(err, -rc, "%s/%s: posix_fallocate of %zu bytes: %s", w->dir,
			      w->tmp_file, w->size, strerror(rc));
	return 0;
}

static int
map_file(struct ks_segment_writer *w, struct kvmstats_error *err)
{
	void *p = mmap(NULL, w->size, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
	int rc;

	if (p == MAP_FAILED)
		return ks_err(err, -errno, "%s/%s: mmap of %zu bytes: %s", w->dir,
			      w->tmp_file, w->size, strerror(errno));
	w->base = p;
	w->hdr = p;
	/* Its owner may truncate the file: that must not kill us (ks_sigbus.h). */
	rc = ks_bus_guard(p, w->size, true, &w->faulted, &w->guard);
	if (rc < 0)
		return ks_err(err, rc, "%s/%s: cannot guard the mapping against SIGBUS: %s",
			      w->dir, w->tmp_file, strerror(-rc));
	return 0;
}

/* A writer for @vm_name in @dir, before any file exists. */
static int
writer_alloc(const char *vm_name, const char *dir, mode_t mode, gid_t gid,
	     uint32_t ring_depth, uint32_t nr_targets, struct ks_segment_writer **wp,
	     struct kvmstats_error *err)
{
	struct ks_segment_writer *w = calloc(1, sizeof(*w));
	char buf[256];
	int rc;

	if (w == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	*wp = w;
	w->dirfd = -1;
	w->fd = -1;
	w->mode = mode;
	w->gid = gid;
	w->ring_depth = ring_depth;
	w->nr_targets = nr_targets;
	atomic_init(&w->faulted, false);
	w->targets = calloc(nr_targets, sizeof(*w->targets));
	w->dir = strdup(dir);
	w->vm_name = strdup(vm_name);
	if (w->targets == NULL || w->dir == NULL || w->vm_name == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	rc = ks_shm_file_name(vm_name, buf, sizeof(buf));
	if (rc < 0)
		return ks_err(err, rc, "VM name \"%s\" cannot name a segment file", vm_name);
	w->file = strdup(buf);
	if (w->file == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0)
		return ks_err(err, -errno, "cannot open the segment directory %s: %s",
			      dir, strerror(errno));
	return ks_dir_check(dir, "segment directory", err);
}

/* The file, sized, locked and mapped: everything but its contents. */
static int
make_file(struct ks_segment_writer *w, size_t size, struct kvmstats_error *err)
{
	int rc;

	w->size = size;
	rc = open_tmp(w, err);
	if (rc == 0)
		rc = size_file(w, err);
	if (rc == 0)
		rc = map_file(w, err);
	return rc;
}

static void
layout_free(struct layout *lo)
{
	free(lo->stats_first);
	free(lo->ring_off);
}

static int
layout_alloc(const struct ks_seg_def *def, struct layout *lo, struct kvmstats_error *err)
{
	memset(lo, 0, sizeof(*lo));
	lo->stats_first = calloc(def->nr_targets, sizeof(*lo->stats_first));
	lo->ring_off = calloc(def->nr_targets, sizeof(*lo->ring_off));
	if (lo->stats_first == NULL || lo->ring_off == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	return layout_compute(def, lo, err);
}

/*
 * The publisher runs the readers' validator on its own work, then keeps
 * the schema it wrote (for ks_segment_clone()) and finds its rings from it.
 */
static int
self_check(struct ks_segment_writer *w, struct kvmstats_error *err)
{
	struct kvmstats_error verr;
	const struct ks_shm_header *h = w->hdr;
	int rc;

	rc = ks_validate_segment(w->base, h->data_off, w->size, w->file,
				 KS_VALIDATE_UNPUBLISHED, &verr);
	if (rc < 0)
		return ks_err(err, -EINVAL, "invalid segment definition: %s", verr.msg);
	w->schema = malloc(h->data_off);
	if (w->schema == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	memcpy(w->schema, w->base, h->data_off);
	for (uint32_t t = 0; t < w->nr_targets; t++) {
		struct ks_shm_target e;

		ks_copy_target(w->schema, t, &e);
		w->targets[t] = (struct ks_writer_target) {
			.ring = w->base + e.ring_off,
			.stride = e.slot_stride,
			.words = e.record_words,
		};
	}
	return 0;
}

int
ks_segment_create(const struct ks_seg_def *def, const struct ks_seg_place *place,
		  struct ks_segment_writer **out, struct kvmstats_error *err)
{
	struct ks_segment_writer *w = NULL;
	struct layout lo;
	int rc;

	*out = NULL;
	memset(&lo, 0, sizeof(lo));
	rc = check_def(def, err);
	if (rc == 0)
		rc = layout_alloc(def, &lo, err);
	if (rc == 0)
		rc = writer_alloc(def->vm_name, ks_shm_dir(place->dir), place->mode, place->gid,
				  lo.ring_depth, def->nr_targets, &w, err);
	if (rc == 0)
		rc = make_file(w, (size_t)(lo.data_off + lo.data_size), err);
	if (rc == 0) {
		/* A fresh file reads as zeros: every slot starts with seq 0, sweep 0. */
		write_header(w, def, &lo);
		write_tables(w, def, &lo);
		rc = self_check(w, err);
	}
	layout_free(&lo);
	if (rc < 0) {
		ks_segment_destroy(&w);
		return rc;
	}
	*out = w;
	return 0;
}

int
ks_segment_clone(const struct ks_segment_writer *old, uint64_t generation,
		 struct ks_segment_writer **out, struct kvmstats_error *err)
{
	const struct ks_shm_header *oh = old->schema;
	struct ks_segment_writer *w = NULL;
	int rc;

	*out = NULL;
	rc = writer_alloc(old->vm_name, old->dir, old->mode, old->gid, old->ring_depth,
			  old->nr_targets, &w, err);
	if (rc == 0)
		rc = make_file(w, old->size, err);
	if (rc == 0) {
		memcpy(w->base, old->schema, oh->data_off);
		/* Lines 0-2 as written, but for what is this segment's own. */
		w->hdr->generation = generation;
		w->hdr->created_mono_ns = ks_mono_ns();
		w->hdr->publisher_pid = (int32_t)getpid();
		atomic_store_explicit(&w->hdr->state, KS_STATE_BUILDING, memory_order_relaxed);
		atomic_store_explicit(&w->hdr->ready, 0, memory_order_relaxed);
		atomic_store_explicit(&w->hdr->sweep, 0, memory_order_relaxed);
		atomic_store_explicit(&w->hdr->heartbeat_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&w->hdr->read_errors, 0, memory_order_relaxed);
		rc = self_check(w, err);
	}
	if (rc < 0) {
		ks_segment_destroy(&w);
		return rc;
	}
	*out = w;
	return 0;
}

int
ks_segment_publish(struct ks_segment_writer *w, const struct ks_segment_writer *predecessor,
		   struct kvmstats_error *err)
{
	int rc;

	if (w->tmp_file == NULL)
		return ks_err(err, -EALREADY, "segment %s is already published", w->file);
	atomic_store_explicit(&w->hdr->state, KS_STATE_LIVE, memory_order_relaxed);
	/*
	 * Release, and last: the schema, the first samples and the state
	 * above are visible to whoever sees the ready magic.  Pairs with the
	 * acquire load of header.ready in the reader's attach
	 * (reader/attach.c: wait_ready()).
	 */
	atomic_store_explicit(&w->hdr->ready, KS_READY_MAGIC, memory_order_release);
	rc = ks_name_take(w->dirfd, w->dir, w->tmp_file, w->file,
			  predecessor != NULL ? predecessor->fd : -1, err);
	if (rc < 0)
		return rc;
	free(w->tmp_file);
	w->tmp_file = NULL;
	return 0;
}

void
ks_segment_set_state(struct ks_segment_writer *w, enum ks_shm_state state)
{
	/*
	 * Release: a reader that sees ENDED or SUPERSEDED also sees every
	 * sweep published before it.  Pairs with the acquire load of
	 * header.state in kvmstats_status() (reader/read.c).
	 */
	atomic_store_explicit(&w->hdr->state, (uint32_t)state, memory_order_release);
}

/*
 * The header bytes that never change once published: all but ready and
 * state (set at publish and at the end) and the hot line 3.
 */
static bool
header_intact(const struct ks_segment_writer *w)
{
	static const struct { size_t from, to; } fixed[] = {
		{ 0, offsetof(struct ks_shm_header, ready) },
		{ offsetof(struct ks_shm_header, ready) + sizeof(uint32_t),
		  offsetof(struct ks_shm_header, state) },
		{ offsetof(struct ks_shm_header, state) + sizeof(uint32_t),
		  offsetof(struct ks_shm_header, sweep) },
	};
	const uint8_t *now = w->base, *then = w->schema;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (memcmp(now + fixed[i].from, then + fixed[i].from,
			   fixed[i].to - fixed[i].from) != 0)
			return false;
	return true;
}

/* What fstat() and the name say; NULL if all is as we made it. */
static const char *
file_damage(const struct ks_segment_writer *w, char *why, size_t len)
{
	struct stat st, named;

	if (fstat(w->fd, &st) < 0)
		return NULL;		/* our own open fd: nothing to go on */
	if ((uint64_t)st.st_size != w->size)
		snprintf(why, len, "changed size from %zu to %lld bytes", w->size,
			 (long long)st.st_size);
	else if ((st.st_mode & 07777) != (w->mode & 07777))
		snprintf(why, len, "had its mode changed from %04o to %04o",
			 (unsigned)(w->mode & 07777), (unsigned)(st.st_mode & 07777));
	else if (st.st_uid != w->uid || (w->gid != (gid_t)-1 && st.st_gid != w->gid))
		snprintf(why, len, "was given to another owner (uid %u gid %u)",
			 (unsigned)st.st_uid, (unsigned)st.st_gid);
	else if (st.st_nlink == 0 ||
		 fstatat(w->dirfd, w->file, &named, AT_SYMLINK_NOFOLLOW) < 0 ||
		 named.st_dev != st.st_dev || named.st_ino != st.st_ino)
		snprintf(why, len, "lost its name (removed or renamed)");
	else
		return NULL;
	return why;
}

int
ks_segment_check(const struct ks_segment_writer *w, uint64_t *cursor, uint64_t *budget,
		 char *why, size_t len)
{
	const struct ks_shm_header *h = w->schema;
	uint64_t from = *cursor, n;
	uint32_t ready, state;

	if (ks_segment_faulted(w)) {
		snprintf(why, len, "was truncated under the publisher");
		goto damaged;
	}
	if (from == 0) {
		if (file_damage(w, why, len) != NULL)
			goto damaged;
		ready = atomic_load_explicit(&w->hdr->ready, memory_order_relaxed);
		state = atomic_load_explicit(&w->hdr->state, memory_order_relaxed);
		if (ready != KS_READY_MAGIC || state != KS_STATE_LIVE) {
			snprintf(why, len, "had its ready gate or state overwritten (%#x, %u)",
				 (unsigned)ready, (unsigned)state);
			goto damaged;
		}
		if (!header_intact(w)) {
			snprintf(why, len, "had its header overwritten");
			goto damaged;
		}
		from = sizeof(*h);
		*budget -= *budget < from ? *budget : from;
	}
	/* The tables and strings, a budget's worth at a time. */
	n = h->data_off - from < *budget ? h->data_off - from : *budget;
	if (memcmp(w->base + from, (const uint8_t *)w->schema + from, n) != 0) {
		snprintf(why, len, "had its schema overwritten");
		goto damaged;
	}
	*budget -= n;
	*cursor = from + n;
	if (*cursor < h->data_off)
		return 0;
	*cursor = 0;
	return 1;
damaged:
	*cursor = 0;
	return -1;
}

int
ks_segment_unlink(struct ks_segment_writer *w)
{
	return ks_name_release(w->dirfd, w->tmp_file != NULL ? w->tmp_file : w->file, w->fd);
}

void
ks_segment_destroy(struct ks_segment_writer **wp)
{
	struct ks_segment_writer *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	/* Never published: nobody will ever want the temporary file. */
	if (w->tmp_file != NULL && w->fd >= 0 && w->dirfd >= 0)
		(void)ks_name_release(w->dirfd, w->tmp_file, w->fd);
	ks_bus_unguard(&w->guard);
	if (w->base != NULL)
		munmap(w->base, w->size);
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->schema);
	free(w->tmp_file);
	free(w->file);
	free(w->dir);
	free(w->vm_name);
	free(w->targets);
	free(w);
}
