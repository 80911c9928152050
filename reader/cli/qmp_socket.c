/* SPDX-License-Identifier: MIT */
/*
 * qmp_socket.c - listening sockets (qmp_socket.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp_socket.h"

#define KS_QMP_BACKLOG	128

/*
 * Whether somebody accepts connections at the socket @path: a server we
 * must not take the name from.  Only ECONNREFUSED proves a leftover.
 */
static int
somebody_listens(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return -1;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0)
		return 1;
	return errno == ECONNREFUSED ? 0 : -1;
}

/* Make room at @path: nothing there, or a dead socket we may remove. */
static int
clear_path(const struct sockaddr_un *sa, char *why, size_t len)
{
	struct stat st;

	if (lstat(sa->sun_path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, len, "%s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, len, "%s exists and is not a socket: refusing to replace it",
			 sa->sun_path);
		return -1;
	}
	switch (somebody_listens(sa)) {
	case 0:
		if (unlink(sa->sun_path) == 0 || errno == ENOENT)
			return 0;
		snprintf(why, len, "%s: removing the old socket: %s", sa->sun_path,
			 strerror(errno));
		return -1;
	case 1:
		snprintf(why, len, "%s: another server listens on it", sa->sun_path);
		return -1;
	default:
		snprintf(why, len, "%s: cannot tell whether a server listens on it: %s",
			 sa->sun_path, strerror(errno));
		return -1;
	}
}

int
ks_qmp_listen(struct ks_qmp_listener *l, const char *path, const struct ks_qmp_sockopts *o,
	      char *why, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old_mask;
	int fd, r;

	l->fd = -1;
	l->path[0] = '\0';
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(l->path)) {
		snprintf(why, len, "socket path '%s' is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (clear_path(&sa, why, len) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return -1;
	}
	/* Born with no access at all, then given its mode: no moment of wider access. */
	old_mask = umask(0777);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (r < 0) {
		snprintf(why, len, "%s: bind: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((o->uid != (uid_t)-1 || o->gid != (gid_t)-1) && chown(path, o->uid, o->gid) < 0) {
		snprintf(why, len, "%s: chown: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, o->mode) < 0) {
		snprintf(why, len, "%s: chmod: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, KS_QMP_BACKLOG) < 0 || stat(path, &st) < 0) {
		snprintf(why, len, "%s: listen: %s", path, strerror(errno));
		goto fail;
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	snprintf(l->path, sizeof(l->path), "%s", path);
	return 0;
fail:
	unlink(path);
	close(fd);
	return -1;
}

void
ks_qmp_unlisten(struct ks_qmp_listener *l)
{
	struct stat st;

	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	/* Somebody may have put another file there since: leave that alone. */
	if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		unlink(l->path);
}
