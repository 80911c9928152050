/* SPDX-License-Identifier: MIT */
/*
 * test_statsfd.c - the stats file parser against good and bad files.
 *
 * Good files: the real x86 tables and other layouts the ABI allows (blocks
 * in any order with gaps, linear histograms, other units and name sizes,
 * descriptors of unknown kinds).  Bad files: one table, each entry one
 * fault, each refused with its errno and a message that names it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ks_abi.h"
#include "kvm_x86_tables.h"
#include "statsfd.h"
#include "statsfd_image.h"

#define WHAT		"VM kvm-12 stats fd 5"

#define CUM		(KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define INST		(KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define NS_CUM		(KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10)
#define NS_LOG		(KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10)

/* Header field offsets, for patching built images. */
#define H_FLAGS		0
#define H_NAME_SIZE	4
#define H_NUM_DESC	8
#define H_ID_OFF	12
#define H_DESC_OFF	16
#define H_DATA_OFF	20

/* A small valid file: header 0-24, id 24-72, descriptors 72-328, data 328-416. */
#define SMALL_NR	4
static const struct ks_image_desc small_desc[SMALL_NR] = {
	{ .name = "exits", .flags = CUM, .size = 1, .offset = 0 },
	{ .name = "pages", .flags = INST, .size = 1, .offset = 8 },
	{ .name = "wait_ns", .flags = NS_CUM, .exponent = -9, .size = 1, .offset = 16 },
	{ .name = "wait_hist", .flags = NS_LOG, .exponent = -9, .size = 8, .offset = 24 },
};

/* ---- helpers ------------------------------------------------------------- */

/* An unsealed memfd holding @len bytes of @buf (tests may shrink it later). */
static int
buf_fd(const uint8_t *buf, size_t len)
{
	int fd = memfd_create("test-stats", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len > 0)
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
	return fd;
}

static int
spec_fd(const struct ks_image_spec *spec)
{
	struct kvmstats_error err;
	int fd = ks_image_memfd(spec, "test-stats", &err);

	if (fd < 0)
		fail_msg("ks_image_memfd: %s", err.msg);
	return fd;
}

static void
put_u32(uint8_t *buf, size_t off, uint32_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}

static int
parse_spec(const struct ks_image_spec *spec, struct ks_statsfd_schema *s,
	   struct kvmstats_error *err)
{
	int fd = spec_fd(spec), rc;

	rc = ks_statsfd_parse(fd, WHAT, s, err);
	close(fd);
	return rc;
}

/* Parse a file that must be good; on failure print why. */
static void
parse_ok(const struct ks_image_spec *spec, struct ks_statsfd_schema *s)
{
	struct kvmstats_error err;

	if (parse_spec(spec, s, &err) != 0)
		fail_msg("expected a good file: %s", err.msg);
	assert_int_equal(err.code, 0);
}

static unsigned
kvm_type(uint32_t flags)
{
	return (flags & KVM_STATS_TYPE_MASK) >> KVM_STATS_TYPE_SHIFT;
}

static unsigned
kvm_unit(uint32_t flags)
{
	return (flags & KVM_STATS_UNIT_MASK) >> KVM_STATS_UNIT_SHIFT;
}

/* Every decoded descriptor equals the table's entry, in the same order. */
static void
assert_matches_table(const struct ks_statsfd_schema *s, const struct ks_image_desc *t,
		     uint32_t n)
{
	uint32_t i;

	assert_int_equal(s->nr_desc, n);
	assert_int_equal(s->nr_skipped, 0);
	for (i = 0; i < n; i++) {
		assert_string_equal(s->desc[i].name, t[i].name);
		assert_int_equal(s->desc[i].type, kvm_type(t[i].flags));
		assert_int_equal(s->desc[i].unit, kvm_unit(t[i].flags));
		assert_int_equal(s->desc[i].base,
				 (t[i].flags & KVM_STATS_BASE_MASK) ? 2 : 10);
		assert_int_equal(s->desc[i].exponent, t[i].exponent);
		assert_int_equal(s->desc[i].size, t[i].size);
		assert_int_equal(s->desc[i].offset, t[i].offset);
		assert_int_equal(s->desc[i].bucket_size, t[i].bucket_size);
	}
}

/* ---- valid files ----------------------------------------------------------- */

static void
test_x86_vm_table(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-4242", .nr_desc = KS_X86_VM_NR_DESC, .desc = ks_x86_vm_desc,
	};
	struct ks_statsfd_schema s;

	(void)state;
	parse_ok(&spec, &s);
	assert_string_equal(s.id, "kvm-4242");
	assert_int_equal(s.name_size, 48);
	assert_int_equal(s.data_offset, 1032);
	assert_int_equal(s.data_size, 120);
	assert_matches_table(&s, ks_x86_vm_desc, KS_X86_VM_NR_DESC);
	/* Kernel order, not offset order: the last two are 112 then 104. */
	assert_int_equal(s.desc[13].offset, 112);
	assert_int_equal(s.desc[14].offset, 104);
	ks_statsfd_schema_clear(&s);
}

static void
test_x86_vcpu_table(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-4242/vcpu-3", .nr_desc = KS_X86_VCPU_NR_DESC,
		.desc = ks_x86_vcpu_desc,
	};
	struct ks_statsfd_schema s;
	uint32_t i, sum = 0;

	(void)state;
	parse_ok(&spec, &s);
	assert_string_equal(s.id, "kvm-4242/vcpu-3");
	assert_int_equal(s.name_size, 48);
	assert_int_equal(s.data_offset, 2952);
	assert_int_equal(s.data_size, 1104);
	assert_matches_table(&s, ks_x86_vcpu_desc, KS_X86_VCPU_NR_DESC);
	for (i = 0; i < s.nr_desc; i++)
		sum += s.desc[i].size;
	assert_int_equal(sum, 138);
	ks_statsfd_schema_clear(&s);
}

/* The builder lays the x86 files out exactly as the kernel does. */
static void
test_x86_raw_header(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-1", .nr_desc = KS_X86_VCPU_NR_DESC, .desc = ks_x86_vcpu_desc,
	};
	struct kvm_stats_header h;
	int fd = spec_fd(&spec);

	(void)state;
	assert_int_equal(pread(fd, &h, sizeof(h), 0), sizeof(h));
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.name_size, 48);
	assert_int_equal(h.num_desc, 45);
	assert_int_equal(h.id_offset, 24);
	assert_int_equal(h.desc_offset, 72);
	assert_int_equal(h.data_offset, 2952);
	assert_int_equal(lseek(fd, 0, SEEK_END), 2952 + 1104);
	close(fd);
}

static void
check_small(const struct ks_statsfd_schema *s, uint64_t data_offset)
{
	assert_string_equal(s->id, "kvm-7");
	assert_int_equal(s->data_offset, data_offset);
	assert_int_equal(s->data_size, 88);
	assert_matches_table(s, small_desc, SMALL_NR);
}

static void
test_data_before_descriptors(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-7", .nr_desc = SMALL_NR, .desc = small_desc,
		.data_offset = 24, .id_offset = 1024, .desc_offset = 2048,
	};
	struct ks_statsfd_schema s;

	(void)state;
	parse_ok(&spec, &s);
	check_small(&s, 24);
	ks_statsfd_schema_clear(&s);
}

static void
test_id_after_data_with_gaps(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-7", .nr_desc = SMALL_NR, .desc = small_desc,
		.desc_offset = 64, .data_offset = 512, .id_offset = 4096,
		.file_size = 8192,	/* trailing slack after the last block */
	};
	struct ks_statsfd_schema s;

	(void)state;
	parse_ok(&spec, &s);
	check_small(&s, 512);
	ks_statsfd_schema_clear(&s);
}

/* Linear histograms, bytes in powers of 2, cycles, a boolean histogram. */
static void
test_other_kinds(void **state)
{
	static const struct ks_image_desc d[] = {
		{ .name = "lat_us", .flags = KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_SECONDS,
		  .exponent = -6, .size = 10, .offset = 0, .bucket_size = 50 },
		{ .name = "mem_mib", .flags = KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BYTES |
		  KVM_STATS_BASE_POW2, .exponent = 20, .size = 1, .offset = 80 },
		{ .name = "cycles", .flags = KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_CYCLES,
		  .size = 1, .offset = 88 },
		{ .name = "flag_hist", .flags = KVM_STATS_TYPE_LINEAR_HIST |
		  KVM_STATS_UNIT_BOOLEAN, .size = 2, .offset = 96, .bucket_size = 1 },
		{ .name = "max_bytes", .flags = KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_BYTES |
		  KVM_STATS_BASE_POW2, .size = 1, .offset = 112 },
	};
	struct ks_image_spec spec = { .id = "kvm-1", .nr_desc = 5, .desc = d };
	struct ks_statsfd_schema s;

	(void)state;
	parse_ok(&spec, &s);
	assert_matches_table(&s, d, 5);
	assert_int_equal(s.desc[0].type, KS_TYPE_LINEAR_HIST);
	assert_int_equal(s.desc[0].bucket_size, 50);
	assert_int_equal(s.desc[1].unit, KS_UNIT_BYTES);
	assert_int_equal(s.desc[1].base, KS_BASE_POW2);
	assert_int_equal(s.desc[1].exponent, 20);
	assert_int_equal(s.desc[2].unit, KS_UNIT_CYCLES);
	assert_int_equal(s.desc[4].type, KS_TYPE_PEAK);
	assert_int_equal(s.data_size, 120);
	ks_statsfd_schema_clear(&s);
}

static void
test_name_size_8(void **state)
{
	static const struct ks_image_desc d[] = {
		{ .name = "abcdefg", .flags = CUM, .size = 1, .offset = 8 },
		{ .name = "x", .flags = INST, .size = 1, .offset = 0 },
	};
	struct ks_image_spec spec = { .id = "kvm-123", .name_size = 8, .nr_desc = 2, .desc = d };
	struct ks_statsfd_schema s;

	(void)state;
	parse_ok(&spec, &s);
	assert_int_equal(s.name_size, 8);
	assert_string_equal(s.id, "kvm-123");
	/* 24 header + 8 id + 2 * (16 + 8) descriptors */
	assert_int_equal(s.data_offset, 80);
	assert_int_equal(s.data_size, 16);
	assert_matches_table(&s, d, 2);
	ks_statsfd_schema_clear(&s);
}

static void
test_name_size_200(void **state)
{
	char long_name[200], long_id[200];
	struct ks_image_desc d[2] = {
		{ .name = long_name, .flags = CUM, .size = 1, .offset = 0 },
		{ .name = "short", .flags = INST, .size = 1, .offset = 8 },
	};
	struct ks_image_spec spec = { .id = long_id, .name_size = 200, .nr_desc = 2, .desc = d };
	struct ks_statsfd_schema s;

	(void)state;
	memset(long_name, 'n', 199);
	long_name[199] = '\0';
	memcpy(long_id, "kvm-", 4);
	memset(long_id + 4, '9', 195);
	long_id[199] = '\0';
	parse_ok(&spec, &s);
	assert_int_equal(s.name_size, 200);
	assert_string_equal(s.id, long_id);
	assert_int_equal(strlen(s.desc[0].name), 199);
	assert_matches_table(&s, d, 2);
	ks_statsfd_schema_clear(&s);
}

/* Unknown kinds are skipped with their raw flags, and do not shape the data block. */
static void
test_unknown_skipped(void **state)
{
	static const struct ks_image_desc d[] = {
		{ .name = "exits", .flags = CUM, .size = 1, .offset = 0 },
		{ .name = "future_type", .flags = 0x5, .size = 1, .offset = 1u << 30 },
		{ .name = "future_unit", .flags = 0x50, .size = 0, .offset = 3 },
		{ .name = "pages", .flags = INST, .size = 1, .offset = 8 },
		{ .name = "future_base", .flags = 0x200, .exponent = -4, .size = 1, .offset = 16 },
		{ .name = "future_bit", .flags = 0x10000 | CUM, .size = 1, .offset = 0 },
	};
	struct ks_image_spec spec = {
		.id = "kvm-1", .nr_desc = 6, .desc = d, .data_size = 24,
	};
	struct ks_statsfd_schema s;

	(void)state;
	parse_ok(&spec, &s);
	assert_int_equal(s.nr_desc, 2);
	assert_string_equal(s.desc[0].name, "exits");
	assert_string_equal(s.desc[1].name, "pages");
	assert_int_equal(s.desc[1].offset, 8);
	assert_int_equal(s.data_size, 16);
	assert_int_equal(s.nr_skipped, 4);
	assert_string_equal(s.skipped[0].name, "future_type");
	assert_int_equal(s.skipped[0].flags, 0x5);
	assert_string_equal(s.skipped[1].name, "future_unit");
	assert_int_equal(s.skipped[1].flags, 0x50);
	assert_string_equal(s.skipped[2].name, "future_base");
	assert_int_equal(s.skipped[2].flags, 0x200);
	assert_string_equal(s.skipped[3].name, "future_bit");
	assert_int_equal(s.skipped[3].flags, 0x10000 | CUM);
	ks_statsfd_schema_clear(&s);
}

static void
test_same_layout(void **state)
{
	struct ks_image_spec a = {
		.id = "kvm-1/vcpu-0", .nr_desc = KS_X86_VCPU_NR_DESC, .desc = ks_x86_vcpu_desc,
	};
	struct ks_image_spec b = a, vm = {
		.id = "kvm-1", .nr_desc = KS_X86_VM_NR_DESC, .desc = ks_x86_vm_desc,
	};
	struct ks_image_desc changed[SMALL_NR];
	struct ks_image_spec small = { .id = "kvm-1", .nr_desc = SMALL_NR, .desc = small_desc };
	struct ks_image_spec small2 = small;
	struct ks_statsfd_schema sa, sb, svm, s1, s2;

	(void)state;
	b.id = "kvm-1/vcpu-1";
	memcpy(changed, small_desc, sizeof(changed));
	changed[2].exponent = -6;
	small2.desc = changed;
	parse_ok(&a, &sa);
	parse_ok(&b, &sb);
	parse_ok(&vm, &svm);
	parse_ok(&small, &s1);
	parse_ok(&small2, &s2);
	assert_true(ks_statsfd_same_layout(&sa, &sb));
	assert_false(ks_statsfd_same_layout(&sa, &svm));
	assert_false(ks_statsfd_same_layout(&s1, &s2));
	ks_statsfd_schema_clear(&sa);
	ks_statsfd_schema_clear(&sb);
	ks_statsfd_schema_clear(&svm);
	ks_statsfd_schema_clear(&s1);
	ks_statsfd_schema_clear(&s2);
	/* Clearing twice is harmless. */
	ks_statsfd_schema_clear(&s2);
	assert_null(s2.desc);
}

/* ---- malformed files -------------------------------------------------------- */

struct bad_file {
	struct ks_image_spec spec;
	struct ks_image_desc d[SMALL_NR];
	uint8_t *buf;
	size_t len;
};

struct bad_case {
	const char *label;
	void (*make)(struct bad_file *f);	/* before the build: spec and descriptors */
	void (*patch)(struct bad_file *f);	/* after the build: the bytes */
	int err;
	const char *msg;
};

static char not_terminated[49];

static void trunc_header(struct bad_file *f) { f->len = 20; }
static void empty_file(struct bad_file *f) { f->len = 0; }
static void hdr_flags(struct bad_file *f) { f->spec.hdr_flags = 1; }
static void num_desc_0(struct bad_file *f) { put_u32(f->buf, H_NUM_DESC, 0); }
static void num_desc_huge(struct bad_file *f) { put_u32(f->buf, H_NUM_DESC, 1000000); }
static void num_desc_over(struct bad_file *f) { put_u32(f->buf, H_NUM_DESC, KS_STATSFD_MAX_DESC + 1); }
static void name_size_0(struct bad_file *f) { put_u32(f->buf, H_NAME_SIZE, 0); }
static void name_size_huge(struct bad_file *f) { put_u32(f->buf, H_NAME_SIZE, 1u << 20); }
static void id_unaligned(struct bad_file *f) { f->spec.id_offset = 28; }
static void desc_unaligned(struct bad_file *f) { put_u32(f->buf, H_DESC_OFF, 76); }
static void data_unaligned(struct bad_file *f) { put_u32(f->buf, H_DATA_OFF, 332); }
static void id_no_nul(struct bad_file *f) { f->spec.id = not_terminated; }
static void id_empty(struct bad_file *f) { f->spec.id = NULL; }
static void id_not_kvm(struct bad_file *f) { f->spec.id = "qemu-12"; }
static void id_ctrl(struct bad_file *f) { f->spec.id = "kvm-1\n"; }
/* Patched, not built: an id written at 16 would overwrite the header itself. */
static void id_over_header(struct bad_file *f) { put_u32(f->buf, H_ID_OFF, 16); }
static void desc_over_id(struct bad_file *f) { f->spec.desc_offset = 64; }
static void desc_over_header(struct bad_file *f) { put_u32(f->buf, H_DESC_OFF, 0); }
static void data_over_desc(struct bad_file *f) { f->spec.data_offset = 136; }
static void data_over_id(struct bad_file *f) { put_u32(f->buf, H_DATA_OFF, 32); }
static void data_over_header(struct bad_file *f) { put_u32(f->buf, H_DATA_OFF, 0); }
static void id_past_end(struct bad_file *f) { put_u32(f->buf, H_ID_OFF, 4096); }
static void desc_past_end(struct bad_file *f) { f->len = 200; }
static void data_past_end(struct bad_file *f) { f->len = 400; }
static void val_unaligned(struct bad_file *f) { f->d[1].offset = 12; }
static void size_0(struct bad_file *f) { f->d[0].size = 0; }
static void scalar_size_2(struct bad_file *f) { f->d[1].size = 2; }
static void log_bucket(struct bad_file *f) { f->d[3].bucket_size = 4; }
static void cum_bucket(struct bad_file *f) { f->d[0].bucket_size = 1; }
static void lin_bucket_0(struct bad_file *f)
{
	f->d[3].flags = KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_NONE;
	f->d[3].exponent = 0;
}
static void sec_exp_pos(struct bad_file *f) { f->d[2].exponent = 3; }
static void none_exp_neg(struct bad_file *f) { f->d[0].exponent = -1; }
static void bytes_exp_neg(struct bad_file *f)
{
	f->d[1].flags = KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BYTES | KVM_STATS_BASE_POW2;
	f->d[1].exponent = -3;
}
static void cycles_exp_neg(struct bad_file *f)
{
	f->d[0].flags = KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_CYCLES;
	f->d[0].exponent = -2;
}
static void bool_exp(struct bad_file *f)
{
	f->d[1].flags = KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN;
	f->d[1].exponent = 1;
}
static void bool_log_hist(struct bad_file *f)
{
	f->d[3].flags = KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_BOOLEAN;
	f->d[3].exponent = 0;
}
static void bool_lin_hist_3(struct bad_file *f)
{
	f->d[3].flags = KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_BOOLEAN;
	f->d[3].exponent = 0;
	f->d[3].size = 3;
	f->d[3].bucket_size = 1;
}
static void name_no_nul(struct bad_file *f) { f->d[0].name = not_terminated; }
static void name_empty(struct bad_file *f) { f->d[2].name = ""; }
static void name_ctrl(struct bad_file *f) { f->d[2].name = "bad\tname"; }
static void name_space(struct bad_file *f) { f->d[1].name = "two words"; }
static void vals_same(struct bad_file *f) { f->d[3].offset = 8; }
static void vals_hist_into(struct bad_file *f) { f->d[2].offset = 64; }
static void dup_names(struct bad_file *f) { f->d[2].name = "exits"; }
static void dup_skipped(struct bad_file *f)
{
	f->d[2].name = "pages";
	f->d[2].flags = 0x7;	/* unknown type: skipped, but still a name */
}
static void data_limit(struct bad_file *f)
{
	f->d[1].offset = KS_STATSFD_MAX_DATA;
	f->spec.data_size = 88;	/* keep the built file small */
}
static void data_far(struct bad_file *f)
{
	f->d[1].offset = 0xfffffff8u;
	f->d[1].size = 1;
	f->spec.data_size = 88;
}

static const struct bad_case bad_cases[] = {
	{ "truncated header", NULL, trunc_header, -EIO, "short read of the header: 20 of 24" },
	{ "empty file", NULL, empty_file, -EIO, "short read of the header: 0 of 24" },
	{ "header flags", hdr_flags, NULL, -EBADMSG, "header flags are 0x1" },
	{ "num_desc 0", NULL, num_desc_0, -EBADMSG, "num_desc is 0: no stats defined" },
	{ "huge num_desc", NULL, num_desc_huge, -E2BIG, "num_desc 1000000 is over the limit" },
	{ "num_desc over", NULL, num_desc_over, -E2BIG, "num_desc 4097 is over the limit of 4096" },
	{ "name_size 0", NULL, name_size_0, -EBADMSG, "name_size is 0" },
	{ "huge name_size", NULL, name_size_huge, -E2BIG, "name_size 1048576 is over the limit" },
	{ "id offset unaligned", id_unaligned, NULL, -EBADMSG, "multiples of 8: id_offset 28" },
	{ "desc offset unaligned", NULL, desc_unaligned, -EBADMSG, "desc_offset 76" },
	{ "data offset unaligned", NULL, data_unaligned, -EBADMSG, "data_offset 332" },
	{ "id not NUL-terminated", id_no_nul, NULL, -EBADMSG,
	  "id string is not NUL-terminated within name_size 48" },
	{ "id empty", id_empty, NULL, -EBADMSG, "id string is empty" },
	{ "id not kvm", id_not_kvm, NULL, -EBADMSG, "\"qemu-12\" does not start with \"kvm\"" },
	{ "id control char", id_ctrl, NULL, -EBADMSG, "id string has non-printable byte 0x0a at 5" },
	{ "id over header", NULL, id_over_header, -EBADMSG,
	  "id string [16, 64) overlaps the header [0, 24)" },
	{ "desc over id", desc_over_id, NULL, -EBADMSG,
	  "descriptor block [64, 320) overlaps the id string [24, 72)" },
	{ "desc over header", NULL, desc_over_header, -EBADMSG,
	  "descriptor block [0, 256) overlaps the header" },
	{ "data over desc", data_over_desc, NULL, -EBADMSG,
	  "data block [136, 224) overlaps the descriptor block [72, 328)" },
	{ "data over id", NULL, data_over_id, -EBADMSG,
	  "data block [32, 120) overlaps the id string" },
	{ "data over header", NULL, data_over_header, -EBADMSG,
	  "data block [0, 88) overlaps the header" },
	{ "id past end", NULL, id_past_end, -EIO,
	  "id string [4096, 4144) extends past the end of the file (416 bytes)" },
	{ "desc past end", NULL, desc_past_end, -EIO,
	  "descriptor block [72, 328) extends past the end of the file (200 bytes)" },
	{ "data past end", NULL, data_past_end, -EIO,
	  "data block [328, 416) extends past the end of the file (400 bytes)" },
	{ "value offset unaligned", val_unaligned, NULL, -EBADMSG,
	  "descriptor 1 (\"pages\"): value offset 12 is not a multiple of 8" },
	{ "size 0", size_0, NULL, -EBADMSG, "descriptor 0 (\"exits\"): size is 0" },
	{ "scalar size 2", scalar_size_2, NULL, -EBADMSG,
	  "descriptor 1 (\"pages\"): size is 2, but instant stats have one value" },
	{ "bucket_size on log hist", log_bucket, NULL, -EBADMSG,
	  "descriptor 3 (\"wait_hist\"): bucket_size is 4 on a log histogram" },
	{ "bucket_size on cumulative", cum_bucket, NULL, -EBADMSG,
	  "descriptor 0 (\"exits\"): bucket_size is 1 on a cumulative" },
	{ "bucket_size 0 on linear hist", lin_bucket_0, NULL, -EBADMSG,
	  "descriptor 3 (\"wait_hist\"): bucket_size is 0 on a linear histogram" },
	{ "seconds exponent positive", sec_exp_pos, NULL, -EBADMSG,
	  "descriptor 2 (\"wait_ns\"): exponent 3 is positive" },
	{ "none exponent negative", none_exp_neg, NULL, -EBADMSG,
	  "descriptor 0 (\"exits\"): exponent -1 is negative" },
	{ "bytes exponent negative", bytes_exp_neg, NULL, -EBADMSG,
	  "descriptor 1 (\"pages\"): exponent -3 is negative; this unit is scaled up only (unit bytes)" },
	{ "cycles exponent negative", cycles_exp_neg, NULL, -EBADMSG,
	  "exponent -2 is negative; this unit is scaled up only (unit cycles)" },
	{ "boolean exponent", bool_exp, NULL, -EBADMSG,
	  "descriptor 1 (\"pages\"): exponent 1 is not 0 for a boolean" },
	{ "boolean log hist", bool_log_hist, NULL, -EBADMSG, "a boolean cannot be a log histogram" },
	{ "boolean linear hist 3", bool_lin_hist_3, NULL, -EBADMSG,
	  "a boolean linear histogram has 3 buckets, not 2" },
	{ "name not NUL-terminated", name_no_nul, NULL, -EBADMSG,
	  "descriptor 0: name is not NUL-terminated within name_size 48" },
	{ "empty name", name_empty, NULL, -EBADMSG, "descriptor 2: name is empty" },
	{ "name control char", name_ctrl, NULL, -EBADMSG,
	  "descriptor 2: name has non-printable byte 0x09 at 3" },
	{ "name with space", name_space, NULL, -EBADMSG,
	  "descriptor 1: name has non-printable byte 0x20 at 3" },
	{ "values overlap", vals_same, NULL, -EBADMSG,
	  "descriptor 1 (\"pages\") values [8, 16) overlap descriptor 3 (\"wait_hist\") values [8, 72)" },
	{ "hist overlaps next", vals_hist_into, NULL, -EBADMSG,
	  "descriptor 3 (\"wait_hist\") values [24, 88) overlap descriptor 2 (\"wait_ns\") values [64, 72)" },
	{ "duplicate names", dup_names, NULL, -EBADMSG,
	  "descriptors 0 and 2 have the same name \"exits\"" },
	{ "duplicate of skipped", dup_skipped, NULL, -EBADMSG,
	  "descriptors 1 and 2 have the same name \"pages\"" },
	{ "data over limit", data_limit, NULL, -E2BIG,
	  "descriptor 1 (\"pages\"): values end at byte 1048584 of the data block, over the limit of 1048576" },
	{ "data far away", data_far, NULL, -E2BIG, "values end at byte 4294967296" },
};

static void
build_bad(const struct bad_case *c, struct bad_file *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->d, small_desc, sizeof(f->d));
	f->spec = (struct ks_image_spec){ .id = "kvm-12", .nr_desc = SMALL_NR, .desc = f->d };
	if (c->make != NULL)
		c->make(f);
	assert_int_equal(ks_image_build(&f->spec, &f->buf, &f->len, NULL), 0);
	if (c->patch != NULL)
		c->patch(f);
}

static void
run_bad_case(const struct bad_case *c)
{
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	struct bad_file f;
	int fd, rc;

	build_bad(c, &f);
	fd = buf_fd(f.buf, f.len);
	memset(&s, 0xa5, sizeof(s));	/* parse must reset it even on failure */
	rc = ks_statsfd_parse(fd, WHAT, &s, &err);
	close(fd);
	free(f.buf);
	if (rc != c->err || err.code != rc || strstr(err.msg, c->msg) == NULL ||
	    strncmp(err.msg, WHAT ": ", strlen(WHAT) + 2) != 0)
		fail_msg("case \"%s\": got %d \"%s\", expected %d with \"%s\"",
			 c->label, rc, rc ? err.msg : "", c->err, c->msg);
	assert_null(s.desc);
	assert_null(s.skipped);
	assert_null(s.id);
	assert_int_equal(s.nr_desc, 0);
}

static void
test_malformed_table(void **state)
{
	size_t i;

	(void)state;
	memset(not_terminated, 'k', 48);
	memcpy(not_terminated, "kvm", 3);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		run_bad_case(&bad_cases[i]);
}

/* Every mutated good file either fails to parse, or parses unchanged. */
static void
test_base_file_is_good(void **state)
{
	static const struct bad_case none = { "none", NULL, NULL, 0, "" };
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	struct bad_file f;
	int fd;

	(void)state;
	build_bad(&none, &f);
	fd = buf_fd(f.buf, f.len);
	free(f.buf);
	if (ks_statsfd_parse(fd, WHAT, &s, &err) != 0)
		fail_msg("the base of the malformed cases must be good: %s", err.msg);
	close(fd);
	assert_string_equal(s.id, "kvm-12");
	assert_matches_table(&s, small_desc, SMALL_NR);
	ks_statsfd_schema_clear(&s);
}

static void
test_not_a_file(void **state)
{
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(ks_statsfd_parse(p[0], WHAT, &s, &err), -EIO);
	assert_non_null(strstr(err.msg, WHAT ": reading the header"));
	close(p[0]);
	close(p[1]);
	assert_int_equal(ks_statsfd_parse(-1, WHAT, &s, &err), -EIO);
}

/* Random corruption: never a crash, and an error always comes with a message. */
static void
test_corruption_never_crashes(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-1/vcpu-0", .nr_desc = KS_X86_VCPU_NR_DESC, .desc = ks_x86_vcpu_desc,
	};
	unsigned iters = getenv("KVMSTATS_UNDER_VALGRIND") ? 300 : 3000, i, j, good = 0;
	uint64_t x = 0x1234567;
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	uint8_t *base, *buf;
	size_t len, cut;
	int fd, rc;

	(void)state;
	assert_int_equal(ks_image_build(&spec, &base, &len, NULL), 0);
	buf = malloc(len);
	assert_non_null(buf);
	for (i = 0; i < iters; i++) {
		memcpy(buf, base, len);
		/* Flip a few bytes, mostly in the header and descriptors. */
		for (j = 0; j < 1 + i % 4; j++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			buf[(x >> 8) % (j == 0 && i % 2 ? 24 : 2952)] ^= (uint8_t)(1u << (x % 8));
		}
		cut = i % 16 == 0 ? (x >> 20) % len : len;
		fd = buf_fd(buf, cut);
		rc = ks_statsfd_parse(fd, WHAT, &s, &err);
		close(fd);
		if (rc == 0) {
			good++;
			for (j = 0; j < s.nr_desc; j++)
				assert_true(s.desc[j].offset + 8ull * s.desc[j].size <= s.data_size);
			assert_true(s.data_size <= KS_STATSFD_MAX_DATA);
			ks_statsfd_schema_clear(&s);
		} else {
			assert_int_equal(err.code, rc);
			assert_true(rc == -EIO || rc == -EBADMSG || rc == -E2BIG);
			assert_int_equal(strncmp(err.msg, WHAT ": ", strlen(WHAT) + 2), 0);
			assert_null(s.desc);
		}
	}
	/* Some flips hit only data or name padding: both outcomes must occur. */
	assert_true(good > 0 && good < iters);
	free(buf);
	free(base);
}

/* ---- reading data ------------------------------------------------------------ */

static void
test_read_data(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-9", .nr_desc = KS_X86_VM_NR_DESC, .desc = ks_x86_vm_desc,
	};
	uint64_t vals[KS_X86_VM_DATA_SIZE / 8], v;
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	uint32_t i;
	int fd = spec_fd(&spec);

	(void)state;
	assert_int_equal(ks_statsfd_parse(fd, WHAT, &s, &err), 0);
	/* Each stat gets 1000 + its descriptor index, written where its offset says. */
	for (i = 0; i < KS_X86_VM_NR_DESC; i++) {
		v = 1000 + i;
		assert_int_equal(pwrite(fd, &v, 8, 1032 + ks_x86_vm_desc[i].offset), 8);
	}
	memset(vals, 0, sizeof(vals));
	assert_int_equal(ks_statsfd_read_data(fd, &s, vals), 0);
	for (i = 0; i < s.nr_desc; i++)
		assert_int_equal(vals[s.desc[i].offset / 8], 1000 + i);
	/* max_mmu_rmap_size (#13) lives at 112, after #14 at 104. */
	assert_int_equal(vals[14], 1013);
	assert_int_equal(vals[13], 1014);
	ks_statsfd_schema_clear(&s);
	close(fd);
}

static void
test_read_data_short(void **state)
{
	struct ks_image_spec spec = {
		.id = "kvm-9/vcpu-0", .nr_desc = KS_X86_VCPU_NR_DESC, .desc = ks_x86_vcpu_desc,
	};
	uint8_t *buf, dst[KS_X86_VCPU_DATA_SIZE];
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	uint32_t data_off;
	size_t len;
	int fd;

	(void)state;
	assert_int_equal(ks_image_build(&spec, &buf, &len, &data_off), 0);
	assert_int_equal(data_off, 2952);
	fd = buf_fd(buf, len);
	free(buf);
	assert_int_equal(ks_statsfd_parse(fd, WHAT, &s, &err), 0);
	assert_int_equal(ks_statsfd_read_data(fd, &s, dst), 0);
	/* The file shrinks under the reader: the next sample is a short read. */
	assert_int_equal(ftruncate(fd, data_off + 100), 0);
	assert_int_equal(ks_statsfd_read_data(fd, &s, dst), -EIO);
	/* And the shrunken file no longer parses. */
	ks_statsfd_schema_clear(&s);
	assert_int_equal(ks_statsfd_parse(fd, WHAT, &s, &err), -EIO);
	assert_non_null(strstr(err.msg, "data block [2952, 4056) extends past the end"));
	close(fd);
}

static void
test_read_data_bad_fd(void **state)
{
	struct ks_statsfd_schema s = { .data_offset = 0, .data_size = 8 };
	uint64_t v;

	(void)state;
	assert_int_equal(ks_statsfd_read_data(-1, &s, &v), -EBADF);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x86_vm_table),
		cmocka_unit_test(test_x86_vcpu_table),
		cmocka_unit_test(test_x86_raw_header),
		cmocka_unit_test(test_data_before_descriptors),
		cmocka_unit_test(test_id_after_data_with_gaps),
		cmocka_unit_test(test_other_kinds),
		cmocka_unit_test(test_name_size_8),
		cmocka_unit_test(test_name_size_200),
		cmocka_unit_test(test_unknown_skipped),
		cmocka_unit_test(test_same_layout),
		cmocka_unit_test(test_base_file_is_good),
		cmocka_unit_test(test_malformed_table),
		cmocka_unit_test(test_not_a_file),
		cmocka_unit_test(test_corruption_never_crashes),
		cmocka_unit_test(test_read_data),
		cmocka_unit_test(test_read_data_short),
		cmocka_unit_test(test_read_data_bad_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
