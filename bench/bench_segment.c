/* SPDX-License-Identifier: MIT */
/*
 * bench_segment.c - the reader library's reads of one existing segment,
 * for bench/bench_qemu.py, which sets them beside QMP round trips to a
 * real QEMU publishing that very segment.
 *
 *   bench_segment [-n SAMPLES] [-d DIR] VM
 *
 * Times kvmstats_read_record() of the first vCPU and kvmstats_read_cut()
 * of the whole VM, SAMPLES each, warm (back to back), net of the timer's
 * own cost, and prints one JSON object:
 *   {"vm":..., "vcpus":N, "record_words":W, "record_p50_ns":..., "cut_words":...,
 *    "cut_p50_ns":..., "record_p99_ns":..., "cut_p99_ns":...}
 * Exit status: 0, 1 on a failed attach or read, 2 on bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "kvmstats/reader.h"

static int
usage(void)
{
	fputs("usage: bench_segment [-n SAMPLES] [-d DIR] VM\n", stderr);
	return 2;
}

int
main(int argc, char **argv)
{
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err;
	struct kvmstats_segment *seg;
	struct bench_dist timer, rec, cut;
	unsigned long n = 20000;
	unsigned vcpu = 0, vcpus = 0;
	uint64_t *buf, *t;
	struct bench_timer minus;
	double npt;
	size_t words;
	int c;

	kvmstats_attach_opts_init(&opts);
	while ((c = getopt(argc, argv, "n:d:")) != -1) {
		if (c == 'n')
			n = strtoul(optarg, NULL, 10);
		else if (c == 'd')
			opts.dir = optarg;
		else
			return usage();
	}
	if (optind + 1 != argc || n == 0 || n > 10000000)
		return usage();
	if (kvmstats_attach(argv[optind], &opts, &seg, &err) < 0) {
		fprintf(stderr, "bench_segment: %s\n", err.msg);
		return 1;
	}
	for (unsigned i = kvmstats_nr_targets(seg); i-- > 0;)
		if (kvmstats_target(seg, i)->kind == KVMSTATS_TARGET_VCPU) {
			vcpu = i;
			vcpus++;
		}
	words = kvmstats_cut_words(seg);
	buf = calloc(words, sizeof(*buf));
	t = calloc(n, sizeof(*t));
	if (buf == NULL || t == NULL || vcpus == 0) {
		fputs("bench_segment: out of memory, or a VM without vCPUs\n", stderr);
		return 1;
	}
	npt = bench_calibrate();
	bench_timer_measure(npt, &minus, &timer);
	for (unsigned long i = 0; i < n; i++) {
		uint64_t t0 = bench_ticks();
		int r = kvmstats_read_record(seg, vcpu, buf, words, NULL);

		t[i] = bench_ticks() - t0;
		if (r < 0) {
			fprintf(stderr, "bench_segment: read_record: %d\n", r);
			return 1;
		}
	}
	rec = bench_summarise_net(t, n, npt, &minus);
	for (unsigned long i = 0; i < n; i++) {
		uint64_t t0 = bench_ticks();
		int r = kvmstats_read_cut(seg, buf, words, NULL);

		t[i] = bench_ticks() - t0;
		if (r < 0) {
			fprintf(stderr, "bench_segment: read_cut: %d\n", r);
			return 1;
		}
	}
	cut = bench_summarise_net(t, n, npt, &minus);
	/* record_ns, cut_ns: what ratios should use (bench_util.h: means on a coarse timer) */
	printf("{\"vm\":\"%s\",\"vcpus\":%u,\"record_words\":%u,\"record_p50_ns\":%.1f,"
	       "\"record_p99_ns\":%.1f,\"record_mean99_ns\":%.1f,\"cut_words\":%zu,"
	       "\"cut_p50_ns\":%.1f,\"cut_p99_ns\":%.1f,\"cut_mean99_ns\":%.1f,"
	       "\"timer_step_ns\":%.1f,\"record_ns\":%.1f,\"cut_ns\":%.1f}\n",
	       kvmstats_info(seg)->vm_name, vcpus, kvmstats_target(seg, vcpu)->record_words,
	       rec.p50, rec.p99, rec.mean99, words, cut.p50, cut.p99, cut.mean99,
	       bench_timer_step_ns(&minus), bench_figure(&rec, bench_timer_coarse(&minus)),
	       bench_figure(&cut, bench_timer_coarse(&minus)));
	free(buf);
	free(t);
	kvmstats_detach(&seg);
	return 0;
}
