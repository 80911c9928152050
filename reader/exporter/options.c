/* SPDX-License-Identifier: MIT */
/* options.c - kvmstats-exporter's command line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter_log.h"
#include "kvmstats/reader.h"
#include "options.h"

static void
usage(FILE *f)
{
	fprintf(f,
"Usage: kvmstats-exporter [OPTIONS]\n"
"Serve the KVM statistics of every VM that kvmstats publishes on this host\n"
"to Prometheus, read from shared memory: no VMM, libvirt or QMP is asked.\n"
"\n"
"  --web.listen-address=ADDR   where to listen: HOST:PORT, [IPV6]:PORT or :PORT\n"
"                              for every address (default " EX_DEFAULT_LISTEN ")\n"
"  --web.telemetry-path=PATH   the metrics' path (default " EX_DEFAULT_PATH ")\n"
"  --web.max-threads=N         threads that serve connections, 1-64 (default 4)\n"
"  --web.max-connections=N     open connections at most, 1-65536 (default 1024)\n"
"  --web.timeout=SECONDS       close a connection idle this long, 1-3600\n"
"                              (default 15)\n"
"  --dir=DIR                   segment directory (default $KVMSTATS_SHM_DIR,\n"
"                              else /dev/shm)\n"
"  --owner=USER                accept segments of this user (a name or a uid);\n"
"                              default: root or the exporter's own user\n"
"  --collector.vcpu            one series per vCPU (labels vcpu, qom_path)\n"
"  --no-collector.vcpu         per-VM sums over the vCPUs (the default)\n"
"  --collector.stats-include=REGEX  export only stats whose name matches\n"
"  --collector.stats-exclude=REGEX  do not export stats whose name matches\n"
"                              (POSIX extended regexes, matched anywhere in the\n"
"                              stat's name as the schema has it: ^halt_ anchors)\n"
"  --once                      write one scrape to stdout and exit\n"
"  --once.openmetrics          the same, in OpenMetrics 1.0\n"
"  -h, --help                  this text\n"
"      --version               version\n"
"\n"
"Formats: the text format 0.0.4, or OpenMetrics 1.0 for a scraper that asks\n"
"for it (Accept).  GET / shows a page that links to the metrics.\n"
"Exit status: 0 stopped by SIGINT or SIGTERM; 1 runtime error; 2 usage error.\n");
}

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ex_say("%s", msg);	/* escaped there */
	fputs("(kvmstats-exporter --help lists the options)\n", stderr);
	return EX_EXIT_USAGE;
}

static int
parse_unsigned(const char *opt, const char *arg, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0 || v < lo || v > hi)
		return usage_error("%s '%s': not a number from %u to %u", opt, arg, lo, hi);
	*out = (unsigned)v;
	return -1;
}

static int
parse_owner(const char *arg, uid_t *owner)
{
	struct passwd *pw;
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*arg >= '0' && *arg <= '9' && *end == '\0' && errno == 0 &&
	    v < (unsigned long long)(uid_t)-1) {
		*owner = (uid_t)v;
		return -1;
	}
	pw = getpwnam(arg);
	if (pw == NULL)
		return usage_error("--owner '%s': no user of that name, nor a uid", arg);
	*owner = pw->pw_uid;
	return -1;
}

static int
parse_regex(const char *opt, const char *arg, regex_t *re, bool *have)
{
	char why[256];
	int rc;

	if (*have)
		regfree(re);
	*have = false;
	rc = regcomp(re, arg, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		regerror(rc, re, why, sizeof(why));
		regfree(re);
		return usage_error("%s '%s': not a regular expression: %s", opt, arg, why);
	}
	*have = true;
	return -1;
}

/* What a URL path may be: '/' then [A-Za-z0-9/._-], no "//" and no "..". */
static int
parse_path(const char *arg, const char **path)
{
	size_t n = strlen(arg);

	if (n < 2 || n > 256 || arg[0] != '/' || strstr(arg, "//") || strstr(arg, ".."))
		return usage_error("--web.telemetry-path '%s': give a path such as /metrics "
				   "(not '/', which is the index page)", arg);
	for (size_t i = 0; i < n; i++) {
		char c = arg[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '.' || c == '_' || c == '-'))
			return usage_error("--web.telemetry-path '%s': only letters, digits and "
					   "/._- may appear in it", arg);
	}
	*path = arg;
	return -1;
}

enum {
	OPT_LISTEN = 256, OPT_PATH, OPT_THREADS, OPT_CONNS, OPT_TIMEOUT, OPT_DIR, OPT_OWNER,
	OPT_VCPU, OPT_NO_VCPU, OPT_INCLUDE, OPT_EXCLUDE, OPT_ONCE, OPT_ONCE_OM, OPT_VERSION,
};

int
ex_parse_options(struct ex_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "web.listen-address", required_argument, NULL, OPT_LISTEN },
		{ "web.telemetry-path", required_argument, NULL, OPT_PATH },
		{ "web.max-threads", required_argument, NULL, OPT_THREADS },
		{ "web.max-connections", required_argument, NULL, OPT_CONNS },
		{ "web.timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "owner", required_argument, NULL, OPT_OWNER },
		{ "collector.vcpu", no_argument, NULL, OPT_VCPU },
		{ "no-collector.vcpu", no_argument, NULL, OPT_NO_VCPU },
		{ "collector.stats-include", required_argument, NULL, OPT_INCLUDE },
		{ "collector.stats-exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "once.openmetrics", no_argument, NULL, OPT_ONCE_OM },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc = -1;

	memset(o, 0, sizeof(*o));
	o->listen = EX_DEFAULT_LISTEN;
	o->path = EX_DEFAULT_PATH;
	o->owner = KVMSTATS_OWNER_DEFAULT;
	o->threads = 4;
	o->max_connections = 1024;
	o->timeout_s = 15;
	opterr = 0;
	optind = 1;
	while (rc < 0 && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (*optarg == '\0' || strlen(optarg) > 300)
				rc = usage_error("--web.listen-address '%s': give HOST:PORT", optarg);
			o->listen = optarg;
			break;
		case OPT_PATH:
			rc = parse_path(optarg, &o->path);
			break;
		case OPT_THREADS:
			rc = parse_unsigned("--web.max-threads", optarg, 1, 64, &o->threads);
			break;
		case OPT_CONNS:
			rc = parse_unsigned("--web.max-connections", optarg, 1, 65536,
					    &o->max_connections);
			break;
		case OPT_TIMEOUT:
			rc = parse_unsigned("--web.timeout", optarg, 1, 3600, &o->timeout_s);
			break;
		case OPT_DIR:
			if (*optarg == '\0')
				rc = usage_error("--dir '': give a directory");
			o->dir = optarg;
			break;
		case OPT_OWNER:
			rc = parse_owner(optarg, &o->owner);
			break;
		case OPT_VCPU:
			o->per_vcpu = true;
			break;
		case OPT_NO_VCPU:
			o->per_vcpu = false;
			break;
		case OPT_INCLUDE:
			rc = parse_regex("--collector.stats-include", optarg, &o->include,
					 &o->have_include);
			break;
		case OPT_EXCLUDE:
			rc = parse_regex("--collector.stats-exclude", optarg, &o->exclude,
					 &o->have_exclude);
			break;
		case OPT_ONCE:
			o->once = true;
			o->once_format = EXPO_TEXT;
			break;
		case OPT_ONCE_OM:
			o->once = true;
			o->once_format = EXPO_OPENMETRICS;
			break;
		case 'h':
			usage(stdout);
			rc = EX_EXIT_OK;
			break;
		case OPT_VERSION:
			printf("kvmstats-exporter %s\n", KS_VERSION);
			rc = EX_EXIT_OK;
			break;
		case ':':
			rc = usage_error("%s needs a value", argv[optind - 1]);
			break;
		default:
			/*
			 * getopt_long() says '?' for an unknown option, an
			 * ambiguous abbreviation, and a value given to an option
			 * that takes none; optopt is a short option's letter only
			 * for the short ones ("-x").
			 */
			if (optopt > 0 && optopt < 256 && argv[optind - 1][1] != '-')
				rc = usage_error("unknown option '-%c'", optopt);
			else if (optopt != 0)
				rc = usage_error("'%s': this option takes no value", argv[optind - 1]);
			else
				rc = usage_error("'%s': no such option (or an abbreviation of more "
						 "than one)", argv[optind - 1]);
			break;
		}
	}
	if (rc < 0 && optind < argc)
		rc = usage_error("unexpected argument '%s': every option starts with --",
				 argv[optind]);
	if (rc >= 0)
		ex_free_options(o);
	return rc;
}

void
ex_free_options(struct ex_options *o)
{
	if (o->have_include)
		regfree(&o->include);
	if (o->have_exclude)
		regfree(&o->exclude);
	o->have_include = o->have_exclude = false;
}
