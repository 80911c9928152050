/* SPDX-License-Identifier: MIT */
/*
 * cmd_list.c - "kvmstats list": every segment in the directory and its state.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

struct row {
	char *file;		/* segment file name */
	char *vm;
	char *error;		/* attach failed: why; other fields unset */
	pid_t pid;
	const char *state;
	unsigned vcpus, stats;
	uint64_t period_ns, sweep, generation;
	int64_t age_ms;		/* -1: no sweep yet */
};

struct rows {
	const struct ks_cli *cli;
	struct row *v;
	size_t n, cap;
	int oom;
};

static void
list_help(void)
{
	printf("Usage: kvmstats list [--json] [--dir DIR] [--owner UID]\n"
	       "\n"
	       "One line per VM segment: VM name, publisher pid, state (building,\n"
	       "live, ended, superseded), vCPUs, stats (summed over the VM and its\n"
	       "vCPUs), sweep rate in Hz, age of the newest sweep in ms ('-' before\n"
	       "the first) and the segment's generation.  A segment that cannot be\n"
	       "attached is listed with the reason instead of its fields.\n"
	       "\n"
	       "  --json    a JSON array instead; \"poll-period-ns\" instead of the rate,\n"
	       "            \"age-ms\" null before the first sweep, \"error\" for segments\n"
	       "            that could not be attached\n");
}

static void
fill_row(struct row *r, const struct kvmstats_segment *seg)
{
	const struct kvmstats_segment_info *info = kvmstats_info(seg);
	struct kvmstats_status st;
	uint64_t now = kvmstats_now_ns();

	kvmstats_status(seg, &st);
	r->vm = strdup(info->vm_name);
	r->pid = info->publisher_pid;
	r->state = kvmstats_state_name(st.state);
	if (!r->state)
		r->state = "unknown";
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		r->vcpus += ti->kind == KVMSTATS_TARGET_VCPU;
		r->stats += ti->nr_stats;
	}
	r->period_ns = info->poll_period_ns;
	r->sweep = st.sweep;
	r->generation = info->generation;
	r->age_ms = -1;
	if (st.sweep != 0)
		r->age_ms = now > st.heartbeat_ns ? (int64_t)((now - st.heartbeat_ns) / 1000000) : 0;
}

static int
add_row(const char *segment_file, void *arg)
{
	struct rows *rows = arg;
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err = { 0 };
	struct kvmstats_segment *seg;
	size_t plen = strlen(KVMSTATS_SEGMENT_PREFIX);
	struct row *r;

	if (rows->n == rows->cap) {
		size_t cap = rows->cap ? rows->cap * 2 : 16;
		struct row *v = realloc(rows->v, cap * sizeof(*v));

		if (!v)
			return rows->oom = 1;
		rows->v = v;
		rows->cap = cap;
	}
	r = &rows->v[rows->n++];
	memset(r, 0, sizeof(*r));
	r->file = strdup(segment_file);
	kvmstats_attach_opts_init(&opts);
	opts.dir = rows->cli->dir;
	opts.owner = rows->cli->owner;
	if (kvmstats_attach(segment_file, &opts, &seg, &err) < 0) {
		r->vm = strdup(strncmp(segment_file, KVMSTATS_SEGMENT_PREFIX, plen) == 0 ?
			       segment_file + plen : segment_file);
		r->error = strdup(err.msg[0] ? err.msg : "cannot attach");
	} else {
		fill_row(r, seg);
		kvmstats_detach(&seg);
	}
	if (!r->file || !r->vm || (err.msg[0] && !r->error))
		return rows->oom = 1;
	return 0;
}

static void
print_json(const struct rows *rows)
{
	struct ks_json j;

	ks_json_init(&j, stdout);
	ks_json_begin_array(&j);
	for (size_t i = 0; i < rows->n; i++) {
		const struct row *r = &rows->v[i];

		ks_json_begin_object(&j);
		ks_json_kv_string(&j, "vm", r->vm);
		ks_json_kv_string(&j, "segment", r->file);
		if (r->error) {
			ks_json_kv_string(&j, "error", r->error);
			ks_json_end_object(&j);
			continue;
		}
		ks_json_kv_i64(&j, "pid", r->pid);
		ks_json_kv_string(&j, "state", r->state);
		ks_json_kv_u64(&j, "vcpus", r->vcpus);
		ks_json_kv_u64(&j, "stats", r->stats);
		ks_json_kv_u64(&j, "poll-period-ns", r->period_ns);
		ks_json_kv_u64(&j, "sweep", r->sweep);
		ks_json_key(&j, "age-ms");
		if (r->age_ms < 0)
			ks_json_null(&j);
		else
			ks_json_i64(&j, r->age_ms);
		ks_json_kv_u64(&j, "generation", r->generation);
		ks_json_end_object(&j);
	}
	ks_json_end_array(&j);
	ks_json_finish(&j);
}

static void
print_text(const struct rows *rows)
{
	int w = 2;	/* "VM" */

	for (size_t i = 0; i < rows->n; i++)
		if ((int)strlen(rows->v[i].vm) > w)
			w = (int)strlen(rows->v[i].vm);
	printf("%-*s  %7s  %-10s  %5s  %5s  %8s  %8s  %3s\n", w, "VM", "PID", "STATE",
	       "VCPUS", "STATS", "RATE(Hz)", "AGE(ms)", "GEN");
	for (size_t i = 0; i < rows->n; i++) {
		const struct row *r = &rows->v[i];
		char rate[32] = "-", age[32] = "-";

		if (r->error) {
			printf("%-*s  error: %s\n", w, r->vm, r->error);
			continue;
		}
		if (r->period_ns)
			snprintf(rate, sizeof(rate), "%g", 1e9 / (double)r->period_ns);
		if (r->age_ms >= 0)
			snprintf(age, sizeof(age), "%" PRId64, r->age_ms);
		printf("%-*s  %7d  %-10s  %5u  %5u  %8s  %8s  %3" PRIu64 "\n", w, r->vm,
		       (int)r->pid, r->state, r->vcpus, r->stats, rate, age, r->generation);
	}
}

static void
free_rows(struct rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		free(rows->v[i].file);
		free(rows->v[i].vm);
		free(rows->v[i].error);
	}
	free(rows->v);
}

int
ks_cmd_list(struct ks_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct kvmstats_error err = { 0 };
	struct rows rows = { .cli = cli };
	bool json = false;
	int c, rc = KS_EXIT_OK, r;

	while ((c = ks_cli_getopt(cli, argc, argv, ":" KS_CLI_COMMON_SHORT "j",
				  longopts, list_help, &rc)) != -1) {
		if (c == -2)
			return rc;
		json = true;	/* 'j', the only option of our own */
	}
	if (optind < argc)
		return ks_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	r = kvmstats_enumerate(cli->dir, add_row, &rows, &err);
	if (rows.oom) {
		ks_cli_error(cli, "out of memory");
		rc = KS_EXIT_RUNTIME;
	} else if (r < 0) {
		ks_cli_error(cli, "%s", err.msg[0] ? err.msg : "cannot read the directory");
		rc = KS_EXIT_RUNTIME;
	} else if (json) {
		print_json(&rows);
	} else {
		print_text(&rows);
	}
	free_rows(&rows);
	return rc;
}
