/* SPDX-License-Identifier: MIT */
/*
 * qmp_socket.h - the listening sockets of kvmstats qmp: made with the
 * mode and owner asked for, never in place of a file that is not a
 * socket, nor of a socket somebody still listens on; removed at exit only
 * if the file is still the one we made.
 */
#ifndef KVMSTATS_CLI_QMP_SOCKET_H
#define KVMSTATS_CLI_QMP_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

struct ks_qmp_sockopts {
	mode_t mode;		/* file mode of the socket */
	uid_t uid;		/* (uid_t)-1: leave as made */
	gid_t gid;		/* (gid_t)-1: leave as made */
};

struct ks_qmp_listener {
	int fd;
	char path[108];		/* sizeof(sun_path) */
	dev_t dev;		/* what we bound, so we remove only that */
	ino_t ino;
};

/*
 * ks_qmp_listen() - a non-blocking listening socket at @path.
 * Return: 0, or -1 with @why set (the path is too long, is not a socket,
 * has a server listening, or could not be made).
 */
int ks_qmp_listen(struct ks_qmp_listener *l, const char *path, const struct ks_qmp_sockopts *o,
		  char *why, size_t len);

/* ks_qmp_unlisten() - close, and remove the socket file if it is still ours. */
void ks_qmp_unlisten(struct ks_qmp_listener *l);

#endif /* KVMSTATS_CLI_QMP_SOCKET_H */
