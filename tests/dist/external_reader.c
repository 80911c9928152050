/* SPDX-License-Identifier: MIT */
/*
 * external_reader.c - a reader as a user of the installed library writes
 * it: only <kvmstats/reader.h>, built with `pkg-config --cflags --libs
 * kvmstats` outside the source tree (tests/check-dist.sh, the package
 * test).  It attaches to VM argv[1] (in $KVMSTATS_SHM_DIR), checks that
 * the publisher is live, and prints one line: the VM, its vCPUs, and the
 * sum of vCPU "exits" read twice, the second no smaller than the first.
 * Exit: 0, 1 on any failure (said on stderr).
 */
#define _POSIX_C_SOURCE 200809L	/* nanosleep() under -std=c11 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <kvmstats/reader.h>

static int
sum_exits(const struct kvmstats_segment *seg, uint64_t *sum)
{
	*sum = 0;
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		struct kvmstats_stat_handle h;
		uint64_t v;

		if (kvmstats_target(seg, t)->kind != KVMSTATS_TARGET_VCPU)
			continue;
		if (kvmstats_stat_lookup(seg, t, "kvm", "exits", &h) < 0 ||
		    kvmstats_read_scalar(seg, &h, &v, NULL) < 0)
			return -1;
		*sum += v;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct kvmstats_segment *seg;
	struct kvmstats_liveness lv;
	struct kvmstats_error err;
	struct timespec tenth = { 0, 100 * 1000 * 1000 };
	uint64_t a, b;
	unsigned vcpus;

	if (argc != 2) {
		fprintf(stderr, "usage: external_reader VM\n");
		return 2;
	}
	if (kvmstats_attach(argv[1], NULL, &seg, &err) < 0) {
		fprintf(stderr, "external_reader: %s\n", err.msg);
		return 1;
	}
	vcpus = kvmstats_info(seg)->nr_targets - 1;
	if (kvmstats_liveness(seg, &lv) < 0 || lv.health != KVMSTATS_HEALTH_LIVE ||
	    sum_exits(seg, &a) < 0 || nanosleep(&tenth, NULL) < 0 || sum_exits(seg, &b) < 0 || b < a) {
		fprintf(stderr, "external_reader: %s is not live, or its exits do not read\n",
			argv[1]);
		kvmstats_detach(&seg);
		return 1;
	}
	printf("%s: %u vCPUs, live, exits %" PRIu64 " then %" PRIu64 "\n",
	       kvmstats_info(seg)->vm_name, vcpus, a, b);
	kvmstats_detach(&seg);
	return 0;
}
