/* SPDX-License-Identifier: MIT */
/*
 * test_read_newest.c - every read returns the newest sweep, whatever the
 * handle saw before.
 *
 * Here the test drives the sweeps itself, one thread, so "newest" is
 * exact: between reads it publishes 0, 1, depth - 1, depth (the last
 * read's slot index again, holding a later sweep), depth + 1 or several
 * laps of sweeps, and every kind of read, through a handle that reads
 * after every gap and one that reads only now and then, must come back
 * with the header's sweep and that sweep's values (tests/lib/synth_vm.h).
 * A read that kept anything from its handle's last read one sweep too
 * long fails here: a guess of the slot from the last sweep found, tried
 * and not kept (bench/REPORT.md 1.5), failed when its check of
 * header.sweep was taken out.
 *
 * At depths 2 (the latch), 4 (the default) and 8 (a mask over more
 * slots than any gap but the laps); a stat read as a scalar and as one
 * value must give the same sample.  The gaps turn the reads' guess of the
 * next sweep (reader/lib/read.c) on and off; a last test checks, step by
 * step, when it must be on and how far it looks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "kvmstats/reader.h"
#include "ks_reader.h"		/* the guess, to check its steps */
#include "synth_vm.h"

#define NR_VCPUS	3
#define MAX_DEPTH	8

struct fixture {
	struct synth_vm sv;
	struct ks_engine *e;
	struct kvmstats_segment *often, *seldom;
	uint64_t *buf;
	size_t buf_words;
	struct kvmstats_sample samples[MAX_DEPTH > NR_VCPUS + 1 ? MAX_DEPTH : NR_VCPUS + 1];
	uint64_t sweeps;		/* published so far */
	unsigned depth;
};

static struct kvmstats_segment *
attach(const char *vm)
{
	struct kvmstats_error err;
	struct kvmstats_segment *seg;

	if (kvmstats_attach(vm, NULL, &seg, &err) < 0)
		fail_msg("attach %s: %s", vm, err.msg);
	return seg;
}

static void
check_sample(struct fixture *f, uint32_t t, const uint64_t *v, uint32_t first, uint32_t n,
	     const struct kvmstats_sample *s, uint64_t want_sweep)
{
	uint64_t want = synth_expected_sweep(&f->sv, t, want_sweep);

	assert_int_equal(s->sweep, want_sweep);
	for (uint32_t w = 0; w < n; w++)
		assert_int_equal(v[w], synth_value(want, t, first + w));
}

/* Every kind of read through @seg: each must be of the newest sweep. */
static void
read_all(struct fixture *f, struct kvmstats_segment *seg)
{
	unsigned n = kvmstats_nr_targets(seg), got = 0;
	struct kvmstats_status st;
	struct kvmstats_sample s;
	uint64_t v;

	kvmstats_status(seg, &st);
	assert_int_equal(st.sweep, f->sweeps);
	for (uint32_t t = 0; t < n; t++) {
		struct kvmstats_stat_handle h;
		uint32_t words = kvmstats_target(seg, t)->record_words;

		assert_int_equal(kvmstats_stat_lookup(seg, t, "kvm", t ? "c5" : "vm_c3", &h), 0);
		assert_int_equal(kvmstats_read_scalar(seg, &h, &v, &s), 0);
		check_sample(f, t, &v, h.info->value_index, 1, &s, f->sweeps);
		/* The same stat through read_values: the same sample. */
		assert_int_equal(kvmstats_read_values(seg, &h, f->buf, 1, &s), 0);
		check_sample(f, t, f->buf, h.info->value_index, 1, &s, f->sweeps);
		assert_int_equal(kvmstats_read_record(seg, t, f->buf, f->buf_words, &s), 0);
		check_sample(f, t, f->buf, 0, words, &s, f->sweeps);
		if (t > 0) {
			assert_int_equal(kvmstats_stat_lookup(seg, t, NULL, "hist1", &h), 0);
			assert_int_equal(kvmstats_read_values(seg, &h, f->buf, f->buf_words, &s), 0);
			check_sample(f, t, f->buf, h.info->value_index, h.info->size, &s, f->sweeps);
		}
		assert_int_equal(kvmstats_read_history(seg, t, f->depth, f->buf, f->buf_words,
						       f->samples, &got), 0);
		assert_true(got >= 1);
		for (unsigned k = 0; k < got; k++)
			check_sample(f, t, f->buf + (size_t)k * words, 0, words, &f->samples[k],
				     f->sweeps - k);
	}
	assert_int_equal(kvmstats_read_cut(seg, f->buf, f->buf_words, f->samples), 0);
	for (uint32_t t = 0; t < n; t++)
		check_sample(f, t, f->buf + kvmstats_target(seg, t)->cut_offset, 0,
			     kvmstats_target(seg, t)->record_words, &f->samples[t], f->sweeps);
}

static void
sweep(struct fixture *f, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		assert_int_equal(ks_engine_sweep(f->e), 0);
		f->sweeps++;
	}
}

static void
reads_follow_every_gap(unsigned depth)
{
	/* Gaps around the ring's depth, in an order that gives each one after each. */
	const unsigned gaps[] = {
		0, 1, 0, depth, 1, depth - 1, depth + 1, 0, 2 * depth, 1, 1, 3 * depth + 2,
		depth - 1, depth, depth, 2, 0, depth + 1, 5 * depth, 1, 0, 0, 3, depth - 2,
	};
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct fixture f = { 0 };
	struct kvmstats_status st;
	char vm[64];

	snprintf(vm, sizeof(vm), "newest-%d-d%u", getpid(), depth);
	f.depth = depth;
	/* No failing source: each slot holds its own sweep's values. */
	assert_int_equal(synth_vm_init(&f.sv, vm, NR_VCPUS, 0, 0), 0);
	ks_engine_config_init(&cfg);
	cfg.ring_depth = depth;
	cfg.ring_min_bytes = 0;		/* exactly this depth: the laps are the point */
	assert_int_equal(ks_engine_create(&cfg, &f.e, &err), 0);
	if (ks_engine_add_vm(f.e, &f.sv.def, NULL, &err) < 0)
		fail_msg("add_vm: %s", err.msg);
	synth_vm_clear(&f.sv);	/* the sources are the engine's now */
	f.often = attach(vm);
	f.seldom = attach(vm);
	assert_int_equal(kvmstats_info(f.often)->ring_depth, depth);
	f.buf_words = kvmstats_cut_words(f.often) * depth;
	f.buf = calloc(f.buf_words, sizeof(*f.buf));
	assert_non_null(f.buf);

	/* The engine publishes a VM's first sweep as it adds it (the ready gate). */
	kvmstats_status(f.often, &st);
	assert_true(st.sweep >= 1);
	f.sweeps = st.sweep;

	for (unsigned round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
			sweep(&f, gaps[i]);
			read_all(&f, f.often);
			/* The other handle, every 5th gap: its last sweep is laps behind. */
			if ((i + round) % 5 == 0)
				read_all(&f, f.seldom);
		}
	}
	kvmstats_detach(&f.often);
	kvmstats_detach(&f.seldom);
	ks_engine_destroy(&f.e);
	free(f.buf);
}

/*
 * The guess (reader/lib/read.c), step by step: on only after two reads in
 * a row moved on by 1 to 4 sweeps, prefetching from the smaller of the
 * two steps to the larger; off at once for a read that finds the sweep it
 * found last, or one more than 4 on.  Reads of one target, of one value
 * or of many, use and change it; cuts neither; and it is the thread's for
 * one segment at a time.  Every read is also checked for the newest
 * sweep's value.
 */
static void
guess_follows_the_reads(void **state)
{
	/* A gap of sweeps, then one scalar read, then what the guess must say. */
	static const struct { unsigned gap, step, lo, hi; } moves[] = {
		{ 0, 0, 0, 0 }, { 1, 1, 0, 0 }, { 1, 1, 1, 1 }, { 3, 3, 1, 3 }, { 1, 1, 1, 3 },
		{ 1, 1, 1, 1 }, { 0, 0, 0, 0 }, { 2, 2, 0, 0 }, { 4, 4, 2, 4 }, { 5, 0, 0, 0 },
		{ 4, 4, 0, 0 }, { 4, 4, 4, 4 }, { 9, 0, 0, 0 }, { 1, 1, 0, 0 }, { 2, 2, 1, 2 },
		{ 0, 0, 0, 0 },
	};
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct fixture f = { 0 };
	struct kvmstats_stat_handle h, other;
	struct kvmstats_status st;
	struct kvmstats_sample s;
	unsigned got;
	uint64_t v;
	char vm[64];

	(void)state;
	snprintf(vm, sizeof(vm), "guess-%d", getpid());
	f.depth = 8;
	assert_int_equal(synth_vm_init(&f.sv, vm, NR_VCPUS, 0, 0), 0);
	ks_engine_config_init(&cfg);
	cfg.ring_depth = f.depth;
	cfg.ring_min_bytes = 0;
	assert_int_equal(ks_engine_create(&cfg, &f.e, &err), 0);
	if (ks_engine_add_vm(f.e, &f.sv.def, NULL, &err) < 0)
		fail_msg("add_vm: %s", err.msg);
	synth_vm_clear(&f.sv);
	f.often = attach(vm);
	f.buf_words = kvmstats_cut_words(f.often) * f.depth;
	f.buf = calloc(f.buf_words, sizeof(*f.buf));
	assert_non_null(f.buf);
	kvmstats_status(f.often, &st);
	f.sweeps = st.sweep;
	assert_int_equal(kvmstats_stat_lookup(f.often, 1, "kvm", "c5", &h), 0);
	assert_int_equal(kvmstats_read_scalar(f.often, &h, &v, &s), 0);

	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
		sweep(&f, moves[i].gap);
		assert_int_equal(kvmstats_read_scalar(f.often, &h, &v, &s), 0);
		check_sample(&f, 1, &v, h.info->value_index, 1, &s, f.sweeps);
		assert_ptr_equal(ks_read_guess().seg, f.often);
		assert_int_equal(ks_read_guess().last, f.sweeps);
		assert_int_equal(ks_read_guess().step, moves[i].step);
		assert_int_equal(ks_read_guess().lo, moves[i].lo);
		assert_int_equal(ks_read_guess().hi, moves[i].hi);
	}

	/*
	 * Reads of a record, of a histogram, of a history (its newest sample)
	 * move it on as scalar reads do; a cut leaves it as it was.
	 */
	{
		static const struct { unsigned gap, step, lo, hi; } more[] = {
			{ 1, 1, 0, 0 }, { 1, 1, 1, 1 }, { 2, 2, 1, 2 }, { 1, 2, 1, 2 },
		};
		struct kvmstats_stat_handle hist;
		uint64_t last = 0;

		assert_int_equal(kvmstats_stat_lookup(f.often, 1, NULL, "hist1", &hist), 0);
		for (unsigned k = 0; k < 4; k++) {
			sweep(&f, more[k].gap);
			if (k == 0)
				assert_int_equal(kvmstats_read_record(f.often, 1, f.buf,
								      f.buf_words, &s), 0);
			else if (k == 1)
				assert_int_equal(kvmstats_read_values(f.often, &hist, f.buf,
								      f.buf_words, &s), 0);
			else if (k == 2)
				assert_int_equal(kvmstats_read_history(f.often, 1, 2, f.buf,
								       f.buf_words, f.samples,
								       &got), 0);
			else
				assert_int_equal(kvmstats_read_cut(f.often, f.buf, f.buf_words,
								   NULL), 0);
			if (k < 3)
				last = f.sweeps;
			assert_int_equal(ks_read_guess().last, last);
			assert_int_equal(ks_read_guess().step, more[k].step);
			assert_int_equal(ks_read_guess().lo, more[k].lo);
			assert_int_equal(ks_read_guess().hi, more[k].hi);
		}
		/* Record reads a sweep apart, the last with the guess on: the newest sweep, as ever. */
		for (unsigned k = 0; k < 3; k++) {
			sweep(&f, 1);
			assert_int_equal(kvmstats_read_record(f.often, 1, f.buf, f.buf_words,
							      &s), 0);
			check_sample(&f, 1, f.buf, 0, kvmstats_target(f.often, 1)->record_words,
				     &s, f.sweeps);
		}
		assert_int_equal(ks_read_guess().lo, 1);
		assert_int_equal(ks_read_guess().hi, 1);
	}

	/* The thread's guess is for one segment: a read of another one restarts it. */
	f.seldom = attach(vm);
	assert_int_equal(kvmstats_stat_lookup(f.seldom, 1, "kvm", "c5", &other), 0);
	sweep(&f, 1);
	assert_int_equal(kvmstats_read_scalar(f.seldom, &other, &v, &s), 0);
	check_sample(&f, 1, &v, other.info->value_index, 1, &s, f.sweeps);
	assert_ptr_equal(ks_read_guess().seg, f.seldom);
	assert_int_equal(ks_read_guess().step, 0);
	assert_int_equal(ks_read_guess().hi, 0);
	sweep(&f, 1);
	assert_int_equal(kvmstats_read_scalar(f.often, &h, &v, &s), 0);
	assert_ptr_equal(ks_read_guess().seg, f.often);
	assert_int_equal(ks_read_guess().hi, 0);
	kvmstats_detach(&f.seldom);

	kvmstats_detach(&f.often);
	ks_engine_destroy(&f.e);
	free(f.buf);
}

static void
depth_2(void **state)
{
	(void)state;
	reads_follow_every_gap(2);
}

static void
depth_4(void **state)
{
	(void)state;
	reads_follow_every_gap(4);
}

static void
depth_8(void **state)
{
	(void)state;
	reads_follow_every_gap(8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(depth_2),
		cmocka_unit_test(depth_4),
		cmocka_unit_test(depth_8),
		cmocka_unit_test(guess_follows_the_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
