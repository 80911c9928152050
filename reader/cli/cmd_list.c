/* SPDX-License-Identifier: MIT */
/*
 * cmd_list.c - "kvmstats list": every segment in the directory and what
 * its publisher is doing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "ks_shmdir.h"
#include "ks_text.h"

struct row {
	char *file;		/* segment file name, as the directory has it */
	char *vm;		/* the VM name in the segment */
	char *error;		/* attach failed: why; other fields unset */
	pid_t pid;
	const char *state;	/* kvmstats_health_name() */
	unsigned vcpus, stats;
	bool vm_stats;		/* it has a VM target */
	char *note;		/* the publisher's, "" for none */
	uint64_t period_ns, sweep, generation, overruns;
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
	       "One line per VM segment:\n"
	       "  NAME      what to name the VM in the other commands\n"
	       "  PID       its publisher's process id (in the publisher's PID namespace)\n"
	       "  STATE     live: sweeping; stale: its publisher runs but has not swept for\n"
	       "            4 periods and at least a second (stopped, starved, stuck);\n"
	       "            dead: its publisher is gone without ending it; ended: its VM or\n"
	       "            publisher ended; superseded: a newer segment has its name;\n"
	       "            broken: truncated or damaged after it was made\n"
	       "  VCPUS     vCPUs\n"
	       "  STATS     stats, summed over the VM and its vCPUs\n"
	       "  RATE(Hz)  sweeps per second\n"
	       "  AGE(ms)   since the newest sweep ('-' before the first)\n"
	       "  OVERRUNS  sweep deadlines its publisher missed\n"
	       "  GEN       the segment's generation (a new one on vCPU hotplug)\n"
	       "Below the table, what publishers note about their VMs' sources, above all\n"
	       "why a VM has no VM-level stats (\"NAME: no VM stats: ...\").\n"
	       "A file that cannot be attached is listed with the reason instead.  Names\n"
	       "and messages are escaped: a byte that is not printable text shows as \\xNN.\n"
	       "\n"
	       "  --json    a JSON array instead, one object per segment: \"name\", \"vm\",\n"
	       "            \"segment\", \"pid\", \"state\", \"vcpus\", \"stats\",\n"
	       "            \"poll-period-ns\", \"sweep\", \"age-ms\" (null before the first\n"
	       "            sweep), \"overruns\", \"generation\", \"vm-stats\" (whether it\n"
	       "            has VM-level stats), \"note\" (when its publisher notes one);\n"
	       "            or \"name\", \"segment\",\n"
	       "            \"error\" for a file that could not be attached\n");
}

static void
fill_row(struct row *r, const struct kvmstats_segment *seg)
{
	const struct kvmstats_segment_info *info = kvmstats_info(seg);
	struct kvmstats_liveness lv;
	struct kvmstats_status st;

	kvmstats_status(seg, &st);
	kvmstats_liveness(seg, &lv);
	r->vm = strdup(info->vm_name);
	r->pid = info->publisher_pid;
	r->state = kvmstats_health_name(lv.health);
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

		r->vcpus += ti->kind == KVMSTATS_TARGET_VCPU;
		r->vm_stats |= ti->kind == KVMSTATS_TARGET_VM;
		r->stats += ti->nr_stats;
	}
	r->period_ns = info->poll_period_ns;
	r->sweep = st.sweep;
	r->generation = info->generation;
	r->overruns = st.overruns;
	r->age_ms = st.sweep != 0 ? (int64_t)(lv.age_ns / 1000000) : -1;
	r->note = strdup(kvmstats_note(seg));
}

static int
add_row(const char *segment_file, void *arg)
{
	struct rows *rows = arg;
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err = { 0 };
	struct kvmstats_segment *seg;
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
		r->error = strdup(err.msg[0] ? err.msg : "cannot attach");
		return (!r->file || !r->error) ? (rows->oom = 1) : 0;
	}
	fill_row(r, seg);
	kvmstats_detach(&seg);
	return (!r->file || !r->vm || !r->note) ? (rows->oom = 1) : 0;
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
		ks_json_kv_string(&j, "name", ks_vm_name_of(r->file));
		if (!r->error)
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
		ks_json_kv_u64(&j, "overruns", r->overruns);
		ks_json_kv_u64(&j, "generation", r->generation);
		ks_json_key(&j, "vm-stats");
		ks_json_bool(&j, r->vm_stats);
		if (r->note[0] != '\0')
			ks_json_kv_string(&j, "note", r->note);
		ks_json_end_object(&j);
	}
	ks_json_end_array(&j);
	ks_json_finish(&j);
}

/* @name escaped (a file name may hold any byte), padded to @w columns. */
static void
put_name(const char *name, int w)
{
	char esc[1024];
	int cols;

	ks_text_escape(esc, sizeof(esc), name);
	cols = (int)ks_text_columns(esc);
	fputs(esc, stdout);
	for (; cols < w; cols++)
		fputc(' ', stdout);
}

static void
print_text(const struct rows *rows)
{
	int w = 4;	/* "NAME" */

	for (size_t i = 0; i < rows->n; i++) {
		char esc[1024];
		int cols = (int)ks_text_columns(ks_text_escape(esc, sizeof(esc),
							       ks_vm_name_of(rows->v[i].file)));

		w = cols > w ? cols : w;
	}
	printf("%-*s  %7s  %-10s  %5s  %5s  %8s  %8s  %8s  %3s\n", w, "NAME", "PID", "STATE",
	       "VCPUS", "STATS", "RATE(Hz)", "AGE(ms)", "OVERRUNS", "GEN");
	for (size_t i = 0; i < rows->n; i++) {
		const struct row *r = &rows->v[i];
		char rate[32] = "-", age[32] = "-";

		put_name(ks_vm_name_of(r->file), w);
		if (r->error) {
			fputs("  error: ", stdout);
			ks_text_fputs(stdout, r->error);
			fputc('\n', stdout);
			continue;
		}
		if (r->period_ns)
			snprintf(rate, sizeof(rate), "%g", 1e9 / (double)r->period_ns);
		if (r->age_ms >= 0)
			snprintf(age, sizeof(age), "%" PRId64, r->age_ms);
		printf("  %7d  %-10s  %5u  %5u  %8s  %8s  %8" PRIu64 "  %3" PRIu64 "\n",
		       (int)r->pid, r->state, r->vcpus, r->stats, rate, age, r->overruns,
		       r->generation);
	}
	/* Notes below the table: a column would be as wide as the longest. */
	for (size_t i = 0; i < rows->n; i++) {
		if (rows->v[i].error || rows->v[i].note[0] == '\0')
			continue;
		put_name(ks_vm_name_of(rows->v[i].file), 0);
		fputs(": ", stdout);
		ks_text_fputs(stdout, rows->v[i].note);
		fputc('\n', stdout);
	}
}

static void
free_rows(struct rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		free(rows->v[i].file);
		free(rows->v[i].vm);
		free(rows->v[i].error);
		free(rows->v[i].note);
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
