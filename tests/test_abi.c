/* SPDX-License-Identifier: MIT */
/*
 * test_abi.c - the segment ABI end to end: the publisher's writer makes a
 * segment, the reader library attaches to it and reads it back; corrupt,
 * spoofed and unfinished segments are refused with the right error.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmstats/reader.h"
#include "ks_reader.h"		/* the reads' guess */
#include "ks_seqlock.h"
#include "ks_validate.h"
#include "segment_writer.h"
#include "shm_dir.h"
#include "small_vm_stats.h"

#define NR_VCPUS	3
#define VCPU_WORDS	9
#define VM_WORDS	2
#define DEPTH		4
#define MAX_WORDS	16	/* the largest record of any test segment */

static char shm_dir[4096];

/* ---- a small VM (small_vm_stats.h), three vCPUs sharing stats ---- */

/* An equal copy at another address: sharing is by content, not by pointer. */
static struct ks_seg_stat_def vcpu_stats_copy[4];

static struct ks_seg_target_def targets[1 + NR_VCPUS];
static char labels[1 + NR_VCPUS][64], ids[1 + NR_VCPUS][64];

static void
make_def(struct ks_seg_def *def, const char *vm, uint64_t generation)
{
	memcpy(vcpu_stats_copy, vcpu_stats, sizeof(vcpu_stats));
	targets[0] = (struct ks_seg_target_def){
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE, .label = "",
		.id = "", .nr_stats = 2, .stats = vm_stats, .record_words = VM_WORDS,
	};
	snprintf(ids[0], sizeof(ids[0]), "%s", vm);
	targets[0].id = ids[0];
	for (int i = 0; i < NR_VCPUS; i++) {
		struct ks_seg_target_def *t = &targets[1 + i];

		snprintf(labels[1 + i], sizeof(labels[0]), "/machine/unattached/device[%d]", i);
		snprintf(ids[1 + i], sizeof(ids[0]), "%s/vcpu-%d", vm, i);
		*t = (struct ks_seg_target_def){
			.kind = KS_TARGET_VCPU, .vcpu_index = (uint32_t)i, .label = labels[1 + i],
			.id = ids[1 + i], .nr_stats = 4,
			.stats = i == 2 ? vcpu_stats_copy : vcpu_stats,
			.record_words = VCPU_WORDS,
		};
	}
	*def = (struct ks_seg_def){
		.vm_name = vm, .incarnation = 123456789, .generation = generation,
		.poll_period_ns = 1000000, .ring_depth = DEPTH, .nr_providers = 2,
		.providers = providers, .nr_targets = 1 + NR_VCPUS, .targets = targets,
	};
}

static void
make_place(struct ks_seg_place *pl)
{
	*pl = (struct ks_seg_place){ .dir = shm_dir, .mode = 0640, .gid = (gid_t)-1 };
}

static struct ks_segment_writer *
create_vm(const char *vm, uint64_t generation)
{
	struct ks_segment_writer *w;
	struct kvmstats_error err;
	struct ks_seg_place pl;
	struct ks_seg_def def;
	int rc;

	make_def(&def, vm, generation);
	make_place(&pl);
	rc = ks_segment_create(&def, &pl, &w, &err);
	if (rc < 0)
		fail_msg("create %s: %s", vm, err.msg);
	return w;
}

/* Generation @generation of @vm, replacing @pred's segment (NULL: none). */
static struct ks_segment_writer *
publish_after(const char *vm, uint64_t generation, const struct ks_segment_writer *pred)
{
	struct ks_segment_writer *w = create_vm(vm, generation);
	struct kvmstats_error err;

	if (ks_segment_publish(w, pred, &err) < 0)
		fail_msg("publish %s: %s", vm, err.msg);
	return w;
}

static struct ks_segment_writer *
publish_vm(const char *vm, uint64_t generation)
{
	return publish_after(vm, generation, NULL);
}

/* ---- sweeps: every value says which sweep, target and word it is ---- */

static uint64_t
val(uint64_t sweep, uint32_t t, uint32_t w)
{
	return (sweep << 20) | ((uint64_t)t << 10) | w;
}

static uint64_t
time_of(uint64_t sweep, uint32_t t)
{
	return sweep * 1000 + t;
}

static void
write_sweep(struct ks_segment_writer *w, uint64_t sweep, uint32_t stale_target)
{
	uint64_t v[MAX_WORDS];

	for (uint32_t t = 0; t < w->nr_targets; t++) {
		struct ks_shm_slot *slot = ks_segment_slot(w, t, sweep);

		assert_true(w->targets[t].words <= MAX_WORDS);
		for (uint32_t i = 0; i < w->targets[t].words; i++)
			v[i] = val(sweep, t, i);
		ks_slot_write_begin(slot);
		ks_slot_stamp(slot, sweep, time_of(sweep, t), t == stale_target ? KS_SLOT_STALE : 0);
		ks_store_words(slot->values, v, w->targets[t].words);
		ks_slot_write_end(slot);
	}
	ks_header_publish_sweep(w->hdr, sweep, time_of(sweep, 99));
}

static struct kvmstats_segment *
attach_ok(const char *vm)
{
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;
	int rc = kvmstats_attach(vm, NULL, &seg, &err);

	if (rc < 0)
		fail_msg("attach %s: %d %s", vm, rc, err.msg);
	return seg;
}

/* ---- schema ---- */

static void
check_targets(const struct kvmstats_segment *seg, const char *vm)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, 0);
	char id[64];

	assert_int_equal(kvmstats_nr_targets(seg), 1 + NR_VCPUS);
	assert_int_equal(ti->kind, KVMSTATS_TARGET_VM);
	assert_int_equal(ti->vcpu_index, UINT32_MAX);
	assert_string_equal(ti->label, "");
	assert_string_equal(ti->id, vm);
	assert_int_equal(ti->nr_stats, 2);
	assert_int_equal(ti->record_words, VM_WORDS);
	assert_int_equal(ti->cut_offset, 0);
	for (unsigned i = 0; i < NR_VCPUS; i++) {
		ti = kvmstats_target(seg, 1 + i);
		snprintf(id, sizeof(id), "%s/vcpu-%u", vm, i);
		assert_int_equal(ti->index, 1 + i);
		assert_int_equal(ti->kind, KVMSTATS_TARGET_VCPU);
		assert_int_equal(ti->vcpu_index, i);
		assert_string_equal(ti->label, labels[1 + i]);
		assert_string_equal(ti->id, id);
		assert_int_equal(ti->nr_stats, 4);
		assert_int_equal(ti->record_words, VCPU_WORDS);
		assert_int_equal(ti->cut_offset, VM_WORDS + i * VCPU_WORDS);
	}
	assert_null(kvmstats_target(seg, 1 + NR_VCPUS));
	assert_int_equal(kvmstats_cut_words(seg), VM_WORDS + NR_VCPUS * VCPU_WORDS);
	assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU, "2"), 3);
	assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU, labels[2]), 2);
	snprintf(id, sizeof(id), "%s/vcpu-0", vm);
	assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU, id), 1);
	assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VM, vm), 0);
	assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU, "7"), -ENOENT);
	assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU, "1x"), -ENOENT);
	assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VM, "0"), -ENOENT);
}

static void
check_stat(const struct kvmstats_stat_info *si, const struct ks_seg_stat_def *d)
{
	assert_non_null(si);
	assert_string_equal(si->name, d->name);
	assert_int_equal(si->provider, d->provider);
	assert_string_equal(si->provider_name, providers[d->provider]);
	assert_int_equal(si->type, d->type);
	assert_int_equal(si->unit, d->unit);
	assert_int_equal(si->base, d->base);
	assert_int_equal(si->exponent, d->exponent);
	assert_int_equal(si->size, d->size);
	assert_int_equal(si->bucket_size, d->bucket_size);
	assert_int_equal(si->value_index, d->value_index);
}

static void
check_stats(const struct kvmstats_segment *seg)
{
	struct kvmstats_stat_handle h;

	for (unsigned j = 0; j < 2; j++)
		check_stat(kvmstats_target_stat(seg, 0, j), &vm_stats[j]);
	for (unsigned t = 1; t <= NR_VCPUS; t++)
		for (unsigned j = 0; j < 4; j++) {
			check_stat(kvmstats_target_stat(seg, t, j), &vcpu_stats[j]);
			/* One range of the stat table for every vCPU. */
			assert_ptr_equal(kvmstats_target_stat(seg, t, j),
					 kvmstats_target_stat(seg, 1, j));
		}
	assert_null(kvmstats_target_stat(seg, 1, 4));
	assert_int_equal(kvmstats_info(seg)->nr_stats, 2 + 4);

	assert_int_equal(kvmstats_stat_lookup(seg, 2, NULL, "exits", &h), 0);
	assert_int_equal(h.target, 2);
	assert_string_equal(h.info->provider_name, "kvm");
	assert_int_equal(kvmstats_stat_lookup(seg, 2, "sim", "exits", &h), 0);
	assert_int_equal(h.info->value_index, 8);
	assert_int_equal(kvmstats_stat_lookup(seg, 2, "sim", "lin", &h), -ENOENT);
	assert_int_equal(kvmstats_stat_lookup(seg, 9, NULL, "exits", &h), -ENOENT);
}

static void
test_schema_roundtrip(void **state)
{
	struct ks_segment_writer *w = publish_vm("abi-schema", 3);
	struct kvmstats_segment *seg = attach_ok("abi-schema");
	const struct kvmstats_segment_info *in = kvmstats_info(seg);

	(void)state;
	assert_string_equal(in->segment_file, "kvmstats.abi-schema");
	assert_string_equal(in->vm_name, "abi-schema");
	assert_int_equal(in->publisher_pid, getpid());
	assert_int_equal(in->owner, geteuid());
	assert_int_equal(in->abi_major, KS_ABI_MAJOR);
	assert_int_equal(in->incarnation, 123456789);
	assert_int_equal(in->generation, 3);
	assert_int_equal(in->poll_period_ns, 1000000);
	assert_int_equal(in->ring_depth, DEPTH);
	assert_int_equal(in->segment_size, w->size);
	assert_true(in->created_mono_ns > 0 && in->created_mono_ns <= kvmstats_now_ns());
	assert_int_equal(in->nr_providers, 2);
	assert_int_equal(kvmstats_nr_providers(seg), 2);
	assert_string_equal(kvmstats_provider(seg, 1)->name, "sim");
	assert_null(kvmstats_provider(seg, 2));
	assert_int_equal(kvmstats_provider_lookup(seg, "sim"), 1);
	assert_int_equal(kvmstats_provider_lookup(seg, "nope"), -ENOENT);
	check_targets(seg, "abi-schema");
	check_stats(seg);
	/* Layout rules of the writer. */
	assert_int_equal(w->hdr->data_off % KS_DATA_ALIGN, 0);
	assert_int_equal(w->hdr->stats_off % KS_CACHELINE, 0);
	assert_int_equal(w->hdr->strings_off % KS_CACHELINE, 0);
	assert_int_equal(w->hdr->segment_size, w->hdr->data_off + w->hdr->data_size);
	kvmstats_detach(&seg);
	assert_null(seg);
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
}

static void
test_names(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(kvmstats_segment_file_name("kvm-1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "kvmstats.kvm-1");
	assert_int_equal(kvmstats_segment_file_name("kvmstats.kvm-1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "kvmstats.kvm-1");
	assert_int_equal(kvmstats_segment_file_name("/kvmstats.kvm-1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "kvmstats.kvm-1");
	assert_int_equal(kvmstats_segment_file_name("", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(kvmstats_segment_file_name("a/b", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(kvmstats_segment_file_name("kvmstats.", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(kvmstats_segment_file_name("kvm-1", buf, 10), -EINVAL);
	assert_string_equal(kvmstats_type_name(KVMSTATS_TYPE_LOG_HIST), "log2-histogram");
	assert_string_equal(kvmstats_type_name(KVMSTATS_TYPE_LINEAR_HIST), "linear-histogram");
	assert_null(kvmstats_type_name(5));
	assert_null(kvmstats_unit_name(KVMSTATS_UNIT_NONE));
	assert_string_equal(kvmstats_unit_name(KVMSTATS_UNIT_CYCLES), "cycles");
	assert_string_equal(kvmstats_target_kind_name(KVMSTATS_TARGET_VCPU), "vcpu");
	assert_string_equal(kvmstats_state_name(KVMSTATS_STATE_SUPERSEDED), "superseded");
	assert_string_equal(kvmstats_state_name(KVMSTATS_STATE_INVALID), "invalid");
	assert_null(kvmstats_state_name(5));
	assert_string_equal(kvmstats_health_name(KVMSTATS_HEALTH_DEAD), "dead");
	assert_string_equal(kvmstats_health_name(KVMSTATS_HEALTH_BROKEN), "broken");
	assert_null(kvmstats_health_name(6));
}

/* ---- values ---- */

static void
test_nodata(void **state)
{
	struct ks_segment_writer *w = publish_vm("abi-nodata", 1);
	struct kvmstats_segment *seg = attach_ok("abi-nodata");
	uint64_t v[64];
	struct kvmstats_stat_handle h;
	struct kvmstats_status st;
	unsigned got = 7;

	(void)state;
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_LIVE);
	assert_int_equal(st.sweep, 0);
	assert_int_equal(kvmstats_stat_lookup(seg, 1, NULL, "exits", &h), 0);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, NULL), -ENODATA);
	assert_int_equal(kvmstats_read_record(seg, 1, v, 64, NULL), -ENODATA);
	assert_int_equal(kvmstats_read_cut(seg, v, 64, NULL), -ENODATA);
	assert_int_equal(kvmstats_read_history(seg, 1, 3, v, 64, NULL, &got), -ENODATA);
	assert_int_equal(got, 0);
	kvmstats_detach(&seg);
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
}

static void
check_record(const uint64_t *v, uint64_t sweep, uint32_t t, uint32_t words)
{
	for (uint32_t i = 0; i < words; i++)
		assert_int_equal(v[i], val(sweep, t, i));
}

static void
check_reads_at(const struct kvmstats_segment *seg, uint64_t sweep)
{
	struct kvmstats_sample smp, smps[1 + NR_VCPUS];
	struct kvmstats_stat_handle h;
	uint64_t v[64];

	assert_int_equal(kvmstats_stat_lookup(seg, 2, "kvm", "exits", &h), 0);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), 0);
	assert_int_equal(v[0], val(sweep, 2, 0));
	assert_int_equal(smp.sweep, sweep);
	assert_int_equal(smp.time_ns, time_of(sweep, 2));
	assert_int_equal(smp.retries, 0);

	assert_int_equal(kvmstats_stat_lookup(seg, 3, NULL, "lin", &h), 0);
	assert_int_equal(kvmstats_read_values(seg, &h, v, 2, &smp), -EINVAL);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), -EINVAL);
	assert_int_equal(kvmstats_read_values(seg, &h, v, 3, &smp), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(v[i], val(sweep, 3, 5 + i));

	assert_int_equal(kvmstats_read_record(seg, 1, v, VCPU_WORDS - 1, NULL), -EINVAL);
	assert_int_equal(kvmstats_read_record(seg, 1, v, VCPU_WORDS, &smp), 0);
	check_record(v, sweep, 1, VCPU_WORDS);

	assert_int_equal(kvmstats_read_cut(seg, v, kvmstats_cut_words(seg) - 1, smps), -EINVAL);
	assert_int_equal(kvmstats_read_cut(seg, v, 64, smps), 0);
	for (uint32_t t = 0; t <= NR_VCPUS; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		check_record(v + ti->cut_offset, sweep, t, ti->record_words);
		assert_int_equal(smps[t].sweep, sweep);
		assert_int_equal(smps[t].time_ns, time_of(sweep, t));
	}
}

static void
test_values(void **state)
{
	struct ks_segment_writer *w = publish_vm("abi-values", 1);
	struct kvmstats_segment *seg = attach_ok("abi-values");
	struct kvmstats_sample smps[8];
	struct kvmstats_stat_handle h, bad;
	struct kvmstats_status st;
	uint64_t v[8 * VCPU_WORDS];
	unsigned got;

	(void)state;
	write_sweep(w, 1, UINT32_MAX);
	write_sweep(w, 2, UINT32_MAX);
	check_reads_at(seg, 2);
	/* Only sweeps 2 and 1 exist: history stops before sweep 0. */
	assert_int_equal(kvmstats_read_history(seg, 1, 8, v, 8 * VCPU_WORDS, smps, &got), 0);
	assert_int_equal(got, 2);
	assert_int_equal(smps[1].sweep, 1);
	check_record(v + VCPU_WORDS, 1, 1, VCPU_WORDS);

	for (uint64_t s = 3; s <= 9; s++)
		write_sweep(w, s, s == 8 ? 1 : UINT32_MAX);
	check_reads_at(seg, 9);
	kvmstats_status(seg, &st);
	assert_int_equal(st.sweep, 9);
	assert_int_equal(st.heartbeat_ns, time_of(9, 99));
	/* A ring of 4 holds sweeps 9..6 while the publisher is idle. */
	assert_int_equal(kvmstats_read_history(seg, 1, 8, v, 8 * VCPU_WORDS, smps, &got), 0);
	assert_int_equal(got, DEPTH);
	for (unsigned k = 0; k < got; k++) {
		assert_int_equal(smps[k].sweep, 9 - k);
		assert_int_equal(smps[k].time_ns, time_of(9 - k, 1));
		assert_int_equal(smps[k].flags, 9 - k == 8 ? KVMSTATS_SAMPLE_STALE : 0);
		check_record(v + k * VCPU_WORDS, 9 - k, 1, VCPU_WORDS);
	}
	assert_int_equal(kvmstats_read_history(seg, 1, 2, v, 2 * VCPU_WORDS, smps, &got), 0);
	assert_int_equal(got, 2);
	assert_int_equal(kvmstats_read_history(seg, 1, 3, v, 2 * VCPU_WORDS, smps, &got), -EINVAL);
	/* A handle whose info is not one of its target's stats is refused. */
	assert_int_equal(kvmstats_stat_lookup(seg, 0, NULL, "flag", &h), 0);
	bad = h;
	bad.target = 1;
	assert_int_equal(kvmstats_read_scalar(seg, &bad, v, NULL), -EINVAL);
	bad.target = 77;
	assert_int_equal(kvmstats_read_scalar(seg, &bad, v, NULL), -EINVAL);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, smps), 0);
	assert_int_equal(v[0], val(9, 0, 1));
	kvmstats_detach(&seg);
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
}

/*
 * A record read of target 2 while the reads' guess is on and names the
 * slot after @sweep's (which it prefetches whole): the record is @sweep's.
 */
static void
check_record_while_guessed(struct kvmstats_segment *seg, uint64_t sweep)
{
	uint64_t rec[MAX_WORDS];
	struct kvmstats_sample smp;
	uint32_t words;

	words = kvmstats_target(seg, 2)->record_words;
	assert_true(words <= MAX_WORDS);
	assert_int_equal(ks_read_guess().hi, 1);
	assert_int_equal(kvmstats_read_record(seg, 2, rec, MAX_WORDS, &smp), 0);
	assert_int_equal(smp.sweep, sweep);
	for (uint32_t i = 0; i < words; i++)
		assert_int_equal(rec[i], val(sweep, 2, i));
}

/*
 * A stat read takes header.sweep's slot, and judges it on that slot's own
 * seq and stamp, whatever the other slots hold: a neighbour open (the next
 * sweep being written, the slot the reads' guess prefetches), a neighbour
 * closed but not yet published, the
 * newest slot itself open (only a lapping writer opens it), or stamped
 * with another sweep (damage).  read_scalar and read_values must agree on
 * each.  And a record read, its guessed slot open.
 */
static void
test_stat_read_edges(void **state)
{
	struct ks_segment_writer *w = publish_vm("abi-edges", 1);
	struct kvmstats_segment *seg = attach_ok("abi-edges");
	struct ks_shm_slot *next, *newest;
	struct kvmstats_stat_handle h;
	struct kvmstats_sample smp;
	uint64_t v[2], v2[MAX_WORDS];

	(void)state;
	assert_int_equal(kvmstats_stat_lookup(seg, 2, "kvm", "exits", &h), 0);
	/* A read after each sweep: the reads' guess (reader/lib/read.c) is on, and names 10. */
	for (uint64_t s = 1; s <= 9; s++) {
		write_sweep(w, s, UINT32_MAX);
		assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), 0);
		assert_int_equal(v[0], val(s, 2, 0));
	}
	assert_int_equal(ks_read_guess().lo, 1);
	assert_int_equal(ks_read_guess().hi, 1);
	next = ks_segment_slot(w, 2, 10);
	newest = ks_segment_slot(w, 2, 9);

	/* The next sweep's slot, the one guessed, open as while it is written: sweep 9, at once. */
	ks_slot_write_begin(next);
	ks_slot_stamp(next, 10, time_of(10, 2), 0);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), 0);
	assert_int_equal(v[0], val(9, 2, 0));
	assert_int_equal(smp.sweep, 9);
	assert_int_equal(smp.retries, 0);
	/* Closed but not yet published: header.sweep still says 9. */
	ks_slot_write_end(next);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), 0);
	assert_int_equal(smp.sweep, 9);
	assert_int_equal(smp.time_ns, time_of(9, 2));
	assert_int_equal(kvmstats_read_values(seg, &h, v, 1, &smp), 0);
	assert_int_equal(smp.sweep, 9);

	/* header.sweep's own slot open (only a lapping writer does that): no sample. */
	ks_slot_write_begin(newest);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), -EAGAIN);
	assert_int_equal(kvmstats_read_values(seg, &h, v, 1, &smp), -EAGAIN);
	ks_slot_write_end(newest);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), 0);
	assert_int_equal(v[0], val(9, 2, 0));

	/* Stamped with another sweep than the header's (damage): refused by both. */
	ks_slot_write_begin(newest);
	ks_slot_stamp(newest, 5, time_of(5, 2), 0);
	ks_slot_write_end(newest);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, &smp), -EAGAIN);
	assert_int_equal(kvmstats_read_values(seg, &h, v, 1, &smp), -EAGAIN);

	/* Record reads after two more sweeps: the guess on again, and names 12, open. */
	for (uint64_t s = 10; s <= 11; s++) {
		write_sweep(w, s, UINT32_MAX);
		assert_int_equal(kvmstats_read_record(seg, 2, v2, MAX_WORDS, &smp), 0);
		assert_int_equal(smp.sweep, s);
	}
	next = ks_segment_slot(w, 2, 12);
	ks_slot_write_begin(next);
	ks_slot_stamp(next, 12, time_of(12, 2), 0);
	check_record_while_guessed(seg, 11);

	kvmstats_detach(&seg);
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
}

/* ---- lifecycle ---- */

static void
test_ended_superseded(void **state)
{
	struct ks_segment_writer *w1 = publish_vm("abi-life", 1), *w2;
	struct kvmstats_segment *seg = attach_ok("abi-life"), *keep;
	struct kvmstats_error err;
	struct kvmstats_status st;
	uint64_t v[64];

	(void)state;
	write_sweep(w1, 1, UINT32_MAX);
	/* A new generation takes the name; the old one says so. */
	w2 = publish_after("abi-life", 2, w1);
	write_sweep(w2, 1, UINT32_MAX);
	ks_segment_set_state(w1, KS_STATE_SUPERSEDED);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_SUPERSEDED);
	/* The old mapping still reads its final data. */
	assert_int_equal(kvmstats_read_record(seg, 1, v, 64, NULL), 0);
	keep = seg;
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	assert_ptr_not_equal(seg, keep);
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_LIVE);
	/* The old writer must not remove its successor's name. */
	assert_int_equal(ks_segment_unlink(w1), -ENOENT);
	ks_segment_destroy(&w1);
	kvmstats_detach(&seg);
	seg = attach_ok("abi-life");
	assert_int_equal(kvmstats_info(seg)->generation, 2);

	ks_segment_set_state(w2, KS_STATE_ENDED);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_ENDED);
	assert_int_equal(ks_segment_unlink(w2), 0);
	ks_segment_destroy(&w2);
	assert_int_equal(kvmstats_reattach(&seg, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "kvmstats.abi-life"));
	/* On error the handle is left as it was, and still reads. */
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
}

static void
test_not_ready(void **state)
{
	struct ks_segment_writer *w = create_vm("abi-notready", 1);
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;

	(void)state;
	/* The name of a segment whose publisher never opened the gate. */
	unlinkat(w->dirfd, "kvmstats.abi-notready", 0);
	assert_int_equal(linkat(w->dirfd, w->tmp_file, w->dirfd, "kvmstats.abi-notready", 0), 0);
	assert_int_equal(kvmstats_attach("abi-notready", NULL, &seg, &err), -EAGAIN);
	assert_null(seg);
	assert_non_null(strstr(err.msg, "not ready"));
	assert_int_equal(unlinkat(w->dirfd, "kvmstats.abi-notready", 0), 0);
	ks_segment_destroy(&w);
	/* destroy removed the unpublished temporary file too. */
	assert_int_equal(kvmstats_attach("abi-notready", NULL, &seg, &err), -ENOENT);
}

static void
test_spoofed_owner(void **state)
{
	struct ks_segment_writer *w;
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err;

	(void)state;
	if (geteuid() != 0) {
		print_message("skipped: chown to another uid needs root\n");
		skip();
	}
	w = publish_vm("abi-owner", 1);
	assert_int_equal(fchown(w->fd, 12345, (gid_t)-1), 0);
	assert_int_equal(kvmstats_attach("abi-owner", NULL, &seg, &err), -EPERM);
	assert_non_null(strstr(err.msg, "owned by uid 12345"));
	kvmstats_attach_opts_init(&opts);
	opts.owner = 54321;
	assert_int_equal(kvmstats_attach("abi-owner", &opts, &seg, &err), -EPERM);
	opts.owner = 12345;
	assert_int_equal(kvmstats_attach("abi-owner", &opts, &seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->owner, 12345);
	kvmstats_detach(&seg);
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
}

/* A segment others may write (so truncate) is refused, whoever owns it. */
static void
test_writable_segment_refused(void **state)
{
	struct ks_segment_writer *w = publish_vm("abi-mode", 1);
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;

	(void)state;
	assert_int_equal(fchmod(w->fd, 0660), 0);
	assert_int_equal(kvmstats_attach("abi-mode", NULL, &seg, &err), -EACCES);
	assert_non_null(strstr(err.msg, "mode 0660: writable by group or others"));
	assert_int_equal(fchmod(w->fd, 0642), 0);
	assert_int_equal(kvmstats_attach("abi-mode", NULL, &seg, &err), -EACCES);
	assert_int_equal(fchmod(w->fd, 0644), 0);
	assert_int_equal(kvmstats_attach("abi-mode", NULL, &seg, &err), 0);
	kvmstats_detach(&seg);
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
}

static int
collect_names(const char *file, void *arg)
{
	char *out = arg;

	if (strncmp(file, "kvmstats.abi-enum", 17) == 0) {
		strcat(out, file);
		strcat(out, " ");
	}
	return 0;
}

static void
test_enumerate(void **state)
{
	struct ks_segment_writer *b = publish_vm("abi-enum-b", 1);
	struct ks_segment_writer *a = publish_vm("abi-enum-a", 1);
	struct ks_segment_writer *c = create_vm("abi-enum-c", 1);	/* unpublished */
	struct kvmstats_error err;
	char out[256] = "";

	(void)state;
	assert_int_equal(kvmstats_enumerate(shm_dir, collect_names, out, &err), 0);
	assert_string_equal(out, "kvmstats.abi-enum-a kvmstats.abi-enum-b ");
	assert_int_equal(kvmstats_enumerate("/nonexistent-kvmstats", collect_names, out, &err),
			 -ENOENT);
	ks_segment_unlink(a);
	ks_segment_unlink(b);
	ks_segment_destroy(&a);
	ks_segment_destroy(&b);
	ks_segment_destroy(&c);
}

static void
test_bad_definition(void **state)
{
	struct ks_seg_stat_def dup[2] = { vcpu_stats[0], vcpu_stats[0] };
	struct ks_segment_writer *w = NULL;
	struct kvmstats_error err;
	struct ks_seg_place pl;
	struct ks_seg_def def;

	(void)state;
	make_def(&def, "abi-baddef", 1);
	make_place(&pl);
	dup[1].value_index = 1;
	targets[1].stats = dup;
	targets[1].nr_stats = 2;
	assert_int_equal(ks_segment_create(&def, &pl, &w, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "same provider and name \"exits\""));
	make_def(&def, "abi-baddef", 1);
	targets[2].record_words = 8;	/* "exits" of "sim" is word 8 */
	assert_int_equal(ks_segment_create(&def, &pl, &w, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "beyond record_words 8"));
	make_def(&def, "abi-baddef", 1);
	def.ring_depth = 1;
	assert_int_equal(ks_segment_create(&def, &pl, &w, &err), -EINVAL);
	assert_null(w);
}

/* ---- corrupt segments ---- */

/* A valid published segment's bytes, with a few sweeps in it. */
struct image {
	uint8_t *buf;
	size_t size;
};

static void
image_make(struct image *img, const char *vm)
{
	struct ks_segment_writer *w = publish_vm(vm, 1);

	for (uint64_t s = 1; s <= 5; s++)
		write_sweep(w, s, UINT32_MAX);
	img->size = w->size;
	img->buf = malloc(img->size);
	assert_non_null(img->buf);
	/* The writer is idle: a plain copy of its mapping is a stable image. */
	memcpy(img->buf, w->base, img->size);
	ks_segment_unlink(w);
	ks_segment_destroy(&w);
}

/* Write @len bytes of @buf as segment "kvmstats.<vm>" and attach to it. */
static int
attach_image(const char *vm, const uint8_t *buf, size_t len, struct kvmstats_error *err)
{
	struct kvmstats_segment *seg = NULL;
	char path[4200];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/kvmstats.%s", shm_dir, vm);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	rc = kvmstats_attach(vm, NULL, &seg, err);
	if (rc == 0) {
		struct kvmstats_status st;
		uint64_t v[4096];
		unsigned got;

		/* Whatever attached must be readable without a fault. */
		kvmstats_status(seg, &st);
		if (kvmstats_cut_words(seg) <= 4096)
			(void)kvmstats_read_cut(seg, v, 4096, NULL);
		(void)kvmstats_read_history(seg, 0, 4, v, 4096, NULL, &got);
		kvmstats_detach(&seg);
	}
	return rc;
}

#define HDR(b)		((struct ks_shm_header *)(b))
#define PROV(b, i)	((struct ks_shm_provider *)((b) + HDR(b)->providers_off) + (i))
#define TGT(b, i)	((struct ks_shm_target *)((b) + HDR(b)->targets_off) + (i))
#define STAT(b, i)	((struct ks_shm_stat *)((b) + HDR(b)->stats_off) + (i))
#define STR(b, off)	((char *)(b) + HDR(b)->strings_off + (off))

/* Stat table: entries 0-1 are the VM's, 2-5 the vCPUs' shared range. */
enum corruption {
	C_MAGIC, C_MAJOR, C_MINOR, C_ENDIAN, C_HEADER_SIZE, C_SEGMENT_SIZE, C_DATA_OFF,
	C_DATA_SIZE, C_DEPTH_1, C_DEPTH_BIG, C_NO_PROVIDERS, C_PROVIDERS_OFF, C_STATS_OFF,
	C_NR_STATS_HUGE, C_NR_STATS_OVER, C_NR_TARGETS, C_STRINGS_SIZE, C_ENTRY_SIZE,
	C_VM_NAME_LEN, C_VM_NAME_NUL, C_STATE, C_PROV_OFF, C_PROV_EMBEDDED_NUL,
	C_PROV_DUP, C_STAT_TYPE, C_STAT_UNIT, C_STAT_BASE, C_UNKNOWN_BUCKET,
	C_UNKNOWN_NAME, C_UNKNOWN_PROVIDER, C_UNKNOWN_SIZE, C_UNKNOWN_VALUE_INDEX,
	C_UNKNOWN_DUP, C_STAT_SIZE, C_STAT_BUCKET,
	C_STAT_NO_BUCKET, C_STAT_PROVIDER, C_STAT_VALUE_INDEX, C_STAT_DUP, C_TGT_KIND,
	C_TGT_VCPU_INDEX, C_TGT_STATS_RANGE, C_TGT_STATS_WRAP, C_TGT_LABEL,
	C_RING_OUTSIDE, C_RING_BEFORE, C_RING_ALIGN, C_RING_OVERLAP, C_STRIDE_SMALL,
	C_STRIDE_ALIGN, C_STRIDE_DIFFERS, C_FRAMES_SHORT, C_RECORD_HUGE, C_TRUNCATED, C_EXTENDED, C_TINY,
	C_STATE_BUILDING, C_LABEL_CTRL, C_NAME_UTF8, C_PROV_BIDI, C_VM_NAME_C1, C_TWO_VMS,
	C_DUP_VCPU, C_NOTE_OUTSIDE, C_NOTE_CTRL, C_NOTE_RESERVED_OLD,
};

struct corruption_case {
	enum corruption what;
	const char *name;
	int code;
	const char *msg;
};

static const struct corruption_case cases[] = {
	{ C_MAGIC, "bad magic", -EBADMSG, "bad magic" },
	{ C_MAJOR, "ABI major 2", -EPROTO, "ABI version 2." },
	{ C_MINOR, "ABI minor 9 is compatible", 0, NULL },
	{ C_ENDIAN, "other endian", -EPROTO, "endian" },
	{ C_HEADER_SIZE, "header_size 100", -EBADMSG, "header_size 100" },
	{ C_SEGMENT_SIZE, "segment_size mismatch", -EBADMSG, "differs from the file size" },
	{ C_DATA_OFF, "data_off unaligned", -EBADMSG, "data_off" },
	{ C_DATA_SIZE, "data_size mismatch", -EBADMSG, "data_size" },
	{ C_DEPTH_1, "ring_depth 1", -EBADMSG, "ring_depth 1 " },
	{ C_DEPTH_BIG, "ring_depth 4096", -EBADMSG, "ring_depth 4096" },
	{ C_NO_PROVIDERS, "no providers", -EBADMSG, "nr_providers 0" },
	{ C_PROVIDERS_OFF, "provider table out of bounds", -EBADMSG, "provider table" },
	{ C_STATS_OFF, "stat table inside the header", -EBADMSG, "stat table [8," },
	{ C_NR_STATS_HUGE, "nr_stats 2^32-1", -EBADMSG, "nr_stats 4294967295" },
	{ C_NR_STATS_OVER, "stat table count overflows the schema", -EBADMSG, "stat table" },
	{ C_NR_TARGETS, "nr_targets huge", -EBADMSG, "nr_targets" },
	{ C_STRINGS_SIZE, "string table out of bounds", -EBADMSG, "string table" },
	{ C_ENTRY_SIZE, "target entry too small", -EBADMSG, "entry sizes" },
	{ C_VM_NAME_LEN, "vm_name beyond strings", -EBADMSG, "vm_name: string" },
	{ C_VM_NAME_NUL, "vm_name not NUL-terminated", -EBADMSG, "not NUL-terminated" },
	{ C_STATE, "state 7", -EBADMSG, "state 7" },
	{ C_PROV_OFF, "provider name offset out of bounds", -EBADMSG, "provider 1: string" },
	{ C_PROV_EMBEDDED_NUL, "provider name with a NUL", -EBADMSG, "has a NUL inside" },
	{ C_PROV_DUP, "duplicate provider names", -EBADMSG, "same name" },
	/*
	 * An unknown type, unit or base is a later minor version's stat:
	 * readers skip it (test_unknown_stats), but everything else about
	 * it is still checked.
	 */
	{ C_STAT_TYPE, "stat type 9 is skipped", 0, NULL },
	{ C_STAT_UNIT, "stat unit 7 is skipped", 0, NULL },
	{ C_STAT_BASE, "stat base 3 is skipped", 0, NULL },
	{ C_UNKNOWN_BUCKET, "bucket_size rule not applied to an unknown type", 0, NULL },
	{ C_UNKNOWN_NAME, "unknown stat, name out of bounds", -EBADMSG, "stat 1: string" },
	{ C_UNKNOWN_PROVIDER, "unknown stat, provider out of range", -EBADMSG, "stat 5: provider 5" },
	{ C_UNKNOWN_SIZE, "unknown stat, size 0", -EBADMSG, "stat 2: size 0" },
	{ C_UNKNOWN_VALUE_INDEX, "unknown stat, values beyond the record", -EBADMSG,
	  "stat 3 values [7, +4) beyond record_words 9" },
	{ C_UNKNOWN_DUP, "unknown stat, duplicate name", -EBADMSG, "same provider and name \"exits\"" },
	{ C_STAT_SIZE, "stat size 0", -EBADMSG, "stat 2: size 0" },
	{ C_STAT_BUCKET, "bucket_size on a log histogram", -EBADMSG, "bucket_size 5" },
	{ C_STAT_NO_BUCKET, "linear histogram without bucket_size", -EBADMSG, "bucket_size 0" },
	{ C_STAT_PROVIDER, "stat provider out of range", -EBADMSG, "provider 5" },
	{ C_STAT_VALUE_INDEX, "value_index + size beyond record", -EBADMSG, "beyond record_words 9" },
	{ C_STAT_DUP, "duplicate stat name in a target", -EBADMSG, "same provider and name" },
	{ C_TGT_KIND, "target kind 5", -EBADMSG, "target 1: kind 5" },
	{ C_TGT_VCPU_INDEX, "VM target with a vCPU index", -EBADMSG, "does not fit kind" },
	{ C_TGT_STATS_RANGE, "stats_first + count beyond the table", -EBADMSG, "beyond the 6 entries" },
	{ C_TGT_STATS_WRAP, "stats_first + count wraps 32 bits", -EBADMSG, "beyond the 6 entries" },
	{ C_TGT_LABEL, "label offset out of bounds", -EBADMSG, "target 2 label" },
	{ C_RING_OUTSIDE, "ring past the end", -EBADMSG, "outside the data section" },
	{ C_RING_BEFORE, "ring in the schema", -EBADMSG, "outside the data section" },
	{ C_RING_ALIGN, "ring unaligned", -EBADMSG, "not 64-byte aligned" },
	{ C_RING_OVERLAP, "overlapping slots", -EBADMSG, "overlaps the slot of target" },
	{ C_STRIDE_DIFFERS, "slot_stride not the frame", -EBADMSG, "differs from target 0's" },
	{ C_FRAMES_SHORT, "frames do not fill the data section", -EBADMSG,
	  "is not ring_depth 3 frames of" },
	{ C_STRIDE_SMALL, "slot_stride too small", -EBADMSG, "slot_stride 64 " },
	{ C_STRIDE_ALIGN, "slot_stride not a multiple of 64", -EBADMSG, "slot_stride 136" },
	{ C_RECORD_HUGE, "record_words 2^32-1", -EBADMSG, "slot_stride" },
	{ C_TRUNCATED, "truncated file", -EBADMSG, "differs from the file size" },
	{ C_EXTENDED, "file longer than segment_size", -EBADMSG, "differs from the file size" },
	{ C_TINY, "file shorter than a header", -EBADMSG, "shorter than the 256-byte header" },
	/* ABI 1.1: what a terminal, JSON or QMP could not take. */
	{ C_STATE_BUILDING, "state building behind an open gate", -EAGAIN, "building behind" },
	{ C_LABEL_CTRL, "a label with an escape sequence", -EBADMSG,
	  "target 1 label: string at" },
	{ C_NAME_UTF8, "a stat name that is not UTF-8", -EBADMSG, "has invalid UTF-8 at byte 0" },
	{ C_PROV_BIDI, "a provider name with a bidi override", -EBADMSG,
	  "bidirectional formatting character" },
	{ C_VM_NAME_C1, "a VM name with a C1 control", -EBADMSG, "vm_name: string at 0 has a control" },
	{ C_TWO_VMS, "two VM targets", -EBADMSG, "target 1 is a second VM target" },
	{ C_DUP_VCPU, "two vCPUs with one index", -EBADMSG, "two vCPU targets have vcpu_index 0" },
	/* ABI 1.2: the note is a string like any other; before 1.2 it is not there. */
	{ C_NOTE_OUTSIDE, "a note beyond the string table", -EBADMSG, "note: string" },
	{ C_NOTE_CTRL, "a note with an escape sequence", -EBADMSG, "note: string at" },
	{ C_NOTE_RESERVED_OLD, "garbage in a 1.1 segment's note words", 0, NULL },
};

static void
corrupt_header(uint8_t *b, enum corruption what)
{
	struct ks_shm_header *h = HDR(b);

	switch (what) {
	case C_MAGIC: b[3] ^= 0x20; break;
	case C_MAJOR: h->abi_major = 2; break;
	case C_STATE_BUILDING: atomic_store(&h->state, KS_STATE_BUILDING); break;
	case C_MINOR: h->abi_minor = 9; break;
	case C_ENDIAN: h->endian = 0x04030201; break;
	case C_HEADER_SIZE: h->header_size = 100; break;
	case C_SEGMENT_SIZE: h->segment_size += 4096; break;
	case C_DATA_OFF: h->data_off += 8; break;
	case C_DATA_SIZE: h->data_size -= 64; break;
	case C_DEPTH_1: h->ring_depth = 1; break;
	case C_DEPTH_BIG: h->ring_depth = 4096; break;
	case C_NO_PROVIDERS: h->nr_providers = 0; break;
	case C_PROVIDERS_OFF: h->providers_off = (uint32_t)h->data_off - 8; break;
	case C_STATS_OFF: h->stats_off = 8; break;
	case C_NR_STATS_HUGE: h->nr_stats = UINT32_MAX; break;
	case C_NR_STATS_OVER: h->nr_stats = KS_STATS_MAX; break;
	case C_NR_TARGETS: h->nr_targets = 0x10000000; break;
	case C_STRINGS_SIZE: h->strings_size = (uint32_t)h->data_off; break;
	case C_ENTRY_SIZE: h->target_entry_size = 32; break;
	case C_VM_NAME_LEN: h->vm_name_len = h->strings_size; break;
	case C_VM_NAME_NUL: h->vm_name_len -= 1; break;
	case C_STATE: atomic_store(&h->state, 7); break;
	case C_NOTE_OUTSIDE: h->note_off = 0; h->note_len = h->strings_size; break;
	case C_NOTE_RESERVED_OLD:
		h->abi_minor = 1;
		h->note_off = 0xdeadbeef;
		h->note_len = 0xdeadbeef;
		break;
	default: break;
	}
}

static void
corrupt_schema(uint8_t *b, enum corruption what)
{
	switch (what) {
	case C_PROV_OFF: PROV(b, 1)->name_off = 0xfffffff0u; break;
	case C_PROV_EMBEDDED_NUL: STR(b, PROV(b, 1)->name_off)[1] = '\0'; break;
	case C_PROV_DUP: *PROV(b, 1) = *PROV(b, 0); break;
	case C_STAT_TYPE: STAT(b, 3)->type = 9; break;
	case C_STAT_UNIT: STAT(b, 0)->unit = 7; break;
	case C_STAT_BASE: STAT(b, 1)->base = 3; break;
	case C_UNKNOWN_BUCKET: STAT(b, 3)->type = 9; STAT(b, 3)->bucket_size = 5; break;
	case C_UNKNOWN_NAME:
		STAT(b, 1)->unit = 7;
		STAT(b, 1)->name_off = HDR(b)->strings_size;
		break;
	case C_UNKNOWN_PROVIDER: STAT(b, 5)->base = 16; STAT(b, 5)->provider = 5; break;
	case C_UNKNOWN_SIZE: STAT(b, 2)->type = 200; STAT(b, 2)->size = 0; break;
	case C_UNKNOWN_VALUE_INDEX: STAT(b, 3)->type = 9; STAT(b, 3)->value_index = 7; break;
	case C_UNKNOWN_DUP:	/* a second kvm "exits", of a type from the future */
		STAT(b, 5)->type = 9;
		STAT(b, 5)->provider = 0;
		break;
	case C_STAT_SIZE: STAT(b, 2)->size = 0; break;
	case C_STAT_BUCKET: STAT(b, 3)->bucket_size = 5; break;
	case C_STAT_NO_BUCKET: STAT(b, 4)->bucket_size = 0; break;
	case C_STAT_PROVIDER: STAT(b, 5)->provider = 5; break;
	case C_STAT_VALUE_INDEX: STAT(b, 4)->value_index = 7; break;
	case C_STAT_DUP: STAT(b, 5)->provider = 0; break;	/* a second kvm "exits" */
	case C_TGT_KIND: TGT(b, 1)->kind = 5; break;
	case C_TGT_VCPU_INDEX: TGT(b, 0)->vcpu_index = 0; break;
	case C_TGT_STATS_RANGE: TGT(b, 3)->stats_count = 5; break;
	case C_TGT_STATS_WRAP: TGT(b, 3)->stats_first = 0xfffffffeu; break;
	case C_TGT_LABEL: TGT(b, 2)->label_off = HDR(b)->strings_size; break;
	case C_RING_OUTSIDE: TGT(b, 3)->ring_off = HDR(b)->segment_size - 64; break;
	case C_RING_BEFORE: TGT(b, 0)->ring_off = HDR(b)->data_off - 4096; break;
	case C_RING_ALIGN: TGT(b, 1)->ring_off += 8; break;
	case C_RING_OVERLAP: TGT(b, 2)->ring_off = TGT(b, 1)->ring_off + 64; break;
	case C_STRIDE_SMALL: TGT(b, 1)->slot_stride = 64; break;
	case C_STRIDE_DIFFERS: TGT(b, 1)->slot_stride -= 64; break;	/* the slot still fits */
	case C_FRAMES_SHORT: HDR(b)->ring_depth = DEPTH - 1; break;
	case C_STRIDE_ALIGN: TGT(b, 1)->slot_stride = 136; break;
	case C_RECORD_HUGE: TGT(b, 2)->record_words = UINT32_MAX; break;
	case C_LABEL_CTRL: STR(b, TGT(b, 1)->label_off)[3] = '\033'; break;
	case C_NAME_UTF8: STR(b, STAT(b, 2)->name_off)[0] = (char)0xff; break;
	case C_PROV_BIDI: memcpy(STR(b, PROV(b, 1)->name_off), "\xe2\x80\xae", 3); break;
	case C_VM_NAME_C1: memcpy(STR(b, HDR(b)->vm_name_off), "\xc2\x9b", 2); break;
	case C_TWO_VMS:
		TGT(b, 1)->kind = KS_TARGET_VM;
		TGT(b, 1)->vcpu_index = KS_VCPU_INDEX_NONE;
		break;
	case C_DUP_VCPU: TGT(b, 2)->vcpu_index = TGT(b, 1)->vcpu_index; break;
	case C_NOTE_CTRL:
		/* Target 1's label, read as the note, with an ESC in it: found at the note. */
		HDR(b)->note_off = TGT(b, 1)->label_off;
		HDR(b)->note_len = TGT(b, 1)->label_len;
		STR(b, TGT(b, 1)->label_off)[3] = '\033';
		break;
	default: corrupt_header(b, what); break;
	}
}

static void
remove_file(const char *file)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", shm_dir, file);
	unlink(path);
}

/* ---- stats of a later minor version: skipped, not refused ---- */

#define MIXED_VM_WORDS		4
#define MIXED_VCPU_WORDS	14

/* The VM's range starts and ends with a stat this reader cannot know. */
static const struct ks_seg_stat_def mixed_vm_stats[] = {
	{ .name = "future_vm", .provider = 0, .type = 9, .unit = KS_UNIT_NONE,
	  .base = 10, .size = 2, .value_index = 0 },
	{ .name = "pages_4k", .provider = 0, .type = KS_TYPE_INSTANT, .unit = KS_UNIT_BYTES,
	  .base = 2, .exponent = 12, .size = 1, .value_index = 2 },
	{ .name = "vm_joules", .provider = 1, .type = KS_TYPE_CUMULATIVE, .unit = 7,
	  .base = 10, .size = 1, .value_index = 3 },
};

/* Known and unknown interleaved; only entries 0, 2, 4 and 6 are known. */
static const struct ks_seg_stat_def mixed_vcpu_stats[] = {
	{ .name = "exits", .provider = 0, .type = KS_TYPE_CUMULATIVE, .unit = KS_UNIT_NONE,
	  .base = 10, .size = 1, .value_index = 0 },
	/* A new histogram kind with a bucket_size: no 1.0 rule applies to it. */
	{ .name = "future_hist", .provider = 0, .type = 9, .unit = KS_UNIT_SECONDS,
	  .base = 10, .exponent = -9, .size = 3, .bucket_size = 7, .value_index = 1 },
	{ .name = "halt_wait_hist", .provider = 0, .type = KS_TYPE_LOG_HIST,
	  .unit = KS_UNIT_SECONDS, .base = 10, .exponent = -9, .size = 4, .value_index = 4 },
	{ .name = "joules", .provider = 0, .type = KS_TYPE_CUMULATIVE, .unit = 7,
	  .base = 10, .size = 1, .value_index = 8 },
	{ .name = "lin", .provider = 0, .type = KS_TYPE_LINEAR_HIST, .unit = KS_UNIT_NONE,
	  .base = 10, .size = 3, .bucket_size = 10, .value_index = 9 },
	{ .name = "hex", .provider = 1, .type = KS_TYPE_INSTANT, .unit = KS_UNIT_NONE,
	  .base = 16, .size = 1, .value_index = 12 },
	{ .name = "exits", .provider = 1, .type = KS_TYPE_PEAK, .unit = KS_UNIT_CYCLES,
	  .base = 10, .size = 1, .value_index = 13 },
};
static const unsigned mixed_vcpu_known[] = { 0, 2, 4, 6 };

/* Stat table: VM entries 0-2, the two vCPUs' shared range 3-9. */
#define MIXED_FUTURE_HIST	4

static struct ks_segment_writer *
publish_mixed(const char *vm)
{
	static const struct ks_seg_target_def mixed_targets[] = {
		{ .kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE, .label = "",
		  .id = "", .nr_stats = 3, .stats = mixed_vm_stats,
		  .record_words = MIXED_VM_WORDS },
		{ .kind = KS_TARGET_VCPU, .vcpu_index = 0, .label = "/machine/cpu[0]",
		  .id = "", .nr_stats = 7, .stats = mixed_vcpu_stats,
		  .record_words = MIXED_VCPU_WORDS },
		{ .kind = KS_TARGET_VCPU, .vcpu_index = 1, .label = "/machine/cpu[1]",
		  .id = "", .nr_stats = 7, .stats = mixed_vcpu_stats,
		  .record_words = MIXED_VCPU_WORDS },
	};
	const struct ks_seg_def def = {
		.vm_name = vm, .incarnation = 1, .generation = 1, .poll_period_ns = 1000000,
		.ring_depth = DEPTH, .nr_providers = 2, .providers = providers,
		.nr_targets = 3, .targets = mixed_targets,
	};
	struct ks_segment_writer *w;
	struct kvmstats_error err;
	struct ks_seg_place pl;

	make_place(&pl);
	/* The writer runs the validator: unknown kinds must pass it. */
	if (ks_segment_create(&def, &pl, &w, &err) < 0)
		fail_msg("create %s: %s", vm, err.msg);
	if (ks_segment_publish(w, NULL, &err) < 0)
		fail_msg("publish %s: %s", vm, err.msg);
	return w;
}

static void
check_mixed_schema(const struct kvmstats_segment *seg)
{
	struct kvmstats_stat_handle h;
	static const char *const hidden[] = { "future_hist", "joules", "hex" };

	assert_int_equal(kvmstats_info(seg)->nr_stats, 1 + 4);
	assert_int_equal(kvmstats_target(seg, 0)->nr_stats, 1);
	assert_int_equal(kvmstats_target(seg, 0)->record_words, MIXED_VM_WORDS);
	check_stat(kvmstats_target_stat(seg, 0, 0), &mixed_vm_stats[1]);
	assert_null(kvmstats_target_stat(seg, 0, 1));
	assert_int_equal(kvmstats_stat_lookup(seg, 0, NULL, "future_vm", &h), -ENOENT);
	assert_int_equal(kvmstats_stat_lookup(seg, 0, "sim", "vm_joules", &h), -ENOENT);
	for (unsigned t = 1; t <= 2; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		assert_int_equal(ti->nr_stats, 4);
		/* The record is the publisher's, unknown stats' words included. */
		assert_int_equal(ti->record_words, MIXED_VCPU_WORDS);
		assert_int_equal(ti->cut_offset, MIXED_VM_WORDS + (t - 1) * MIXED_VCPU_WORDS);
		for (unsigned j = 0; j < 4; j++) {
			check_stat(kvmstats_target_stat(seg, t, j),
				   &mixed_vcpu_stats[mixed_vcpu_known[j]]);
			/* Still one shared range after the renumbering. */
			assert_ptr_equal(kvmstats_target_stat(seg, t, j),
					 kvmstats_target_stat(seg, 1, j));
		}
		assert_null(kvmstats_target_stat(seg, t, 4));
		for (unsigned k = 0; k < 3; k++) {
			assert_int_equal(kvmstats_stat_lookup(seg, t, NULL, hidden[k], &h), -ENOENT);
			assert_int_equal(kvmstats_stat_lookup(seg, t, "kvm", hidden[k], &h), -ENOENT);
			assert_int_equal(kvmstats_stat_lookup(seg, t, "sim", hidden[k], &h), -ENOENT);
		}
	}
	assert_int_equal(kvmstats_cut_words(seg), MIXED_VM_WORDS + 2 * MIXED_VCPU_WORDS);
}

static void
check_mixed_values(const struct kvmstats_segment *seg, uint64_t sweep)
{
	struct kvmstats_stat_handle h;
	uint64_t v[64];

	assert_int_equal(kvmstats_stat_lookup(seg, 0, NULL, "pages_4k", &h), 0);
	assert_int_equal(kvmstats_read_scalar(seg, &h, v, NULL), 0);
	assert_int_equal(v[0], val(sweep, 0, 2));
	for (uint32_t t = 1; t <= 2; t++) {
		assert_int_equal(kvmstats_stat_lookup(seg, t, "kvm", "exits", &h), 0);
		assert_int_equal(kvmstats_read_scalar(seg, &h, v, NULL), 0);
		assert_int_equal(v[0], val(sweep, t, 0));
		assert_int_equal(kvmstats_stat_lookup(seg, t, NULL, "halt_wait_hist", &h), 0);
		assert_int_equal(kvmstats_read_values(seg, &h, v, 4, NULL), 0);
		for (uint32_t i = 0; i < 4; i++)
			assert_int_equal(v[i], val(sweep, t, 4 + i));
		assert_int_equal(kvmstats_stat_lookup(seg, t, NULL, "lin", &h), 0);
		assert_int_equal(kvmstats_read_values(seg, &h, v, 3, NULL), 0);
		for (uint32_t i = 0; i < 3; i++)
			assert_int_equal(v[i], val(sweep, t, 9 + i));
		assert_int_equal(kvmstats_stat_lookup(seg, t, "sim", "exits", &h), 0);
		assert_int_equal(h.info->value_index, 13);
		assert_int_equal(kvmstats_read_scalar(seg, &h, v, NULL), 0);
		assert_int_equal(v[0], val(sweep, t, 13));
		assert_int_equal(kvmstats_read_record(seg, t, v, MIXED_VCPU_WORDS, NULL), 0);
		check_record(v, sweep, t, MIXED_VCPU_WORDS);
	}
	assert_int_equal(kvmstats_read_cut(seg, v, 64, NULL), 0);
	for (uint32_t t = 0; t <= 2; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		check_record(v + ti->cut_offset, sweep, t, ti->record_words);
	}
}

static void
test_unknown_stats(void **state)
{
	struct ks_segment_writer *w;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct image img;

	(void)state;
	assert_true(ks_stat_known(KS_TYPE_MAX, KS_UNIT_MAX, KS_BASE_POW2));
	assert_true(ks_stat_known(0, 0, KS_BASE_POW10));
	assert_false(ks_stat_known(KS_TYPE_MAX + 1, 0, KS_BASE_POW10));
	assert_false(ks_stat_known(0, KS_UNIT_MAX + 1, KS_BASE_POW10));
	assert_false(ks_stat_known(0, 0, 16));
	assert_false(ks_stat_known(0, 0, 0));

	w = publish_mixed("abi-unknown");
	write_sweep(w, 1, UINT32_MAX);
	write_sweep(w, 2, UINT32_MAX);
	seg = attach_ok("abi-unknown");
	check_mixed_schema(seg);
	check_mixed_values(seg, 2);
	kvmstats_detach(&seg);

	/* The same segment with the unknown stat's values beyond the record. */
	img.size = w->size;
	img.buf = malloc(img.size);
	assert_non_null(img.buf);
	memcpy(img.buf, w->base, img.size);
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
	assert_int_equal(attach_image("abi-unknown", img.buf, img.size, &err), 0);
	assert_string_equal(STR(img.buf, STAT(img.buf, MIXED_FUTURE_HIST)->name_off),
			    "future_hist");
	STAT(img.buf, MIXED_FUTURE_HIST)->value_index = MIXED_VCPU_WORDS - 2;
	assert_int_equal(attach_image("abi-unknown", img.buf, img.size, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "stat 4 values [12, +3) beyond record_words 14"));
	remove_file("kvmstats.abi-unknown");
	free(img.buf);
}

static void
test_corrupt_table(void **state)
{
	struct image img;
	struct kvmstats_error err;
	uint8_t *b;

	(void)state;
	image_make(&img, "abi-image");
	b = malloc(img.size + 4096);
	assert_non_null(b);
	assert_int_equal(attach_image("abi-corrupt", img.buf, img.size, &err), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct corruption_case *c = &cases[i];
		size_t len = img.size;
		int rc;

		memset(b, 0, img.size + 4096);
		memcpy(b, img.buf, img.size);
		corrupt_schema(b, c->what);
		if (c->what == C_TRUNCATED)
			len = img.size - 4096;
		else if (c->what == C_EXTENDED)
			len = img.size + 4096;
		else if (c->what == C_TINY)
			len = 200;
		memset(&err, 0, sizeof(err));
		rc = attach_image("abi-corrupt", b, len, &err);
		if (rc != c->code)
			fail_msg("%s: attach returned %d, expected %d (%s)", c->name, rc, c->code,
				 err.msg);
		if (c->msg != NULL && strstr(err.msg, c->msg) == NULL)
			fail_msg("%s: message \"%s\" lacks \"%s\"", c->name, err.msg, c->msg);
		if (c->msg != NULL && strstr(err.msg, "kvmstats.abi-corrupt") == NULL)
			fail_msg("%s: message \"%s\" does not name the segment", c->name, err.msg);
	}
	remove_file("kvmstats.abi-corrupt");
	free(b);
	free(img.buf);
}

/* Random damage to the header and schema: attach succeeds or fails cleanly. */
static void
test_random_corruption(void **state)
{
	unsigned iters = getenv("KVMSTATS_UNDER_VALGRIND") ? 300 : 4000;
	/* Random each run (printed); KVMSTATS_TEST_SEED=N runs one again. */
	unsigned seed = getenv("KVMSTATS_TEST_SEED") ? (unsigned)atoi(getenv("KVMSTATS_TEST_SEED")) :
			(unsigned)kvmstats_now_ns();
	unsigned ok = 0, refused = 0;
	struct kvmstats_error err;
	struct image img;
	uint8_t *b;

	(void)state;
	image_make(&img, "abi-image2");
	b = malloc(img.size);
	assert_non_null(b);
	print_message("random corruption seed %u\n", seed);
	srand(seed);
	for (unsigned i = 0; i < iters; i++) {
		uint64_t data_off = HDR(img.buf)->data_off;
		unsigned flips = 1 + (unsigned)rand() % 8;
		int rc;

		memcpy(b, img.buf, img.size);
		for (unsigned f = 0; f < flips; f++) {
			/* Mostly the schema, sometimes the header (but not ready). */
			size_t off = rand() % 4 == 0 ? (size_t)rand() % 192
						     : 256 + (size_t)rand() % (data_off - 256);

			if (off >= 16 && off < 20)
				continue;
			b[off] ^= (uint8_t)(1 + rand() % 255);
		}
		rc = attach_image("abi-random", b, img.size, &err);
		if (rc == 0)
			ok++;
		/* -EAGAIN: a flip made state 0 (building) behind the open gate. */
		else if (rc == -EBADMSG || rc == -EPROTO || rc == -EAGAIN)
			refused++;
		else
			fail_msg("iteration %u: attach returned %d: %s", i, rc, err.msg);
	}
	print_message("random corruption: %u attached, %u refused\n", ok, refused);
	assert_true(refused > 0);
	remove_file("kvmstats.abi-random");
	free(b);
	free(img.buf);
}

/* ---- a live writer: every read is one consistent sample ---- */

struct live {
	struct ks_segment_writer *w;
	uint64_t sweeps;
	_Atomic int done;
};

static void *
live_writer(void *arg)
{
	struct live *lv = arg;

	for (uint64_t s = 1; s <= lv->sweeps; s++)
		write_sweep(lv->w, s, s % 7 == 0 ? 2 : UINT32_MAX);
	atomic_store(&lv->done, 1);
	return NULL;
}

static void
check_live_cut(const struct kvmstats_segment *seg, uint64_t *v, uint64_t *last)
{
	struct kvmstats_sample smps[1 + NR_VCPUS];
	int rc = kvmstats_read_cut(seg, v, 64, smps);

	if (rc == -ENODATA || rc == -EAGAIN)
		return;
	assert_int_equal(rc, 0);
	for (uint32_t t = 0; t <= NR_VCPUS; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		assert_int_equal(smps[t].sweep, smps[0].sweep);
		assert_int_equal(smps[t].time_ns, time_of(smps[0].sweep, t));
		check_record(v + ti->cut_offset, smps[0].sweep, t, ti->record_words);
	}
	assert_true(smps[0].sweep >= *last);
	*last = smps[0].sweep;
}

static void
check_live_history(const struct kvmstats_segment *seg, uint64_t *v)
{
	struct kvmstats_sample smps[DEPTH];
	unsigned got;
	int rc = kvmstats_read_history(seg, 2, DEPTH, v, DEPTH * VCPU_WORDS, smps, &got);

	if (rc == -ENODATA || rc == -EAGAIN)
		return;
	assert_int_equal(rc, 0);
	assert_true(got >= 1);
	for (unsigned k = 0; k < got; k++) {
		assert_int_equal(smps[k].sweep, smps[0].sweep - k);
		assert_int_equal(smps[k].flags, smps[k].sweep % 7 == 0 ? KVMSTATS_SAMPLE_STALE : 0);
		check_record(v + k * VCPU_WORDS, smps[k].sweep, 2, VCPU_WORDS);
	}
}

static void
test_live_writer(void **state)
{
	struct live lv = { .w = publish_vm("abi-live", 1), .sweeps = 200000 };
	struct kvmstats_segment *seg = attach_ok("abi-live");
	uint64_t v[64], last = 0, reads = 0;
	pthread_t th;

	(void)state;
	if (getenv("KVMSTATS_UNDER_VALGRIND"))
		lv.sweeps = 5000;
	assert_int_equal(pthread_create(&th, NULL, live_writer, &lv), 0);
	while (!atomic_load(&lv.done)) {
		check_live_cut(seg, v, &last);
		check_live_history(seg, v);
		reads++;
	}
	pthread_join(th, NULL);
	check_live_cut(seg, v, &last);
	assert_int_equal(last, lv.sweeps);
	print_message("live writer: %llu read rounds\n", (unsigned long long)reads);
	kvmstats_detach(&seg);
	ks_segment_unlink(lv.w);
	ks_segment_destroy(&lv.w);
}

static int
setup_dir(void **state)
{
	(void)state;
	return test_shm_dir(shm_dir, sizeof(shm_dir), "test_abi");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_schema_roundtrip),
		cmocka_unit_test(test_nodata),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_stat_read_edges),
		cmocka_unit_test(test_ended_superseded),
		cmocka_unit_test(test_not_ready),
		cmocka_unit_test(test_spoofed_owner),
		cmocka_unit_test(test_writable_segment_refused),
		cmocka_unit_test(test_enumerate),
		cmocka_unit_test(test_bad_definition),
		cmocka_unit_test(test_corrupt_table),
		cmocka_unit_test(test_unknown_stats),
		cmocka_unit_test(test_random_corruption),
		cmocka_unit_test(test_live_writer),
	};

	return cmocka_run_group_tests(tests, setup_dir, NULL);
}
