/* SPDX-License-Identifier: MIT */
/*
 * qmp_dispatch.h - one QMP session's requests and replies, as QEMU's QMP
 * monitor answers them, from a VM's shared-memory segment.
 *
 * No sockets here: the server (qmp_server.h) frames the byte stream
 * (qmp_framer.h) and hands each message to ks_qmp_handle(), which writes
 * the reply.  Client input is untrusted: it is parsed by jansson with
 * duplicate keys refused, and every member is checked as QEMU's QAPI
 * input visitor checks it, with QEMU's error classes and wording.
 * Nothing a request says can change a segment: the commands only read.
 */
#ifndef KVMSTATS_CLI_QMP_DISPATCH_H
#define KVMSTATS_CLI_QMP_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmstats/reader.h"

/*
 * The QEMU version in the greeting and query-version: 8.0, the first with
 * the whole query-stats interface served here (StatsTarget and
 * StatsProvider with cryptodev, StatsUnit boolean, StatsRequest names);
 * nothing in it has changed since.  A client that checks the version
 * before it uses query-stats (7.1+) gets what it needs; "package" says
 * who really answers.
 */
#define KS_QMP_QEMU_MAJOR	8
#define KS_QMP_QEMU_MINOR	0
#define KS_QMP_QEMU_MICRO	0

/*
 * struct ks_qmp_source - where a session's VM data comes from.
 * @get: the VM's segment for one command; with @values, only from a live
 *	publisher and with one consistent cut of every target in a new
 *	*@cut (the caller free()s it), else from a live or stale one.
 *	Return: 0, or -1 with @why set to what is wrong (the "desc" of a
 *	GenericError reply).
 */
struct ks_qmp_source {
	int (*get)(void *arg, bool values, const struct kvmstats_segment **seg,
		   uint64_t **cut, char *why, size_t len);
	void *arg;
};

struct ks_qmp_session {
	bool negotiated;		/* qmp_capabilities accepted */
	const struct ks_qmp_source *src;
};

void ks_qmp_session_init(struct ks_qmp_session *s, const struct ks_qmp_source *src);

/* ks_qmp_greeting() - the greeting a client gets on connecting, with "\r\n". */
void ks_qmp_greeting(FILE *out);

/*
 * ks_qmp_handle() - answer the single JSON message @msg (@len bytes, as
 * the framer cut it) of session @s: the reply, "\r\n" included, is
 * written to @out.  Every message gets exactly one reply.
 */
void ks_qmp_handle(struct ks_qmp_session *s, const char *msg, size_t len, FILE *out);

/* ks_qmp_error() - an error reply without an id (framing errors), with "\r\n". */
void ks_qmp_error(FILE *out, const char *cls, const char *desc);

#endif /* KVMSTATS_CLI_QMP_DISPATCH_H */
