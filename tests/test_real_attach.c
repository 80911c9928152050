/* SPDX-License-Identifier: MIT */
/*
 * test_real_attach.c - attach to a running VMM (tests/tools/test_vmm) on the
 * real kernel and read it back through the reader library.
 *
 * Without a usable /dev/kvm the KVM tests are skipped with the reason
 * (KVMSTATS_REQUIRE_KVM=1 makes that a failure instead); the tests of a
 * process without stats fds and of a missing process run everywhere.
 * Under valgrind (<= 3.19 knows neither pidfd_open nor pidfd_getfd) attach
 * must fail with ENOSYS and say so; that is what is checked there.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "attach.h"
#include "debugfs_source.h"
#include "kvmstats/reader.h"
#include "real_kvm.h"
#include "seg_check.h"
#include "statsfd.h"

#define LINE_TIMEOUT_MS		20000	/* a TCG-emulated guest is slow */
#define STATE_TIMEOUT_MS	10000
#define RESCAN_MS		50

struct vmm {
	pid_t pid;
	int out;			/* its stdout */
};

static atomic_int ends;

/* ---- environment -------------------------------------------------------- */

static bool
under_valgrind(void)
{
	const char *v = getenv("KVMSTATS_UNDER_VALGRIND");

	return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static void
vmm_path(char *buf, size_t len)
{
	const char *build = getenv("KVMSTATS_BUILD");

	snprintf(buf, len, "%s/tests/tools/test_vmm", build && *build ? build : "build");
}

/* ---- the test VMM ------------------------------------------------------- */

/* One line of the child's stdout, without the newline; fails on timeout. */
static void
read_line(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t n = 0;
	char c;

	for (;;) {
		if (poll(&p, 1, LINE_TIMEOUT_MS) != 1)
			fail_msg("test_vmm said nothing for %d ms", LINE_TIMEOUT_MS);
		if (read(fd, &c, 1) != 1)
			fail_msg("test_vmm closed its stdout (did it fail? see above)");
		if (c == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = c;
	}
	buf[n] = '\0';
}

static struct vmm
vmm_spawn(const char *a1, const char *a2, const char *a3, const char *a4)
{
	char path[512], line[64], want[64];
	struct vmm v;
	int p[2];

	vmm_path(path, sizeof(path));
	if (access(path, X_OK) != 0)
		fail_msg("%s: %s (build it: make BUILD=... %s)", path, strerror(errno), path);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	v.pid = fork();
	assert_true(v.pid >= 0);
	if (v.pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		execl(path, path, a1, a2, a3, a4, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	v.out = p[0];
	read_line(v.out, line, sizeof(line));
	snprintf(want, sizeof(want), "ready %d", (int)v.pid);
	assert_string_equal(line, want);
	return v;
}

/* SIGUSR1/SIGUSR2, then wait for "hotplug <n>". */
static void
vmm_hotplug(const struct vmm *v, int sig, unsigned want_n)
{
	char line[64], want[64];

	assert_int_equal(kill(v->pid, sig), 0);
	read_line(v->out, line, sizeof(line));
	snprintf(want, sizeof(want), "hotplug %u", want_n);
	assert_string_equal(line, want);
}

static void
vmm_stop(struct vmm *v)
{
	int status;

	if (v->pid <= 0)
		return;
	kill(v->pid, SIGTERM);
	assert_int_equal(waitpid(v->pid, &status, 0), v->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(v->out);
	v->pid = -1;
}

/*
 * The VMM's stats fds, found and duplicated here independently of
 * attach.c (kind VM: vcpu -1), in fd order.
 */
struct their_fd {
	int vcpu;
	int fd;
	struct ks_statsfd_schema s;
};

static unsigned
take_their_fds(pid_t pid, struct their_fd *out, unsigned max)
{
	char path[64], link[128];
	unsigned n = 0;
	int pidfd, fd, vcpu;
	ssize_t len;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(pidfd >= 0);
	for (fd = 0; fd < 256 && n < max; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = '\0';
		if (strcmp(link, "anon_inode:kvm-vm-stats") == 0)
			vcpu = -1;
		else if (sscanf(link, "anon_inode:kvm-vcpu-stats:%d", &vcpu) != 1)
			continue;
		out[n].vcpu = vcpu;
		out[n].fd = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		assert_true(out[n].fd >= 0);
		n++;
	}
	close(pidfd);
	return n;
}

static void
parse_their_fds(struct their_fd *t, unsigned n)
{
	struct kvmstats_error err;

	for (unsigned i = 0; i < n; i++)
		if (ks_statsfd_parse(t[i].fd, "duplicated stats fd", &t[i].s, &err) < 0)
			fail_msg("%s", err.msg);
}

static void
drop_their_fds(struct their_fd *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		ks_statsfd_schema_clear(&t[i].s);
		close(t[i].fd);
	}
}

/* ---- the publisher side ------------------------------------------------- */

static struct ks_engine *
new_engine(unsigned hz)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e;

	ks_engine_config_init(&cfg);
	cfg.hz = hz;
	if (ks_engine_create(&cfg, &e, &err) < 0)
		fail_msg("engine: %s", err.msg);
	if (ks_engine_start(e, &err) < 0)
		fail_msg("engine start: %s", err.msg);
	return e;
}

static void
count_end(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ends, 1);
}

static int
try_attach(struct ks_engine *e, pid_t pid, struct ks_attach **a, struct kvmstats_error *err)
{
	struct ks_attach_opts o = {
		.pid = pid,
		.rescan_ms = RESCAN_MS,
		.on_end = count_end,
	};

	return ks_attach_start(e, &o, a, err);
}

/* Return: false when valgrind cannot run pidfd_open (the test then ends). */
static bool
attach_vmm(struct ks_engine *e, pid_t pid, struct ks_attach **a)
{
	struct kvmstats_error err;
	int ret = try_attach(e, pid, a, &err);

	if (ret == -ENOSYS && under_valgrind()) {
		assert_non_null(strstr(err.msg, "not implemented"));
		print_message("valgrind knows no pidfd_open: checked the ENOSYS error only: %s\n",
			      err.msg);
		return false;
	}
	if (ret < 0)
		fail_msg("attach %d: %s", (int)pid, err.msg);
	return true;
}

static struct kvmstats_segment *
reader_attach(pid_t pid)
{
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	char vm[32];

	snprintf(vm, sizeof(vm), "kvm-%d", (int)pid);
	if (kvmstats_attach(vm, NULL, &seg, &err) < 0)
		fail_msg("reader: %s", err.msg);
	return seg;
}

static void
wait_state(const struct kvmstats_segment *seg, enum kvmstats_state want)
{
	enum kvmstats_state st = seg_wait_state(seg, want, STATE_TIMEOUT_MS);

	if (st != want)
		fail_msg("segment still %s after %d ms, want %s", kvmstats_state_name(st),
			 STATE_TIMEOUT_MS, kvmstats_state_name(want));
}

static uint64_t
wait_sweep_after(const struct kvmstats_segment *seg, uint64_t after)
{
	struct kvmstats_status st;

	for (unsigned ms = 0; ms < STATE_TIMEOUT_MS; ms++) {
		kvmstats_status(seg, &st);
		if (st.sweep > after)
			return st.sweep;
		sleep_ms(1);
	}
	fail_msg("no sweep after %llu within %d ms", (unsigned long long)after,
		 STATE_TIMEOUT_MS);
	return 0;
}

/* vCPU targets of @seg, in order: their ids must be 0..n-1. */
static void
check_vcpus(const struct kvmstats_segment *seg, unsigned first, unsigned n)
{
	assert_int_equal(kvmstats_nr_targets(seg), first + n);
	for (unsigned i = 0; i < n; i++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, first + i);

		assert_int_equal(ti->kind, KVMSTATS_TARGET_VCPU);
		assert_int_equal(ti->vcpu_index, i);
	}
}

/* Target @t publishes exactly the descriptors the kernel gave for @s. */
static void
check_schema(const struct kvmstats_segment *seg, unsigned t, const struct ks_statsfd_schema *s)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

	assert_string_equal(ti->id, s->id);
	assert_string_equal(ti->label, s->id);
	assert_int_equal(ti->nr_stats, s->nr_desc);
	assert_int_equal(ti->record_words, s->data_size / 8);
	for (unsigned j = 0; j < s->nr_desc; j++) {
		check_stat_is_desc(kvmstats_target_stat(seg, t, j), &s->desc[j]);
	}
}

/* ---- tests -------------------------------------------------------------- */

/*
 * The message an attach test's child wrote to @rfd, and its exit: 0 when
 * it got EPERM, 6 when valgrind cannot run pidfd_open (then false: no
 * message to check).  Reads to EOF before the wait: the child is never
 * left writing into a pipe nobody reads.
 */
static bool
eperm_child_said(int rfd, pid_t child, char *msg, size_t len)
{
	ssize_t n = read(rfd, msg, len - 1);
	int status;

	msg[n > 0 ? n : 0] = '\0';
	close(rfd);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 6) {
		print_message("valgrind knows no pidfd_open: %s\n", msg);
		return false;
	}
	if (WEXITSTATUS(status) != 0)
		fail_msg("want EPERM, child exit %d: %s", WEXITSTATUS(status), msg);
	print_message("EPERM says: %s\n", msg);
	return true;
}

/* In a child that dropped to uid 65534: an engine there, or exit 4. */
static struct ks_engine *
nobody_engine(void)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct ks_engine *e;

	ks_engine_config_init(&cfg);
	cfg.dir = "/dev/shm";	/* uid 65534 may not enter the test's own */
	if (ks_engine_create(&cfg, &e, &err) < 0)
		_exit(4);
	return e;
}

/*
 * First, while this process has no threads: the child forks off and
 * drops to uid 65534, which may not look into a root process's fds.
 */
static void
attach_eperm(void **state)
{
	struct kvmstats_error err = { 0 };
	struct vmm v;
	char msg[sizeof(err.msg)] = "";
	pid_t child;
	bool said;
	int p[2];

	(void)state;
	real_kvm_require();
	if (geteuid() != 0) {
		print_message("skip: the EPERM test needs root (to drop to uid 65534)\n");
		skip();
		return;
	}
	v = vmm_spawn("--vcpus", "1", NULL, NULL);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct ks_engine *e;
		struct ks_attach *a;
		int ret;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		e = nobody_engine();
		ret = try_attach(e, v.pid, &a, &err);
		if (write(p[1], err.msg, strlen(err.msg)) < 0)
			_exit(5);
		_exit(ret == -EPERM ? 0 : ret == -ENOSYS && under_valgrind() ? 6 : 1);
	}
	close(p[1]);
	said = eperm_child_said(p[0], child, msg, sizeof(msg));
	vmm_stop(&v);
	if (!said)
		return;
	assert_non_null(strstr(msg, "permission denied"));
	assert_non_null(strstr(msg, "CAP_SYS_PTRACE"));
	assert_non_null(strstr(msg, "uid 0"));
	assert_non_null(strstr(msg, "(test_vmm"));
	if (access("/proc/sys/kernel/yama/ptrace_scope", R_OK) == 0)
		assert_non_null(strstr(msg, "ptrace_scope is"));
}

/* Wait (up to 10 s) until process @pid runs @comm: an exec takes its time. */
static void
wait_comm(pid_t pid, const char *comm)
{
	char path[64], now[64] = "";

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	for (int i = 0; i < 2000; i++) {
		FILE *f = fopen(path, "re");

		now[0] = '\0';
		if (f != NULL) {
			if (fgets(now, sizeof(now), f) != NULL)
				now[strcspn(now, "\n")] = '\0';
			fclose(f);
		}
		if (strcmp(now, comm) == 0)
			return;
		sleep_ms(5);
	}
	fail_msg("process %d is \"%s\", not \"%s\", after 10 s", (int)pid, now, comm);
}

/* The owner of /proc/@pid, or -1. */
static long
proc_owner(pid_t pid)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return stat(path, &st) == 0 ? (long)st.st_uid : -1;
}

/*
 * A VMM of our own uid that is not dumpable refuses too: the message must
 * not tell us to become the uid we are.  Needs no KVM: the refusal comes
 * before any stats fd is looked at.
 */
static void
attach_eperm_same_uid(void **state)
{
	struct kvmstats_error err = { 0 };
	char msg[sizeof(err.msg)] = "";
	pid_t child;
	int p[2];

	(void)state;
	if (geteuid() != 0) {
		print_message("skip: the test needs root (to drop to uid 65534)\n");
		skip();
		return;
	}
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct ks_engine *e;
		struct ks_attach *a;
		int hold[2], ret;
		pid_t vmm;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0 ||
		    pipe2(hold, O_CLOEXEC) < 0)
			_exit(3);
		vmm = fork();
		if (vmm == 0) {
			char b;

			close(hold[1]);
			prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
			/* It waits for EOF: its parent's exit is the end either way. */
			_exit(read(hold[0], &b, 1) < 0 ? 1 : 0);
		}
		close(hold[0]);
		/* Not dumpable yet?  Wait for it: /proc/PID turns root's then. */
		for (int i = 0; i < 2000 && proc_owner(vmm) != 0; i++)
			usleep(5000);
		if (vmm < 0)
			_exit(4);
		e = nobody_engine();
		ret = try_attach(e, vmm, &a, &err);
		close(hold[1]);
		waitpid(vmm, NULL, 0);
		if (write(p[1], err.msg, strlen(err.msg)) < 0)
			_exit(5);
		_exit(ret == -EPERM ? 0 : ret == -ENOSYS && under_valgrind() ? 6 : 1);
	}
	close(p[1]);
	if (!eperm_child_said(p[0], child, msg, sizeof(msg)))
		return;
	assert_non_null(strstr(msg, "uid 65534"));
	assert_non_null(strstr(msg, "although we are uid 65534"));
	assert_non_null(strstr(msg, "not be dumpable"));
	assert_null(strstr(msg, "run as the VMM's user"));
}

/* A guest that does not run: every published value equals a pread. */
static void
attach_publishes_kernel_tables(void **state)
{
	struct ks_engine *e;
	struct ks_attach *a;
	struct kvmstats_segment *seg;
	struct their_fd t[4];
	uint64_t rec[4096], raw[4096];
	struct vmm v;
	char name[64];
	unsigned n;

	(void)state;
	real_kvm_require();
	v = vmm_spawn("--vcpus", "2", "--vm-stats-fd", NULL);
	e = new_engine(200);
	if (!attach_vmm(e, v.pid, &a)) {
		ks_engine_destroy(&e);
		vmm_stop(&v);
		return;
	}
	snprintf(name, sizeof(name), "kvmstats.kvm-%d", (int)v.pid);
	assert_string_equal(ks_attach_file(a), name);
	seg = reader_attach(v.pid);
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	snprintf(name, sizeof(name), "kvm-%d", (int)v.pid);
	assert_string_equal(kvmstats_info(seg)->vm_name, name);

	/* The VM and two vCPUs; not the VM or vCPU fds, whose names share a prefix. */
	n = take_their_fds(v.pid, t, 4);
	assert_int_equal(n, 3);
	parse_their_fds(t, n);
	assert_int_equal(kvmstats_target(seg, 0)->kind, KVMSTATS_TARGET_VM);
	check_vcpus(seg, 1, 2);
	for (unsigned i = 0; i < n; i++) {
		unsigned tg = t[i].vcpu < 0 ? 0 : (unsigned)t[i].vcpu + 1;
		const struct kvmstats_target_info *ti = kvmstats_target(seg, tg);
		struct kvmstats_sample s;

		check_schema(seg, tg, &t[i].s);
		assert_true(ti->record_words <= 4096);
		wait_sweep_after(seg, 1);
		assert_int_equal(kvmstats_read_record(seg, tg, rec, 4096, &s), 0);
		assert_int_equal(s.flags, 0);
		assert_int_equal(ks_statsfd_read_data(t[i].fd, &t[i].s, raw), 0);
		assert_memory_equal(rec, raw, ti->record_words * 8);
	}
	drop_their_fds(t, n);

	/* Stopping ends the segment; the VMM is not touched. */
	ks_attach_stop(&a);
	assert_null(a);
	wait_state(seg, KVMSTATS_STATE_ENDED);	/* written when the poll thread retires it */
	assert_int_equal(kill(v.pid, 0), 0);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	vmm_stop(&v);
}

/* One counter of vCPU target @tg: the published value lies between two preads. */
static uint64_t
check_between(const struct kvmstats_segment *seg, unsigned tg, const struct their_fd *t,
	      const char *stat)
{
	struct kvmstats_stat_handle h;
	struct kvmstats_status st;
	struct kvmstats_sample s;
	uint64_t before, pub, after;
	off_t off = -1;

	for (unsigned j = 0; j < t->s.nr_desc; j++)
		if (strcmp(t->s.desc[j].name, stat) == 0)
			off = (off_t)(t->s.data_offset + t->s.desc[j].offset);
	assert_true(off >= 0);
	assert_int_equal(kvmstats_stat_lookup(seg, tg, "kvm", stat, &h), 0);
	assert_int_equal(pread(t->fd, &before, 8, off), 8);
	kvmstats_status(seg, &st);
	/* Sweep st.sweep + 2 began after the status load, so after "before". */
	wait_sweep_after(seg, st.sweep + 1);
	assert_int_equal(kvmstats_read_scalar(seg, &h, &pub, &s), 0);
	assert_true(s.sweep >= st.sweep + 2);
	assert_int_equal(pread(t->fd, &after, 8, off), 8);
	if (before > pub || pub > after)
		fail_msg("%s: pread %llu, published %llu, pread %llu", stat,
			 (unsigned long long)before, (unsigned long long)pub,
			 (unsigned long long)after);
	return pub;
}

static void
attach_counters_move(void **state)
{
	struct ks_engine *e;
	struct ks_attach *a;
	struct kvmstats_segment *seg;
	struct their_fd t[2];
	struct vmm v;
	unsigned n;

	(void)state;
	real_kvm_require();
	v = vmm_spawn("--vcpus", "2", "--run", NULL);
	e = new_engine(200);
	if (!attach_vmm(e, v.pid, &a)) {
		ks_engine_destroy(&e);
		vmm_stop(&v);
		return;
	}
	seg = reader_attach(v.pid);
	/* QEMU's shape: no VM stats fd, so the vCPUs are the only targets. */
	check_vcpus(seg, 0, 2);
	n = take_their_fds(v.pid, t, 2);
	assert_int_equal(n, 2);
	parse_their_fds(t, n);
	for (unsigned i = 0; i < n; i++) {
		uint64_t first = check_between(seg, (unsigned)t[i].vcpu, &t[i], "exits");
		uint64_t later = first;

		check_between(seg, (unsigned)t[i].vcpu, &t[i], "io_exits");
		for (unsigned ms = 0; later == first && ms < STATE_TIMEOUT_MS; ms += 20) {
			sleep_ms(20);
			later = check_between(seg, (unsigned)t[i].vcpu, &t[i], "exits");
		}
		if (later <= first)
			fail_msg("vCPU %d: exits stayed at %llu", t[i].vcpu,
				 (unsigned long long)first);
		assert_true(check_between(seg, (unsigned)t[i].vcpu, &t[i], "halt_exits") > 0);
	}
	drop_their_fds(t, n);
	ks_attach_stop(&a);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	vmm_stop(&v);
}

/* Reattach after a generation change: @nr vCPUs, generation @gen. */
static void
expect_generation(struct kvmstats_segment **seg, unsigned nr, uint64_t gen)
{
	struct kvmstats_error err;

	wait_state(*seg, KVMSTATS_STATE_SUPERSEDED);
	if (kvmstats_reattach(seg, &err) < 0)
		fail_msg("reattach: %s", err.msg);
	assert_int_equal(kvmstats_info(*seg)->generation, gen);
	check_vcpus(*seg, 0, nr);
}

static void
attach_hotplug_and_exit(void **state)
{
	struct kvmstats_segment *seg;
	struct kvmstats_status st;
	struct ks_engine *e;
	struct ks_attach *a;
	struct vmm v;
	int status;

	(void)state;
	real_kvm_require();
	v = vmm_spawn("--vcpus", "1", "--run", NULL);
	e = new_engine(200);
	if (!attach_vmm(e, v.pid, &a)) {
		ks_engine_destroy(&e);
		vmm_stop(&v);
		return;
	}
	atomic_store(&ends, 0);
	seg = reader_attach(v.pid);
	check_vcpus(seg, 0, 1);

	vmm_hotplug(&v, SIGUSR1, 2);
	expect_generation(&seg, 2, 2);
	vmm_hotplug(&v, SIGUSR1, 3);
	expect_generation(&seg, 3, 3);
	vmm_hotplug(&v, SIGUSR2, 2);
	expect_generation(&seg, 2, 4);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_LIVE);

	/* Nothing changes: no new generation over several rescans. */
	sleep_ms(5 * RESCAN_MS);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_LIVE);

	/* The VMM exits: the segment ends and on_end runs once. */
	assert_int_equal(kill(v.pid, SIGTERM), 0);
	assert_int_equal(waitpid(v.pid, &status, 0), v.pid);
	close(v.out);
	wait_state(seg, KVMSTATS_STATE_ENDED);
	for (unsigned ms = 0; atomic_load(&ends) == 0 && ms < STATE_TIMEOUT_MS; ms++)
		sleep_ms(1);
	assert_int_equal(atomic_load(&ends), 1);
	ks_attach_stop(&a);
	assert_int_equal(atomic_load(&ends), 1);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
}

/* Follow generations until the segment shows @nr vCPUs and is live. */
static void
settle(struct kvmstats_segment **seg, unsigned nr)
{
	struct kvmstats_error err;
	struct kvmstats_status st;

	for (unsigned ms = 0; ms < STATE_TIMEOUT_MS; ms++) {
		kvmstats_status(*seg, &st);
		if (st.state == KVMSTATS_STATE_SUPERSEDED && kvmstats_reattach(seg, &err) < 0)
			fail_msg("reattach: %s", err.msg);
		if (st.state == KVMSTATS_STATE_LIVE && kvmstats_nr_targets(*seg) == nr)
			return;
		sleep_ms(1);
	}
	fail_msg("segment did not settle on %u vCPUs: %u targets, state %s", nr,
		 kvmstats_nr_targets(*seg), kvmstats_state_name(st.state));
}

/*
 * Plug and unplug faster than the monitor rescans (every 1 ms here): fds
 * vanish between readlink and pidfd_getfd, sets change mid-scan.  Attach
 * must ride it out and end on the VMM's final set.
 */
static void
attach_hotplug_storm(void **state)
{
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct ks_attach_opts o = { .rescan_ms = 1 };
	struct ks_engine *e;
	struct ks_attach *a;
	struct vmm v;
	unsigned n = 2;

	(void)state;
	real_kvm_require();
	v = vmm_spawn("--vcpus", "2", NULL, NULL);
	e = new_engine(1000);
	o.pid = v.pid;
	if (ks_attach_start(e, &o, &a, &err) < 0) {
		if (!(err.code == -ENOSYS && under_valgrind()))
			fail_msg("attach: %s", err.msg);
		ks_engine_destroy(&e);
		vmm_stop(&v);
		return;
	}
	seg = reader_attach(v.pid);
	for (unsigned i = 0; i < 40; i++) {
		bool add = i % 3 != 2;

		n += add ? 1 : -1;
		vmm_hotplug(&v, add ? SIGUSR1 : SIGUSR2, n);
	}
	settle(&seg, n);
	sleep_ms(20);			/* and stays there */
	settle(&seg, n);
	for (unsigned t = 1; t < n; t++) {	/* ids are no longer dense */
		assert_int_equal(kvmstats_target(seg, t)->kind, KVMSTATS_TARGET_VCPU);
		assert_true(kvmstats_target(seg, t)->vcpu_index >
			    kvmstats_target(seg, t - 1)->vcpu_index);
	}
	ks_attach_stop(&a);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	vmm_stop(&v);
}

static void
expect_no_fds(struct ks_engine *e, pid_t pid, const char *comm)
{
	struct kvmstats_error err;
	struct ks_attach *a = NULL;
	char want[64];
	int ret = try_attach(e, pid, &a, &err);

	if (ret == -ENOSYS && under_valgrind())
		return;
	assert_int_equal(ret, -ENODATA);
	assert_null(a);
	snprintf(want, sizeof(want), "process %d (%s) holds no KVM stats fds", (int)pid, comm);
	assert_non_null(strstr(err.msg, want));
	assert_non_null(strstr(err.msg, "QEMU >= 8.1"));
	assert_non_null(strstr(err.msg, "libkvmstats-preload.so"));
	assert_non_null(strstr(err.msg, "kvmstatsd --listen"));
}

/* ---- VM stats from KVM's debugfs (QEMU keeps no VM stats fd) ---------- */

/* The VMM's VM fd number, from /proc/PID/fd. */
static int
vm_fd_of(pid_t pid)
{
	char dir[64], path[128], link[64];
	int found = -1;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	for (int fd = 0; fd < 256; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%d", dir, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "anon_inode:kvm-vm") == 0)
			found = fd;
	}
	assert_true(found >= 0);
	return found;
}

static void
write_value(const char *dir, const char *name, uint64_t v)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%llu\n", (unsigned long long)v);
	assert_int_equal(fclose(f), 0);
}

/* @imitation: @debugfs is the tests' stand-in, not debugfs itself. */
static struct ks_attach *
attach_with_debugfs(struct ks_engine *e, pid_t pid, const char *debugfs, bool imitation)
{
	struct ks_attach_opts o = {
		.pid = pid, .rescan_ms = RESCAN_MS, .on_end = count_end, .debugfs = debugfs,
		.debugfs_any_fs = imitation,
	};
	struct kvmstats_error err;
	struct ks_attach *a;

	if (ks_attach_start(e, &o, &a, &err) < 0)
		fail_msg("attach %d: %s", (int)pid, err.msg);
	return a;
}

/*
 * A directory of files in debugfs' format, named as KVM names the VM's:
 * the VM target has exactly this kernel's VM descriptors (from a probe VM)
 * with the files' values, which the next sweep follows.
 */
static void
attach_vm_stats_from_debugfs_files(void **state)
{
	struct ks_statsfd_schema s;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct ks_engine *e;
	struct ks_attach *a;
	char root[64], dir[256], id[32];
	const struct kvmstats_target_info *ti;
	struct vmm v;

	(void)state;
	real_kvm_require();
	if (under_valgrind()) {
		print_message("skip: valgrind knows no pidfd_getfd\n");
		return;
	}
	if (ks_kvm_vm_schema("/dev/kvm", &s, &err) < 0)
		fail_msg("probe VM: %s", err.msg);
	v = vmm_spawn("--vcpus", "1", NULL, NULL);
	snprintf(root, sizeof(root), "/tmp/ks-attach-debugfs.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/kvm", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	/* test_vmm creates its VM on its main thread, as QEMU does. */
	snprintf(dir, sizeof(dir), "%s/kvm/%d-%d", root, (int)v.pid, vm_fd_of(v.pid));
	assert_int_equal(mkdir(dir, 0700), 0);
	for (uint32_t i = 0; i < s.nr_desc; i++)
		write_value(dir, s.desc[i].name, 100 + i);

	e = new_engine(200);
	a = attach_with_debugfs(e, v.pid, root, true);
	seg = reader_attach(v.pid);
	/* The VM first, then the vCPU; the VM's id is its creator's. */
	assert_int_equal(kvmstats_nr_targets(seg), 2);
	ti = kvmstats_target(seg, 0);
	assert_int_equal(ti->kind, KVMSTATS_TARGET_VM);
	snprintf(id, sizeof(id), "kvm-%d", (int)v.pid);
	assert_string_equal(ti->id, id);
	assert_int_equal(ti->nr_stats, s.nr_desc);
	for (uint32_t i = 0; i < s.nr_desc; i++) {
		const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, 0, i);
		struct kvmstats_stat_handle h;
		uint64_t val;

		assert_string_equal(si->name, s.desc[i].name);
		assert_int_equal(si->type, s.desc[i].type);
		assert_int_equal(si->unit, s.desc[i].unit);
		assert_int_equal(si->exponent, s.desc[i].exponent);
		assert_int_equal(kvmstats_stat_lookup(seg, 0, "kvm", si->name, &h), 0);
		assert_int_equal(kvmstats_read_scalar(seg, &h, &val, NULL), 0);
		assert_int_equal(val, 100 + i);
	}
	assert_non_null(strstr(kvmstats_note(seg), "VM stats read from KVM's debugfs"));
	assert_non_null(strstr(kvmstats_note(seg), dir));
	/* A value the kernel changes shows at a later sweep. */
	write_value(dir, s.desc[0].name, 424242);
	{
		struct kvmstats_stat_handle h;
		uint64_t val = 0;

		assert_int_equal(kvmstats_stat_lookup(seg, 0, "kvm", s.desc[0].name, &h), 0);
		for (unsigned ms = 0; ms < STATE_TIMEOUT_MS && val != 424242; ms += 5) {
			sleep_ms(5);
			assert_int_equal(kvmstats_read_scalar(seg, &h, &val, NULL), 0);
		}
		assert_int_equal(val, 424242);
	}
	ks_attach_stop(&a);
	kvmstats_detach(&seg);
	ks_engine_destroy(&e);
	vmm_stop(&v);
	snprintf(dir, sizeof(dir), "rm -rf '%s'", root);
	assert_int_equal(system(dir), 0);
	ks_statsfd_schema_clear(&s);
}

/* Where the VM stats cannot be had, the segment says why: readers show it. */
static void
attach_no_vm_stats_says_why(void **state)
{
	static const struct {
		const char *debugfs, *says;
	} cases[] = {
		{ NULL, "not read (--debugfs none)" },
		{ "/proc/self", "not mounted at /proc/self" },
		{ "@imitation", "is not on debugfs" },	/* the files test's layout, not debugfs */
		/* A path that is not printable text: escaped in the note, the VM published. */
		{ "/nonexistent/a\tb", "not mounted at /nonexistent/a\\x09b" },
	};
	char root[64], dir[128];

	(void)state;
	real_kvm_require();
	if (under_valgrind()) {
		print_message("skip: valgrind knows no pidfd_getfd\n");
		return;
	}
	snprintf(root, sizeof(root), "/tmp/ks-not-debugfs.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/kvm", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmm v = vmm_spawn("--vcpus", "1", NULL, NULL);
		struct ks_engine *e = new_engine(100);
		const char *d = cases[i].debugfs && strcmp(cases[i].debugfs, "@imitation") == 0
				? root : cases[i].debugfs;
		struct ks_attach *a = attach_with_debugfs(e, v.pid, d, false);
		struct kvmstats_segment *seg = reader_attach(v.pid);
		const char *note = kvmstats_note(seg);

		check_vcpus(seg, 0, 1);		/* no VM target */
		if (strstr(note, "no VM stats: the VMM keeps no VM stats fd") == NULL ||
		    strstr(note, cases[i].says) == NULL)
			fail_msg("debugfs %s: note \"%s\" does not say \"%s\"",
				 cases[i].debugfs ? cases[i].debugfs : "none", note, cases[i].says);
		ks_attach_stop(&a);
		kvmstats_detach(&seg);
		ks_engine_destroy(&e);
		vmm_stop(&v);
	}
	rmdir(dir);
	rmdir(root);
}

/*
 * The real debugfs, where this host lets us read it: a VM of our own, its
 * values through debugfs equal to those of its stats fd (an idle VM's VM
 * stats do not move).  Kernel lockdown may leave some out; the rest must
 * agree.
 */
static void
debugfs_agrees_with_stats_fd(void **state)
{
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	struct ks_block_def b;
	struct real_vm vm;
	_Atomic uint64_t vals[512];
	uint8_t data[8192];
	char path[512];
	uint32_t left = 0;
	pid_t creator;
	int dirfd, r;

	(void)state;
	real_vm_make(&vm, 1);		/* skips where there is no KVM */
	r = ks_debugfs_vm_dir(KS_DEBUGFS_DEFAULT, false, getpid(), vm.vm, &dirfd, path, sizeof(path),
			      &creator, &err);
	if (r < 0) {
		print_message("skip: the real debugfs: %s\n", err.msg);
		real_vm_close(&vm);
		return;
	}
	assert_int_equal(creator, getpid());
	if (ks_statsfd_parse(vm.stats[0], "our VM's stats fd", &s, &err) < 0)
		fail_msg("%s", err.msg);
	r = ks_debugfs_block(dirfd, path, &s, NULL, &b, &left, &err);
	if (r < 0)
		fail_msg("%s", err.msg);
	print_message("debugfs %s: %u of %u VM stats readable\n", path, b.nr_stats, s.nr_desc);
	assert_true(s.data_size <= sizeof(data) && b.words <= 512);
	assert_int_equal(ks_statsfd_read_data(vm.stats[0], &s, data), 0);
	assert_int_equal(b.ops->read(b.ctx, vals, b.words, 1), 0);
	for (uint32_t i = 0; i < b.nr_stats; i++) {
		const struct ks_kvm_desc *d = NULL;
		uint64_t want;

		for (uint32_t k = 0; k < s.nr_desc; k++)
			if (strcmp(s.desc[k].name, b.stats[i].name) == 0)
				d = &s.desc[k];
		assert_non_null(d);
		memcpy(&want, data + d->offset, sizeof(want));
		if (atomic_load(&vals[b.stats[i].value_index]) != want)
			fail_msg("%s: debugfs %llu, stats fd %llu", d->name,
				 (unsigned long long)atomic_load(&vals[b.stats[i].value_index]),
				 (unsigned long long)want);
	}
	b.ops->release(b.ctx);
	ks_statsfd_schema_clear(&s);
	real_vm_close(&vm);
}

static void
attach_no_stats_fds(void **state)
{
	struct ks_engine *e = new_engine(100);
	struct vmm v;
	pid_t child;
	int status;

	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	wait_comm(child, "sleep");	/* the error names it as it is now */
	expect_no_fds(e, child, "sleep");
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);

	/* VM and vCPU fds but no stats fds (QEMU < 8.1): their names must not match. */
	if (real_kvm_check()) {
		v = vmm_spawn("--vcpus", "2", "--no-vcpu-stats-fds", NULL);
		expect_no_fds(e, v.pid, "test_vmm");
		vmm_stop(&v);
	}
	ks_engine_destroy(&e);
}

static void
attach_no_such_process(void **state)
{
	struct ks_engine *e = new_engine(100);
	struct kvmstats_error err;
	struct ks_attach *a = NULL;
	char want[64];
	pid_t child;
	int ret, status;

	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, &status, 0), child);
	ret = try_attach(e, child, &a, &err);
	if (!(ret == -ENOSYS && under_valgrind())) {
		assert_int_equal(ret, -ENOENT);
		snprintf(want, sizeof(want), "no process %d", (int)child);
		assert_non_null(strstr(err.msg, want));
	}
	assert_null(a);
	assert_int_equal(try_attach(e, 0, &a, &err), -EINVAL);
	assert_int_equal(try_attach(e, -5, &a, &err), -EINVAL);
	ks_engine_destroy(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(attach_eperm),		/* first: no threads yet */
		cmocka_unit_test(attach_eperm_same_uid),
		cmocka_unit_test(attach_publishes_kernel_tables),
		cmocka_unit_test(attach_counters_move),
		cmocka_unit_test(attach_hotplug_and_exit),
		cmocka_unit_test(attach_hotplug_storm),
		cmocka_unit_test(attach_vm_stats_from_debugfs_files),
		cmocka_unit_test(attach_no_vm_stats_says_why),
		cmocka_unit_test(debugfs_agrees_with_stats_fd),
		cmocka_unit_test(attach_no_stats_fds),
		cmocka_unit_test(attach_no_such_process),
	};

	signal(SIGPIPE, SIG_IGN);	/* a child gone: EPIPE, not death */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
