/* SPDX-License-Identifier: MIT */
/*
 * prefetch_write.h - ask for cache lines in the owned state before
 * writing them (engine.c says why: readers on other cores hold a slot's
 * lines shared until the writer comes back to it).
 */
#ifndef KVMSTATS_PUBLISHER_PREFETCH_WRITE_H
#define KVMSTATS_PUBLISHER_PREFETCH_WRITE_H

#include <stddef.h>
#include <stdint.h>

/*
 * ks_prefetch_for_write() - every 64-byte line of [@p, @p + @len), @p
 * line-aligned.  A hint: it changes no value, and on a CPU without
 * PREFETCHW it is a no-op.
 */
static inline void
ks_prefetch_for_write(const uint8_t *p, size_t len)
{
	for (const uint8_t *end = p + len; p < end; p += 64) {
#if defined(__x86_64__) || defined(__i386__)
		__asm__ volatile("prefetchw %0" : : "m"(*p));
#else
		__builtin_prefetch(p, 1, 3);
#endif
	}
}

#endif
