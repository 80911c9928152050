/* SPDX-License-Identifier: MIT */
/*
 * ks_validate.h - check a segment completely before trusting any of it.
 *
 * The bytes come from another process (a bug, a crash mid-way, or anybody
 * able to plant a file with the right owner), so every offset, count,
 * string and enum is checked, with 64-bit arithmetic that cannot wrap, and
 * a failure is an error with a message naming the field, never a crash.
 * The one exception is a stat's type, unit or base: a value this reader
 * does not know comes from a later minor version and is not an error; such
 * a stat passes every other check and readers skip it (ks_stat_known()).
 *
 * Validation runs on a private copy of [0, data_off): header and schema
 * never change after the ready gate opens, but a copy is what makes it
 * impossible for a later store in the shared mapping to change what was
 * checked.  Readers compute every address from that copy only.
 */
#ifndef KVMSTATS_SHM_KS_VALIDATE_H
#define KVMSTATS_SHM_KS_VALIDATE_H

#include <stdint.h>
#include <string.h>

#include "kvmstats/types.h"
#include "ks_abi.h"

/* Bounds on what a sane segment holds (far above any real VM). */
#define KS_SCHEMA_MAX		(256u << 20)	/* bytes in [0, data_off) */
#define KS_PROVIDERS_MAX	65535u
#define KS_TARGETS_MAX		65536u
#define KS_STATS_MAX		(1u << 22)	/* entries in the stat table */
#define KS_STAT_REFS_MAX	(1u << 24)	/* sum of stats_count over targets */
#define KS_RING_DEPTH_LIMIT	1024u

/* ks_validate_*() flags */
#define KS_VALIDATE_UNPUBLISHED	(1u << 0)	/* publisher's self-check: ready may be 0 */

/*
 * ks_header_snapshot() - copy the 256-byte header out of a mapping, the
 * atomic fields with atomic loads (the publisher may be storing to them).
 */
void ks_header_snapshot(struct ks_shm_header *dst, const struct ks_shm_header *src);

/*
 * ks_validate_header() - check the header alone (a private copy).
 * @file_size: st_size of the segment file.
 * @name: the segment's file name, for messages.
 *
 * Return: 0; -EPROTO incompatible ABI or byte order; -EAGAIN not ready;
 * -EBADMSG anything else wrong.  @err says which field.
 */
int ks_validate_header(const struct ks_shm_header *hdr, uint64_t file_size,
		       const char *name, unsigned flags, struct kvmstats_error *err);

/*
 * ks_validate_segment() - check header and schema completely.
 * @copy: private, 8-byte aligned copy of the segment's [0, data_off).
 * @copy_len: its length, which must equal the header's data_off.
 *
 * Return: as for ks_validate_header().
 */
int ks_validate_segment(const void *copy, uint64_t copy_len, uint64_t file_size,
			const char *name, unsigned flags, struct kvmstats_error *err);

/* ---- reading a validated copy: entries may be larger than we know ---- */

static inline void
ks_copy_provider(const void *copy, uint32_t i, struct ks_shm_provider *p)
{
	const struct ks_shm_header *h = copy;

	memcpy(p, (const uint8_t *)copy + h->providers_off +
	       (uint64_t)i * h->provider_entry_size, sizeof(*p));
}

static inline void
ks_copy_target(const void *copy, uint32_t i, struct ks_shm_target *t)
{
	const struct ks_shm_header *h = copy;

	memcpy(t, (const uint8_t *)copy + h->targets_off +
	       (uint64_t)i * h->target_entry_size, sizeof(*t));
}

static inline void
ks_copy_stat(const void *copy, uint32_t i, struct ks_shm_stat *s)
{
	const struct ks_shm_header *h = copy;

	memcpy(s, (const uint8_t *)copy + h->stats_off +
	       (uint64_t)i * h->stat_entry_size, sizeof(*s));
}

/* A string of the string table; only for references already validated. */
static inline const char *
ks_copy_string(const void *copy, uint32_t off)
{
	const struct ks_shm_header *h = copy;

	return (const char *)copy + h->strings_off + off;
}

#endif /* KVMSTATS_SHM_KS_VALIDATE_H */
