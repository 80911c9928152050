/* SPDX-License-Identifier: MIT */
/*
 * engine.h - the publisher engine: sources in, segments out.
 *
 * A VM is a set of targets (the VM and its vCPUs); a target's record is the
 * concatenation of one block per provider ("kvm" first); a block is filled
 * by a source, usually one pread() of a KVM stats fd.  The engine keeps one
 * segment per VM and one poll thread that, every period (absolute deadlines,
 * clock_nanosleep(TIMER_ABSTIME)), sweeps every VM: each source reads
 * straight into its target's next slot, then the VM's sweep number is
 * published.
 *
 * The set of VMs is an RCU list (liburcu QSBR): the poll thread walks it
 * without a lock and is quiescent while it sleeps; VMs are added, replaced
 * (a new segment generation) and removed from other threads under a mutex,
 * and freed with call_rcu() once the poll thread can no longer see them.
 */
#ifndef KVMSTATS_PUBLISHER_ENGINE_H
#define KVMSTATS_PUBLISHER_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstats/types.h"
#include "ks_log.h"
#include "segment_writer.h"

#define KS_HZ_MIN		1
#define KS_HZ_MAX		100000
#define KS_RING_DEPTH_MIN	2
#define KS_RING_DEPTH_MAX	1024
#define KS_RING_DEPTH_DEFAULT	4
/* By default a small VM's ring is deepened until it spans this (segment_writer.h says why). */
#define KS_RING_MIN_BYTES	(512u << 10)
#define KS_NOTE_MAX		1024

/* What a plain pread() source reads at every sweep (ks_source_ops.pread_range). */
struct ks_pread_range {
	int fd;
	uint32_t len;				/* bytes, at most 8 * the block's words */
	uint64_t offset;
};

/*
 * A source fills one block of one target.  read() runs on the poll thread
 * inside an open slot: it writes @words values at @dst (pread() straight
 * into it, or relaxed atomic stores), and returns 0 or a negative errno; on
 * error the engine marks the slot stale and restores the previous values.
 * release() frees the context once the engine is done with it.
 *
 * pread_range() is optional: a source whose read() is nothing but one
 * ks_pread_exact() of a range fixed for its life (a stats fd's data block)
 * fills @out and returns true, and the engine then issues that pread()
 * itself from its own table instead of calling read() (engine.c, "pread
 * sources").  The fd must stay open until release().
 */
struct ks_source_ops {
	int (*read)(void *ctx, _Atomic uint64_t *dst, uint32_t words, uint64_t sweep);
	void (*release)(void *ctx);
	bool (*pread_range)(void *ctx, struct ks_pread_range *out);
};

struct ks_block_def {
	const char *provider;			/* e.g. "kvm" */
	uint32_t nr_stats;
	const struct ks_seg_stat_def *stats;	/* value_index within the block; provider ignored */
	uint32_t words;				/* values in the block */
	const struct ks_source_ops *ops;
	void *ctx;
};

struct ks_target_def {
	enum ks_target_kind kind;
	uint32_t vcpu_index;
	const char *label;
	const char *id;
	uint32_t nr_blocks;
	const struct ks_block_def *blocks;
};

struct ks_vm_def {
	const char *vm_name;			/* e.g. "kvm-1234"; the segment is kvmstats.<vm_name> */
	/*
	 * Where the VM's stats come from when readers should know, above all
	 * why it has no VM target ("no VM stats: ..."): printable text of at
	 * most KS_NOTE_MAX bytes, in the segment for readers (docs/ABI.md 4).
	 * NULL: none.
	 */
	const char *note;
	uint32_t nr_targets;
	const struct ks_target_def *targets;
};

/*
 * How a sweep takes each target's time_ns (stamp.h, docs/ABI.md 6.4).
 * From the TSC only where the kernel trusts it; else, and always with
 * KS_STAMP_CLOCK, a clock read per target.
 */
enum ks_stamp_mode {
	KS_STAMP_AUTO,		/* the TSC for VMs of many targets, where it is cheaper */
	KS_STAMP_CLOCK,		/* a clock read per target */
	KS_STAMP_TSC,		/* the TSC for every VM (tests, benchmarks) */
};

struct ks_engine_config {
	unsigned hz;				/* sweeps per second, KS_HZ_MIN..KS_HZ_MAX */
	unsigned ring_depth;			/* slots per target, at least */
	size_t ring_min_bytes;			/* deepen to span this; 0: ring_depth exactly */
	const char *dir;			/* NULL: $KVMSTATS_SHM_DIR or /dev/shm */
	mode_t mode;				/* segment file mode, e.g. 0640 */
	gid_t gid;				/* (gid_t)-1: the creator's */
	bool keep;				/* leave ended segments in place */
	enum ks_stamp_mode stamp;		/* how each target's time is taken */
	ks_log_fn log;				/* rare events (a truncated segment); NULL: silent */
};

void ks_engine_config_init(struct ks_engine_config *cfg);

struct ks_engine;
struct ks_engine_vm;

int ks_engine_create(const struct ks_engine_config *cfg, struct ks_engine **out,
		     struct kvmstats_error *err);

/* Start the poll thread. */
int ks_engine_start(struct ks_engine *e, struct kvmstats_error *err);

/*
 * ks_engine_add_vm() - make the VM's segment, take a first sample, publish
 * it under its name and add it to the sweep.  The sources' contexts belong
 * to the engine from this call on, whether it succeeds or not.
 */
int ks_engine_add_vm(struct ks_engine *e, const struct ks_vm_def *def,
		     struct ks_engine_vm **out, struct kvmstats_error *err);

/*
 * ks_engine_replace_vm() - a new generation of @old (e.g. vCPU hotplug):
 * the new segment replaces the old one under the same name, and the old
 * one is marked superseded so that its readers re-attach.  -EBUSY while
 * another replacement of @old is under way.
 */
int ks_engine_replace_vm(struct ks_engine *e, struct ks_engine_vm *old,
			 const struct ks_vm_def *def, struct ks_engine_vm **out,
			 struct kvmstats_error *err);

/* ks_engine_remove_vm() - mark the segment ended, unlink it (unless keep). */
void ks_engine_remove_vm(struct ks_engine *e, struct ks_engine_vm *vm);

/*
 * ks_engine_sweep() - one sweep of every VM, on the calling thread, for a
 * caller that drives sweeps itself (tests, a VMM's own loop).  Only while
 * the poll thread is not running.  Return: 0, or -EBUSY if it is.
 */
int ks_engine_sweep(struct ks_engine *e);

/* Counters of the whole engine, for logs and benchmarks. */
struct ks_engine_stats {
	uint64_t sweeps;
	uint64_t overruns;
	uint64_t read_errors;
	uint64_t sweep_ns_total;		/* time spent sweeping */
	uint64_t reseats;			/* damaged segments replaced */
	uint64_t reseat_failures;		/* tries at it that failed */
	bool stamp_tsc;				/* the TSC is used where the mode says (stamp.h) */
	uint64_t stamp_bound_ns;		/* the largest error bound of a TSC-stamped sweep (0: none) */
};
void ks_engine_get_stats(const struct ks_engine *e, struct ks_engine_stats *st);

/* The segment directory of the engine. */
const char *ks_engine_dir(const struct ks_engine *e);

/* The public file name of a VM's segment (valid as long as @vm). */
const char *ks_engine_vm_file(const struct ks_engine_vm *vm);

/* Stop the poll thread (idempotent).  Segments stay live until removed. */
void ks_engine_stop(struct ks_engine *e);

/* Stop, remove every VM (ended), wait for deferred frees; sets *@ep to NULL. */
void ks_engine_destroy(struct ks_engine **ep);

#endif /* KVMSTATS_PUBLISHER_ENGINE_H */
