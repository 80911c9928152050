/* SPDX-License-Identifier: MIT */
/*
 * pread_exact.h - one sample of a file-backed source: one pread() of a
 * fixed range, which must come back whole.
 *
 * Shared by the stats-fd source (ks_statsfd_read_data()) and the engine,
 * which issues such reads itself from its per-block table (engine.c,
 * "pread sources"), so that the rule lives in one place.
 */
#ifndef KVMSTATS_PUBLISHER_PREAD_EXACT_H
#define KVMSTATS_PUBLISHER_PREAD_EXACT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * ks_pread_exact() - read @len bytes at @offset of @fd into @dst.  One
 * pread(), as the kernel serves it: not an atomic snapshot, but one copy
 * per sample; retried only when a signal interrupted it before any byte.
 * Return: 0; -errno; or -EIO for a short count (the file shrank, or is not
 * the file whose layout was parsed).
 */
static inline int
ks_pread_exact(int fd, void *dst, size_t len, uint64_t offset)
{
	ssize_t n;

	do {
		n = pread(fd, dst, len, (off_t)offset);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

#endif
