/* SPDX-License-Identifier: MIT */
/*
 * test_exporter.c - kvmstats-exporter's rules and its exposition.
 *
 * The pure parts first (names, exact values, canonical "le", bucket edges
 * against the kernel's own placement rule, Accept negotiation, family
 * conflicts), then whole scrapes of VMs published through the embedded
 * API from stats files whose every value the test chose: sums over
 * vCPUs, maxima, booleans, per-vCPU labels, filters, OpenMetrics, and
 * segments that try to break the exposition of others.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <linux/kvm.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "exporter_log.h"
#include "exposition.h"
#include "families.h"
#include "kvmstats/publisher.h"
#include "kvmstats/reader.h"
#include "metric_map.h"
#include "negotiate.h"
#include "seg_check.h"
#include "server.h"
#include "shm_dir.h"
#include "statsfd_image.h"

#define WAIT_MS	10000

static char shm_dir[256];

/* ---- the kernel's placement rules (virt/kvm/binary_stats.c, kvm_host.h) ---- */

static unsigned
fls64(uint64_t v)
{
	return v == 0 ? 0 : 64 - (unsigned)__builtin_clzll(v);
}

static uint32_t
kernel_log_bucket(uint64_t v, uint32_t size)
{
	uint32_t b = fls64(v);

	return b < size - 1 ? b : size - 1;
}

static uint32_t
kernel_linear_bucket(uint64_t v, uint32_t size, uint32_t bucket_size)
{
	uint64_t b = v / bucket_size;

	return b < size - 1 ? (uint32_t)b : size - 1;
}

/* v * 10^e read as a double from its exact decimal form. */
static double
exact(uint64_t v, int e)
{
	char s[64];

	snprintf(s, sizeof(s), "%" PRIu64 "e%d", v, e);
	return strtod(s, NULL);
}

/* "S.NNNNNNNNN" with trailing zeros cut: ns as seconds, written independently. */
static void
ns_text(char *buf, size_t len, uint64_t ns)
{
	size_t n;

	if (ns % 1000000000u == 0) {
		snprintf(buf, len, "%" PRIu64, ns / 1000000000u);
		return;
	}
	snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
	n = strlen(buf);
	while (buf[n - 1] == '0')
		buf[--n] = '\0';
}

/* ---- names ------------------------------------------------------------- */

static struct kvmstats_stat_info
stat_info(const char *name, enum kvmstats_type type, enum kvmstats_unit unit, int exponent,
	  uint32_t size)
{
	struct kvmstats_stat_info st = {
		.name = name, .provider_name = "kvm", .type = type, .unit = unit,
		.base = unit == KVMSTATS_UNIT_BYTES ? 2 : 10, .exponent = exponent, .size = size,
	};

	return st;
}

static void
check_family(const char *stat, enum kvmstats_target_kind kind, enum kvmstats_type type,
	     enum kvmstats_unit unit, const char *want, enum mm_kind want_kind)
{
	struct kvmstats_stat_info st = stat_info(stat, type, unit, unit == KVMSTATS_UNIT_SECONDS ? -9 : 0,
						 type >= KVMSTATS_TYPE_LINEAR_HIST ? 32 : 1);
	struct mm_family f;
	const char *why = mm_family_of("kvm", kind, &st, &f);

	if (why != NULL)
		fail_msg("%s: %s", stat, why);
	assert_string_equal(f.name, want);
	assert_int_equal(f.kind, want_kind);
}

static void
names_follow_prometheus_rules(void **state)
{
	struct kvmstats_stat_info st;
	struct mm_family f;

	(void)state;
	check_family("exits", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_NONE,
		     "kvm_vcpu_exits", MM_COUNTER);
	check_family("halt_wait_ns", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_CUMULATIVE,
		     KVMSTATS_UNIT_SECONDS, "kvm_vcpu_halt_wait_seconds", MM_COUNTER);
	check_family("halt_wait_hist", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_LOG_HIST,
		     KVMSTATS_UNIT_SECONDS, "kvm_vcpu_halt_wait_hist_seconds", MM_HISTOGRAM);
	check_family("pages_4k", KVMSTATS_TARGET_VM, KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_NONE,
		     "kvm_vm_pages_4k", MM_GAUGE);
	check_family("max_mmu_rmap_size", KVMSTATS_TARGET_VM, KVMSTATS_TYPE_PEAK,
		     KVMSTATS_UNIT_NONE, "kvm_vm_max_mmu_rmap_size", MM_GAUGE);
	check_family("guest_mode", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_INSTANT,
		     KVMSTATS_UNIT_BOOLEAN, "kvm_vcpu_guest_mode", MM_GAUGE);
	check_family("io_total", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_NONE,
		     "kvm_vcpu_io", MM_COUNTER);
	check_family("sym-encrypt-ops", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_CUMULATIVE,
		     KVMSTATS_UNIT_NONE, "kvm_vcpu_sym_encrypt_ops", MM_COUNTER);
	check_family("Odd.Name", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_NONE,
		     "kvm_vcpu_odd_name", MM_GAUGE);
	/* Gauges never look like parts of a histogram or a counter. */
	check_family("queue_count", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_NONE,
		     "kvm_vcpu_queue_count_value", MM_GAUGE);
	check_family("x_total", KVMSTATS_TARGET_VCPU, KVMSTATS_TYPE_PEAK, KVMSTATS_UNIT_NONE,
		     "kvm_vcpu_x_total_value", MM_GAUGE);
	st = stat_info("mem_kb", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_BYTES, 10, 1);
	assert_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	assert_string_equal(f.name, "kvm_vm_mem_bytes");
	assert_string_equal(f.unit, "bytes");
	/* What cannot be exported says why. */
	st = stat_info("flag", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_BOOLEAN, 0, 1);
	assert_non_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	st = stat_info("flag_hist", KVMSTATS_TYPE_LINEAR_HIST, KVMSTATS_UNIT_BOOLEAN, 0, 2);
	st.bucket_size = 1;
	assert_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	assert_int_equal(f.kind, MM_HISTOGRAM);
	assert_false(f.boolean);
	assert_null(f.unit);
	st = stat_info("_ns", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_SECONDS, -9, 1);
	assert_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));	/* "_ns" is kept whole */
	st = stat_info("h", KVMSTATS_TYPE_LOG_HIST, KVMSTATS_UNIT_NONE, 0, 66);
	assert_non_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	st = stat_info("l", KVMSTATS_TYPE_LINEAR_HIST, KVMSTATS_UNIT_NONE, 0, 4);
	assert_non_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));	/* bucket size 0 */
	/* Scales no float64 holds: values would be "inf" or refused by the scraper. */
	st = stat_info("tiny", KVMSTATS_TYPE_CUMULATIVE, KVMSTATS_UNIT_SECONDS, -400, 1);
	assert_non_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	st = stat_info("huge", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_BYTES, 1100, 1);
	assert_non_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	st = stat_info("h", KVMSTATS_TYPE_LOG_HIST, KVMSTATS_UNIT_SECONDS, -400, 32);
	assert_non_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	st = stat_info("big", KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_BYTES, 950, 1);
	assert_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	{
		char buf[MM_NUM_MAX];

		mm_format_value(buf, UINT64_MAX, 2, 950);	/* the largest: still finite */
		assert_true(isfinite(strtod(buf, NULL)));
	}
	{
		char longname[300];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		st = stat_info(longname, KVMSTATS_TYPE_INSTANT, KVMSTATS_UNIT_NONE, 0, 1);
		assert_non_null(mm_family_of("kvm", KVMSTATS_TARGET_VM, &st, &f));
	}
}

/* ---- numbers ------------------------------------------------------------ */

static void
check_value(uint64_t v, unsigned base, int e, const char *want)
{
	char buf[MM_NUM_MAX];

	assert_int_equal(mm_format_value(buf, v, base, e), strlen(want));
	assert_string_equal(buf, want);
}

static void
check_le(uint64_t v, unsigned base, int e, const char *want)
{
	char buf[MM_NUM_MAX];

	assert_int_equal(mm_format_le(buf, v, base, e), strlen(want));
	assert_string_equal(buf, want);
}

static void
values_are_exact(void **state)
{
	(void)state;
	check_value(0, 10, -9, "0");
	check_value(5, 10, -9, "0.000000005");
	check_value(123456789012ull, 10, -9, "123.456789012");
	check_value(1500, 10, -3, "1.5");
	check_value(2000000000, 10, -9, "2");
	check_value(7, 10, 3, "7000");
	check_value(UINT64_MAX, 10, 0, "18446744073709551615");
	check_value(UINT64_MAX, 10, -9, "18446744073.709551615");
	check_value(3, 2, 10, "3072");
	check_value(3, 2, -1, "1.5");
	check_value(1, 10, -60, "1e-60");
	/* Every value reads back exactly as the stat's raw value times its scale. */
	for (uint64_t v = 1; v < UINT64_MAX / 3; v = v * 3 + 1) {
		char buf[MM_NUM_MAX];

		mm_format_value(buf, v, 10, -9);
		assert_true(strtod(buf, NULL) == exact(v, -9));
	}
}

static void
le_is_canonical(void **state)
{
	(void)state;
	check_le(0, 10, -9, "0.0");
	check_le(1, 10, -9, "1e-09");
	check_le(3, 10, -9, "3e-09");
	check_le(1023, 10, -9, "1.023e-06");
	check_le(1048575, 10, -9, "0.001048575");
	check_le(1073741823, 10, -9, "1.073741823");
	check_le(1023, 10, 0, "1023.0");
	check_le(1, 10, 0, "1.0");
	check_le(1048575, 10, 0, "1.048575e+06");
	check_le(100000, 10, 0, "100000.0");
	check_le(1000000, 10, 0, "1e+06");
	check_le(1, 2, -1, "0.5");
	check_le(1, 10, -4, "0.0001");
	check_le(1, 10, -5, "1e-05");
}

/*
 * The edges against the kernel: a value sits in the bucket the kernel
 * puts it in exactly when it is at most that bucket's le and above the
 * le before, for values on 2^i - 1 and 2^i, where an edge of 2^i would
 * miscount.
 */
static void
log2_edges_match_the_kernel(void **state)
{
	struct kvmstats_stat_info st = stat_info("halt_wait_hist", KVMSTATS_TYPE_LOG_HIST,
						 KVMSTATS_UNIT_SECONDS, -9, 32);
	uint64_t upper;

	(void)state;
	assert_true(mm_bucket_upper(&st, 0, &upper));
	assert_int_equal(upper, 0);
	assert_true(mm_bucket_upper(&st, 30, &upper));
	assert_int_equal(upper, (1u << 30) - 1);
	assert_false(mm_bucket_upper(&st, 31, &upper));
	for (unsigned i = 0; i <= 40; i++) {
		uint64_t vals[] = { (UINT64_C(1) << i) - 1, UINT64_C(1) << i };

		for (unsigned k = 0; k < 2; k++) {
			uint64_t v = vals[k];
			uint32_t b = kernel_log_bucket(v, st.size);
			double x = exact(v, -9);
			char le[MM_NUM_MAX];

			if (mm_bucket_upper(&st, b, &upper)) {
				mm_format_le(le, upper, 10, -9);
				assert_true(x <= strtod(le, NULL));
			}
			if (b > 0) {
				assert_true(mm_bucket_upper(&st, b - 1, &upper));
				mm_format_le(le, upper, 10, -9);
				assert_true(x > strtod(le, NULL));
			}
		}
	}
	st.size = 65;	/* every 64-bit value has a bucket below +Inf but the largest */
	assert_null(mm_hist_shape_fault(&st));
	assert_true(mm_bucket_upper(&st, 63, &upper));
	assert_int_equal(upper, UINT64_MAX >> 1);
}

static void
linear_edges_match_the_kernel(void **state)
{
	struct kvmstats_stat_info st = stat_info("lin", KVMSTATS_TYPE_LINEAR_HIST,
						 KVMSTATS_UNIT_NONE, 0, 5);
	uint64_t upper;

	(void)state;
	st.bucket_size = 10;
	assert_null(mm_hist_shape_fault(&st));
	for (uint64_t v = 0; v < 80; v++) {
		uint32_t b = kernel_linear_bucket(v, st.size, st.bucket_size);

		if (mm_bucket_upper(&st, b, &upper))
			assert_true(v <= upper);
		if (b > 0) {
			assert_true(mm_bucket_upper(&st, b - 1, &upper));
			assert_true(v > upper);
		}
	}
	st.bucket_size = UINT32_MAX;
	st.size = MM_HIST_MAX_BUCKETS;
	assert_null(mm_hist_shape_fault(&st));	/* 1023 * (2^32-1) fits */
	st.size = MM_HIST_MAX_BUCKETS + 1;	/* a segment may say 65535: too many lines */
	assert_non_null(mm_hist_shape_fault(&st));
}

/* ---- negotiation ------------------------------------------------------- */

static void
accept_is_negotiated(void **state)
{
	(void)state;
	assert_int_equal(negotiate_format(NULL), EXPO_TEXT);
	assert_int_equal(negotiate_format(""), EXPO_TEXT);
	assert_int_equal(negotiate_format("application/openmetrics-text;version=1.0.0,"
					  "application/openmetrics-text;version=0.0.1;q=0.75,"
					  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
			 EXPO_OPENMETRICS);
	assert_int_equal(negotiate_format("text/plain;version=0.0.4;q=0.9, "
					  "application/openmetrics-text; q=1"), EXPO_OPENMETRICS);
	assert_int_equal(negotiate_format("text/plain;version=0.0.4,"
					  "application/openmetrics-text;q=0.5"), EXPO_TEXT);
	assert_int_equal(negotiate_format("application/openmetrics-text;q=0"), EXPO_TEXT);
	assert_int_equal(negotiate_format("application/openmetrics-text;version=2.0.0"), EXPO_TEXT);
	assert_int_equal(negotiate_format("Application/OpenMetrics-Text"), EXPO_OPENMETRICS);
	assert_int_equal(negotiate_format("application/openmetrics-text;q=1.5"), EXPO_TEXT);
	assert_int_equal(negotiate_format("application/openmetrics-text;q=abc"), EXPO_TEXT);
	assert_int_equal(negotiate_format("application/json"), EXPO_TEXT);
	assert_int_equal(negotiate_format(";;;,,,=;q=;"), EXPO_TEXT);
	assert_string_equal(negotiate_content_type(EXPO_OPENMETRICS),
			    "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

/* ---- families ------------------------------------------------------------ */

static void
families_refuse_conflicts(void **state)
{
	struct families *fs = families_new();
	struct mm_family c = { .name = "x", .kind = MM_COUNTER };
	struct mm_family h = { .name = "x", .kind = MM_HISTOGRAM };
	struct mm_family g = { .name = "y_count", .kind = MM_GAUGE };
	struct mm_family y = { .name = "y", .kind = MM_HISTOGRAM };
	struct mm_family t = { .name = "x_total", .kind = MM_GAUGE };
	int id;

	(void)state;
	assert_non_null(fs);
	id = families_add(fs, &c, "a \"help\" \\ text\nline");
	assert_true(id >= 0);
	assert_int_equal(families_add(fs, &c, "other"), id);	/* the same family */
	/* HELP escapes '\\' and newline; '"' only in OpenMetrics (the text format has no escape for it). */
	assert_string_equal(families_get(fs, (unsigned)id)->header_text,
			    "# HELP x_total a \"help\" \\\\ text\\nline\n# TYPE x_total counter\n");
	assert_string_equal(families_get(fs, (unsigned)id)->header_om,
			    "# TYPE x counter\n# HELP x a \\\"help\\\" \\\\ text\\nline\n");
	assert_int_equal(families_add(fs, &h, ""), -EEXIST);	/* another type */
	assert_int_equal(families_add(fs, &t, ""), -EEXIST);	/* x's sample x_total */
	assert_true(families_add(fs, &g, "") >= 0);
	assert_int_equal(families_add(fs, &y, ""), -EEXIST);	/* y_count is taken */
	assert_int_equal(families_count(fs), 2);
	for (unsigned i = 0; i < FAMILIES_MAX + 10; i++) {
		struct mm_family m = { .kind = MM_GAUGE };

		snprintf(m.name, sizeof(m.name), "many_%u", i);
		id = families_add(fs, &m, "");
		if (id < 0) {
			assert_int_equal(id, -ENOSPC);
			break;
		}
	}
	assert_int_equal(families_count(fs), FAMILIES_MAX);
	families_free(fs);
}

/* ---- whole scrapes -------------------------------------------------------- */

/* The stats files of a chosen VM: one VM file, two vCPU files. */
enum { W_EXITS = 0, W_WAIT_NS = 1, W_HIST = 2, W_GUEST = 34, W_PEAK = 35, W_LIN = 36,
       W_DUP_A = 41, W_DUP_B = 42, VCPU_WORDS = 43 };
#define HIST_SIZE	32
#define LIN_SIZE	5
#define LIN_BUCKET	10

static const struct ks_image_desc vcpu_desc[] = {
	{ "exits", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, W_EXITS * 8, 0 },
	{ "halt_wait_ns", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10,
	  -9, 1, W_WAIT_NS * 8, 0 },
	{ "halt_wait_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10,
	  -9, HIST_SIZE, W_HIST * 8, 0 },
	{ "guest_mode", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN | KVM_STATS_BASE_POW10,
	  0, 1, W_GUEST * 8, 0 },
	{ "max_x", KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, W_PEAK * 8, 0 },
	{ "lin_hist", KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, LIN_SIZE, W_LIN * 8, LIN_BUCKET },
	/* Two names for one metric: the second is left out. */
	{ "dup-a", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, W_DUP_A * 8, 0 },
	{ "dup_a", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, W_DUP_B * 8, 0 },
};

static const struct ks_image_desc vm_desc[] = {
	{ "remote_tlb_flush", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, 0, 0 },
	{ "max_mmu_rmap_size", KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, 8, 0 },
};

/* A VM whose vCPU stat "exits" is an instant value: a conflict with the first VM's. */
static const struct ks_image_desc rogue_desc[] = {
	{ "exits", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, 0, 0 },
	{ "io_exits", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
	  0, 1, 8, 0 },
};

struct chosen {
	uint64_t exits;
	const uint64_t *halts;		/* values the kernel would have counted */
	size_t nhalts;
	uint64_t guest, peak;
	const uint64_t *lins;
	size_t nlins;
};

static uint64_t halts0[64], lins0[] = { 0, 9, 10, 19, 20, 39, 40, 41, 1000 };
static const uint64_t halts1[] = { 3, 4, 1000, 0 };
static const uint64_t lins1[] = { 5, 50 };
static struct chosen vcpus[2];

static void
make_chosen(void)
{
	size_t n = 0;

	halts0[n++] = 0;
	for (unsigned i = 1; i <= 31; i++) {
		halts0[n++] = (UINT64_C(1) << i) - 1;
		halts0[n++] = UINT64_C(1) << i;
	}
	vcpus[0] = (struct chosen) { 5, halts0, n, 1, 7, lins0, sizeof(lins0) / sizeof(lins0[0]) };
	vcpus[1] = (struct chosen) { 7, halts1, sizeof(halts1) / sizeof(halts1[0]), 0, 11, lins1,
				     sizeof(lins1) / sizeof(lins1[0]) };
}

static int
image_fd(const char *id, const struct ks_image_desc *desc, uint32_t n, const uint64_t *words,
	 size_t nwords)
{
	struct ks_image_spec spec = { .id = id, .nr_desc = n, .desc = desc };
	struct kvmstats_error err;
	uint8_t *buf;
	size_t len;
	uint32_t data_off;
	int fd;

	assert_int_equal(ks_image_build(&spec, &buf, &len, &data_off), 0);
	free(buf);
	fd = ks_image_memfd(&spec, id, &err);
	if (fd < 0)
		fail_msg("image %s: %s", id, err.msg);
	assert_int_equal(pwrite(fd, words, nwords * 8, data_off), (ssize_t)(nwords * 8));
	return fd;
}

static int
vcpu_fd(const char *vm_id, unsigned i, const struct chosen *c)
{
	uint64_t w[VCPU_WORDS] = { 0 };
	char id[64];

	w[W_EXITS] = c->exits;
	for (size_t k = 0; k < c->nhalts; k++) {
		w[W_HIST + kernel_log_bucket(c->halts[k], HIST_SIZE)]++;
		w[W_WAIT_NS] += c->halts[k];	/* as kvm_vcpu_halt() adds them */
	}
	w[W_GUEST] = c->guest;
	w[W_PEAK] = c->peak;
	for (size_t k = 0; k < c->nlins; k++)
		w[W_LIN + kernel_linear_bucket(c->lins[k], LIN_SIZE, LIN_BUCKET)]++;
	w[W_DUP_A] = 1;
	w[W_DUP_B] = 2;
	snprintf(id, sizeof(id), "%s/vcpu-%u", vm_id, i);
	return image_fd(id, vcpu_desc, sizeof(vcpu_desc) / sizeof(vcpu_desc[0]), w, VCPU_WORDS);
}

struct scrape_fx {
	struct kvmstats_publisher *pub;
	char vm[64], rogue[64];
};

static char logbuf[16384];

static void
capture(const char *line)
{
	size_t n = strlen(logbuf);

	snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", line);
}

static void
wait_sweeping(const char *vm)
{
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;
	struct kvmstats_status st;

	for (unsigned ms = 0; ms < WAIT_MS; ms += 5) {
		if (seg == NULL && kvmstats_attach(vm, NULL, &seg, &err) < 0) {
			sleep_ms(5);
			continue;
		}
		kvmstats_status(seg, &st);
		if (st.sweep >= 2) {
			kvmstats_detach(&seg);
			return;
		}
		sleep_ms(5);
	}
	fail_msg("VM %s never swept", vm);
}

static int
scrape_setup(void **state)
{
	struct scrape_fx *f = calloc(1, sizeof(*f));
	struct kvmstats_publisher_opts o;
	struct kvmstats_error err;
	struct kvmstats_fd fds[3];
	uint64_t vmw[2] = { 42, 9 }, roguew[2] = { 3, 4 };
	struct kvmstats_vm *vm;
	int rogue_fds[2];

	assert_non_null(f);
	make_chosen();
	kvmstats_publisher_opts_init(&o);
	o.hz = 1000;
	o.dir = shm_dir;
	if (kvmstats_publisher_create(&o, &f->pub, &err) < 0)
		fail_msg("%s", err.msg);
	snprintf(f->vm, sizeof(f->vm), "chosen-%d", (int)getpid());
	fds[0] = (struct kvmstats_fd) { image_fd("kvm-77", vm_desc, 2, vmw, 2), KVMSTATS_TARGET_VM, 0, NULL };
	for (unsigned i = 0; i < 2; i++)
		fds[1 + i] = (struct kvmstats_fd) { vcpu_fd("kvm-77", i, &vcpus[i]), KVMSTATS_TARGET_VCPU,
						    i, i == 0 ? "/machine/unattached/device[0]"
							      : "/machine/peripheral/cpu \"1\"" };
	if (kvmstats_publisher_add_vm(f->pub, f->vm, fds, 3, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	for (unsigned i = 0; i < 3; i++)
		close(fds[i].fd);
	/* A second VM, later in name order, whose "exits" has another type. */
	snprintf(f->rogue, sizeof(f->rogue), "zz-rogue-%d", (int)getpid());
	rogue_fds[0] = image_fd("kvm-78", vm_desc, 2, vmw, 2);
	rogue_fds[1] = image_fd("kvm-78/vcpu-0", rogue_desc, 2, roguew, 2);
	fds[0] = (struct kvmstats_fd) { rogue_fds[0], KVMSTATS_TARGET_VM, 0, NULL };
	fds[1] = (struct kvmstats_fd) { rogue_fds[1], KVMSTATS_TARGET_VCPU, 0, NULL };
	if (kvmstats_publisher_add_vm(f->pub, f->rogue, fds, 2, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	close(rogue_fds[0]);
	close(rogue_fds[1]);
	wait_sweeping(f->vm);
	wait_sweeping(f->rogue);
	logbuf[0] = '\0';
	ex_log_redirect(capture);
	*state = f;
	return 0;
}

static int
scrape_teardown(void **state)
{
	struct scrape_fx *f = *state;

	ex_log_redirect(NULL);
	kvmstats_publisher_destroy(&f->pub);
	free(f);
	return 0;
}

static char *
scrape(const struct ex_config *cfg, enum expo_format fmt)
{
	struct ex_server s;
	char *data;
	size_t len;

	assert_int_equal(ex_server_init(&s, cfg, "/metrics"), 0);
	assert_int_equal(ex_server_scrape(&s, fmt, &data, &len), 0);
	assert_int_equal(strlen(data), len);
	ex_server_clear(&s);
	return data;
}

/* The value of the sample line that starts with @prefix (name and labels). */
static const char *
sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
		if (strncmp(l, prefix, n) == 0 && l[n] == ' ') {
			static char v[128];
			const char *e = strchr(l + n + 1, '\n');

			snprintf(v, sizeof(v), "%.*s", (int)(e - l - n - 1), l + n + 1);
			return v;
		}
		if (strchr(l, '\n') == NULL)
			break;
	}
	return NULL;
}

static void
expect(const char *text, const char *prefix, const char *value)
{
	const char *v = sample(text, prefix);

	if (v == NULL)
		fail_msg("no sample %s", prefix);
	if (strcmp(v, value) != 0)
		fail_msg("%s is %s, not %s", prefix, v, value);
}

/* Cumulative counts at every edge equal the values at or below it. */
static void
check_hist(const char *text, const char *labels, const uint64_t *const *vals,
	   const size_t *nvals, unsigned nsets)
{
	struct kvmstats_stat_info st = stat_info("halt_wait_hist", KVMSTATS_TYPE_LOG_HIST,
						 KVMSTATS_UNIT_SECONDS, -9, HIST_SIZE);
	uint64_t total = 0, sum = 0;
	char prefix[512], want[64];

	for (uint32_t b = 0; b < HIST_SIZE; b++) {
		uint64_t upper, count = 0;
		char le[MM_NUM_MAX];
		bool finite = mm_bucket_upper(&st, b, &upper);

		if (finite)
			mm_format_le(le, upper, 10, -9);
		for (unsigned s = 0; s < nsets; s++)
			for (size_t k = 0; k < nvals[s]; k++)
				if (!finite || exact(vals[s][k], -9) <= strtod(le, NULL))
					count++;
		snprintf(prefix, sizeof(prefix), "kvm_vcpu_halt_wait_hist_seconds_bucket{%s,le=\"%s\"}",
			 labels, finite ? le : "+Inf");
		snprintf(want, sizeof(want), "%" PRIu64, count);
		expect(text, prefix, want);
	}
	for (unsigned s = 0; s < nsets; s++)
		for (size_t k = 0; k < nvals[s]; k++) {
			total++;
			sum += vals[s][k];
		}
	snprintf(prefix, sizeof(prefix), "kvm_vcpu_halt_wait_hist_seconds_count{%s}", labels);
	snprintf(want, sizeof(want), "%" PRIu64, total);
	expect(text, prefix, want);
	snprintf(prefix, sizeof(prefix), "kvm_vcpu_halt_wait_hist_seconds_sum{%s}", labels);
	ns_text(want, sizeof(want), sum);
	expect(text, prefix, want);
}

static void
per_vm_sums(void **state)
{
	struct scrape_fx *f = *state;
	struct ex_config cfg = { .dir = shm_dir, .owner = KVMSTATS_OWNER_DEFAULT };
	const uint64_t *vals[] = { vcpus[0].halts, vcpus[1].halts };
	size_t nvals[] = { vcpus[0].nhalts, vcpus[1].nhalts };
	char *text = scrape(&cfg, EXPO_TEXT), l[128], p[256], want[64];
	uint64_t ns = 0;

	snprintf(l, sizeof(l), "vm=\"%s\"", f->vm);
#define AT(name) (snprintf(p, sizeof(p), "%s{%s}", name, l), p)
	expect(text, AT("kvmstats_vm_up"), "1");
	expect(text, AT("kvmstats_vm_publisher_alive"), "1");
	expect(text, AT("kvmstats_vm_vcpus"), "2");
	expect(text, AT("kvmstats_vm_generation"), "1");
	expect(text, AT("kvmstats_vm_poll_period_seconds"), "0.001");
	expect(text, AT("kvm_vm_remote_tlb_flush_total"), "42");
	expect(text, AT("kvm_vm_max_mmu_rmap_size"), "9");
	expect(text, AT("kvm_vcpu_exits_total"), "12");		/* 5 + 7 */
	expect(text, AT("kvm_vcpu_guest_mode"), "1");		/* one vCPU true */
	expect(text, AT("kvm_vcpu_max_x"), "11");		/* the larger peak */
	for (unsigned s = 0; s < 2; s++)
		for (size_t k = 0; k < nvals[s]; k++)
			ns += vals[s][k];
	ns_text(want, sizeof(want), ns);
	expect(text, AT("kvm_vcpu_halt_wait_seconds_total"), want);
	check_hist(text, l, vals, nvals, 2);
	/* Linear: le of bucket i is (i + 1) * 10 - 1; 0,9,5 | 10,19 | 20,39 | 40,41 | rest. */
	snprintf(p, sizeof(p), "kvm_vcpu_lin_hist_bucket{%s,le=\"9.0\"}", l);
	expect(text, p, "3");
	snprintf(p, sizeof(p), "kvm_vcpu_lin_hist_bucket{%s,le=\"19.0\"}", l);
	expect(text, p, "5");
	snprintf(p, sizeof(p), "kvm_vcpu_lin_hist_bucket{%s,le=\"39.0\"}", l);
	expect(text, p, "7");
	snprintf(p, sizeof(p), "kvm_vcpu_lin_hist_bucket{%s,le=\"+Inf\"}", l);
	expect(text, p, "11");
	/* No pairing for it: a _count in the text format, no _sum. */
	expect(text, AT("kvm_vcpu_lin_hist_count"), "11");
	assert_null(sample(text, AT("kvm_vcpu_lin_hist_sum")));
	/* One of the two names of one metric, and a log line for the other. */
	expect(text, AT("kvm_vcpu_dup_a"), "2");		/* dup-a, both vCPUs */
	assert_non_null(strstr(logbuf, "stat 'dup_a' not exported: its metric name is that of 'dup-a'"));
	/* The rogue VM: its "exits" is left out with a reason, the rest is there. */
	snprintf(l, sizeof(l), "vm=\"%s\"", f->rogue);
	assert_null(sample(text, AT("kvm_vcpu_exits")));
	expect(text, AT("kvm_vcpu_io_exits_total"), "4");
	assert_non_null(strstr(logbuf, "stat 'exits' not exported: its metric name is taken"));
	/* Each family once, each TYPE before its samples. */
	assert_non_null(strstr(text, "# TYPE kvm_vcpu_exits_total counter\n"));
	assert_null(strstr(strstr(text, "# TYPE kvm_vcpu_exits_total") + 1, "# TYPE kvm_vcpu_exits_total"));
	assert_non_null(strstr(text, "# HELP kvm_vcpu_exits_total kvm vcpu statistic exits "
			       "(cumulative), summed over the VM's vCPUs\n"));
	expect(text, "kvmstats_exporter_segments{state=\"live\"}", "2");
	expect(text, "kvmstats_exporter_scrapes_total", "1");
#undef AT
	free(text);
}

static void
per_vcpu_series(void **state)
{
	struct scrape_fx *f = *state;
	struct ex_config cfg = { .dir = shm_dir, .owner = KVMSTATS_OWNER_DEFAULT, .per_vcpu = true };
	char *text = scrape(&cfg, EXPO_TEXT), l0[256], l1[256], p[512];

	snprintf(l0, sizeof(l0), "vm=\"%s\",vcpu=\"0\",qom_path=\"/machine/unattached/device[0]\"", f->vm);
	/* A label's '"' escaped. */
	snprintf(l1, sizeof(l1), "vm=\"%s\",vcpu=\"1\",qom_path=\"/machine/peripheral/cpu \\\"1\\\"\"",
		 f->vm);
	snprintf(p, sizeof(p), "kvm_vcpu_exits_total{%s}", l0);
	expect(text, p, "5");
	snprintf(p, sizeof(p), "kvm_vcpu_exits_total{%s}", l1);
	expect(text, p, "7");
	snprintf(p, sizeof(p), "kvm_vcpu_guest_mode{%s}", l1);
	expect(text, p, "0");
	{
		const uint64_t *v0[] = { vcpus[0].halts }, *v1[] = { vcpus[1].halts };
		size_t n0[] = { vcpus[0].nhalts }, n1[] = { vcpus[1].nhalts };

		check_hist(text, l0, v0, n0, 1);
		check_hist(text, l1, v1, n1, 1);
	}
	/* VM stats keep the vm label alone. */
	snprintf(p, sizeof(p), "kvm_vm_remote_tlb_flush_total{vm=\"%s\"}", f->vm);
	expect(text, p, "42");
	free(text);
}

static void
openmetrics_shape(void **state)
{
	struct ex_config cfg = { .dir = shm_dir, .owner = KVMSTATS_OWNER_DEFAULT };
	char *text = scrape(&cfg, EXPO_OPENMETRICS);
	size_t n = strlen(text);

	(void)state;
	assert_true(n > 6 && strcmp(text + n - 6, "# EOF\n") == 0);
	assert_non_null(strstr(text, "# TYPE kvm_vcpu_halt_wait_seconds counter\n"
			       "# UNIT kvm_vcpu_halt_wait_seconds seconds\n"));
	assert_non_null(strstr(text, "# TYPE kvm_vcpu_halt_wait_hist_seconds histogram\n"
			       "# UNIT kvm_vcpu_halt_wait_hist_seconds seconds\n"));
	/* OpenMetrics: no _count without a _sum. */
	assert_null(strstr(text, "kvm_vcpu_lin_hist_count"));
	assert_non_null(strstr(text, "kvm_vcpu_halt_wait_hist_seconds_count"));
	assert_null(strstr(text, "# TYPE kvm_vcpu_exits_total"));
	free(text);
}

static void
filters_select_stats(void **state)
{
	struct scrape_fx *f = *state;
	regex_t inc, exc;
	struct ex_config cfg = { .dir = shm_dir, .owner = KVMSTATS_OWNER_DEFAULT,
				 .include = &inc, .exclude = &exc };
	char *text, p[256];

	assert_int_equal(regcomp(&inc, "^halt_|^exits$", REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regcomp(&exc, "hist", REG_EXTENDED | REG_NOSUB), 0);
	text = scrape(&cfg, EXPO_TEXT);
	snprintf(p, sizeof(p), "kvm_vcpu_exits_total{vm=\"%s\"}", f->vm);
	expect(text, p, "12");
	assert_non_null(strstr(text, "kvm_vcpu_halt_wait_seconds_total"));
	assert_null(strstr(text, "_bucket"));
	assert_null(strstr(text, "kvm_vcpu_guest_mode"));
	assert_null(strstr(text, "kvm_vm_"));
	assert_non_null(strstr(text, "kvmstats_vm_up"));	/* liveness is always there */
	free(text);
	regfree(&inc);
	regfree(&exc);
}

/* A file that is no segment, and one that is not even readable: skipped, said, counted. */
static void
bad_segments_skipped(void **state)
{
	struct scrape_fx *f = *state;
	struct ex_config cfg = { .dir = shm_dir, .owner = KVMSTATS_OWNER_DEFAULT };
	char path[512], p[256], *text;
	int fd;

	snprintf(path, sizeof(path), "%s/kvmstats.garbage\x1b[2J", shm_dir);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a segment at all, not even close", 36), 36);
	close(fd);
	text = scrape(&cfg, EXPO_TEXT);
	snprintf(p, sizeof(p), "kvm_vcpu_exits_total{vm=\"%s\"}", f->vm);
	expect(text, p, "12");
	expect(text, "kvmstats_exporter_segments{state=\"skipped\"}", "1");
	expect(text, "kvmstats_exporter_segment_errors_total", "1");
	assert_null(strstr(text, "garbage"));
	assert_non_null(strstr(logbuf, "kvmstats.garbage\\x1b[2J skipped: "));
	assert_null(strchr(logbuf, '\x1b'));
	free(text);
	assert_int_equal(unlink(path), 0);
}

/* A VM that ends disappears; its liveness with it. */
static void
ended_vm_disappears(void **state)
{
	struct scrape_fx *f = *state;
	struct ex_config cfg = { .dir = shm_dir, .owner = KVMSTATS_OWNER_DEFAULT };
	struct ex_server s;
	char *data, p[256];
	size_t len;

	assert_int_equal(ex_server_init(&s, &cfg, "/metrics"), 0);
	assert_int_equal(ex_server_scrape(&s, EXPO_TEXT, &data, &len), 0);
	snprintf(p, sizeof(p), "kvmstats_vm_up{vm=\"%s\"}", f->vm);
	expect(data, p, "1");
	free(data);
	kvmstats_publisher_destroy(&f->pub);	/* ends and removes both VMs */
	assert_int_equal(ex_server_scrape(&s, EXPO_TEXT, &data, &len), 0);
	assert_null(strstr(data, f->vm));
	assert_null(strstr(data, "kvm_vcpu_"));
	expect(data, "kvmstats_exporter_scrapes_total", "2");
	free(data);
	ex_server_clear(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_follow_prometheus_rules),
		cmocka_unit_test(values_are_exact),
		cmocka_unit_test(le_is_canonical),
		cmocka_unit_test(log2_edges_match_the_kernel),
		cmocka_unit_test(linear_edges_match_the_kernel),
		cmocka_unit_test(accept_is_negotiated),
		cmocka_unit_test(families_refuse_conflicts),
		cmocka_unit_test_setup_teardown(per_vm_sums, scrape_setup, scrape_teardown),
		cmocka_unit_test_setup_teardown(per_vcpu_series, scrape_setup, scrape_teardown),
		cmocka_unit_test_setup_teardown(openmetrics_shape, scrape_setup, scrape_teardown),
		cmocka_unit_test_setup_teardown(filters_select_stats, scrape_setup, scrape_teardown),
		cmocka_unit_test_setup_teardown(bad_segments_skipped, scrape_setup, scrape_teardown),
		cmocka_unit_test_setup_teardown(ended_vm_disappears, scrape_setup, scrape_teardown),
	};

	if (test_shm_dir(shm_dir, sizeof(shm_dir), "exporter") < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
