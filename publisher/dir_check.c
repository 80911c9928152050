/* SPDX-License-Identifier: MIT */
/*
 * dir_check.c - the rule of dir_check.h: group or others may write only
 * a sticky directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_check.h"
#include "ks_err.h"
#include "ks_text.h"

int
ks_dir_check_fd(int dirfd, const char *dir, const char *role, struct kvmstats_error *err)
{
	char esc[512];
	struct stat st;

	if (fstat(dirfd, &st) < 0)
		return ks_err(err, -errno, "cannot examine the %s %s: %s", role,
			      ks_text_escape(esc, sizeof(esc), dir), strerror(errno));
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) == 0 || (st.st_mode & S_ISVTX) != 0)
		return 0;
	return ks_err(err, -EPERM, "the %s %s (mode %04o) is writable by %s without the "
		      "sticky bit, so anybody who can write it could replace or remove the "
		      "files published there: make it sticky like /dev/shm (chmod +t), or "
		      "writable only by its owner (chmod go-w), or use another directory",
		      role, ks_text_escape(esc, sizeof(esc), dir),
		      (unsigned)(st.st_mode & 07777),
		      (st.st_mode & S_IWOTH) ? "others" : "its group");
}

int
ks_dir_check_parent(const char *path, const char *role, struct kvmstats_error *err)
{
	char dir[PATH_MAX], esc[512];
	const char *slash = strrchr(path, '/');
	size_t len;
	int fd, rc;

	if (slash == NULL) {
		strcpy(dir, ".");
	} else {
		len = slash == path ? 1 : (size_t)(slash - path);	/* "/x": "/" */
		if (len >= sizeof(dir))
			return ks_err(err, -ENAMETOOLONG, "the %s of %s: path too long", role,
				      ks_text_escape(esc, sizeof(esc), path));
		memcpy(dir, path, len);
		dir[len] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ks_err(err, -errno, "cannot open the %s %s: %s", role,
			      ks_text_escape(esc, sizeof(esc), dir), strerror(errno));
	rc = ks_dir_check_fd(fd, dir, role, err);
	close(fd);
	return rc;
}
