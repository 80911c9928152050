/* SPDX-License-Identifier: MIT */
/*
 * main.c - kvmstats-exporter: the KVM statistics of every VM that kvmstats
 * publishes on this host, for Prometheus.  A reader: it links only the
 * reader library and never touches a VMM.
 */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter_log.h"
#include "ks_shmdir.h"
#include "options.h"
#include "server.h"

/*
 * Every connection and every attached segment holds a descriptor: raise
 * the soft limit to the hard one, and keep the connections below what is
 * left after a reserve for segments, so that accepting cannot starve the
 * scrapes (nor busy-loop on EMFILE).
 */
static void
fit_connections(struct ex_options *o)
{
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	room = rl.rlim_cur > 2 * EX_FD_RESERVE ? rl.rlim_cur - EX_FD_RESERVE : rl.rlim_cur / 2;
	if (o->max_connections > room) {
		ex_log("--web.max-connections %u lowered to %u: the descriptor limit is %llu, "
		       "and %u are kept for segments", o->max_connections, (unsigned)room,
		       (unsigned long long)rl.rlim_cur, EX_FD_RESERVE);
		o->max_connections = (unsigned)room;
	}
}

int
main(int argc, char **argv)
{
	struct ex_options o;
	struct ex_config cfg;
	struct ex_server s;
	sigset_t stop;
	int rc, sig;

	rc = ex_parse_options(&o, argc, argv);
	if (rc >= 0)
		return rc;
	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = ks_shm_dir(o.dir);
	cfg.owner = o.owner;
	cfg.per_vcpu = o.per_vcpu;
	cfg.include = o.have_include ? &o.include : NULL;
	cfg.exclude = o.have_exclude ? &o.exclude : NULL;
	if (ex_server_init(&s, &cfg, o.path) < 0) {
		fprintf(stderr, "kvmstats-exporter: out of memory\n");
		ex_free_options(&o);
		return EX_EXIT_RUNTIME;
	}
	signal(SIGPIPE, SIG_IGN);
	fit_connections(&o);
	if (o.once) {
		char *data;
		size_t len;

		rc = ex_server_scrape(&s, o.once_format, &data, &len) < 0 ? EX_EXIT_RUNTIME : EX_EXIT_OK;
		/* One scrape of a directory it could not list is a failure (the log said why). */
		if (rc == EX_EXIT_OK && s.vs.list_error[0] != '\0') {
			free(data);
			rc = EX_EXIT_RUNTIME;
			goto out;
		}
		if (rc == EX_EXIT_OK) {
			if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
				perror("kvmstats-exporter: stdout");
				rc = EX_EXIT_RUNTIME;
			}
			free(data);
		} else {
			fprintf(stderr, "kvmstats-exporter: out of memory\n");
		}
		goto out;
	}
	/* Blocked before the server's threads exist, so that they inherit it. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	rc = ex_server_listen(&s, o.listen, &o);
	if (rc != EX_EXIT_OK)
		goto out;
	ex_log("serving %s from %s (%s)", o.path, cfg.dir,
	       o.per_vcpu ? "per-vCPU series" : "per-VM sums over vCPUs");
	sigwait(&stop, &sig);
	ex_log("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
out:
	ex_server_clear(&s);
	ex_free_options(&o);
	return rc;
}
