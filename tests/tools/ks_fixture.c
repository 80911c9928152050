/* SPDX-License-Identifier: MIT */
/*
 * ks_fixture.c - make one segment with fixed contents, for the CLI's
 * golden tests.
 *
 *   ks_fixture [--dir DIR] [--mode x86|formats] [--name VM] [--keep] [--ended]
 *              [--serve PIDFILE [--stale]] [--odd]
 *
 * x86 (default): VM "kvm-4242" with the real kvm_amd tables, a VM target
 * and two vCPUs labelled as QEMU labels them.  formats: VM "kvm-formats",
 * two providers and stats that exercise every HMP unit rule, u64 values
 * that a double would round, and labels that need JSON escaping.
 *
 * One sweep is written, with values that are a function of the target and
 * the value's place in the record (never of time), the segment is
 * published, and its file name is printed.  With --keep the segment stays
 * after exit: its publisher is gone, so readers see it dead.  Without, it
 * is removed again.  --ended marks it ended, as a publisher does when its
 * VM goes away.
 *
 * --serve PIDFILE: a publisher that stays.  A child keeps the segment
 * (and so its liveness lock) and sweeps it at 10 Hz with the same values,
 * until SIGTERM or 10 minutes, then leaves it as it is; its pid goes to
 * PIDFILE before the parent prints the name and exits, so the segment is
 * live by then.  --stale: the child never sweeps again, and the heartbeat
 * is from long ago: a publisher that lives but is stuck.  --odd: the VM
 * target's slot of the published sweep is left odd, as by a publisher
 * stopped in the middle of writing it (readers cannot get a sample).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ks_time.h"
#include "kvm_x86_tables.h"
#include "ks_seqlock.h"
#include "segment_writer.h"

#define FIX_INCARNATION		1700000000000000000ull
#define FIX_PERIOD_NS		100000000ull	/* 10 Hz */
#define FIX_RING_DEPTH		4
#define FIX_SWEEP		1

struct fixture {
	const char *dir;
	const char *name;
	const char *mode;
	const char *pidfile;		/* --serve */
	bool keep, ended, stale, odd;
};

#define SERVE_MAX_S		600	/* a server whose test died goes too */

/* ---- values ---------------------------------------------------------- */

/*
 * The value of word @w of target @t: counters 1000 * (t + 1) + w, so a
 * reader that takes a stat from the wrong place shows it; booleans
 * alternate; histogram buckets are sparse and distinct.
 */
static void
fill_stat(uint64_t *rec, unsigned t, const struct ks_seg_stat_def *sd)
{
	uint64_t *v = rec + sd->value_index;

	if (sd->size > 1) {
		for (unsigned i = 0; i < sd->size; i++)
			v[i] = i % 5 == t % 5 ? t * 100 + i + 1 : 0;
		return;
	}
	if (sd->unit == KS_UNIT_BOOLEAN)
		v[0] = (t + sd->value_index) & 1;
	else
		v[0] = 1000ull * (t + 1) + sd->value_index;
	/* Values QEMU's HMP prints negative and a double would round. */
	if (strcmp(sd->name, "big_counter") == 0)
		v[0] = UINT64_MAX - 1;
	else if (strcmp(sd->name, "exact_2p53") == 0)
		v[0] = (1ull << 53) + 1;
	else if (strcmp(sd->name, "dirty_peak") == 0)
		v[0] = 1;
}

static int
write_sweep(struct ks_segment_writer *w, const struct ks_seg_def *def, uint64_t sweep,
	    uint64_t heartbeat_ns)
{
	uint64_t now = ks_mono_ns();

	for (uint32_t t = 0; t < def->nr_targets; t++) {
		const struct ks_seg_target_def *td = &def->targets[t];
		struct ks_shm_slot *slot = ks_segment_slot(w, t, sweep);
		uint64_t *rec = calloc(td->record_words + 1, sizeof(*rec));

		if (!rec)
			return -ENOMEM;
		for (uint32_t i = 0; i < td->nr_stats; i++)
			fill_stat(rec, t, &td->stats[i]);
		ks_slot_write_begin(slot);
		ks_slot_stamp(slot, sweep, now, 0);
		ks_store_words(slot->values, rec, td->record_words);
		ks_slot_write_end(slot);
		free(rec);
	}
	ks_header_publish_sweep(w->hdr, sweep, heartbeat_ns ? heartbeat_ns : now);
	return 0;
}

/* ---- x86: the real kvm_amd tables --------------------------------------- */

static void
from_desc(struct ks_seg_stat_def *sd, const struct ks_image_desc *d)
{
	memset(sd, 0, sizeof(*sd));
	sd->name = d->name;
	sd->provider = 0;
	sd->type = (d->flags & KVM_STATS_TYPE_MASK) >> KVM_STATS_TYPE_SHIFT;
	sd->unit = (d->flags & KVM_STATS_UNIT_MASK) >> KVM_STATS_UNIT_SHIFT;
	sd->base = (d->flags & KVM_STATS_BASE_MASK) == KVM_STATS_BASE_POW2 ? 2 : 10;
	sd->exponent = d->exponent;
	sd->size = d->size;
	sd->bucket_size = d->bucket_size;
	sd->value_index = d->offset / 8;
}

static struct ks_seg_stat_def x86_vm_stats[KS_X86_VM_NR_DESC];
static struct ks_seg_stat_def x86_vcpu_stats[KS_X86_VCPU_NR_DESC];
static const char *const kvm_only[] = { "kvm" };

static void
x86_def(struct ks_seg_def *def, struct ks_seg_target_def *targets, const char *name)
{
	static char ids[3][64];

	for (unsigned i = 0; i < KS_X86_VM_NR_DESC; i++)
		from_desc(&x86_vm_stats[i], &ks_x86_vm_desc[i]);
	for (unsigned i = 0; i < KS_X86_VCPU_NR_DESC; i++)
		from_desc(&x86_vcpu_stats[i], &ks_x86_vcpu_desc[i]);
	snprintf(ids[0], sizeof(ids[0]), "%s", name);
	snprintf(ids[1], sizeof(ids[1]), "%s/vcpu-0", name);
	snprintf(ids[2], sizeof(ids[2]), "%s/vcpu-1", name);
	targets[0] = (struct ks_seg_target_def){
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE,
		.label = ids[0], .id = ids[0], .nr_stats = KS_X86_VM_NR_DESC,
		.stats = x86_vm_stats, .record_words = KS_X86_VM_DATA_SIZE / 8 };
	for (unsigned c = 0; c < 2; c++)
		targets[1 + c] = (struct ks_seg_target_def){
			.kind = KS_TARGET_VCPU, .vcpu_index = c,
			.label = c == 0 ? "/machine/unattached/device[0]" :
					  "/machine/unattached/device[1]",
			.id = ids[1 + c], .nr_stats = KS_X86_VCPU_NR_DESC,
			.stats = x86_vcpu_stats, .record_words = KS_X86_VCPU_DATA_SIZE / 8 };
	def->nr_providers = 1;
	def->providers = kvm_only;
	def->nr_targets = 3;
}

/* ---- formats: every HMP scale rule --------------------------------------- */

#define CUM	KS_TYPE_CUMULATIVE
#define INST	KS_TYPE_INSTANT
#define PEAK	KS_TYPE_PEAK
#define LIN	KS_TYPE_LINEAR_HIST
#define LOG	KS_TYPE_LOG_HIST
#define S(nm, prov, ty, un, ba, ex, sz, bs) \
	{ .name = nm, .provider = prov, .type = ty, .unit = KS_UNIT_##un, \
	  .base = ba, .exponent = ex, .size = sz, .bucket_size = bs }

/* Providers interleave on purpose: order within a provider is what counts. */
static struct ks_seg_stat_def fmt_vm_stats[] = {
	S("mem_kib", 0, INST, BYTES, 2, 10, 1, 0),		/* KiB */
	S("mem_mib", 0, INST, BYTES, 2, 20, 1, 0),		/* MiB */
	S("wait_ns", 1, CUM, SECONDS, 10, -9, 1, 0),		/* ns */
	S("page_units", 0, INST, BYTES, 2, 12, 1, 0),		/* * 2^12 bytes */
	S("bytes_plain", 0, CUM, BYTES, 10, 0, 1, 0),		/* B */
	S("bytes_kb", 0, CUM, BYTES, 10, 3, 1, 0),		/* KB */
	S("mem_gib", 0, INST, BYTES, 2, 30, 1, 0),		/* GiB */
	S("mem_2p70", 0, INST, BYTES, 2, 70, 1, 0),		/* * 2^70 bytes */
	S("big_counter", 0, CUM, NONE, 10, 0, 1, 0),		/* prints -2 in HMP */
	S("exact_2p53", 0, CUM, NONE, 10, 0, 1, 0),		/* 2^53 + 1 */
	S("dirty_peak", 0, PEAK, BOOLEAN, 10, 0, 1, 0),		/* boolean peak */
	S("kilo_count", 0, CUM, NONE, 10, 3, 1, 0),		/* * 10^3 */
	S("wait_us", 1, CUM, SECONDS, 10, -6, 1, 0),		/* us */
	S("wait_ms", 1, CUM, SECONDS, 10, -3, 1, 0),		/* ms */
	S("wait_cs", 1, CUM, SECONDS, 10, -2, 1, 0),		/* * 10^-2 seconds */
	S("wait_s", 1, CUM, SECONDS, 10, 0, 1, 0),		/* s */
	S("wait_as", 1, CUM, SECONDS, 10, -18, 1, 0),		/* as */
	S("wait_zs", 1, CUM, SECONDS, 10, -21, 1, 0),		/* * 10^-21 seconds */
	S("kcycles", 1, CUM, CYCLES, 10, 3, 1, 0),		/* * 10^3 cycles */
	S("cycles", 1, CUM, CYCLES, 10, 0, 1, 0),		/* cycles */
	S("lat_hist", 1, LIN, SECONDS, 10, -6, 8, 50),		/* us, bucket size=50 */
	S("size_hist", 1, LOG, BYTES, 2, 0, 6, 0),		/* B */
	S("flag_hist", 1, LIN, BOOLEAN, 10, 0, 2, 1),		/* list, not yes/no */
};

static struct ks_seg_stat_def fmt_vcpu_stats[] = {
	S("exits", 0, CUM, NONE, 10, 0, 1, 0),
	S("guest_mode", 0, INST, BOOLEAN, 10, 0, 1, 0),
	S("steal_kcycles", 1, CUM, CYCLES, 10, 3, 1, 0),
	S("tick_hist", 0, LIN, NONE, 10, 0, 4, 10),
	S("run_ns", 0, CUM, SECONDS, 10, -9, 1, 0),
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static uint32_t
layout(struct ks_seg_stat_def *st, size_t n)
{
	uint32_t words = 0;

	for (size_t i = 0; i < n; i++) {
		st[i].value_index = words;
		words += st[i].size;
	}
	return words;
}

static const char *const fmt_providers[] = { "kvm", "synth" };

static void
formats_def(struct ks_seg_def *def, struct ks_seg_target_def *targets, const char *name)
{
	uint32_t vm_words = layout(fmt_vm_stats, ARRAY_SIZE(fmt_vm_stats));
	uint32_t vcpu_words = layout(fmt_vcpu_stats, ARRAY_SIZE(fmt_vcpu_stats));

	targets[0] = (struct ks_seg_target_def){
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE,
		.label = name, .id = name, .nr_stats = ARRAY_SIZE(fmt_vm_stats),
		.stats = fmt_vm_stats, .record_words = vm_words };
	/* vCPU ids need not be dense (QEMU uses APIC ids); labels need escaping. */
	targets[1] = (struct ks_seg_target_def){
		.kind = KS_TARGET_VCPU, .vcpu_index = 0, .label = "/machine/cpu0",
		.id = "formats/vcpu-0", .nr_stats = ARRAY_SIZE(fmt_vcpu_stats),
		.stats = fmt_vcpu_stats, .record_words = vcpu_words };
	targets[2] = (struct ks_seg_target_def){
		.kind = KS_TARGET_VCPU, .vcpu_index = 4,
		.label = "cpu \"four\" \\ \xc3\xa9",
		.id = "formats/vcpu-4", .nr_stats = ARRAY_SIZE(fmt_vcpu_stats),
		.stats = fmt_vcpu_stats, .record_words = vcpu_words };
	def->nr_providers = ARRAY_SIZE(fmt_providers);
	def->providers = fmt_providers;
	def->nr_targets = 3;
}

/* ---- main -------------------------------------------------------------- */

static int
usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: ks_fixture [--dir DIR] [--mode x86|formats] [--name VM] [--keep] [--ended]\n"
		"                  [--serve PIDFILE [--stale]] [--odd]\n");
	return rc;
}

static int
parse(int argc, char **argv, struct fixture *fx)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'n' },
		{ "keep", no_argument, NULL, 'k' },
		{ "ended", no_argument, NULL, 'e' },
		{ "serve", required_argument, NULL, 's' },
		{ "stale", no_argument, NULL, 'S' },
		{ "odd", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "d:m:n:kes:Soh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': fx->dir = optarg; break;
		case 'm': fx->mode = optarg; break;
		case 'n': fx->name = optarg; break;
		case 'k': fx->keep = true; break;
		case 'e': fx->ended = true; break;
		case 's': fx->pidfile = optarg; break;
		case 'S': fx->stale = true; break;
		case 'o': fx->odd = true; break;
		case 'h': exit(usage(0));
		default: return -1;
		}
	}
	if (optind != argc || (strcmp(fx->mode, "x86") && strcmp(fx->mode, "formats")) ||
	    (fx->stale && !fx->pidfile))
		return -1;
	if (!fx->name)
		fx->name = strcmp(fx->mode, "x86") == 0 ? "kvm-4242" : "kvm-formats";
	if (!fx->dir) {
		fx->dir = getenv("KVMSTATS_SHM_DIR");
		if (!fx->dir || !fx->dir[0])
			fx->dir = "/dev/shm";
	}
	return 0;
}

/* The child of --serve: sweep at 10 Hz (--stale: never) until SIGTERM or SERVE_MAX_S. */
static void
serve(struct ks_segment_writer *w, const struct ks_seg_def *def, bool stale)
{
	uint64_t end = ks_mono_ns() + SERVE_MAX_S * KS_NSEC_PER_SEC;
	struct timespec period = { 0, FIX_PERIOD_NS };
	int fd = open("/dev/null", O_RDWR);

	/* Nobody waits on our output: a pipe to the test must reach EOF. */
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	signal(SIGTERM, SIG_DFL);
	for (uint64_t sweep = FIX_SWEEP + 1; ks_mono_ns() < end; sweep++) {
		nanosleep(&period, NULL);
		if (!stale && write_sweep(w, def, sweep, 0) < 0)
			break;
	}
	_exit(0);
}

/* Fork the server; its pid in @pidfile before we return.  Return: 0 or -1. */
static int
start_server(struct ks_segment_writer *w, const struct ks_seg_def *def,
	     const struct fixture *fx)
{
	FILE *f;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		serve(w, def, fx->stale);
	f = fopen(fx->pidfile, "w");
	if (f == NULL || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0) {
		kill(pid, SIGKILL);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct fixture fx = { .mode = "x86" };
	struct ks_seg_target_def targets[3];
	struct ks_seg_def def = {
		.incarnation = FIX_INCARNATION, .generation = 1,
		.poll_period_ns = FIX_PERIOD_NS, .ring_depth = FIX_RING_DEPTH,
		.targets = targets,
	};
	struct kvmstats_error err = { 0 };
	struct ks_segment_writer *w = NULL;
	struct ks_seg_place place = { .mode = 0640, .gid = (gid_t)-1 };

	if (parse(argc, argv, &fx) < 0)
		return usage(2);
	def.vm_name = fx.name;
	if (strcmp(fx.mode, "x86") == 0)
		x86_def(&def, targets, fx.name);
	else
		formats_def(&def, targets, fx.name);
	place.dir = fx.dir;
	/* --stale: the heartbeat of 1 ns after boot is as old as the machine is. */
	if (ks_segment_create(&def, &place, &w, &err) < 0 ||
	    write_sweep(w, &def, FIX_SWEEP, fx.stale ? 1 : 0) < 0 ||
	    ks_segment_publish(w, NULL, &err) < 0) {
		fprintf(stderr, "ks_fixture: %s\n", err.msg[0] ? err.msg : "out of memory");
		if (w)
			ks_segment_unlink(w);
		ks_segment_destroy(&w);
		return 1;
	}
	if (fx.ended)
		ks_segment_set_state(w, KS_STATE_ENDED);
	if (fx.odd)
		ks_slot_write_begin(ks_segment_slot(w, 0, FIX_SWEEP));	/* never ended */
	if (fx.pidfile && start_server(w, &def, &fx) < 0) {
		fprintf(stderr, "ks_fixture: cannot start the server: %s\n", strerror(errno));
		ks_segment_unlink(w);
		ks_segment_destroy(&w);
		return 1;
	}
	printf("%s\n", w->file);
	if (!fx.keep && !fx.pidfile)
		ks_segment_unlink(w);
	ks_segment_destroy(&w);
	return 0;
}
