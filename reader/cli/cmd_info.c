/* SPDX-License-Identifier: MIT */
/*
 * cmd_info.c - "kvmstats info": stat values as the text of QEMU's HMP
 * "info stats", from one consistent cut of the segment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "filter.h"
#include "hmp_units.h"
#include "ks_text.h"

static void
info_help(void)
{
	printf("Usage: kvmstats info [VM] TARGET [NAMES] [PROVIDER] [--vcpu N] [--vm VM]\n"
	       "                     [--stale-ok] [--dir DIR] [--owner UID]\n"
	       "\n"
	       "Print stat values as QEMU's HMP 'info stats TARGET [NAMES] [PROVIDER]':\n"
	       "  provider: kvm                                 (without PROVIDER only)\n"
	       "      exits (cumulative): 302\n"
	       "      halt_poll_fail_ns (cumulative, ns): 0\n"
	       "      guest_mode (instant, boolean): no\n"
	       "      halt_wait_hist (log2-histogram, ns): [1]=0 [2]=3 ...\n"
	       "\n"
	       "  TARGET     vm or vcpu\n"
	       "  NAMES      stat names, comma-separated, or * for all (default)\n"
	       "  PROVIDER   only this provider, e.g. kvm\n"
	       "  --vcpu N   only the vCPU with this label, id or index\n"
	       "  --vm VM    the VM, for a VM whose name is 'vm' or 'vcpu'\n"
	       "  --stale-ok the last values of a VM whose publisher is stale, dead or\n"
	       "             ended, with a warning on stderr (without: exit 1)\n"
	       "\n"
	       "Differences from QEMU: QEMU's 'info stats vcpu' shows only the monitor's\n"
	       "current CPU; this shows every vCPU, each after a line\n"
	       "  vcpu INDEX (LABEL):\n"
	       "unless --vcpu selects one, which then prints exactly as QEMU does.  A\n"
	       "name in NAMES that no stat of TARGET has is an error here (QEMU prints\n"
	       "nothing).  All values come from one sweep of the publisher.\n"
	       "\n"
	       "VM may be left out when exactly one VM publishes; a first argument\n"
	       "'vm' or 'vcpu' is taken as TARGET.\n");
}

struct info_args {
	const char *vm;
	const char *provider;	/* the PROVIDER argument */
	const char *vcpu;	/* --vcpu */
	struct ks_filter f;
};

/* Take [VM] TARGET [NAMES] [PROVIDER] from what getopt left. */
static int
parse_positionals(struct ks_cli *cli, int argc, char **argv, struct info_args *a)
{
	enum kvmstats_target_kind kind;
	const char *target;

	if (optind < argc && !a->vm && !ks_cli_parse_kind(argv[optind], &kind))
		a->vm = argv[optind++];
	if (optind >= argc)
		return ks_cli_usage_error(cli, "TARGET (vm or vcpu) is required");
	target = argv[optind++];
	if (!ks_cli_parse_kind(target, &a->f.kind))
		return ks_cli_usage_error(cli, "TARGET '%s': must be vm or vcpu", target);
	if (optind < argc) {
		const char *names = argv[optind++];

		if (strcmp(names, "*") != 0 && ks_strlist_parse(&a->f.names, names) < 0)
			return ks_cli_usage_error(cli, "NAMES '%s': empty name in the list",
						  names);
	}
	if (optind < argc)
		a->provider = a->f.provider = argv[optind++];
	if (optind < argc)
		return ks_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (a->vcpu && a->f.kind != KVMSTATS_TARGET_VCPU)
		return ks_cli_usage_error(cli, "--vcpu needs TARGET vcpu");
	return KS_EXIT_OK;
}

static int
parse_args(struct ks_cli *cli, int argc, char **argv, struct info_args *a)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		KS_CLI_VALUES_LONG,
		{ "vcpu", required_argument, NULL, 'c' },
		{ "vm",   required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc = KS_EXIT_OK;

	while ((c = ks_cli_getopt(cli, argc, argv, ":" KS_CLI_COMMON_SHORT,
				  longopts, info_help, &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'c')
			a->vcpu = optarg;
		else
			a->vm = optarg;
	}
	return parse_positionals(cli, argc, argv, a);
}

/* Whether any target of the chosen kind has a stat called @name. */
static bool
name_exists(const struct kvmstats_segment *seg, const struct ks_filter *f,
	    const char *name)
{
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		if (ti->kind != f->kind)
			continue;
		for (unsigned k = 0; k < ti->nr_stats; k++) {
			const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, k);

			if (si && strcmp(si->name, name) == 0 &&
			    (!f->provider || strcmp(si->provider_name, f->provider) == 0))
				return true;
		}
	}
	return false;
}

/* A typo in NAMES would print nothing at all: say so instead. */
static int
check_names(const struct ks_cli *cli, const struct kvmstats_segment *seg,
	    const struct ks_filter *f)
{
	for (unsigned i = 0; i < f->names.n; i++) {
		if (name_exists(seg, f, f->names.items[i]))
			continue;
		ks_cli_error(cli, "VM '%s' has no %s stat '%s'%s%s; 'kvmstats schema %s' "
			     "lists the stats", kvmstats_info(seg)->vm_name,
			     kvmstats_target_kind_name(f->kind), f->names.items[i],
			     f->provider ? " in provider " : "", f->provider ? f->provider : "",
			     kvmstats_info(seg)->vm_name);
		return KS_EXIT_RUNTIME;
	}
	return KS_EXIT_OK;
}

static int
select_vcpu(const struct ks_cli *cli, const struct kvmstats_segment *seg,
	    struct info_args *a)
{
	struct ks_strlist one = { .present = true, .n = 1 };
	const char *bad = NULL;
	char *item;
	int r;

	if (!a->vcpu)
		return KS_EXIT_OK;
	item = (char *)a->vcpu;
	one.items = &item;
	r = ks_filter_select_targets(&a->f, seg, &one, &bad);
	if (r == -ENOENT) {
		ks_cli_error(cli, "VM '%s' has no vCPU '%s'; name it by label, id or index",
			     kvmstats_info(seg)->vm_name, bad);
		return KS_EXIT_RUNTIME;
	}
	if (r < 0) {
		ks_cli_error(cli, "out of memory");
		return KS_EXIT_RUNTIME;
	}
	return KS_EXIT_OK;
}

/* Provider @p's stats of target @t; returns how many lines were printed. */
static unsigned
print_provider(const struct kvmstats_segment *seg, const struct info_args *a,
	       unsigned p, unsigned t, const uint64_t *rec, bool *announced)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
	unsigned printed = 0;

	for (unsigned k = 0; k < ti->nr_stats; k++) {
		const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, k);

		if (!si || si->provider != p || !ks_filter_stat(&a->f, si))
			continue;
		if (!*announced && ti->kind == KVMSTATS_TARGET_VCPU && !a->vcpu) {
			printf("vcpu %u (", (unsigned)ti->vcpu_index);
			ks_text_fputs(stdout, ti->label);
			printf("):\n");
		}
		*announced = true;
		if (printed++ == 0 && !a->provider) {
			fputs("provider: ", stdout);
			ks_text_fputs(stdout, si->provider_name);
			fputc('\n', stdout);
		}
		ks_hmp_print_stat(stdout, si, rec + si->value_index);
	}
	return printed;
}

static void
print_info(const struct kvmstats_segment *seg, const struct info_args *a,
	   const uint64_t *cut)
{
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const uint64_t *rec;
		bool announced = false;

		if (!ks_filter_target(&a->f, seg, t))
			continue;
		rec = cut + kvmstats_target(seg, t)->cut_offset;
		for (unsigned p = 0; p < kvmstats_nr_providers(seg); p++)
			print_provider(seg, a, p, t, rec, &announced);
	}
}

int
ks_cmd_info(struct ks_cli *cli, int argc, char **argv)
{
	struct info_args a = { 0 };
	struct kvmstats_segment *seg = NULL;
	uint64_t *cut = NULL;
	int rc;

	rc = parse_args(cli, argc, argv, &a);
	if (rc == KS_EXIT_OK)
		rc = ks_cli_open_live(cli, a.vm, a.provider, &seg);
	if (rc == KS_EXIT_OK)
		rc = check_names(cli, seg, &a.f);
	if (rc == KS_EXIT_OK)
		rc = select_vcpu(cli, seg, &a);
	if (rc == KS_EXIT_OK)
		rc = ks_cli_read_cut(cli, seg, &cut);
	if (rc == KS_EXIT_OK)
		print_info(seg, &a, cut);
	free(cut);
	if (seg)
		kvmstats_detach(&seg);
	ks_filter_free(&a.f);
	return rc;
}
