/* SPDX-License-Identifier: MIT */
/*
 * bench_sched.c - what the "sched" provider costs the publisher, beside
 * the same VM published with "kvm" alone, in one run.
 *
 *   per sweep   ks_engine_sweep() of three engines, interleaved sweep by
 *               sweep so that drift hits all alike: kvm alone; kvm+sched
 *               between reads (each sweep copies the newest sched values
 *               into the slots); kvm+sched with every thread due at every
 *               sweep (sched rate 1 kHz, a sweep each 1.1 ms: the files
 *               of every vCPU thread read in the sweep: the worst sweep)
 *   poll thread the mean sweep over 2 s of each engine's own poll thread at
 *               100 Hz and 1 kHz, sched at its default rate: what a sweep
 *               costs on average, reads spread over the sweeps included
 *
 * For 8 and 64 vCPUs of the simulated VM (memfd stats files); every vCPU's
 * thread is the simulator's thread, as kvmstatsd --simulate has it.
 *
 *   bench_sched [-n SWEEPS] [-j RESULTS.json]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine.h"
#include "sched_source.h"
#include "sim_vm.h"
#include "vm_builder.h"

static void __attribute__((noreturn))
die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_sched: %s: %s\n", what, msg);
	exit(1);
}

/* An engine at @hz publishing @sim, with sched at @sched_hz (0: kvm alone). */
static struct ks_engine *
publish(struct ks_sim_vm *sim, const char *name, unsigned hz, unsigned sched_hz)
{
	unsigned n = ks_sim_vm_nr_vcpus(sim);
	struct ks_fd_target *fds = calloc(n + 1, sizeof(*fds));
	struct ks_sched_thread *runners = calloc(n, sizeof(*runners));
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e;
	struct ks_vm_build b;

	for (unsigned i = 0; i <= n; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = i ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = i ? i - 1 : KS_VCPU_INDEX_NONE,
			.fd = ks_sim_vm_stats_fd(sim, (int)i - 1),
		};
	for (unsigned i = 0; i < n; i++)
		runners[i] = (struct ks_sched_thread) { .vcpu_index = i,
							.tid = ks_sim_vm_thread(sim) };
	ks_engine_config_init(&cfg);
	cfg.hz = hz;
	if (ks_engine_create(&cfg, &e, &err) < 0 || ks_vm_build(name, fds, n + 1, NULL, &b, &err) < 0)
		die("setup", err.msg);
	if (sched_hz) {
		struct ks_vm_sched how = { .pid = getpid(), .hz = sched_hz, .runners = runners,
					   .nr_runners = n };

		if (ks_vm_build_add_sched(&b, &how, NULL, &err) < 0)
			die("sched", err.msg);
	}
	if (ks_engine_add_vm(e, &b.def, NULL, &err) < 0)
		die("add", err.msg);
	ks_vm_build_clear(&b, true);
	free(fds);
	free(runners);
	return e;
}

static void
emit(FILE *json, const char *what, unsigned vcpus, struct bench_dist d, const char *ref_name,
     struct bench_dist ref)
{
	char name[128];
	struct bench_result r = {
		.name = name, .unit = "ns", .env = "host, simulated VM memfds",
		.timing = "raw (a sweep >> timer)", .group = "sched", .vcpus = vcpus, .d = d,
		.ref_name = ref_name, .ref = ref, .retries_per_read = -1,
	};

	snprintf(name, sizeof(name), "%s, %u vCPUs", what, vcpus);
	bench_emit(json, &r);
}

static void
sweep_cost(unsigned vcpus, size_t sweeps, double ns_per_tick, FILE *json)
{
	struct ks_sim_vm *sim;
	struct kvmstats_error err;
	struct ks_engine *e[3];
	uint64_t *t[3];
	struct bench_dist d[3];
	char name[3][48];
	struct timespec gap = { 0, 1100 * 1000 };

	if (ks_sim_vm_create(vcpus, &sim, &err) < 0 || ks_sim_vm_start(sim, 10, &err) < 0)
		die("sim VM", err.msg);
	for (int k = 0; k < 3; k++) {
		snprintf(name[k], sizeof(name[k]), "bench-sched-%d-%u", k, vcpus);
		e[k] = publish(sim, name[k], 1000, k == 0 ? 0 : k == 1 ? 1 : KS_SCHED_HZ_MAX);
		t[k] = calloc(sweeps, sizeof(uint64_t));
	}
	for (size_t i = 0; i < sweeps + 20; i++) {
		nanosleep(&gap, NULL);		/* engine 2's threads are all due again */
		for (int j = 0; j < 3; j++) {
			int k = (int)((i + (size_t)j) % 3);
			uint64_t t0 = bench_ticks();

			ks_engine_sweep(e[k]);
			if (i >= 20)
				t[k][i - 20] = bench_ticks() - t0;
		}
	}
	for (int k = 0; k < 3; k++) {
		d[k] = bench_summarise(t[k], sweeps, ns_per_tick);
		free(t[k]);
		ks_engine_destroy(&e[k]);
	}
	emit(json, "sweep, kvm alone", vcpus, d[0], NULL, d[0]);
	emit(json, "sweep, kvm+sched, no sched read due", vcpus, d[1], "kvm alone", d[0]);
	emit(json, "sweep, kvm+sched, every thread read", vcpus, d[2], "kvm alone", d[0]);
	printf("%-40s per sweep p50: kvm %.0f ns, +sched copy %.0f ns (%+.1f%%), "
	       "+sched all read %.0f ns (%.1f us per thread)\n", "", d[0].p50, d[1].p50,
	       (d[1].p50 / d[0].p50 - 1) * 100, d[2].p50, (d[2].p50 - d[0].p50) / vcpus / 1000);
	ks_sim_vm_destroy(&sim);
}

/* The poll thread at @hz for 2 s: its mean sweep, from the engine's own counters. */
static double
mean_sweep(struct ks_sim_vm *sim, unsigned hz, unsigned sched_hz)
{
	struct ks_engine *e = publish(sim, "bench-sched-poll", hz, sched_hz);
	struct ks_engine_stats st;
	struct kvmstats_error err;
	struct timespec two = { 2, 0 };

	if (ks_engine_start(e, &err) < 0)
		die("start", err.msg);
	nanosleep(&two, NULL);
	ks_engine_stop(e);
	ks_engine_get_stats(e, &st);
	ks_engine_destroy(&e);
	return st.sweeps ? (double)st.sweep_ns_total / (double)st.sweeps : 0;
}

static void
poll_cost(unsigned vcpus, FILE *json)
{
	static const unsigned rates[] = { 100, 1000 };
	struct ks_sim_vm *sim;
	struct kvmstats_error err;

	if (ks_sim_vm_create(vcpus, &sim, &err) < 0 || ks_sim_vm_start(sim, 10, &err) < 0)
		die("sim VM", err.msg);
	for (size_t i = 0; i < 2; i++) {
		double kvm = mean_sweep(sim, rates[i], 0);
		double both = mean_sweep(sim, rates[i], KS_SCHED_HZ_DEFAULT);
		struct bench_dist dk = { .p50 = kvm, .mean = kvm }, db = { .p50 = both, .mean = both };
		char what[96];

		snprintf(what, sizeof(what), "poll thread mean sweep at %u Hz, kvm alone", rates[i]);
		emit(json, what, vcpus, dk, NULL, dk);
		snprintf(what, sizeof(what), "poll thread mean sweep at %u Hz, kvm+sched at %u Hz",
			 rates[i], KS_SCHED_HZ_DEFAULT);
		emit(json, what, vcpus, db, "kvm alone", dk);
		printf("%-40s poll thread at %u Hz, mean sweep: kvm %.1f us, kvm+sched@%u Hz %.1f us"
		       " (%+.1f%%)\n", "", rates[i], kvm / 1000, KS_SCHED_HZ_DEFAULT, both / 1000,
		       (both / kvm - 1) * 100);
	}
	ks_sim_vm_destroy(&sim);
}

int
main(int argc, char **argv)
{
	static const unsigned sizes[] = { 8, 64 };
	size_t sweeps = 2000;
	FILE *json = NULL;
	double ns_per_tick;
	int c;

	while ((c = getopt(argc, argv, "n:j:h")) != -1) {
		switch (c) {
		case 'n': sweeps = strtoul(optarg, NULL, 10); break;
		case 'j': json = fopen(optarg, "w"); break;
		default:
			fprintf(stderr, "usage: bench_sched [-n SWEEPS] [-j RESULTS.json]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (sweeps < 100) {
		fprintf(stderr, "bench_sched: need at least 100 sweeps\n");
		return 2;
	}
	bench_pin(sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0);
	ns_per_tick = bench_calibrate();
	printf("publisher sweep with and without provider sched, simulated VM, %zu sweeps each\n",
	       sweeps);
	for (size_t i = 0; i < 2; i++)
		sweep_cost(sizes[i], sweeps, ns_per_tick, json);
	for (size_t i = 0; i < 2; i++)
		poll_cost(sizes[i], json);
	if (json)
		fclose(json);
	return 0;
}
