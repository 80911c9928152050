/* SPDX-License-Identifier: MIT */
/*
 * server.h - the exporter's state and its HTTP face (libmicrohttpd).
 *
 * Connections are served by a fixed pool of threads, each polling many
 * connections (epoll): a client that sends nothing, or reads its answer
 * slowly, holds a connection slot until the idle timeout, never a
 * thread.  Scrapes take one lock, since they share the attached segments;
 * a scrape builds its whole answer in memory before it is sent, so the
 * lock is never held while a client reads.
 */
#ifndef KVMSTATS_EXPORTER_SERVER_H
#define KVMSTATS_EXPORTER_SERVER_H

#include <pthread.h>
#include <stddef.h>

#include "families.h"
#include "negotiate.h"
#include "options.h"
#include "vmset.h"

struct ex_server {
	pthread_mutex_t lock;		/* one scrape at a time */
	struct families *fs;
	struct vmset vs;
	const char *path;
	struct MHD_Daemon *mhd;
	int listen_fd;
	size_t size_hint;		/* the last scrape's size: the next one's buffer */
	/*
	 * Bytes of answers built and not yet sent to the end.  A client that
	 * reads its answer a byte at a time keeps it in memory: past
	 * EX_INFLIGHT_MAX, new scrapes get 503 instead of memory.
	 */
	_Atomic size_t inflight;
};

#define EX_INFLIGHT_MAX		((size_t)256 << 20)

/*
 * ex_server_init() - set up @s for @cfg, serving metrics at @path.
 * Return: 0, or -errno.
 */
int ex_server_init(struct ex_server *s, const struct ex_config *cfg, const char *path);
void ex_server_clear(struct ex_server *s);

/* One scrape in @fmt: a malloc()ed buffer in *@data.  Return: 0 or -ENOMEM. */
int ex_server_scrape(struct ex_server *s, enum expo_format fmt, char **data, size_t *len);

/*
 * ex_server_listen() - bind @addr (host:port) and serve.  The port
 * actually bound (for :0) goes to stderr.  Return: 0, or 1 with the reason
 * said on stderr.
 */
int ex_server_listen(struct ex_server *s, const char *addr, const struct ex_options *o);

/* Stop serving; connections in progress are closed. */
void ex_server_stop(struct ex_server *s);

#endif /* KVMSTATS_EXPORTER_SERVER_H */
