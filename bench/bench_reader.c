/* SPDX-License-Identifier: MIT */
/*
 * bench_reader.c - reader latency beside its baseline, pread() of the same
 * stats fds, in one run.
 *
 *   one stat      kvmstats_read_scalar()  vs  pread() of that stat's 8 bytes
 *   vCPU record   kvmstats_read_record()  vs  pread() of the vCPU data block
 *   VM-wide cut   kvmstats_read_cut()     vs  pread() of every data block
 *
 * "warm": the same data read again and again (it stays in this core's
 * cache).  "fresh": before every read, a publisher thread on the other
 * core has just swept (rewritten every slot), so the read pays the
 * cross-core transfers a monitor pays in real life.  The stats fds are the
 * simulated VM's memfds, laid out like the kernel's.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine.h"
#include "kvmstats/reader.h"
#include "sim_vm.h"
#include "vm_builder.h"

enum op { OP_SCALAR, OP_RECORD, OP_CUT };

struct bench {
	struct ks_sim_vm *sim;
	struct ks_engine *e;
	struct kvmstats_segment *seg;
	struct kvmstats_stat_handle exits;
	unsigned nr_vcpus;
	uint64_t *buf;
	size_t buf_words;
	uint64_t retries;
	/* fresh mode: the publisher thread sweeps when asked */
	atomic_uint turn;		/* odd: publisher's turn */
	atomic_bool quit;
	pthread_t publisher;
	bool fresh;
};

static int
pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static void
do_ours(struct bench *b, enum op op)
{
	struct kvmstats_sample s;
	int ret;

	switch (op) {
	case OP_SCALAR:
		ret = kvmstats_read_scalar(b->seg, &b->exits, b->buf, &s);
		break;
	case OP_RECORD:
		ret = kvmstats_read_record(b->seg, 1, b->buf, b->buf_words, &s);
		break;
	default:
		ret = kvmstats_read_cut(b->seg, b->buf, b->buf_words, NULL);
		s.retries = 0;
		break;
	}
	if (ret < 0) {
		fprintf(stderr, "bench_reader: read failed: %s\n", strerror(-ret));
		exit(1);
	}
	b->retries += s.retries;
}

/* The syscall path: what a privileged reader holding the fds would do. */
static void
do_pread(struct bench *b, enum op op)
{
	const struct kvmstats_stat_info *si = b->exits.info;
	size_t off = 0;
	ssize_t r = 0;

	switch (op) {
	case OP_SCALAR:
		r = pread(ks_sim_vm_stats_fd(b->sim, 0), b->buf, 8,
			  2952 + (off_t)si->value_index * 8);
		break;
	case OP_RECORD:
		r = pread(ks_sim_vm_stats_fd(b->sim, 0), b->buf, 1104, 2952);
		break;
	default:
		r = pread(ks_sim_vm_stats_fd(b->sim, -1), b->buf, 120, 1032);
		off = 15;
		for (unsigned v = 0; v < b->nr_vcpus && r > 0; v++, off += 138)
			r = pread(ks_sim_vm_stats_fd(b->sim, (int)v), b->buf + off, 1104, 2952);
		break;
	}
	if (r <= 0) {
		fprintf(stderr, "bench_reader: pread failed\n");
		exit(1);
	}
}

static void *
publisher_main(void *arg)
{
	struct bench *b = arg;

	pin_to_cpu(1);
	while (!atomic_load(&b->quit)) {
		unsigned t = atomic_load_explicit(&b->turn, memory_order_acquire);

		if (!(t & 1))
			continue;
		ks_sim_vm_step(b->sim);
		ks_engine_sweep(b->e);
		atomic_store_explicit(&b->turn, t + 1, memory_order_release);
	}
	return NULL;
}

/* Before a fresh read: let the publisher sweep, and wait until it has. */
static void
publisher_round(struct bench *b)
{
	unsigned t = atomic_load_explicit(&b->turn, memory_order_relaxed);

	atomic_store_explicit(&b->turn, t + 1, memory_order_release);
	while (atomic_load_explicit(&b->turn, memory_order_acquire) == t + 1)
		;
}

static struct bench_dist
measure(struct bench *b, enum op op, bool ours, size_t samples, double ns_per_tick)
{
	uint64_t *v = calloc(samples, sizeof(*v));
	struct bench_dist d;

	for (size_t i = 0; i < 1000; i++)		/* warm up code and data */
		ours ? do_ours(b, op) : do_pread(b, op);
	for (size_t i = 0; i < samples; i++) {
		uint64_t t0, t1;

		if (b->fresh)
			publisher_round(b);
		t0 = bench_ticks();
		if (ours)
			do_ours(b, op);
		else
			do_pread(b, op);
		t1 = bench_ticks();
		v[i] = t1 - t0;
	}
	d = bench_summarise(v, samples, ns_per_tick);
	free(v);
	return d;
}

static void
setup(struct bench *b, unsigned nr_vcpus)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_fd_target *fds = calloc(nr_vcpus + 1, sizeof(*fds));
	struct ks_vm_build vb;

	b->nr_vcpus = nr_vcpus;
	ks_engine_config_init(&cfg);
	if (ks_sim_vm_create(nr_vcpus, &b->sim, &err) < 0 ||
	    ks_engine_create(&cfg, &b->e, &err) < 0)
		goto fail;
	for (unsigned i = 0; i <= nr_vcpus; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = i ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = i ? i - 1 : KS_VCPU_INDEX_NONE,
			.fd = ks_sim_vm_stats_fd(b->sim, (int)i - 1),
		};
	if (ks_vm_build(NULL, NULL, fds, nr_vcpus + 1, NULL, &vb, &err) < 0 ||
	    ks_engine_add_vm(b->e, &vb.def, NULL, &err) < 0)
		goto fail;
	ks_vm_build_clear(&vb, true);
	free(fds);
	if (kvmstats_attach(ks_sim_vm_name(b->sim), NULL, &b->seg, &err) < 0)
		goto fail;
	if (kvmstats_stat_lookup(b->seg, 1, "kvm", "exits", &b->exits) < 0) {
		fprintf(stderr, "bench_reader: no \"exits\" stat\n");
		exit(1);
	}
	b->buf_words = kvmstats_cut_words(b->seg);
	b->buf = calloc(b->buf_words, sizeof(*b->buf));
	return;
fail:
	fprintf(stderr, "bench_reader: %s\n", err.msg);
	exit(1);
}

int
main(int argc, char **argv)
{
	static const char *const op_names[] = { "one stat", "vCPU record (138 u64)", "VM-wide cut" };
	static const char *const ref_names[] = { "pread 8 B", "pread 1104 B", "pread every fd" };
	struct bench b = { 0 };
	unsigned nr_vcpus = 8;
	size_t samples = 100000;
	FILE *json = NULL;
	double ns_per_tick;
	int c;

	while ((c = getopt(argc, argv, "v:n:j:h")) != -1) {
		switch (c) {
		case 'v': nr_vcpus = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'n': samples = strtoul(optarg, NULL, 10); break;
		case 'j': json = fopen(optarg, "w"); break;
		default:
			fprintf(stderr, "usage: bench_reader [-v VCPUS] [-n SAMPLES] [-j RESULTS.json]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (nr_vcpus < 1 || nr_vcpus > KS_SIM_MAX_VCPUS || samples < 100) {
		fprintf(stderr, "bench_reader: need 1-%u vCPUs and at least 100 samples\n",
			KS_SIM_MAX_VCPUS);
		return 2;
	}
	setup(&b, nr_vcpus);
	ns_per_tick = bench_calibrate();
	pin_to_cpu(0);
	printf("reader latency, simulated VM with %u vCPUs (memfd stats files), %zu samples, "
	       "reader on CPU 0%s\n", nr_vcpus, samples,
	       sysconf(_SC_NPROCESSORS_ONLN) > 1 ? ", publisher on CPU 1" : "");

	for (int fresh = 0; fresh <= 1; fresh++) {
		if (fresh) {
			if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
				printf("fresh: skipped, needs two CPUs\n");
				break;
			}
			b.fresh = true;
			pthread_create(&b.publisher, NULL, publisher_main, &b);
		}
		for (enum op op = OP_SCALAR; op <= OP_CUT; op++) {
			char name[64];
			struct bench_dist ours, ref;

			b.retries = 0;
			ours = measure(&b, op, true, samples, ns_per_tick);
			ref = measure(&b, op, false, samples, ns_per_tick);
			snprintf(name, sizeof(name), "%s, %s", op_names[op], fresh ? "fresh" : "warm");
			bench_report(json, name, "host, simulated VM memfds", ours, ref_names[op], ref,
				     (double)b.retries / (double)(samples + 1000));
		}
	}
	if (b.fresh) {
		atomic_store(&b.quit, true);
		pthread_join(b.publisher, NULL);
	}
	if (json)
		fclose(json);
	kvmstats_detach(&b.seg);
	ks_engine_destroy(&b.e);
	ks_sim_vm_destroy(&b.sim);
	free(b.buf);
	return 0;
}
