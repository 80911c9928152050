/* SPDX-License-Identifier: MIT */
/*
 * main.c - the kvmstats command: global options, then one subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ks_abi.h"

struct subcommand {
	const char *name;
	int (*run)(struct ks_cli *cli, int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "list",   ks_cmd_list,   "the VMs that publish stats, with their state" },
	{ "schema", ks_cmd_schema, "stat descriptions, as QMP query-stats-schemas (JSON)" },
	{ "query",  ks_cmd_query,  "stat values, as QMP query-stats (JSON)" },
	{ "info",   ks_cmd_info,   "stat values, as HMP 'info stats' (text)" },
	{ "top",    ks_cmd_top,    "a live table of totals, rates and percentiles (--once: one look)" },
	{ "watch",  ks_cmd_watch,  "a record per interval of totals and rates (CSV, JSON lines)" },
	{ "qmp",    ks_cmd_qmp,    "a read-only QMP server: query-stats and more over a socket" },
};

static void
help(void)
{
	printf("Usage: kvmstats [--dir DIR] [--owner UID] COMMAND [ARGS...]\n"
	       "       kvmstats COMMAND --help | kvmstats --help | kvmstats --version\n"
	       "\n"
	       "Read the KVM statistics that kvmstatsd publishes in shared memory,\n"
	       "without privileges and without disturbing the VM.\n"
	       "\n"
	       "Commands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		printf("  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	printf("\n"
	       "Options (also accepted after COMMAND):\n"
	       "  -d, --dir DIR     where the segments are (default: $KVMSTATS_SHM_DIR,\n"
	       "                    else /dev/shm)\n"
	       "  -o, --owner UID   accept segments owned by this numeric uid (default:\n"
	       "                    root or yourself: anybody can create files in /dev/shm)\n"
	       "  -h, --help        this help; 'kvmstats COMMAND --help' for a command\n"
	       "  -V, --version     the version\n"
	       "\n"
	       "VM names a VM as 'kvmstats list' shows it (kvm-1234, or kvmstats.kvm-1234).\n"
	       "Values come only from a live publisher: a stale, dead or ended one's with\n"
	       "--stale-ok (query, info).  Names from files and segments are escaped.\n"
	       "\n"
	       "Exit status: 0 success; 1 runtime error (no such VM, the VM ended, its\n"
	       "publisher is stale or dead, no data yet, output failed); 2 usage error\n"
	       "(bad or missing argument, a VM name no segment can have).\n");
}

static const struct subcommand *
find_subcommand(const char *name)
{
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(subcommands[i].name, name) == 0)
			return &subcommands[i];
	return NULL;
}

/* Global options stop at the first non-option: the subcommand ("+"). */
static int
parse_global(struct ks_cli *cli, int argc, char **argv, int *rc)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = ks_cli_getopt(cli, argc, argv, "+:" KS_CLI_COMMON_SHORT "V",
				  longopts, help, rc)) != -1) {
		if (c == -2)
			return -1;
		/* 'V' is the only option left to ks_cli_getopt()'s caller. */
		printf("kvmstats %s (segment ABI %d.%d)\n", KS_VERSION,
		       KS_ABI_MAJOR, KS_ABI_MINOR);
		*rc = KS_EXIT_OK;
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct ks_cli cli = { .owner = KVMSTATS_OWNER_DEFAULT };
	const struct subcommand *sc;
	int rc = KS_EXIT_OK;

	if (parse_global(&cli, argc, argv, &rc) < 0)
		return ks_cli_finish_stdout(&cli, rc == KS_EXIT_HELP ? KS_EXIT_OK : rc);
	if (optind >= argc)
		return ks_cli_usage_error(&cli, "no command given (list, schema, query, info, top, watch, qmp)");
	sc = find_subcommand(argv[optind]);
	if (sc == NULL)
		return ks_cli_usage_error(&cli, "unknown command '%s' (list, schema, "
					  "query, info, top, watch, qmp)", argv[optind]);
	cli.cmd = sc->name;
	argc -= optind;
	argv += optind;
	optind = 0;	/* glibc: start the subcommand's getopt afresh */
	rc = sc->run(&cli, argc, argv);
	return ks_cli_finish_stdout(&cli, rc == KS_EXIT_HELP ? KS_EXIT_OK : rc);
}
