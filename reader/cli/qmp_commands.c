/* SPDX-License-Identifier: MIT */
/*
 * qmp_commands.c - the commands kvmstats qmp serves, each checking its
 * arguments in QEMU's schema order (qapi/stats.json, qapi/control.json,
 * qapi/machine.json) before it reads anything (qmp_commands.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qmp_commands.h"
#include "stats_json.h"

/* QAPI enums, in schema order; the index is the value. */
static const char *const stats_targets[] = { "vm", "vcpu", "cryptodev", NULL };
enum { TARGET_VM, TARGET_VCPU, TARGET_CRYPTODEV };
static const char *const stats_providers[] = { "kvm", "cryptodev", NULL };
static const char *const qmp_capabilities_enum[] = { "oob", NULL };

/* SysEmuTarget of the machine this runs on: the VMs it reads run here. */
#if defined(__x86_64__)
#define KS_QMP_TARGET	"x86_64"
#elif defined(__aarch64__)
#define KS_QMP_TARGET	"aarch64"
#elif defined(__riscv) && __riscv_xlen == 64
#define KS_QMP_TARGET	"riscv64"
#elif defined(__powerpc64__)
#define KS_QMP_TARGET	"ppc64"
#elif defined(__s390x__)
#define KS_QMP_TARGET	"s390x"
#elif defined(__i386__)
#define KS_QMP_TARGET	"i386"
#else
#define KS_QMP_TARGET	"x86_64"
#endif

static bool
no_arguments(json_t *args, struct ks_qmp_err *e)
{
	static const char *const none[] = { NULL };

	return ks_qmp_arg_unexpected(args, "", none, e);
}

/* ---- qmp_capabilities: '*enable': ['QMPCapability'] --------------------- */

static bool
cmd_qmp_capabilities(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
		     struct ks_qmp_err *e)
{
	static const char *const known[] = { "enable", NULL };
	json_t *enable = json_object_get(args, "enable");
	char unavailable[256] = "";
	size_t used = 0;

	if (enable && !json_is_array(enable))
		return ks_qmp_fail(e, "Invalid parameter type for 'enable', expected: array");
	for (size_t i = 0; enable && i < json_array_size(enable); i++) {
		char full[48];
		json_t *wrap = json_object();
		int cap;
		bool ok;

		if (!wrap)
			return ks_qmp_fail(e, "Out of memory");
		/* One element as a member, to check it like any enum member. */
		json_object_set(wrap, "v", json_array_get(enable, i));
		snprintf(full, sizeof(full), "enable[%zu]", i);
		ok = ks_qmp_arg_enum(wrap, "v", full, qmp_capabilities_enum, true, &cap, e);
		json_decref(wrap);
		if (!ok)
			return false;
		/* Every capability QMP knows ("oob") is one this server does not offer. */
		used += (size_t)snprintf(unavailable + used, sizeof(unavailable) - used, "%s%s",
					 used ? ", " : "", qmp_capabilities_enum[cap]);
		if (used >= sizeof(unavailable))
			used = sizeof(unavailable) - 1;
	}
	if (!ks_qmp_arg_unexpected(args, "", known, e))
		return false;
	if (s->negotiated) {
		ks_qmp_fail(e, "Capabilities negotiation is already complete, command ignored");
		e->cls = "CommandNotFound";
		return false;
	}
	if (unavailable[0])
		return ks_qmp_fail(e, "Capability %s not available", unavailable);
	s->negotiated = true;
	ks_json_begin_object(j);
	ks_json_end_object(j);
	return true;
}

/* ---- query-version ---------------------------------------------------- */

static bool
cmd_query_version(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
		  struct ks_qmp_err *e)
{
	(void)s;
	if (!no_arguments(args, e))
		return false;
	ks_json_begin_object(j);
	ks_json_key(j, "qemu");
	ks_json_begin_object(j);
	ks_json_kv_i64(j, "major", KS_QMP_QEMU_MAJOR);
	ks_json_kv_i64(j, "minor", KS_QMP_QEMU_MINOR);
	ks_json_kv_i64(j, "micro", KS_QMP_QEMU_MICRO);
	ks_json_end_object(j);
	ks_json_kv_string(j, "package", "kvmstats " KS_VERSION);
	ks_json_end_object(j);
	return true;
}

/* ---- query-stats: StatsFilter ------------------------------------------ */

/* One StatsRequest's results, or every provider's when @req is NULL. */
static bool
write_request(json_t *req, size_t i, struct ks_filter *f, const struct kvmstats_segment *seg,
	      const uint64_t *cut, struct ks_json *j, struct ks_qmp_err *e)
{
	static const char *const known[] = { "provider", "names", NULL };
	char full[64], prefix[64];
	int provider;
	bool ok;

	if (req == NULL) {
		f->provider = NULL;
		ks_stats_write_results(j, seg, f, cut);
		return true;
	}
	snprintf(full, sizeof(full), "providers[%zu]", i);
	if (!json_is_object(req))
		return ks_qmp_fail(e, "Invalid parameter type for '%s', expected: object", full);
	snprintf(full, sizeof(full), "providers[%zu].provider", i);
	if (!ks_qmp_arg_enum(req, "provider", full, stats_providers, true, &provider, e))
		return false;
	snprintf(full, sizeof(full), "providers[%zu].names", i);
	if (!ks_qmp_arg_strlist(req, "names", full, &f->names, e))
		return false;
	snprintf(prefix, sizeof(prefix), "providers[%zu].", i);
	ok = ks_qmp_arg_unexpected(req, prefix, known, e);
	if (ok && seg) {
		/* A provider listed twice is queried twice, as in QEMU. */
		f->provider = stats_providers[provider];
		ks_stats_write_results(j, seg, f, cut);
	}
	ks_strlist_free(&f->names);
	return ok;
}

/* Every request of "providers" (checked all before any is answered: @seg NULL). */
static bool
write_requests(json_t *providers, struct ks_filter *f, const struct kvmstats_segment *seg,
	       const uint64_t *cut, struct ks_json *j, struct ks_qmp_err *e)
{
	if (providers == NULL)
		return seg ? write_request(NULL, 0, f, seg, cut, j, e) : true;
	for (size_t i = 0; i < json_array_size(providers); i++)
		if (!write_request(json_array_get(providers, i), i, f, seg, cut, j, e))
			return false;
	return true;
}

static bool
check_stats_filter(json_t *args, int *target, struct ks_strlist *vcpus, struct ks_qmp_err *e)
{
	static const char *const known_vcpu[] = { "target", "providers", "vcpus", NULL };
	static const char *const known[] = { "target", "providers", NULL };
	json_t *providers;
	struct ks_filter none = { 0 };

	if (!ks_qmp_arg_enum(args, "target", "target", stats_targets, true, target, e))
		return false;
	providers = json_object_get(args, "providers");
	if (providers && !json_is_array(providers))
		return ks_qmp_fail(e, "Invalid parameter type for 'providers', expected: array");
	if (!write_requests(providers, &none, NULL, NULL, NULL, e))
		return false;
	if (*target == TARGET_VCPU && !ks_qmp_arg_strlist(args, "vcpus", "vcpus", vcpus, e))
		return false;
	return ks_qmp_arg_unexpected(args, "", *target == TARGET_VCPU ? known_vcpu : known, e);
}

static bool
cmd_query_stats(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
		struct ks_qmp_err *e)
{
	struct ks_strlist vcpus = { 0 };
	struct ks_filter f = { 0 };
	const struct kvmstats_segment *seg;
	uint64_t *cut = NULL;
	int target;
	bool ok = check_stats_filter(args, &target, &vcpus, e);

	if (ok && target == TARGET_CRYPTODEV) {
		/* No cryptodev provider publishes into a segment: nothing, as QEMU without one. */
		ks_json_begin_array(j);
		ks_json_end_array(j);
	} else if (ok && s->src->get(s->src->arg, true, &seg, &cut, e->desc, sizeof(e->desc)) < 0) {
		e->cls = "GenericError";
		ok = false;
	} else if (ok) {
		f.kind = target == TARGET_VCPU ? KVMSTATS_TARGET_VCPU : KVMSTATS_TARGET_VM;
		if (vcpus.present && ks_filter_select_labels(&f, seg, &vcpus) < 0)
			ok = ks_qmp_fail(e, "Out of memory");
		if (ok) {
			ks_json_begin_array(j);
			ok = write_requests(json_object_get(args, "providers"), &f, seg, cut, j, e);
			ks_json_end_array(j);
		}
	}
	free(cut);
	ks_filter_free(&f);
	ks_strlist_free(&vcpus);
	return ok;
}

/* ---- query-stats-schemas: '*provider': 'StatsProvider' ----------------- */

static bool
cmd_query_stats_schemas(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
			struct ks_qmp_err *e)
{
	static const char *const known[] = { "provider", NULL };
	const struct kvmstats_segment *seg;
	int provider;

	if (!ks_qmp_arg_enum(args, "provider", "provider", stats_providers, false, &provider, e) ||
	    !ks_qmp_arg_unexpected(args, "", known, e))
		return false;
	if (s->src->get(s->src->arg, false, &seg, NULL, e->desc, sizeof(e->desc)) < 0) {
		e->cls = "GenericError";
		return false;
	}
	if (ks_stats_write_schemas(j, seg, provider < 0 ? NULL : stats_providers[provider]) < 0)
		return ks_qmp_fail(e, "Out of memory");
	return true;
}

/* ---- query-cpus-fast -------------------------------------------------- */

long long
ks_qmp_thread_id(const char *id)
{
	const char *p = id;
	char *end;
	long long tid;

	if (strncmp(p, "kvm-", 4) != 0 || !isdigit((unsigned char)p[4]))
		return 0;
	errno = 0;
	tid = strtoll(p + 4, &end, 10);
	if (errno != 0 || tid <= 0 || strncmp(end, "/vcpu-", 6) != 0)
		return 0;
	p = end + 6;
	if (!isdigit((unsigned char)*p))
		return 0;
	while (isdigit((unsigned char)*p))
		p++;
	return *p == '\0' ? tid : 0;
}

static bool
cmd_query_cpus_fast(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
		    struct ks_qmp_err *e)
{
	const struct kvmstats_segment *seg;

	if (!no_arguments(args, e))
		return false;
	if (s->src->get(s->src->arg, false, &seg, NULL, e->desc, sizeof(e->desc)) < 0) {
		e->cls = "GenericError";
		return false;
	}
	ks_json_begin_array(j);
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		if (!ti || ti->kind != KVMSTATS_TARGET_VCPU)
			continue;
		ks_json_begin_object(j);
		ks_json_kv_i64(j, "cpu-index", ti->vcpu_index);
		ks_json_kv_string(j, "qom-path", ti->label);
		/* QEMU always has one; 0 says "not known" without breaking its schema. */
		ks_json_kv_i64(j, "thread-id", ks_qmp_thread_id(ti->id));
		ks_json_kv_string(j, "target", KS_QMP_TARGET);
		ks_json_end_object(j);
	}
	ks_json_end_array(j);
	return true;
}

/* ---- query-commands, and the table ------------------------------------ */

static bool cmd_query_commands(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
			       struct ks_qmp_err *e);

static const struct ks_qmp_command commands[] = {
	{ "qmp_capabilities",	 cmd_qmp_capabilities,	  true },
	{ "query-version",	 cmd_query_version,	  false },
	{ "query-commands",	 cmd_query_commands,	  false },
	{ "query-stats",	 cmd_query_stats,	  false },
	{ "query-stats-schemas", cmd_query_stats_schemas, false },
	{ "query-cpus-fast",	 cmd_query_cpus_fast,	  false },
};

static bool
cmd_query_commands(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
		   struct ks_qmp_err *e)
{
	if (!no_arguments(args, e))
		return false;
	ks_json_begin_array(j);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!s->negotiated && !commands[i].before_negotiation)
			continue;
		ks_json_begin_object(j);
		ks_json_kv_string(j, "name", commands[i].name);
		ks_json_end_object(j);
	}
	ks_json_end_array(j);
	return true;
}

const struct ks_qmp_command *
ks_qmp_find_command(const char *name, bool negotiated)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0 &&
		    (negotiated || commands[i].before_negotiation))
			return &commands[i];
	return NULL;
}
