/* SPDX-License-Identifier: MIT */
/*
 * test_section_copy.c - every copy of ks_section_copy.h, on its own and
 * inside the seqlock protocol against a concurrent writer.
 *
 * The reader library uses the fastest copy this CPU has, so the torture
 * test exercises only that one; this test runs each of them (the atomic
 * loop everywhere, SSE2, AVX2 and AVX-512 where the CPU has them, the last
 * also where the reader would not pick it):
 *   - exactness: every length from 0 to 300 words and a long one, every
 *     8-byte alignment of source and destination, guard words on both
 *     sides of the destination that must stay untouched;
 *   - no torn read: a writer thread rewrites a slot with ks_seqlock.h's
 *     writer side as fast as it can while the test reads it; every read
 *     section that reports clean must hold the values of exactly the write
 *     its stamp names.  Nothing depends on timing: the writer does a fixed
 *     number of writes, and the read after it has joined must be clean;
 *   - no load outside the source: the source ends at (or starts at) a page
 *     with no access, so a load past either end faults, as it would at the
 *     end of a segment's mapping; the exactness test above sees only
 *     what was stored, not what was loaded;
 *   - the caller's vector registers: a function allowed AVX2 (a target
 *     attribute, which the preprocessor cannot see: __AVX__ stays
 *     undefined in this unit) keeps 256-bit values in registers across an
 *     inlined copy, and they must come out whole; one allowed AVX-512
 *     keeps 24 512-bit values, more than the copy leaves it registers for;
 *   - the choice: which CPUs get the AVX-512 copy, decided for CPUID
 *     signatures of CPUs this test does not run on, and on this one the
 *     library picks what that rule says.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "ks_section_copy.h"
#include "ks_seqlock.h"

#define GUARD		0x5a5a5a5a5a5a5a5aull
#define MAX_WORDS	1000
#define WRITES		200000u

static const char *const kind_names[] = { "atomic", "sse2", "avx2", "avx512", "avx512 alone" };

/* Which copies this CPU can run (under TSan the reader picks atomic, the CPU runs all). */
static bool
kind_available(enum ks_copy k)
{
	if (k == KS_COPY_ATOMIC)
		return true;
#if defined(__x86_64__)
	__builtin_cpu_init();
	switch (k) {
	case KS_COPY_SSE2:
		return true;
	case KS_COPY_AVX2:
		return __builtin_cpu_supports("avx2");
	case KS_COPY_AVX512:
		/* the AVX-512 copy hands copies under 64 bytes to the AVX2 one */
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
	default:
		return false;
	}
#else
	return false;
#endif
}

static uint64_t
word_of(uint64_t write, size_t k)
{
	return write * 0x9e3779b97f4a7c15ull + k;
}

/* ---- exactness -------------------------------------------------------------- */

static void
check_lengths(enum ks_copy kind)
{
	/* 8 words of slack on each side for the alignments, plus the guards. */
	_Atomic uint64_t *src = aligned_alloc(64, (MAX_WORDS + 16) * sizeof(*src));
	uint64_t *dst = aligned_alloc(64, (MAX_WORDS + 32) * sizeof(*dst));
	size_t lengths[310], nr = 0;

	for (size_t n = 0; n <= 300; n++)
		lengths[nr++] = n;
	lengths[nr++] = 511;
	lengths[nr++] = 512;
	lengths[nr++] = MAX_WORDS;
	for (size_t k = 0; k < MAX_WORDS + 16; k++)
		atomic_init(&src[k], word_of(7, k));
	for (size_t i = 0; i < nr; i++) {
		size_t n = lengths[i];

		for (size_t so = 0; so < 8; so++) {
			for (size_t d = 0; d < 8; d++) {
				uint64_t *out = dst + 8 + d;

				for (size_t k = 0; k < MAX_WORDS + 32; k++)
					dst[k] = GUARD;
				ks_section_copy(kind, out, src + so, n);
				for (size_t k = 0; k < n; k++)
					if (out[k] != word_of(7, so + k))
						fail_msg("%s: n=%zu src+%zu dst+%zu: word %zu is %#llx",
							 kind_names[kind], n, so, d, k,
							 (unsigned long long)out[k]);
				for (size_t k = 0; k < 8 + d; k++)
					if (dst[k] != GUARD)
						fail_msg("%s: n=%zu: wrote before the destination",
							 kind_names[kind], n);
				for (size_t k = 8 + d + n; k < MAX_WORDS + 32; k++)
					if (dst[k] != GUARD)
						fail_msg("%s: n=%zu src+%zu dst+%zu: wrote word %zu past the end",
							 kind_names[kind], n, so, d, k - 8 - d - n);
			}
		}
	}
	free(src);
	free(dst);
}

static void
test_lengths_and_alignments(void **state)
{
	(void)state;
	for (enum ks_copy k = KS_COPY_ATOMIC; k <= KS_COPY_AVX512; k++) {
		if (!kind_available(k)) {
			printf("# %s: not on this CPU, skipped\n", kind_names[k]);
			continue;
		}
		check_lengths(k);
	}
}

/* ---- no load outside the source ----------------------------------------------- */

/*
 * Three pages, the outer two inaccessible.  Each length is copied from a
 * source that ends exactly where the last page begins (every alignment of
 * its start follows from the length) and from one that starts exactly
 * where the middle page begins; a load outside it is a SIGSEGV.
 */
static void
check_source_bounds(enum ks_copy kind)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t max = page / sizeof(uint64_t);
	char *map = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	_Atomic uint64_t *mid;
	uint64_t *dst = aligned_alloc(64, (max + 8) * sizeof(*dst));

	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map, page, PROT_NONE), 0);
	assert_int_equal(mprotect(map + 2 * page, page, PROT_NONE), 0);
	mid = (_Atomic uint64_t *)(map + page);
	for (size_t k = 0; k < max; k++)
		atomic_init(&mid[k], word_of(5, k));
	for (size_t n = 0; n <= 300; n++) {
		for (size_t d = 0; d < 4; d++) {
			ks_section_copy(kind, dst + d, mid + max - n, n);
			for (size_t k = 0; k < n; k++)
				if (dst[d + k] != word_of(5, max - n + k))
					fail_msg("%s: n=%zu at the end: word %zu wrong",
						 kind_names[kind], n, k);
			ks_section_copy(kind, dst + d, mid, n);
			for (size_t k = 0; k < n; k++)
				if (dst[d + k] != word_of(5, k))
					fail_msg("%s: n=%zu at the start: word %zu wrong",
						 kind_names[kind], n, k);
		}
	}
	ks_section_copy(kind, dst, mid, max);
	munmap(map, 3 * page);
	free(dst);
}

static void
test_no_load_outside_source(void **state)
{
	(void)state;
	for (enum ks_copy k = KS_COPY_ATOMIC; k <= KS_COPY_AVX512; k++)
		if (kind_available(k))
			check_source_bounds(k);
}

/* ---- against a writer --------------------------------------------------------- */

struct race {
	struct ks_shm_slot *slot;	/* followed by its values */
	size_t words;
	atomic_bool done;
};

static void *
writer_main(void *arg)
{
	struct race *r = arg;
	uint64_t *vals = malloc(r->words * sizeof(*vals));

	for (uint64_t w = 2; w < 2 + WRITES; w++) {
		for (size_t k = 0; k < r->words; k++)
			vals[k] = word_of(w, k);
		ks_slot_write_begin(r->slot);
		ks_slot_stamp(r->slot, w, w, 0);
		ks_store_words(r->slot->values, vals, r->words);
		ks_slot_write_end(r->slot);
	}
	free(vals);
	atomic_store_explicit(&r->done, true, memory_order_release);
	return NULL;
}

/* One read section; true if clean, with *@stamp and @dst filled. */
static bool
read_once(enum ks_copy kind, const struct race *r, uint64_t *dst, uint64_t *stamp)
{
	uint64_t seq = ks_slot_read_begin(r->slot);

	*stamp = ks_load_word(&r->slot->sweep);
	ks_section_copy(kind, dst, r->slot->values, r->words);
	return !ks_slot_read_retry(r->slot, seq);
}

static void
check_clean(enum ks_copy kind, const struct race *r, const uint64_t *dst, uint64_t stamp)
{
	for (size_t k = 0; k < r->words; k++)
		if (dst[k] != word_of(stamp, k))
			fail_msg("%s, %zu words: a clean read of write %llu holds word %zu of "
				 "another write (%#llx): torn", kind_names[kind], r->words,
				 (unsigned long long)stamp, k, (unsigned long long)dst[k]);
}

static void
race_one(enum ks_copy kind, size_t words)
{
	struct race r = { .words = words };
	uint64_t *dst = malloc(words * sizeof(*dst)), stamp;
	unsigned long long clean = 0, retried = 0;
	pthread_t th;

	/* aligned_alloc() wants a multiple of the alignment. */
	r.slot = aligned_alloc(64, (ks_slot_bytes((uint32_t)words) + 63) & ~(size_t)63);
	memset(r.slot, 0, ks_slot_bytes((uint32_t)words));
	/* Write 1 first, so that every clean read names a real write. */
	for (size_t k = 0; k < words; k++)
		atomic_store_explicit(&r.slot->values[k], word_of(1, k), memory_order_relaxed);
	ks_slot_write_begin(r.slot);
	ks_slot_stamp(r.slot, 1, 1, 0);
	ks_slot_write_end(r.slot);
	atomic_init(&r.done, false);
	assert_int_equal(pthread_create(&th, NULL, writer_main, &r), 0);
	while (!atomic_load_explicit(&r.done, memory_order_acquire)) {
		if (read_once(kind, &r, dst, &stamp)) {
			check_clean(kind, &r, dst, stamp);
			clean++;
		} else {
			retried++;
		}
	}
	pthread_join(th, NULL);
	/* No writer now: the read must be clean, and of the last write. */
	assert_true(read_once(kind, &r, dst, &stamp));
	assert_int_equal(stamp, 1 + WRITES);
	check_clean(kind, &r, dst, stamp);
	printf("# %s, %zu words: %llu clean reads checked, %llu retried, during %u writes\n",
	       kind_names[kind], words, clean, retried, WRITES);
	free(r.slot);
	free(dst);
}

static void
test_no_torn_read(void **state)
{
	static const size_t sizes[] = { 2, 5, 17, 138, MAX_WORDS };

	(void)state;
	for (enum ks_copy k = KS_COPY_ATOMIC; k <= KS_COPY_AVX512; k++)
		for (size_t i = 0; kind_available(k) && i < sizeof(sizes) / sizeof(sizes[0]); i++)
			race_one(k, sizes[i]);
}

/* ---- the caller's registers ---------------------------------------------------- */

#if defined(__x86_64__)
/*
 * ACROSS_AVX512_ALONE: the AVX-512 copy called directly, for 8 words or
 * more.  Through ks_section_copy() it shares a branch with the AVX2 copy
 * (for short copies), whose clobbers would then hide a wrong list of its
 * own: values live across the branch must survive both.
 */
#define ACROSS_AVX512_ALONE	(KS_COPY_AVX512 + 1)

static inline __attribute__((always_inline)) void
copy_kind(int kind, uint64_t *dst, const _Atomic uint64_t *src, size_t n)
{
	if (kind == ACROSS_AVX512_ALONE)
		ks_section_copy_avx512(dst, src, n);
	else
		ks_section_copy((enum ks_copy)kind, dst, src, n);
}

/*
 * Eight 256-bit values live across one copy.  The empty asm statements make
 * the compiler hold each in a YMM register right before and right after the
 * copy; whatever the copy says it clobbers, the compiler keeps elsewhere.
 */
static inline __attribute__((target("avx2"), always_inline)) void
ymm_across(int kind, long long x, uint64_t *dst, const _Atomic uint64_t *src,
	   size_t n, long long *out)
{
	__m256i v0 = _mm256_set_epi64x(x + 3, x + 2, x + 1, x);
	__m256i v1 = _mm256_add_epi64(v0, _mm256_set1_epi64x(4));
	__m256i v2 = _mm256_add_epi64(v1, _mm256_set1_epi64x(4));
	__m256i v3 = _mm256_add_epi64(v2, _mm256_set1_epi64x(4));
	__m256i v4 = _mm256_add_epi64(v3, _mm256_set1_epi64x(4));
	__m256i v5 = _mm256_add_epi64(v4, _mm256_set1_epi64x(4));
	__m256i v6 = _mm256_add_epi64(v5, _mm256_set1_epi64x(4));
	__m256i v7 = _mm256_add_epi64(v6, _mm256_set1_epi64x(4));

	__asm__ volatile("" : "+x"(v0), "+x"(v1), "+x"(v2), "+x"(v3),
			 "+x"(v4), "+x"(v5), "+x"(v6), "+x"(v7));
	copy_kind(kind, dst, src, n);
	__asm__ volatile("" : "+x"(v0), "+x"(v1), "+x"(v2), "+x"(v3),
			 "+x"(v4), "+x"(v5), "+x"(v6), "+x"(v7));
	_mm256_storeu_si256((__m256i *)out + 0, v0);
	_mm256_storeu_si256((__m256i *)out + 1, v1);
	_mm256_storeu_si256((__m256i *)out + 2, v2);
	_mm256_storeu_si256((__m256i *)out + 3, v3);
	_mm256_storeu_si256((__m256i *)out + 4, v4);
	_mm256_storeu_si256((__m256i *)out + 5, v5);
	_mm256_storeu_si256((__m256i *)out + 6, v6);
	_mm256_storeu_si256((__m256i *)out + 7, v7);
}

/*
 * Twenty-four 512-bit values live across one copy, each in a variable of
 * its own (an array would be kept in memory): the copy clobbers ZMM0-15,
 * so at least eight of them must be kept in ZMM16-31 or memory, and every
 * lane must come out as it went in.
 */
#define ZMM_LIVE	24
#define ZMM_EACH(X)	X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
			X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
#define ZMM_DECLARE(i)	__m512i v##i = _mm512_add_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), \
							_mm512_set1_epi64(x + 8 * (i)));
#define ZMM_STORE(i)	_mm512_storeu_si512(out + 8 * (i), v##i);
/* in two statements: GCC takes at most 30 operands in one */
#define ZMM_HOLD_ALL()	do { \
		__asm__ volatile("" : "+v"(v0), "+v"(v1), "+v"(v2), "+v"(v3), "+v"(v4), \
				 "+v"(v5), "+v"(v6), "+v"(v7), "+v"(v8), "+v"(v9), \
				 "+v"(v10), "+v"(v11)); \
		__asm__ volatile("" : "+v"(v12), "+v"(v13), "+v"(v14), "+v"(v15), \
				 "+v"(v16), "+v"(v17), "+v"(v18), "+v"(v19), "+v"(v20), \
				 "+v"(v21), "+v"(v22), "+v"(v23)); \
	} while (0)

static inline __attribute__((target("avx512f"), always_inline)) void
zmm_across(int kind, long long x, uint64_t *dst, const _Atomic uint64_t *src,
	   size_t n, long long *out)
{
	ZMM_EACH(ZMM_DECLARE)
	ZMM_HOLD_ALL();
	copy_kind(kind, dst, src, n);
	ZMM_HOLD_ALL();
	ZMM_EACH(ZMM_STORE)
}

/*
 * One function per copy, its kind a constant: through ks_section_copy()'s
 * switch on a variable kind, values that live across it would have to
 * survive every copy's clobbers at once, and one copy's wrong clobber list
 * would go unseen.
 */
typedef void across_fn(long long x, uint64_t *dst, const _Atomic uint64_t *src, size_t n,
		       long long *out);
#define ACROSS(width, isa, kind) \
	static __attribute__((target(isa), noinline)) void \
	width##_across_##kind(long long x, uint64_t *dst, const _Atomic uint64_t *src, \
			      size_t n, long long *out) \
	{ \
		width##_across(kind, x, dst, src, n, out); \
	}
ACROSS(ymm, "avx2", KS_COPY_ATOMIC)
ACROSS(ymm, "avx2", KS_COPY_SSE2)
ACROSS(ymm, "avx2", KS_COPY_AVX2)
ACROSS(ymm, "avx2", KS_COPY_AVX512)
ACROSS(ymm, "avx2", ACROSS_AVX512_ALONE)
ACROSS(zmm, "avx512f", KS_COPY_ATOMIC)
ACROSS(zmm, "avx512f", KS_COPY_SSE2)
ACROSS(zmm, "avx512f", KS_COPY_AVX2)
ACROSS(zmm, "avx512f", KS_COPY_AVX512)
ACROSS(zmm, "avx512f", ACROSS_AVX512_ALONE)

static across_fn *const ymm_across_copy[] = {
	ymm_across_KS_COPY_ATOMIC, ymm_across_KS_COPY_SSE2, ymm_across_KS_COPY_AVX2,
	ymm_across_KS_COPY_AVX512, ymm_across_ACROSS_AVX512_ALONE,
};
static across_fn *const zmm_across_copy[] = {
	zmm_across_KS_COPY_ATOMIC, zmm_across_KS_COPY_SSE2, zmm_across_KS_COPY_AVX2,
	zmm_across_KS_COPY_AVX512, zmm_across_ACROSS_AVX512_ALONE,
};
#endif

#if defined(__x86_64__)
/*
 * Every copy, at lengths across its branches, called through @across:
 * @values vector values of @lanes 64-bit lanes live across it must come
 * out whole, and the copy must be right.  @name says which registers.
 */
static void
check_across(across_fn *const across[], const char *name, int values, int lanes)
{
	static const size_t sizes[] = { 0, 3, 4, 5, 7, 8, 9, 17, 40, 138 };
	_Atomic uint64_t *src = aligned_alloc(64, 256 * sizeof(*src));
	uint64_t *dst = aligned_alloc(64, 256 * sizeof(*dst));
	long long *out = calloc((size_t)values * lanes, sizeof(*out));

	assert_non_null(src);
	assert_non_null(dst);
	assert_non_null(out);
	for (size_t k = 0; k < 256; k++)
		atomic_init(&src[k], word_of(3, k));
	for (int kind = KS_COPY_ATOMIC; kind <= ACROSS_AVX512_ALONE; kind++) {
		if (!kind_available(kind == ACROSS_AVX512_ALONE ? KS_COPY_AVX512
								: (enum ks_copy)kind))
			continue;
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			if (kind == ACROSS_AVX512_ALONE && sizes[i] < 8)
				continue;	/* it takes 8 words or more */
			memset(out, 0, (size_t)values * lanes * sizeof(*out));
			/* src + 4: a source 32 bytes into a line, as a slot's values are */
			across[kind](1000, dst + 1, src + 4, sizes[i], out);
			for (int k = 0; k < values * lanes; k++)
				if (out[k] != 1000 + k)
					fail_msg("%s, %zu words: the caller's %s value %d lane %d "
						 "is %#llx after the copy, was %#llx", kind_names[kind],
						 sizes[i], name, k / lanes, k % lanes,
						 (unsigned long long)out[k],
						 (unsigned long long)(1000 + k));
			for (size_t k = 0; k < sizes[i]; k++)
				assert_int_equal(dst[1 + k], word_of(3, 4 + k));
		}
	}
	free(src);
	free(dst);
	free(out);
}
#endif

static void
test_caller_vector_registers(void **state)
{
	(void)state;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2")) {
		printf("# no AVX2 here: nothing to hold in YMM registers, skipped\n");
		return;
	}
	check_across(ymm_across_copy, "YMM", 8, 4);
#else
	printf("# not x86-64: skipped\n");
#endif
}

static void
test_caller_zmm_registers(void **state)
{
	(void)state;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512f")) {
		printf("# no AVX-512 here: nothing to hold in ZMM registers, skipped\n");
		return;
	}
	check_across(zmm_across_copy, "ZMM", ZMM_LIVE, 8);
#else
	printf("# not x86-64: skipped\n");
#endif
}

#if defined(__x86_64__)
/* CPUID leaf 0's vendor registers (EBX, EDX, ECX) and leaf 1's EAX. */
struct cpu_signature {
	const char *what;
	unsigned int ebx0, edx0, ecx0, eax1;
	bool zmm;
};

#define AMD	0x68747541, 0x69746e65, 0x444d4163	/* "AuthenticAMD" */
#define INTEL	0x756e6547, 0x49656e69, 0x6c65746e	/* "GenuineIntel" */
#define HYGON	0x6f677948, 0x656e6975, 0x6e65476e	/* "HygonGenuine" */
#endif

static void
test_copy_choice(void **state)
{
	(void)state;
#if defined(__x86_64__)
	/* family = 0xf + EAX[27:20], model = EAX[19:16] << 4 | EAX[7:4] */
	static const struct cpu_signature cpus[] = {
		{ "EPYC 9005 (Zen 5, family 1Ah model 02h), measured", AMD, 0x00b00f21, true },
		{ "EPYC 9005 dense (family 1Ah model 11h)", AMD, 0x00b10f10, true },
		{ "Ryzen AI 300 (family 1Ah model 24h)", AMD, 0x00b20f40, false },
		{ "Ryzen 9000 (family 1Ah model 44h)", AMD, 0x00b40f40, false },
		{ "EPYC 9004 (Zen 4, family 19h model 11h)", AMD, 0x00a10f11, false },
		{ "a later AMD family (1Bh)", AMD, 0x00c00f00, false },
		{ "Xeon, Sapphire Rapids (family 6 model 8Fh)", INTEL, 0x000806f8, false },
		{ "a Hygon with a family 1Ah signature", HYGON, 0x00b00f21, false },
	};
	unsigned int eax1, ebx0, ecx0, edx0, b, c, d;
	bool rule;

	for (size_t i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++)
		if (ks_cpu_zmm_measured_fast(cpus[i].ebx0, cpus[i].edx0, cpus[i].ecx0,
					     cpus[i].eax1) != cpus[i].zmm)
			fail_msg("%s: the rule says %s", cpus[i].what,
				 cpus[i].zmm ? "no AVX-512 copy" : "the AVX-512 copy");
#if !KS_TSAN
	/* And the library applies it to this CPU. */
	__cpuid(0, eax1, ebx0, ecx0, edx0);
	__cpuid(1, eax1, b, c, d);
	__builtin_cpu_init();
	rule = ks_cpu_zmm_measured_fast(ebx0, edx0, ecx0, eax1) &&
	       __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
	printf("# this CPU: signature %#x, %s\n", eax1,
	       rule ? "the AVX-512 copy" : "no AVX-512 copy");
	assert_int_equal(ks_section_copy_best() == KS_COPY_AVX512, rule);
#else
	(void)eax1, (void)ebx0, (void)ecx0, (void)edx0, (void)b, (void)c, (void)d, (void)rule;
#endif
#else
	printf("# not x86-64: skipped\n");
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths_and_alignments),
		cmocka_unit_test(test_no_load_outside_source),
		cmocka_unit_test(test_no_torn_read),
		cmocka_unit_test(test_caller_vector_registers),
		cmocka_unit_test(test_caller_zmm_registers),
		cmocka_unit_test(test_copy_choice),
	};

	printf("# best copy here: %s\n", kind_names[ks_section_copy_best()]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
