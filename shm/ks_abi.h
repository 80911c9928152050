/* SPDX-License-Identifier: MIT */
/*
 * ks_abi.h - the kvmstats shared-memory segment layout, ABI 1.1.
 *
 * This header is the C rendering of docs/ABI.md; the document is the
 * authority, this file must agree with it byte for byte.  Both sides use it:
 * the publisher writes a segment with these structs, the reader library
 * validates a mapped segment against them.
 *
 * Segment = header | schema section | data section.
 *
 *   [0, header_size)            struct ks_shm_header
 *   [header_size, data_off)     schema: provider table, target table, stat
 *                               table, string table (each at its own offset)
 *   [data_off, segment_size)    data: ring_depth frames; frame k holds slot k
 *                               of every target (one ring per target, interleaved)
 *
 * Everything except the header's "hot" fields and the slots is written once,
 * before the ready gate opens, and never changes afterwards.  All integers
 * are in the publisher's native byte order (header.endian tells which).
 */
#ifndef KVMSTATS_SHM_KS_ABI_H
#define KVMSTATS_SHM_KS_ABI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmstats/types.h"

/*
 * Cross-process atomics must be lock-free (and so address-free): a lock
 * hidden inside an atomic would be per process and protect nothing.
 */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "_Atomic uint64_t must be 8 bytes");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "_Atomic uint32_t must be 4 bytes");

#define KS_ABI_MAGIC		"KVMSTATS"	/* 8 bytes, no NUL */
#define KS_ABI_MAGIC_LEN	8
#define KS_ABI_MAJOR		1	/* incompatible layout change */
/*
 * Compatible additions.  1.1: the publisher holds a liveness lock on the
 * file (ks_liveness.h) and every string is printable text (ks_text.h).
 */
#define KS_ABI_MINOR		2
#define KS_ABI_ENDIAN		0x01020304u
#define KS_READY_MAGIC		0x59444552u	/* "REDY" little-endian */

#define KS_CACHELINE		64
#define KS_DATA_ALIGN		4096	/* data_off is page aligned */
#define KS_SLOT_ALIGN		64	/* slot_stride and ring_off are multiples */

/* Segment state (header.state). */
enum ks_shm_state {
	KS_STATE_BUILDING = 0,	/* never seen by readers of a renamed segment */
	KS_STATE_LIVE = 1,	/* publisher running, sweeps advancing */
	KS_STATE_ENDED = 2,	/* the VM or the publisher ended; data is final */
	KS_STATE_SUPERSEDED = 3,/* a newer segment took this name: re-attach */
};

/* Target kinds (target.kind); the QMP StatsTarget values. */
enum ks_target_kind {
	KS_TARGET_VM = 0,
	KS_TARGET_VCPU = 1,
};
#define KS_TARGET_KIND_MAX	KS_TARGET_VCPU
#define KS_VCPU_INDEX_NONE	UINT32_MAX	/* target.vcpu_index of a VM target */

/* Stat types: same numbers as KVM_STATS_TYPE_* >> KVM_STATS_TYPE_SHIFT. */
enum ks_stat_type {
	KS_TYPE_CUMULATIVE = 0,
	KS_TYPE_INSTANT = 1,
	KS_TYPE_PEAK = 2,
	KS_TYPE_LINEAR_HIST = 3,
	KS_TYPE_LOG_HIST = 4,
};
#define KS_TYPE_MAX		KS_TYPE_LOG_HIST

/* Stat units: same numbers as KVM_STATS_UNIT_* >> KVM_STATS_UNIT_SHIFT. */
enum ks_stat_unit {
	KS_UNIT_NONE = 0,
	KS_UNIT_BYTES = 1,
	KS_UNIT_SECONDS = 2,
	KS_UNIT_CYCLES = 3,
	KS_UNIT_BOOLEAN = 4,
};
#define KS_UNIT_MAX		KS_UNIT_BOOLEAN

/* stat.base holds the number itself: 10 or 2. */
#define KS_BASE_POW10		10
#define KS_BASE_POW2		2

/*
 * ks_stat_known() - does this reader know what a stat's values mean?
 *
 * A later 1.x minor version may define new types (another histogram kind),
 * units or bases, as KVM does for its descriptors.  Readers skip a stat
 * they do not know instead of refusing the segment, the rule QEMU applies
 * to KVM's descriptors, so that old readers keep working and just do not
 * show it.  Only the meaning is unknown: such a stat still passes every
 * check on its layout (name, provider, size, value range), because a
 * broken entry is a broken segment whatever its type.
 */
static inline bool
ks_stat_known(uint8_t type, uint8_t unit, uint8_t base)
{
	return type <= KS_TYPE_MAX && unit <= KS_UNIT_MAX &&
	       (base == KS_BASE_POW10 || base == KS_BASE_POW2);
}

/* slot.flags */
#define KS_SLOT_STALE		(1u << 0)	/* source read failed: values repeat the previous sample */

/*
 * Header: 256 bytes, four 64-byte lines.  Lines 0-2 are written once
 * (state rarely); line 3 is written every sweep and is kept apart so that
 * readers scanning the schema do not share a line with the writer's hottest
 * stores.
 */
struct ks_shm_header {
	/* line 0: identity */
	char magic[KS_ABI_MAGIC_LEN];	/*   0 "KVMSTATS" */
	uint16_t abi_major;		/*   8 */
	uint16_t abi_minor;		/*  10 */
	uint32_t header_size;		/*  12 bytes of header the publisher wrote (>= 256) */
	_Atomic uint32_t ready;		/*  16 KS_READY_MAGIC once complete; release store, last */
	uint32_t endian;		/*  20 KS_ABI_ENDIAN in native order */
	uint64_t segment_size;		/*  24 total bytes; equals the file size */
	int32_t publisher_pid;		/*  32 in the publisher's PID namespace */
	uint32_t flags;			/*  36 0: none defined in 1.x */
	uint64_t incarnation;		/*  40 CLOCK_REALTIME ns when the publisher started */
	uint64_t generation;		/*  48 1, 2, ... per VM within one incarnation */
	uint64_t created_mono_ns;	/*  56 CLOCK_MONOTONIC ns when this segment was made */

	/* line 1: layout of the schema section */
	uint64_t poll_period_ns;	/*  64 the publisher's sweep period */
	uint32_t ring_depth;		/*  72 slots per target, >= 2 */
	uint32_t nr_providers;		/*  76 */
	uint32_t nr_targets;		/*  80 */
	uint32_t nr_stats;		/*  84 entries in the stat table */
	uint32_t providers_off;		/*  88 from segment start */
	uint32_t targets_off;		/*  92 */
	uint32_t stats_off;		/*  96 */
	uint32_t strings_off;		/* 100 */
	uint32_t strings_size;		/* 104 */
	uint16_t provider_entry_size;	/* 108 >= sizeof(struct ks_shm_provider) */
	uint16_t target_entry_size;	/* 110 >= sizeof(struct ks_shm_target) */
	uint16_t stat_entry_size;	/* 112 >= sizeof(struct ks_shm_stat) */
	uint16_t reserved0;		/* 114 */
	uint32_t vm_name_off;		/* 116 string: the VM's name, e.g. "kvm-1234" */
	uint64_t data_off;		/* 120 from segment start, multiple of 4096 */

	/* line 2: data section and lifecycle */
	uint64_t data_size;		/* 128 data_off + data_size == segment_size */
	uint32_t vm_name_len;		/* 136 */
	_Atomic uint32_t state;		/* 140 enum ks_shm_state */
	uint32_t note_off;		/* 144 (1.2) string: the publisher's note on the VM's sources */
	uint32_t note_len;		/* 148 (1.2) 0: no note (note_off is then ignored) */
	uint64_t reserved1[5];		/* 152 */

	/* line 3: hot, written every sweep */
	_Atomic uint64_t sweep;		/* 192 last completed sweep, 0 = none yet */
	_Atomic uint64_t heartbeat_ns;	/* 200 CLOCK_MONOTONIC ns at the end of that sweep */
	_Atomic uint64_t overruns;	/* 208 sweep deadlines the publisher missed (publisher-wide) */
	_Atomic uint64_t read_errors;	/* 216 source reads that failed (slots marked stale) */
	uint64_t reserved2[4];		/* 224 */
};

/* Provider table entry: the provider's index is its id. */
struct ks_shm_provider {
	uint32_t name_off;		/*  0 into the string table */
	uint32_t name_len;		/*  4 bytes, without the NUL */
	uint32_t reserved[2];		/*  8 */
};

/* Target table entry: one per VM or vCPU. */
struct ks_shm_target {
	uint32_t kind;			/*  0 enum ks_target_kind */
	uint32_t vcpu_index;		/*  4 vCPU id; KS_VCPU_INDEX_NONE for the VM */
	uint32_t label_off;		/*  8 label, e.g. a QOM path */
	uint32_t label_len;		/* 12 */
	uint32_t id_off;		/* 16 source id, e.g. "kvm-1234/vcpu-0" */
	uint32_t id_len;		/* 20 */
	uint32_t stats_first;		/* 24 first entry in the stat table */
	uint32_t stats_count;		/* 28 entries that describe this target */
	uint32_t record_words;		/* 32 u64 values per slot */
	uint32_t slot_stride;		/* 36 bytes from one slot to the next: the frame */
	uint64_t ring_off;		/* 40 first slot (in frame 0), from segment start */
	uint64_t reserved[2];		/* 48 */
};

/* Stat table entry: one statistic's schema and where its values live. */
struct ks_shm_stat {
	uint32_t name_off;		/*  0 */
	uint32_t name_len;		/*  4 */
	uint16_t provider;		/*  8 index into the provider table */
	uint8_t type;			/* 10 enum ks_stat_type */
	uint8_t unit;			/* 11 enum ks_stat_unit */
	uint8_t base;			/* 12 10 or 2 */
	uint8_t reserved0;		/* 13 */
	int16_t exponent;		/* 14 value scale: unit * base^exponent */
	uint16_t size;			/* 16 number of u64 values (buckets) */
	uint16_t reserved1;		/* 18 */
	uint32_t bucket_size;		/* 20 linear histograms only, else 0 */
	uint32_t value_index;		/* 24 first value, in u64 from slot values[0] */
	uint32_t reserved2;		/* 28 */
};

/*
 * Slot: one sample of one target.  The protocol on seq is in ks_seqlock.h
 * and docs/ABI.md.  values[] follows the 32-byte slot header directly, so a
 * record's first four values share the slot header's cache line.
 */
struct ks_shm_slot {
	_Atomic uint64_t seq;		/*  0 odd while the publisher writes the slot */
	_Atomic uint64_t sweep;		/*  8 the sweep this sample belongs to */
	_Atomic uint64_t time_ns;	/* 16 CLOCK_MONOTONIC ns when its read ended (ABI.md 6.4) */
	_Atomic uint64_t flags;		/* 24 KS_SLOT_* */
	_Atomic uint64_t values[];	/* 32 record_words values */
};

_Static_assert(sizeof(struct ks_shm_header) == 256, "header is 256 bytes");
_Static_assert(offsetof(struct ks_shm_header, ready) == 16, "ready at 16");
_Static_assert(offsetof(struct ks_shm_header, poll_period_ns) == 64, "line 1 at 64");
_Static_assert(offsetof(struct ks_shm_header, data_off) == 120, "data_off at 120");
_Static_assert(offsetof(struct ks_shm_header, data_size) == 128, "line 2 at 128");
_Static_assert(offsetof(struct ks_shm_header, state) == 140, "state at 140");
_Static_assert(offsetof(struct ks_shm_header, note_off) == 144, "note_off at 144");
_Static_assert(offsetof(struct ks_shm_header, sweep) == 192, "line 3 at 192");
_Static_assert(sizeof(struct ks_shm_provider) == 16, "provider entry is 16 bytes");
_Static_assert(sizeof(struct ks_shm_target) == 64, "target entry is 64 bytes");
_Static_assert(offsetof(struct ks_shm_target, ring_off) == 40, "ring_off at 40");
_Static_assert(sizeof(struct ks_shm_stat) == 32, "stat entry is 32 bytes");
_Static_assert(offsetof(struct ks_shm_stat, value_index) == 24, "value_index at 24");
_Static_assert(sizeof(struct ks_shm_slot) == 32, "slot header is 32 bytes");

/* The public enums (kvmstats/types.h) are the ABI's numbers, one for one. */
_Static_assert(KS_STATE_BUILDING == (int)KVMSTATS_STATE_BUILDING &&
	       KS_STATE_LIVE == (int)KVMSTATS_STATE_LIVE &&
	       KS_STATE_ENDED == (int)KVMSTATS_STATE_ENDED &&
	       KS_STATE_SUPERSEDED == (int)KVMSTATS_STATE_SUPERSEDED, "states");
_Static_assert(KS_TARGET_VM == (int)KVMSTATS_TARGET_VM &&
	       KS_TARGET_VCPU == (int)KVMSTATS_TARGET_VCPU, "target kinds");
_Static_assert(KS_TYPE_CUMULATIVE == (int)KVMSTATS_TYPE_CUMULATIVE &&
	       KS_TYPE_INSTANT == (int)KVMSTATS_TYPE_INSTANT &&
	       KS_TYPE_PEAK == (int)KVMSTATS_TYPE_PEAK &&
	       KS_TYPE_LINEAR_HIST == (int)KVMSTATS_TYPE_LINEAR_HIST &&
	       KS_TYPE_LOG_HIST == (int)KVMSTATS_TYPE_LOG_HIST, "stat types");
_Static_assert(KS_UNIT_NONE == (int)KVMSTATS_UNIT_NONE &&
	       KS_UNIT_BYTES == (int)KVMSTATS_UNIT_BYTES &&
	       KS_UNIT_SECONDS == (int)KVMSTATS_UNIT_SECONDS &&
	       KS_UNIT_CYCLES == (int)KVMSTATS_UNIT_CYCLES &&
	       KS_UNIT_BOOLEAN == (int)KVMSTATS_UNIT_BOOLEAN, "stat units");

/* Bytes one slot needs for record_words values, before rounding to KS_SLOT_ALIGN. */
static inline uint64_t
ks_slot_bytes(uint32_t record_words)
{
	return sizeof(struct ks_shm_slot) + (uint64_t)record_words * sizeof(uint64_t);
}

/* The slot a sweep lands in: sweeps are numbered from 1, slots from 0. */
static inline uint32_t
ks_slot_of_sweep(uint64_t sweep, uint32_t ring_depth)
{
	return (uint32_t)(sweep % ring_depth);
}

#endif /* KVMSTATS_SHM_KS_ABI_H */
