/* SPDX-License-Identifier: MIT */
/*
 * kvmstatsd - publish KVM binary statistics into shared memory.
 *
 * main() starts the engine and the sources the command line asks for
 * (publisher/daemon/), then waits for SIGINT/SIGTERM/SIGHUP, the duration,
 * or the end of an attached VMM; on the way out every segment is marked
 * ended and removed (unless --keep).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "ks_err.h"
#include "ks_shmdir.h"
#include "ks_text.h"
#include "ks_time.h"
#include "options.h"
#include "sched_source.h"
#include "sources.h"

#define EXIT_RUNTIME	1
#define EXIT_USAGE	2
/* Sent to ourselves when the attached VMM is gone: time to stop. */
#define SIG_SOURCE_ENDED	SIGUSR2

static bool quiet;

/* An error is said even with --quiet. */
static void
say_error(const char *msg)
{
	char line[2048];

	fprintf(stderr, "kvmstatsd: %s\n", ks_text_escape(line, sizeof(line), msg));
}

/* Lines quote names from peers and files: escaped (ks_text.h), one write each. */
static void
say_line(const char *msg)
{
	char line[2048];

	if (quiet)
		return;
	ks_text_escape(line, sizeof(line), msg);
	fprintf(stderr, "kvmstatsd: %s\n", line);
}

/*
 * Every VM holds one fd per vCPU and the intake a socket per VMM: the
 * soft limit of 1024 is too low for a big host, so take the hard one.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
on_attach_end(void *arg)
{
	(void)arg;
	say_line("the attached VMM exited; its segment is marked ended");
	kill(getpid(), SIG_SOURCE_ENDED);
}

/* Wait for a signal of @set (blocked in every thread), or the duration. */
static int
wait_for_end(const sigset_t *set, double duration)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
	uint64_t start = ks_mono_ns();

	for (;;) {
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig > 0)
			return sig;
		if (duration > 0 && (double)(ks_mono_ns() - start) / 1e9 >= duration)
			return 0;
	}
}

static void
report_end(int sig, const struct ks_engine_stats *st, bool keep)
{
	char msg[512];

	snprintf(msg, sizeof(msg),
		 "%s after %llu sweeps (%llu overruns, %llu read errors, mean sweep %.1f us); "
		 "segments %s",
		 sig == SIG_SOURCE_ENDED ? "source ended" : sig ? strsignal(sig) :
		 "duration reached", (unsigned long long)st->sweeps,
		 (unsigned long long)st->overruns, (unsigned long long)st->read_errors,
		 st->sweeps ? (double)st->sweep_ns_total / (double)st->sweeps / 1e3 : 0.0,
		 keep ? "kept, marked ended" : "marked ended and removed");
	say_line(msg);
}

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct kvmstats_error err = { 0 };
	struct ks_engine *e = NULL;
	struct ks_engine_stats st;
	struct sources s = { 0 };
	sigset_t set;
	int ret, sig;

	ret = parse_options(argc, argv, &o);
	if (ret != 0)
		return ret > 0 ? 0 : EXIT_USAGE;
	quiet = o.quiet;
	o.cfg.log = say_line;
	if (o.sched_hz && ks_sched_available(&err) < 0) {
		ks_logf(say_line, "%s; every VM is published with provider kvm alone", err.msg);
		o.sched_hz = 0;
	}
	raise_fd_limit();
	/*
	 * A log reader that goes away (kvmstatsd ... 2>&1 | head) must not kill
	 * the daemon and leave its segments dead: a write to a closed pipe
	 * fails with EPIPE instead, and the line is lost, nothing else.
	 */
	signal(SIGPIPE, SIG_IGN);

	/* Every thread started from here inherits the mask: signals come to sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIG_SOURCE_ENDED);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	/* Ours that a killed kvmstatsd left behind (their names are ours to reuse). */
	(void)ks_segment_reap(o.cfg.dir, say_line);
	if (ks_engine_create(&o.cfg, &e, &err) < 0 ||
	    sources_start(e, &o, &s, on_attach_end, say_line, &err) < 0 ||
	    ks_engine_start(e, &err) < 0) {
		say_error(err.msg);
		sources_stop_feeds(&s);
		ks_engine_destroy(&e);
		sources_free(&s);
		return EXIT_RUNTIME;
	}
	if (!quiet) {
		char deeper[80] = "";

		if (o.cfg.ring_min_bytes)
			snprintf(deeper, sizeof(deeper), " (doubled, up to %d, until a VM's ring "
				 "spans %zu KiB)", KS_RING_DEPTH_AUTO_MAX, o.cfg.ring_min_bytes >> 10);
		fprintf(stderr, "kvmstatsd: segments in %s, %u Hz, ring depth %u%s\n",
			ks_shm_dir(o.cfg.dir), o.cfg.hz, o.cfg.ring_depth, deeper);
	}

	sig = wait_for_end(&set, o.duration);
	ks_engine_get_stats(e, &st);
	sources_stop_feeds(&s);
	ks_engine_destroy(&e);
	sources_free(&s);
	report_end(sig, &st, o.cfg.keep);
	return 0;
}
