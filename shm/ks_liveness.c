/* SPDX-License-Identifier: MIT */
/* ks_liveness.c - the liveness lock and the staleness threshold (ks_liveness.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "kvmstats/reader.h"
#include "ks_liveness.h"

uint64_t
ks_stale_after_ns(uint64_t poll_period_ns)
{
	uint64_t periods = poll_period_ns * KVMSTATS_STALE_PERIODS;

	/* A period over UINT64_MAX / 4 ns (146 years) is not a rate. */
	if (poll_period_ns > UINT64_MAX / KVMSTATS_STALE_PERIODS)
		return UINT64_MAX;
	return periods > KVMSTATS_STALE_MIN_NS ? periods : KVMSTATS_STALE_MIN_NS;
}

/* The whole file, from byte 0 to whatever its end is. */
static void
whole_file(struct flock *fl, short type)
{
	memset(fl, 0, sizeof(*fl));	/* l_pid must be 0 for OFD locks */
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = 0;
	fl->l_len = 0;
}

int
ks_liveness_lock(int fd)
{
	struct flock fl;

	whole_file(&fl, F_WRLCK);
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

int
ks_liveness_held(int fd)
{
	struct flock fl;

	/*
	 * Ask whether a read lock could be placed: only a write lock
	 * conflicts with it, and only the publisher holds one.  Read locks
	 * that readers may take do not make a dead publisher look alive.
	 */
	whole_file(&fl, F_RDLCK);
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type == F_WRLCK;
}
