/* SPDX-License-Identifier: MIT */
/*
 * kvmstatsd - publish KVM binary statistics into shared memory.
 *
 * The daemon gathers stats fds (today: a simulated VM), hands them to the
 * engine, and waits for SIGINT/SIGTERM, on which every segment is marked
 * ended and removed (unless --keep).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "ks_err.h"
#include "ks_shmdir.h"
#include "sim_vm.h"
#include "vm_builder.h"

#define EXIT_RUNTIME	1
#define EXIT_USAGE	2

struct options {
	struct ks_engine_config cfg;
	unsigned simulate;		/* vCPUs; 0: no simulated VM */
	unsigned sim_hz;
	const char *name;
	double duration;		/* seconds; 0: until a signal */
	bool quiet;
};

static bool quiet;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	fputs("kvmstatsd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void
warn_line(const char *msg)
{
	fprintf(stderr, "kvmstatsd: warning: %s\n", msg);
}

static void
usage(FILE *f)
{
	fputs(
"Usage: kvmstatsd --simulate VCPUS [OPTIONS]\n"
"Publish KVM statistics into shared memory, where any number of unprivileged\n"
"readers (kvmstats, or the libkvmstats reader library) read them without a\n"
"system call.\n"
"\n"
"What to publish:\n"
"  --simulate VCPUS   a simulated VM with VCPUS vCPUs (1-1024); its stats files\n"
"                     have the x86 kernel's exact binary layout\n"
"  --sim-hz N         simulator steps per second (default 1000)\n"
"\n"
"How to publish:\n"
"  --hz N             sweeps per second, 1-100000 (default 100)\n"
"  --ring-depth N     samples kept per vCPU and VM, 2-1024 (default 4)\n"
"  --name NAME        segment file name (default kvmstats.<VM id>)\n"
"  --dir DIR          segment directory (default $KVMSTATS_SHM_DIR, else /dev/shm)\n"
"  --mode MODE        segment file mode, octal (default 0640)\n"
"  --group GROUP      group of the segment files, a name or a number\n"
"  --keep             leave segments in place (state \"ended\") on exit\n"
"  --duration SEC     stop after SEC seconds (default: until SIGINT or SIGTERM)\n"
"  -q, --quiet        no progress messages\n"
"  -h, --help         this text\n"
"      --version      version\n"
"\n"
"Exit status: 0 stopped by a signal or --duration, 1 runtime error,\n"
"2 usage error.\n", f);
}

static int
parse_uint(const char *opt, const char *arg, unsigned long min, unsigned long max,
	   int base, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, base);
	if (errno || end == arg || *end != '\0' || arg[0] == '-' || v < min || v > max) {
		fprintf(stderr, "kvmstatsd: %s: \"%s\" is not a number from %lu to %lu%s\n",
			opt, arg, min, max, base == 8 ? " (octal)" : "");
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_group(const char *arg, gid_t *gid)
{
	struct group *gr = getgrnam(arg);
	unsigned long v;

	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (parse_uint("--group", arg, 0, UINT_MAX - 1, 10, &v) < 0)
		return -1;
	*gid = (gid_t)v;
	return 0;
}

static int
parse_duration(const char *arg, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end != '\0' || !(v > 0) || v > 1e9) {
		fprintf(stderr, "kvmstatsd: --duration: \"%s\" is not a positive number of seconds\n",
			arg);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_SIMULATE = 256, OPT_SIM_HZ, OPT_HZ, OPT_RING_DEPTH, OPT_NAME, OPT_DIR,
	OPT_MODE, OPT_GROUP, OPT_KEEP, OPT_DURATION, OPT_VERSION,
};

static const struct option long_options[] = {
	{ "simulate", required_argument, NULL, OPT_SIMULATE },
	{ "sim-hz", required_argument, NULL, OPT_SIM_HZ },
	{ "hz", required_argument, NULL, OPT_HZ },
	{ "ring-depth", required_argument, NULL, OPT_RING_DEPTH },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Return: 0 go on, 1 done (help/version printed), -1 usage error. */
static int
parse_options(int argc, char **argv, struct options *o)
{
	unsigned long v;
	int c;

	ks_engine_config_init(&o->cfg);
	o->sim_hz = 1000;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_SIMULATE:
			if (parse_uint("--simulate", optarg, 1, KS_SIM_MAX_VCPUS, 10, &v) < 0)
				return -1;
			o->simulate = (unsigned)v;
			break;
		case OPT_SIM_HZ:
			if (parse_uint("--sim-hz", optarg, 1, 100000, 10, &v) < 0)
				return -1;
			o->sim_hz = (unsigned)v;
			break;
		case OPT_HZ:
			if (parse_uint("--hz", optarg, KS_HZ_MIN, KS_HZ_MAX, 10, &v) < 0)
				return -1;
			o->cfg.hz = (unsigned)v;
			break;
		case OPT_RING_DEPTH:
			if (parse_uint("--ring-depth", optarg, KS_RING_DEPTH_MIN,
				       KS_RING_DEPTH_MAX, 10, &v) < 0)
				return -1;
			o->cfg.ring_depth = (unsigned)v;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_DIR:
			o->cfg.dir = optarg;
			break;
		case OPT_MODE:
			if (parse_uint("--mode", optarg, 0, 0777, 8, &v) < 0)
				return -1;
			o->cfg.mode = (mode_t)v;
			break;
		case OPT_GROUP:
			if (parse_group(optarg, &o->cfg.gid) < 0)
				return -1;
			break;
		case OPT_KEEP:
			o->cfg.keep = true;
			break;
		case OPT_DURATION:
			if (parse_duration(optarg, &o->duration) < 0)
				return -1;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case OPT_VERSION:
			puts("kvmstatsd 1.0.0 (shared-memory ABI 1.0)");
			return 1;
		case ':':
			fprintf(stderr, "kvmstatsd: %s needs an argument; see kvmstatsd --help\n",
				argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "kvmstatsd: unknown option \"%s\"; see kvmstatsd --help\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmstatsd: unexpected argument \"%s\"; see kvmstatsd --help\n",
			argv[optind]);
		return -1;
	}
	if (o->simulate == 0) {
		fputs("kvmstatsd: nothing to publish: say --simulate VCPUS; "
		      "see kvmstatsd --help\n", stderr);
		return -1;
	}
	return 0;
}

/* Publish the simulated VM: its VM fd and one fd per vCPU. */
static int
publish_sim(struct ks_engine *e, struct ks_sim_vm *sim, const char *name,
	    struct kvmstats_error *err)
{
	unsigned n = ks_sim_vm_nr_vcpus(sim);
	struct ks_fd_target *fds = calloc(n + 1, sizeof(*fds));
	struct ks_vm_build b;
	int ret;

	if (fds == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	fds[0] = (struct ks_fd_target) {
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE,
		.fd = ks_sim_vm_stats_fd(sim, -1),
	};
	for (unsigned i = 0; i < n; i++)
		fds[i + 1] = (struct ks_fd_target) {
			.kind = KS_TARGET_VCPU, .vcpu_index = i,
			.fd = ks_sim_vm_stats_fd(sim, (int)i),
		};
	/* The simulator keeps its fds: the engine reads them, never closes them. */
	ret = ks_vm_build(ks_sim_vm_name(sim), name, fds, n + 1, warn_line, &b, err);
	free(fds);
	if (ret < 0)
		return ret;
	ret = ks_engine_add_vm(e, &b.def, NULL, err);
	ks_vm_build_clear(&b, true);
	return ret;
}

/* Wait for SIGINT/SIGTERM/SIGHUP (blocked in every thread), or the duration. */
static int
wait_for_end(const sigset_t *set, double duration)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig > 0)
			return sig;
		if (duration > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((double)(now.tv_sec - start.tv_sec) +
			    (double)(now.tv_nsec - start.tv_nsec) / 1e9 >= duration)
				return 0;
		}
	}
}

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct kvmstats_error err = { 0 };
	struct ks_engine *e = NULL;
	struct ks_sim_vm *sim = NULL;
	struct ks_engine_stats st;
	sigset_t set;
	int ret, sig;

	ret = parse_options(argc, argv, &o);
	if (ret != 0)
		return ret > 0 ? 0 : EXIT_USAGE;
	quiet = o.quiet;

	/* Every thread started from here inherits the mask: signals come to sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (ks_sim_vm_create(o.simulate, &sim, &err) < 0 ||
	    ks_sim_vm_start(sim, o.sim_hz, &err) < 0 ||
	    ks_engine_create(&o.cfg, &e, &err) < 0 ||
	    publish_sim(e, sim, o.name, &err) < 0 ||
	    ks_engine_start(e, &err) < 0) {
		fprintf(stderr, "kvmstatsd: %s\n", err.msg);
		ks_engine_destroy(&e);
		ks_sim_vm_destroy(&sim);
		return EXIT_RUNTIME;
	}
	say("publishing simulated VM %s (%u vCPUs) in %s/%s%s at %u Hz, ring depth %u",
	    ks_sim_vm_name(sim), o.simulate, ks_shm_dir(o.cfg.dir),
	    o.name ? "" : "kvmstats.", o.name ? o.name : ks_sim_vm_name(sim),
	    o.cfg.hz, o.cfg.ring_depth);

	sig = wait_for_end(&set, o.duration);
	ks_engine_get_stats(e, &st);
	ks_engine_destroy(&e);
	ks_sim_vm_destroy(&sim);
	say("%s after %llu sweeps (%llu overruns, %llu read errors, mean sweep %.1f us); "
	    "segments %s",
	    sig ? strsignal(sig) : "duration reached", (unsigned long long)st.sweeps,
	    (unsigned long long)st.overruns, (unsigned long long)st.read_errors,
	    st.sweeps ? (double)st.sweep_ns_total / (double)st.sweeps / 1e3 : 0.0,
	    o.cfg.keep ? "kept, marked ended" : "marked ended and removed");
	return 0;
}
