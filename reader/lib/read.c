/* SPDX-License-Identifier: MIT */
/*
 * read.c - the wait-free reads: no system call, no lock, no allocation.
 *
 * Each read follows ks_seqlock.h: load header.sweep (acquire), go to that
 * sweep's slot, read it inside a seqlock section, and accept it only if
 * the section was clean and the slot is stamped with the sweep wanted.
 * Otherwise the publisher lapped the ring meanwhile: take the newer sweep
 * and try again, at most KVMSTATS_READ_RETRIES times.
 *
 * Addresses come only from the private ring table (reader/schema.c); a
 * sweep loaded from shared memory selects a slot modulo the private ring
 * depth, so even a hostile value stays inside the ring.
 */
#include <errno.h>
#include <stdbool.h>
#include <time.h>

#include "ks_reader.h"
#include "ks_section_copy.h"
#include "ks_seqlock.h"
#include "ks_time.h"

/* A slot read that failed; the caller decides whether to retry. */
#define SLOT_MISS	1

/* The ring index of @sweep: a mask where the depth allows, as it does by default. */
static inline uint64_t
slot_index(const struct kvmstats_segment *seg, uint64_t sweep)
{
	return seg->ring_mask ? sweep & seg->ring_mask : ks_slot_of_sweep(sweep, seg->ring_depth);
}

static inline const struct ks_shm_slot *
slot_at(const struct ks_ring *r, uint64_t idx)
{
	return (const struct ks_shm_slot *)(r->ring + idx * r->stride);
}

/*
 * read_section() - words [first, first + n) of the slot at @idx, if it
 * holds sweep @sweep.  Inlined into every read, with @how and @n often
 * constant, so the read is the seqlock's loads and the copy, nothing more.
 * Return: 0 with @dst and @smp (if not NULL) filled, or SLOT_MISS (being
 * written, overwritten by a later sweep, or never written).
 */
static inline __attribute__((always_inline)) int
read_section(enum ks_copy how, const struct ks_shm_slot *slot, uint64_t sweep,
	     uint32_t first, uint32_t n, uint64_t *dst, struct kvmstats_sample *smp)
{
	uint64_t seq, stamp, time_ns, flags;

	seq = ks_slot_read_begin(slot);
	if (seq & 1)
		return SLOT_MISS;
	stamp = ks_load_word(&slot->sweep);
	time_ns = ks_load_word(&slot->time_ns);
	flags = ks_load_word(&slot->flags);
	if (n == 1)
		dst[0] = ks_load_word(&slot->values[first]);
	else
		ks_section_copy(how, dst, slot->values + first, n);
	if (ks_slot_read_retry(slot, seq) || stamp != sweep)
		return SLOT_MISS;
	if (smp != NULL) {
		smp->sweep = stamp;
		smp->time_ns = time_ns;
		smp->flags = (flags & KS_SLOT_STALE) ? KVMSTATS_SAMPLE_STALE : 0;
		smp->retries = 0;
	}
	return 0;
}

static inline __attribute__((always_inline)) int
read_slot(const struct kvmstats_segment *seg, const struct ks_ring *r, uint64_t sweep,
	  uint32_t first, uint32_t n, uint64_t *dst, struct kvmstats_sample *smp)
{
	return read_section(seg->copy, slot_at(r, slot_index(seg, sweep)), sweep, first, n,
			    dst, smp);
}

/*
 * Why a read found no sample: after a truncation the mapping is zeros
 * (ks_sigbus.h), which reads as "no sample yet" or as a missed slot.
 * Off the hot path: only a read that failed asks.
 */
static int
failed(const struct kvmstats_segment *seg, int rc)
{
	return atomic_load_explicit(&seg->faulted, memory_order_relaxed) ? -EIO : rc;
}

/*
 * The guess.  A fresh read takes two line transfers, one after the
 * other: header.sweep's, then the slot's, whose address waits for
 * header.sweep's value.  But a reader that reads every sweep, or every
 * few, can tell where the next read will likely land: if its last two
 * reads each moved on by 1 to KS_GUESS_AHEAD sweeps, the next one will
 * likely find a sweep between the smaller and the larger of those two
 * steps ahead; if both steps were the same, exactly that step ahead.  A
 * read prefetches the lines it will load of those slots (seq and stamp,
 * and its values) before it loads header.sweep, and the transfers
 * overlap.  A read of one value prefetches each slot of the range; a read
 * of more (a record, a histogram) only the one slot of a steady step, as
 * a record's 18 lines in each of several slots would take more line
 * transfers than the read saves.
 *
 * Nothing the read uses comes from a prefetch: the protocol
 * (read_section()) runs as it would without one, on the slot header.sweep
 * names, so a wrong or stale guess only moves lines.  The slots
 * prefetched are the ring's (slot_at()), whatever the guess's sweeps say.
 * The guess is the thread's, for one segment at a time: a thread that
 * reads two segments in turn has it off.
 *
 * The guess is off while the reads do not move on that way.  A reader
 * faster than the publisher would prefetch the next slot while the
 * publisher writes it, pulling its lines away from the writer; a much
 * slower one would prefetch slots long overwritten.  On, it costs the
 * prefetches of slots the publisher had not reached: it later writes
 * those lines after taking them back from this reader's cache.  A reader
 * that reads every sweep prefetches one slot, the one it then reads.
 */
#define KS_GUESS_AHEAD	4

/*
 * Initial-exec: one load off the thread pointer, where a warm read is ~10 ns.
 * A program that dlopen()s the library later gets these 24 bytes from
 * glibc's reserve of static TLS, which is there for such libraries.
 */
static _Thread_local struct ks_sweep_guess guess __attribute__((tls_model("initial-exec")));

/* The lines of words [first, first + n) of @slot, and of its seq and stamp. */
static inline __attribute__((always_inline)) void
prefetch_slot(const struct ks_shm_slot *slot, uint32_t first, uint32_t n)
{
	/* The end, not the last word: a record of no words (n 0) is valid. */
	uintptr_t line = (uintptr_t)&slot->values[first] & ~(uintptr_t)(KS_CACHELINE - 1);
	uintptr_t end = (uintptr_t)&slot->values[first + n];

	__builtin_prefetch(slot);
	for (; line < end; line += KS_CACHELINE)
		__builtin_prefetch((const void *)line);
}

static inline __attribute__((always_inline)) void
prefetch_guess(const struct kvmstats_segment *seg, const struct ks_ring *r, uint32_t first,
	       uint32_t n)
{
	if (guess.hi == 0 || guess.seg != seg || (n > 1 && guess.lo != guess.hi))
		return;
	for (uint64_t k = guess.lo; k <= guess.hi && k < seg->ring_depth; k++)
		prefetch_slot(slot_at(r, slot_index(seg, guess.last + k)), first, n);
}

/* After a read of @sweep in @seg. */
static inline __attribute__((always_inline)) void
learn_guess(const struct kvmstats_segment *seg, uint64_t sweep)
{
	/* Unsigned: the same sweep, or an older one, is no step at all. */
	uint32_t now = sweep - guess.last - 1 < KS_GUESS_AHEAD ? (uint32_t)(sweep - guess.last) : 0;

	if (guess.seg != seg)
		now = 0;
	if (now && guess.step) {
		guess.lo = (uint16_t)(now < guess.step ? now : guess.step);
		guess.hi = (uint16_t)(now > guess.step ? now : guess.step);
	} else {
		guess.lo = guess.hi = 0;
	}
	guess.step = now;
	guess.last = sweep;
	guess.seg = seg;
}

struct ks_sweep_guess
ks_read_guess(void)
{
	return guess;
}

void
ks_read_guess_off(void)
{
	guess.lo = guess.hi = 0;
}

/*
 * The newest sample of one target, retrying while the publisher laps us.
 * Inlined into each public read, so that a read is one call.
 */
static inline __attribute__((always_inline)) int
read_newest(const struct kvmstats_segment *seg, const struct ks_ring *r, uint32_t first,
	    uint32_t n, uint64_t *dst, struct kvmstats_sample *smp)
{
	prefetch_guess(seg, r, first, n);
	for (uint32_t tries = 0; tries < KVMSTATS_READ_RETRIES; tries++) {
		uint64_t sweep = ks_header_sweep(seg->hdr);

		if (sweep == 0)
			return failed(seg, -ENODATA);
		if (read_slot(seg, r, sweep, first, n, dst, smp) == 0) {
			learn_guess(seg, sweep);
			smp->retries = tries;
			return 0;
		}
	}
	return failed(seg, -EAGAIN);
}

/* A handle is used only if its info really is one of its target's stats. */
static const struct ks_ring *
handle_ring(const struct kvmstats_segment *seg, const struct kvmstats_stat_handle *h)
{
	const struct ks_ring *r;

	if (h == NULL || h->target >= seg->nr_targets)
		return NULL;
	r = &seg->rings[h->target];
	if (h->info < seg->stats + r->stats_first ||
	    h->info >= seg->stats + r->stats_first + r->stats_count)
		return NULL;
	return r;
}

int
kvmstats_read_values(const struct kvmstats_segment *seg, const struct kvmstats_stat_handle *h,
		     uint64_t *values, size_t n, struct kvmstats_sample *sample)
{
	const struct ks_ring *r;
	struct kvmstats_sample local;

	CHECK_SEGMENT(seg);
	r = handle_ring(seg, h);
	if (r == NULL || values == NULL || n < h->info->size)
		return -EINVAL;
	return read_newest(seg, r, h->info->value_index, h->info->size, values,
			   sample != NULL ? sample : &local);
}

int
kvmstats_read_scalar(const struct kvmstats_segment *seg, const struct kvmstats_stat_handle *h,
		     uint64_t *value, struct kvmstats_sample *sample)
{
	const struct ks_ring *r;
	struct kvmstats_sample local;

	CHECK_SEGMENT(seg);
	r = handle_ring(seg, h);
	/* A histogram is not a scalar: read its buckets with read_values. */
	if (r == NULL || value == NULL || h->info->size != 1)
		return -EINVAL;
	return read_newest(seg, r, h->info->value_index, 1, value,
			   sample != NULL ? sample : &local);
}

int
kvmstats_read_record(const struct kvmstats_segment *seg, unsigned target, uint64_t *values,
		     size_t n, struct kvmstats_sample *sample)
{
	struct kvmstats_sample local;
	const struct ks_ring *r;

	CHECK_SEGMENT(seg);
	if (target >= seg->nr_targets || values == NULL)
		return -EINVAL;
	r = &seg->rings[target];
	if (n < r->words)
		return -EINVAL;
	return read_newest(seg, r, 0, r->words, values, sample != NULL ? sample : &local);
}

size_t
kvmstats_cut_words(const struct kvmstats_segment *seg)
{
	CHECK_SEGMENT(seg);
	return seg->cut_words;
}

/*
 * Every target at @sweep; SLOT_MISS as soon as one target misses.  The
 * loop keeps what it needs in locals: each copy is an asm statement that
 * may write any memory, as far as the compiler knows, so fields read
 * through @seg would be loaded again for every target.
 */
static int
read_cut_at(const struct kvmstats_segment *seg, uint64_t sweep, uint64_t *values,
	    struct kvmstats_sample *samples)
{
	const struct ks_ring *r = seg->rings, *end = r + seg->nr_targets;
	uint64_t idx = slot_index(seg, sweep);
	enum ks_copy how = seg->copy;

	for (; r < end; r++, samples = samples != NULL ? samples + 1 : NULL)
		if (read_section(how, slot_at(r, idx), sweep, 0, r->words,
				 values + r->cut_offset, samples) != 0)
			return SLOT_MISS;
	return 0;
}

int
kvmstats_read_cut(const struct kvmstats_segment *seg, uint64_t *values, size_t n,
		  struct kvmstats_sample *samples)
{
	CHECK_SEGMENT(seg);
	if (values == NULL || n < seg->cut_words)
		return -EINVAL;
	for (uint32_t tries = 0; tries < KVMSTATS_READ_RETRIES; tries++) {
		uint64_t sweep = ks_header_sweep(seg->hdr);

		if (sweep == 0)
			return failed(seg, -ENODATA);
		/* One target lapped: the whole cut moves to a newer sweep. */
		if (read_cut_at(seg, sweep, values, samples) != 0)
			continue;
		for (uint32_t t = 0; samples != NULL && t < seg->nr_targets; t++)
			samples[t].retries = tries;
		return 0;
	}
	return failed(seg, -EAGAIN);
}

int
kvmstats_read_history(const struct kvmstats_segment *seg, unsigned target, unsigned nsamples,
		      uint64_t *values, size_t n, struct kvmstats_sample *samples,
		      unsigned *got)
{
	struct kvmstats_sample first, older;
	const struct ks_ring *r;
	unsigned want, k;
	int rc;

	CHECK_SEGMENT(seg);
	if (got != NULL)
		*got = 0;
	if (target >= seg->nr_targets || values == NULL || got == NULL)
		return -EINVAL;
	r = &seg->rings[target];
	/* More than ring_depth sweeps are never in the ring at once. */
	want = nsamples < seg->ring_depth ? nsamples : seg->ring_depth;
	if (want == 0)
		return 0;
	if (n / want < r->words)
		return -EINVAL;
	rc = read_newest(seg, r, 0, r->words, values, &first);
	if (rc < 0)
		return rc;
	if (samples != NULL)
		samples[0] = first;
	/* Older sweeps, consecutive: stop at the first one already gone. */
	for (k = 1; k < want && first.sweep > k; k++) {
		if (read_slot(seg, r, first.sweep - k, 0, r->words,
			      values + (size_t)k * r->words, &older) != 0)
			break;
		if (samples != NULL)
			samples[k] = older;
	}
	*got = k;
	return 0;
}

void
kvmstats_status(const struct kvmstats_segment *seg, struct kvmstats_status *st)
{
	const struct ks_shm_header *h;
	uint32_t state;

	CHECK_SEGMENT(seg);
	h = seg->hdr;
	/*
	 * Acquire: pairs with the release store in ks_segment_set_state(),
	 * so ENDED is seen only with the final sweeps before it.
	 */
	state = atomic_load_explicit((_Atomic uint32_t *)&h->state, memory_order_acquire);
	/*
	 * After publishing, a publisher writes only LIVE, ENDED, SUPERSEDED:
	 * anything else (BUILDING included) is damage, or the zeros of a
	 * truncated mapping.  Never pass an undefined value on.
	 */
	if (state < KS_STATE_LIVE || state > KS_STATE_SUPERSEDED ||
	    atomic_load_explicit(&seg->faulted, memory_order_relaxed))
		state = KVMSTATS_STATE_INVALID;
	st->state = (enum kvmstats_state)state;
	st->sweep = ks_header_sweep(h);
	st->heartbeat_ns = atomic_load_explicit((_Atomic uint64_t *)&h->heartbeat_ns,
						memory_order_relaxed);
	st->overruns = atomic_load_explicit((_Atomic uint64_t *)&h->overruns,
					    memory_order_relaxed);
	st->read_errors = atomic_load_explicit((_Atomic uint64_t *)&h->read_errors,
					       memory_order_relaxed);
}

uint64_t
kvmstats_now_ns(void)
{
	/* CLOCK_MONOTONIC is served by the vDSO on x86-64: no system call. */
	return ks_mono_ns();
}
