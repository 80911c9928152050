/* SPDX-License-Identifier: MIT */
/*
 * kvmstats/reader.h - read KVM statistics that a kvmstats publisher shares.
 *
 * A reader attaches to a segment (one per VM), which maps it read-only and
 * validates all of it once: every offset, count and string.  From then on
 * the schema lives in private memory, and every read function below is
 * wait-free for the publisher and makes no system call: it loads from the
 * mapping and nothing else.
 *
 *	struct kvmstats_segment *seg;
 *	struct kvmstats_error err;
 *	struct kvmstats_stat_handle exits;
 *	uint64_t v;
 *
 *	if (kvmstats_attach("kvm-1234", NULL, &seg, &err) < 0)
 *		errx(1, "%s", err.msg);
 *	if (kvmstats_stat_lookup(seg, 1, "kvm", "exits", &exits) < 0)
 *		errx(1, "no such stat");
 *	for (;;)
 *		if (kvmstats_read_scalar(seg, &exits, &v, NULL) == 0)
 *			use(v);
 *	kvmstats_detach(&seg);
 *
 * Thread safety: a segment handle may be read from many threads at once;
 * attach, detach and reattach need the caller's exclusion.  What a read
 * keeps between calls (where a thread's next read of one target will
 * likely land, to prefetch it: libkvmstats(3)) is per thread, and only a
 * hint.
 *
 * Handles: every function that takes a segment checks that it is one that
 * is attached.  NULL, a detached handle or a pointer to anything else is
 * a bug in the caller, and the function aborts the program with a message
 * on stderr that names it, rather than read through a bad pointer.  Bad
 * input (names, segments, other arguments) is never a reason to abort: it
 * is an error return.
 */
#ifndef KVMSTATS_READER_H
#define KVMSTATS_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstats/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where segments live when nothing else is said: $KVMSTATS_SHM_DIR, else this. */
#define KVMSTATS_DEFAULT_DIR		"/dev/shm"
#define KVMSTATS_SEGMENT_PREFIX		"kvmstats."
/* A VM name is at most this many bytes (kvmstats_segment_file_name()). */
#define KVMSTATS_VM_NAME_MAX		128

/* Bounded retries of one read before it gives up with -EAGAIN. */
#define KVMSTATS_READ_RETRIES		64

#define KVMSTATS_OWNER_DEFAULT		((uid_t)-1)	/* root, or the caller's own uid */

struct kvmstats_segment;

/*
 * kvmstats_attach_opts - how to attach.
 * @dir: directory of the segments; NULL: $KVMSTATS_SHM_DIR or /dev/shm.
 * @owner: the uid that must own the segment file.  KVMSTATS_OWNER_DEFAULT
 *	accepts root or the caller's own uid: /dev/shm is world-writable, so
 *	anybody could plant a segment under a VM's name.
 */
struct kvmstats_attach_opts {
	const char *dir;
	uid_t owner;
};

void kvmstats_attach_opts_init(struct kvmstats_attach_opts *opts);

/*
 * kvmstats_segment_file_name() - the file name of a VM's segment.
 * @vm: a VM name ("kvm-1234"), a segment file name ("kvmstats.kvm-1234") or
 *	a POSIX shm name ("/kvmstats.kvm-1234").
 *
 * Return: 0, or -EINVAL if the VM part is not a name every reader can
 * address: empty, longer than KVMSTATS_VM_NAME_MAX bytes, containing '/',
 * starting with '.', or not printable text (invalid UTF-8, control or
 * bidirectional formatting characters); or if it does not fit in @len bytes.
 */
int kvmstats_segment_file_name(const char *vm, char *buf, size_t len);

/*
 * kvmstats_attach() - map and validate a VM's segment.
 * @vm: as for kvmstats_segment_file_name().
 * @opts: NULL for the defaults.
 *
 * The segment stays mapped, and its file open (one descriptor per handle,
 * close-on-exec), until kvmstats_detach().  The first attach in a process
 * installs a SIGBUS handler that keeps a segment truncated under its
 * mapping from killing the process (it chains to any handler installed
 * before it; see kvmstats_status()).
 *
 * Return: 0 with *@segp set; or a negative errno with @err filled:
 * -EINVAL @vm is not a VM name, -ENOENT no such segment, -EACCES not
 * readable, or writable by group or others (who could truncate it),
 * -EPERM owned by another uid than expected, -ELOOP a symbolic link,
 * -EPROTO incompatible ABI, -EBADMSG corrupt or short segment, -EIO
 * truncated while being attached, -EAGAIN not ready yet (a publisher still
 * building it, or one that died while building it).
 */
int kvmstats_attach(const char *vm, const struct kvmstats_attach_opts *opts,
		    struct kvmstats_segment **segp, struct kvmstats_error *err);

/* kvmstats_detach() - unmap and free; sets *@segp to NULL. */
void kvmstats_detach(struct kvmstats_segment **segp);

/*
 * kvmstats_reattach() - attach again to the segment now under the same
 * name (after KVMSTATS_STATE_SUPERSEDED), replacing *@segp.  On error
 * *@segp is left as it was.  Handles from the old segment are invalid
 * after success: look stats up again.
 */
int kvmstats_reattach(struct kvmstats_segment **segp, struct kvmstats_error *err);

/*
 * kvmstats_follow() - for a reader that stays attached: if the segment's
 * name now belongs to another file (a newer generation, after
 * KVMSTATS_HEALTH_SUPERSEDED; a restarted publisher, after
 * KVMSTATS_HEALTH_DEAD) and that file attaches, switch to it.  Makes
 * system calls: call it when kvmstats_liveness() says something is wrong,
 * or now and then, not per read.
 *
 * Return: 1 switched (*@segp is the new segment, the old handle is freed:
 * look stats up again, and reset rate baselines if kvmstats_info()'s
 * incarnation or generation changed); 0 nothing to follow (the name still
 * belongs to this file, or is gone); or a negative errno from attaching
 * the new file, with @err filled and *@segp left as it was.
 */
int kvmstats_follow(struct kvmstats_segment **segp, struct kvmstats_error *err);

/*
 * kvmstats_enumerate() - call @cb with the file name of every segment in
 * @dir (NULL: the default), in name order.  A non-zero return from @cb
 * stops the walk and is returned.
 */
int kvmstats_enumerate(const char *dir,
		       int (*cb)(const char *segment_file, void *arg), void *arg,
		       struct kvmstats_error *err);

/* ---- the segment -------------------------------------------------- */

struct kvmstats_segment_info {
	const char *segment_file;	/* "kvmstats.kvm-1234" */
	const char *vm_name;		/* "kvm-1234" */
	pid_t publisher_pid;
	uid_t owner;
	unsigned abi_major, abi_minor;
	uint64_t incarnation;		/* CLOCK_REALTIME ns of the publisher's start */
	uint64_t generation;
	uint64_t created_mono_ns;
	uint64_t poll_period_ns;
	uint64_t segment_size;
	unsigned ring_depth;
	unsigned nr_providers, nr_targets, nr_stats;
};

const struct kvmstats_segment_info *kvmstats_info(const struct kvmstats_segment *seg);

/*
 * kvmstats_note() - what the publisher says about where the VM's stats
 * come from, above all why it has no VM target ("no VM stats: ..."), as
 * printable text; "" when it says nothing (and for segments of ABI < 1.2).
 * Lives as long as @seg.  Since libkvmstats 1.1 (symbol node KVMSTATS_1.1).
 */
const char *kvmstats_note(const struct kvmstats_segment *seg);

/*
 * The publisher's live fields, read without a syscall.  @state is
 * KVMSTATS_STATE_INVALID when the state word holds no value a publisher
 * writes after publishing (the segment was damaged after attach), or when
 * the file was truncated under the mapping: then every read returns -EIO.
 */
struct kvmstats_status {
	enum kvmstats_state state;
	uint64_t sweep;			/* newest completed sweep, 0: none */
	uint64_t heartbeat_ns;		/* CLOCK_MONOTONIC ns of that sweep's end */
	uint64_t overruns;
	uint64_t read_errors;
};

void kvmstats_status(const struct kvmstats_segment *seg, struct kvmstats_status *st);

/* CLOCK_MONOTONIC in ns (vDSO, no syscall on x86-64 Linux). */
uint64_t kvmstats_now_ns(void);

/*
 * ---- is the publisher there? ------------------------------------------
 *
 * What the values of a segment are worth now, by one rule for every
 * reader (docs/ABI.md section 11).
 */
enum kvmstats_health {
	KVMSTATS_HEALTH_LIVE = 0,	/* sweeping: the values are current */
	KVMSTATS_HEALTH_STALE = 1,	/* its publisher runs, but has not swept for
					   stale_after_ns: stopped, starved or stuck */
	KVMSTATS_HEALTH_DEAD = 2,	/* its publisher is gone without ending it
					   (killed, crashed): the values are its last */
	KVMSTATS_HEALTH_ENDED = 3,	/* ended by its publisher: the values are final */
	KVMSTATS_HEALTH_SUPERSEDED = 4,	/* a newer segment has its name: kvmstats_follow() */
	KVMSTATS_HEALTH_BROKEN = 5,	/* KVMSTATS_STATE_INVALID: detach */
};

/*
 * A live segment is stale once its heartbeat is older than this many poll
 * periods: a reader may look just before a sweep ends (one period), and a
 * publisher that missed two or three deadlines in a row (overruns) is
 * still working ...
 */
#define KVMSTATS_STALE_PERIODS		4
/*
 * ... and than this: at high rates a period is microseconds, and an
 * ordinary (SCHED_OTHER) thread on a busy host can wait tens to hundreds
 * of milliseconds for a CPU without being stuck.  A second is well above
 * that, and still shows a stopped publisher to a person at once.
 */
#define KVMSTATS_STALE_MIN_NS		1000000000ull

struct kvmstats_liveness {
	enum kvmstats_health health;
	uint64_t age_ns;		/* since the newest sweep ended (since the segment
					   was made, before the first) */
	uint64_t stale_after_ns;	/* the age from which a live segment is stale */
	int lock;			/* the publisher's liveness lock: 1 held, 0 not,
					   -1 not known (an ABI 1.0 segment has none) */
};

/*
 * kvmstats_liveness() - judge @seg now.  A live segment whose liveness
 * lock nobody holds is DEAD (ABI 1.1: the kernel drops the lock when the
 * publisher exits, however it exits); one whose heartbeat is older than
 * max(KVMSTATS_STALE_PERIODS * poll period, KVMSTATS_STALE_MIN_NS) is
 * STALE.  Makes one system call (fcntl) for a live segment: for a display
 * refresh or a scrape, not per read.  Return: 0, or -EINVAL.
 */
int kvmstats_liveness(const struct kvmstats_segment *seg, struct kvmstats_liveness *lv);

/* "live", "stale", "dead", "ended", "superseded", "broken"; NULL out of range. */
const char *kvmstats_health_name(unsigned health);

/*
 * ---- the schema (private copies, validated at attach) ---------------
 *
 * A stat whose type, unit or base this library does not know (added by a
 * later ABI minor version) is skipped: no count, enumeration or lookup
 * below shows it.  Its values stay in the target's record (record_words,
 * cut offsets and kvmstats_read_record() are unchanged), undescribed.
 */

struct kvmstats_provider_info {
	unsigned index;
	const char *name;		/* "kvm" */
};

struct kvmstats_target_info {
	unsigned index;
	enum kvmstats_target_kind kind;
	uint32_t vcpu_index;		/* UINT32_MAX for the VM target */
	const char *label;		/* e.g. a QOM path; never NULL */
	const char *id;			/* source id, e.g. "kvm-1234/vcpu-0"; may be "" */
	unsigned nr_stats;
	uint32_t record_words;		/* u64 values in one record */
	size_t cut_offset;		/* where this target starts in a cut */
};

struct kvmstats_stat_info {
	const char *name;
	unsigned provider;
	const char *provider_name;
	enum kvmstats_type type;
	enum kvmstats_unit unit;
	unsigned base;			/* 10 or 2 */
	int exponent;
	uint32_t size;			/* values: 1, or the number of buckets */
	uint32_t bucket_size;		/* linear histograms, else 0 */
	uint32_t value_index;		/* first value within the target's record */
};

unsigned kvmstats_nr_providers(const struct kvmstats_segment *seg);
const struct kvmstats_provider_info *kvmstats_provider(const struct kvmstats_segment *seg,
							unsigned i);
/* Return: the provider's index, or -ENOENT. */
int kvmstats_provider_lookup(const struct kvmstats_segment *seg, const char *name);

unsigned kvmstats_nr_targets(const struct kvmstats_segment *seg);
const struct kvmstats_target_info *kvmstats_target(const struct kvmstats_segment *seg,
						    unsigned i);
/*
 * kvmstats_target_lookup() - find a target by label, by id, or for vCPUs
 * by index given as a decimal string.  Return: its index, or -ENOENT.
 */
int kvmstats_target_lookup(const struct kvmstats_segment *seg,
			   enum kvmstats_target_kind kind, const char *what);

/* The @j-th stat of target @t, in the publisher's order (NULL if out of range). */
const struct kvmstats_stat_info *kvmstats_target_stat(const struct kvmstats_segment *seg,
						      unsigned t, unsigned j);

/* Look a stat up once, then read through the handle. */
struct kvmstats_stat_handle {
	unsigned target;
	const struct kvmstats_stat_info *info;
};

/*
 * kvmstats_stat_lookup() - @provider may be NULL (any provider).
 * Return: 0, or -ENOENT.
 */
int kvmstats_stat_lookup(const struct kvmstats_segment *seg, unsigned target,
			 const char *provider, const char *name,
			 struct kvmstats_stat_handle *h);

/* ---- reads: no syscalls, no locks, no waiting on the publisher ------ */

/* What a read returns besides the values. */
struct kvmstats_sample {
	uint64_t sweep;			/* the publisher's sweep number */
	uint64_t time_ns;		/* CLOCK_MONOTONIC ns the sample was taken */
	uint32_t flags;			/* KVMSTATS_SAMPLE_STALE */
	uint32_t retries;		/* reads thrown away before this one */
};
#define KVMSTATS_SAMPLE_STALE	1u	/* source read failed: values repeat the sample before */

/*
 * All reads return 0, or: -ENODATA no sample published yet; -EAGAIN no
 * consistent sample within KVMSTATS_READ_RETRIES (the publisher lapped the
 * ring during every try, or a slot of the newest sweep stays half-written:
 * retry, or deepen the ring); -EIO the file was truncated under the
 * mapping (its data is gone: detach); -EINVAL bad argument (handle or
 * target out of range, buffer too small).  @sample may be NULL.
 */
int kvmstats_read_scalar(const struct kvmstats_segment *seg,
			 const struct kvmstats_stat_handle *h, uint64_t *value,
			 struct kvmstats_sample *sample);

/* A stat's h->info->size values (histogram buckets), n >= size. */
int kvmstats_read_values(const struct kvmstats_segment *seg,
			 const struct kvmstats_stat_handle *h, uint64_t *values,
			 size_t n, struct kvmstats_sample *sample);

/* A target's whole record, n >= record_words. */
int kvmstats_read_record(const struct kvmstats_segment *seg, unsigned target,
			 uint64_t *values, size_t n, struct kvmstats_sample *sample);

/* Words needed for a cut: the sum of every target's record_words. */
size_t kvmstats_cut_words(const struct kvmstats_segment *seg);

/*
 * kvmstats_read_cut() - every target as of one sweep: target t's record at
 * values + kvmstats_target(seg, t)->cut_offset.  @samples, if not NULL, has
 * kvmstats_nr_targets() entries, one per target (same sweep, own times).
 */
int kvmstats_read_cut(const struct kvmstats_segment *seg, uint64_t *values,
		      size_t n, struct kvmstats_sample *samples);

/*
 * kvmstats_read_history() - up to @nsamples most recent records of one
 * target, newest first: record k at values + k * record_words, described by
 * samples[k].  The ring gives at most ring_depth - 1 guaranteed samples.
 * *@got is set to how many were read (consecutive sweeps, none skipped).
 */
int kvmstats_read_history(const struct kvmstats_segment *seg, unsigned target,
			  unsigned nsamples, uint64_t *values, size_t n,
			  struct kvmstats_sample *samples, unsigned *got);

#ifdef __cplusplus
}
#endif

#endif /* KVMSTATS_READER_H */
