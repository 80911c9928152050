/* SPDX-License-Identifier: MIT */
/*
 * ks_seqlock.h - the publication protocol of a kvmstats segment.
 *
 * One writer (the publisher's poll thread) and any number of readers in
 * other processes, which map the segment read-only and never write to it.
 * Readers therefore cannot take a lock, cannot make the writer wait, and
 * the writer, a preemptible user-space thread, can be descheduled in the
 * middle of an update at any time.
 *
 * The design is the kernel's seqcount latch (include/linux/seqlock.h,
 * raw_write_seqcount_latch()) generalised from two copies to a ring of
 * ring_depth >= 2 slots per target, plus a segment-wide sweep number:
 *
 *   sweep s of the publisher:
 *       for each target t:
 *           slot = ring(t)[s % ring_depth]
 *           ks_slot_write_begin(slot)        seq becomes odd
 *           write slot->sweep = s, time, flags, values
 *           ks_slot_write_end(slot)          seq becomes even
 *       ks_header_publish_sweep(hdr, s)      header.sweep = s (release)
 *
 *   or, where the targets' times come from the TSC (publisher/core/
 *   stamp.h: a time is known only once the sweep's last clock read is):
 *       for each target t:
 *           ks_slot_write_begin(slot_t)      seq becomes odd
 *           write sweep = s, flags, values, and the TSC value in time_ns
 *       read the clock (the sweep's end)
 *       for each target t:
 *           ks_slot_set_time(slot_t, time)   the TSC value made a time
 *           ks_slot_write_end(slot_t)        seq becomes even
 *       ks_header_publish_sweep(hdr, s)
 *
 *   a reader wanting the newest sample of target t:
 *       s = ks_header_sweep(hdr)             (acquire)
 *       slot = ring(t)[s % ring_depth]
 *       seq = ks_slot_read_begin(slot)       (acquire); odd -> retry
 *       copy sweep, time, flags, values      (relaxed atomic loads; the
 *                                             values: see "The copy")
 *       ks_slot_read_retry(slot, seq)        (acquire fence, reload)
 *       success iff seq unchanged and slot->sweep == s
 *
 * While sweep s+1 is being written, header.sweep still says s, so readers
 * go to a slot the writer is not touching: a writer preempted mid-update
 * never makes a reader spin.  A reader only has to retry when the writer
 * laps the whole ring (ring_depth - 1 further sweeps) during one read,
 * which is why retries are bounded and the ring is deeper than two by
 * default.  Because every target of sweep s carries the stamp s, a reader
 * can take a VM-wide consistent cut (all targets at one sweep), and the
 * ring_depth - 1 slots behind the newest give a short history with
 * timestamps, so rates need no reader-side state.
 *
 * Memory model.  The values are read while they may be concurrently
 * written, so they are _Atomic and accessed with relaxed atomic loads and
 * stores, never memcpy (a plain racing access is undefined behaviour in
 * C11 even if the result is then discarded; "The copy" below is how
 * readers copy many values at once without one).  Ordering comes from two
 * pairs, named at both ends below:
 *
 *   (A) write_end's release store of the even seq  pairs with
 *       read_begin's acquire load: a reader that sees the even value sees
 *       every store of that write.
 *   (B) write_begin's release fence (after the odd store)  pairs with
 *       read_retry's acquire fence (before the reload): if a reader's
 *       relaxed value load saw any store of a newer write, the fences
 *       synchronise and the reload sees that write's odd seq or later, so
 *       the read is retried.  This is the "seqlock reader with acquire
 *       fence" of Boehm, MSPC 2012.
 *
 * On x86-64 every one of these compiles to plain moves plus compiler
 * barriers; the cost of a consistent read is that of the loads.
 *
 * The copy.  A record is 1 KiB and more, and one relaxed load per 8-byte
 * value is several times slower than memcpy(), which no compiler may use
 * on racing data.  So on x86-64 readers copy the values with 16-, 32- or
 * 64-byte vector loads written in inline assembly (ks_section_copy.h),
 * the way the kernel copies seqcount-protected data with plain loads.  The
 * assembly is outside the C abstract machine, so the argument for it is
 * made at the level of the hardware, x86-64's total store order (Intel
 * SDM vol. 3A, 10.2 "Memory ordering"; AMD APM vol. 2, 7.2), with the
 * compiler held to program order around it:
 *
 *   compiler  The copy is one asm volatile statement with a "memory"
 *             clobber: the compiler treats it as reading and writing any
 *             memory, so it keeps it after read_begin's acquire load and
 *             before read_retry's acquire fence and reload, in program
 *             order, and assumes nothing about the bytes it produced.
 *   (A)       No value store of a write W becomes visible after W's even
 *             seq store: stores are not reordered with older stores (TSO),
 *             and the kernel's stores for pread(), which may be one fast
 *             string operation whose stores are NOT in order among
 *             themselves, are still not reordered with other stores (SDM
 *             10.2.4.1, items 1 and 3; see below).  A reader's loads are
 *             not reordered with older loads, and that holds for each of
 *             the accesses a vector load may be made of (SDM 10.2.3.1).  A
 *             reader that loaded the even seq of W therefore loads, in the
 *             copy after it, W's values or newer ones, never older.
 *   (B)       A write W' stores its odd seq before any value (by the same
 *             two rules: a string operation is not reordered with that
 *             older store either).  If any load of the copy returned a
 *             value of W' (or of a later write), the seq reload, a later
 *             load, returns W''s odd seq or a later one, so the seq
 *             differs from the start and the read is retried.
 *
 * Neither half needs the value stores of one write to become visible in
 * any order among themselves, only all of them after its odd seq and
 * before its even one: a read that saw some of W''s stores and not others
 * saw one of them, and (B) retries it.
 *
 * Neither half needs the vector loads to be single-copy atomic: a vector
 * torn between two writes contains a byte of the newer one, which (B)
 * catches like any other.  The only thing the copy must not do is load
 * outside the section, which the compiler side rules out and TSO's load
 * order rules out for the CPU.  On other architectures the relaxed atomic
 * loop is used: there (B) would also need the acquire fence to be a real
 * barrier instruction over the assembly's loads, which C11 compilers do
 * emit (dmb ishld on arm64), but no such machine tests it here.
 * ThreadSanitizer does not see inline assembly, so TSan builds use the
 * relaxed atomic loop as well and check the protocol with every access
 * visible (ks_section_copy.h says what checks the assembly).
 *
 * Open sections may overlap.  A TSC-stamped sweep opens every slot of the
 * sweep before it closes any.  Nothing above needs the writes of different
 * slots to be disjoint: (A) and (B) are per slot, and each fence or
 * release orders all of the writer thread's stores in program order,
 * whichever slot they go to.  So slot t's write_begin fence (B) orders its
 * odd seq before every later store of the thread, the time_ns stored in it
 * at the sweep's end included; its write_end release (A) orders every
 * earlier store, its values and that time_ns included, before its even
 * seq, so a reader that sees the even seq sees the time, never the raw
 * TSC value kept there meanwhile.  (C) ks_header_publish_sweep()'s release
 * store comes after every slot's write_end in program order and pairs with
 * ks_header_sweep()'s acquire load, so a reader that follows the protocol
 * reads a slot of sweep s only after header.sweep says s, when the slot is
 * closed: it never finds a slot of the newest sweep open.  A reader of an
 * older slot the writer has reopened (a history read at depth, a reader
 * lapped) sees an odd or a changed seq and retries, as it would have at
 * the write's first store; the slot only stays odd longer (to the sweep's
 * end rather than the end of its target's read).  While a slot is open its
 * words hold whatever the writer has put there so far: the retry rule
 * throws all of it away.  The copy's argument above is per write as well:
 * a write's stores, wherever they fall among other slots' writes, all
 * follow its odd seq store and precede its even one in program order.
 *
 * The publisher may also fill a slot's values with pread(2) straight from a
 * KVM stats fd.  Those stores are made by the kernel on the writer's behalf
 * between write_begin and write_end, in the writer thread's program order.
 * The kernel's copy_to_user() is a `rep movsb` on CPUs with ERMS or FSRM
 * (Ice Lake has both), a fast string operation: its stores may become
 * visible out of order among themselves (SDM 10.2.4, 10.2.4.1 item 1),
 * but not before an older store or after a younger one (item 3), which is
 * all (A) and (B) use: the release store of write_end orders them as it
 * orders the writer's own stores, and write_begin's odd store precedes them.
 */
#ifndef KVMSTATS_SHM_KS_SEQLOCK_H
#define KVMSTATS_SHM_KS_SEQLOCK_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ks_abi.h"

/* ------------------------------------------------------------------ */
/* Writer side.  Context: one writer per segment, never concurrent.    */

/**
 * ks_slot_write_begin() - open a slot for writing (seq becomes odd).
 * @slot: the slot the current sweep lands in.
 */
static inline void
ks_slot_write_begin(struct ks_shm_slot *slot)
{
	uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_relaxed);

	atomic_store_explicit(&slot->seq, seq + 1, memory_order_relaxed);
	/*
	 * (B) Orders the odd seq store before every data store that follows.
	 * Pairs with the acquire fence in ks_slot_read_retry().
	 */
	atomic_thread_fence(memory_order_release);
}

/**
 * ks_slot_write_end() - close a slot (seq becomes even again).
 * @slot: the slot opened by ks_slot_write_begin().
 */
static inline void
ks_slot_write_end(struct ks_shm_slot *slot)
{
	uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_relaxed);

	/*
	 * (A) Release: every data store of this write (ours, and the
	 * kernel's from pread) is visible before the even value.  Pairs
	 * with the acquire load in ks_slot_read_begin().
	 */
	atomic_store_explicit(&slot->seq, seq + 1, memory_order_release);
}

/**
 * ks_slot_stamp() - set a slot's sweep, time and flags (inside a write).
 */
static inline void
ks_slot_stamp(struct ks_shm_slot *slot, uint64_t sweep, uint64_t time_ns,
	      uint64_t flags)
{
	atomic_store_explicit(&slot->sweep, sweep, memory_order_relaxed);
	atomic_store_explicit(&slot->time_ns, time_ns, memory_order_relaxed);
	atomic_store_explicit(&slot->flags, flags, memory_order_relaxed);
}

/**
 * ks_slot_set_time() - set an open slot's time (inside a write, which
 * ks_slot_write_end() closes after it).
 */
static inline void
ks_slot_set_time(struct ks_shm_slot *slot, uint64_t time_ns)
{
	atomic_store_explicit(&slot->time_ns, time_ns, memory_order_relaxed);
}

/**
 * ks_slot_time() - what the writer stored in a slot's time_ns (the writer
 * only: its own last store, so relaxed is enough).
 */
static inline uint64_t
ks_slot_time(const struct ks_shm_slot *slot)
{
	return atomic_load_explicit((_Atomic uint64_t *)&slot->time_ns, memory_order_relaxed);
}

/**
 * ks_store_words() - copy @n values into a slot (inside a write).
 */
static inline void
ks_store_words(_Atomic uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&dst[i], src[i], memory_order_relaxed);
}

/**
 * ks_copy_words() - copy @n values from one slot to another (inside a
 * write of @dst; @src is a slot this writer wrote earlier, so it is stable).
 */
static inline void
ks_copy_words(_Atomic uint64_t *dst, const _Atomic uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&dst[i],
				      atomic_load_explicit(&src[i], memory_order_relaxed),
				      memory_order_relaxed);
}

/**
 * ks_header_publish_sweep() - make sweep @sweep the newest, after all of
 * its slots have been closed with ks_slot_write_end().
 */
static inline void
ks_header_publish_sweep(struct ks_shm_header *hdr, uint64_t sweep,
			uint64_t heartbeat_ns)
{
	atomic_store_explicit(&hdr->heartbeat_ns, heartbeat_ns, memory_order_relaxed);
	/*
	 * (C) Release: the slot writes of this sweep, every write_end among
	 * them, happen before the new sweep number.  Pairs with the acquire
	 * load in ks_header_sweep(), so a reader that sees @sweep finds its
	 * slots already closed.
	 */
	atomic_store_explicit(&hdr->sweep, sweep, memory_order_release);
}

/* ------------------------------------------------------------------ */
/* Reader side.  Context: any process, read-only mapping, no syscalls.  */

/**
 * ks_header_sweep() - the newest completed sweep (0: none yet).
 */
static inline uint64_t
ks_header_sweep(const struct ks_shm_header *hdr)
{
	/* Pairs with the release store in ks_header_publish_sweep(). */
	return atomic_load_explicit((_Atomic uint64_t *)&hdr->sweep,
				    memory_order_acquire);
}

/**
 * ks_slot_read_begin() - start reading a slot.
 *
 * Return: the sequence to hand to ks_slot_read_retry(); if it is odd, the
 * slot is being written and the caller should go elsewhere or retry.
 */
static inline uint64_t
ks_slot_read_begin(const struct ks_shm_slot *slot)
{
	/* (A) Pairs with the release store in ks_slot_write_end(). */
	return atomic_load_explicit((_Atomic uint64_t *)&slot->seq,
				    memory_order_acquire);
}

/**
 * ks_slot_read_retry() - end a read section.
 * @start: what ks_slot_read_begin() returned.
 *
 * Return: true if the data read since ks_slot_read_begin() may be torn and
 * must be thrown away, false if it is one consistent sample.
 */
static inline bool
ks_slot_read_retry(const struct ks_shm_slot *slot, uint64_t start)
{
	/*
	 * (B) Keeps the relaxed data loads above before the reload below.
	 * Pairs with the release fence in ks_slot_write_begin().
	 */
	atomic_thread_fence(memory_order_acquire);
	return (start & 1) ||
	       atomic_load_explicit((_Atomic uint64_t *)&slot->seq,
				    memory_order_relaxed) != start;
}

/**
 * ks_load_words() - copy @n values out of a slot (inside a read section),
 * one relaxed atomic load each: the portable copy, and TSan's
 * (ks_section_copy() is the fast one).
 */
static inline void
ks_load_words(uint64_t *dst, const _Atomic uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = atomic_load_explicit((_Atomic uint64_t *)&src[i],
					      memory_order_relaxed);
}

/**
 * ks_load_word() - one value out of a slot (inside a read section).
 */
static inline uint64_t
ks_load_word(const _Atomic uint64_t *src)
{
	return atomic_load_explicit((_Atomic uint64_t *)src, memory_order_relaxed);
}

#endif /* KVMSTATS_SHM_KS_SEQLOCK_H */
