/* SPDX-License-Identifier: MIT */
/*
 * cmd_schema.c - "kvmstats schema": the stats' descriptions as the return
 * value of QMP query-stats-schemas.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stats_json.h"

static void
schema_help(void)
{
	printf("Usage: kvmstats schema [VM] [--provider P] [--dir DIR] [--owner UID]\n"
	       "\n"
	       "Print what the VM's stats are, in the shape of the return value of\n"
	       "QMP query-stats-schemas: a JSON array of\n"
	       "  {\"provider\", \"target\", \"stats\": [{\"name\", \"type\", \"unit\",\n"
	       "   \"base\", \"exponent\", \"bucket-size\"}]}\n"
	       "one entry per provider and target kind (vm, vcpu) that has stats.\n"
	       "\"unit\" is left out for plain numbers, \"base\" when the exponent is 0,\n"
	       "\"bucket-size\" for all but linear histograms.  vCPU entries describe\n"
	       "every stat that any vCPU has.\n"
	       "\n"
	       "Stats come in the publisher's (KVM descriptor) order, not QEMU's\n"
	       "reversed order; neither order is a contract: match stats by name.\n"
	       "\n"
	       "VM may be left out when exactly one VM publishes.\n"
	       "  --provider P   only provider P (e.g. kvm)\n");
}

static int
print_schema(const struct kvmstats_segment *seg, const char *provider)
{
	struct ks_json j;
	int r;

	ks_json_init(&j, stdout);
	r = ks_stats_write_schemas(&j, seg, provider);
	ks_json_finish(&j);
	return r;
}

int
ks_cmd_schema(struct ks_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		{ "provider", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct kvmstats_segment *seg = NULL;
	const char *provider = NULL, *vm = NULL;
	int c, rc = KS_EXIT_OK;

	while ((c = ks_cli_getopt(cli, argc, argv, ":" KS_CLI_COMMON_SHORT "p:",
				  longopts, schema_help, &rc)) != -1) {
		if (c == -2)
			return rc;
		provider = optarg;	/* 'p' */
	}
	if (optind < argc)
		vm = argv[optind++];
	if (optind < argc)
		return ks_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = ks_cli_open_vm(cli, vm, &seg);
	if (rc != KS_EXIT_OK)
		return rc;
	rc = ks_cli_check_provider(cli, seg, provider);
	if (rc == KS_EXIT_OK)
		ks_cli_note_no_vm_stats(cli, seg);
	if (rc == KS_EXIT_OK && print_schema(seg, provider) < 0) {
		ks_cli_error(cli, "out of memory");
		rc = KS_EXIT_RUNTIME;
	}
	kvmstats_detach(&seg);
	return rc;
}
