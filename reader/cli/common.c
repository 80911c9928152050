/* SPDX-License-Identifier: MIT */
/*
 * common.c - options, messages and segment access shared by the
 * subcommands (cli.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Enough tries to get past a publisher that lapped the ring a few times. */
#define KS_CLI_CUT_TRIES	16
/* How many VM names an "ambiguous VM" message lists before "...". */
#define KS_CLI_LIST_NAMES	8

static void __attribute__((format(printf, 2, 0)))
vmessage(const struct ks_cli *cli, const char *fmt, va_list ap)
{
	fputs("kvmstats: ", stderr);
	if (cli && cli->cmd)
		fprintf(stderr, "%s: ", cli->cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
ks_cli_error(const struct ks_cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(cli, fmt, ap);
	va_end(ap);
}

int
ks_cli_usage_error(const struct ks_cli *cli, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli && cli->cmd)
		ks_cli_error(cli, "%s; try 'kvmstats %s --help'", msg, cli->cmd);
	else
		ks_cli_error(cli, "%s; try 'kvmstats --help'", msg);
	return KS_EXIT_USAGE;
}

int
ks_cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull() would take " 1", "+1" and even "-1" (as ULLONG_MAX). */
	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int
parse_owner(struct ks_cli *cli, const char *arg)
{
	uint64_t v;

	/* (uid_t)-1 is "no uid" to the kernel and "default" to the library. */
	if (ks_cli_parse_u64(arg, (uid_t)-1 - 1, &v) < 0)
		return ks_cli_usage_error(cli, "--owner '%s': not a numeric uid "
					  "(0 to %u)", arg, (unsigned)((uid_t)-1 - 1));
	cli->owner = (uid_t)v;
	return KS_EXIT_OK;
}

static int
bad_option(const struct ks_cli *cli, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return ks_cli_usage_error(cli, "option '%s' needs a value", arg);
	if (optopt != 0)
		return ks_cli_usage_error(cli, "unknown option '-%c'", optopt);
	return ks_cli_usage_error(cli, "unknown option '%s'", arg);
}

int
ks_cli_getopt(struct ks_cli *cli, int argc, char **argv, const char *shortopts,
	      const struct option *longopts, void (*help)(void), int *rc)
{
	int c;

	opterr = 0;	/* our messages, in our format */
	for (;;) {
		c = getopt_long(argc, argv, shortopts, longopts, NULL);
		switch (c) {
		case 'h':
			help();
			*rc = KS_EXIT_HELP;
			return -2;
		case 'd':
			if (optarg[0] == '\0') {
				*rc = ks_cli_usage_error(cli, "--dir needs a directory");
				return -2;
			}
			cli->dir = optarg;
			continue;
		case 'o':
			*rc = parse_owner(cli, optarg);
			if (*rc != KS_EXIT_OK)
				return -2;
			continue;
		case '?':
		case ':':
			*rc = bad_option(cli, c, argv);
			return -2;
		default:
			return c;
		}
	}
}

const char *
ks_cli_dir(const struct ks_cli *cli)
{
	const char *env = getenv("KVMSTATS_SHM_DIR");

	if (cli->dir)
		return cli->dir;
	return env && env[0] ? env : KVMSTATS_DEFAULT_DIR;
}

bool
ks_cli_parse_kind(const char *s, enum kvmstats_target_kind *kind)
{
	if (strcmp(s, "vm") == 0)
		*kind = KVMSTATS_TARGET_VM;
	else if (strcmp(s, "vcpu") == 0)
		*kind = KVMSTATS_TARGET_VCPU;
	else
		return false;
	return true;
}

/* The names of the segments in a directory, for "which VM?". */
struct seg_names {
	unsigned n;
	char first[256];
	char listed[KS_CLI_LIST_NAMES * 64];
};

static const char *
vm_of_file(const char *file)
{
	size_t plen = strlen(KVMSTATS_SEGMENT_PREFIX);

	return strncmp(file, KVMSTATS_SEGMENT_PREFIX, plen) == 0 ? file + plen : file;
}

static int
collect_name(const char *segment_file, void *arg)
{
	struct seg_names *sn = arg;
	size_t used = strlen(sn->listed);

	if (sn->n == 0)
		snprintf(sn->first, sizeof(sn->first), "%s", segment_file);
	if (sn->n < KS_CLI_LIST_NAMES)
		snprintf(sn->listed + used, sizeof(sn->listed) - used, "%s%s",
			 sn->n ? ", " : "", vm_of_file(segment_file));
	else if (sn->n == KS_CLI_LIST_NAMES)
		snprintf(sn->listed + used, sizeof(sn->listed) - used, ", ...");
	sn->n++;
	return 0;
}

/* With no VM named: the only segment there is, or a message naming the choices. */
static int
pick_only_vm(const struct ks_cli *cli, struct seg_names *sn)
{
	struct kvmstats_error err = { 0 };
	int r;

	memset(sn, 0, sizeof(*sn));
	r = kvmstats_enumerate(cli->dir, collect_name, sn, &err);
	if (r < 0) {
		ks_cli_error(cli, "%s", err.msg[0] ? err.msg : strerror(-r));
		return KS_EXIT_RUNTIME;
	}
	if (sn->n == 0) {
		ks_cli_error(cli, "no VM segments in %s; is kvmstatsd running? "
			     "(use --dir or $KVMSTATS_SHM_DIR for another directory)",
			     ks_cli_dir(cli));
		return KS_EXIT_RUNTIME;
	}
	if (sn->n > 1)
		return ks_cli_usage_error(cli, "%u VMs in %s (%s): name one",
					  sn->n, ks_cli_dir(cli), sn->listed);
	return KS_EXIT_OK;
}

static int
attach_error(const struct ks_cli *cli, const char *vm, int r,
	     const struct kvmstats_error *err)
{
	const char *hint = "";

	if (r == -ENOENT)
		hint = "; 'kvmstats list' shows the VMs";
	else if (r == -EPERM)
		hint = "; if you trust that owner, pass --owner UID";

	ks_cli_error(cli, "VM '%s': %s%s", vm, err->msg[0] ? err->msg : strerror(-r),
		     hint);
	return KS_EXIT_RUNTIME;
}

int
ks_cli_open_vm(const struct ks_cli *cli, const char *vm,
	       struct kvmstats_segment **segp)
{
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err = { 0 };
	struct kvmstats_status st;
	struct seg_names sn;
	int r;

	if (vm == NULL) {
		r = pick_only_vm(cli, &sn);
		if (r != KS_EXIT_OK)
			return r;
		vm = sn.first;
	}
	kvmstats_attach_opts_init(&opts);
	opts.dir = cli->dir;
	opts.owner = cli->owner;
	r = kvmstats_attach(vm, &opts, segp, &err);
	if (r < 0)
		return attach_error(cli, vm_of_file(vm), r, &err);
	/* A restarted publisher replaced the segment: follow it, a few times at most. */
	for (int i = 0; i < 3; i++) {
		kvmstats_status(*segp, &st);
		if (st.state != KVMSTATS_STATE_SUPERSEDED)
			break;
		r = kvmstats_reattach(segp, &err);
		if (r < 0)
			return attach_error(cli, vm_of_file(vm), r, &err);
	}
	return KS_EXIT_OK;
}

int
ks_cli_require_live(const struct ks_cli *cli, const struct kvmstats_segment *seg)
{
	struct kvmstats_status st;

	kvmstats_status(seg, &st);
	if (st.state == KVMSTATS_STATE_ENDED) {
		ks_cli_error(cli, "VM '%s' has ended: its publisher marked the segment "
			     "ended; 'kvmstats list' shows the VMs that run",
			     kvmstats_info(seg)->vm_name);
		return KS_EXIT_RUNTIME;
	}
	return KS_EXIT_OK;
}

int
ks_cli_read_cut(const struct ks_cli *cli, const struct kvmstats_segment *seg,
		uint64_t **valuesp)
{
	size_t n = kvmstats_cut_words(seg);
	uint64_t *values = calloc(n + 1, sizeof(*values));
	int r = -EAGAIN;

	if (!values) {
		ks_cli_error(cli, "out of memory for %zu values", n);
		return KS_EXIT_RUNTIME;
	}
	for (int i = 0; i < KS_CLI_CUT_TRIES && r == -EAGAIN; i++)
		r = kvmstats_read_cut(seg, values, n, NULL);
	if (r == 0) {
		*valuesp = values;
		return KS_EXIT_OK;
	}
	free(values);
	if (r == -ENODATA)
		ks_cli_error(cli, "VM '%s' has no sample yet: its publisher has not "
			     "finished a sweep; retry in a moment", kvmstats_info(seg)->vm_name);
	else if (r == -EAGAIN)
		ks_cli_error(cli, "VM '%s': no consistent sample after %d tries: the "
			     "publisher keeps lapping its ring; retry, or give it a "
			     "deeper ring", kvmstats_info(seg)->vm_name,
			     KS_CLI_CUT_TRIES * KVMSTATS_READ_RETRIES);
	else
		ks_cli_error(cli, "VM '%s': reading the values failed: %s",
			     kvmstats_info(seg)->vm_name, strerror(-r));
	return KS_EXIT_RUNTIME;
}

int
ks_cli_finish_stdout(const struct ks_cli *cli, int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ks_cli_error(cli, "writing the output failed: %s", strerror(errno));
		return rc == KS_EXIT_OK ? KS_EXIT_RUNTIME : rc;
	}
	return rc;
}

int
ks_cli_check_provider(const struct ks_cli *cli, const struct kvmstats_segment *seg,
		      const char *name)
{
	char have[256] = "";
	size_t used = 0;

	if (name == NULL || kvmstats_provider_lookup(seg, name) >= 0)
		return KS_EXIT_OK;
	for (unsigned i = 0; i < kvmstats_nr_providers(seg) && used < sizeof(have); i++) {
		int n = snprintf(have + used, sizeof(have) - used, "%s%s", i ? ", " : "",
				 kvmstats_provider(seg, i)->name);

		used += n > 0 ? (size_t)n : 0;
	}
	ks_cli_error(cli, "VM '%s' has no provider '%s'; its providers: %s",
		     kvmstats_info(seg)->vm_name, name, have[0] ? have : "none");
	return KS_EXIT_RUNTIME;
}

void
ks_cli_put_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

int
ks_cli_open_live(const struct ks_cli *cli, const char *vm, const char *provider,
		 struct kvmstats_segment **seg)
{
	int rc = ks_cli_open_vm(cli, vm, seg);

	if (rc == KS_EXIT_OK)
		rc = ks_cli_require_live(cli, *seg);
	if (rc == KS_EXIT_OK)
		rc = ks_cli_check_provider(cli, *seg, provider);
	return rc;
}
