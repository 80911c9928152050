/* SPDX-License-Identifier: MIT */
/*
 * ks_section_copy.h - copying a slot's values inside a seqlock read section
 * at the speed of memory.
 *
 * Why this is correct is ks_seqlock.h's business ("The copy"); this file
 * is the mechanics: four ways to move @n 8-byte values out of a slot that
 * the writer may be rewriting meanwhile, and the choice between them.
 *
 *   KS_COPY_ATOMIC  one C11 relaxed atomic load per value (ks_load_words()):
 *                   defined by the C memory model, portable, and the only
 *                   copy ThreadSanitizer can see.  No compiler vectorises
 *                   it, so it moves 8 bytes per instruction.
 *   KS_COPY_SSE2    x86-64 inline assembly, 16-byte loads (every x86-64).
 *   KS_COPY_AVX2    x86-64 inline assembly, 32-byte loads, where the CPU
 *                   has AVX2 and the kernel saves the YMM state.
 *   KS_COPY_AVX512  x86-64 inline assembly, 64-byte loads, where the CPU
 *                   has AVX-512F, the kernel saves the ZMM state, and the
 *                   CPU is of a kind on which they were measured faster
 *                   (ks_cpu_zmm_measured_fast() says which and why).
 *
 * The assembly copies are outside the C abstract machine: to the compiler
 * each is one opaque statement that reads and writes memory (the "memory"
 * clobber), so it moves no C access across it and assumes nothing about
 * the bytes; what the loads do is then defined by the architecture, which
 * is what ks_seqlock.h's argument relies on.  Under ThreadSanitizer, which
 * does not instrument inline assembly, ks_section_copy_best() picks the
 * atomic copy, so TSan checks the protocol with every access visible; the
 * assembly copies are checked by tests/test_section_copy.c (every length
 * and alignment, and against a concurrent writer), the torture test and
 * valgrind, which sees machine code (but emulates no AVX-512 CPU: under
 * it the reader picks the AVX2 copy).  Under AddressSanitizer, which does
 * not see the assembly's accesses either, the destination is checked
 * explicitly before the copy.
 */
#ifndef KVMSTATS_SHM_KS_SECTION_COPY_H
#define KVMSTATS_SHM_KS_SECTION_COPY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ks_sanitizers.h"
#include "ks_seqlock.h"

#if KS_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

enum ks_copy {
	KS_COPY_ATOMIC,
	KS_COPY_SSE2,
	KS_COPY_AVX2,
	KS_COPY_AVX512,
};

#if defined(__x86_64__)

/*
 * A store into memory the caller does not own would go unseen by ASan in
 * the assembly: report it as the instrumented loop would have.
 */
static inline void
ks_section_check_dst(uint64_t *dst, size_t n)
{
#if KS_ASAN
	void *bad = __asan_region_is_poisoned(dst, n * sizeof(*dst));

	if (bad != NULL)
		__asan_report_error(__builtin_return_address(0), __builtin_frame_address(0),
				    __builtin_frame_address(0), bad, 1, n * sizeof(*dst));
#else
	(void)dst;
	(void)n;
#endif
}

/*
 * The SSE2 copy: the wide loop 4 vectors at a time, then single vectors,
 * then single 8-byte words, so any @n >= 0 is copied exactly (no byte
 * outside [src, src + 8n) is read, none outside [dst, dst + 8n) written;
 * the AVX2 copy below keeps the same bounds its own way).
 */
static inline __attribute__((always_inline)) void
ks_section_copy_sse2(uint64_t *dst, const _Atomic uint64_t *src, size_t n)
{
	size_t len = n * sizeof(*dst);
	uint64_t w;

	ks_section_check_dst(dst, n);
	__asm__ volatile(
		"cmp	$64, %[len]\n\t"
		"jb	2f\n"
		"1:\n\t"
		"movdqu	(%[s]), %%xmm0\n\t"
		"movdqu	16(%[s]), %%xmm1\n\t"
		"movdqu	32(%[s]), %%xmm2\n\t"
		"movdqu	48(%[s]), %%xmm3\n\t"
		"movdqu	%%xmm0, (%[d])\n\t"
		"movdqu	%%xmm1, 16(%[d])\n\t"
		"movdqu	%%xmm2, 32(%[d])\n\t"
		"movdqu	%%xmm3, 48(%[d])\n\t"
		"add	$64, %[s]\n\t"
		"add	$64, %[d]\n\t"
		"sub	$64, %[len]\n\t"
		"cmp	$64, %[len]\n\t"
		"jae	1b\n"
		"2:\n\t"
		"cmp	$16, %[len]\n\t"
		"jb	4f\n"
		"3:\n\t"
		"movdqu	(%[s]), %%xmm0\n\t"
		"movdqu	%%xmm0, (%[d])\n\t"
		"add	$16, %[s]\n\t"
		"add	$16, %[d]\n\t"
		"sub	$16, %[len]\n\t"
		"cmp	$16, %[len]\n\t"
		"jae	3b\n"
		"4:\n\t"
		"test	%[len], %[len]\n\t"
		"jz	6f\n"
		"5:\n\t"
		"mov	(%[s]), %[w]\n\t"
		"mov	%[w], (%[d])\n\t"
		"add	$8, %[s]\n\t"
		"add	$8, %[d]\n\t"
		"sub	$8, %[len]\n\t"
		"jnz	5b\n"
		"6:\n"
		: [d] "+r"(dst), [s] "+r"(src), [len] "+r"(len), [w] "=&r"(w)
		:
		: "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3");
}

/*
 * VZEROUPPER at the end: code built without AVX runs legacy SSE
 * instructions next, and with the upper halves of the YMM registers dirty
 * some CPUs pay a state transition for each, the others a merge.  It
 * clears the upper halves of all sixteen YMM registers (and of ZMM0-15),
 * so the copy says it clobbers all sixteen: a caller that keeps vector
 * values in registers, because its unit is built with -mavx or -march=...,
 * or because one function has __attribute__((target("avx2"))), which the
 * preprocessor cannot see, keeps them elsewhere across the copy.  Only
 * such a caller pays for it; the reader's read sections hold no vector
 * values.  (ZMM16-31, which AVX-512 code may use, are not touched.)
 */
#define KS_AVX2_CLOBBERS	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", \
				"xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", \
				"xmm14", "xmm15"

/*
 * The AVX2 copy aligns its stores: a record's destination in a cut is at
 * 8 * 138 * t bytes, so unaligned 32-byte stores would split a cache line
 * every other time, and a split store costs about two.  Loads may split;
 * they are cheaper.  So: one unaligned vector at the start, then aligned
 * stores from the next 32-byte boundary of @dst, then one unaligned vector
 * ending exactly at the end.  The first and last vectors overlap the
 * middle: those bytes are loaded twice inside the section, which is
 * harmless (ks_seqlock.h, "The copy": if the two loads saw different
 * writes, the newer one is caught by (B)).  Under 32 bytes, 8-byte words.
 */
static inline __attribute__((always_inline)) void
ks_section_copy_avx2(uint64_t *dst, const _Atomic uint64_t *src, size_t n)
{
	size_t len = n * sizeof(*dst);
	uint64_t w;

	ks_section_check_dst(dst, n);
	__asm__ volatile(
		"cmp	$32, %[len]\n\t"
		"jb	5f\n\t"
		/* head: one vector, then advance to a 32-byte aligned dst */
		"vmovdqu	(%[s]), %%ymm0\n\t"
		"vmovdqu	%%ymm0, (%[d])\n\t"
		"mov	%[d], %[w]\n\t"
		"neg	%[w]\n\t"
		"and	$31, %[w]\n\t"
		"add	%[w], %[s]\n\t"
		"add	%[w], %[d]\n\t"
		"sub	%[w], %[len]\n\t"
		"cmp	$128, %[len]\n\t"
		"jb	2f\n"
		"1:\n\t"
		"vmovdqu	(%[s]), %%ymm0\n\t"
		"vmovdqu	32(%[s]), %%ymm1\n\t"
		"vmovdqu	64(%[s]), %%ymm2\n\t"
		"vmovdqu	96(%[s]), %%ymm3\n\t"
		"vmovdqa	%%ymm0, (%[d])\n\t"
		"vmovdqa	%%ymm1, 32(%[d])\n\t"
		"vmovdqa	%%ymm2, 64(%[d])\n\t"
		"vmovdqa	%%ymm3, 96(%[d])\n\t"
		"add	$128, %[s]\n\t"
		"add	$128, %[d]\n\t"
		"sub	$128, %[len]\n\t"
		"cmp	$128, %[len]\n\t"
		"jae	1b\n"
		"2:\n\t"
		"cmp	$32, %[len]\n\t"
		"jb	3f\n\t"
		"vmovdqu	(%[s]), %%ymm0\n\t"
		"vmovdqa	%%ymm0, (%[d])\n\t"
		"add	$32, %[s]\n\t"
		"add	$32, %[d]\n\t"
		"sub	$32, %[len]\n\t"
		"jmp	2b\n"
		"3:\n\t"
		/*
		 * tail: the region's last 32 bytes.  len may be under 32 now
		 * (the head's step is up to 24), but the region is 32 or more,
		 * so s + len - 32 is not before its start.
		 */
		"vmovdqu	-32(%[s],%[len]), %%ymm0\n\t"
		"vmovdqu	%%ymm0, -32(%[d],%[len])\n\t"
		"vzeroupper\n\t"
		"jmp	7f\n"
		"5:\n\t"
		"test	%[len], %[len]\n\t"
		"jz	7f\n"
		"6:\n\t"
		"mov	(%[s]), %[w]\n\t"
		"mov	%[w], (%[d])\n\t"
		"add	$8, %[s]\n\t"
		"add	$8, %[d]\n\t"
		"sub	$8, %[len]\n\t"
		"jnz	6b\n"
		"7:\n"
		: [d] "+r"(dst), [s] "+r"(src), [len] "+r"(len), [w] "=&r"(w)
		:
		: "memory", "cc", KS_AVX2_CLOBBERS);
}

/*
 * The AVX-512 copy: the AVX2 copy's shape with 64-byte vectors, but the
 * loads are the aligned ones.  A slot's values start 32 bytes into a
 * line, so with the stores aligned every 64-byte load would span two
 * lines; with the loads aligned each source line is loaded once, by one
 * instruction, which is what matters when the lines come from another
 * core (a fresh read) or from L2, and the stores, into the caller's
 * buffer, split instead.  Measured against dst-aligned on the Zen 5 of
 * bench/REPORT.md 1.1: warm 8-vCPU cut 0.79-0.81x the AVX2 copy where
 * dst-aligned gave 0.85-0.88x, fresh cut 0.91-0.95x where dst-aligned
 * gave 1.04-1.07x.  One unaligned vector at the start, aligned loads from
 * the next 64-byte boundary of @src, one unaligned vector ending exactly
 * at the end; the two overlap the middle, which is harmless for the
 * reason the AVX2 copy gives.  For @n of 8 or more only (64 bytes):
 * ks_section_copy() sends shorter copies to the AVX2 one.  ZMM0-3 and a
 * VZEROUPPER, so the clobbers are the AVX2 copy's: the instruction clears
 * the upper parts of ZMM0-15 (ZMM16-31 would need no VZEROUPPER, but a
 * clobber naming them is refused unless the whole unit is built for
 * AVX-512, which the library is not).  The assembler takes the
 * instructions whatever -m flags the unit has; only the CPU must have
 * them, which ks_section_copy_best() checks.
 */
static inline __attribute__((always_inline)) void
ks_section_copy_avx512(uint64_t *dst, const _Atomic uint64_t *src, size_t n)
{
	size_t len = n * sizeof(*dst);
	uint64_t w;

	ks_section_check_dst(dst, n);
	__asm__ volatile(
		/* head: one vector, then advance to a 64-byte aligned src */
		"vmovdqu64	(%[s]), %%zmm0\n\t"
		"vmovdqu64	%%zmm0, (%[d])\n\t"
		"mov	%[s], %[w]\n\t"
		"neg	%[w]\n\t"
		"and	$63, %[w]\n\t"
		"add	%[w], %[s]\n\t"
		"add	%[w], %[d]\n\t"
		"sub	%[w], %[len]\n\t"
		"cmp	$256, %[len]\n\t"
		"jb	2f\n"
		"1:\n\t"
		"vmovdqa64	(%[s]), %%zmm0\n\t"
		"vmovdqa64	64(%[s]), %%zmm1\n\t"
		"vmovdqa64	128(%[s]), %%zmm2\n\t"
		"vmovdqa64	192(%[s]), %%zmm3\n\t"
		"vmovdqu64	%%zmm0, (%[d])\n\t"
		"vmovdqu64	%%zmm1, 64(%[d])\n\t"
		"vmovdqu64	%%zmm2, 128(%[d])\n\t"
		"vmovdqu64	%%zmm3, 192(%[d])\n\t"
		"add	$256, %[s]\n\t"
		"add	$256, %[d]\n\t"
		"sub	$256, %[len]\n\t"
		"cmp	$256, %[len]\n\t"
		"jae	1b\n"
		"2:\n\t"
		"cmp	$64, %[len]\n\t"
		"jb	3f\n\t"
		"vmovdqa64	(%[s]), %%zmm0\n\t"
		"vmovdqu64	%%zmm0, (%[d])\n\t"
		"add	$64, %[s]\n\t"
		"add	$64, %[d]\n\t"
		"sub	$64, %[len]\n\t"
		"jmp	2b\n"
		"3:\n\t"
		/*
		 * tail: the region's last 64 bytes.  len may be under 64 now
		 * (the head's step is up to 63), but the region is 64 or more,
		 * so s + len - 64 is not before its start.
		 */
		"vmovdqu64	-64(%[s],%[len]), %%zmm0\n\t"
		"vmovdqu64	%%zmm0, -64(%[d],%[len])\n\t"
		"vzeroupper\n"
		: [d] "+r"(dst), [s] "+r"(src), [len] "+r"(len), [w] "=&r"(w)
		:
		: "memory", "cc", KS_AVX2_CLOBBERS);
}

/*
 * Where 64-byte loads pay.  On an AMD Zen 5 server part (family 1Ah, model
 * 02h, an EPYC "Turin"), whose load and store paths are 512 bits wide,
 * timed in alternation with the AVX2 copy in the same reads (bench_reader's
 * "[vs its 32-byte copy]" rows): a warm 8-vCPU cut 0.79-0.81x, a fresh one
 * 0.91-0.95x, a warm record 0.82-0.96x; reads bound by lines from another
 * core or from L2 gain nothing, a few percent either way.  Where the
 * caller's buffer and the slot fall 4 KiB apart in a way that makes loads
 * wait on unrelated stores (4K aliasing, which depends on where the
 * caller's buffer is) a warm record can cost up to 1.7x instead; averaged
 * over every destination offset it costs 0.83-0.86x (bench/REPORT.md 1.1).
 * So: AMD family 1Ah, models 00h-1Fh, the EPYC 9005 parts, of which one
 * was measured.  Not the family's client parts, some of which execute a
 * 512-bit access as two 256-bit halves, as Zen 4 (family 19h) does, where
 * there is nothing to gain; not later families, not measured; not Intel
 * CPUs, which may lower a core's clock while it runs 512-bit instructions
 * (glibc's own memcpy avoids them there), and none was measured.
 *
 * ks_cpu_zmm_measured_fast() decides from CPUID leaf 0 (the vendor in EBX,
 * EDX, ECX) and leaf 1's EAX (the signature), so that the rule can be
 * tested on signatures of CPUs the tests do not run on.
 */
static inline bool
ks_cpu_zmm_measured_fast(unsigned int ebx0, unsigned int edx0, unsigned int ecx0,
			 unsigned int eax1)
{
	unsigned int family = (eax1 >> 8) & 0xf, model = (eax1 >> 4) & 0xf;

	/* "AuthenticAMD" */
	if (ebx0 != 0x68747541 || edx0 != 0x69746e65 || ecx0 != 0x444d4163)
		return false;
	if (family == 0xf) {
		family += (eax1 >> 20) & 0xff;
		model |= ((eax1 >> 16) & 0xf) << 4;
	}
	return family == 0x1a && model <= 0x1f;
}

static inline bool
ks_cpu_prefers_zmm(void)
{
	/*
	 * Asked once per process by the reader library (each unit that
	 * includes this header has its own answer): under a hypervisor
	 * every CPUID traps, and here one cost 11 us.  Threads that race to
	 * the first answer compute the same one; the value is all that is
	 * shared, so relaxed suffices.
	 */
	static _Atomic int answer;	/* 0: not asked yet, 1: no, 2: yes */
	unsigned int eax, ebx, ecx, edx, ebx0, ecx0, edx0;
	int a = atomic_load_explicit(&answer, memory_order_relaxed);

	if (a != 0)
		return a == 2;
	/* leaves 0 and 1 exist on every x86-64 CPU */
	__cpuid(0, eax, ebx0, ecx0, edx0);
	__cpuid(1, eax, ebx, ecx, edx);
	a = ks_cpu_zmm_measured_fast(ebx0, edx0, ecx0, eax);
	atomic_store_explicit(&answer, a ? 2 : 1, memory_order_relaxed);
	return a;
}

#endif /* __x86_64__ */

/**
 * ks_section_copy_best() - the fastest copy this CPU and build can use.
 * Context: when a reader attaches (CPUID, through libgcc and at most once
 * per process here).
 */
static inline enum ks_copy
ks_section_copy_best(void)
{
#if defined(__x86_64__) && !KS_TSAN
	__builtin_cpu_init();
	/*
	 * libgcc's (and compiler-rt's) answers include the kernel's XSAVE
	 * support for the YMM and the ZMM state.  AVX2 too for the AVX-512
	 * copy: it hands copies under 64 bytes to the AVX2 one.
	 */
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
	    ks_cpu_prefers_zmm())
		return KS_COPY_AVX512;
	return __builtin_cpu_supports("avx2") ? KS_COPY_AVX2 : KS_COPY_SSE2;
#else
	return KS_COPY_ATOMIC;
#endif
}

/**
 * ks_section_copy() - copy @n values out of a slot, inside a read section
 * (between ks_slot_read_begin() and ks_slot_read_retry()).
 * @how: what ks_section_copy_best() said; another value is the atomic copy.
 */
static inline __attribute__((always_inline)) void
ks_section_copy(enum ks_copy how, uint64_t *dst, const _Atomic uint64_t *src, size_t n)
{
	switch (how) {
#if defined(__x86_64__)
	case KS_COPY_AVX512:
		if (n >= 8)
			ks_section_copy_avx512(dst, src, n);
		else
			ks_section_copy_avx2(dst, src, n);
		break;
	case KS_COPY_AVX2:
		ks_section_copy_avx2(dst, src, n);
		break;
	case KS_COPY_SSE2:
		ks_section_copy_sse2(dst, src, n);
		break;
#endif
	default:
		ks_load_words(dst, src, n);
		break;
	}
}

#endif /* KVMSTATS_SHM_KS_SECTION_COPY_H */
