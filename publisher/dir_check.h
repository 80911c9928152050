/* SPDX-License-Identifier: MIT */
/*
 * dir_check.h - refuse a directory in which others could swap our files.
 *
 * The publisher creates files (segments, the intake socket) in
 * directories it is given.  In a directory that group or others may write
 * and that lacks the sticky bit, anybody with that access can rename or
 * remove any file in it: replace a live segment with a forged one between
 * a reader's listing and its open, or put their own socket where VMMs
 * send their stats fds.  Such a directory is refused up front, with what
 * to do.  /dev/shm (1777: sticky) and a directory only its owner writes
 * are fine.
 */
#ifndef KVMSTATS_PUBLISHER_DIR_CHECK_H
#define KVMSTATS_PUBLISHER_DIR_CHECK_H

#include "kvmstats/types.h"

/*
 * ks_dir_check_fd() - may files be published in the directory open as
 * @dirfd (named @dir, used for @role, e.g. "segment directory")?
 * Return: 0, or -EPERM with @err saying why and what to do, or another
 * -errno if it cannot be examined.
 */
int ks_dir_check_fd(int dirfd, const char *dir, const char *role,
		    struct kvmstats_error *err);

/*
 * ks_dir_check_parent() - the same for the directory that holds @path (a
 * socket path: its directory is the part before the last '/', or "."),
 * which must exist.
 */
int ks_dir_check_parent(const char *path, const char *role, struct kvmstats_error *err);

#endif /* KVMSTATS_PUBLISHER_DIR_CHECK_H */
