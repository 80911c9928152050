/* SPDX-License-Identifier: MIT */
/*
 * dir_check.c - the rule of dir_check.h, for a directory and each one
 * above it, from the leaf up to "/".
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_check.h"
#include "ks_err.h"
#include "ks_text.h"

/* One directory, @path (absolute, resolved); @leaf: it is @dir itself. */
static int
check_one(const char *path, bool leaf, const char *dir, const char *role,
	  struct kvmstats_error *err)
{
	char esc[256], esc_dir[256], above[600];
	struct stat st;

	if (stat(path, &st) < 0)
		return ks_err(err, -errno, "cannot examine %s, %s the %s: %s",
			      ks_text_escape(esc, sizeof(esc), path), leaf ? "which is" : "above",
			      role, strerror(errno));
	ks_text_escape(esc, sizeof(esc), path);
	if (leaf)
		snprintf(above, sizeof(above), "the %s %s", role, esc);
	else
		snprintf(above, sizeof(above), "directory %s above the %s %s", esc, role,
			 ks_text_escape(esc_dir, sizeof(esc_dir), dir));
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		char ours[48] = "";

		if (geteuid() != 0)
			snprintf(ours, sizeof(ours), " or of uid %u (ours)", (unsigned)geteuid());
		return ks_err(err, -EPERM, "%s belongs to uid %u, who may remove or replace "
			      "whatever is published in it: use a directory of root's%s",
			      above, (unsigned)st.st_uid, ours);
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) == 0 || (st.st_mode & S_ISVTX) != 0)
		return 0;
	return ks_err(err, -EPERM, "%s (mode %04o) is writable by %s without the sticky "
		      "bit, so anybody who can write it could replace or remove the files "
		      "published there: make it sticky like /dev/shm (chmod +t), or "
		      "writable only by its owner (chmod go-w), or use another directory",
		      above, (unsigned)(st.st_mode & 07777),
		      (st.st_mode & S_IWOTH) ? "others" : "its group");
}

int
ks_dir_check(const char *dir, const char *role, struct kvmstats_error *err)
{
	char esc[256], *real = realpath(dir, NULL), *slash;
	int rc;

	if (real == NULL)
		return ks_err(err, -errno, "cannot open the %s %s: %s", role,
			      ks_text_escape(esc, sizeof(esc), dir), strerror(errno));
	/* From the leaf up: cut the last component each time, "/" last. */
	for (bool leaf = true;; leaf = false) {
		rc = check_one(real, leaf, dir, role, err);
		if (rc < 0 || strcmp(real, "/") == 0)
			break;
		slash = strrchr(real, '/');
		if (slash == real)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(real);
	return rc;
}

int
ks_dir_check_parent(const char *path, const char *role, struct kvmstats_error *err)
{
	char dir[PATH_MAX], esc[256];
	const char *slash = strrchr(path, '/');
	size_t len;

	if (slash == NULL)
		return ks_dir_check(".", role, err);
	len = slash == path ? 1 : (size_t)(slash - path);	/* "/x": "/" */
	if (len >= sizeof(dir))
		return ks_err(err, -ENAMETOOLONG, "the %s of %s: path too long", role,
			      ks_text_escape(esc, sizeof(esc), path));
	memcpy(dir, path, len);
	dir[len] = '\0';
	return ks_dir_check(dir, role, err);
}
