/* SPDX-License-Identifier: MIT */
/*
 * test_text.c - the printable-text rule (shm/ks_text.c) and the VM name
 * rule (shm/ks_shmdir.c), which decide what a name from a file, a segment,
 * a peer or the environment may hold, and how the rest is shown.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvmstats/reader.h"
#include "ks_shmdir.h"
#include "ks_text.h"

/* The fault of @s (NULL: printable), and where. */
static void
check_fault(const char *s, size_t len, const char *want, size_t want_at)
{
	size_t at = 99999;
	const char *got = ks_text_fault(s, len, &at);

	if (want == NULL) {
		if (got != NULL)
			fail_msg("\"%s\": %s at %zu, want printable", s, got, at);
		return;
	}
	if (got == NULL || strcmp(got, want) != 0 || at != want_at)
		fail_msg("\"%s\": got %s at %zu, want %s at %zu", s, got ? got : "printable",
			 at, want, want_at);
}

static void
test_utf8_decode(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		uint32_t cp;
	} good[] = {
		{ "A", 1, 'A' }, { "\xc2\x80", 2, 0x80 }, { "\xc3\xa9", 2, 0xe9 },
		{ "\xe2\x82\xac", 3, 0x20ac }, { "\xef\xbf\xbf", 3, 0xffff },
		{ "\xf0\x9f\x98\x80", 4, 0x1f600 }, { "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
	};
	static const char *const bad[] = {
		"\x80",			/* a continuation byte alone */
		"\xc0\xaf",		/* overlong '/' */
		"\xc1\xbf",		/* overlong */
		"\xe0\x80\xaf",		/* overlong, 3 bytes */
		"\xf0\x80\x80\xaf",	/* overlong, 4 bytes */
		"\xed\xa0\x80",		/* a UTF-16 surrogate */
		"\xf4\x90\x80\x80",	/* above U+10FFFF */
		"\xf5\x80\x80\x80",
		"\xff",
		"\xc3",			/* cut short */
		"\xe2\x82",
		"\xc3\x28",		/* not a continuation */
	};
	uint32_t cp;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(ks_utf8_decode((const unsigned char *)good[i].s,
						strlen(good[i].s), &cp), good[i].n);
		assert_int_equal(cp, good[i].cp);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ks_utf8_decode((const unsigned char *)bad[i], strlen(bad[i]), &cp) != 0)
			fail_msg("bad sequence %zu decoded", i);
	/* Length is respected: a valid sequence cut by @len is invalid. */
	assert_int_equal(ks_utf8_decode((const unsigned char *)"\xc3\xa9", 1, &cp), 0);
}

static void
test_fault(void **state)
{
	(void)state;
	check_fault("kvm-1234", 8, NULL, 0);
	check_fault("/machine/unattached/device[0]", 29, NULL, 0);
	check_fault("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, NULL, 0);
	check_fault("", 0, NULL, 0);
	check_fault("a\tb", 3, "a control character", 1);
	check_fault("\rprod-db", 8, "a control character", 0);
	check_fault("x\x1b[8m", 5, "a control character", 1);
	check_fault("del\x7f", 4, "a control character", 3);
	check_fault("c1\xc2\x9b", 4, "a control character", 2);		/* 8-bit CSI */
	check_fault("ab\xc2\xa0", 4, NULL, 0);				/* NBSP is text */
	check_fault("x\xe2\x80\xae", 4, "a bidirectional formatting character", 1);
	check_fault("\xe2\x81\xa6x", 4, "a bidirectional formatting character", 0);
	check_fault("\xe2\x80\x8e", 3, "a bidirectional formatting character", 0);
	check_fault("x\xd8\x9c", 3, "a bidirectional formatting character", 1);	/* ALM */
	check_fault("\xd8\xa7", 2, NULL, 0);		/* an Arabic letter is text */
	check_fault("ok\xff", 3, "invalid UTF-8", 2);
	check_fault("ok\xc3", 3, "invalid UTF-8", 2);
	/* The length is the string: a NUL inside is a control character. */
	check_fault("a\0b", 3, "a control character", 1);
}

static void
check_escape(const char *in, const char *want)
{
	char buf[256];
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);

	assert_string_equal(ks_text_escape(buf, sizeof(buf), in), want);
	assert_non_null(f);
	ks_text_fputs(f, in);
	fclose(f);
	assert_string_equal(mem, want);
	free(mem);
}

static void
test_escape(void **state)
{
	char small[8];

	(void)state;
	check_escape("kvm-1234", "kvm-1234");
	check_escape("caf\xc3\xa9", "caf\xc3\xa9");
	/* A forged row of "kvmstats list": every byte of it stays visible. */
	check_escape("\rprod-db  4242  live\x1b[8m", "\\x0dprod-db  4242  live\\x1b[8m");
	check_escape("a\\x41", "a\\\\x41");		/* a backslash is never an escape */
	check_escape("\xc2\x9b", "\\xc2\\x9b");
	check_escape("x\xe2\x80\xaey", "x\\xe2\\x80\\xaey");
	check_escape("\xff\xfe", "\\xff\\xfe");
	check_escape("\xc3", "\\xc3");
	/* Cut to fit, never inside an escape or a character. */
	assert_string_equal(ks_text_escape(small, sizeof(small), "abcdefghij"), "abcdefg");
	assert_string_equal(ks_text_escape(small, sizeof(small), "abcd\x01"), "abcd");
	assert_string_equal(ks_text_escape(small, sizeof(small), "abcde\xc3\xa9"), "abcde\xc3\xa9");
	assert_string_equal(ks_text_escape(small, sizeof(small), "abcdef\xc3\xa9"), "abcdef");
	assert_int_equal(ks_text_columns("caf\xc3\xa9"), 4);
	assert_int_equal(ks_text_columns("\\x01"), 4);
}

static void
check_vm_name(const char *name, const char *want)
{
	char why[128];
	const char *got = ks_vm_name_fault(name, why, sizeof(why));

	if (want == NULL ? got != NULL : (got == NULL || strstr(got, want) == NULL))
		fail_msg("VM name \"%s\": got \"%s\", want \"%s\"", name, got ? got : "fine",
			 want ? want : "fine");
}

static void
test_vm_names(void **state)
{
	char longest[KVMSTATS_VM_NAME_MAX + 2], buf[256];

	(void)state;
	memset(longest, 'v', sizeof(longest));
	longest[KVMSTATS_VM_NAME_MAX] = '\0';
	check_vm_name("kvm-1234", NULL);
	check_vm_name("my vm", NULL);
	check_vm_name("caf\xc3\xa9", NULL);
	check_vm_name(longest, NULL);
	longest[KVMSTATS_VM_NAME_MAX] = 'v';
	longest[KVMSTATS_VM_NAME_MAX + 1] = '\0';
	check_vm_name(longest, "over the limit of 128");
	check_vm_name("", "is empty");
	check_vm_name("a/b", "contains '/'");
	check_vm_name("..", "starts with '.'");
	check_vm_name(".hidden", "starts with '.'");
	check_vm_name("\rprod-db", "control character at byte 0");
	check_vm_name("x\xff", "invalid UTF-8 at byte 1");
	check_vm_name("x\xe2\x80\xae", "bidirectional");
	/* What is left after one prefix went must not be read as another one. */
	check_vm_name("kvmstats.x", "starts with \"kvmstats.\" once more");

	/* The three spellings, a prefix never doubled. */
	assert_string_equal(ks_vm_name_of("kvm-1"), "kvm-1");
	assert_string_equal(ks_vm_name_of("kvmstats.kvm-1"), "kvm-1");
	assert_string_equal(ks_vm_name_of("/kvmstats.kvm-1"), "kvm-1");
	assert_string_equal(ks_vm_name_of("kvmstats.kvmstats.x"), "kvmstats.x");
	assert_int_equal(kvmstats_segment_file_name("kvmstats.kvmstats.x", buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(kvmstats_segment_file_name("kvmstats.myvm", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "kvmstats.myvm");
	assert_int_equal(kvmstats_segment_file_name("/kvmstats.", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(kvmstats_segment_file_name("kvmstats..x", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(kvmstats_segment_file_name("a\nb", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(kvmstats_segment_file_name(longest, buf, sizeof(buf)), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_decode),
		cmocka_unit_test(test_fault),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_vm_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
