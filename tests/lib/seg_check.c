/* SPDX-License-Identifier: MIT */
/* seg_check.c - waiting on a published segment and checking it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ks_time.h"
#include "seg_check.h"

void
sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

enum kvmstats_state
seg_wait_state(const struct kvmstats_segment *seg, enum kvmstats_state want, unsigned ms)
{
	uint64_t end = (ks_mono_ns() / 1000000) + ms;
	struct kvmstats_status st;

	for (;;) {
		kvmstats_status(seg, &st);
		if (st.state == want || (ks_mono_ns() / 1000000) > end)
			return st.state;
		sleep_ms(5);
	}
}

void
seg_check_sweeping(const struct kvmstats_segment *seg, unsigned ms)
{
	struct kvmstats_status a, b;

	kvmstats_status(seg, &a);
	b = a;
	for (unsigned t = 0; t < ms; t += 5) {
		sleep_ms(5);
		kvmstats_status(seg, &b);
		if (b.sweep >= a.sweep + 3)
			break;
	}
	assert_true(b.sweep >= a.sweep + 3);
	assert_int_equal(b.state, KVMSTATS_STATE_LIVE);
	assert_int_equal(b.read_errors, 0);
}

void
check_stat_is_desc(const struct kvmstats_stat_info *si, const struct ks_kvm_desc *d)
{
	assert_non_null(si);
	assert_string_equal(si->name, d->name);
	assert_string_equal(si->provider_name, "kvm");
	assert_int_equal(si->type, d->type);
	assert_int_equal(si->unit, d->unit);
	assert_int_equal(si->base, d->base);
	assert_int_equal(si->exponent, d->exponent);
	assert_int_equal(si->size, d->size);
	assert_int_equal(si->bucket_size, d->bucket_size);
	assert_int_equal(si->value_index, d->offset / 8);
}

unsigned
seg_provider_stats(const struct kvmstats_segment *seg, unsigned t, const char *provider)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
	unsigned n = 0;

	for (unsigned j = 0; ti != NULL && j < ti->nr_stats; j++)
		n += strcmp(kvmstats_target_stat(seg, t, j)->provider_name, provider) == 0;
	return n;
}

void
check_target_is_fd(const struct kvmstats_segment *seg, unsigned t, int fd)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
	struct ks_statsfd_schema k;
	struct kvmstats_error err;
	uint64_t *rec, *raw;

	assert_non_null(ti);
	if (ks_statsfd_parse(fd, "test stats fd", &k, &err) < 0)
		fail_msg("parse: %s", err.msg);
	assert_string_equal(ti->id, k.id);
	assert_int_equal(seg_provider_stats(seg, t, "kvm"), k.nr_desc);
	assert_int_equal(ti->nr_stats, k.nr_desc + seg_provider_stats(seg, t, "sched"));
	assert_true((uint64_t)ti->record_words * 8 >= k.data_size);
	for (uint32_t j = 0; j < k.nr_desc; j++)
		check_stat_is_desc(kvmstats_target_stat(seg, t, j), &k.desc[j]);
	rec = calloc(ti->record_words, 8);
	raw = calloc(ti->record_words, 8);
	assert_true(rec && raw);
	assert_int_equal(kvmstats_read_record(seg, t, rec, ti->record_words, NULL), 0);
	assert_int_equal(ks_statsfd_read_data(fd, &k, raw), 0);
	assert_memory_equal(rec, raw, k.data_size);
	free(rec);
	free(raw);
	ks_statsfd_schema_clear(&k);
}
