/* SPDX-License-Identifier: MIT */
/*
 * options.c - parse kvmstatsd's command line; every value is checked and a
 * bad one is reported with what is wrong and what would be right.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/un.h>

#include "kvmstats/reader.h"
#include "ks_abi.h"
#include "ks_shmdir.h"
#include "ks_text.h"
#include "debugfs_source.h"
#include "options.h"
#include "own_vm.h"
#include "sched_source.h"
#include "sim_vm.h"

static void
usage(FILE *f)
{
	fputs(
"Usage: kvmstatsd SOURCE... [OPTIONS]\n"
"Publish KVM statistics into shared memory, where any number of unprivileged\n"
"readers (kvmstats, or the libkvmstats reader library) read them without a\n"
"system call.  One segment per VM: kvmstats.<VM name> in the segment directory.\n"
"\n"
"Sources (at least one; they can be combined):\n"
"  --spawn-vm VCPUS   a real VM of our own (needs /dev/kvm) running a tiny guest\n"
"                     that loops on port I/O and HLT (1-64 vCPUs)\n"
"  --wake-us N        its guest's timer wake-up period in us (default 1000)\n"
"  --fallback-simulate  with --spawn-vm: where no VM can be made, say why and\n"
"                     publish a simulated VM instead\n"
"  --simulate VCPUS   a simulated VM (1-1024 vCPUs) whose stats files have the\n"
"                     x86 kernel's exact binary layout, named kvm-<our pid>\n"
"                     (sim-<our pid> with --spawn-vm, whose VM has that name)\n"
"  --sim-hz N         simulator steps per second (default 1000)\n"
"  --attach PID       a running VMM: duplicate the stats fds it holds (QEMU 8.1+\n"
"                     keeps one per vCPU); follows vCPU hotplug, ends with the VMM\n"
"  --rescan-ms N      how often to look for hotplug (default 1000)\n"
"  --qmp PATH         with --attach: a QMP socket of that QEMU, kept free for us\n"
"                     (-qmp unix:PATH,server=on,wait=off); asked once per vCPU\n"
"                     set (query-cpus-fast), so vCPUs carry QEMU's QOM paths.\n"
"                     Without it they carry KVM's ids (kvm-<tid>/vcpu-<n>)\n"
"  --debugfs DIR|none with --attach, for a VMM that keeps no VM stats fd (QEMU):\n"
"                     the VM's stats from KVM's debugfs mounted at DIR (default\n"
"                     /sys/kernel/debug; needs root and no kernel lockdown), one\n"
"                     read per stat per sweep; none: no VM stats for it.  Where\n"
"                     they cannot be read, 'kvmstats list' says why\n"
"  --listen PATH      an intake socket: VMMs (or libkvmstats-preload.so) hand\n"
"                     their stats fds over it (docs/INTAKE.md)\n"
"  --allow-uid UID    a uid (name or number) allowed to connect; repeatable\n"
"                     (default: root and the daemon's own uid)\n"
"  --socket-mode MODE intake socket file mode, octal (default 0660)\n"
"  --max-conns-per-uid N  intake connections one uid may hold, of the 1024 the\n"
"                     intake takes (default 256); a connection that holds no VM\n"
"                     for 10 s is closed\n"
"\n"
"How to publish:\n"
"  --hz N             sweeps per second, 1-100000 (default 100)\n"
"  --ring-depth N     samples kept per vCPU and VM, 2-1024 (default 4, doubled\n"
"                     for a small VM up to 64 until its ring spans 512 KiB)\n"
"  --name NAME        the VM's name (default: with --attach, the guest name of\n"
"                     QEMU's -name, else kvm-<pid>, the VMM's or ours), only\n"
"                     with a single VM source: readers ask for it as NAME, its\n"
"                     segment is kvmstats.NAME (a \"kvmstats.\" given is not\n"
"                     doubled); 1-128 bytes of text, no '/', no leading '.'\n"
"  --sched-hz N       provider \"sched\" beside \"kvm\": each vCPU thread's run and\n"
"                     run-queue wait time, time slices, context switches and last\n"
"                     CPU from /proc/PID/task/TID, read N times a second, 1-1000\n"
"                     (default 10; they change at scheduler ticks and cost ~10 us\n"
"                     per thread); 0: kvm alone\n"
"  --dir DIR          segment directory (default $KVMSTATS_SHM_DIR, else /dev/shm)\n"
"  --mode MODE        segment file mode, octal (default 0640)\n"
"  --group GROUP      group of the segment files, a name or a number\n"
"  --keep             leave segments in place (state \"ended\") on exit\n"
"  --duration SEC     stop after SEC seconds (default: until SIGINT or SIGTERM,\n"
"                     or, with --attach alone, until the VMM exits)\n"
"  -q, --quiet        no progress messages\n"
"  -h, --help         this text\n"
"      --version      version\n"
"\n"
"Exit status: 0 stopped by a signal, --duration or the attached VMM's exit;\n"
"1 runtime error; 2 usage error.\n", f);
}

static void opt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error on stderr: it quotes what was given, so it is escaped (ks_text.h). */
static void
opt_error(const char *fmt, ...)
{
	char esc[2048];
	va_list ap;

	va_start(ap, fmt);
	ks_text_vformat(esc, sizeof(esc), fmt, ap);
	va_end(ap);
	fprintf(stderr, "kvmstatsd: %s\n", esc);
}

static int
parse_uint(const char *opt, const char *arg, unsigned long min, unsigned long max,
	   int base, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, base);
	if (errno || end == arg || *end != '\0' || arg[0] == '-' || arg[0] == '+' ||
	    v < min || v > max) {
		if (base == 8)
			opt_error("%s: \"%s\" is not a number from %#lo to "
				"%#lo (octal)", opt, arg, min, max);
		else
			opt_error("%s: \"%s\" is not a number from %lu to %lu",
				opt, arg, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* A name, or else a number: "no such group" for what is not a number either. */
static bool
is_number(const char *arg)
{
	return arg[0] != '\0' && strspn(arg, "0123456789") == strlen(arg);
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
	if (!is_number(arg)) {
		opt_error("--group: no group named \"%s\" (getent group "
			"lists them; a numeric gid is taken as it is)", arg);
		return -1;
	}
	if (parse_uint("--group", arg, 0, UINT_MAX - 1, 10, &v) < 0)
		return -1;
	*gid = (gid_t)v;
	return 0;
}

static int
parse_user(const char *arg, uid_t *uid)
{
	struct passwd *pw = getpwnam(arg);
	unsigned long v;

	if (pw) {
		*uid = pw->pw_uid;
		return 0;
	}
	if (!is_number(arg)) {
		opt_error("--allow-uid: no user named \"%s\" (getent passwd "
			"lists them; a numeric uid is taken as it is)", arg);
		return -1;
	}
	if (parse_uint("--allow-uid", arg, 0, UINT_MAX - 1, 10, &v) < 0)
		return -1;
	*uid = (uid_t)v;
	return 0;
}

/* --qmp: a Unix socket path; whether QEMU serves it is found out when asked. */
static int
parse_qmp(const char *arg, const char **out)
{
	struct sockaddr_un sa;

	if (arg[0] == '\0' || strlen(arg) >= sizeof(sa.sun_path)) {
		opt_error("--qmp \"%s\": a QMP socket path of 1 to %zu bytes", arg,
			  sizeof(sa.sun_path) - 1);
		return -1;
	}
	*out = arg;
	return 0;
}

/* --name: a VM name every reader can address (ks_shmdir.h), "kvmstats." dropped. */
static int
parse_name(const char *arg, const char **out)
{
	const char *name = ks_vm_name_of(arg);
	char why[128];

	if (ks_vm_name_fault(name, why, sizeof(why)) != NULL) {
		opt_error("--name \"%s\": the VM name %s; readers address the "
			"VM as kvmstats.NAME, so it must be 1 to %d bytes of printable text, "
			"without '/', starting neither with '.' nor (after one kvmstats. "
			"prefix) with kvmstats. again", arg, why, KVMSTATS_VM_NAME_MAX);
		return -1;
	}
	*out = name;
	return 0;
}

/* An AF_UNIX socket path has room for 107 bytes. */
static int
parse_listen(const char *arg, const char **out)
{
	if (arg[0] == '\0' || strlen(arg) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		opt_error("--listen: \"%s\" is %s: a socket path is 1 to %zu "
			"bytes", arg, arg[0] ? "too long" : "empty",
			sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	*out = arg;
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
		opt_error("--duration: \"%s\" is not a positive number of seconds",
			arg);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_SIMULATE = 256, OPT_SIM_HZ, OPT_SPAWN_VM, OPT_WAKE_US, OPT_FALLBACK,
	OPT_ATTACH, OPT_RESCAN_MS, OPT_LISTEN, OPT_ALLOW_UID, OPT_SOCKET_MODE,
	OPT_HZ, OPT_RING_DEPTH, OPT_NAME, OPT_DIR, OPT_MODE, OPT_GROUP, OPT_KEEP,
	OPT_DURATION, OPT_VERSION, OPT_MAX_PER_UID, OPT_QMP, OPT_DEBUGFS, OPT_SCHED_HZ,
};

static const struct option long_options[] = {
	{ "simulate", required_argument, NULL, OPT_SIMULATE },
	{ "sim-hz", required_argument, NULL, OPT_SIM_HZ },
	{ "spawn-vm", required_argument, NULL, OPT_SPAWN_VM },
	{ "wake-us", required_argument, NULL, OPT_WAKE_US },
	{ "fallback-simulate", no_argument, NULL, OPT_FALLBACK },
	{ "attach", required_argument, NULL, OPT_ATTACH },
	{ "rescan-ms", required_argument, NULL, OPT_RESCAN_MS },
	{ "qmp", required_argument, NULL, OPT_QMP },
	{ "debugfs", required_argument, NULL, OPT_DEBUGFS },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "allow-uid", required_argument, NULL, OPT_ALLOW_UID },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "max-conns-per-uid", required_argument, NULL, OPT_MAX_PER_UID },
	{ "hz", required_argument, NULL, OPT_HZ },
	{ "sched-hz", required_argument, NULL, OPT_SCHED_HZ },
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

/* Sources and names are given once: a second one is a mistake, not "last wins". */
static const char *
option_name(int c)
{
	for (const struct option *lo = long_options; lo->name != NULL; lo++)
		if (lo->val == c)
			return lo->name;
	return "?";
}

static int
once(int c, unsigned *seen)
{
	unsigned bit = 1u << (c - OPT_SIMULATE);

	if (*seen & bit) {
		opt_error("--%s given twice: give it once (each kind of source "
			"once: --simulate, --spawn-vm, --attach, --listen)", option_name(c));
		return -1;
	}
	*seen |= bit;
	return 0;
}

/* One option; Return: 0, 1 (help/version done), -1 (usage error, printed). */
static int
one_option(int c, char **argv, struct options *o, unsigned *seen)
{
	unsigned long v;

	switch (c) {
	case OPT_SIMULATE: case OPT_SPAWN_VM: case OPT_ATTACH: case OPT_LISTEN:
	case OPT_NAME: case OPT_DIR: case OPT_QMP: case OPT_DEBUGFS:
		if (once(c, seen) < 0)
			return -1;
		break;
	default:
		break;
	}
	switch (c) {
	case OPT_SIMULATE:
		if (parse_uint("--simulate", optarg, 1, KS_SIM_MAX_VCPUS, 10, &v) < 0)
			return -1;
		o->simulate = (unsigned)v;
		return 0;
	case OPT_SIM_HZ:
		if (parse_uint("--sim-hz", optarg, 1, 100000, 10, &v) < 0)
			return -1;
		o->sim_hz = (unsigned)v;
		return 0;
	case OPT_SPAWN_VM:
		if (parse_uint("--spawn-vm", optarg, 1, KS_OWN_VM_MAX_VCPUS, 10, &v) < 0)
			return -1;
		o->spawn_vm = (unsigned)v;
		return 0;
	case OPT_WAKE_US:
		if (parse_uint("--wake-us", optarg, 100, 10000000, 10, &v) < 0)
			return -1;
		o->wake_us = (unsigned)v;
		return 0;
	case OPT_FALLBACK:
		o->fallback_simulate = true;
		return 0;
	case OPT_ATTACH:
		if (parse_uint("--attach", optarg, 1, INT_MAX, 10, &v) < 0)
			return -1;
		o->attach = (pid_t)v;
		return 0;
	case OPT_SCHED_HZ:
		if (parse_uint("--sched-hz", optarg, 0, KS_SCHED_HZ_MAX, 10, &v) < 0)
			return -1;
		o->sched_hz = (unsigned)v;
		return 0;
	case OPT_RESCAN_MS:
		if (parse_uint("--rescan-ms", optarg, 10, 3600000, 10, &v) < 0)
			return -1;
		o->rescan_ms = (unsigned)v;
		return 0;
	case OPT_LISTEN:
		return parse_listen(optarg, &o->listen);
	case OPT_QMP:
		return parse_qmp(optarg, &o->qmp);
	case OPT_DEBUGFS:
		if (optarg[0] == '\0') {
			opt_error("--debugfs needs a directory, or none");
			return -1;
		}
		o->debugfs = strcmp(optarg, "none") == 0 ? NULL : optarg;
		o->debugfs_given = true;
		return 0;
	case OPT_ALLOW_UID:
		if (o->nr_allow == KS_MAX_ALLOW_UIDS) {
			opt_error("--allow-uid: at most %d uids",
				KS_MAX_ALLOW_UIDS);
			return -1;
		}
		return parse_user(optarg, &o->allow[o->nr_allow++]);
	case OPT_SOCKET_MODE:
		if (parse_uint("--socket-mode", optarg, 0, 0777, 8, &v) < 0)
			return -1;
		o->socket_mode = (mode_t)v;
		return 0;
	case OPT_MAX_PER_UID:
		if (parse_uint("--max-conns-per-uid", optarg, 1, 1024, 10, &v) < 0)
			return -1;
		o->max_per_uid = (unsigned)v;
		return 0;
	case OPT_HZ:
		if (parse_uint("--hz", optarg, KS_HZ_MIN, KS_HZ_MAX, 10, &v) < 0)
			return -1;
		o->cfg.hz = (unsigned)v;
		return 0;
	case OPT_RING_DEPTH:
		if (parse_uint("--ring-depth", optarg, KS_RING_DEPTH_MIN, KS_RING_DEPTH_MAX,
			       10, &v) < 0)
			return -1;
		o->cfg.ring_depth = (unsigned)v;
		o->cfg.ring_min_bytes = 0;	/* asked for: exactly that */
		return 0;
	case OPT_NAME:
		return parse_name(optarg, &o->name);
	case OPT_DIR:
		if (optarg[0] == '\0') {
			fputs("kvmstatsd: --dir needs a directory\n", stderr);
			return -1;
		}
		o->cfg.dir = optarg;
		return 0;
	case OPT_MODE:
		if (parse_uint("--mode", optarg, 0, 0777, 8, &v) < 0)
			return -1;
		if (v & 022) {
			opt_error("--mode %s lets group or others write the "
				"segments, and readers refuse such segments: use a mode such as "
				"0640 or 0644", optarg);
			return -1;
		}
		o->cfg.mode = (mode_t)v;
		return 0;
	case OPT_GROUP:
		return parse_group(optarg, &o->cfg.gid);
	case OPT_KEEP:
		o->cfg.keep = true;
		return 0;
	case OPT_DURATION:
		return parse_duration(optarg, &o->duration);
	case 'q':
		o->quiet = true;
		return 0;
	case 'h':
		usage(stdout);
		return 1;
	case OPT_VERSION:
		printf("kvmstatsd %s (shared-memory ABI %d.%d)\n", KS_VERSION, KS_ABI_MAJOR,
		       KS_ABI_MINOR);
		return 1;
	case ':':
		opt_error("%s needs an argument; see kvmstatsd --help",
			argv[optind - 1]);
		return -1;
	default:
		opt_error("unknown option \"%s\"; see kvmstatsd --help",
			argv[optind - 1]);
		return -1;
	}
}

/* Combinations that cannot work, said before anything starts. */
static int
check_combination(const struct options *o)
{
	unsigned single = (o->simulate > 0) + (o->spawn_vm > 0) + (o->attach > 0);

	if (single == 0 && o->listen == NULL) {
		fputs("kvmstatsd: nothing to publish: give a source (--spawn-vm VCPUS, "
		      "--simulate VCPUS, --attach PID or --listen PATH); see kvmstatsd --help\n",
		      stderr);
		return -1;
	}
	if (o->name && (single != 1 || o->listen)) {
		fputs("kvmstatsd: --name needs exactly one VM source (--spawn-vm, --simulate "
		      "or --attach, without --listen)\n", stderr);
		return -1;
	}
	if (o->debugfs_given && o->attach == 0) {
		fputs("kvmstatsd: --debugfs only goes with --attach\n", stderr);
		return -1;
	}
	if (o->qmp && o->attach == 0) {
		fputs("kvmstatsd: --qmp only goes with --attach (the shim takes "
		      "KVMSTATS_PRELOAD_QMP)\n", stderr);
		return -1;
	}
	if (o->fallback_simulate && o->spawn_vm == 0) {
		fputs("kvmstatsd: --fallback-simulate only goes with --spawn-vm\n", stderr);
		return -1;
	}
	if (o->nr_allow && o->listen == NULL) {
		fputs("kvmstatsd: --allow-uid only goes with --listen\n", stderr);
		return -1;
	}
	if (o->max_per_uid && o->listen == NULL) {
		fputs("kvmstatsd: --max-conns-per-uid only goes with --listen\n", stderr);
		return -1;
	}
	return 0;
}

int
parse_options(int argc, char **argv, struct options *o)
{
	unsigned seen = 0;
	int c, ret;

	ks_engine_config_init(&o->cfg);
	o->sim_hz = 1000;
	o->wake_us = 1000;
	o->rescan_ms = 1000;
	o->sched_hz = KS_SCHED_HZ_DEFAULT;
	o->debugfs = KS_DEBUGFS_DEFAULT;
	o->socket_mode = 0660;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", long_options, NULL)) != -1) {
		ret = one_option(c, argv, o, &seen);
		if (ret != 0)
			return ret;
	}
	if (optind < argc) {
		opt_error("unexpected argument \"%s\"; see kvmstatsd --help",
			argv[optind]);
		return -1;
	}
	return check_combination(o);
}
