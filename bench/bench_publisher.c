/* SPDX-License-Identifier: MIT */
/*
 * bench_publisher.c - the publisher's cost per sweep beside its floor, a
 * bare loop of pread() over the same stats fds into a private buffer.
 *
 * The difference is what publishing adds: the seqlock, the slot stamps,
 * the clock reads and the sweep's bookkeeping.  Stats fds are the
 * simulated VM's memfds, laid out like the kernel's.
 */
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine.h"
#include "sim_vm.h"
#include "vm_builder.h"

static void
run(unsigned nr_vcpus, size_t sweeps, double ns_per_tick, FILE *json)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e;
	struct ks_sim_vm *sim;
	struct ks_fd_target *fds = calloc(nr_vcpus + 1, sizeof(*fds));
	struct ks_vm_build vb;
	uint64_t *ours = calloc(sweeps, sizeof(*ours)), *bare = calloc(sweeps, sizeof(*bare));
	uint8_t buf[1104];
	struct bench_dist d_ours, d_bare;
	char name[64];

	ks_engine_config_init(&cfg);
	if (ks_sim_vm_create(nr_vcpus, &sim, &err) < 0 || ks_engine_create(&cfg, &e, &err) < 0)
		goto fail;
	for (unsigned i = 0; i <= nr_vcpus; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = i ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = i ? i - 1 : KS_VCPU_INDEX_NONE,
			.fd = ks_sim_vm_stats_fd(sim, (int)i - 1),
		};
	if (ks_vm_build(NULL, NULL, fds, nr_vcpus + 1, NULL, &vb, &err) < 0 ||
	    ks_engine_add_vm(e, &vb.def, NULL, &err) < 0)
		goto fail;
	ks_vm_build_clear(&vb, true);

	/* Interleave the two so that drift in the machine hits both alike. */
	for (size_t i = 0; i < sweeps; i++) {
		uint64_t t0 = bench_ticks(), t1, t2;

		ks_engine_sweep(e);
		t1 = bench_ticks();
		for (unsigned v = 0; v <= nr_vcpus; v++) {
			int fd = ks_sim_vm_stats_fd(sim, (int)v - 1);

			if (pread(fd, buf, v ? 1104 : 120, v ? 2952 : 1032) <= 0) {
				perror("pread");
				exit(1);
			}
		}
		t2 = bench_ticks();
		ours[i] = t1 - t0;
		bare[i] = t2 - t1;
	}
	d_ours = bench_summarise(ours, sweeps, ns_per_tick);
	d_bare = bench_summarise(bare, sweeps, ns_per_tick);
	snprintf(name, sizeof(name), "publisher sweep, %u vCPUs", nr_vcpus);
	bench_report(json, name, "host, simulated VM memfds", d_ours, "bare pread loop", d_bare, 0);
	printf("%-34s per target p50 %7.1f ns (bare %7.1f ns); overhead %+.1f%%\n", "",
	       d_ours.p50 / (nr_vcpus + 1), d_bare.p50 / (nr_vcpus + 1),
	       (d_ours.p50 / d_bare.p50 - 1) * 100);
	ks_engine_destroy(&e);
	ks_sim_vm_destroy(&sim);
	free(fds);
	free(ours);
	free(bare);
	return;
fail:
	fprintf(stderr, "bench_publisher: %s\n", err.msg);
	exit(1);
}

int
main(int argc, char **argv)
{
	static const unsigned sizes[] = { 1, 8, 64, 256 };
	size_t sweeps = 2000;
	FILE *json = NULL;
	double ns_per_tick;
	cpu_set_t set;
	int c;

	while ((c = getopt(argc, argv, "n:j:h")) != -1) {
		switch (c) {
		case 'n': sweeps = strtoul(optarg, NULL, 10); break;
		case 'j': json = fopen(optarg, "w"); break;
		default:
			fprintf(stderr, "usage: bench_publisher [-n SWEEPS] [-j RESULTS.json]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (sweeps < 100) {
		fprintf(stderr, "bench_publisher: need at least 100 sweeps\n");
		return 2;
	}
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	ns_per_tick = bench_calibrate();
	printf("publisher cost per sweep, simulated VM (memfd stats files), %zu sweeps each, CPU 0\n",
	       sweeps);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		run(sizes[i], sweeps, ns_per_tick, json);
	if (json)
		fclose(json);
	return 0;
}
