/* SPDX-License-Identifier: MIT */
/*
 * test_real_exporter.c - kvmstats-exporter's exposition of the running
 * kernel's KVM stats.
 *
 * The test is its own VMM (raw ioctls, no vCPU ever runs), publishes the
 * VM through the embedded API and scrapes it as the exporter does, in
 * both modes and both formats.  What the kernel's own tables must give:
 * every stat exported (none refused by a naming or shape rule), under the
 * name the rules say, with the values a reader reads; every histogram's
 * buckets cumulative, its edges strictly increasing, +Inf equal to
 * _count.  tests/exporter/test_http.py runs promtool on such a VM where
 * this host's /dev/kvm works; this test runs in the guest of make
 * test-kvm on every machine.  Without a usable /dev/kvm it is skipped with
 * the reason, or fails if KVMSTATS_REQUIRE_KVM=1.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "exporter_log.h"
#include "kvmstats/publisher.h"
#include "kvmstats/reader.h"
#include "metric_map.h"
#include "real_kvm.h"
#include "seg_check.h"
#include "server.h"
#include "shm_dir.h"

#define NR_VCPUS	2
#define WAIT_MS		10000

static char shm_dir[256];
static unsigned refusals;

static void
count_refusals(const char *line)
{
	if (strstr(line, "not exported") != NULL) {
		refusals++;
		print_message("exporter: %s\n", line);
	}
}

/* The value of the sample line that starts with @prefix, or NULL. */
static const char *
sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, prefix, n) == 0 && l[n] == ' ') {
			static char v[128];
			const char *e = strchr(l + n + 1, '\n');

			snprintf(v, sizeof(v), "%.*s", (int)(e - l - n - 1), l + n + 1);
			return v;
		}
	return NULL;
}

/* Every sample of histogram @name for @labels: cumulative, edges rising, +Inf = _count. */
static void
check_hist(const char *text, const char *name, const char *labels, uint32_t size)
{
	char prefix[512];
	uint64_t prev_count = 0;
	double prev_le = -1;
	unsigned buckets = 0;
	const char *v;

	snprintf(prefix, sizeof(prefix), "%s_bucket{%s,le=\"", name, labels);
	for (const char *l = strstr(text, prefix); l != NULL; l = strstr(l + 1, prefix)) {
		const char *le = l + strlen(prefix), *sp = strchr(le, ' ');
		uint64_t count = strtoull(sp + 1, NULL, 10);
		double x = strncmp(le, "+Inf", 4) == 0 ? 1e308 * 10 : strtod(le, NULL);

		assert_true(x > prev_le);
		assert_true(count >= prev_count);
		prev_le = x;
		prev_count = count;
		buckets++;
	}
	assert_int_equal(buckets, size);
	snprintf(prefix, sizeof(prefix), "%s_count{%s}", name, labels);
	v = sample(text, prefix);
	assert_non_null(v);
	assert_int_equal(strtoull(v, NULL, 10), prev_count);
}

static char *
scrape(bool per_vcpu, enum expo_format fmt)
{
	struct ex_config cfg = { .dir = shm_dir, .owner = KVMSTATS_OWNER_DEFAULT,
				 .per_vcpu = per_vcpu };
	struct ex_server s;
	char *out;
	size_t len;

	assert_int_equal(ex_server_init(&s, &cfg, "/metrics"), 0);
	assert_int_equal(ex_server_scrape(&s, fmt, &out, &len), 0);
	ex_server_clear(&s);
	return out;
}

static void
real_vm_scraped(void **state)
{
	struct real_vm r;
	struct kvmstats_publisher_opts o;
	struct kvmstats_publisher *pub;
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;
	struct kvmstats_fd fds[1 + NR_VCPUS];
	struct kvmstats_vm *vm;
	char name[64], labels[256];
	uint64_t *cut;
	unsigned checked = 0;

	(void)state;
	real_vm_make(&r, NR_VCPUS);	/* skips, with the reason, where KVM is not usable */
	kvmstats_publisher_opts_init(&o);
	o.dir = shm_dir;
	o.hz = 100;
	if (kvmstats_publisher_create(&o, &pub, &err) < 0)
		fail_msg("%s", err.msg);
	fds[0] = (struct kvmstats_fd) { r.stats[0], KVMSTATS_TARGET_VM, 0, NULL };
	for (unsigned i = 0; i < NR_VCPUS; i++)
		fds[1 + i] = (struct kvmstats_fd) { r.stats[1 + i], KVMSTATS_TARGET_VCPU, i, NULL };
	snprintf(name, sizeof(name), "real-exporter-%d", (int)getpid());
	if (kvmstats_publisher_add_vm(pub, name, fds, 1 + NR_VCPUS, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	for (unsigned ms = 0; ms < WAIT_MS && seg == NULL; ms += 10) {
		struct kvmstats_attach_opts ao = { shm_dir, KVMSTATS_OWNER_DEFAULT };
		struct kvmstats_status st = { 0 };

		if (kvmstats_attach(name, &ao, &seg, &err) == 0) {
			kvmstats_status(seg, &st);
			if (st.sweep < 2)
				kvmstats_detach(&seg);
		}
		if (seg == NULL)
			sleep_ms(10);
	}
	assert_non_null(seg);
	cut = calloc(kvmstats_cut_words(seg), sizeof(*cut));
	assert_non_null(cut);
	assert_int_equal(kvmstats_read_cut(seg, cut, kvmstats_cut_words(seg), NULL), 0);

	refusals = 0;
	ex_log_redirect(count_refusals);
	for (int per_vcpu = 0; per_vcpu <= 1; per_vcpu++) {
		char *text = scrape(per_vcpu, EXPO_TEXT), *om = scrape(per_vcpu, EXPO_OPENMETRICS);

		assert_true(strlen(om) > 6 && strcmp(om + strlen(om) - 6, "# EOF\n") == 0);
		for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
			const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

			if (ti->kind == KVMSTATS_TARGET_VCPU && per_vcpu)
				snprintf(labels, sizeof(labels), "vm=\"%s\",vcpu=\"%u\",qom_path=\"%s\"",
					 name, ti->vcpu_index, ti->label);
			else if (ti->kind == KVMSTATS_TARGET_VCPU && t != 1)
				continue;	/* per-VM sums: one series for all vCPUs */
			else
				snprintf(labels, sizeof(labels), "vm=\"%s\"", name);
			for (unsigned j = 0; j < ti->nr_stats; j++) {
				const struct kvmstats_stat_info *st = kvmstats_target_stat(seg, t, j);
				struct mm_family f;
				char prefix[512];

				if (mm_family_of(st->provider_name, ti->kind, st, &f) != NULL)
					fail_msg("the kernel's stat %s is refused: %s", st->name,
						 mm_family_of(st->provider_name, ti->kind, st, &f));
				if (f.kind == MM_HISTOGRAM) {
					check_hist(text, f.name, labels, st->size);
				} else {
					const char *v;

					snprintf(prefix, sizeof(prefix), "%s%s{%s}", f.name,
						 f.kind == MM_COUNTER ? "_total" : "", labels);
					v = sample(text, prefix);
					if (v == NULL)
						fail_msg("no sample %s", prefix);
					/*
					 * No vCPU ever runs: every kvm value is the one a reader
					 * read.  The VMM's threads do run, so a sched counter
					 * read later is only never behind it.
					 */
					if (ti->kind == KVMSTATS_TARGET_VM || per_vcpu) {
						char want[MM_NUM_MAX];
						uint64_t raw = cut[ti->cut_offset + st->value_index];
						bool kvm = strcmp(st->provider_name, "kvm") == 0;

						if (f.boolean)
							snprintf(want, sizeof(want), "%d", raw != 0);
						else
							mm_format_value(want, raw, st->base, st->exponent);
						if (kvm && strcmp(v, want) != 0)
							fail_msg("%s is %s, a reader read %s", prefix, v, want);
						if (!kvm && f.kind == MM_COUNTER &&
						    strtod(v, NULL) < strtod(want, NULL))
							fail_msg("%s is %s, behind a reader's earlier %s",
								 prefix, v, want);
					}
				}
				checked++;
			}
		}
		free(text);
		free(om);
	}
	ex_log_redirect(NULL);
	print_message("exporter: %u series of the kernel's %u stats checked, %u refused\n",
		      checked, kvmstats_nr_targets(seg) ? kvmstats_target(seg, 1)->nr_stats : 0,
		      refusals);
	assert_int_equal(refusals, 0);
	assert_true(checked > 40);
	free(cut);
	kvmstats_detach(&seg);
	kvmstats_publisher_destroy(&pub);
	real_vm_close(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(real_vm_scraped),
	};

	if (test_shm_dir(shm_dir, sizeof(shm_dir), "real-exporter") < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
