/* SPDX-License-Identifier: MIT */
/*
 * ks_validate.c - the complete check of a segment, before any use.
 *
 * Every check names the field it rejects, because the person reading the
 * message has a corrupt file and a publisher to debug, not this code.  All
 * arithmetic on values from the segment is done in 64 bits on operands of
 * at most 32 bits, so nothing here can wrap.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_err.h"
#include "ks_text.h"
#include "ks_validate.h"

#define BAD(ctx, ...)	ks_err((ctx)->err, -EBADMSG, __VA_ARGS__)

/* What one validation needs; the header is a private copy. */
struct vctx {
	const uint8_t *copy;
	const struct ks_shm_header *h;
	const char *name;
	struct kvmstats_error *err;
};

void
ks_header_snapshot(struct ks_shm_header *dst, const struct ks_shm_header *src)
{
	_Atomic uint64_t *s64 = (_Atomic uint64_t *)&src->sweep;

	/*
	 * Lines 0-2 hold two atomics (ready, state); line 3 is all atomics.
	 * Copy the plain bytes around them, the atomics with relaxed loads:
	 * the caller ordered this after its acquire load of ready.
	 */
	memcpy(dst, src, offsetof(struct ks_shm_header, ready));
	atomic_store_explicit(&dst->ready, atomic_load_explicit((_Atomic uint32_t *)&src->ready,
								memory_order_relaxed),
			      memory_order_relaxed);
	memcpy((uint8_t *)dst + offsetof(struct ks_shm_header, endian),
	       (const uint8_t *)src + offsetof(struct ks_shm_header, endian),
	       offsetof(struct ks_shm_header, state) - offsetof(struct ks_shm_header, endian));
	atomic_store_explicit(&dst->state, atomic_load_explicit((_Atomic uint32_t *)&src->state,
								memory_order_relaxed),
			      memory_order_relaxed);
	memcpy(&dst->note_off, &src->note_off,
	       offsetof(struct ks_shm_header, sweep) - offsetof(struct ks_shm_header, note_off));
	atomic_store_explicit(&dst->sweep, atomic_load_explicit(s64, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&dst->heartbeat_ns,
			      atomic_load_explicit((_Atomic uint64_t *)&src->heartbeat_ns,
						   memory_order_relaxed), memory_order_relaxed);
	atomic_store_explicit(&dst->overruns,
			      atomic_load_explicit((_Atomic uint64_t *)&src->overruns,
						   memory_order_relaxed), memory_order_relaxed);
	atomic_store_explicit(&dst->read_errors,
			      atomic_load_explicit((_Atomic uint64_t *)&src->read_errors,
						   memory_order_relaxed), memory_order_relaxed);
	memcpy(dst->reserved2, src->reserved2, sizeof(dst->reserved2));
}

/* ---------------------------------------------------------------- */
/* The header                                                         */

static int
check_identity(const struct ks_shm_header *h, uint64_t file_size, const char *name,
	       unsigned flags, struct kvmstats_error *err)
{
	if (memcmp(h->magic, KS_ABI_MAGIC, KS_ABI_MAGIC_LEN) != 0)
		return ks_err(err, -EBADMSG, "segment %s: bad magic: not a kvmstats segment", name);
	if (h->abi_major != KS_ABI_MAJOR)
		return ks_err(err, -EPROTO,
			      "segment %s: ABI version %u.%u, this library reads %u.x: use a matching reader",
			      name, h->abi_major, h->abi_minor, KS_ABI_MAJOR);
	if (h->endian != KS_ABI_ENDIAN)
		return ks_err(err, -EPROTO,
			      "segment %s: endian mark 0x%08" PRIx32 " is not 0x%08x: written with another byte order",
			      name, h->endian, KS_ABI_ENDIAN);
	if (h->header_size < sizeof(*h))
		return ks_err(err, -EBADMSG, "segment %s: header_size %" PRIu32 " is below %zu",
			      name, h->header_size, sizeof(*h));
	if (h->segment_size != file_size)
		return ks_err(err, -EBADMSG,
			      "segment %s: segment_size %" PRIu64 " differs from the file size %" PRIu64,
			      name, h->segment_size, file_size);
	if (!(flags & KS_VALIDATE_UNPUBLISHED) &&
	    atomic_load_explicit((_Atomic uint32_t *)&h->ready, memory_order_relaxed) != KS_READY_MAGIC)
		return ks_err(err, -EAGAIN,
			      "segment %s: not ready (its publisher is still building it, or died doing so)",
			      name);
	return 0;
}

static int
check_sections(const struct ks_shm_header *h, const char *name, struct kvmstats_error *err)
{
	if (h->data_off % KS_DATA_ALIGN != 0 || h->data_off < h->header_size ||
	    h->data_off > h->segment_size)
		return ks_err(err, -EBADMSG,
			      "segment %s: data_off %" PRIu64 " is not a page-aligned offset in [%" PRIu32 ", %" PRIu64 "]",
			      name, h->data_off, h->header_size, h->segment_size);
	if (h->data_off > KS_SCHEMA_MAX)
		return ks_err(err, -EBADMSG, "segment %s: data_off %" PRIu64 " exceeds the schema limit %u",
			      name, h->data_off, KS_SCHEMA_MAX);
	if (h->data_size != h->segment_size - h->data_off)
		return ks_err(err, -EBADMSG,
			      "segment %s: data_size %" PRIu64 " but data_off %" PRIu64 " + data_size != segment_size %" PRIu64,
			      name, h->data_size, h->data_off, h->segment_size);
	return 0;
}

static int
check_counts(const struct ks_shm_header *h, const char *name, unsigned flags,
	     struct kvmstats_error *err)
{
	uint32_t state = atomic_load_explicit((_Atomic uint32_t *)&h->state, memory_order_relaxed);

	if (h->ring_depth < 2 || h->ring_depth > KS_RING_DEPTH_LIMIT)
		return ks_err(err, -EBADMSG, "segment %s: ring_depth %" PRIu32 " outside 2..%u",
			      name, h->ring_depth, KS_RING_DEPTH_LIMIT);
	if (h->nr_providers < 1 || h->nr_providers > KS_PROVIDERS_MAX)
		return ks_err(err, -EBADMSG, "segment %s: nr_providers %" PRIu32 " outside 1..%u",
			      name, h->nr_providers, KS_PROVIDERS_MAX);
	if (h->nr_targets < 1 || h->nr_targets > KS_TARGETS_MAX)
		return ks_err(err, -EBADMSG, "segment %s: nr_targets %" PRIu32 " outside 1..%u",
			      name, h->nr_targets, KS_TARGETS_MAX);
	if (h->nr_stats > KS_STATS_MAX)
		return ks_err(err, -EBADMSG, "segment %s: nr_stats %" PRIu32 " above %u",
			      name, h->nr_stats, KS_STATS_MAX);
	if (h->provider_entry_size < sizeof(struct ks_shm_provider) ||
	    h->target_entry_size < sizeof(struct ks_shm_target) ||
	    h->stat_entry_size < sizeof(struct ks_shm_stat))
		return ks_err(err, -EBADMSG,
			      "segment %s: entry sizes provider %u target %u stat %u below %zu %zu %zu",
			      name, h->provider_entry_size, h->target_entry_size, h->stat_entry_size,
			      sizeof(struct ks_shm_provider), sizeof(struct ks_shm_target),
			      sizeof(struct ks_shm_stat));
	if (state > KS_STATE_SUPERSEDED)
		return ks_err(err, -EBADMSG, "segment %s: state %" PRIu32 " unknown", name, state);
	/* A publisher opens the gate with state live: building behind it is not ready. */
	if (!(flags & KS_VALIDATE_UNPUBLISHED) && state == KS_STATE_BUILDING)
		return ks_err(err, -EAGAIN, "segment %s: state building behind an open ready gate: "
			      "not ready", name);
	return 0;
}

/* [off, off + count * size) inside the schema section [header_size, data_off). */
static int
check_table(const struct ks_shm_header *h, const char *name, const char *table,
	    uint64_t off, uint64_t count, uint64_t size, struct kvmstats_error *err)
{
	uint64_t end = off + count * size;	/* < 2^32 + 2^32 * 2^16: no wrap */

	if (off < h->header_size || end > h->data_off)
		return ks_err(err, -EBADMSG,
			      "segment %s: %s [%" PRIu64 ", %" PRIu64 ") outside the schema section [%" PRIu32 ", %" PRIu64 ")",
			      name, table, off, end, h->header_size, h->data_off);
	return 0;
}

static int
check_tables(const struct ks_shm_header *h, const char *name, struct kvmstats_error *err)
{
	int rc;

	rc = check_table(h, name, "provider table", h->providers_off, h->nr_providers,
			 h->provider_entry_size, err);
	if (rc == 0)
		rc = check_table(h, name, "target table", h->targets_off, h->nr_targets,
				 h->target_entry_size, err);
	if (rc == 0)
		rc = check_table(h, name, "stat table", h->stats_off, h->nr_stats,
				 h->stat_entry_size, err);
	if (rc == 0)
		rc = check_table(h, name, "string table", h->strings_off, h->strings_size, 1, err);
	return rc;
}

int
ks_validate_header(const struct ks_shm_header *h, uint64_t file_size, const char *name,
		   unsigned flags, struct kvmstats_error *err)
{
	int rc;

	if (file_size < sizeof(*h))
		return ks_err(err, -EBADMSG, "segment %s: %" PRIu64 " bytes, shorter than the %zu-byte header",
			      name, file_size, sizeof(*h));
	rc = check_identity(h, file_size, name, flags, err);
	if (rc == 0)
		rc = check_sections(h, name, err);
	if (rc == 0)
		rc = check_counts(h, name, flags, err);
	if (rc == 0)
		rc = check_tables(h, name, err);
	return rc;
}

/* ---------------------------------------------------------------- */
/* Strings                                                            */

/* @off/@len name a NUL-terminated string of exactly @len bytes of printable text. */
static int
check_string(const struct vctx *c, const char *what, uint32_t off, uint32_t len,
	     bool nonempty)
{
	const char *s, *fault;
	size_t at;

	if ((uint64_t)off + len >= c->h->strings_size)
		return BAD(c, "segment %s: %s: string [%" PRIu32 ", +%" PRIu32 "] outside the string table of %" PRIu32 " bytes",
			   c->name, what, off, len, c->h->strings_size);
	s = ks_copy_string(c->copy, off);
	if (s[len] != '\0')
		return BAD(c, "segment %s: %s: string at %" PRIu32 " is not NUL-terminated at length %" PRIu32,
			   c->name, what, off, len);
	if (memchr(s, '\0', len) != NULL)
		return BAD(c, "segment %s: %s: string at %" PRIu32 " has a NUL inside its %" PRIu32 " bytes",
			   c->name, what, off, len);
	if (nonempty && len == 0)
		return BAD(c, "segment %s: %s: empty name", c->name, what);
	/* Every string ends up on terminals and in JSON: ks_text.h's rule. */
	fault = ks_text_fault(s, len, &at);
	if (fault != NULL)
		return BAD(c, "segment %s: %s: string at %" PRIu32 " has %s at byte %zu",
			   c->name, what, off, fault, at);
	return 0;
}

/* Sort helpers: entries ordered by (provider, name). */
static int
cmp_provider(const void *a, const void *b, void *arg)
{
	const struct vctx *c = arg;
	struct ks_shm_provider pa, pb;

	ks_copy_provider(c->copy, *(const uint32_t *)a, &pa);
	ks_copy_provider(c->copy, *(const uint32_t *)b, &pb);
	return strcmp(ks_copy_string(c->copy, pa.name_off), ks_copy_string(c->copy, pb.name_off));
}

static int
cmp_stat(const void *a, const void *b, void *arg)
{
	const struct vctx *c = arg;
	struct ks_shm_stat sa, sb;

	ks_copy_stat(c->copy, *(const uint32_t *)a, &sa);
	ks_copy_stat(c->copy, *(const uint32_t *)b, &sb);
	if (sa.provider != sb.provider)
		return sa.provider < sb.provider ? -1 : 1;
	return strcmp(ks_copy_string(c->copy, sa.name_off), ks_copy_string(c->copy, sb.name_off));
}

/* ---------------------------------------------------------------- */
/* Providers and stats                                                */

static int
check_providers(const struct vctx *c)
{
	uint32_t n = c->h->nr_providers;
	uint32_t *idx = malloc(n * sizeof(*idx));
	int rc = 0;

	if (idx == NULL)
		return ks_err(c->err, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		struct ks_shm_provider p;
		char what[32];

		ks_copy_provider(c->copy, i, &p);
		snprintf(what, sizeof(what), "provider %" PRIu32, i);
		rc = check_string(c, what, p.name_off, p.name_len, true);
		idx[i] = i;
	}
	if (rc == 0) {
		qsort_r(idx, n, sizeof(*idx), cmp_provider, (void *)c);
		for (uint32_t i = 1; i < n && rc == 0; i++)
			if (cmp_provider(&idx[i - 1], &idx[i], (void *)c) == 0)
				rc = BAD(c, "segment %s: providers %" PRIu32 " and %" PRIu32 " have the same name",
					 c->name, idx[i - 1], idx[i]);
	}
	free(idx);
	return rc;
}

static int
check_stat(const struct vctx *c, uint32_t i)
{
	struct ks_shm_stat s;
	char what[32];
	int rc;

	ks_copy_stat(c->copy, i, &s);
	snprintf(what, sizeof(what), "stat %" PRIu32, i);
	rc = check_string(c, what, s.name_off, s.name_len, true);
	if (rc < 0)
		return rc;
	if (s.provider >= c->h->nr_providers)
		return BAD(c, "segment %s: stat %" PRIu32 ": provider %u but nr_providers is %" PRIu32,
			   c->name, i, s.provider, c->h->nr_providers);
	if (s.size < 1)
		return BAD(c, "segment %s: stat %" PRIu32 ": size 0", c->name, i);
	/*
	 * A type, unit or base from a later minor version is not an error:
	 * readers skip that stat (ks_stat_known()).  What bucket_size must
	 * be is only defined for the types we know.
	 */
	if (!ks_stat_known(s.type, s.unit, s.base))
		return 0;
	if ((s.bucket_size != 0) != (s.type == KS_TYPE_LINEAR_HIST))
		return BAD(c, "segment %s: stat %" PRIu32 ": bucket_size %" PRIu32 " with type %u (nonzero iff linear histogram)",
			   c->name, i, s.bucket_size, s.type);
	return 0;
}

static int
check_stats(const struct vctx *c)
{
	int rc = 0;

	for (uint32_t i = 0; i < c->h->nr_stats && rc == 0; i++)
		rc = check_stat(c, i);
	return rc;
}

/* ---------------------------------------------------------------- */
/* Targets and rings                                                  */

static int
check_ring(const struct vctx *c, uint32_t t, const struct ks_shm_target *e)
{
	const struct ks_shm_header *h = c->h;
	/* From slot 0 to the end of the last slot; at most 1023 * 2^32 + 2^35. */
	uint64_t bytes = (uint64_t)(h->ring_depth - 1) * e->slot_stride +
			 ks_slot_bytes(e->record_words);

	if (e->slot_stride % KS_SLOT_ALIGN != 0 || e->slot_stride < ks_slot_bytes(e->record_words))
		return BAD(c, "segment %s: target %" PRIu32 ": slot_stride %" PRIu32 " is not a multiple of %d of at least %" PRIu64 " bytes for %" PRIu32 " words",
			   c->name, t, e->slot_stride, KS_SLOT_ALIGN,
			   ks_slot_bytes(e->record_words), e->record_words);
	if (e->ring_off % KS_SLOT_ALIGN != 0)
		return BAD(c, "segment %s: target %" PRIu32 ": ring_off %" PRIu64 " is not %d-byte aligned",
			   c->name, t, e->ring_off, KS_SLOT_ALIGN);
	if (e->ring_off < h->data_off || e->ring_off > h->segment_size ||
	    bytes > h->segment_size - e->ring_off)
		return BAD(c, "segment %s: target %" PRIu32 ": ring [%" PRIu64 ", %" PRIu64 ") outside the data section [%" PRIu64 ", %" PRIu64 ")",
			   c->name, t, e->ring_off,
			   e->ring_off + bytes < e->ring_off ? UINT64_MAX : e->ring_off + bytes,
			   h->data_off, h->segment_size);
	return 0;
}

static int
check_target(const struct vctx *c, uint32_t t, uint64_t *refs)
{
	struct ks_shm_target e;
	char what[48];
	int rc;

	ks_copy_target(c->copy, t, &e);
	if (e.kind > KS_TARGET_KIND_MAX)
		return BAD(c, "segment %s: target %" PRIu32 ": kind %" PRIu32 " unknown", c->name, t, e.kind);
	if ((e.kind == KS_TARGET_VM) != (e.vcpu_index == KS_VCPU_INDEX_NONE))
		return BAD(c, "segment %s: target %" PRIu32 ": vcpu_index %" PRIu32 " does not fit kind %" PRIu32,
			   c->name, t, e.vcpu_index, e.kind);
	snprintf(what, sizeof(what), "target %" PRIu32 " label", t);
	rc = check_string(c, what, e.label_off, e.label_len, false);
	if (rc < 0)
		return rc;
	snprintf(what, sizeof(what), "target %" PRIu32 " id", t);
	rc = check_string(c, what, e.id_off, e.id_len, false);
	if (rc < 0)
		return rc;
	if ((uint64_t)e.stats_first + e.stats_count > c->h->nr_stats)
		return BAD(c, "segment %s: target %" PRIu32 ": stats [%" PRIu32 ", +%" PRIu32 ") beyond the %" PRIu32 " entries of the stat table",
			   c->name, t, e.stats_first, e.stats_count, c->h->nr_stats);
	*refs += e.stats_count;
	if (*refs > KS_STAT_REFS_MAX)
		return BAD(c, "segment %s: targets reference more than %u stats in all",
			   c->name, KS_STAT_REFS_MAX);
	for (uint32_t j = 0; j < e.stats_count; j++) {
		struct ks_shm_stat s;

		ks_copy_stat(c->copy, e.stats_first + j, &s);
		if ((uint64_t)s.value_index + s.size > e.record_words)
			return BAD(c, "segment %s: target %" PRIu32 ": stat %" PRIu32 " values [%" PRIu32 ", +%u) beyond record_words %" PRIu32,
				   c->name, t, e.stats_first + j, s.value_index, s.size, e.record_words);
	}
	return check_ring(c, t, &e);
}

/* Stat names are unique per provider within one target's range. */
static int
check_unique_stats(const struct vctx *c, uint32_t t, uint32_t *idx)
{
	struct ks_shm_target e;
	struct ks_shm_stat s;

	ks_copy_target(c->copy, t, &e);
	for (uint32_t j = 0; j < e.stats_count; j++)
		idx[j] = e.stats_first + j;
	qsort_r(idx, e.stats_count, sizeof(*idx), cmp_stat, (void *)c);
	for (uint32_t j = 1; j < e.stats_count; j++) {
		if (cmp_stat(&idx[j - 1], &idx[j], (void *)c) != 0)
			continue;
		ks_copy_stat(c->copy, idx[j], &s);
		return BAD(c, "segment %s: target %" PRIu32 ": stats %" PRIu32 " and %" PRIu32 " have the same provider and name \"%s\"",
			   c->name, t, idx[j - 1], idx[j], ks_copy_string(c->copy, s.name_off));
	}
	return 0;
}

static int
cmp_range(const void *a, const void *b, void *arg)
{
	const struct vctx *c = arg;
	struct ks_shm_target ta, tb;

	ks_copy_target(c->copy, *(const uint32_t *)a, &ta);
	ks_copy_target(c->copy, *(const uint32_t *)b, &tb);
	if (ta.stats_first != tb.stats_first)
		return ta.stats_first < tb.stats_first ? -1 : 1;
	if (ta.stats_count != tb.stats_count)
		return ta.stats_count < tb.stats_count ? -1 : 1;
	return 0;
}

static int
cmp_ring(const void *a, const void *b, void *arg)
{
	const struct vctx *c = arg;
	struct ks_shm_target ta, tb;

	ks_copy_target(c->copy, *(const uint32_t *)a, &ta);
	ks_copy_target(c->copy, *(const uint32_t *)b, &tb);
	if (ta.ring_off != tb.ring_off)
		return ta.ring_off < tb.ring_off ? -1 : 1;
	return 0;
}

/* Each distinct stat range once: the vCPUs of a VM share theirs. */
static int
check_ranges(const struct vctx *c, uint32_t *tidx, uint32_t max_count)
{
	uint32_t n = c->h->nr_targets;
	uint32_t *sidx = malloc(((size_t)max_count + 1) * sizeof(*sidx));
	int rc = 0;

	if (sidx == NULL)
		return ks_err(c->err, -ENOMEM, "out of memory");
	for (uint32_t t = 0; t < n; t++)
		tidx[t] = t;
	qsort_r(tidx, n, sizeof(*tidx), cmp_range, (void *)c);
	for (uint32_t k = 0; k < n && rc == 0; k++)
		if (k == 0 || cmp_range(&tidx[k - 1], &tidx[k], (void *)c) != 0)
			rc = check_unique_stats(c, tidx[k], sidx);
	free(sidx);
	return rc;
}

/*
 * The data section is exactly ring_depth frames of one slot_stride: every
 * target has that stride, and no two targets' slots 0 share a byte.  With
 * check_ring() (the last slot ends inside the data section) that puts
 * every slot 0 inside frame 0, and frame k is frame 0 moved by k strides:
 * no two slots anywhere share a byte.
 */
static int
check_frames(const struct vctx *c, uint32_t *tidx)
{
	uint32_t n = c->h->nr_targets;
	struct ks_shm_target first;

	ks_copy_target(c->copy, 0, &first);
	for (uint32_t t = 0; t < n; t++) {
		struct ks_shm_target e;

		ks_copy_target(c->copy, t, &e);
		if (e.slot_stride != first.slot_stride)
			return BAD(c, "segment %s: target %" PRIu32 ": slot_stride %" PRIu32 " differs from target 0's %" PRIu32 " (every target's is the frame size)",
				   c->name, t, e.slot_stride, first.slot_stride);
		tidx[t] = t;
	}
	if (c->h->data_size != (uint64_t)c->h->ring_depth * first.slot_stride)
		return BAD(c, "segment %s: data_size %" PRIu64 " is not ring_depth %" PRIu32 " frames of %" PRIu32 " bytes",
			   c->name, c->h->data_size, c->h->ring_depth, first.slot_stride);
	qsort_r(tidx, n, sizeof(*tidx), cmp_ring, (void *)c);
	for (uint32_t k = 1; k < n; k++) {
		struct ks_shm_target a, b;
		uint64_t a_end;

		ks_copy_target(c->copy, tidx[k - 1], &a);
		ks_copy_target(c->copy, tidx[k], &b);
		a_end = a.ring_off + ks_slot_bytes(a.record_words);
		if (a_end > b.ring_off)
			return BAD(c, "segment %s: target %" PRIu32 ": slot [%" PRIu64 ", %" PRIu64 ") overlaps the slot of target %" PRIu32 " at %" PRIu64,
				   c->name, tidx[k - 1], a.ring_off, a_end, tidx[k], b.ring_off);
	}
	return 0;
}

static int
cmp_vcpu(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* At most one VM target; no two vCPUs with one index (what QMP could not show). */
static int
check_kinds(const struct vctx *c, uint32_t *vidx)
{
	uint32_t n = c->h->nr_targets, vms = 0, nv = 0;

	for (uint32_t t = 0; t < n; t++) {
		struct ks_shm_target e;

		ks_copy_target(c->copy, t, &e);
		if (e.kind == KS_TARGET_VM && ++vms > 1)
			return BAD(c, "segment %s: target %" PRIu32 " is a second VM target",
				   c->name, t);
		if (e.kind == KS_TARGET_VCPU)
			vidx[nv++] = e.vcpu_index;
	}
	if (nv > 1)
		qsort(vidx, nv, sizeof(*vidx), cmp_vcpu);
	for (uint32_t k = 1; k < nv; k++)
		if (vidx[k] == vidx[k - 1])
			return BAD(c, "segment %s: two vCPU targets have vcpu_index %" PRIu32,
				   c->name, vidx[k]);
	return 0;
}

static int
check_targets(const struct vctx *c)
{
	uint32_t n = c->h->nr_targets;
	uint32_t *tidx, max_count = 0;
	uint64_t refs = 0;
	int rc = 0;

	for (uint32_t t = 0; t < n && rc == 0; t++) {
		struct ks_shm_target e;

		rc = check_target(c, t, &refs);
		ks_copy_target(c->copy, t, &e);
		if (e.stats_count > max_count)
			max_count = e.stats_count;
	}
	if (rc < 0)
		return rc;
	tidx = malloc((size_t)n * sizeof(*tidx));
	if (tidx == NULL)
		return ks_err(c->err, -ENOMEM, "out of memory");
	rc = check_ranges(c, tidx, max_count);
	if (rc == 0)
		rc = check_frames(c, tidx);
	if (rc == 0)
		rc = check_kinds(c, tidx);
	free(tidx);
	return rc;
}

int
ks_validate_segment(const void *copy, uint64_t copy_len, uint64_t file_size,
		    const char *name, unsigned flags, struct kvmstats_error *err)
{
	const struct ks_shm_header *h = copy;
	struct vctx c = { .copy = copy, .h = h, .name = name, .err = err };
	int rc;

	if (copy_len < sizeof(*h))
		return ks_err(err, -EBADMSG, "segment %s: %" PRIu64 " bytes, shorter than the %zu-byte header",
			      name, copy_len, sizeof(*h));
	rc = ks_validate_header(h, file_size, name, flags, err);
	if (rc < 0)
		return rc;
	if (copy_len != h->data_off)
		return ks_err(err, -EBADMSG, "segment %s: copied %" PRIu64 " bytes of a %" PRIu64 "-byte schema",
			      name, copy_len, h->data_off);
	rc = check_string(&c, "vm_name", h->vm_name_off, h->vm_name_len, true);
	/* Before 1.2 these words are reserved: no meaning, whatever they hold. */
	if (rc == 0 && h->abi_minor >= 2 && h->note_len > 0)
		rc = check_string(&c, "note", h->note_off, h->note_len, false);
	if (rc == 0)
		rc = check_providers(&c);
	if (rc == 0)
		rc = check_stats(&c);
	if (rc == 0)
		rc = check_targets(&c);
	return rc;
}
