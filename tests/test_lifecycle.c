/* SPDX-License-Identifier: MIT */
/*
 * test_lifecycle.c - who may have a segment's name, and what readers make
 * of a publisher that stops, dies or has its file truncated under it
 * (issue 7, items 1-3):
 *
 *   - a name is taken only when free, from our own previous generation, or
 *     from an ended or dead segment of our uid; never from a file that is
 *     no segment, a symbolic link, another uid's file, a live publisher's
 *     or an ABI 1.0 segment whose publisher may live;
 *   - a name is given back only if it is still our own file;
 *   - a publisher's start removes what dead predecessors left, nothing else;
 *   - kvmstats_liveness() says live, stale, dead, ended, superseded, broken,
 *     and kvmstats_follow() moves to the file that has the name now;
 *   - a truncated segment kills neither reader nor publisher: the reader
 *     gets -EIO, the engine publishes a new generation; a SIGBUS that is
 *     not ours still reaches the handler before ours, or kills.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "kvmstats/reader.h"
#include "ks_sanitizers.h"
#include "ks_seqlock.h"
#include "ks_sigbus.h"
#include "ks_time.h"
#include "log_capture.h"
#include "segment_writer.h"
#include "shm_dir.h"
#include "small_vm_stats.h"
#include "synth_vm.h"

static char shm_dir[4096];
static const char *self_path;		/* argv[0], for the SIGBUS children */

/* ---- a one-target segment (the VM of small_vm_stats.h) ---- */

static void
def_of(struct ks_seg_def *def, struct ks_seg_target_def *t, const char *vm)
{
	*t = (struct ks_seg_target_def){
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE, .label = "",
		.id = "", .nr_stats = 2, .stats = vm_stats, .record_words = 2,
	};
	*def = (struct ks_seg_def){
		.vm_name = vm, .incarnation = 1, .generation = 1, .poll_period_ns = 10000000,
		.ring_depth = 4, .nr_providers = 2, .providers = providers, .nr_targets = 1,
		.targets = t,
	};
}

/* Sweep @sweep with heartbeat @hb_ns (0: now). */
static void
sweep(struct ks_segment_writer *w, uint64_t sweep, uint64_t hb_ns)
{
	struct ks_shm_slot *slot = ks_segment_slot(w, 0, sweep);
	uint64_t v[2] = { sweep, 1 };

	ks_slot_write_begin(slot);
	ks_slot_stamp(slot, sweep, ks_mono_ns(), 0);
	ks_store_words(slot->values, v, 2);
	ks_slot_write_end(slot);
	ks_header_publish_sweep(w->hdr, sweep, hb_ns ? hb_ns : ks_mono_ns());
}

/* Make @vm and try to publish it after @pred; Return: the writer, or NULL with @err. */
static struct ks_segment_writer *
try_publish(const char *vm, const struct ks_segment_writer *pred, struct kvmstats_error *err)
{
	struct ks_seg_place pl = { .dir = shm_dir, .mode = 0640, .gid = (gid_t)-1 };
	struct ks_segment_writer *w;
	struct ks_seg_target_def t;
	struct ks_seg_def def;

	def_of(&def, &t, vm);
	if (ks_segment_create(&def, &pl, &w, err) < 0)
		fail_msg("create %s: %s", vm, err->msg);
	sweep(w, 1, 0);
	if (ks_segment_publish(w, pred, err) < 0) {
		ks_segment_destroy(&w);	/* removes the temporary file */
		return NULL;
	}
	return w;
}

static struct ks_segment_writer *
publish(const char *vm, const struct ks_segment_writer *pred)
{
	struct kvmstats_error err;
	struct ks_segment_writer *w = try_publish(vm, pred, &err);

	if (w == NULL)
		fail_msg("publish %s: %s", vm, err.msg);
	return w;
}

static const char *
path_of(const char *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s/kvmstats.%s", shm_dir, vm);
	return buf;
}

static ino_t
ino_of(const char *vm)
{
	char path[4200];
	struct stat st;

	if (lstat(path_of(vm, path, sizeof(path)), &st) < 0)
		return 0;
	return st.st_ino;
}

static void
refused(const char *vm, const struct ks_segment_writer *pred, const char *why)
{
	struct kvmstats_error err;

	assert_null(try_publish(vm, pred, &err));
	assert_int_equal(err.code, -EEXIST);
	if (strstr(err.msg, why) == NULL)
		fail_msg("publishing %s: \"%s\" lacks \"%s\"", vm, err.msg, why);
	assert_non_null(strstr(err.msg, "not replacing it"));
}

/* Its publisher dies: the writer goes without ending or unlinking it. */
static void
die(struct ks_segment_writer **w)
{
	ks_segment_destroy(w);
}

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
file_is(const char *path, const char *text)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	assert_string_equal(buf, text);
}

/* ---- names ---- */

static void
test_takeover_rules(void **state)
{
	struct ks_segment_writer *a, *b;
	char path[4200], target[4200];
	ino_t ino;

	(void)state;
	/* Free: taken.  A live publisher's (its lock held): refused. */
	a = publish("lc-live", NULL);
	refused("lc-live", NULL, "is the segment of a live publisher");
	/* Our own previous generation: replaced. */
	ino = ino_of("lc-live");
	b = publish("lc-live", a);
	assert_true(ino_of("lc-live") != ino);
	assert_int_equal(ks_segment_unlink(a), -ENOENT);	/* not a's any more */
	ks_segment_destroy(&a);
	/* Its publisher died: taken over, the dead file gone. */
	ino = ino_of("lc-live");
	die(&b);
	a = publish("lc-live", NULL);
	assert_true(ino_of("lc-live") != ino);
	/* Ended (kept with --keep): taken over. */
	ks_segment_set_state(a, KS_STATE_ENDED);
	b = publish("lc-live", NULL);
	ks_segment_destroy(&a);
	assert_int_equal(ks_segment_unlink(b), 0);
	ks_segment_destroy(&b);

	/* A file that is no segment stays, with its contents. */
	write_file(path_of("lc-conf", path, sizeof(path)), "precious");
	refused("lc-conf", NULL, "is not a kvmstats segment");
	file_is(path, "precious");
	assert_int_equal(unlink(path), 0);
	/* A symbolic link stays, and so does what it points to. */
	snprintf(target, sizeof(target), "%s/elsewhere", shm_dir);
	write_file(target, "precious");
	assert_int_equal(symlink(target, path_of("lc-link", path, sizeof(path))), 0);
	refused("lc-link", NULL, "is a symbolic link");
	file_is(target, "precious");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(target), 0);
	/* A directory is no regular file. */
	assert_int_equal(mkdir(path_of("lc-dir", path, sizeof(path)), 0755), 0);
	refused("lc-dir", NULL, "is not a regular file");
	assert_int_equal(rmdir(path), 0);

	/* A dead ABI 1.0 segment held no lock: its publisher may live. */
	a = publish("lc-old", NULL);
	a->hdr->abi_minor = 0;
	die(&a);
	refused("lc-old", NULL, "is an ABI 1.0 segment");
	assert_int_equal(unlink(path_of("lc-old", path, sizeof(path))), 0);
}

static void
test_other_uid_refused(void **state)
{
	struct ks_segment_writer *a;
	char path[4200];

	(void)state;
	if (geteuid() != 0) {
		print_message("skip: chown to another uid needs root\n");
		skip();
	}
	a = publish("lc-uid", NULL);
	assert_int_equal(fchown(a->fd, 12345, (gid_t)-1), 0);
	die(&a);	/* dead, ended or not: another uid's all the same */
	refused("lc-uid", NULL, "belongs to uid 12345");
	assert_int_equal(unlink(path_of("lc-uid", path, sizeof(path))), 0);
}

/* At the end a publisher removes its own file, never what has the name by then. */
static void
test_unlink_only_ours(void **state)
{
	struct ks_segment_writer *a = publish("lc-mine", NULL);
	char path[4200], other[4200];

	(void)state;
	snprintf(other, sizeof(other), "%s/other", shm_dir);
	write_file(other, "someone else's");
	assert_int_equal(rename(other, path_of("lc-mine", path, sizeof(path))), 0);
	assert_int_equal(ks_segment_unlink(a), -ENOENT);
	file_is(path, "someone else's");
	ks_segment_destroy(&a);
	file_is(path, "someone else's");
	assert_int_equal(unlink(path), 0);
}

static int
count_prefix(const char *prefix)
{
	char cmd[4300];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -a '%s' | grep -c '^%s'", shm_dir, prefix);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* A publisher's start removes what dead ones of its uid left, nothing else. */
static void
test_reap(void **state)
{
	struct ks_segment_writer *live = publish("lc-r-live", NULL);
	struct ks_segment_writer *ended = publish("lc-r-ended", NULL);
	struct ks_segment_writer *dead = publish("lc-r-dead", NULL);
	struct ks_segment_writer *building;
	struct ks_seg_place pl = { .dir = shm_dir, .mode = 0640, .gid = (gid_t)-1 };
	struct kvmstats_error err;
	struct ks_seg_target_def t;
	struct ks_seg_def def;
	char path[4200], left[4200];

	(void)state;
	log_capture_reset();
	ks_segment_set_state(ended, KS_STATE_ENDED);
	die(&ended);
	die(&dead);
	/* One that died while building: its temporary file, under another name. */
	def_of(&def, &t, "lc-r-building");
	assert_int_equal(ks_segment_create(&def, &pl, &building, &err), 0);
	snprintf(left, sizeof(left), "%s/.kvmstats.tmp.kvmstats.lc-r-building.1.0", shm_dir);
	assert_int_equal(linkat(building->dirfd, building->tmp_file, AT_FDCWD, left, 0), 0);
	ks_segment_destroy(&building);
	write_file(path_of("lc-r-conf", path, sizeof(path)), "not a segment");
	assert_int_equal(count_prefix(".kvmstats.tmp."), 1);

	assert_int_equal(ks_segment_reap(shm_dir, log_capture_line), 2);
	assert_true(ino_of("lc-r-dead") == 0);
	assert_int_equal(count_prefix(".kvmstats.tmp."), 0);
	assert_true(log_capture_has("kvmstats.lc-r-dead: its publisher"));
	assert_true(ino_of("lc-r-live") != 0);
	assert_true(ino_of("lc-r-ended") != 0);	/* kept on purpose */
	file_is(path, "not a segment");
	assert_int_equal(ks_segment_reap(shm_dir, NULL), 0);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(path_of("lc-r-ended", path, sizeof(path))), 0);
	assert_int_equal(ks_segment_unlink(live), 0);
	ks_segment_destroy(&live);
}

/* ---- liveness ---- */

static enum kvmstats_health
health(const struct kvmstats_segment *seg)
{
	struct kvmstats_liveness lv;

	assert_int_equal(kvmstats_liveness(seg, &lv), 0);
	return lv.health;
}

static struct kvmstats_segment *
attach_ok(const char *vm)
{
	struct kvmstats_segment *seg;
	struct kvmstats_error err;

	if (kvmstats_attach(vm, NULL, &seg, &err) < 0)
		fail_msg("attach %s: %s", vm, err.msg);
	return seg;
}

static void
test_liveness(void **state)
{
	struct ks_segment_writer *w = publish("lc-health", NULL), *w2;
	struct kvmstats_segment *seg = attach_ok("lc-health"), *old;
	struct kvmstats_liveness lv;
	struct kvmstats_error err;

	(void)state;
	assert_int_equal(kvmstats_liveness(seg, &lv), 0);
	assert_int_equal(lv.health, KVMSTATS_HEALTH_LIVE);
	assert_int_equal(lv.lock, 1);
	assert_int_equal(lv.stale_after_ns, KVMSTATS_STALE_MIN_NS);	/* 100 Hz: the floor */
	/* No sweep for longer than the threshold (a heartbeat of boot + 1 ns). */
	sweep(w, 2, 1);
	assert_int_equal(kvmstats_liveness(seg, &lv), 0);
	assert_int_equal(lv.health, KVMSTATS_HEALTH_STALE);
	assert_true(lv.age_ns > lv.stale_after_ns);
	sweep(w, 3, 0);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_LIVE);
	/* Nothing to follow while the name is ours. */
	assert_int_equal(kvmstats_follow(&seg, &err), 0);

	/* Killed: the lock goes with it, however fresh the heartbeat. */
	die(&w);
	assert_int_equal(kvmstats_liveness(seg, &lv), 0);
	assert_int_equal(lv.health, KVMSTATS_HEALTH_DEAD);
	assert_int_equal(lv.lock, 0);
	/* A restarted publisher takes the name; the reader follows it. */
	w = publish("lc-health", NULL);
	old = seg;
	assert_int_equal(kvmstats_follow(&seg, &err), 1);
	assert_ptr_not_equal(seg, old);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_LIVE);

	/* A new generation: superseded, followed. */
	w2 = publish("lc-health", w);
	ks_segment_set_state(w, KS_STATE_SUPERSEDED);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_SUPERSEDED);
	assert_int_equal(kvmstats_follow(&seg, &err), 1);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_LIVE);
	ks_segment_destroy(&w);
	ks_segment_set_state(w2, KS_STATE_ENDED);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_ENDED);

	/* A state word no publisher writes after publishing: broken, never passed on. */
	atomic_store(&w2->hdr->state, 7);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_BROKEN);
	{
		struct kvmstats_status st;

		kvmstats_status(seg, &st);
		assert_int_equal(st.state, KVMSTATS_STATE_INVALID);
		atomic_store(&w2->hdr->state, KS_STATE_BUILDING);
		kvmstats_status(seg, &st);
		assert_int_equal(st.state, KVMSTATS_STATE_INVALID);
	}
	kvmstats_detach(&seg);
	/* Building behind an open gate is not ready, not a segment to read. */
	assert_int_equal(kvmstats_attach("lc-health", NULL, &seg, &err), -EAGAIN);
	assert_int_equal(ks_segment_unlink(w2), 0);
	ks_segment_destroy(&w2);
}

/*
 * ---- truncation ----
 *
 * cmocka puts a SIGBUS handler of its own around every test, over ours
 * (a handler installed after ours wins: ks_sigbus.h), so these run in a
 * child exec'd afresh, outside the test runner; a failed check there
 * prints its message and exits non-zero.
 */

static void
truncated_under_reader(void)
{
	struct ks_segment_writer *w = publish("lc-trunc", NULL);
	struct kvmstats_segment *seg = attach_ok("lc-trunc");
	struct kvmstats_stat_handle h;
	struct kvmstats_status st;
	uint64_t v, faults = ks_bus_faults(), rec[8];

	assert_int_equal(kvmstats_stat_lookup(seg, 0, "kvm", "pages_4k", &h), 0);
	assert_int_equal(kvmstats_read_scalar(seg, &h, &v, NULL), 0);
	assert_int_equal(v, 1);
	/* Its owner shrinks it to a page: the slots are gone, header and schema not. */
	assert_int_equal(ftruncate(w->fd, 4096), 0);
	assert_int_equal(kvmstats_read_scalar(seg, &h, &v, NULL), -EIO);
	assert_int_equal(kvmstats_read_record(seg, 0, rec, 8, NULL), -EIO);
	assert_int_equal(kvmstats_read_cut(seg, rec, 8, NULL), -EIO);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_INVALID);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_BROKEN);
	assert_true(ks_bus_faults() > faults);
	/* The writer survives its own stores, and knows. */
	assert_false(ks_segment_faulted(w));
	sweep(w, 2, 0);
	assert_true(ks_segment_faulted(w));
	kvmstats_detach(&seg);
	/* A new reader refuses what is left: not the size its header says. */
	{
		struct kvmstats_error err;

		assert_int_equal(kvmstats_attach("lc-trunc", NULL, &seg, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "differs from the file size"));
	}
	assert_int_equal(ks_segment_unlink(w), 0);
	ks_segment_destroy(&w);
}

/* The engine's answer: a new generation under the name, the VM going on. */
static void
truncated_under_engine(void)
{
	struct ks_engine_config cfg;
	struct ks_engine *e;
	struct kvmstats_error err;
	struct kvmstats_segment *seg;
	struct synth_vm sv;
	char path[4200];
	ino_t ino;

	log_capture_reset();
	ks_engine_config_init(&cfg);
	cfg.log = log_capture_line;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), 0);
	assert_int_equal(synth_vm_init(&sv, "lc-engine", 2, UINT32_MAX, 0), 0);
	if (ks_engine_add_vm(e, &sv.def, NULL, &err) < 0)
		fail_msg("add: %s", err.msg);
	synth_vm_clear(&sv);
	assert_int_equal(ks_engine_sweep(e), 0);
	ino = ino_of("lc-engine");
	assert_int_equal(truncate(path_of("lc-engine", path, sizeof(path)), 0), 0);
	/* The next sweep faults, is given private pages, and publishes anew. */
	assert_int_equal(ks_engine_sweep(e), 0);
	assert_true(ino_of("lc-engine") != ino);
	assert_int_equal(log_capture_count("was truncated under the publisher"), 1);
	assert_true(log_capture_has("published generation 2 as kvmstats.lc-engine"));
	assert_int_equal(ks_engine_sweep(e), 0);
	seg = attach_ok("lc-engine");
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	assert_int_equal(kvmstats_nr_targets(seg), 3);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_LIVE);
	kvmstats_detach(&seg);
	assert_int_equal(ks_engine_sweep(e), 0);
	assert_int_equal(log_capture_count("was truncated"), 1);	/* said once */
	ks_engine_destroy(&e);
	assert_true(ino_of("lc-engine") == 0);
}

/* An engine publishing the synthetic VM @vm (2 vCPUs) in @dir (NULL: shm_dir). */
static struct ks_engine *
engine_with(const char *vm, const char *dir)
{
	struct ks_engine_config cfg;
	struct ks_engine *e;
	struct kvmstats_error err;
	struct synth_vm sv;

	log_capture_reset();
	ks_engine_config_init(&cfg);
	cfg.log = log_capture_line;
	cfg.dir = dir;
	assert_int_equal(ks_engine_create(&cfg, &e, &err), 0);
	assert_int_equal(synth_vm_init(&sv, vm, 2, UINT32_MAX, 0), 0);
	if (ks_engine_add_vm(e, &sv.def, NULL, &err) < 0)
		fail_msg("add: %s", err.msg);
	synth_vm_clear(&sv);
	return e;
}

/* Sweep @e until a line with @what is logged; up to 10 s. */
static bool
sweep_until_logged(struct ks_engine *e, const char *what)
{
	uint64_t end = ks_mono_ns() + 10 * KS_NSEC_PER_SEC;

	while (!log_capture_has(what) && ks_mono_ns() < end) {
		assert_int_equal(ks_engine_sweep(e), 0);
		usleep(5000);
	}
	return log_capture_has(what);
}

/*
 * Changes that fault nobody, made by the file's owner between two sweeps:
 * the engine's periodic check (its first one comes with the first sweep)
 * finds each and publishes the next generation; a reader of the old one
 * sees it superseded, a new reader attaches to the new one.
 */
enum damage {
	SHRINK_IN_PAGE, GROW, ZERO_AND_RESTORE, PUNCH_HEADER, HEADER_WORD, SCHEMA_BYTE,
	STATE_ENDED, MODE, UNLINKED,
};

static const struct {
	enum damage kind;
	const char *what, *said;
} damages[] = {
	{ SHRINK_IN_PAGE, "80 bytes cut (the last page still backed)", "changed size from" },
	{ GROW, "a page added", "changed size from" },
	{ ZERO_AND_RESTORE, "truncated to 0 and back to its size", "ready gate or state overwritten" },
	{ PUNCH_HEADER, "a hole punched over the header", "ready gate or state overwritten" },
	{ HEADER_WORD, "the poll period rewritten", "had its header overwritten" },
	{ SCHEMA_BYTE, "one byte of the string table rewritten", "had its schema overwritten" },
	{ STATE_ENDED, "state set to ended", "ready gate or state overwritten" },
	{ MODE, "made group-writable", "had its mode changed from 0640 to 0660" },
	{ UNLINKED, "its name removed", "lost its name" },
};

static void
damage(int fd, const char *path, enum damage kind)
{
	struct stat st;
	uint32_t ended = KS_STATE_ENDED, strings_off;
	uint64_t period = 1;
	char x = '#';

	assert_int_equal(fstat(fd, &st), 0);
	switch (kind) {
	case SHRINK_IN_PAGE:
		assert_int_equal(ftruncate(fd, st.st_size - 80), 0);
		break;
	case GROW:
		assert_int_equal(ftruncate(fd, st.st_size + 4096), 0);
		break;
	case ZERO_AND_RESTORE:
		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(ftruncate(fd, st.st_size), 0);
		break;
	case PUNCH_HEADER:
		assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096),
				 0);
		break;
	case HEADER_WORD:
		assert_int_equal(pwrite(fd, &period, 8, offsetof(struct ks_shm_header,
								 poll_period_ns)), 8);
		break;
	case SCHEMA_BYTE:
		assert_int_equal(pread(fd, &strings_off, 4, offsetof(struct ks_shm_header,
								    strings_off)), 4);
		assert_int_equal(pwrite(fd, &x, 1, strings_off + 1), 1);
		break;
	case STATE_ENDED:
		assert_int_equal(pwrite(fd, &ended, 4, offsetof(struct ks_shm_header, state)), 4);
		break;
	case MODE:
		assert_int_equal(fchmod(fd, 0660), 0);
		break;
	case UNLINKED:
		assert_int_equal(unlink(path), 0);
		break;
	}
}

static void
damaged_under_engine(void)
{
	for (size_t i = 0; i < sizeof(damages) / sizeof(damages[0]); i++) {
		struct ks_engine *e = engine_with("lc-damage", NULL);
		struct kvmstats_segment *seg, *old = attach_ok("lc-damage");
		char path[4200];
		ino_t ino = ino_of("lc-damage");
		int fd = open(path_of("lc-damage", path, sizeof(path)), O_RDWR);

		assert_true(fd >= 0);
		damage(fd, path, damages[i].kind);
		close(fd);
		assert_int_equal(ks_engine_sweep(e), 0);
		if (!log_capture_has(damages[i].said) ||
		    !log_capture_has("published generation 2 as kvmstats.lc-damage"))
			fail_msg("%s: the engine did not say \"%s\" and publish anew",
				 damages[i].what, damages[i].said);
		assert_true(ino_of("lc-damage") != ino && ino_of("lc-damage") != 0);
		if (health(old) != KVMSTATS_HEALTH_SUPERSEDED)
			fail_msg("%s: the old segment is %s, not superseded", damages[i].what,
				 kvmstats_health_name(health(old)));
		kvmstats_detach(&old);
		assert_int_equal(ks_engine_sweep(e), 0);
		seg = attach_ok("lc-damage");
		assert_int_equal(kvmstats_info(seg)->generation, 2);
		assert_int_equal(health(seg), KVMSTATS_HEALTH_LIVE);
		kvmstats_detach(&seg);
		ks_engine_destroy(&e);
		assert_true(ino_of("lc-damage") == 0);
	}
}

/*
 * The poll thread's checks: healthy segments stay as they are through
 * two check periods of replacing and removing VMs beside them (no false
 * alarm), and then a change to one is found on the poll thread.
 */
static void
healthy_kept_damage_found(void)
{
	struct ks_engine *e = engine_with("lc-steady", NULL);
	struct ks_engine_stats st;
	struct ks_engine_vm *churn = NULL, *next;
	struct kvmstats_error err;
	struct kvmstats_segment *seg;
	struct synth_vm sv;
	uint32_t ended = KS_STATE_ENDED;
	uint64_t until;
	char path[4200];
	int fd;

	assert_int_equal(ks_engine_start(e, &err), 0);
	until = ks_mono_ns() + 2500 * 1000 * 1000ull;
	for (unsigned n = 0; ks_mono_ns() < until; n++) {
		if (churn != NULL && n % 5 == 0) {
			ks_engine_remove_vm(e, churn);
			churn = NULL;
		} else {
			assert_int_equal(synth_vm_init(&sv, "lc-churn", 1 + n % 3, UINT32_MAX, 0),
					 0);
			if (churn == NULL)
				assert_int_equal(ks_engine_add_vm(e, &sv.def, &churn, &err), 0);
			else if (ks_engine_replace_vm(e, churn, &sv.def, &next, &err) == 0)
				churn = next;
			else
				fail_msg("replace: %s", err.msg);
			synth_vm_clear(&sv);
		}
		usleep(20 * 1000);
	}
	ks_engine_get_stats(e, &st);
	assert_int_equal(st.reseats, 0);
	assert_false(log_capture_has("publishing a new one"));
	seg = attach_ok("lc-steady");
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	kvmstats_detach(&seg);
	/* Now a change: the poll thread finds it within a check period or so. */
	fd = open(path_of("lc-steady", path, sizeof(path)), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &ended, 4, offsetof(struct ks_shm_header, state)), 4);
	close(fd);
	assert_true(log_capture_wait("published generation 2 as kvmstats.lc-steady", 10000));
	ks_engine_get_stats(e, &st);
	assert_int_equal(st.reseats, 1);
	if (churn != NULL)
		ks_engine_remove_vm(e, churn);
	ks_engine_destroy(&e);
}

/*
 * A new segment that cannot be made (here: its directory became unsafe,
 * dir_check.h) is tried again after 1 s, then 2 s, ..., said once, and
 * published as soon as it can be.  Sweeps are ours (no poll thread), so
 * each try happens inside one of our ks_engine_sweep() calls.
 */
static uint64_t
failures(struct ks_engine *e)
{
	struct ks_engine_stats st;

	ks_engine_get_stats(e, &st);
	return st.reseat_failures;
}

static void
reseat_retried(void)
{
	char dir[4200], path[4300];
	struct ks_engine *e;
	struct kvmstats_attach_opts opts;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	uint64_t t2 = 0, end = ks_mono_ns() + 20 * KS_NSEC_PER_SEC;

	snprintf(dir, sizeof(dir), "%s/retry", shm_dir);
	assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
	e = engine_with("lc-retry", dir);
	assert_int_equal(ks_engine_sweep(e), 0);
	snprintf(path, sizeof(path), "%s/kvmstats.lc-retry", dir);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(ks_engine_sweep(e), 0);
	assert_true(log_capture_has("was truncated under the publisher"));
	assert_int_equal(failures(e), 1);
	assert_true(log_capture_has("writable by others without the sticky bit"));
	/* The second try, a second later: a failure again, not said again. */
	while (failures(e) < 2 && ks_mono_ns() < end) {
		t2 = ks_mono_ns();
		assert_int_equal(ks_engine_sweep(e), 0);
		usleep(5000);
	}
	assert_int_equal(failures(e), 2);
	assert_int_equal(log_capture_count("cannot publish a new segment"), 1);
	assert_int_equal(log_capture_count("was truncated"), 1);
	assert_false(log_capture_has("published generation"));
	/* Made safe: the third try, 2 s after the second, succeeds. */
	assert_int_equal(chmod(dir, 0700), 0);
	assert_true(sweep_until_logged(e, "published generation 2 as kvmstats.lc-retry"));
	assert_true(ks_mono_ns() - t2 >= 2 * KS_NSEC_PER_SEC);
	assert_int_equal(failures(e), 2);
	kvmstats_attach_opts_init(&opts);
	opts.dir = dir;
	if (kvmstats_attach("lc-retry", &opts, &seg, &err) < 0)
		fail_msg("attach: %s", err.msg);
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	assert_int_equal(health(seg), KVMSTATS_HEALTH_LIVE);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * SIGBUS that is not ours goes where it would have gone: run in a child
 * (exec'd, so that ours is installed after the test's own handler).
 */
static sigjmp_buf child_jmp;
static volatile sig_atomic_t child_caught;

static void
child_handler(int sig)
{
	(void)sig;
	child_caught++;
	siglongjmp(child_jmp, 1);
}

/* A mapping of a file of one page, then the file truncated. */
static volatile uint8_t *
doomed_mapping(int *fdp)
{
	char path[] = "/tmp/kvmstats-bus.XXXXXX";
	int fd = mkstemp(path);
	void *p;

	if (fd < 0 || unlink(path) < 0 || ftruncate(fd, 4096) < 0)
		exit(20);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || ftruncate(fd, 0) < 0)
		exit(21);
	*fdp = fd;
	return p;
}

/* Exit status: 0 as expected; else which check failed. */
static int
bus_child(bool own_handler)
{
	struct sigaction sa = { .sa_handler = child_handler };
	struct ks_bus_guard *g;
	atomic_bool faulted = false;
	volatile uint8_t *ours, *theirs;
	int fd1, fd2;

	if (own_handler && sigaction(SIGBUS, &sa, NULL) < 0)
		return 30;
	ours = doomed_mapping(&fd1);
	theirs = doomed_mapping(&fd2);
	if (ks_bus_guard((void *)ours, 4096, false, &faulted, &g) < 0)
		return 31;
	/* Ours: recovered, reads zeros, the program's handler never called. */
	if (ours[100] != 0 || !atomic_load(&faulted) || child_caught != 0)
		return 32;
	/* Theirs: the program's handler (or, without one, death by SIGBUS). */
	if (sigsetjmp(child_jmp, 1) == 0)
		(void)theirs[100];
	return own_handler && child_caught == 1 ? 0 : 33;
}

#define UNDER_SANITIZER	(KS_ASAN || KS_TSAN)

/* Run this program as "--child MODE"; Return: its wait status. */
static int
run_child(const char *mode)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl(self_path, self_path, "--child", mode, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
expect_child_ok(const char *mode)
{
	int status = run_child(mode);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child %s: %s %d", mode, WIFEXITED(status) ? "exit" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void
test_truncated_under_reader(void **state)
{
	(void)state;
	expect_child_ok("reader");
}

static void
test_truncated_under_engine(void **state)
{
	(void)state;
	expect_child_ok("engine");
}

static void
test_damaged_under_engine(void **state)
{
	(void)state;
	expect_child_ok("damage");
}

static void
test_reseat_retried(void **state)
{
	(void)state;
	expect_child_ok("retry");
}

static void
test_healthy_kept_damage_found(void **state)
{
	(void)state;
	expect_child_ok("steady");
}

/* A child's scenario; Return: its exit status. */
static int
child(const char *mode)
{
	if (strcmp(mode, "reader") == 0)
		truncated_under_reader();
	else if (strcmp(mode, "engine") == 0)
		truncated_under_engine();
	else if (strcmp(mode, "damage") == 0)
		damaged_under_engine();
	else if (strcmp(mode, "retry") == 0)
		reseat_retried();
	else if (strcmp(mode, "steady") == 0)
		healthy_kept_damage_found();
	else
		return bus_child(strcmp(mode, "bus-handler") == 0);
	return 0;
}

static void
test_foreign_sigbus_chained(void **state)
{
	int status;

	(void)state;
	status = run_child("bus-handler");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* No handler of the program's: a fault that is not ours still kills. */
	print_message("a child now dies of a SIGBUS outside our mappings, as it must; a "
		      "sanitizer build reports it first\n");
	status = run_child("bus-default");
#if UNDER_SANITIZER
	/* The sanitizer's handler was the one before ours: it reports and exits. */
	assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
		    (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 33));
#else
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
#endif
}

static int
setup_dir(void **state)
{
	(void)state;
	return test_shm_dir(shm_dir, sizeof(shm_dir), "test_lifecycle");
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_takeover_rules),
		cmocka_unit_test(test_other_uid_refused),
		cmocka_unit_test(test_unlink_only_ours),
		cmocka_unit_test(test_reap),
		cmocka_unit_test(test_liveness),
		cmocka_unit_test(test_truncated_under_reader),
		cmocka_unit_test(test_truncated_under_engine),
		cmocka_unit_test(test_damaged_under_engine),
		cmocka_unit_test(test_reseat_retried),
		cmocka_unit_test(test_healthy_kept_damage_found),
		cmocka_unit_test(test_foreign_sigbus_chained),
	};

	self_path = argv[0];
	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return setup_dir(NULL) < 0 ? 1 : child(argv[2]);
	return cmocka_run_group_tests(tests, setup_dir, NULL);
}
