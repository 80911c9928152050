/* SPDX-License-Identifier: MIT */
/* options.h - kvmstats-exporter's command line, in the Prometheus exporters' style. */
#ifndef KVMSTATS_EXPORTER_OPTIONS_H
#define KVMSTATS_EXPORTER_OPTIONS_H

#include <regex.h>
#include <stdbool.h>
#include <sys/types.h>

#include "negotiate.h"

/*
 * The default port: 9100-9999, the range of Prometheus' port allocation
 * list, has been full since 2023; 19258 is in no allocation list we know
 * of, not an IANA service, and below Linux's ephemeral range (README.md).
 */
#define EX_DEFAULT_LISTEN	"127.0.0.1:19258"
#define EX_DEFAULT_PATH		"/metrics"

enum { EX_EXIT_OK = 0, EX_EXIT_RUNTIME = 1, EX_EXIT_USAGE = 2 };

/* Descriptors kept for segments and the rest, beside the connections. */
#define EX_FD_RESERVE		1024

struct ex_options {
	const char *listen;		/* host:port, [v6]:port or :port */
	const char *path;		/* the telemetry path */
	const char *dir;		/* NULL: $KVMSTATS_SHM_DIR or /dev/shm */
	uid_t owner;
	bool per_vcpu;
	bool have_include, have_exclude;
	regex_t include, exclude;
	unsigned threads;
	unsigned max_connections;
	unsigned timeout_s;
	bool once;			/* one scrape to stdout, then exit */
	enum expo_format once_format;
};

/*
 * ex_parse_options() - fill @o from the command line.  Return: -1 to go
 * on, or the exit status (0 after --help or --version, 2 after a usage
 * error, said on stderr).
 */
int ex_parse_options(struct ex_options *o, int argc, char **argv);
void ex_free_options(struct ex_options *o);

#endif /* KVMSTATS_EXPORTER_OPTIONS_H */
