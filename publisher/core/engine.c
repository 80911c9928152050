/* SPDX-License-Identifier: MIT */
/*
 * engine.c - the poll thread and the registry of published VMs.
 *
 * Concurrency (see engine.h for the model):
 *
 *   e->vms      RCU list, singly linked through vm->next.  Walked by the
 *               poll thread only, lock-free, inside its QSBR online periods,
 *               with acquire loads; changed by the control threads under
 *               e->lock with release stores, which publish a fully built VM
 *               (rcu_assign_pointer() in C11 terms, so that ThreadSanitizer
 *               sees the ordering too).  A removed VM keeps its next
 *               pointer, so a sweep standing on it walks on correctly.
 *   e->retired  VMs taken out of e->vms, waiting for call_rcu(), linked
 *               through vm->retired_next (never through vm->next, which a
 *               sweep may still be following).  QSBR asks
 *               the caller of call_rcu() to be a registered, online RCU
 *               thread; the only such thread is the poll thread, so control
 *               threads queue retired VMs here (under e->lock) and the poll
 *               thread hands them to call_rcu() at the start of its next
 *               sweep.  The hot loop pays one relaxed load of
 *               e->retired_pending per sweep for this, not a lock.
 *   vm->sweep   owned by whichever thread sweeps the VM: the control thread
 *               for the first sample (before the VM is visible), the poll
 *               thread afterwards.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>

#include <urcu-qsbr.h>

#include "dir_check.h"
#include "engine.h"
#include "ks_err.h"
#include "ks_sanitizers.h"
#include "ks_seqlock.h"
#include "ks_shmdir.h"
#include "ks_sigbus.h"
#include "ks_text.h"
#include "ks_time.h"
#include "pread_exact.h"
#include "prefetch_write.h"
#include "stamp.h"

/* How often every segment is checked for damage that faults nobody. */
#define CHECK_PERIOD_NS		(1000 * 1000 * 1000ull)
/* The longest wait between two tries at replacing a damaged segment. */
#define RETRY_MAX_NS		(60 * CHECK_PERIOD_NS)
/*
 * Schema bytes a sweep compares at most: 1/16 byte per ns of period (64
 * KiB at 1 kHz), so that the compare (several bytes per ns) takes well
 * under a hundredth of the period; 64 KiB at least.
 */
#define CHECK_BUDGET_MIN	(64 * 1024ull)

/*
 * VMs of fewer targets are stamped with a clock read per target.  After a
 * pread() an rdtscp costs about 20 ns and a clock read 30-40, so a TSC
 * stamp saves 10-15 ns per target, and the two clock pairs of a sweep
 * (stamp.h) cost about 150 ns: bench_publisher's "ring + clock" and "ring
 * + TSC" rows cross between 12 and 16 vCPUs on a 2.6 GHz Xeon.
 */
#define STAMP_TSC_MIN_TARGETS	16

/* The poll thread checks for stop at least this often, even at 1 Hz. */
#define STOP_CHECK_NS		(50 * 1000 * 1000ull)

/*
 * ThreadSanitizer cannot see a grace period (liburcu waits with futexes
 * and volatile accesses), so under TSan the poll thread's quiescent states
 * release a token that call_rcu() callbacks acquire: the happens-before
 * edge the grace period really provides.
 */
#if KS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* One token for all engines: the callback must not read vm->e before it. */
static char grace_token;
#define grace_release(e)	((void)(e), __tsan_release(&grace_token))
#define grace_acquire(e)	((void)(e), __tsan_acquire(&grace_token))
#else
#define grace_release(e)	((void)(e))
#define grace_acquire(e)	((void)(e))
#endif

/*
 * pread sources.  A sweep writes some 2 KiB per target (the kernel's copy
 * in, ours out), so at 64 targets and more it has pushed out of L1 all
 * that it read of the previous sweep's metadata by the time it comes
 * round again.  What a target's read needs is therefore kept in the two
 * arrays below, walked front to back (the hardware prefetchers follow
 * that), rather than behind each source's context: for a source that is
 * a plain pread() (ks_source_ops.pread_range), the block holds the fd and
 * range and the sweep issues the pread() itself.  Measured with
 * bench_publisher against the same protocol written out inline: the
 * engine added 6-7% at 64 vCPUs and 17% at 256 before, 3-4.5% and
 * 10-11.5% after.
 */
struct engine_block {
	struct ks_pread_range direct;		/* fd -1: call ops->read() */
	uint32_t first_word;
	uint32_t words;
	const struct ks_source_ops *ops;
	void *ctx;
};

struct engine_target {
	uint32_t nr_blocks;
	uint32_t slot_off;			/* of its slot, from the start of a frame */
	uint32_t slot_bytes;			/* header and record, not the padding */
	struct engine_block *blocks;		/* in vm->blocks */
};

struct ks_engine_vm {
	_Atomic(struct ks_engine_vm *) next;	/* in e->vms */
	struct ks_engine_vm *retired_next;	/* in e->retired, under e->lock */
	struct rcu_head rcu;
	struct ks_engine *e;
	struct ks_segment_writer *seg;		/* swapped only under e->lock, by the sweeping thread */
	char *file;				/* public name, for the life of the VM */
	bool replacing;				/* under e->lock: a new generation is being made */
	bool reseat_failing;			/* under e->lock: the last reseat() failed */
	uint64_t check_cursor;			/* under e->lock: ks_segment_check()'s */
	uint64_t next_check_ns;			/* under e->lock: when it is checked next */
	uint64_t retry_ns;			/* under e->lock: wait after a failed reseat */
	uint32_t nr_targets;
	struct engine_target *targets;
	/*
	 * Every target's blocks, in target order, in one allocation: the
	 * sweep walks them front to back, as it walks the frame.
	 */
	struct engine_block *blocks;
	uint64_t sweep;				/* last published */
	uint64_t generation;
	enum ks_shm_state final_state;		/* ENDED or SUPERSEDED, set on retire */
};

struct ks_engine {
	struct ks_engine_config cfg;
	char *dir;
	uint64_t period_ns;
	uint64_t incarnation;

	pthread_mutex_t lock;			/* control side: vms and retired */
	_Atomic(struct ks_engine_vm *) vms;
	struct ks_engine_vm *retired;
	atomic_bool retired_pending;

	pthread_t thread;
	atomic_bool running;
	atomic_bool stop;

	/* Written under e->lock; peeked at without it by check_segments(). */
	_Atomic uint64_t bus_seen;		/* ks_bus_faults() last seen */
	_Atomic uint64_t next_check_ns;		/* the soonest VM check due */
	uint64_t check_budget;			/* schema bytes compared per sweep at most */

	_Atomic uint64_t sweeps;
	_Atomic uint64_t overruns;
	_Atomic uint64_t read_errors;
	_Atomic uint64_t sweep_ns_total;
	_Atomic uint64_t reseats;
	_Atomic uint64_t reseat_failures;

	uint32_t stamp_min_targets;		/* VMs this large are stamped from the TSC */
	atomic_bool stamp_tsc;			/* the TSC is trusted; false once it went backwards */
	_Atomic uint64_t stamp_bound_ns;	/* the largest ks_stamp_bound() of a sweep */
};

static void
relaxed_add(_Atomic uint64_t *p, uint64_t v)
{
	atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

void
ks_engine_config_init(struct ks_engine_config *cfg)
{
	*cfg = (struct ks_engine_config) {
		.hz = 100,
		.ring_depth = KS_RING_DEPTH_DEFAULT,
		.ring_min_bytes = KS_RING_MIN_BYTES,
		.dir = NULL,
		.mode = 0640,
		.gid = (gid_t)-1,
		.keep = false,
		.stamp = KS_STAMP_AUTO,
		.log = NULL,
	};
}

/* ---- one sweep ----------------------------------------------------------- */

/*
 * A source failed: the slot keeps the previous sample's values (or zeros
 * before the first one) and is stamped stale, so a reader never sees the
 * half-written bytes of a failed pread().
 */
static void
restore_block(const struct ks_segment_writer *seg, uint32_t t, uint64_t sweep,
	      struct ks_shm_slot *slot, const struct engine_block *b)
{
	if (sweep > 1) {
		const struct ks_shm_slot *prev = ks_segment_slot(seg, t, sweep - 1);

		ks_copy_words(slot->values + b->first_word,
			      prev->values + b->first_word, b->words);
	} else {
		for (uint32_t i = 0; i < b->words; i++)
			atomic_store_explicit(&slot->values[b->first_word + i], 0,
					      memory_order_relaxed);
	}
}

/*
 * Frame @idx: slot @idx of every target (docs/ABI.md section 6).  Every
 * target of a sweep lands in the same frame, so the sweep computes sweep %
 * ring_depth (a 64-bit division) once rather than once per target.
 */
static inline uint8_t *
frame_at(const struct ks_engine_vm *vm, uint32_t idx)
{
	const struct ks_writer_target *wt = &vm->seg->targets[0];

	return wt->ring + (uint64_t)idx * wt->stride;
}

static inline struct ks_shm_slot *
slot_in(uint8_t *frame, const struct engine_target *et)
{
	return (struct ks_shm_slot *)(frame + et->slot_off);
}

/*
 * Where each target's slot lies in a frame, from @vm->seg (set and
 * replaced by the sweeping thread).  A replacement segment is a clone,
 * laid out from the same schema, so this is only ever recomputed to the
 * same values; the writer lays every segment out in frames, and a segment
 * that is not is refused rather than written out of place.
 */
static int
plan_slots(struct ks_engine_vm *vm)
{
	const struct ks_writer_target *wt = vm->seg->targets;

	for (uint32_t t = 0; t < vm->nr_targets; t++) {
		if (wt[t].stride != wt[0].stride || wt[t].ring < wt[0].ring ||
		    (uint64_t)(wt[t].ring - wt[0].ring) + ks_slot_bytes(wt[t].words) >
		    wt[0].stride)
			return -EINVAL;
		vm->targets[t].slot_off = (uint32_t)(wt[t].ring - wt[0].ring);
		vm->targets[t].slot_bytes = (uint32_t)ks_slot_bytes(wt[t].words);
	}
	return 0;
}

static inline int
read_block(const struct engine_block *blk, struct ks_shm_slot *slot, uint64_t sweep)
{
	_Atomic uint64_t *dst = slot->values + blk->first_word;

	if (blk->direct.fd >= 0)
		return ks_pread_exact(blk->direct.fd, (void *)dst, blk->direct.len,
				      blk->direct.offset);
	return blk->ops->read(blk->ctx, dst, blk->words, sweep);
}

/*
 * Read target @t into @slot.  With @tsc the slot is left open holding the
 * TSC value of the read's end in time_ns, for close_slots() to turn into
 * the time at the sweep's end; else it is stamped with a clock read and
 * closed.
 */
static uint64_t
sweep_target(struct ks_engine_vm *vm, uint32_t t, uint64_t sweep, struct ks_shm_slot *slot,
	     bool tsc)
{
	const struct engine_target *et = &vm->targets[t];
	uint64_t flags = 0, errors = 0;

	ks_slot_write_begin(slot);
	for (uint32_t b = 0; b < et->nr_blocks; b++) {
		const struct engine_block *blk = &et->blocks[b];

		if (read_block(blk, slot, sweep) < 0) {
			restore_block(vm->seg, t, sweep, slot, blk);
			flags |= KS_SLOT_STALE;
			errors++;
		}
	}
	if (tsc) {
		ks_slot_stamp(slot, sweep, ks_tsc_read(), flags);
		return errors;
	}
	ks_slot_stamp(slot, sweep, ks_mono_ns(), flags);
	ks_slot_write_end(slot);
	return errors;
}

/*
 * The end of a TSC-stamped sweep, pair @p1 read after every target's read
 * and @p0 before them: give each slot of the sweep its time and close it.
 * A TSC that did not advance across the sweep is not one to use: the
 * times are still within the sweep (ks_stamp_interp() clamps), and every
 * sweep after this one reads the clock per target.
 */
static void
close_slots(struct ks_engine *e, struct ks_engine_vm *vm, uint8_t *frame,
	    const struct ks_clock_pair *p0, const struct ks_clock_pair *p1)
{
	uint64_t bound = ks_stamp_bound(p0, p1), seen;

	for (uint32_t t = 0; t < vm->nr_targets; t++) {
		struct ks_shm_slot *slot = slot_in(frame, &vm->targets[t]);

		ks_slot_set_time(slot, ks_stamp_interp(ks_slot_time(slot), p0, p1));
		ks_slot_write_end(slot);
	}
	if (p1->tsc <= p0->tsc) {
		/* Every time is one of the sweep's ends: off by up to the sweep. */
		bound += p1->mono - p0->mono;
		if (atomic_exchange_explicit(&e->stamp_tsc, false, memory_order_relaxed))
			ks_logf(e->cfg.log, "the TSC did not advance across a sweep (%llu, then "
				"%llu): time stamps come from a clock read per target from now on",
				(unsigned long long)p0->tsc, (unsigned long long)p1->tsc);
	}
	seen = atomic_load_explicit(&e->stamp_bound_ns, memory_order_relaxed);
	while (bound > seen && !atomic_compare_exchange_weak_explicit(&e->stamp_bound_ns, &seen,
			bound, memory_order_relaxed, memory_order_relaxed))
		;
}

/*
 * Ask for ownership of target @t's slot of @sweep before writing it.  A
 * reader that read this slot when it was the newest (ring_depth - 1 sweeps
 * ago) still holds its lines shared, so every store of the coming pread()
 * would wait for an invalidation of the other core's copy, one line at a
 * time as the copy reaches it.  Requests issued one target ahead overlap
 * those round trips with the current target's read.
 */
static inline void
prefetch_slot_for_write(const struct ks_engine_vm *vm, uint32_t t, const uint8_t *frame)
{
	if (t < vm->nr_targets)		/* the slot, not the frame */
		ks_prefetch_for_write(frame + vm->targets[t].slot_off, vm->targets[t].slot_bytes);
}

static void
sweep_vm(struct ks_engine *e, struct ks_engine_vm *vm)
{
	struct ks_shm_header *hdr = vm->seg->hdr;
	uint64_t sweep = vm->sweep + 1, errors = 0, end_ns;
	uint8_t *frame = frame_at(vm, ks_slot_of_sweep(sweep, vm->seg->ring_depth));
	bool tsc = vm->nr_targets >= e->stamp_min_targets &&
		   atomic_load_explicit(&e->stamp_tsc, memory_order_relaxed);
	struct ks_clock_pair p0, p1;

	if (tsc)
		ks_clock_pair_read(&p0);
	prefetch_slot_for_write(vm, 0, frame);
	for (uint32_t t = 0; t < vm->nr_targets; t++) {
		prefetch_slot_for_write(vm, t + 1, frame);
		errors += sweep_target(vm, t, sweep, slot_in(frame, &vm->targets[t]), tsc);
	}
	if (tsc) {
		ks_clock_pair_read(&p1);
		close_slots(e, vm, frame, &p0, &p1);
		end_ns = p1.last_ns;
	} else {
		end_ns = ks_mono_ns();
	}
	if (errors) {
		relaxed_add(&e->read_errors, errors);
		/* Single writer: a plain relaxed update, no read-modify-write needed. */
		atomic_store_explicit(&hdr->read_errors,
			atomic_load_explicit(&hdr->read_errors, memory_order_relaxed) + errors,
			memory_order_relaxed);
	}
	atomic_store_explicit(&hdr->overruns,
			      atomic_load_explicit(&e->overruns, memory_order_relaxed),
			      memory_order_relaxed);
	ks_header_publish_sweep(hdr, sweep, end_ns);
	vm->sweep = sweep;
}

/* ---- freeing, after a grace period --------------------------------------- */

static void
vm_free(struct ks_engine_vm *vm)
{
	for (uint32_t t = 0; t < vm->nr_targets; t++) {
		struct engine_target *et = &vm->targets[t];

		for (uint32_t b = 0; b < et->nr_blocks; b++)
			if (et->blocks[b].ops && et->blocks[b].ops->release)
				et->blocks[b].ops->release(et->blocks[b].ctx);
	}
	free(vm->blocks);
	free(vm->targets);
	ks_segment_destroy(&vm->seg);
	free(vm->file);
	free(vm);
}

/*
 * Runs once no sweep can still be touching @vm: the data are final, so
 * this is where a segment is marked ended or superseded.
 */
static void
vm_retire_rcu(struct rcu_head *head)
{
	struct ks_engine_vm *vm = caa_container_of(head, struct ks_engine_vm, rcu);

	/* liburcu's call_rcu thread blocks every signal: the state store may fault. */
	ks_bus_allow();
	grace_acquire(NULL);
	if (vm->seg)
		ks_segment_set_state(vm->seg, vm->final_state);
	vm_free(vm);
}

/* Poll thread, online: pass every retired VM to call_rcu(). */
static void
reap_retired(struct ks_engine *e)
{
	struct ks_engine_vm *vm, *next;

	if (!atomic_load_explicit(&e->retired_pending, memory_order_relaxed))
		return;
	pthread_mutex_lock(&e->lock);
	vm = e->retired;
	e->retired = NULL;
	atomic_store_explicit(&e->retired_pending, false, memory_order_relaxed);
	pthread_mutex_unlock(&e->lock);

	for (; vm != NULL; vm = next) {
		next = vm->retired_next;
		call_rcu(&vm->rcu, vm_retire_rcu);
	}
}

/* Control side, under e->lock: @vm has left e->vms. */
static void
queue_retired(struct ks_engine *e, struct ks_engine_vm *vm, enum ks_shm_state state)
{
	vm->final_state = state;
	vm->retired_next = e->retired;
	e->retired = vm;
	atomic_store_explicit(&e->retired_pending, true, memory_order_relaxed);
}

/* Control side, under e->lock: the link that points at @vm. */
static _Atomic(struct ks_engine_vm *) *
link_to(struct ks_engine *e, struct ks_engine_vm *vm)
{
	_Atomic(struct ks_engine_vm *) *link = &e->vms;
	struct ks_engine_vm *p;

	while ((p = atomic_load_explicit(link, memory_order_relaxed)) != vm) {
		if (p == NULL)
			return NULL;
		link = &p->next;
	}
	return link;
}

/*
 * Control side, under e->lock: put @vm where @link points.  The release
 * store publishes every store that built @vm (its segment, its sources);
 * pairs with the acquire loads of the sweep's walk.
 */
static void
link_publish(_Atomic(struct ks_engine_vm *) *link, struct ks_engine_vm *vm)
{
	atomic_store_explicit(link, vm, memory_order_release);
}

/* Poll thread: the first VM, or the one after @vm.  Pairs with link_publish(). */
static struct ks_engine_vm *
walk(struct ks_engine *e, struct ks_engine_vm *vm)
{
	return atomic_load_explicit(vm ? &vm->next : &e->vms, memory_order_acquire);
}

/* ---- a segment truncated or changed under us ---------------------------- */

/*
 * Under e->lock, on the sweeping thread: @vm's segment is no longer what
 * readers can use (ks_segment_check(): @why).  After a truncation the
 * fault handler gave the mapping private pages (ks_sigbus.h), so sweeps
 * went on harmlessly, but no reader sees them.  Publish a new segment
 * (the next generation) in its place, under its name, and mark the old
 * one superseded, so that readers following the name move over.  The VM
 * stays the same object, so the sources that hold it (intake, attach,
 * embedded API) never notice.  Return: 0, or -1 if no new segment could
 * be made (said once per episode: the caller tries again later).
 */
static int
reseat(struct ks_engine *e, struct ks_engine_vm *vm, const char *why)
{
	struct ks_segment_writer *old = vm->seg, *nw = NULL;
	uint64_t sweep = vm->sweep;
	struct kvmstats_error err;
	int ret;

	if (!vm->reseat_failing)
		ks_logf(e->cfg.log, "VM %s: its segment %s %s; publishing a new one",
			old->vm_name, vm->file, why);
	ret = ks_segment_clone(old, vm->generation + 1, &nw, &err);
	if (ret == 0) {
		vm->seg = nw;
		ret = plan_slots(vm);
		if (ret < 0)
			ks_err(&err, ret, "the new segment is not laid out in frames");
	}
	if (ret == 0) {
		sweep_vm(e, vm);	/* readers never see a segment without a sample */
		ret = ks_segment_publish(nw, old, &err);
	}
	if (ret < 0) {
		/* The old segment goes on as it was, without the new one's sweep. */
		vm->seg = old;
		(void)plan_slots(vm);	/* the layout it had */
		vm->sweep = sweep;
		ks_segment_destroy(&nw);
		relaxed_add(&e->reseat_failures, 1);
		if (!vm->reseat_failing)
			ks_logf(e->cfg.log, "VM %s: cannot publish a new segment: %s; trying "
				"again, at longer and longer intervals up to a minute, its stats "
				"unpublished until then", old->vm_name, err.msg);
		vm->reseat_failing = true;
		return -1;
	}
	vm->reseat_failing = false;
	vm->generation++;
	relaxed_add(&e->reseats, 1);
	if (!ks_segment_faulted(old))
		ks_segment_set_state(old, KS_STATE_SUPERSEDED);
	ks_segment_destroy(&old);
	ks_logf(e->cfg.log, "VM %s: published generation %llu as %s",
		nw->vm_name, (unsigned long long)vm->generation, vm->file);
	return 0;
}

/*
 * Under e->lock, on the sweeping thread: check the segments that are due
 * (each about once a second) and those that just faulted (@faulted: the
 * fault count moved), comparing at most e->check_budget bytes of schema
 * in one call; what is left over goes on at the next sweep.  A damaged
 * segment is reseated; one that cannot be is checked (and so tried)
 * again after 1, 2, 4 ... up to 60 s.  A VM whose new generation a
 * control thread is making (replacing) gets that one instead.
 */
static void
check_segments_locked(struct ks_engine *e, bool faulted, uint64_t now)
{
	uint64_t budget = e->check_budget, soonest = now + CHECK_PERIOD_NS;
	struct ks_engine_vm *vm;
	char why[160];
	int r;

	for (vm = atomic_load_explicit(&e->vms, memory_order_relaxed); vm != NULL;
	     vm = atomic_load_explicit(&vm->next, memory_order_relaxed)) {
		bool fault_new = faulted && !vm->reseat_failing && ks_segment_faulted(vm->seg);

		if (vm->replacing || (now < vm->next_check_ns && !fault_new))
			goto next;
		if (budget == 0) {
			soonest = now;		/* the rest at the next sweep */
			break;
		}
		r = ks_segment_check(vm->seg, &vm->check_cursor, &budget, why, sizeof(why));
		if (r == 0) {
			soonest = now;
			break;
		}
		if (r < 0 && reseat(e, vm, why) < 0) {
			vm->retry_ns = vm->retry_ns ? vm->retry_ns * 2 : CHECK_PERIOD_NS;
			if (vm->retry_ns > RETRY_MAX_NS)
				vm->retry_ns = RETRY_MAX_NS;
			vm->next_check_ns = now + vm->retry_ns;
		} else {
			/* Intact, or replaced: a failing episode is over. */
			vm->reseat_failing = false;
			vm->retry_ns = 0;
			vm->next_check_ns = now + CHECK_PERIOD_NS;
		}
next:
		if (!vm->replacing && vm->next_check_ns < soonest)
			soonest = vm->next_check_ns;
	}
	atomic_store_explicit(&e->next_check_ns, soonest, memory_order_relaxed);
}

/*
 * Poll thread, after each sweep, at @now (the sweep's end).  A truncation
 * is seen at once: two relaxed loads (the process's fault count, the
 * next check's time) are all a sweep pays for this; a due check waits
 * for e->lock to be free (a control thread holding it only delays the
 * check to a later sweep).
 */
static void
check_segments(struct ks_engine *e, uint64_t now)
{
	uint64_t faults = ks_bus_faults();
	bool faulted;

	/* Racy peeks, to skip the lock: the values are read again under it. */
	if (faults == atomic_load_explicit(&e->bus_seen, memory_order_relaxed) &&
	    now < atomic_load_explicit(&e->next_check_ns, memory_order_relaxed))
		return;
	if (faults != atomic_load_explicit(&e->bus_seen, memory_order_relaxed))
		pthread_mutex_lock(&e->lock);
	else if (pthread_mutex_trylock(&e->lock) != 0)
		return;
	faulted = faults != atomic_load_explicit(&e->bus_seen, memory_order_relaxed);
	atomic_store_explicit(&e->bus_seen, faults, memory_order_relaxed);
	check_segments_locked(e, faulted, now);
	pthread_mutex_unlock(&e->lock);
}

/* ---- the poll thread ------------------------------------------------------ */

static void *
poll_thread(void *arg)
{
	struct ks_engine *e = arg;
	struct ks_engine_vm *vm;
	uint64_t next = ks_mono_ns();

	/*
	 * The default 50 us timer slack lets the kernel wake us that late,
	 * which is half a period at 10 kHz: ask for 1 us.
	 */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	ks_bus_allow();		/* a sweep into a truncated segment faults */
	rcu_register_thread();
	while (!atomic_load_explicit(&e->stop, memory_order_relaxed)) {
		uint64_t t0 = ks_mono_ns(), t1;

		reap_retired(e);
		rcu_read_lock();
		for (vm = walk(e, NULL); vm != NULL; vm = walk(e, vm))
			sweep_vm(e, vm);
		rcu_read_unlock();
		t1 = ks_mono_ns();
		check_segments(e, t1);
		relaxed_add(&e->sweeps, 1);
		relaxed_add(&e->sweep_ns_total, t1 - t0);

		/*
		 * Absolute deadlines: the period does not drift with the
		 * sweep's own cost.  A deadline already behind us is an
		 * overrun; skip the missed ticks rather than sweep in a burst.
		 */
		next += e->period_ns;
		if (t1 >= next) {
			uint64_t missed = (t1 - next) / e->period_ns + 1;

			relaxed_add(&e->overruns, missed);
			next += missed * e->period_ns;
		}
		/*
		 * Offline while asleep: the poll thread holds no RCU
		 * references between sweeps, so a grace period never waits
		 * for our period (up to a second at 1 Hz).  Going offline is
		 * this sweep's quiescent state.
		 */
		grace_release(e);
		rcu_thread_offline();
		ks_sleep_until(next, STOP_CHECK_NS, &e->stop);
		rcu_thread_online();
	}
	reap_retired(e);
	grace_release(e);	/* unregistering is this thread's last quiescent state */
	rcu_unregister_thread();
	return NULL;
}

/* ---- building a VM -------------------------------------------------------- */

struct vm_layout {
	const char **providers;
	uint32_t nr_providers;
	struct ks_seg_target_def *targets;
	struct ks_seg_stat_def **stats;		/* per target, provider-resolved */
};

static void
layout_free(struct vm_layout *l, uint32_t nr_targets)
{
	if (l->stats)
		for (uint32_t t = 0; t < nr_targets; t++)
			free(l->stats[t]);
	free(l->stats);
	free(l->targets);
	free(l->providers);
}

static int
provider_index(struct vm_layout *l, const char *name, uint32_t max)
{
	for (uint32_t i = 0; i < l->nr_providers; i++)
		if (strcmp(l->providers[i], name) == 0)
			return (int)i;
	if (l->nr_providers >= max)
		return -1;
	l->providers[l->nr_providers] = name;
	return (int)l->nr_providers++;
}

/*
 * Concatenate each target's blocks into one record and resolve provider
 * names to indices; fill vm->targets with where each block lands.
 */
static int
build_layout(const struct ks_vm_def *def, struct ks_engine_vm *vm,
	     struct vm_layout *l, struct kvmstats_error *err)
{
	uint32_t max_providers = 0, used = 0;

	for (uint32_t t = 0; t < def->nr_targets; t++)
		max_providers += def->targets[t].nr_blocks;
	l->providers = calloc(max_providers ? max_providers : 1, sizeof(*l->providers));
	l->targets = calloc(def->nr_targets, sizeof(*l->targets));
	l->stats = calloc(def->nr_targets, sizeof(*l->stats));
	vm->targets = calloc(def->nr_targets, sizeof(*vm->targets));
	vm->blocks = calloc(max_providers ? max_providers : 1, sizeof(*vm->blocks));
	if (!l->providers || !l->targets || !l->stats || !vm->targets || !vm->blocks)
		return ks_err(err, -ENOMEM, "VM %s: out of memory", def->vm_name);
	vm->nr_targets = def->nr_targets;

	for (uint32_t t = 0; t < def->nr_targets; t++) {
		const struct ks_target_def *td = &def->targets[t];
		struct engine_target *et = &vm->targets[t];
		uint32_t nr_stats = 0, words = 0, k = 0;

		for (uint32_t b = 0; b < td->nr_blocks; b++)
			nr_stats += td->blocks[b].nr_stats;
		et->blocks = vm->blocks + used;
		used += td->nr_blocks;
		l->stats[t] = calloc(nr_stats ? nr_stats : 1, sizeof(**l->stats));
		if (!l->stats[t])
			return ks_err(err, -ENOMEM, "VM %s: out of memory", def->vm_name);
		et->nr_blocks = td->nr_blocks;

		for (uint32_t b = 0; b < td->nr_blocks; b++) {
			const struct ks_block_def *bd = &td->blocks[b];
			int p = provider_index(l, bd->provider, max_providers);

			if (p < 0 || bd->ops == NULL || bd->ops->read == NULL)
				return ks_err(err, -EINVAL, "VM %s: target %u block %u has no source",
					      def->vm_name, t, b);
			if ((uint64_t)words + bd->words > UINT32_MAX / 2)
				return ks_err(err, -E2BIG, "VM %s: target %u record too large",
					      def->vm_name, t);
			et->blocks[b] = (struct engine_block) {
				.direct = { .fd = -1 },
				.ops = bd->ops, .ctx = bd->ctx,
				.first_word = words, .words = bd->words,
			};
			if (bd->ops->pread_range != NULL) {
				struct ks_pread_range r;

				/* Else read() goes on saying what is wrong, at every sweep. */
				if (bd->ops->pread_range(bd->ctx, &r) && r.fd >= 0 &&
				    r.len <= (uint64_t)bd->words * sizeof(uint64_t))
					et->blocks[b].direct = r;
			}
			for (uint32_t i = 0; i < bd->nr_stats; i++, k++) {
				l->stats[t][k] = bd->stats[i];
				l->stats[t][k].provider = (uint16_t)p;
				l->stats[t][k].value_index += words;
			}
			words += bd->words;
		}
		l->targets[t] = (struct ks_seg_target_def) {
			.kind = td->kind,
			.vcpu_index = td->vcpu_index,
			.label = td->label ? td->label : "",
			.id = td->id ? td->id : "",
			.nr_stats = nr_stats,
			.stats = l->stats[t],
			.record_words = words,
		};
	}
	return 0;
}

/* The sources of @def belong to the engine: release those not yet taken by a VM. */
static void
release_def_sources(const struct ks_vm_def *def)
{
	for (uint32_t t = 0; t < def->nr_targets; t++)
		for (uint32_t b = 0; b < def->targets[t].nr_blocks; b++) {
			const struct ks_block_def *bd = &def->targets[t].blocks[b];

			if (bd->ops && bd->ops->release)
				bd->ops->release(bd->ctx);
		}
}

/* The public file name of @def's segment: kvmstats.<VM name>, the one rule. */
static int
vm_file_name(const struct ks_vm_def *def, char *file, size_t len, struct kvmstats_error *err)
{
	char why[128];

	if (def->vm_name == NULL)
		return ks_err(err, -EINVAL, "a VM without a name");
	if (ks_vm_name_fault(def->vm_name, why, sizeof(why)) != NULL)
		return ks_err(err, -EINVAL, "VM name \"%s\" %s", def->vm_name, why);
	if (ks_shm_file_name(def->vm_name, file, len) < 0)
		return ks_err(err, -EINVAL, "VM %s: no segment name fits", def->vm_name);
	return 0;
}

/* A note goes to terminals and JSON like every string of a segment. */
static int
check_note(const struct ks_vm_def *def, struct kvmstats_error *err)
{
	if (def->note != NULL && (strlen(def->note) > KS_NOTE_MAX ||
				  ks_text_fault(def->note, strlen(def->note), NULL) != NULL))
		return ks_err(err, -EINVAL, "VM %s: its note is over %d bytes or not printable "
			      "text", def->vm_name, KS_NOTE_MAX);
	return 0;
}

/*
 * Refuse a name another VM of this engine publishes (other than @self):
 * the rename would silently take its segment from its readers.
 */
static int
check_name_free(struct ks_engine *e, const struct ks_vm_def *def,
		const struct ks_engine_vm *self, struct kvmstats_error *err)
{
	struct ks_engine_vm *vm;
	char file[256];
	int ret = vm_file_name(def, file, sizeof(file), err);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&e->lock);
	for (vm = atomic_load_explicit(&e->vms, memory_order_relaxed); vm != NULL;
	     vm = atomic_load_explicit(&vm->next, memory_order_relaxed))
		if (vm != self && strcmp(vm->file, file) == 0)
			break;
	pthread_mutex_unlock(&e->lock);
	if (vm != NULL)
		return ks_err(err, -EEXIST, "VM %s: segment %s is already published by another "
			      "VM of this publisher; give this one another name", def->vm_name, file);
	return 0;
}

/*
 * Make @def's segment, take its first sample and publish it under its
 * name.  The result is not yet in e->vms.
 */
static int
vm_create(struct ks_engine *e, const struct ks_vm_def *def, uint64_t generation,
	  const struct ks_segment_writer *predecessor, struct ks_engine_vm **out,
	  struct kvmstats_error *err)
{
	struct ks_engine_vm *vm = calloc(1, sizeof(*vm));
	struct vm_layout l = { 0 };
	char file[256];
	int ret;

	if (vm == NULL) {
		release_def_sources(def);
		return ks_err(err, -ENOMEM, "VM %s: out of memory", def->vm_name);
	}
	vm->e = e;
	vm->generation = generation;
	if (def->nr_targets == 0) {
		ret = ks_err(err, -EINVAL, "VM %s: no targets to publish", def->vm_name);
		goto fail_sources;
	}
	ret = build_layout(def, vm, &l, err);
	if (ret < 0)
		goto fail_sources;
	/* From here on vm->targets owns the sources. */

	ret = vm_file_name(def, file, sizeof(file), err);
	if (ret == 0)
		ret = check_note(def, err);
	if (ret < 0)
		goto fail;

	struct ks_seg_def sd = {
		.vm_name = def->vm_name,
		.note = def->note,
		.incarnation = e->incarnation,
		.generation = generation,
		.poll_period_ns = e->period_ns,
		.ring_depth = e->cfg.ring_depth,
		.ring_min_bytes = e->cfg.ring_min_bytes,
		.nr_providers = l.nr_providers,
		.providers = l.providers,
		.nr_targets = def->nr_targets,
		.targets = l.targets,
	};
	struct ks_seg_place place = {
		.dir = e->dir, .mode = e->cfg.mode, .gid = e->cfg.gid,
	};
	vm->file = strdup(file);
	if (vm->file == NULL) {
		ret = ks_err(err, -ENOMEM, "VM %s: out of memory", def->vm_name);
		goto fail;
	}
	ret = ks_segment_create(&sd, &place, &vm->seg, err);
	if (ret < 0)
		goto fail;
	if (plan_slots(vm) < 0) {
		ret = ks_err(err, -EINVAL, "VM %s: its segment is not laid out in frames",
			     def->vm_name);
		goto fail;
	}
	/* Readers never see a segment without a sample. */
	sweep_vm(e, vm);
	ret = ks_segment_publish(vm->seg, predecessor, err);
	if (ret < 0)
		goto fail;
	layout_free(&l, def->nr_targets);
	*out = vm;
	return 0;

fail_sources:
	release_def_sources(def);
	free(vm->blocks);
	vm->blocks = NULL;
	free(vm->targets);
	vm->targets = NULL;
	vm->nr_targets = 0;
fail:
	layout_free(&l, def->nr_targets);
	if (vm->seg)
		ks_segment_unlink(vm->seg);
	vm_free(vm);
	return ret;
}

/* ---- the control API ------------------------------------------------------ */

int
ks_engine_create(const struct ks_engine_config *cfg, struct ks_engine **out,
		 struct kvmstats_error *err)
{
	struct ks_engine *e;
	int ret;

	if (cfg->hz < KS_HZ_MIN || cfg->hz > KS_HZ_MAX)
		return ks_err(err, -EINVAL, "rate %u Hz out of range: use %u to %u",
			      cfg->hz, KS_HZ_MIN, KS_HZ_MAX);
	/* Readers refuse such segments: a co-writer could truncate them under them. */
	if (cfg->mode & 022)
		return ks_err(err, -EINVAL, "segment mode %04o lets group or others write: "
			      "readers refuse such segments; use a mode such as 0640",
			      (unsigned)cfg->mode);
	if (cfg->ring_depth < KS_RING_DEPTH_MIN || cfg->ring_depth > KS_RING_DEPTH_MAX)
		return ks_err(err, -EINVAL, "ring depth %u out of range: use %u to %u",
			      cfg->ring_depth, KS_RING_DEPTH_MIN, KS_RING_DEPTH_MAX);
	/* Said now, not at the first VM: a directory others could swap files in. */
	ret = ks_dir_check(ks_shm_dir(cfg->dir), "segment directory", err);
	if (ret < 0)
		return ret;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	e->cfg = *cfg;
	e->dir = strdup(ks_shm_dir(cfg->dir));
	if (e->dir == NULL) {
		free(e);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	e->cfg.dir = e->dir;
	e->period_ns = KS_NSEC_PER_SEC / cfg->hz;
	e->check_budget = e->period_ns / 16 > CHECK_BUDGET_MIN ? e->period_ns / 16
							       : CHECK_BUDGET_MIN;
	e->incarnation = ks_realtime_ns();
	e->stamp_min_targets = cfg->stamp == KS_STAMP_TSC ? 1 : STAMP_TSC_MIN_TARGETS;
	atomic_init(&e->stamp_tsc, cfg->stamp != KS_STAMP_CLOCK && ks_stamp_tsc_trusted(NULL, 0));
	pthread_mutex_init(&e->lock, NULL);
	*out = e;
	return 0;
}

int
ks_engine_start(struct ks_engine *e, struct kvmstats_error *err)
{
	int ret;

	/*
	 * Under e->lock: a control thread that removes or replaces a VM
	 * decides under the same lock whether a poll thread exists (see
	 * retire_if_idle()), so it never retires a VM on the spot that a
	 * just-started poll thread may be sweeping, and never joins it.
	 */
	pthread_mutex_lock(&e->lock);
	if (atomic_load(&e->running)) {
		pthread_mutex_unlock(&e->lock);
		return 0;
	}
	atomic_store(&e->stop, false);
	ret = pthread_create(&e->thread, NULL, poll_thread, e);
	if (ret == 0)
		atomic_store(&e->running, true);
	pthread_mutex_unlock(&e->lock);
	if (ret != 0)
		return ks_err(err, -ret, "cannot start the poll thread: %s", strerror(ret));
	return 0;
}

/*
 * Control side, e->lock held, dropped here: with no poll thread, retire
 * the queued VMs at once (what ks_engine_stop() does) and wait for earlier
 * call_rcu() work.  The check is made under e->lock, which
 * ks_engine_start() holds while it creates the poll thread and sets
 * running; ks_engine_stop() sets running false only once the thread is
 * joined, and then drains e->retired under e->lock itself.
 */
static void
retire_if_idle(struct ks_engine *e)
{
	struct ks_engine_vm *vm = NULL, *next;
	bool idle = !atomic_load(&e->running);

	if (idle) {
		vm = e->retired;
		e->retired = NULL;
		atomic_store_explicit(&e->retired_pending, false, memory_order_relaxed);
	}
	pthread_mutex_unlock(&e->lock);
	if (!idle)
		return;
	for (; vm != NULL; vm = next) {
		next = vm->retired_next;
		vm_retire_rcu(&vm->rcu);
	}
	rcu_barrier();
}

int
ks_engine_add_vm(struct ks_engine *e, const struct ks_vm_def *def,
		 struct ks_engine_vm **out, struct kvmstats_error *err)
{
	struct ks_engine_vm *vm;
	int ret = check_name_free(e, def, NULL, err);

	if (ret < 0) {
		release_def_sources(def);
		return ret;
	}
	ret = vm_create(e, def, 1, NULL, &vm, err);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&e->lock);
	atomic_store_explicit(&vm->next, NULL, memory_order_relaxed);
	link_publish(link_to(e, NULL), vm);	/* at the tail */
	pthread_mutex_unlock(&e->lock);
	if (out)
		*out = vm;
	return 0;
}

int
ks_engine_replace_vm(struct ks_engine *e, struct ks_engine_vm *old,
		     const struct ks_vm_def *def, struct ks_engine_vm **out,
		     struct kvmstats_error *err)
{
	_Atomic(struct ks_engine_vm *) *link;
	struct ks_engine_vm *vm;
	uint64_t generation = 0;
	int ret = 0;

	/*
	 * While @old is being replaced nobody else swaps its segment (see
	 * check_segments()), so old->seg can name the file the new one may
	 * take the name from.
	 */
	pthread_mutex_lock(&e->lock);
	if (link_to(e, old) == NULL)
		ret = ks_err(err, -ENOENT, "VM %s: the VM to replace is not published",
			     def->vm_name);
	else if (old->replacing)
		ret = ks_err(err, -EBUSY, "VM %s: a new generation is already being made",
			     def->vm_name);
	else
		old->replacing = true, generation = old->generation + 1;
	pthread_mutex_unlock(&e->lock);
	if (ret < 0) {
		release_def_sources(def);
		return ret;
	}
	ret = check_name_free(e, def, old, err);
	if (ret < 0)
		release_def_sources(def);
	else
		ret = vm_create(e, def, generation, old->seg, &vm, err);
	if (ret < 0) {
		pthread_mutex_lock(&e->lock);
		old->replacing = false;
		pthread_mutex_unlock(&e->lock);
		return ret;
	}
	pthread_mutex_lock(&e->lock);
	link = link_to(e, old);
	if (link == NULL) {
		/* @old went meanwhile (two threads on one VM): the new one goes last. */
		atomic_store_explicit(&vm->next, NULL, memory_order_relaxed);
		link_publish(link_to(e, NULL), vm);
		pthread_mutex_unlock(&e->lock);
	} else {
		atomic_store_explicit(&vm->next,
				      atomic_load_explicit(&old->next, memory_order_relaxed),
				      memory_order_relaxed);
		link_publish(link, vm);
		queue_retired(e, old, KS_STATE_SUPERSEDED);
		retire_if_idle(e);	/* unlocks; no poll thread: retire at once */
	}
	if (out)
		*out = vm;
	return 0;
}

void
ks_engine_remove_vm(struct ks_engine *e, struct ks_engine_vm *vm)
{
	_Atomic(struct ks_engine_vm *) *link;

	pthread_mutex_lock(&e->lock);
	link = link_to(e, vm);
	if (link == NULL) {		/* not ours, or removed already */
		pthread_mutex_unlock(&e->lock);
		return;
	}
	/* vm->next stays as it is: a sweep standing on vm walks on from there. */
	link_publish(link, atomic_load_explicit(&vm->next, memory_order_relaxed));
	/*
	 * The name goes now, so a VM re-added under it is never unlinked by
	 * this one's late retirement; the mapping stays valid for readers.
	 */
	if (!e->cfg.keep)
		ks_segment_unlink(vm->seg);
	queue_retired(e, vm, KS_STATE_ENDED);
	retire_if_idle(e);	/* unlocks */
}

int
ks_engine_sweep(struct ks_engine *e)
{
	struct ks_engine_vm *vm;
	uint64_t faults;
	bool faulted;

	/* No poll thread: nothing else walks the list; e->lock keeps updaters out. */
	pthread_mutex_lock(&e->lock);
	if (atomic_load(&e->running)) {
		pthread_mutex_unlock(&e->lock);
		return -EBUSY;
	}
	for (vm = walk(e, NULL); vm != NULL; vm = walk(e, vm))
		sweep_vm(e, vm);
	/* Under the same lock: a poll thread started meanwhile would sweep too. */
	faults = ks_bus_faults();
	faulted = faults != atomic_load_explicit(&e->bus_seen, memory_order_relaxed);
	atomic_store_explicit(&e->bus_seen, faults, memory_order_relaxed);
	check_segments_locked(e, faulted, ks_mono_ns());
	pthread_mutex_unlock(&e->lock);
	relaxed_add(&e->sweeps, 1);
	return 0;
}

void
ks_engine_get_stats(const struct ks_engine *e, struct ks_engine_stats *st)
{
	struct ks_engine *m = (struct ks_engine *)e;

	st->sweeps = atomic_load_explicit(&m->sweeps, memory_order_relaxed);
	st->overruns = atomic_load_explicit(&m->overruns, memory_order_relaxed);
	st->read_errors = atomic_load_explicit(&m->read_errors, memory_order_relaxed);
	st->sweep_ns_total = atomic_load_explicit(&m->sweep_ns_total, memory_order_relaxed);
	st->reseats = atomic_load_explicit(&m->reseats, memory_order_relaxed);
	st->reseat_failures = atomic_load_explicit(&m->reseat_failures, memory_order_relaxed);
	st->stamp_tsc = atomic_load_explicit(&m->stamp_tsc, memory_order_relaxed);
	st->stamp_bound_ns = atomic_load_explicit(&m->stamp_bound_ns, memory_order_relaxed);
}

const char *
ks_engine_dir(const struct ks_engine *e)
{
	return e->dir;
}

const char *
ks_engine_vm_file(const struct ks_engine_vm *vm)
{
	return vm->file;
}

/*
 * Without a poll thread nothing reads e->vms or e->retired concurrently:
 * retired VMs are retired on the spot, and pending call_rcu() work is
 * drained so that every segment's final state is written on return.
 */
void
ks_engine_stop(struct ks_engine *e)
{
	struct ks_engine_vm *vm, *next;

	if (atomic_load(&e->running)) {
		atomic_store(&e->stop, true);
		pthread_join(e->thread, NULL);
		atomic_store(&e->running, false);
	}
	pthread_mutex_lock(&e->lock);
	for (vm = e->retired, e->retired = NULL; vm != NULL; vm = next) {
		next = vm->retired_next;
		vm_retire_rcu(&vm->rcu);
	}
	atomic_store_explicit(&e->retired_pending, false, memory_order_relaxed);
	pthread_mutex_unlock(&e->lock);
	rcu_barrier();
}

void
ks_engine_destroy(struct ks_engine **ep)
{
	struct ks_engine *e = *ep;
	struct ks_engine_vm *vm;

	if (e == NULL)
		return;
	ks_engine_stop(e);
	while ((vm = atomic_load(&e->vms)) != NULL)
		ks_engine_remove_vm(e, vm);
	pthread_mutex_destroy(&e->lock);
	free(e->dir);
	free(e);
	*ep = NULL;
}
