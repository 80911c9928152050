// SPDX-License-Identifier: MIT
/*
 * fuzz_segment.c - libFuzzer harness: any bytes as a kvmstats segment.
 *
 * A segment is input from another process (docs/ABI.md section 8), so a
 * hostile one must never crash or hang a reader.  Two ways in:
 *
 *  1. the bytes as the private copy ks_validate_segment() checks, with the
 *     file size equal to the input size (what attach passes it);
 *  2. the whole reader: the bytes written to a file in a private directory
 *     (which we own, so the owner check passes), kvmstats_attach(), then
 *     everything a reader may do with what attached: walk the schema, look
 *     names up, read every stat, record, the cut and the history.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmstats/reader.h"
#include "ks_validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_VM		"fuzz"
/* Reads per input: the walk is a check of the reader, not a benchmark. */
#define READ_BUDGET	4096

static char dir[] = "/tmp/kvmstats-fuzz-XXXXXX";
static char path[sizeof(dir) + 32];

static void
fuzz_validate_copy(const uint8_t *data, size_t size)
{
	struct kvmstats_error err;
	uint64_t len = size;
	void *copy;

	/* The reader copies exactly [0, data_off); give the validator that when it can. */
	if (size >= sizeof(struct ks_shm_header)) {
		uint64_t off = ((const struct ks_shm_header *)(const void *)data)->data_off;

		if (off >= sizeof(struct ks_shm_header) && off <= size)
			len = off;
	}
	copy = aligned_alloc(64, (len + 63) & ~(uint64_t)63);
	if (copy == NULL)
		abort();
	memcpy(copy, data, len);
	(void)ks_validate_segment(copy, len, size, "fuzz copy", 0, &err);
	(void)ks_validate_segment(copy, len, size, "fuzz copy", KS_VALIDATE_UNPUBLISHED, &err);
	free(copy);
}

static void
write_file(const uint8_t *data, size_t size)
{
	size_t done = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		abort();
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	close(fd);
}

static void
walk(struct kvmstats_segment *seg, size_t size)
{
	const struct kvmstats_segment_info *in = kvmstats_info(seg);
	struct kvmstats_sample smp;
	struct kvmstats_status st;
	unsigned budget = READ_BUDGET, got;
	size_t cut = kvmstats_cut_words(seg);
	uint64_t *v;
	size_t vn;

	kvmstats_status(seg, &st);
	(void)kvmstats_state_name(st.state);
	/* What attached fits in the file: every ring lies inside the segment. */
	if (cut > size / 8 || in->segment_size != size || in->vm_name == NULL)
		abort();
	vn = cut + 1;
	v = calloc(vn, sizeof(*v));
	if (v == NULL)
		abort();

	for (unsigned p = 0; p < kvmstats_nr_providers(seg); p++) {
		const struct kvmstats_provider_info *pi = kvmstats_provider(seg, p);

		if (pi == NULL || kvmstats_provider_lookup(seg, pi->name) < 0)
			abort();
	}
	(void)kvmstats_provider(seg, kvmstats_nr_providers(seg));
	(void)kvmstats_provider_lookup(seg, "kvm");

	for (unsigned t = 0; t < kvmstats_nr_targets(seg) && budget; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
		char idx[16];

		if (ti == NULL || ti->record_words > cut || ti->cut_offset + ti->record_words > cut)
			abort();
		(void)kvmstats_target_lookup(seg, ti->kind, ti->label);
		(void)kvmstats_target_lookup(seg, ti->kind, ti->id);
		snprintf(idx, sizeof(idx), "%u", ti->vcpu_index);
		(void)kvmstats_target_lookup(seg, ti->kind, idx);
		(void)kvmstats_read_record(seg, t, v, vn, &smp);
		(void)kvmstats_read_history(seg, t, in->ring_depth + 1, v, vn, NULL, &got);
		budget--;
		for (unsigned j = 0; j < ti->nr_stats + 1 && budget; j++, budget--) {
			const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, j);
			struct kvmstats_stat_handle h;

			if (si == NULL) {
				if (j < ti->nr_stats)
					abort();
				continue;
			}
			if ((uint64_t)si->value_index + si->size > ti->record_words)
				abort();
			if (kvmstats_stat_lookup(seg, t, si->provider_name, si->name, &h) < 0)
				abort();
			(void)kvmstats_read_scalar(seg, &h, &v[0], &smp);
			(void)kvmstats_read_values(seg, &h, v, vn, &smp);
		}
	}
	(void)kvmstats_target(seg, kvmstats_nr_targets(seg));
	(void)kvmstats_read_record(seg, kvmstats_nr_targets(seg), v, vn, NULL);
	(void)kvmstats_read_cut(seg, v, vn, NULL);
	{
		struct kvmstats_sample *s = calloc(kvmstats_nr_targets(seg) + 1, sizeof(*s));

		if (s == NULL)
			abort();
		(void)kvmstats_read_cut(seg, v, vn, s);
		free(s);
	}
	free(v);
}

/* Leave nothing in /tmp after a run that ends normally. */
static void
cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static int
count(const char *file, void *arg)
{
	(void)file;
	++*(unsigned *)arg;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmstats_attach_opts opts;
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;
	unsigned n = 0;

	if (path[0] == '\0') {
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(path, sizeof(path), "%s/" KVMSTATS_SEGMENT_PREFIX FUZZ_VM, dir);
		atexit(cleanup);
	}
	fuzz_validate_copy(data, size);

	/*
	 * A closed ready gate makes attach wait 100 ms before -EAGAIN, by
	 * design (a publisher may be mid-build; test_abi covers it): skip
	 * such inputs, or that wait is all the fuzzer would measure.
	 */
	if (size >= sizeof(struct ks_shm_header) &&
	    ((const struct ks_shm_header *)(const void *)data)->ready != KS_READY_MAGIC)
		return 0;
	write_file(data, size);
	kvmstats_attach_opts_init(&opts);
	opts.dir = dir;
	(void)kvmstats_enumerate(dir, count, &n, &err);
	if (kvmstats_attach(FUZZ_VM, &opts, &seg, &err) == 0) {
		walk(seg, size);
		kvmstats_detach(&seg);
	}
	return 0;
}
