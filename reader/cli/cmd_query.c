/* SPDX-License-Identifier: MIT */
/*
 * cmd_query.c - "kvmstats query": stat values as the return value of QMP
 * query-stats, from one consistent cut of the segment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "filter.h"
#include "stats_json.h"

static void
query_help(void)
{
	printf("Usage: kvmstats query [VM] --target vm|vcpu [--vcpus LIST]\n"
	       "                      [--provider P] [--names LIST] [--stale-ok]\n"
	       "                      [--dir DIR] [--owner UID]\n"
	       "\n"
	       "Print stat values in the shape of the return value of QMP query-stats:\n"
	       "a JSON array of {\"provider\", \"qom-path\" (vcpu targets only: the\n"
	       "vCPU's label), \"stats\": [{\"name\", \"value\"}]}.  Values are exact\n"
	       "unsigned 64-bit numbers, true/false for booleans, lists in bucket\n"
	       "order for histograms.  All values come from one sweep of the publisher.\n"
	       "\n"
	       "  -t, --target vm|vcpu  which targets (required)\n"
	       "      --vcpus LIST      vCPUs by label (QOM path), id or index number,\n"
	       "                        comma-separated; vcpu target only; default all\n"
	       "  -p, --provider P      only provider P (default all)\n"
	       "  -n, --names LIST      only these stats, comma-separated (default all)\n"
	       "      --stale-ok        the last values of a VM whose publisher is stale,\n"
	       "                        dead or ended, with a warning on stderr (without:\n"
	       "                        exit 1)\n"
	       "\n"
	       "As in QMP: an empty LIST (\"\") selects nothing; unknown stat names are\n"
	       "ignored; a target left with no stats gets no entry.  Unlike QMP, an\n"
	       "unknown vCPU or provider is an error.  Order is not a contract.\n"
	       "VM may be left out when exactly one VM publishes.\n");
}

struct query_args {
	const char *vm;
	const char *target;
	const char *vcpus;
	struct ks_filter f;
	struct ks_strlist vcpu_list;
};

static void
print_query(const struct kvmstats_segment *seg, const struct ks_filter *f,
	    const uint64_t *cut)
{
	struct ks_json j;

	ks_json_init(&j, stdout);
	ks_json_begin_array(&j);
	ks_stats_write_results(&j, seg, f, cut);
	ks_json_end_array(&j);
	ks_json_finish(&j);
}

static int
parse_args(struct ks_cli *cli, int argc, char **argv, struct query_args *a)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		KS_CLI_VALUES_LONG,
		{ "target",   required_argument, NULL, 't' },
		{ "vcpus",    required_argument, NULL, 'c' },
		{ "provider", required_argument, NULL, 'p' },
		{ "names",    required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc = KS_EXIT_OK;

	while ((c = ks_cli_getopt(cli, argc, argv, ":" KS_CLI_COMMON_SHORT "t:p:n:",
				  longopts, query_help, &rc)) != -1) {
		switch (c) {
		case -2:
			return rc;
		case 't':
			a->target = optarg;
			break;
		case 'c':
			a->vcpus = optarg;
			break;
		case 'p':
			a->f.provider = optarg;
			break;
		case 'n':
			if (a->f.names.present)
				return ks_cli_usage_error(cli, "--names given twice");
			if (ks_strlist_parse(&a->f.names, optarg) < 0)
				return ks_cli_usage_error(cli, "--names '%s': empty name in the "
							  "list", optarg);
			break;
		}
	}
	if (optind < argc)
		a->vm = argv[optind++];
	if (optind < argc)
		return ks_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (a->target == NULL)
		return ks_cli_usage_error(cli, "--target vm|vcpu is required");
	if (!ks_cli_parse_kind(a->target, &a->f.kind))
		return ks_cli_usage_error(cli, "--target '%s': must be vm or vcpu", a->target);
	if (a->vcpus && a->f.kind != KVMSTATS_TARGET_VCPU)
		return ks_cli_usage_error(cli, "--vcpus needs --target vcpu");
	if (a->vcpus && ks_strlist_parse(&a->vcpu_list, a->vcpus) < 0)
		return ks_cli_usage_error(cli, "--vcpus '%s': empty vCPU in the list", a->vcpus);
	return KS_EXIT_OK;
}

static int
select_vcpus(const struct ks_cli *cli, const struct kvmstats_segment *seg,
	     struct query_args *a)
{
	const char *bad = NULL;
	int r;

	if (!a->vcpu_list.present)
		return KS_EXIT_OK;
	r = ks_filter_select_targets(&a->f, seg, &a->vcpu_list, &bad);
	if (r == -ENOENT) {
		ks_cli_error(cli, "VM '%s' has no vCPU '%s'; name vCPUs by label, id or "
			     "index ('kvmstats query %s --target vcpu' shows the labels)",
			     kvmstats_info(seg)->vm_name, bad, kvmstats_info(seg)->vm_name);
		return KS_EXIT_RUNTIME;
	}
	if (r < 0) {
		ks_cli_error(cli, "out of memory");
		return KS_EXIT_RUNTIME;
	}
	return KS_EXIT_OK;
}

int
ks_cmd_query(struct ks_cli *cli, int argc, char **argv)
{
	struct query_args a = { 0 };
	struct kvmstats_segment *seg = NULL;
	uint64_t *cut = NULL;
	int rc;

	rc = parse_args(cli, argc, argv, &a);
	if (rc == KS_EXIT_OK)
		rc = ks_cli_open_live(cli, a.vm, a.f.provider, &seg);
	if (rc == KS_EXIT_OK)
		rc = select_vcpus(cli, seg, &a);
	if (rc == KS_EXIT_OK && a.f.kind == KVMSTATS_TARGET_VM)
		ks_cli_note_no_vm_stats(cli, seg);
	if (rc == KS_EXIT_OK)
		rc = ks_cli_read_cut(cli, seg, &cut);
	if (rc == KS_EXIT_OK)
		print_query(seg, &a.f, cut);
	free(cut);
	if (seg)
		kvmstats_detach(&seg);
	ks_filter_free(&a.f);
	ks_strlist_free(&a.vcpu_list);
	return rc;
}
