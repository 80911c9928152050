/* SPDX-License-Identifier: MIT */
/*
 * test_real_intake.c - the intake socket with the running kernel's stats
 * fds: a VM with two vCPUs is created right here through /dev/kvm, its
 * stats fds are handed over, and what the engine publishes must equal what
 * the parser reads from the same fds, schema and values (no vCPU ever
 * runs, so the values stand still).
 *
 * Without a usable /dev/kvm every test is skipped with the reason, unless
 * KVMSTATS_REQUIRE_KVM=1 says this machine must have one: then it fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "intake.h"
#include "kvmstats/intake.h"
#include "kvmstats/reader.h"
#include "real_kvm.h"
#include "log_capture.h"
#include "seg_check.h"
#include "statsfd.h"

#define NR_VCPUS	2
#define NOBODY		65534

/* ---- fixture ---- */

struct fx {
	struct real_vm r;
	struct ks_engine *e;
	struct ks_intake *in;
	char dir[64];
	char path[96];
};

static struct fx *
fx_new(const uid_t *allow, unsigned nr_allow)
{
	struct ks_intake_opts o = {
		.allow = allow, .nr_allow = nr_allow, .mode = 0666,
		.quiet_ms = 60000, .log = log_capture_line,
	};
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct real_vm r;
	struct fx *f;

	real_vm_make(&r, NR_VCPUS);	/* may skip: nothing else is made yet */
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->r = r;
	/*
	 * No poll thread: segments then carry the sample taken at publish
	 * and change state (superseded, ended) before the intake replies.
	 * It also keeps TSan quiet, which cannot see liburcu's barriers
	 * between the poll thread and the intake thread's list updates.
	 */
	ks_engine_config_init(&cfg);
	cfg.hz = 200;
	if (ks_engine_create(&cfg, &f->e, &err) < 0)
		fail_msg("engine: %s", err.msg);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ks-real-intake.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(chmod(f->dir, 0755), 0);
	snprintf(f->path, sizeof(f->path), "%s/intake.sock", f->dir);
	o.path = f->path;
	if (ks_intake_start(f->e, &o, &f->in, &err) < 0)
		fail_msg("intake: %s", err.msg);
	return f;
}

static void
fx_free(struct fx *f)
{
	ks_intake_stop(&f->in);
	ks_engine_destroy(&f->e);
	real_vm_close(&f->r);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
}

static const char *
label_of(int t, char *buf, size_t len)
{
	if (t == 0)
		snprintf(buf, len, "real-vm");
	else
		snprintf(buf, len, "/machine/unattached/device[%d]", t - 1);
	return buf;
}

/* Hand every stats fd over and publish.  Return: 0, or the failing status. */
static int
send_all(const struct fx *f, const char *vm, struct kvmstats_error *err)
{
	char label[64];
	int s, ret = 0;

	s = kvmstats_intake_connect(f->path, err);
	if (s < 0)
		return s;
	for (int t = 0; t <= NR_VCPUS && ret == 0; t++)
		ret = kvmstats_intake_send_fd(s, vm, t ? KVMSTATS_TARGET_VCPU : KVMSTATS_TARGET_VM,
					t ? (uint32_t)(t - 1) : 0, label_of(t, label, sizeof(label)),
					f->r.stats[t], err);
	if (ret == 0)
		ret = kvmstats_intake_publish(s, vm, err);
	if (ret < 0)
		close(s);
	return ret < 0 ? ret : s;
}

/* The segment says exactly what the parser reads from the same fd. */
static void
check_target(struct kvmstats_segment *seg, unsigned t, int fd)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
	char label[64];

	assert_non_null(ti);
	assert_int_equal(ti->kind, t ? KVMSTATS_TARGET_VCPU : KVMSTATS_TARGET_VM);
	assert_int_equal(ti->vcpu_index, t ? t - 1 : UINT32_MAX);
	assert_string_equal(ti->label, label_of((int)t, label, sizeof(label)));
	check_target_is_fd(seg, t, fd);
}

static void
check_segment(const struct fx *f, const char *vm)
{
	struct kvmstats_segment *seg;
	struct kvmstats_error err;

	if (kvmstats_attach(vm, NULL, &seg, &err) < 0)
		fail_msg("attach %s: %s", vm, err.msg);
	assert_int_equal(kvmstats_nr_targets(seg), 1 + NR_VCPUS);
	for (unsigned t = 0; t <= NR_VCPUS; t++)
		check_target(seg, t, f->r.stats[t]);
	kvmstats_detach(&seg);
}

static void
real_fds_published_exactly(void **state)
{
	struct fx *f = fx_new(NULL, 0);
	struct kvmstats_error err;
	char vm[64];
	int s;

	(void)state;
	snprintf(vm, sizeof(vm), "real-intake-%d", (int)getpid());
	s = send_all(f, vm, &err);
	if (s < 0)
		fail_msg("intake: %s", err.msg);
	check_segment(f, vm);
	assert_true(log_capture_has("published with 2 vCPUs and VM stats"));
	close(s);
	fx_free(f);
}

/*
 * Child of a root test: become nobody, hand the inherited stats fds over,
 * then (allowed) hold the connection until the parent has checked: until
 * "d" or EOF on @done, whichever the parent gives.
 */
static int
peer_as_nobody(const struct fx *f, const char *vm, bool allowed, int ready, int done)
{
	struct kvmstats_error err;
	char b;
	int s;

	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return 10;
	s = send_all(f, vm, &err);
	if (!allowed)
		return s == -EPERM && strstr(err.msg, "--allow-uid 65534") ? 0 : 11;
	if (s < 0) {
		fprintf(stderr, "child: %s\n", err.msg);
		return 12;
	}
	if (write(ready, "r", 1) != 1 || read(done, &b, 1) < 0)
		return 13;
	return 0;
}

static void
run_peer(const struct fx *f, const char *vm, bool allowed)
{
	int ready[2], done[2], status;
	pid_t pid;
	char b;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(done, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(peer_as_nobody(f, vm, allowed, ready[1], done[0]));
	close(ready[1]);
	close(done[0]);
	/*
	 * Only a child that said "ready" waits on @done.  A refused one (or
	 * one that failed) may be gone already: it gets EOF, never a write
	 * into a pipe nobody reads.
	 */
	if (allowed && read(ready[0], &b, 1) == 1) {
		check_segment(f, vm);	/* published from another uid's fds */
		assert_int_equal(write(done[1], "d", 1), 1);
	}
	close(ready[0]);
	close(done[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
real_allowed_and_refused_peers(void **state)
{
	const uid_t allow[] = { NOBODY };
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct fx *f;
	char vm[64];

	(void)state;
	if (geteuid() != 0) {
		print_message("skip: needs root to run a peer as uid %d\n", NOBODY);
		skip();
	}
	snprintf(vm, sizeof(vm), "real-peer-%d", (int)getpid());
	f = fx_new(allow, 1);
	run_peer(f, vm, true);
	assert_true(log_capture_has("uid 65534"));
	fx_free(f);

	f = fx_new(NULL, 0);
	run_peer(f, vm, false);
	assert_true(log_capture_has("refused uid 65534"));
	assert_int_equal(kvmstats_attach(vm, NULL, &seg, &err), -ENOENT);
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(real_fds_published_exactly),
		cmocka_unit_test(real_allowed_and_refused_peers),
	};

	/* A peer that is gone must not take us with it through a broken pipe. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
