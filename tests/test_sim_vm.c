/* SPDX-License-Identifier: MIT */
/*
 * test_sim_vm.c - the simulated VM: kernel layout, plausible values, thread.
 *
 * The sim's fds are read exactly as real stats fds are: ks_statsfd_parse()
 * once, then ks_statsfd_read_data() per sample.  Every check below is by
 * stat name and type from the parsed schema, not by the sim's internals.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ks_time.h"
#include "ks_abi.h"
#include "kvm_x86_tables.h"
#include "sim_vm.h"
#include "statsfd.h"

#define NR_VCPUS	3
#define STEPS		400

/* ---- helpers ------------------------------------------------------------- */

static struct ks_sim_vm *
sim_create(unsigned nr)
{
	struct kvmstats_error err;
	struct ks_sim_vm *vm;

	if (ks_sim_vm_create(nr, &vm, &err) != 0)
		fail_msg("ks_sim_vm_create: %s", err.msg);
	return vm;
}

static void
parse_fd(int fd, struct ks_statsfd_schema *s)
{
	struct kvmstats_error err;

	if (ks_statsfd_parse(fd, "sim stats fd", s, &err) != 0)
		fail_msg("parse: %s", err.msg);
}

static const struct ks_kvm_desc *
find(const struct ks_statsfd_schema *s, const char *name)
{
	uint32_t i;

	for (i = 0; i < s->nr_desc; i++)
		if (strcmp(s->desc[i].name, name) == 0)
			return &s->desc[i];
	fail_msg("no stat \"%s\"", name);
	return NULL;
}

static uint64_t
val(const struct ks_statsfd_schema *s, const uint64_t *data, const char *name)
{
	return data[find(s, name)->offset / 8];
}

static void
assert_matches_table(const struct ks_statsfd_schema *s, const struct ks_image_desc *t,
		     uint32_t n)
{
	uint32_t i;

	assert_int_equal(s->name_size, KS_X86_NAME_SIZE);
	assert_int_equal(s->nr_desc, n);
	assert_int_equal(s->nr_skipped, 0);
	for (i = 0; i < n; i++) {
		assert_string_equal(s->desc[i].name, t[i].name);
		assert_int_equal(s->desc[i].type, t[i].flags & KVM_STATS_TYPE_MASK);
		assert_int_equal(s->desc[i].unit,
				 (t[i].flags & KVM_STATS_UNIT_MASK) >> KVM_STATS_UNIT_SHIFT);
		assert_int_equal(s->desc[i].base, KS_BASE_POW10);
		assert_int_equal(s->desc[i].exponent, t[i].exponent);
		assert_int_equal(s->desc[i].size, t[i].size);
		assert_int_equal(s->desc[i].offset, t[i].offset);
		assert_int_equal(s->desc[i].bucket_size, 0);
	}
}

/* The link name of one of our fds, e.g. "/memfd:kvm-vm-stats (deleted)". */
static void
fd_link(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	assert_true(n > 0);
	buf[n] = '\0';
}

/* ---- layout -------------------------------------------------------------- */

static void
test_layout(void **state)
{
	struct ks_sim_vm *vm = sim_create(NR_VCPUS);
	struct ks_statsfd_schema s;
	char want[64], link[128];
	int i;

	(void)state;
	snprintf(want, sizeof(want), "kvm-%d", (int)getpid());
	assert_string_equal(ks_sim_vm_name(vm), want);
	assert_int_equal(ks_sim_vm_nr_vcpus(vm), NR_VCPUS);

	parse_fd(ks_sim_vm_stats_fd(vm, -1), &s);
	assert_string_equal(s.id, want);
	assert_int_equal(s.data_offset, 1032);
	assert_int_equal(s.data_size, KS_X86_VM_DATA_SIZE);
	assert_matches_table(&s, ks_x86_vm_desc, KS_X86_VM_NR_DESC);
	ks_statsfd_schema_clear(&s);
	fd_link(ks_sim_vm_stats_fd(vm, -1), link, sizeof(link));
	assert_non_null(strstr(link, "memfd:kvm-vm-stats"));

	for (i = 0; i < NR_VCPUS; i++) {
		parse_fd(ks_sim_vm_stats_fd(vm, i), &s);
		snprintf(want, sizeof(want), "kvm-%d/vcpu-%d", (int)getpid(), i);
		assert_string_equal(s.id, want);
		assert_int_equal(s.data_offset, 2952);
		assert_int_equal(s.data_size, KS_X86_VCPU_DATA_SIZE);
		assert_matches_table(&s, ks_x86_vcpu_desc, KS_X86_VCPU_NR_DESC);
		ks_statsfd_schema_clear(&s);
		fd_link(ks_sim_vm_stats_fd(vm, i), link, sizeof(link));
		snprintf(want, sizeof(want), "memfd:kvm-vcpu-stats:%d ", i);
		assert_non_null(strstr(link, want));
	}
	assert_int_equal(ks_sim_vm_stats_fd(vm, NR_VCPUS), -EINVAL);
	assert_int_equal(ks_sim_vm_stats_fd(vm, -2), -EINVAL);
	ks_sim_vm_destroy(&vm);
	assert_null(vm);
}

static void
test_create_limits(void **state)
{
	struct kvmstats_error err;
	struct ks_sim_vm *vm = (struct ks_sim_vm *)&err;

	(void)state;
	assert_int_equal(ks_sim_vm_create(KS_SIM_MAX_VCPUS + 1, &vm, &err), -EINVAL);
	assert_null(vm);
	assert_non_null(strstr(err.msg, "at most 1024"));
	vm = sim_create(0);
	assert_int_equal(ks_sim_vm_nr_vcpus(vm), 0);
	assert_int_equal(ks_sim_vm_stats_fd(vm, 0), -EINVAL);
	ks_sim_vm_step(vm);
	ks_sim_vm_destroy(&vm);
	ks_sim_vm_destroy(&vm);	/* NULL: harmless */
}

/* ---- values ----------------------------------------------------------------- */

/* One stats file followed over the steps. */
struct tracked {
	int fd;
	struct ks_statsfd_schema s;
	uint64_t *prev, *cur;
	uint64_t *vmin, *vmax;		/* per value: range seen */
};

static void
track_open(struct tracked *t, int fd)
{
	size_t words;

	t->fd = fd;
	parse_fd(fd, &t->s);
	words = t->s.data_size / 8;
	t->prev = calloc(words, 8);
	t->cur = calloc(words, 8);
	t->vmin = calloc(words, 8);
	t->vmax = calloc(words, 8);
	assert_true(t->prev && t->cur && t->vmin && t->vmax);
	assert_int_equal(ks_statsfd_read_data(fd, &t->s, t->cur), 0);
	memcpy(t->vmin, t->cur, t->s.data_size);
	memcpy(t->vmax, t->cur, t->s.data_size);
}

static void
track_close(struct tracked *t)
{
	ks_statsfd_schema_clear(&t->s);
	free(t->prev);
	free(t->cur);
	free(t->vmin);
	free(t->vmax);
}

/* Per-type rules between two consecutive samples. */
static void
check_step(const struct tracked *t)
{
	const struct ks_kvm_desc *d;
	uint32_t i, j, w;

	for (i = 0; i < t->s.nr_desc; i++) {
		d = &t->s.desc[i];
		for (j = 0; j < d->size; j++) {
			w = d->offset / 8 + j;
			/* Cumulative counters, peaks and histogram buckets never fall. */
			if (d->type != KS_TYPE_INSTANT && t->cur[w] < t->prev[w])
				fail_msg("%s[%u] fell from %llu to %llu", d->name, j,
					 (unsigned long long)t->prev[w],
					 (unsigned long long)t->cur[w]);
			if (d->unit == KS_UNIT_BOOLEAN && t->cur[w] > 1)
				fail_msg("boolean %s is %llu", d->name,
					 (unsigned long long)t->cur[w]);
		}
	}
}

/*
 * A log histogram and its *_ns sum: each sample in bucket i lies in
 * [2^(i-1), 2^i) (bucket 0: [0, 1); the last: [2^(size-2), inf)), so the
 * sum lies between the buckets' lower and upper bounds.
 */
static void
check_hist(const struct tracked *t, const struct ks_kvm_desc *h, const char *ns_name)
{
	uint64_t ns = val(&t->s, t->cur, ns_name), lo = 0, hi = 0, n = 0, c;
	bool unbounded = false;
	uint32_t i;

	for (i = 0; i < h->size; i++) {
		c = t->cur[h->offset / 8 + i];
		n += c;
		if (i == 0 || c == 0)
			continue;
		lo += c << (i - 1);
		if (i == h->size - 1u)
			unbounded = true;
		else
			hi += c << i;
	}
	if (lo > ns || (!unbounded && ns > hi) || (ns > 0) != (n > 0))
		fail_msg("%s: %llu samples in [%llu, %llu%s] but %s = %llu", h->name,
			 (unsigned long long)n, (unsigned long long)lo,
			 (unsigned long long)hi, unbounded ? "+inf" : "", ns_name,
			 (unsigned long long)ns);
}

static uint64_t
hist_samples(const struct tracked *t, const char *name)
{
	const struct ks_kvm_desc *h = find(&t->s, name);
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < h->size; i++)
		n += t->cur[h->offset / 8 + i];
	return n;
}

/* The vCPU's counters agree with each other as the kernel's would. */
static void
check_vcpu_relations(const struct tracked *t)
{
	static const char *const parts[] = {
		"io_exits", "mmio_exits", "signal_exits", "irq_window_exits",
		"nmi_window_exits", "halt_exits", "request_irq_exits", "irq_exits",
		"notify_window_exits",
	};
	const struct ks_statsfd_schema *s = &t->s;
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		sum += val(s, t->cur, parts[i]);
	assert_true(sum <= val(s, t->cur, "exits"));
	check_hist(t, find(s, "halt_poll_success_hist"), "halt_poll_success_ns");
	check_hist(t, find(s, "halt_poll_fail_hist"), "halt_poll_fail_ns");
	check_hist(t, find(s, "halt_wait_hist"), "halt_wait_ns");
	assert_int_equal(hist_samples(t, "halt_poll_success_hist"),
			 val(s, t->cur, "halt_successful_poll"));
	assert_int_equal(hist_samples(t, "halt_poll_success_hist") +
			 hist_samples(t, "halt_poll_fail_hist"),
			 val(s, t->cur, "halt_attempted_poll"));
	assert_int_equal(hist_samples(t, "halt_wait_hist"), val(s, t->cur, "halt_wakeup"));
	assert_true(val(s, t->cur, "pf_fixed") <= val(s, t->cur, "pf_taken"));
	assert_true(val(s, t->cur, "directed_yield_successful") <=
		    val(s, t->cur, "directed_yield_attempted"));
}

static void
sample(struct tracked *t)
{
	uint32_t w;

	memcpy(t->prev, t->cur, t->s.data_size);
	assert_int_equal(ks_statsfd_read_data(t->fd, &t->s, t->cur), 0);
	for (w = 0; w < t->s.data_size / 8; w++) {
		if (t->cur[w] < t->vmin[w])
			t->vmin[w] = t->cur[w];
		if (t->cur[w] > t->vmax[w])
			t->vmax[w] = t->cur[w];
	}
	check_step(t);
}

/* Over the whole run every instant stat moved, and every counter rose. */
static void
check_variety(const struct tracked *t, const char *const *quiet)
{
	const struct ks_kvm_desc *d;
	uint32_t i, w;
	size_t q;

	for (i = 0; i < t->s.nr_desc; i++) {
		d = &t->s.desc[i];
		for (q = 0; quiet[q] != NULL; q++)
			if (strcmp(quiet[q], d->name) == 0)
				break;
		if (quiet[q] != NULL || d->type == KS_TYPE_LOG_HIST)
			continue;
		w = d->offset / 8;
		if (t->vmin[w] == t->vmax[w])
			fail_msg("%s stayed at %llu for %d steps", d->name,
				 (unsigned long long)t->vmin[w], STEPS);
	}
}

/* Exits rise fastest: no other plain vCPU counter overtakes them. */
static void
check_exits_fastest(const struct tracked *t)
{
	uint64_t exits = val(&t->s, t->cur, "exits");
	const struct ks_kvm_desc *d;
	uint32_t i;

	for (i = 0; i < t->s.nr_desc; i++) {
		d = &t->s.desc[i];
		if (d->type == KS_TYPE_CUMULATIVE && d->unit == KS_UNIT_NONE &&
		    t->cur[d->offset / 8] > exits)
			fail_msg("%s (%llu) outgrew exits (%llu)", d->name,
				 (unsigned long long)t->cur[d->offset / 8],
				 (unsigned long long)exits);
	}
}

static void
test_steps(void **state)
{
	/* Rare events (about 1 in 500 steps or less): may stay 0 for the run. */
	static const char *const quiet[] = {
		"notify_window_exits", "insn_emulation_fail", NULL,
	};
	struct ks_sim_vm *vm = sim_create(NR_VCPUS);
	struct tracked t[1 + NR_VCPUS];
	int i, k;

	(void)state;
	for (i = 0; i <= NR_VCPUS; i++)
		track_open(&t[i], ks_sim_vm_stats_fd(vm, i - 1));
	for (k = 0; k < STEPS; k++) {
		ks_sim_vm_step(vm);
		for (i = 0; i <= NR_VCPUS; i++)
			sample(&t[i]);
		for (i = 1; i <= NR_VCPUS; i++) {
			const struct ks_statsfd_schema *sc = &t[i].s;

			check_vcpu_relations(&t[i]);
			/* A step is 1 ms of VM time: never more polling and waiting than that. */
			assert_true(val(sc, t[i].cur, "halt_poll_success_ns") +
				    val(sc, t[i].cur, "halt_poll_fail_ns") +
				    val(sc, t[i].cur, "halt_wait_ns") <= (uint64_t)(k + 1) * 1000000);
		}
	}
	for (i = 0; i <= NR_VCPUS; i++) {
		check_variety(&t[i], quiet);
		if (i > 0)
			check_exits_fastest(&t[i]);
		track_close(&t[i]);
	}
	ks_sim_vm_destroy(&vm);
}

/* Fixed seeds: two sims stepped alike hold the same numbers. */
static void
test_reproducible(void **state)
{
	struct ks_sim_vm *a = sim_create(2), *b = sim_create(2);
	uint8_t da[KS_X86_VCPU_DATA_SIZE], db[KS_X86_VCPU_DATA_SIZE];
	size_t len;
	off_t off;
	int i;

	(void)state;
	for (i = 0; i < 50; i++) {
		ks_sim_vm_step(a);
		ks_sim_vm_step(b);
	}
	for (i = -1; i < 2; i++) {
		off = i < 0 ? 1032 : 2952;
		len = i < 0 ? KS_X86_VM_DATA_SIZE : KS_X86_VCPU_DATA_SIZE;
		assert_int_equal(pread(ks_sim_vm_stats_fd(a, i), da, len, off), (ssize_t)len);
		assert_int_equal(pread(ks_sim_vm_stats_fd(b, i), db, len, off), (ssize_t)len);
		assert_memory_equal(da, db, len);
	}
	/* ...and the two vCPUs of one sim differ (seeded per vCPU). */
	assert_int_equal(pread(ks_sim_vm_stats_fd(a, 0), da, sizeof(da), 2952), sizeof(da));
	assert_int_equal(pread(ks_sim_vm_stats_fd(a, 1), db, sizeof(db), 2952), sizeof(db));
	assert_memory_not_equal(da, db, sizeof(da));
	ks_sim_vm_destroy(&a);
	ks_sim_vm_destroy(&b);
}

/* ---- the thread ---------------------------------------------------------- */

static uint64_t
read_exits(struct ks_sim_vm *vm, const struct ks_statsfd_schema *s)
{
	uint64_t data[KS_X86_VCPU_DATA_SIZE / 8];

	assert_int_equal(ks_statsfd_read_data(ks_sim_vm_stats_fd(vm, 0), s, data), 0);
	return val(s, data, "exits");
}

static void
test_thread(void **state)
{
	struct ks_sim_vm *vm = sim_create(1);
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	uint64_t before, deadline, t0;

	(void)state;
	parse_fd(ks_sim_vm_stats_fd(vm, 0), &s);
	assert_int_equal(ks_sim_vm_start(vm, 0, &err), -EINVAL);
	assert_int_equal(read_exits(vm, &s), 0);
	assert_int_equal(ks_sim_vm_start(vm, 1000, &err), 0);
	assert_int_equal(ks_sim_vm_start(vm, 1000, &err), -EBUSY);
	/* Counters move on their own; wait (bounded) for a few steps. */
	deadline = (ks_mono_ns() / 1000000) + 10000;
	before = read_exits(vm, &s);
	while (read_exits(vm, &s) == before && (ks_mono_ns() / 1000000) < deadline)
		usleep(1000);
	assert_true(read_exits(vm, &s) > before);
	ks_sim_vm_destroy(&vm);
	assert_null(vm);
	ks_statsfd_schema_clear(&s);

	/*
	 * At 1 Hz the thread sleeps long: destroy must still be prompt.
	 * Waiting out the period would take some 980 ms; the stop check
	 * every 50 ms makes it a few ms, so 900 leaves a slow machine room.
	 */
	vm = sim_create(1);
	assert_int_equal(ks_sim_vm_start(vm, 1, &err), 0);
	usleep(20000);
	t0 = (ks_mono_ns() / 1000000);
	ks_sim_vm_destroy(&vm);
	assert_true((ks_mono_ns() / 1000000) - t0 < 900);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_create_limits),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
