/* SPDX-License-Identifier: MIT */
/* seg_check.c - waiting on a published segment and checking it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "seg_check.h"

void
sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum kvmstats_state
seg_wait_state(const struct kvmstats_segment *seg, enum kvmstats_state want, unsigned ms)
{
	uint64_t end = mono_ms() + ms;
	struct kvmstats_status st;

	for (;;) {
		kvmstats_status(seg, &st);
		if (st.state == want || mono_ms() > end)
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
