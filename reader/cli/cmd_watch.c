/* SPDX-License-Identifier: MIT */
/*
 * cmd_watch.c - "kvmstats watch": one record per interval, for logs (as
 * kvm_stat -l/-L): totals and rates of the chosen stats, with the sample's
 * sweep and the publisher's time, in CSV, JSON lines or text.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "ks_shmdir.h"
#include "ks_text.h"
#include "sampler.h"
#include "series.h"

enum watch_format { W_CSV, W_JSONL, W_TEXT };

struct watch {
	const struct ks_cli *cli;
	const char *vm_arg;
	const char *provider;
	regex_t re;
	bool have_re, per_vcpu, follow;
	uint64_t interval_ns;
	uint64_t count;			/* 0: until stopped */
	enum watch_format fmt;
	const char *path;		/* -L/--output: appended to, reopened on SIGHUP */
	FILE *out;
	bool header_done;
	struct kvmstats_segment *seg;
	struct ks_rows rows;
	struct ks_snap prev, cur;
};

static volatile sig_atomic_t got_stop, got_hup;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static void
watch_help(void)
{
	printf("Usage: kvmstats watch [VM] [--interval S] [--format csv|jsonl|text]\n"
	       "                      [--stats REGEX] [--provider P] [--per-vcpu]\n"
	       "                      [--output FILE] [--count N] [--follow]\n"
	       "\n"
	       "One record per interval of a VM's stats, for a log (as kvm_stat -l/-L):\n"
	       "each stat's total and its rate per second since the record before, from\n"
	       "the publisher's own timestamps.  Each record carries the sample's sweep,\n"
	       "its publisher time (CLOCK_MONOTONIC ns; per row, of the row's first\n"
	       "target: a row's rate is its value's change over exactly that time), the\n"
	       "wall-clock time it stands for,\n"
	       "the segment's generation and the publisher's state (live, stale, dead):\n"
	       "a stale publisher is reported in the record, with no rate, not hidden.\n"
	       "\n"
	       "  -i, --interval S   seconds between records, 0.01 to 3600 (default 1)\n"
	       "  -f, --format F     csv (default: a header once, then one line per stat\n"
	       "                     and record: time,mono_ns,sweep,vm,generation,state,\n"
	       "                     target,provider,stat,value,rate), jsonl (one JSON\n"
	       "                     object per record), text\n"
	       "  -s, --stats REGEX  only stats whose name matches (POSIX extended regex)\n"
	       "  -p, --provider P   only provider P\n"
	       "      --per-vcpu     one row per vCPU (target vcpuN), not the sum over them\n"
	       "                     (target vcpus); the VM's own stats are target vm\n"
	       "  -L, --output FILE  append to FILE, reopened on SIGHUP (logrotate);\n"
	       "                     flushed after every record (-o is --owner in kvmstats)\n"
	       "  -n, --count N      stop after N records\n"
	       "      --follow       when the VM ends, wait for it to come back (a new\n"
	       "                     publisher under its name) instead of exiting\n"
	       "\n"
	       "A histogram's value is its count of samples, and its rate is that count per\n"
	       "second.  A new generation (vCPU hotplug, a restarted publisher) is followed;\n"
	       "its first record has no rates.  Exit status: 0 when stopped (SIGINT,\n"
	       "SIGTERM, --count) or when the VM ends; 1 runtime error; 2 usage error.\n");
}

static int
parse_interval(const struct ks_cli *cli, const char *s, uint64_t *ns)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= 0.01 && v <= 3600))
		return ks_cli_usage_error(cli, "--interval '%s': give seconds from 0.01 to 3600", s);
	*ns = (uint64_t)(v * 1e9 + 0.5);
	return KS_EXIT_OK;
}

static int
open_output(struct watch *w)
{
	FILE *f;

	if (w->path == NULL) {
		w->out = stdout;
		return KS_EXIT_OK;
	}
	f = fopen(w->path, "a");
	if (f == NULL) {
		ks_cli_error(w->cli, "cannot open %s for appending: %s", w->path, strerror(errno));
		return KS_EXIT_RUNTIME;
	}
	if (w->out != NULL && w->out != stdout)
		fclose(w->out);
	w->out = f;
	/* A rotated file starts anew: the CSV header again (if empty). */
	w->header_done = ftell(f) > 0;
	return KS_EXIT_OK;
}

/* The wall-clock time a publisher time stands for, as 2026-12-01T12:34:56.789Z. */
static void
wall_time(uint64_t mono_ns, char *buf, size_t len)
{
	struct timespec rt, mt;
	int64_t wall_ns;
	time_t secs;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	wall_ns = ((int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec) -
		  ((int64_t)mt.tv_sec * 1000000000 + mt.tv_nsec - (int64_t)mono_ns);
	secs = (time_t)(wall_ns / 1000000000);
	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(wall_ns % 1000000000 / 1000000));
}

/* A CSV field: as it is, or quoted with its quotes doubled. */
static void
csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\n\r") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void
emit(struct watch *w, const char *state)
{
	const struct kvmstats_segment_info *in = kvmstats_info(w->seg);
	const struct kvmstats_sample *smp = &w->cur.samples[0];
	bool rates = ks_snap_same(&w->prev, &w->cur) && strcmp(state, "live") == 0;
	char when[96], target[32], rate[48];
	FILE *f = w->out;

	wall_time(smp->time_ns, when, sizeof(when));
	if (w->fmt == W_CSV && !w->header_done) {
		fputs("time,mono_ns,sweep,vm,generation,state,target,provider,stat,value,rate\n", f);
		w->header_done = true;
	}
	if (w->fmt == W_JSONL) {
		fprintf(f, "{\"time\":\"%s\",\"mono_ns\":%llu,\"sweep\":%llu,\"vm\":", when,
			(unsigned long long)smp->time_ns, (unsigned long long)smp->sweep);
		ks_json_write_string(f, in->vm_name);
		fprintf(f, ",\"generation\":%llu,\"state\":\"%s\",\"stats\":[",
			(unsigned long long)in->generation, state);
	} else if (w->fmt == W_TEXT) {
		fprintf(f, "%s sweep %llu VM ", when, (unsigned long long)smp->sweep);
		ks_text_fputs(f, in->vm_name);
		fprintf(f, " generation %llu %s\n", (unsigned long long)in->generation, state);
	}
	for (size_t i = 0; i < w->rows.n; i++) {
		const struct ks_row *r = &w->rows.v[i];
		double x = rates ? ks_row_rate(r, &w->prev, &w->cur) : NAN;
		uint64_t total = ks_row_total(r, &w->cur);

		ks_row_target(r, target, sizeof(target));
		/* Instant and peak values have no rate: they are levels. */
		if (r->st->type == KVMSTATS_TYPE_INSTANT || r->st->type == KVMSTATS_TYPE_PEAK)
			x = NAN;
		if (isnan(x))
			rate[0] = '\0';
		else
			snprintf(rate, sizeof(rate), "%.3f", x);
		/* The row's own sample time (its first target's): its rate is over exactly that. */
		uint64_t mono = w->cur.samples[r->targets[0]].time_ns;

		switch (w->fmt) {
		case W_CSV:
			fprintf(f, "%s,%llu,%llu,", when, (unsigned long long)mono,
				(unsigned long long)smp->sweep);
			csv_field(f, in->vm_name);
			fprintf(f, ",%llu,%s,%s,", (unsigned long long)in->generation, state, target);
			csv_field(f, r->st->provider_name);
			fputc(',', f);
			csv_field(f, r->st->name);
			fprintf(f, ",%llu,%s\n", (unsigned long long)total, rate);
			break;
		case W_JSONL:
			fprintf(f, "%s{\"target\":\"%s\",\"provider\":", i ? "," : "", target);
			ks_json_write_string(f, r->st->provider_name);
			fputs(",\"stat\":", f);
			ks_json_write_string(f, r->st->name);
			fprintf(f, ",\"mono_ns\":%llu,\"value\":%llu,\"rate\":%s}",
				(unsigned long long)mono, (unsigned long long)total,
				rate[0] ? rate : "null");
			break;
		case W_TEXT:
			fprintf(f, "  %-6s ", target);
			ks_text_fputs(f, r->st->name);
			fprintf(f, " %llu%s%s%s\n", (unsigned long long)total, rate[0] ? " (" : "",
				rate, rate[0] ? "/s)" : "");
			break;
		}
	}
	if (w->fmt == W_JSONL)
		fputs("]}\n", f);
	fflush(f);
}

static int
attach_rows(struct watch *w)
{
	ks_rows_free(&w->rows);
	if (ks_rows_build(w->seg, w->provider, w->have_re ? &w->re : NULL, w->per_vcpu,
			  &w->rows) < 0) {
		ks_cli_error(w->cli, "out of memory");
		return KS_EXIT_RUNTIME;
	}
	if (w->rows.n == 0) {
		ks_cli_error(w->cli, "VM '%s' has no stat that --stats and --provider select",
			     kvmstats_info(w->seg)->vm_name);
		return KS_EXIT_RUNTIME;
	}
	return KS_EXIT_OK;
}

/*
 * Sleep to @deadline (CLOCK_MONOTONIC), or until asked to stop; a SIGHUP
 * on the way reopens the output and the sleep goes on.  Return: an exit
 * code if reopening failed, else KS_EXIT_OK.
 */
static int
sleep_until(struct watch *w, uint64_t deadline)
{
	struct timespec ts = { (time_t)(deadline / 1000000000), (long)(deadline % 1000000000) };

	while (!got_stop) {
		int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);

		if (got_hup) {
			got_hup = 0;
			if (open_output(w) != KS_EXIT_OK)
				return KS_EXIT_RUNTIME;
		}
		if (r != EINTR)
			break;
	}
	return KS_EXIT_OK;
}

/* The last values of a VM that ended, as its last record. */
static void
final_record(struct watch *w)
{
	if (ks_snap_take(w->seg, &w->cur) == 0)
		emit(w, "ended");
}

/*
 * The VM ended: wait for a live publisher under its name (--follow), or
 * say so.  Return: 1 to go on (w->seg is the new segment), 0 to stop, or
 * a negative exit code.
 */
static int
vm_ended(struct watch *w, uint64_t *next)
{
	struct kvmstats_error err;
	char name[KVMSTATS_VM_NAME_MAX + 1];

	snprintf(name, sizeof(name), "%s", kvmstats_info(w->seg)->vm_name);
	final_record(w);
	if (!w->follow) {
		ks_cli_error(w->cli, "VM '%s' ended", name);
		return 0;
	}
	ks_cli_error(w->cli, "VM '%s' ended; waiting for it to come back (--follow)", name);
	while (!got_stop) {
		struct kvmstats_liveness lv;

		kvmstats_follow(&w->seg, &err);
		/* Whatever the handle is now: live again is what counts. */
		kvmstats_liveness(w->seg, &lv);
		if (lv.health == KVMSTATS_HEALTH_LIVE) {
			ks_cli_error(w->cli, "VM '%s' is back (generation %llu)", name,
				     (unsigned long long)kvmstats_info(w->seg)->generation);
			return attach_rows(w) == KS_EXIT_OK ? 1 : -KS_EXIT_RUNTIME;
		}
		*next += w->interval_ns;
		if (sleep_until(w, *next) != KS_EXIT_OK)
			return -KS_EXIT_RUNTIME;
	}
	return 0;
}

static int
run(struct watch *w)
{
	uint64_t next = kvmstats_now_ns(), records = 0;
	struct kvmstats_error err;

	for (;;) {
		struct kvmstats_liveness lv;
		const char *state;
		int r;

		if (got_stop)
			return KS_EXIT_OK;
		kvmstats_liveness(w->seg, &lv);
		if (lv.health == KVMSTATS_HEALTH_SUPERSEDED || lv.health == KVMSTATS_HEALTH_DEAD) {
			r = kvmstats_follow(&w->seg, &err);
			if (r == 1) {
				if (attach_rows(w) != KS_EXIT_OK)
					return KS_EXIT_RUNTIME;
				w->prev.valid = false;
				continue;
			}
		}
		if (lv.health == KVMSTATS_HEALTH_BROKEN) {
			ks_cli_error(w->cli, "VM '%s': its segment was truncated or damaged under "
				     "this reader: its values are gone", kvmstats_info(w->seg)->vm_name);
			return KS_EXIT_RUNTIME;
		}
		if (lv.health == KVMSTATS_HEALTH_ENDED) {
			r = vm_ended(w, &next);
			if (r <= 0)
				return -r;
			w->prev.valid = false;
			continue;
		}
		/*
		 * Superseded and its successor not there yet (a publisher
		 * between two generations): try again at the next record.
		 */
		if (lv.health != KVMSTATS_HEALTH_SUPERSEDED) {
			state = kvmstats_health_name(lv.health);
			r = ks_snap_take(w->seg, &w->cur);
			if (r == 0) {
				emit(w, state);
				if (ferror(w->out)) {
					ks_cli_error(w->cli, "writing the records failed: %s",
						     strerror(errno));
					return KS_EXIT_RUNTIME;
				}
				ks_snap_copy(&w->prev, &w->cur);
				if (w->count && ++records == w->count)
					return KS_EXIT_OK;
			} else if (r != -ENODATA && r != -EAGAIN) {
				ks_cli_error(w->cli, "VM '%s': reading failed: %s",
					     kvmstats_info(w->seg)->vm_name, strerror(-r));
				return KS_EXIT_RUNTIME;
			}
		}
		next += w->interval_ns;
		if (next < kvmstats_now_ns())	/* fell behind (suspended): no burst */
			next = kvmstats_now_ns() + w->interval_ns;
		if (sleep_until(w, next) != KS_EXIT_OK)
			return KS_EXIT_RUNTIME;
	}
}

int
ks_cmd_watch(struct ks_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		{ "interval", required_argument, NULL, 'i' },
		{ "format", required_argument, NULL, 'f' },
		{ "stats", required_argument, NULL, 's' },
		{ "provider", required_argument, NULL, 'p' },
		{ "per-vcpu", no_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'L' },
		{ "count", required_argument, NULL, 'n' },
		{ "follow", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct watch w = { .cli = cli, .interval_ns = 1000000000, .fmt = W_CSV };
	struct sigaction sa = { .sa_handler = on_signal };
	int c, rc = KS_EXIT_OK;

	ks_snap_init(&w.prev);
	ks_snap_init(&w.cur);
	while ((c = ks_cli_getopt(cli, argc, argv, ":" KS_CLI_COMMON_SHORT "i:f:s:p:L:n:",
				  longopts, watch_help, &rc)) != -1) {
		uint64_t v;

		switch (c) {
		case -2:
			goto out;
		case 'i':
			rc = parse_interval(cli, optarg, &w.interval_ns);
			break;
		case 'f':
			if (strcmp(optarg, "csv") == 0)
				w.fmt = W_CSV;
			else if (strcmp(optarg, "jsonl") == 0)
				w.fmt = W_JSONL;
			else if (strcmp(optarg, "text") == 0)
				w.fmt = W_TEXT;
			else
				rc = ks_cli_usage_error(cli, "--format '%s': give csv, jsonl or text",
							optarg);
			break;
		case 's': {
			char why[256];
			int e;

			if (w.have_re)
				regfree(&w.re);
			w.have_re = false;
			e = regcomp(&w.re, optarg, REG_EXTENDED | REG_NOSUB);
			if (e != 0) {
				regerror(e, &w.re, why, sizeof(why));
				regfree(&w.re);
				rc = ks_cli_usage_error(cli, "--stats '%s': not a regular expression: %s",
							optarg, why);
			} else {
				w.have_re = true;
			}
			break;
		}
		case 'p':
			w.provider = optarg;
			break;
		case 'V':
			w.per_vcpu = true;
			break;
		case 'L':
			if (optarg[0] == '\0')
				rc = ks_cli_usage_error(cli, "--output needs a file name");
			w.path = optarg;
			break;
		case 'n':
			if (ks_cli_parse_u64(optarg, UINT32_MAX, &v) < 0 || v == 0)
				rc = ks_cli_usage_error(cli, "--count '%s': give a number of records, "
							"1 or more", optarg);
			w.count = v;
			break;
		case 'F':
			w.follow = true;
			break;
		}
		if (rc != KS_EXIT_OK)
			goto out;
	}
	if (optind < argc)
		w.vm_arg = argv[optind++];
	if (optind < argc) {
		rc = ks_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	rc = ks_cli_open_live(cli, w.vm_arg, w.provider, &w.seg);
	if (rc != KS_EXIT_OK)
		goto out;
	rc = attach_rows(&w);
	if (rc != KS_EXIT_OK)
		goto out;
	rc = open_output(&w);
	if (rc != KS_EXIT_OK)
		goto out;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = run(&w);
out:
	if (w.out != NULL && w.out != stdout)
		fclose(w.out);
	ks_rows_free(&w.rows);
	ks_snap_free(&w.prev);
	ks_snap_free(&w.cur);
	if (w.seg != NULL)
		kvmstats_detach(&w.seg);
	if (w.have_re)
		regfree(&w.re);
	return rc;
}
