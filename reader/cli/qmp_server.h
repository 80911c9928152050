/* SPDX-License-Identifier: MIT */
/*
 * qmp_server.h - the QMP server loop of kvmstats qmp: one thread, poll(),
 * non-blocking sockets; each client's input and output bounded, so that
 * no client (flooding, sending garbage, or never reading) holds up the
 * others.
 */
#ifndef KVMSTATS_CLI_QMP_SERVER_H
#define KVMSTATS_CLI_QMP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "qmp_socket.h"

struct ks_qmp_config {
	const struct ks_cli *cli;
	const char *listen;		/* one VM: its socket path ... */
	const char *vm;			/* ... and its name */
	const char *listen_dir;		/* or every VM: <listen_dir>/<vm>.qmp */
	struct ks_qmp_sockopts sock;
	unsigned max_clients;		/* at once, over all sockets */
	size_t max_input;		/* bytes of one message */
	size_t max_output;		/* unread reply bytes before we stop reading */
	unsigned rescan_ms;		/* directory mode: how often to look for VMs */
};

#define KS_QMP_DEFAULT_MAX_CLIENTS	128
#define KS_QMP_DEFAULT_MAX_INPUT	(64 * 1024)
#define KS_QMP_DEFAULT_MAX_OUTPUT	(1024 * 1024)
#define KS_QMP_DEFAULT_RESCAN_MS	500

/*
 * ks_qmp_serve() - serve until SIGINT or SIGTERM, then remove our sockets.
 * Return: an exit code (KS_EXIT_RUNTIME if a socket could not be made).
 */
int ks_qmp_serve(const struct ks_qmp_config *cfg);

#endif /* KVMSTATS_CLI_QMP_SERVER_H */
