/* SPDX-License-Identifier: MIT */
/*
 * segment_names.h - taking a segment's public name and giving it back,
 * without ever replacing or deleting a file that is not ours to touch.
 * Internal to the segment writer (segment_writer.c); the rules are in
 * segment_names.c.
 */
#ifndef KVMSTATS_PUBLISHER_SEGMENT_NAMES_H
#define KVMSTATS_PUBLISHER_SEGMENT_NAMES_H

#include "kvmstats/types.h"

/* Prefix of temporary names: hidden from readers (docs/ABI.md section 2.1). */
#define KS_TMP_PREFIX	".kvmstats.tmp."

/* A new hidden name for a file about @file, unlikely to exist: ".kvmstats.tmp.<file>.<pid>.<random>". */
char *ks_name_tmp(const char *file);

/*
 * ks_name_take() - rename @tmp to @file in @dirfd (@dir for messages),
 * atomically, replacing what has the name only if it may be replaced:
 * the file behind @pred_fd (our previous generation; -1: none), or a
 * segment of our uid whose publisher ended it or died.
 * Return: 0, or -EEXIST with @err saying what has the name and why it
 * stays, or another -errno.
 */
int ks_name_take(int dirfd, const char *dir, const char *tmp, const char *file, int pred_fd,
		 struct kvmstats_error *err);

/*
 * ks_name_release() - remove @name from @dirfd if it is the file behind
 * @our_fd.  Return: 0, -ENOENT (gone, or another file: left alone), or
 * another -errno.
 */
int ks_name_release(int dirfd, const char *name, int our_fd);

#endif /* KVMSTATS_PUBLISHER_SEGMENT_NAMES_H */
