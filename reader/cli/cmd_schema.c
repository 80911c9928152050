/* SPDX-License-Identifier: MIT */
/*
 * cmd_schema.c - "kvmstats schema": the stats' descriptions as the return
 * value of QMP query-stats-schemas.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "filter.h"
#include "json.h"

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

struct stat_set {
	const struct kvmstats_stat_info **v;
	size_t n, cap;
};

static bool
set_has(const struct stat_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->name, name) == 0)
			return true;
	return false;
}

static int
set_add(struct stat_set *s, const struct kvmstats_stat_info *si)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		const struct kvmstats_stat_info **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = si;
	return 0;
}

/*
 * The stats of provider @p on targets of @kind, in descriptor order.  All
 * vCPUs normally share one table (QEMU reads only the first vCPU's); a
 * stat that only some vCPUs have is still described, after the others.
 */
static int
collect(const struct kvmstats_segment *seg, unsigned p, enum kvmstats_target_kind kind,
	struct stat_set *s)
{
	s->n = 0;
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		if (ti->kind != kind)
			continue;
		for (unsigned j = 0; j < ti->nr_stats; j++) {
			const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, j);

			if (!si || si->provider != p || !ks_stat_printable(si) ||
			    set_has(s, si->name))
				continue;
			if (set_add(s, si) < 0)
				return -1;
		}
	}
	return 0;
}

static void
print_stat(struct ks_json *j, const struct kvmstats_stat_info *si)
{
	ks_json_begin_object_inline(j);
	ks_json_kv_string(j, "name", si->name);
	ks_json_kv_string(j, "type", kvmstats_type_name(si->type));
	if (si->unit != KVMSTATS_UNIT_NONE)
		ks_json_kv_string(j, "unit", kvmstats_unit_name(si->unit));
	if (si->exponent != 0)
		ks_json_kv_i64(j, "base", si->base);
	ks_json_kv_i64(j, "exponent", si->exponent);
	if (si->type == KVMSTATS_TYPE_LINEAR_HIST)
		ks_json_kv_u64(j, "bucket-size", si->bucket_size);
	ks_json_end_object(j);
}

static int
print_schema(const struct kvmstats_segment *seg, const char *provider)
{
	static const enum kvmstats_target_kind kinds[] = {
		KVMSTATS_TARGET_VM, KVMSTATS_TARGET_VCPU,
	};
	struct stat_set s = { 0 };
	struct ks_json j;
	int r = 0;

	ks_json_init(&j, stdout);
	ks_json_begin_array(&j);
	for (unsigned p = 0; p < kvmstats_nr_providers(seg) && r == 0; p++) {
		const char *pname = kvmstats_provider(seg, p)->name;

		if (provider && strcmp(provider, pname) != 0)
			continue;
		for (size_t k = 0; k < 2 && r == 0; k++) {
			r = collect(seg, p, kinds[k], &s);
			if (r < 0 || s.n == 0)
				continue;
			ks_json_begin_object(&j);
			ks_json_kv_string(&j, "provider", pname);
			ks_json_kv_string(&j, "target", kvmstats_target_kind_name(kinds[k]));
			ks_json_key(&j, "stats");
			ks_json_begin_array(&j);
			for (size_t i = 0; i < s.n; i++)
				print_stat(&j, s.v[i]);
			ks_json_end_array(&j);
			ks_json_end_object(&j);
		}
	}
	ks_json_end_array(&j);
	ks_json_finish(&j);
	free(s.v);
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
