/* SPDX-License-Identifier: MIT */
/*
 * test_hmp_format.c - every HMP "info stats" formatting rule of
 * reader/cli/hmp_units.c, and the CLI's JSON string escaping
 * (reader/cli/json.c; tests link the CLI's objects, less its main).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hmp_units.h"
#include "json.h"

/* The scale text for (unit, base, exponent), checked against @want. */
static void
check_scale(unsigned unit, unsigned base, int exp, const char *want)
{
	char buf[64];
	int n = ks_hmp_scale(buf, sizeof(buf), unit, base, exp);

	if (strcmp(buf, want) != 0 || n != (int)strlen(want))
		fail_msg("unit %u base %u exp %d: got \"%s\" (%d), want \"%s\"",
			 unit, base, exp, buf, n, want);
}

static void
test_si_prefixes(void **state)
{
	static const char *const want[] = {
		"a", "f", "p", "n", "u", "m", "", "K", "M", "G", "T", "P", "E",
	};

	(void)state;
	for (int e = -18; e <= 18; e += 3)
		assert_string_equal(ks_hmp_si_prefix(e), want[e / 3 + 6]);
	assert_null(ks_hmp_si_prefix(-21));
	assert_null(ks_hmp_si_prefix(21));
	assert_null(ks_hmp_si_prefix(1));
	assert_null(ks_hmp_si_prefix(-2));
}

static void
test_iec_prefixes(void **state)
{
	static const char *const want[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };

	(void)state;
	for (int e = 0; e <= 60; e += 10)
		assert_string_equal(ks_hmp_iec_prefix(e), want[e / 10]);
	assert_null(ks_hmp_iec_prefix(-10));
	assert_null(ks_hmp_iec_prefix(70));
	assert_null(ks_hmp_iec_prefix(12));
}

static void
test_seconds(void **state)
{
	(void)state;
	check_scale(KVMSTATS_UNIT_SECONDS, 10, -9, "ns");
	check_scale(KVMSTATS_UNIT_SECONDS, 10, -6, "us");	/* micro is u */
	check_scale(KVMSTATS_UNIT_SECONDS, 10, -3, "ms");
	check_scale(KVMSTATS_UNIT_SECONDS, 10, 0, "s");
	check_scale(KVMSTATS_UNIT_SECONDS, 10, -18, "as");
	check_scale(KVMSTATS_UNIT_SECONDS, 10, 18, "Es");
	check_scale(KVMSTATS_UNIT_SECONDS, 10, -2, "* 10^-2 seconds");
	check_scale(KVMSTATS_UNIT_SECONDS, 10, -21, "* 10^-21 seconds");
	check_scale(KVMSTATS_UNIT_SECONDS, 2, 10, "Kis");	/* the rule is per s/B, not per unit sense */
}

static void
test_bytes(void **state)
{
	(void)state;
	check_scale(KVMSTATS_UNIT_BYTES, 2, 0, "B");
	check_scale(KVMSTATS_UNIT_BYTES, 2, 10, "KiB");
	check_scale(KVMSTATS_UNIT_BYTES, 2, 20, "MiB");
	check_scale(KVMSTATS_UNIT_BYTES, 2, 60, "EiB");
	check_scale(KVMSTATS_UNIT_BYTES, 2, 12, "* 2^12 bytes");
	check_scale(KVMSTATS_UNIT_BYTES, 2, 70, "* 2^70 bytes");
	check_scale(KVMSTATS_UNIT_BYTES, 10, 0, "B");
	check_scale(KVMSTATS_UNIT_BYTES, 10, 3, "KB");
	check_scale(KVMSTATS_UNIT_BYTES, 10, 4, "* 10^4 bytes");
}

static void
test_cycles_boolean_none(void **state)
{
	(void)state;
	/* cycles and boolean never get a short unit or a prefix */
	check_scale(KVMSTATS_UNIT_CYCLES, 10, 0, "cycles");
	check_scale(KVMSTATS_UNIT_CYCLES, 10, 3, "* 10^3 cycles");
	check_scale(KVMSTATS_UNIT_CYCLES, 10, -9, "* 10^-9 cycles");
	check_scale(KVMSTATS_UNIT_BOOLEAN, 10, 0, "boolean");
	/* no unit: the scale alone, without a trailing space; nothing at exponent 0 */
	check_scale(KVMSTATS_UNIT_NONE, 10, 0, "");
	check_scale(KVMSTATS_UNIT_NONE, 10, 3, "* 10^3");
	check_scale(KVMSTATS_UNIT_NONE, 2, 10, "* 2^10");
}

static struct kvmstats_stat_info
stat(const char *name, unsigned type, unsigned unit, unsigned base, int exp,
     uint32_t size, uint32_t bucket)
{
	return (struct kvmstats_stat_info){
		.name = name, .provider_name = "kvm", .type = type, .unit = unit,
		.base = base, .exponent = exp, .size = size, .bucket_size = bucket };
}

static void
check_head(const struct kvmstats_stat_info *si, const char *want)
{
	char buf[256];

	ks_hmp_stat_head(buf, sizeof(buf), si);
	assert_string_equal(buf, want);
}

static void
test_heads(void **state)
{
	struct kvmstats_stat_info s;

	(void)state;
	s = stat("exits", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_NONE, 10, 0, 1, 0);
	check_head(&s, "exits (cumulative)");
	s = stat("halt_poll_fail_ns", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_SECONDS, 10, -9, 1, 0);
	check_head(&s, "halt_poll_fail_ns (cumulative, ns)");
	s = stat("guest_mode", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_BOOLEAN, 10, 0, 1, 0);
	check_head(&s, "guest_mode (instant, boolean)");
	s = stat("dirty", KVMSTATS_TYPE_PEAK, KVMSTATS_UNIT_BOOLEAN, 10, 0, 1, 0);
	check_head(&s, "dirty (peak, boolean)");
	s = stat("halt_wait_hist", KVMSTATS_TYPE_LOG_HIST, KVMSTATS_UNIT_SECONDS, 10, -9, 32, 0);
	check_head(&s, "halt_wait_hist (log2-histogram, ns)");
	s = stat("lat", KVMSTATS_TYPE_LINEAR_HIST, KVMSTATS_UNIT_SECONDS, 10, -6, 8, 50);
	check_head(&s, "lat (linear-histogram, us, bucket size=50)");
	s = stat("ticks", KVMSTATS_TYPE_LINEAR_HIST, KVMSTATS_UNIT_NONE, 10, 0, 4, 10);
	check_head(&s, "ticks (linear-histogram, bucket size=10)");
	s = stat("pages", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_BYTES, 2, 12, 1, 0);
	check_head(&s, "pages (instant, * 2^12 bytes)");
}

/* The whole line, through a memory stream. */
static void
check_line(const struct kvmstats_stat_info *si, const uint64_t *v, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(ks_hmp_print_stat(f, si, v), 0);
	fclose(f);
	assert_string_equal(buf, want);
	free(buf);
}

static void
test_values(void **state)
{
	struct kvmstats_stat_info s;
	uint64_t v[4];

	(void)state;
	s = stat("exits", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_NONE, 10, 0, 1, 0);
	v[0] = 302;
	check_line(&s, v, "    exits (cumulative): 302\n");
	v[0] = UINT64_MAX;	/* QEMU prints with PRId64 */
	check_line(&s, v, "    exits (cumulative): -1\n");
	v[0] = (uint64_t)INT64_MAX + 1;
	check_line(&s, v, "    exits (cumulative): -9223372036854775808\n");
	s = stat("halt_poll_fail_ns", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_SECONDS, 10, -9, 1, 0);
	v[0] = 0;
	check_line(&s, v, "    halt_poll_fail_ns (cumulative, ns): 0\n");
	s = stat("guest_mode", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_BOOLEAN, 10, 0, 1, 0);
	check_line(&s, v, "    guest_mode (instant, boolean): no\n");
	v[0] = 1;
	check_line(&s, v, "    guest_mode (instant, boolean): yes\n");
	s = stat("h", KVMSTATS_TYPE_LOG_HIST, KVMSTATS_UNIT_SECONDS, 10, -9, 4, 0);
	v[0] = 0, v[1] = 3, v[2] = 17, v[3] = UINT64_MAX;
	check_line(&s, v, "    h (log2-histogram, ns): [1]=0 [2]=3 [3]=17 [4]=-1 \n");
	/* a boolean histogram is still a list */
	s = stat("b", KVMSTATS_TYPE_LINEAR_HIST, KVMSTATS_UNIT_BOOLEAN, 10, 0, 2, 1);
	check_line(&s, v, "    b (linear-histogram, boolean, bucket size=1): [1]=0 [2]=3 \n");
	assert_false(ks_hmp_is_boolean(&s));
}

static void
check_json_string(const char *in, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ks_json_write_string(f, in);
	fclose(f);
	assert_string_equal(buf, want);
	free(buf);
}

static void
test_json_escapes(void **state)
{
	(void)state;
	check_json_string("/machine/unattached/device[0]", "\"/machine/unattached/device[0]\"");
	check_json_string("a\"b\\c", "\"a\\\"b\\\\c\"");
	check_json_string("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	check_json_string("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	check_json_string("caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\"");
	check_json_string("", "\"\"");
	/* Always valid UTF-8 JSON: a byte that is not UTF-8 is U+FFFD. */
	check_json_string("a\xff" "b\xc3", "\"a\\ufffdb\\ufffd\"");
	check_json_string("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	/* C1 and bidirectional controls: legal JSON, but escaped for terminals. */
	check_json_string("\xc2\x9b\xe2\x80\xae", "\"\\u009b\\u202e\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_si_prefixes),
		cmocka_unit_test(test_iec_prefixes),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_cycles_boolean_none),
		cmocka_unit_test(test_heads),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_json_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
