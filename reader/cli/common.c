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
#include "ks_shmdir.h"
#include "ks_text.h"

/* Enough tries to get past a publisher that lapped the ring a few times. */
#define KS_CLI_CUT_TRIES	16
/* How many VM names an "ambiguous VM" message lists before "...". */
#define KS_CLI_LIST_NAMES	8

/*
 * Messages quote names from files and segments: the whole line is escaped
 * (ks_text.h), so that none of them can move the cursor or forge a line.
 */
static void __attribute__((format(printf, 2, 0)))
vmessage(const struct ks_cli *cli, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fputs("kvmstats: ", stderr);
	if (cli && cli->cmd)
		fprintf(stderr, "%s: ", cli->cmd);
	ks_text_fputs(stderr, msg);
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

void
ks_cli_note_no_vm_stats(const struct ks_cli *cli, const struct kvmstats_segment *seg)
{
	const char *note = kvmstats_note(seg);

	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++)
		if (kvmstats_target(seg, t)->kind == KVMSTATS_TARGET_VM)
			return;
	/* The publisher's note says "no VM stats: <why>". */
	if (note[0] != '\0')
		ks_cli_error(cli, "VM '%s': %s", kvmstats_info(seg)->vm_name, note);
	else
		ks_cli_error(cli, "VM '%s' has no VM-level stats", kvmstats_info(seg)->vm_name);
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
		case 'S':
			cli->stale_ok = true;
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
	return ks_shm_dir(cli->dir);
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

/*
 * ---- which VM: the one named, or the only one there is -------------------
 */

/* Would the command use this segment's values (usable), or just its schema? */
static bool
usable(const struct ks_cli *cli, bool values, const struct kvmstats_segment *seg)
{
	struct kvmstats_liveness lv;

	if (!values)
		return true;
	if (kvmstats_liveness(seg, &lv) < 0 || lv.health == KVMSTATS_HEALTH_BROKEN)
		return false;
	return lv.health == KVMSTATS_HEALTH_LIVE || cli->stale_ok;
}

/* What the directory holds, for a command that did not name a VM. */
struct candidates {
	const struct ks_cli *cli;
	bool values;
	unsigned files, attached, usable;
	char first_error[512];		/* of the files that would not attach */
	char failed[256];		/* the last of them */
	char use[256];			/* the last usable one */
	char other[256];		/* the last one attached but not usable */
	char listed[KS_CLI_LIST_NAMES * 64];	/* the usable ones, for "name one" */
};

static void
add_listed(struct candidates *c, const char *file)
{
	size_t used = strlen(c->listed);

	if (c->usable <= KS_CLI_LIST_NAMES)
		snprintf(c->listed + used, sizeof(c->listed) - used, "%s%s",
			 c->usable > 1 ? ", " : "", ks_vm_name_of(file));
	else if (c->usable == KS_CLI_LIST_NAMES + 1)
		snprintf(c->listed + used, sizeof(c->listed) - used, ", ...");
}

/* Only segments that attach count: a planted empty file is no choice. */
static int
consider(const char *segment_file, void *arg)
{
	struct candidates *c = arg;
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err = { 0 };
	struct kvmstats_segment *seg;

	c->files++;
	kvmstats_attach_opts_init(&opts);
	opts.dir = c->cli->dir;
	opts.owner = c->cli->owner;
	if (kvmstats_attach(segment_file, &opts, &seg, &err) < 0) {
		if (!c->first_error[0])
			snprintf(c->first_error, sizeof(c->first_error), "%s", err.msg);
		snprintf(c->failed, sizeof(c->failed), "%s", segment_file);
		return 0;
	}
	c->attached++;
	if (usable(c->cli, c->values, seg)) {
		c->usable++;
		snprintf(c->use, sizeof(c->use), "%s", segment_file);
		add_listed(c, segment_file);
	} else {
		snprintf(c->other, sizeof(c->other), "%s", segment_file);
	}
	kvmstats_detach(&seg);
	return 0;
}

/*
 * With no VM named: the only usable segment there is (for @values: live,
 * or any that --stale-ok accepts); else the only one that attaches, whose
 * refusal then says why; else a message naming the choices.
 */
static int
pick_only_vm(const struct ks_cli *cli, bool values, char *vm, size_t len)
{
	struct candidates c = { .cli = cli, .values = values };
	struct kvmstats_error err = { 0 };
	int r;

	r = kvmstats_enumerate(cli->dir, consider, &c, &err);
	if (r < 0) {
		ks_cli_error(cli, "%s", err.msg[0] ? err.msg : strerror(-r));
		return KS_EXIT_RUNTIME;
	}
	if (c.usable > 1)
		return ks_cli_usage_error(cli, "%u VMs in %s (%s): name one",
					  c.usable, ks_cli_dir(cli), c.listed);
	/* The only file there is, attached or not: its own error says most. */
	if (c.usable == 1 || c.attached == 1 || c.files == 1) {
		snprintf(vm, len, "%s", c.usable == 1 ? c.use : c.attached == 1 ? c.other : c.failed);
		return KS_EXIT_OK;
	}
	if (c.attached > 1) {
		ks_cli_error(cli, "no live VM in %s: %u segments, none of them live; name "
			     "one ('kvmstats list' shows their states; --stale-ok reads the "
			     "last values of a stale or dead one)", ks_cli_dir(cli), c.attached);
		return KS_EXIT_RUNTIME;
	}
	if (c.files > 0) {
		ks_cli_error(cli, "no VM segment in %s can be read (%u files): %s; 'kvmstats "
			     "list' shows why for each", ks_cli_dir(cli), c.files, c.first_error);
		return KS_EXIT_RUNTIME;
	}
	ks_cli_error(cli, "no VM segments in %s; is kvmstatsd running? "
		     "(use --dir or $KVMSTATS_SHM_DIR for another directory)",
		     ks_cli_dir(cli));
	return KS_EXIT_RUNTIME;
}

void
ks_cli_attach_why(const char *vm, int r, const struct kvmstats_error *err, char *buf,
		  size_t len)
{
	const char *hint = "";

	if (r == -ENOENT)
		hint = "; 'kvmstats list' shows the VMs";
	else if (r == -EPERM)	/* only for an owner the reader does not expect */
		hint = "; if you trust that owner, pass --owner UID";
	snprintf(buf, len, "VM '%s': %s%s", vm, err->msg[0] ? err->msg : strerror(-r), hint);
}

static int
attach_error(const struct ks_cli *cli, const char *vm, int r,
	     const struct kvmstats_error *err)
{
	char msg[768];

	ks_cli_attach_why(vm, r, err, msg, sizeof(msg));
	ks_cli_error(cli, "%s", msg);
	return KS_EXIT_RUNTIME;
}

int
ks_cli_check_vm_name(const struct ks_cli *cli, const char *vm)
{
	char why[128];

	if (ks_vm_name_fault(ks_vm_name_of(vm), why, sizeof(why)) != NULL)
		return ks_cli_usage_error(cli, "VM '%s' %s: no segment can have that name",
					  vm, why);
	return KS_EXIT_OK;
}

int
ks_cli_attach_follow(const struct ks_cli *cli, const char *vm, struct kvmstats_segment **segp,
		     struct kvmstats_error *err)
{
	struct kvmstats_attach_opts opts;
	int r;

	kvmstats_attach_opts_init(&opts);
	opts.dir = cli->dir;
	opts.owner = cli->owner;
	r = kvmstats_attach(vm, &opts, segp, err);
	if (r < 0)
		return r;
	/* A newer generation or a restarted publisher has the name: a few hops at most. */
	for (int i = 0; i < 3; i++) {
		struct kvmstats_status st;

		kvmstats_status(*segp, &st);
		if (st.state != KVMSTATS_STATE_SUPERSEDED)
			break;
		r = kvmstats_follow(segp, err);
		if (r < 0) {
			kvmstats_detach(segp);
			return r;
		}
		if (r == 0)
			break;
	}
	return 0;
}

static int
open_vm(const struct ks_cli *cli, const char *vm, bool values, struct kvmstats_segment **segp)
{
	struct kvmstats_error err = { 0 };
	char only[256];
	int r;

	*segp = NULL;
	if (vm == NULL) {
		r = pick_only_vm(cli, values, only, sizeof(only));
		if (r != KS_EXIT_OK)
			return r;
		vm = only;
	} else if ((r = ks_cli_check_vm_name(cli, vm)) != KS_EXIT_OK) {
		return r;
	}
	r = ks_cli_attach_follow(cli, vm, segp, &err);
	if (r < 0)
		return attach_error(cli, ks_vm_name_of(vm), r, &err);
	return KS_EXIT_OK;
}

int
ks_cli_open_vm(const struct ks_cli *cli, const char *vm, struct kvmstats_segment **segp)
{
	return open_vm(cli, vm, false, segp);
}

/*
 * Values are shown only from a live publisher; a stale, dead or ended
 * one's last values only with --stale-ok, which says so on stderr.
 */
/* "340 ms", "12.3 s": an age for a person. */
static const char *
age_text(uint64_t ns, char *buf, size_t len)
{
	if (ns < 10 * 1000000000ull)
		snprintf(buf, len, "%llu ms", (unsigned long long)(ns / 1000000));
	else
		snprintf(buf, len, "%.1f s", (double)ns / 1e9);
	return buf;
}

int
ks_cli_health_why(const struct kvmstats_segment *seg, char *why, size_t len)
{
	const struct kvmstats_segment_info *in = kvmstats_info(seg);
	struct kvmstats_liveness lv;
	char age[32];

	if (kvmstats_liveness(seg, &lv) < 0)
		lv.health = KVMSTATS_HEALTH_BROKEN;
	age_text(lv.age_ns, age, sizeof(age));
	switch (lv.health) {
	case KVMSTATS_HEALTH_LIVE:
		why[0] = '\0';
		return KVMSTATS_HEALTH_LIVE;
	case KVMSTATS_HEALTH_STALE:
		snprintf(why, len, "is stale: its publisher (pid %d) has not swept for "
			 "%s (it is stopped, starved or stuck)", (int)in->publisher_pid, age);
		break;
	case KVMSTATS_HEALTH_DEAD:
		snprintf(why, len, "is dead: its publisher (pid %d) is gone without "
			 "ending it; its last sweep is %s old", (int)in->publisher_pid, age);
		break;
	case KVMSTATS_HEALTH_ENDED:
		snprintf(why, len, "has ended: its publisher marked the segment ended");
		break;
	case KVMSTATS_HEALTH_SUPERSEDED:
		snprintf(why, len, "was superseded, and its successor could not be "
			 "followed");
		break;
	default:
		snprintf(why, len, "has a segment that was truncated or damaged after it "
			 "was made: its values are gone");
		return KVMSTATS_HEALTH_BROKEN;
	}
	return lv.health;
}

static int
require_usable(const struct ks_cli *cli, const struct kvmstats_segment *seg)
{
	const char *vm = kvmstats_info(seg)->vm_name;
	char why[256];

	switch (ks_cli_health_why(seg, why, sizeof(why))) {
	case KVMSTATS_HEALTH_LIVE:
		return KS_EXIT_OK;
	case KVMSTATS_HEALTH_BROKEN:
		ks_cli_error(cli, "VM '%s' %s; 'kvmstats list' shows the VMs", vm, why);
		return KS_EXIT_RUNTIME;
	default:
		break;
	}
	if (!cli->stale_ok) {
		ks_cli_error(cli, "VM '%s' %s; --stale-ok shows its last values anyway, "
			     "'kvmstats list' shows the VMs that run", vm, why);
		return KS_EXIT_RUNTIME;
	}
	ks_cli_error(cli, "warning: VM '%s' %s: these are its last values", vm, why);
	return KS_EXIT_OK;
}

int
ks_cli_try_read_cut(const struct kvmstats_segment *seg, uint64_t **valuesp, char *msg,
		    size_t len)
{
	size_t n = kvmstats_cut_words(seg);
	uint64_t *values = calloc(n + 1, sizeof(*values));
	struct kvmstats_status before, after;
	int r = -EAGAIN;

	if (!values) {
		snprintf(msg, len, "out of memory for %zu values", n);
		return -1;
	}
	kvmstats_status(seg, &before);
	for (int i = 0; i < KS_CLI_CUT_TRIES && r == -EAGAIN; i++)
		r = kvmstats_read_cut(seg, values, n, NULL);
	if (r == 0) {
		*valuesp = values;
		return 0;
	}
	free(values);
	kvmstats_status(seg, &after);
	if (r == -ENODATA)
		snprintf(msg, len, "VM '%s' has no sample yet: its publisher has not "
			     "finished a sweep; retry in a moment", kvmstats_info(seg)->vm_name);
	else if (r == -EAGAIN && after.sweep == before.sweep)
		/* No sweep went by, so nothing lapped us: a slot stays odd. */
		snprintf(msg, len, "VM '%s': a slot of sweep %llu stays half-written: its "
			     "publisher stopped in the middle of writing it, or the segment is "
			     "damaged; retry", kvmstats_info(seg)->vm_name,
			     (unsigned long long)after.sweep);
	else if (r == -EAGAIN)
		snprintf(msg, len, "VM '%s': no consistent sample after %d tries: the "
			     "publisher keeps lapping its ring; retry, or give it a "
			     "deeper ring", kvmstats_info(seg)->vm_name,
			     KS_CLI_CUT_TRIES * KVMSTATS_READ_RETRIES);
	else if (r == -EIO)
		snprintf(msg, len, "VM '%s': its segment was truncated under this reader: its "
			     "values are gone; 'kvmstats list' shows the VMs",
			     kvmstats_info(seg)->vm_name);
	else
		snprintf(msg, len, "VM '%s': reading the values failed: %s",
			     kvmstats_info(seg)->vm_name, strerror(-r));
	return -1;
}

int
ks_cli_read_cut(const struct ks_cli *cli, const struct kvmstats_segment *seg,
		uint64_t **valuesp)
{
	char msg[512];

	if (ks_cli_try_read_cut(seg, valuesp, msg, sizeof(msg)) == 0)
		return KS_EXIT_OK;
	ks_cli_error(cli, "%s", msg);
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

int
ks_cli_open_live(const struct ks_cli *cli, const char *vm, const char *provider,
		 struct kvmstats_segment **seg)
{
	int rc = open_vm(cli, vm, true, seg);

	if (rc == KS_EXIT_OK)
		rc = require_usable(cli, *seg);
	if (rc == KS_EXIT_OK)
		rc = ks_cli_check_provider(cli, *seg, provider);
	return rc;
}
