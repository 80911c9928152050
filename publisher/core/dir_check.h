/* SPDX-License-Identifier: MIT */
/*
 * dir_check.h - refuse a directory in which others could swap our files.
 *
 * The publisher creates files (segments, the intake socket) in
 * directories it is given.  Whoever may rename or remove a file in such a
 * directory, or the directory itself, could replace a live segment with a
 * forged one, delete it, or put their own socket where VMMs send their
 * stats fds.  So the directory and every directory above it must be safe,
 * as OpenSSH's StrictModes asks of a key file's path:
 *
 *   - owned by root or by the publisher's effective uid (the owner of a
 *     directory may remove anything in it, sticky or not);
 *   - not writable by group or others, unless it has the sticky bit
 *     (then only a file's owner may rename or remove it: /dev/shm, /tmp).
 *
 * Such a directory is refused up front, with what to do.
 */
#ifndef KVMSTATS_PUBLISHER_DIR_CHECK_H
#define KVMSTATS_PUBLISHER_DIR_CHECK_H

#include "kvmstats/types.h"

/*
 * ks_dir_check() - may files be published in @dir (used for @role, e.g.
 * "segment directory")?  Return: 0, or -EPERM with @err saying which
 * directory is unsafe and what to do, or another -errno if @dir cannot be
 * examined (-ENOENT: it does not exist).
 */
int ks_dir_check(const char *dir, const char *role, struct kvmstats_error *err);

/*
 * ks_dir_check_parent() - the same for the directory that holds @path (a
 * socket path: its directory is the part before the last '/', or ".").
 */
int ks_dir_check_parent(const char *path, const char *role, struct kvmstats_error *err);

#endif /* KVMSTATS_PUBLISHER_DIR_CHECK_H */
