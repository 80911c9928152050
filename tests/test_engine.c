/* SPDX-License-Identifier: MIT */
/*
 * test_engine.c - the publisher engine end to end: stats fds in, segments
 * out, read back through the reader library.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

#include <cmocka.h>

#include "engine.h"
#include "ks_time.h"
#include "kvm_x86_tables.h"
#include "ks_shmdir.h"
#include "kvmstats/reader.h"
#include "seg_check.h"
#include "sim_vm.h"
#include "synth_vm.h"
#include "vm_builder.h"

static struct ks_engine *
new_engine(unsigned hz, bool keep)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e;

	ks_engine_config_init(&cfg);
	cfg.hz = hz;
	cfg.keep = keep;
	if (ks_engine_create(&cfg, &e, &err) < 0)
		fail_msg("engine: %s", err.msg);
	return e;
}

static struct kvmstats_segment *
attach(const char *vm)
{
	struct kvmstats_segment *seg;
	struct kvmstats_error err;

	if (kvmstats_attach(vm, NULL, &seg, &err) < 0)
		fail_msg("attach %s: %s", vm, err.msg);
	return seg;
}

static int
count_one(const char *file, void *arg)
{
	(void)file;
	(*(int *)arg)++;
	return 0;
}

static struct ks_engine_vm *
add_synth(struct ks_engine *e, const char *vm, unsigned vcpus, unsigned fail_target,
	  unsigned fail_every)
{
	struct kvmstats_error err;
	struct ks_engine_vm *v;
	struct synth_vm sv;

	assert_int_equal(synth_vm_init(&sv, vm, vcpus, fail_target, fail_every), 0);
	if (ks_engine_add_vm(e, &sv.def, &v, &err) < 0)
		fail_msg("add_vm: %s", err.msg);
	synth_vm_clear(&sv);
	return v;
}

/* The simulated VM, through the real parse + pread path. */
static void
engine_publishes_sim_vm_exactly(void **state)
{
	struct ks_engine *e = new_engine(100, false);
	struct kvmstats_error err;
	struct ks_sim_vm *sim;
	struct ks_fd_target fds[4];
	struct ks_vm_build b;
	struct kvmstats_segment *seg;
	uint64_t rec[KS_X86_VCPU_DATA_SIZE / 8], raw[KS_X86_VCPU_DATA_SIZE / 8];
	char id[64];

	(void)state;
	assert_int_equal(ks_sim_vm_create(3, &sim, &err), 0);
	for (int i = 0; i < 4; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = i ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = i ? (uint32_t)(i - 1) : KS_VCPU_INDEX_NONE,
			.fd = ks_sim_vm_stats_fd(sim, i - 1),
		};
	if (ks_vm_build(NULL, fds, 4, NULL, &b, &err) < 0)
		fail_msg("build: %s", err.msg);
	assert_string_equal(b.def.vm_name, ks_sim_vm_name(sim));
	if (ks_engine_add_vm(e, &b.def, NULL, &err) < 0)
		fail_msg("add: %s", err.msg);
	ks_vm_build_clear(&b, true);

	seg = attach(ks_sim_vm_name(sim));
	assert_int_equal(kvmstats_nr_targets(seg), 4);
	assert_int_equal(kvmstats_nr_providers(seg), 1);
	assert_string_equal(kvmstats_provider(seg, 0)->name, "kvm");
	for (unsigned t = 0; t < 4; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
		const struct ks_image_desc *tab = t ? ks_x86_vcpu_desc : ks_x86_vm_desc;
		unsigned n = t ? KS_X86_VCPU_NR_DESC : KS_X86_VM_NR_DESC;

		if (t == 0)
			snprintf(id, sizeof(id), "%s", ks_sim_vm_name(sim));
		else
			snprintf(id, sizeof(id), "%s/vcpu-%u", ks_sim_vm_name(sim), t - 1);
		assert_string_equal(ti->id, id);
		assert_string_equal(ti->label, id);	/* no label given: the id */
		assert_int_equal(ti->kind, t ? KVMSTATS_TARGET_VCPU : KVMSTATS_TARGET_VM);
		assert_int_equal(ti->nr_stats, n);
		assert_int_equal(ti->record_words,
				 (t ? KS_X86_VCPU_DATA_SIZE : KS_X86_VM_DATA_SIZE) / 8);
		for (unsigned j = 0; j < n; j++) {
			const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, j);

			assert_string_equal(si->name, tab[j].name);
			assert_int_equal(si->size, tab[j].size);
			assert_int_equal(si->value_index, tab[j].offset / 8);
			assert_int_equal(si->exponent, tab[j].exponent);
		}
	}

	/* Published values are exactly what a pread of the fd returns at that sweep. */
	for (uint64_t sweep = 2; sweep < 40; sweep++) {
		struct kvmstats_sample s;

		ks_sim_vm_step(sim);
		assert_int_equal(ks_engine_sweep(e), 0);
		for (unsigned t = 0; t < 4; t++) {
			const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
			off_t data_off = t ? 2952 : 1032;

			assert_int_equal(kvmstats_read_record(seg, t, rec, ti->record_words, &s), 0);
			assert_int_equal(s.sweep, sweep);
			assert_int_equal(s.flags, 0);
			assert_int_equal(pread(ks_sim_vm_stats_fd(sim, (int)t - 1), raw,
					       ti->record_words * 8, data_off),
					 (ssize_t)(ti->record_words * 8));
			assert_memory_equal(rec, raw, ti->record_words * 8);
		}
	}
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	ks_sim_vm_destroy(&sim);
}

/* A copy of @fd's whole file in a memfd of our own, to shrink at will. */
static int
memfd_copy(int fd, size_t *len)
{
	struct stat st;
	char *buf;
	int copy;

	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	copy = memfd_create("test_engine-statsfd", MFD_CLOEXEC);
	assert_true(copy >= 0);
	assert_int_equal(pwrite(copy, buf, (size_t)st.st_size, 0), st.st_size);
	free(buf);
	*len = (size_t)st.st_size;
	return copy;
}

/*
 * The sweep issues a stats fd's pread() itself (engine.c, "pread
 * sources"): a short read must still give a stale sample holding the
 * previous values, count a read error, and the next whole read a fresh one;
 * a read that fails outright the same.
 */
static void
engine_short_statsfd_read_gives_stale_sample(void **state)
{
	enum { WORDS = KS_X86_VCPU_DATA_SIZE / 8, DATA_OFF = 2952 };
	struct ks_engine *e = new_engine(100, false);
	struct kvmstats_error err;
	struct kvmstats_segment *seg;
	struct kvmstats_sample s;
	struct kvmstats_status st;
	struct ks_sim_vm *sim;
	struct ks_fd_target fds[2];
	struct ks_vm_build b;
	uint64_t rec[WORDS], before[WORDS], raw[WORDS];
	size_t len;
	char *whole;
	int copy;

	(void)state;
	assert_int_equal(ks_sim_vm_create(1, &sim, &err), 0);
	ks_sim_vm_step(sim);
	copy = memfd_copy(ks_sim_vm_stats_fd(sim, 0), &len);
	fds[0] = (struct ks_fd_target) {
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE,
		.fd = ks_sim_vm_stats_fd(sim, -1),
	};
	fds[1] = (struct ks_fd_target) { .kind = KS_TARGET_VCPU, .vcpu_index = 0, .fd = copy };
	if (ks_vm_build(NULL, fds, 2, NULL, &b, &err) < 0)
		fail_msg("build: %s", err.msg);
	if (ks_engine_add_vm(e, &b.def, NULL, &err) < 0)
		fail_msg("add: %s", err.msg);
	ks_vm_build_clear(&b, true);
	seg = attach(ks_sim_vm_name(sim));

	assert_int_equal(kvmstats_read_record(seg, 1, before, WORDS, &s), 0);
	assert_int_equal(s.flags, 0);
	assert_int_equal(pread(copy, raw, sizeof(raw), DATA_OFF), (ssize_t)sizeof(raw));
	assert_memory_equal(before, raw, sizeof(raw));

	/* Half the data block gone: a short read. */
	whole = malloc(len);
	assert_non_null(whole);
	assert_int_equal(pread(copy, whole, len, 0), (ssize_t)len);
	assert_int_equal(ftruncate(copy, DATA_OFF + sizeof(raw) / 2), 0);
	assert_int_equal(ks_engine_sweep(e), 0);
	assert_int_equal(kvmstats_read_record(seg, 1, rec, WORDS, &s), 0);
	assert_int_equal(s.sweep, 2);
	assert_true(s.flags & KVMSTATS_SAMPLE_STALE);
	assert_memory_equal(rec, before, sizeof(rec));
	kvmstats_status(seg, &st);
	assert_int_equal(st.read_errors, 1);

	/* Whole again, with new values: fresh, and exactly them. */
	for (size_t i = 0; i < sizeof(raw) / 8; i++)
		((uint64_t *)(whole + DATA_OFF))[i] ^= 0x5a5a;
	assert_int_equal(pwrite(copy, whole, len, 0), (ssize_t)len);
	assert_int_equal(ks_engine_sweep(e), 0);
	assert_int_equal(kvmstats_read_record(seg, 1, rec, WORDS, &s), 0);
	assert_int_equal(s.sweep, 3);
	assert_int_equal(s.flags, 0);
	assert_memory_equal(rec, whole + DATA_OFF, sizeof(rec));
	assert_memory_not_equal(rec, before, sizeof(rec));
	kvmstats_status(seg, &st);
	assert_int_equal(st.read_errors, 1);

	/* pread() failing outright (EBADF: the fd number now names a write-only file). */
	{
		int wronly = open("/dev/null", O_WRONLY | O_CLOEXEC);

		assert_true(wronly >= 0);
		assert_int_equal(dup2(wronly, copy), copy);
		close(wronly);
	}
	assert_int_equal(ks_engine_sweep(e), 0);
	assert_int_equal(kvmstats_read_record(seg, 1, rec, WORDS, &s), 0);
	assert_int_equal(s.sweep, 4);
	assert_true(s.flags & KVMSTATS_SAMPLE_STALE);
	assert_memory_equal(rec, whole + DATA_OFF, sizeof(rec));
	kvmstats_status(seg, &st);
	assert_int_equal(st.read_errors, 2);

	free(whole);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	close(copy);
	ks_sim_vm_destroy(&sim);
}

static void
engine_replace_supersedes(void **state)
{
	struct ks_engine *e = new_engine(100, false);
	struct kvmstats_segment *seg;
	struct kvmstats_status st;
	struct kvmstats_error err;
	struct ks_engine_vm *v, *v2;
	struct synth_vm sv;
	char vm[64];

	(void)state;
	snprintf(vm, sizeof(vm), "replace-%d", getpid());
	v = add_synth(e, vm, 2, 0, 0);
	seg = attach(vm);
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	assert_int_equal(kvmstats_nr_targets(seg), 3);

	assert_int_equal(synth_vm_init(&sv, vm, 4, 0, 0), 0);
	if (ks_engine_replace_vm(e, v, &sv.def, &v2, &err) < 0)
		fail_msg("replace: %s", err.msg);
	synth_vm_clear(&sv);

	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_SUPERSEDED);
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	assert_int_equal(kvmstats_nr_targets(seg), 5);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_LIVE);
	assert_int_equal(st.sweep, 1);		/* published with its first sample */

	ks_engine_remove_vm(e, v2);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
}

static void
engine_remove_ends_and_unlinks(void **state)
{
	struct ks_engine *e = new_engine(100, false);
	struct kvmstats_segment *seg, *again;
	struct kvmstats_status st;
	struct kvmstats_error err;
	struct ks_engine_vm *v;
	char vm[64];

	(void)state;
	snprintf(vm, sizeof(vm), "remove-%d", getpid());
	v = add_synth(e, vm, 1, 0, 0);
	seg = attach(vm);
	ks_engine_remove_vm(e, v);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_ENDED);
	/* The mapping stays readable; the name is gone. */
	assert_int_equal(kvmstats_read_record(seg, 0, (uint64_t[SYNTH_VM_WORDS]){ 0 },
					      SYNTH_VM_WORDS, NULL), 0);
	assert_int_equal(kvmstats_attach(vm, NULL, &again, &err), -ENOENT);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
}

static void
engine_keep_leaves_ended_segment(void **state)
{
	struct ks_engine *e = new_engine(100, true);
	struct kvmstats_segment *seg;
	struct kvmstats_status st;
	char vm[64], file[128], path[512];

	(void)state;
	snprintf(vm, sizeof(vm), "keep-%d", getpid());
	add_synth(e, vm, 1, 0, 0);
	ks_engine_destroy(&e);
	seg = attach(vm);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
	assert_int_equal(ks_shm_file_name(vm, file, sizeof(file)), 0);
	snprintf(path, sizeof(path), "%s/%s", ks_shm_dir(NULL), file);
	assert_int_equal(unlink(path), 0);
}

static void
engine_failed_source_gives_stale_sample(void **state)
{
	struct ks_engine *e = new_engine(100, false);
	struct kvmstats_segment *seg;
	struct kvmstats_sample s;
	struct kvmstats_status st;
	uint64_t rec[SYNTH_VCPU_WORDS];
	char vm[64];

	(void)state;
	snprintf(vm, sizeof(vm), "stale-%d", getpid());
	add_synth(e, vm, 2, 1, 3);		/* vCPU 0 fails on sweeps 3, 6, ... */
	seg = attach(vm);
	for (uint64_t sweep = 2; sweep <= 7; sweep++) {
		bool stale = sweep % 3 == 0;

		assert_int_equal(ks_engine_sweep(e), 0);
		assert_int_equal(kvmstats_read_record(seg, 1, rec, SYNTH_VCPU_WORDS, &s), 0);
		assert_int_equal(s.sweep, sweep);
		assert_int_equal(!!(s.flags & KVMSTATS_SAMPLE_STALE), stale);
		for (uint32_t w = 0; w < SYNTH_VCPU_WORDS; w++)
			assert_int_equal(rec[w], synth_value(stale ? sweep - 1 : sweep, 1, w));
		/* The healthy vCPU is never stale. */
		assert_int_equal(kvmstats_read_record(seg, 2, rec, SYNTH_VCPU_WORDS, &s), 0);
		assert_int_equal(s.flags, 0);
	}
	kvmstats_status(seg, &st);
	assert_int_equal(st.read_errors, 2);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
}

static void
engine_poll_thread_sweeps(void **state)
{
	struct ks_engine *e = new_engine(1000, false);
	struct kvmstats_segment *seg;
	struct kvmstats_status st, st2;
	struct kvmstats_error err;
	struct ks_engine_stats es;
	char vm[64];

	(void)state;
	snprintf(vm, sizeof(vm), "poll-%d", getpid());
	add_synth(e, vm, 2, 0, 0);
	seg = attach(vm);
	assert_int_equal(kvmstats_info(seg)->poll_period_ns, 1000000);
	kvmstats_status(seg, &st);
	assert_int_equal(ks_engine_start(e, &err), 0);
	for (int i = 0; i < 5000; i++) {
		kvmstats_status(seg, &st2);
		if (st2.sweep >= st.sweep + 20)
			break;
		usleep(1000);
	}
	assert_true(st2.sweep >= st.sweep + 20);
	assert_true(st2.heartbeat_ns > st.heartbeat_ns);
	assert_int_equal(st2.state, KVMSTATS_STATE_LIVE);
	ks_engine_get_stats(e, &es);
	assert_true(es.sweeps >= 20);
	assert_int_equal(ks_engine_sweep(e), -EBUSY);
	ks_engine_destroy(&e);
	kvmstats_status(seg, &st2);
	assert_int_equal(st2.state, KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
}

/* Count the segment files left in the segment directory. */
static int
count_segments(void)
{
	struct kvmstats_error err;
	int n = 0;

	assert_int_equal(kvmstats_enumerate(NULL, count_one, &n, &err), 0);
	return n;
}

/*
 * VMs added, replaced and removed from this thread while the poll thread
 * sweeps at a high rate: the RCU registry under churn.  ASan catches a
 * sweep touching a freed VM, TSan a missing ordering.
 */
static void
engine_churn_while_polling(void **state)
{
	struct ks_engine *e = new_engine(5000, false);
	struct kvmstats_error err;
	struct ks_engine_vm *keep, *v, *v2;
	struct kvmstats_segment *seg;
	struct synth_vm sv;
	char vm[64], other[64];
	int before = count_segments();

	(void)state;
	snprintf(other, sizeof(other), "churn-steady-%d", getpid());
	keep = add_synth(e, other, 1, 0, 0);
	assert_int_equal(ks_engine_start(e, &err), 0);
	for (int i = 0; i < 150; i++) {
		snprintf(vm, sizeof(vm), "churn-%d-%d", getpid(), i % 3);
		v = add_synth(e, vm, 1 + i % 4, 0, 0);
		assert_int_equal(synth_vm_init(&sv, vm, 2 + i % 3, 0, 0), 0);
		if (ks_engine_replace_vm(e, v, &sv.def, &v2, &err) < 0)
			fail_msg("replace: %s", err.msg);
		synth_vm_clear(&sv);
		if (i % 10 == 0)
			usleep(1000);	/* let a few sweeps see this generation */
		ks_engine_remove_vm(e, v2);
	}
	seg = attach(other);
	seg_check_sweeping(seg, 10000);		/* live, and sweeps go by */
	ks_engine_remove_vm(e, keep);
	ks_engine_destroy(&e);
	kvmstats_detach(&seg);
	assert_int_equal(count_segments(), before);
}

struct start_race {
	struct ks_engine *e;
	struct ks_engine_vm *vm;
	pthread_barrier_t go;
};

static void *
remove_racer(void *arg)
{
	struct start_race *r = arg;

	pthread_barrier_wait(&r->go);
	ks_engine_remove_vm(r->e, r->vm);
	return NULL;
}

/*
 * kvmstatsd starts its sources (an attach monitor, the intake thread)
 * before the poll thread: a VM removed by another thread while
 * ks_engine_start() runs must neither stop the new poll thread nor be freed
 * while that thread may be sweeping it.
 */
static void
engine_remove_races_start(void **state)
{
	char vm[64], other[64];

	(void)state;
	for (int i = 0; i < 200; i++) {
		struct start_race r = { .e = new_engine(10000, false) };
		struct kvmstats_error err;
		struct ks_engine_stats a, b;
		pthread_t t;

		snprintf(vm, sizeof(vm), "race-%d", getpid());
		snprintf(other, sizeof(other), "race-steady-%d", getpid());
		add_synth(r.e, other, 1, 0, 0);
		r.vm = add_synth(r.e, vm, 4, 0, 0);
		pthread_barrier_init(&r.go, NULL, 2);
		assert_int_equal(pthread_create(&t, NULL, remove_racer, &r), 0);
		pthread_barrier_wait(&r.go);
		assert_int_equal(ks_engine_start(r.e, &err), 0);
		pthread_join(t, NULL);
		pthread_barrier_destroy(&r.go);
		ks_engine_get_stats(r.e, &a);
		/* A new thread's first sweep, on a slow or loaded machine: up to 10 s. */
		for (uint64_t end = ks_mono_ns() + 10 * KS_NSEC_PER_SEC;; usleep(100)) {
			ks_engine_get_stats(r.e, &b);
			if (b.sweeps > a.sweeps || ks_mono_ns() > end)
				break;
		}
		if (b.sweeps == a.sweeps)
			fail_msg("iteration %d: the poll thread stopped sweeping", i);
		ks_engine_destroy(&r.e);
	}
}

/* Two VMs of one engine never share a segment name: the second is refused. */
static void
engine_refuses_a_name_in_use(void **state)
{
	struct ks_engine *e = new_engine(100, false);
	struct kvmstats_error err;
	struct ks_engine_vm *a, *b, *out = NULL;
	struct kvmstats_segment *seg;
	struct synth_vm sv;
	char va[64], vb[64];

	(void)state;
	snprintf(va, sizeof(va), "name-a-%d", getpid());
	snprintf(vb, sizeof(vb), "name-b-%d", getpid());
	a = add_synth(e, va, 1, 0, 0);
	b = add_synth(e, vb, 2, 0, 0);

	assert_int_equal(synth_vm_init(&sv, va, 3, 0, 0), 0);
	assert_int_equal(ks_engine_add_vm(e, &sv.def, &out, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "already published by another VM"));
	synth_vm_clear(&sv);
	assert_null(out);

	/* b may not take a's name in a new generation either. */
	assert_int_equal(synth_vm_init(&sv, va, 3, 0, 0), 0);
	assert_int_equal(ks_engine_replace_vm(e, b, &sv.def, &out, &err), -EEXIST);
	synth_vm_clear(&sv);

	/* a's segment is still a's: one vCPU, generation 1, live. */
	seg = attach(va);
	assert_int_equal(kvmstats_nr_targets(seg), 2);
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	kvmstats_detach(&seg);
	ks_engine_remove_vm(e, a);
	ks_engine_remove_vm(e, b);
	ks_engine_destroy(&e);
}

/* The depth @vcpus synthetic vCPUs get from an engine of @depth and @min_bytes; its data size in *@data. */
static unsigned
depth_of(unsigned depth, size_t min_bytes, unsigned vcpus, uint64_t *data)
{
	struct ks_engine_config cfg;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct ks_engine *e;
	unsigned got;
	char vm[64];

	ks_engine_config_init(&cfg);
	cfg.ring_depth = depth;
	cfg.ring_min_bytes = min_bytes;
	if (ks_engine_create(&cfg, &e, &err) < 0)
		fail_msg("engine: %s", err.msg);
	snprintf(vm, sizeof(vm), "depth-%d-%u", getpid(), vcpus);
	(void)add_synth(e, vm, vcpus, 0, 0);
	seg = attach(vm);
	got = kvmstats_info(seg)->ring_depth;
	*data = kvmstats_info(seg)->segment_size;
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	return got;
}

/*
 * A frame is its slots, padded to a page and then by one page more; by
 * default a small VM's ring is then deepened until it spans 512 KiB (up
 * to 64 deep); a depth asked for exactly is kept (segment_writer.h says
 * why).  Slots here: the VM's 32 + 15 * 8 bytes and each vCPU's 32 + 138
 * * 8, each rounded up to 64: 192 + 1152 per vCPU.
 */
static void
engine_ring_depth_grows_for_small_vms(void **state)
{
	uint64_t data;

	(void)state;
	/* 1 vCPU: 1344 B of slots, a frame of 8192; 64 frames span 512 KiB. */
	assert_int_equal(depth_of(4, KS_RING_MIN_BYTES, 1, &data), 64);
	assert_int_equal(data, 4096 + 64 * 8192);
	/* 8 vCPUs: 9408 B, a frame of 16 384. */
	assert_int_equal(depth_of(4, KS_RING_MIN_BYTES, 8, &data), 32);
	assert_int_equal(data, 4096 + 32 * 16384);
	/* 64 vCPUs: 73 920 B, a frame of 81 920: 4 frames span 320 KiB, 8 span 640. */
	assert_int_equal(depth_of(4, KS_RING_MIN_BYTES, 64, &data), 8);
	/* 256 vCPUs: 4 frames already span more. */
	assert_int_equal(depth_of(4, KS_RING_MIN_BYTES, 256, &data), 4);
	/* Doubling from the depth given: 3, 6, 12, 24 (384 KiB), 48. */
	assert_int_equal(depth_of(3, KS_RING_MIN_BYTES, 8, &data), 48);
	/* Never past 64, whatever the minimum. */
	assert_int_equal(depth_of(4, 16u << 20, 8, &data), 64);
	/* A depth taken as it is, the frames padded all the same. */
	assert_int_equal(depth_of(4, 0, 8, &data), 4);
	assert_int_equal(data, 4096 + 4 * 16384);
	assert_int_equal(depth_of(2, 0, 1, &data), 2);
	/* The defaults are these. */
	{
		struct ks_engine_config cfg;

		ks_engine_config_init(&cfg);
		assert_int_equal(cfg.ring_depth, 4);
		assert_int_equal(cfg.ring_min_bytes, 512 << 10);
	}
}

static void
engine_rejects_bad_config(void **state)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e = NULL;

	(void)state;
	ks_engine_config_init(&cfg);
	cfg.hz = 0;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "rate 0 Hz out of range"));
	cfg.hz = KS_HZ_MAX + 1;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), -EINVAL);
	cfg.hz = 100;
	cfg.ring_depth = 1;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "ring depth 1 out of range"));
	cfg.ring_depth = 4;
	cfg.mode = 0660;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "mode 0660 lets group or others write"));
	assert_null(e);
}

static void
engine_segment_mode_ignores_umask(void **state)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e;
	struct stat sb;
	char vm[64], path[512];
	mode_t old = umask(077);

	(void)state;
	ks_engine_config_init(&cfg);
	cfg.mode = 0644;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), 0);
	snprintf(vm, sizeof(vm), "mode-%d", getpid());
	add_synth(e, vm, 1, 0, 0);
	snprintf(path, sizeof(path), "%s/kvmstats.%s", ks_shm_dir(NULL), vm);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0644);
	ks_engine_destroy(&e);
	assert_int_equal(stat(path, &sb), -1);
	umask(old);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(engine_publishes_sim_vm_exactly),
		cmocka_unit_test(engine_replace_supersedes),
		cmocka_unit_test(engine_remove_ends_and_unlinks),
		cmocka_unit_test(engine_keep_leaves_ended_segment),
		cmocka_unit_test(engine_failed_source_gives_stale_sample),
		cmocka_unit_test(engine_short_statsfd_read_gives_stale_sample),
		cmocka_unit_test(engine_poll_thread_sweeps),
		cmocka_unit_test(engine_churn_while_polling),
		cmocka_unit_test(engine_remove_races_start),
		cmocka_unit_test(engine_refuses_a_name_in_use),
		cmocka_unit_test(engine_ring_depth_grows_for_small_vms),
		cmocka_unit_test(engine_rejects_bad_config),
		cmocka_unit_test(engine_segment_mode_ignores_umask),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
