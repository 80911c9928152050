/* SPDX-License-Identifier: MIT */
/*
 * kvmstats/types.h - the statistics model shared by every kvmstats API.
 *
 * It is QEMU's model (qapi/stats.json): providers, targets, and per stat a
 * name, type, unit, base and exponent, with histograms.  The numeric values
 * equal the shared-memory ABI's (docs/ABI.md) and KVM's shifted flag values.
 */
#ifndef KVMSTATS_TYPES_H
#define KVMSTATS_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

enum kvmstats_target_kind {
	KVMSTATS_TARGET_VM = 0,
	KVMSTATS_TARGET_VCPU = 1,
};

enum kvmstats_type {
	KVMSTATS_TYPE_CUMULATIVE = 0,	/* only increases */
	KVMSTATS_TYPE_INSTANT = 1,	/* goes up and down */
	KVMSTATS_TYPE_PEAK = 2,		/* only increases */
	KVMSTATS_TYPE_LINEAR_HIST = 3,	/* buckets of bucket_size */
	KVMSTATS_TYPE_LOG_HIST = 4,	/* one bucket per power of two */
};

enum kvmstats_unit {
	KVMSTATS_UNIT_NONE = 0,		/* a plain number or counter */
	KVMSTATS_UNIT_BYTES = 1,
	KVMSTATS_UNIT_SECONDS = 2,
	KVMSTATS_UNIT_CYCLES = 3,
	KVMSTATS_UNIT_BOOLEAN = 4,
};

enum kvmstats_state {
	KVMSTATS_STATE_BUILDING = 0,
	KVMSTATS_STATE_LIVE = 1,
	KVMSTATS_STATE_ENDED = 2,
	KVMSTATS_STATE_SUPERSEDED = 3,
	KVMSTATS_STATE_INVALID = 4,	/* not in a segment: see kvmstats_status() */
};

/*
 * Names as QMP spells them: "vm"/"vcpu"; "cumulative", "instant", "peak",
 * "linear-histogram", "log2-histogram"; NULL for KVMSTATS_UNIT_NONE, else
 * "bytes", "seconds", "cycles", "boolean"; "building", "live", "ended",
 * "superseded", "invalid".  Out-of-range values give NULL.
 */
const char *kvmstats_target_kind_name(unsigned kind);
const char *kvmstats_type_name(unsigned type);
const char *kvmstats_unit_name(unsigned unit);
const char *kvmstats_state_name(unsigned state);

/*
 * kvmstats_error - what went wrong, for the caller to print.
 * @code: a negative errno value (0: no error).
 * @msg: one line that says what is wrong and, where it can, what to do.
 */
struct kvmstats_error {
	int code;
	char msg[512];
};

#ifdef __cplusplus
}
#endif

#endif /* KVMSTATS_TYPES_H */
