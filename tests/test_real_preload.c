/* SPDX-License-Identifier: MIT */
/*
 * test_real_preload.c - libkvmstats-preload.so in an unmodified VMM.
 *
 * Runs tests/tools/test_vmm (a VMM that knows nothing of kvmstats) with
 * LD_PRELOAD=$KVMSTATS_BUILD/libkvmstats-preload.so and reads what it
 * publishes: in-process (the VMM itself publishes), through an intake
 * socket served by this test, and with failures that must not disturb the
 * VMM (no daemon, a bad mode).  Needs a usable /dev/kvm: without one every
 * test is skipped with the reason, or fails if KVMSTATS_REQUIRE_KVM=1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "intake.h"
#include "kvmstats/reader.h"
#include "ks_shmdir.h"
#include "real_kvm.h"
#include "seg_check.h"
#include "statsfd.h"

extern char **environ;

#define WAIT_MS		10000	/* for anything the VMM or a publisher does */

/* The kernel's own tables, parsed from a VM of our own. */
static struct ks_statsfd_schema kernel_vm, kernel_vcpu;
static bool kvm_ok;
static char kvm_why[600];

struct vmm {
	pid_t pid;
	int out;			/* its stdout */
	int err;			/* a memfd that is its stderr */
	int in;				/* its stdin (thread_vmm's commands), or -1 */
};

/* ---- KVM or not --------------------------------------------------- */

static void
probe_kvm(void)
{
	struct kvmstats_error err;
	struct real_vm r;

	if (real_vm_open(&r, 1, kvm_why, sizeof(kvm_why)) == 0) {
		if (ks_statsfd_parse(r.stats[0], "our VM", &kernel_vm, &err) < 0 ||
		    ks_statsfd_parse(r.stats[1], "our vCPU", &kernel_vcpu, &err) < 0)
			snprintf(kvm_why, sizeof(kvm_why), "parse: %s", err.msg);
		else
			kvm_ok = true;
	}
	real_vm_close(&r);
}

static void
need_kvm(void)
{
	if (kvm_ok)
		return;
	real_kvm_unusable(kvm_why);
	skip();
}

/* ---- the VMM ------------------------------------------------------ */

static const char *
build_dir(void)
{
	const char *b = getenv("KVMSTATS_BUILD");

	return b && *b ? b : "build";
}

static void
build_path(char *out, size_t len, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", build_dir(), rel);
	if (realpath(p, out) == NULL || strlen(out) >= len)
		fail_msg("%s: %s (build it: make BUILD=%s all %s/tests/tools/test_vmm)", p,
			 strerror(errno), build_dir(), build_dir());
}

/* Our environment, with each "NAME=value" of @add replacing or adding. */
static char **
child_env(char *const *add)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	while (add[k])
		k++;
	env = calloc(n + k + 1, sizeof(*env));
	assert_non_null(env);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;

		for (char *const *a = add; *a; a++) {
			size_t l = strcspn(*a, "=") + 1;

			replaced |= strncmp(environ[i], *a, l) == 0;
		}
		if (!replaced)
			env[k++] = environ[i];
	}
	for (char *const *a = add; *a; a++)
		env[k++] = *a;
	return env;
}

/* One line of the VMM's stdout, without the newline; fails after WAIT_MS. */
static void
read_line(struct vmm *v, char *buf, size_t len)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = { .fd = v->out, .events = POLLIN };
		char c;

		if (poll(&p, 1, WAIT_MS) <= 0)
			fail_msg("test_vmm %d said nothing for %d ms", (int)v->pid, WAIT_MS);
		if (read(v->out, &c, 1) != 1)
			fail_msg("test_vmm %d closed its stdout", (int)v->pid);
		if (c == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = c;
	}
	buf[n] = '\0';
}

/*
 * Start @argv (argv[0] a path under the build directory) with the shim and
 * @env added to ours, and wait for "ready <pid>" (@pid: 0 for the child's
 * own pid; a process in a pid namespace of its own says its own view).
 * @in: give it a pipe on stdin, v->in.  Lines it says before "ready" go to
 * @before (may be NULL).  ASan's runtime may not come first in a preloaded
 * process: tell it that this is on purpose.
 */
static void
spawn_vmm(struct vmm *v, char **argv, char *const *env, bool in, pid_t pid, char *before,
	  size_t len)
{
	char vmm[PATH_MAX], shim[PATH_MAX], preload[PATH_MAX + 16], line[64];
	char *add[16] = { preload, "ASAN_OPTIONS=verify_asan_link_order=0" };
	posix_spawn_file_actions_t fa;
	int pipefd[2], infd[2] = { -1, -1 }, i = 2;
	const char *prog = argv[0];
	char **envp;

	if (prog[0] != '/') {
		build_path(vmm, sizeof(vmm), prog);
		argv[0] = vmm;
	}
	build_path(shim, sizeof(shim), "libkvmstats-preload.so");
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", shim);
	for (; *env && i < 15; env++) {
		/* The caller's LD_PRELOAD or ASAN_OPTIONS replaces ours (the first counts). */
		if (strncmp(*env, "LD_PRELOAD=", 11) == 0)
			add[0] = *env;
		else if (strncmp(*env, "ASAN_OPTIONS=", 13) == 0)
			add[1] = *env;
		else
			add[i++] = *env;
	}
	envp = child_env(add);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	if (in)
		assert_int_equal(pipe2(infd, O_CLOEXEC), 0);
	v->err = memfd_create("vmm-stderr", MFD_CLOEXEC);
	assert_true(v->err >= 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, v->err, STDERR_FILENO);
	if (in)
		posix_spawn_file_actions_adddup2(&fa, infd[0], STDIN_FILENO);
	assert_int_equal(posix_spawn(&v->pid, argv[0], &fa, NULL, argv, envp), 0);
	argv[0] = (char *)prog;
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(pipefd[1]);
	if (in)
		close(infd[0]);
	v->in = infd[1];
	v->out = pipefd[0];
	for (;;) {
		read_line(v, line, sizeof(line));
		if (strncmp(line, "ready ", 6) == 0)
			break;
		if (before != NULL)
			snprintf(before, len, "%s", line);
	}
	if (atoi(line + 6) != (pid ? pid : v->pid))
		fail_msg("%s said \"%s\", not \"ready %d\"", prog, line, (int)(pid ? pid : v->pid));
}

static void
start_vmm(struct vmm *v, const char *vcpus, char *const *env)
{
	char *argv[] = { "tests/tools/test_vmm", "--vcpus", (char *)vcpus, "--run", NULL };

	spawn_vmm(v, argv, env, false, 0, NULL, 0);
}

/* Its stderr so far, NUL-terminated (static buffer). */
static const char *
vmm_stderr(const struct vmm *v)
{
	static char buf[8192];
	ssize_t n = pread(v->err, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* SIGTERM; the VMM must exit 0. */
static void
stop_vmm(struct vmm *v)
{
	int status;

	assert_int_equal(kill(v->pid, SIGTERM), 0);
	assert_int_equal(waitpid(v->pid, &status, 0), v->pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("test_vmm %d: status 0x%x, stderr: %s", (int)v->pid, status,
			 vmm_stderr(v));
	close(v->out);
}

static void
hotplug(struct vmm *v, const char *expect)
{
	char line[64];

	assert_int_equal(kill(v->pid, SIGUSR1), 0);
	read_line(v, line, sizeof(line));
	assert_string_equal(line, expect);
}

/* ---- reading what is published ----------------------------------- */

static struct kvmstats_segment *
attach_name(const char *vm)
{
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err = { 0 };

	for (int t = 0; t < WAIT_MS; t += 10) {
		if (kvmstats_attach(vm, NULL, &seg, &err) == 0)
			return seg;
		if (err.code != -ENOENT && err.code != -EAGAIN)
			break;
		sleep_ms(10);
	}
	fail_msg("attach %s: %s", vm, err.msg);
	return NULL;
}

static struct kvmstats_segment *
attach_wait(pid_t pid)
{
	char vm[32];

	snprintf(vm, sizeof(vm), "kvm-%d", (int)pid);
	return attach_name(vm);
}

/*
 * Follow the VM's generations until one has @nr_vcpus vCPUs: a VMM slower
 * than the quiet period between two vCPUs gets one generation per vCPU.
 */
static void
settle(struct kvmstats_segment **seg, unsigned nr_vcpus)
{
	struct kvmstats_error err;

	for (int t = 0; t < WAIT_MS; t += 10) {
		if (kvmstats_nr_targets(*seg) == 1 + nr_vcpus)
			return;
		if (kvmstats_follow(seg, &err) < 0)
			fail_msg("follow: %s", err.msg);
		sleep_ms(10);
	}
	fail_msg("no generation with %u vCPUs (%u targets)", nr_vcpus, kvmstats_nr_targets(*seg));
}

/*
 * Start test_vmm (2 vCPUs) with the shim and @env, and attach to the
 * generation that holds both.  Return: that generation's number.
 */
static uint64_t
start_published(struct vmm *v, char *const *env, struct kvmstats_segment **seg)
{
	start_vmm(v, "2", env);
	*seg = attach_wait(v->pid);
	settle(seg, 2);
	return kvmstats_info(*seg)->generation;
}

/* A target's stats are the kernel's table: same names, types, units, sizes, order. */
static void
check_kernel_table(struct kvmstats_segment *seg, unsigned t,
		   const struct ks_statsfd_schema *k)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

	assert_non_null(ti);
	assert_int_equal(seg_provider_stats(seg, t, "kvm"), k->nr_desc);
	for (unsigned j = 0; j < k->nr_desc; j++) {
		const struct kvmstats_stat_info *s = kvmstats_target_stat(seg, t, j);

		assert_non_null(s);
		assert_string_equal(s->provider_name, "kvm");
		assert_string_equal(s->name, k->desc[j].name);
		assert_int_equal(s->type, k->desc[j].type);
		assert_int_equal(s->unit, k->desc[j].unit);
		assert_int_equal(s->exponent, k->desc[j].exponent);
		assert_int_equal(s->size, k->desc[j].size);
	}
}

/* The VM and @nr_vcpus vCPUs (ids 0..n-1), each with the kernel's table. */
static void
check_vm(struct kvmstats_segment *seg, pid_t vmm, pid_t publisher, unsigned nr_vcpus)
{
	const struct kvmstats_segment_info *info = kvmstats_info(seg);
	char name[32];

	snprintf(name, sizeof(name), "kvm-%d", (int)vmm);
	assert_string_equal(info->vm_name, name);
	assert_int_equal(info->publisher_pid, publisher);
	assert_int_equal(kvmstats_nr_targets(seg), 1 + nr_vcpus);
	assert_int_equal(kvmstats_target(seg, 0)->kind, KVMSTATS_TARGET_VM);
	check_kernel_table(seg, 0, &kernel_vm);
	for (unsigned i = 0; i < nr_vcpus; i++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, 1 + i);
		char idx[16];

		assert_int_equal(ti->kind, KVMSTATS_TARGET_VCPU);
		assert_int_equal(ti->vcpu_index, i);
		snprintf(idx, sizeof(idx), "%u", i);
		assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU, idx), 1 + i);
		check_kernel_table(seg, 1 + i, &kernel_vcpu);
	}
}

/* The guests run (test_vmm --run): vCPU 0's exits must rise. */
static void
check_counting(struct kvmstats_segment *seg)
{
	struct kvmstats_stat_handle h;
	uint64_t a, b;

	assert_int_equal(kvmstats_stat_lookup(seg, 1, "kvm", "exits", &h), 0);
	assert_int_equal(kvmstats_read_scalar(seg, &h, &a, NULL), 0);
	for (int t = 0; t < WAIT_MS; t += 20) {
		sleep_ms(20);
		assert_int_equal(kvmstats_read_scalar(seg, &h, &b, NULL), 0);
		if (b > a)
			return;
	}
	fail_msg("vCPU 0 exits stayed at %llu", (unsigned long long)a);
}

static void
check_gone(pid_t pid)
{
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;
	char vm[32];

	snprintf(vm, sizeof(vm), "kvm-%d", (int)pid);
	assert_int_equal(kvmstats_attach(vm, NULL, &seg, &err), -ENOENT);
}

/* ---- the tests ----------------------------------------------------- */

static void
test_inprocess(void **state)
{
	char *env[] = { "KVMSTATS_PRELOAD_MODE=inprocess", NULL };
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	uint64_t gen;
	struct vmm v;

	(void)state;
	need_kvm();
	gen = start_published(&v, env, &seg);
	check_vm(seg, v.pid, v.pid, 2);
	check_counting(seg);

	/* Hotplug: a new generation with one more vCPU, the old one superseded. */
	hotplug(&v, "hotplug 3");
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_SUPERSEDED, WAIT_MS),
			 KVMSTATS_STATE_SUPERSEDED);
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->generation, gen + 1);
	check_vm(seg, v.pid, v.pid, 3);

	/* Exit: ended and removed, by the shim's destructor. */
	stop_vmm(&v);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, WAIT_MS),
			 KVMSTATS_STATE_ENDED);
	check_gone(v.pid);
	kvmstats_detach(&seg);
	assert_string_equal(vmm_stderr(&v), "");
	close(v.err);
}

/*
 * Its owner truncates the VMM's segment: the VMM lives on (the shim keeps
 * SIGBUS from it), says so once, and publishes a new generation.
 */
static void
test_inprocess_truncated(void **state)
{
	char *env[] = { "KVMSTATS_PRELOAD_MODE=inprocess", NULL };
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	char path[PATH_MAX];
	const char *out;
	uint64_t gen;
	struct vmm v;
	int r = 0;

	(void)state;
	need_kvm();
	gen = start_published(&v, env, &seg);
	snprintf(path, sizeof(path), "%s/%s", ks_shm_dir(NULL), kvmstats_info(seg)->segment_file);
	assert_int_equal(truncate(path, 0), 0);
	for (int t = 0; t < WAIT_MS && (r = kvmstats_follow(&seg, &err)) == 0; t += 10)
		sleep_ms(10);
	if (r != 1)
		fail_msg("no new segment after the truncation (%d %s); VMM said: %s", r,
			 err.msg, vmm_stderr(&v));
	assert_int_equal(kvmstats_info(seg)->generation, gen + 1);
	check_vm(seg, v.pid, v.pid, 2);
	check_counting(seg);
	stop_vmm(&v);			/* exits 0: the shim never broke it */
	kvmstats_detach(&seg);
	out = vmm_stderr(&v);
	if (strstr(out, "kvmstats-preload: VM kvm-") != out ||
	    strstr(out, "was truncated under the publisher") == NULL ||
	    strstr(out, "published generation") == NULL)
		fail_msg("want the truncation said once, got: \"%s\"", out);
	close(v.err);
}

static void
test_socket(void **state)
{
	char dir[] = "/tmp/kvmstats-preload.XXXXXX", path[64], sockenv[96];
	char *env[] = { "KVMSTATS_PRELOAD_MODE=socket", sockenv, NULL };
	struct ks_intake_opts io = { .path = path, .mode = 0600, .quiet_ms = 1000 };
	struct ks_engine_config cfg;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct ks_intake *in;
	struct ks_engine *e;
	struct vmm v;

	(void)state;
	need_kvm();
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/intake.sock", dir);
	snprintf(sockenv, sizeof(sockenv), "KVMSTATS_SOCKET=%s", path);
	ks_engine_config_init(&cfg);
	if (ks_engine_create(&cfg, &e, &err) < 0 || ks_engine_start(e, &err) < 0 ||
	    ks_intake_start(e, &io, &in, &err) < 0)
		fail_msg("%s", err.msg);

	start_vmm(&v, "2", env);
	seg = attach_wait(v.pid);
	settle(&seg, 2);
	check_vm(seg, v.pid, getpid(), 2);
	check_counting(seg);

	hotplug(&v, "hotplug 3");
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_SUPERSEDED, WAIT_MS),
			 KVMSTATS_STATE_SUPERSEDED);
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	check_vm(seg, v.pid, getpid(), 3);

	/* The VMM exits, its connection closes, the daemon ends the VM. */
	stop_vmm(&v);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, WAIT_MS),
			 KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
	assert_string_equal(vmm_stderr(&v), "");
	close(v.err);

	ks_intake_stop(&in);
	ks_engine_destroy(&e);
	unlink(path);
	rmdir(dir);
}

/* The VMM runs, hot-adds, exits 0; the shim said exactly one line. */
static void
run_failing(char *const *env, const char *expect)
{
	const char *out, *nl;
	struct vmm v;

	start_vmm(&v, "2", env);
	hotplug(&v, "hotplug 3");
	stop_vmm(&v);
	check_gone(v.pid);
	out = vmm_stderr(&v);
	nl = strchr(out, '\n');
	if (strncmp(out, "kvmstats-preload: ", 18) != 0 || nl == NULL || nl[1] != '\0' ||
	    strstr(out, expect) == NULL)
		fail_msg("want one \"kvmstats-preload: ...%s...\" line, got: \"%s\"", expect, out);
	print_message("  %s", out);
	close(v.err);
}

static void
test_no_daemon(void **state)
{
	char *env[] = { "KVMSTATS_PRELOAD_MODE=socket",
			"KVMSTATS_SOCKET=/nonexistent/kvmstats/intake.sock", NULL };

	(void)state;
	need_kvm();
	run_failing(env, "/nonexistent/kvmstats/intake.sock");
}

static void
test_bad_mode(void **state)
{
	char *env[] = { "KVMSTATS_PRELOAD_MODE=bogus", NULL };

	(void)state;
	need_kvm();
	run_failing(env, "KVMSTATS_PRELOAD_MODE=bogus");
}

/* A name no reader could address: refused, said on one whole, escaped line. */
static void
test_bad_names(void **state)
{
	char longname[700], env_long[740];
	char *env1[] = { "KVMSTATS_PRELOAD_NAME=x\033[8m", NULL };
	char *env2[] = { env_long, NULL };

	(void)state;
	need_kvm();
	run_failing(env1, "KVMSTATS_PRELOAD_NAME=x\\x1b[8m has a control character");
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(env_long, sizeof(env_long), "KVMSTATS_PRELOAD_NAME=%s", longname);
	/* Cut to fit, and still one line with its newline and its tail. */
	run_failing(env2, "...; the VMM goes on without KVM stats");
}

static void
test_off(void **state)
{
	char *env[] = { "KVMSTATS_PRELOAD_MODE=off", NULL };
	struct vmm v;

	(void)state;
	need_kvm();
	start_vmm(&v, "1", env);
	sleep_ms(400);			/* longer than the shim's quiet period */
	check_gone(v.pid);
	stop_vmm(&v);
	assert_string_equal(vmm_stderr(&v), "");
	close(v.err);
}

/* ---- provider sched: which thread is a vCPU's ------------------------- */

/* 0 if "unshare --pid --fork --mount-proc true" works here (root, no seccomp in the way). */
static int
unshare_works(void)
{
	char *argv[] = { "/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "/bin/true",
			 NULL };
	int status;
	pid_t pid;

	if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Tell thread_vmm @cmd; its answer must start with @want; the number after it. */
static int
vmm_say(struct vmm *v, const char *cmd, const char *want)
{
	char line[64];
	size_t n = strlen(want);

	assert_int_equal(write(v->in, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	read_line(v, line, sizeof(line));
	if (strncmp(line, want, n) != 0)
		fail_msg("thread_vmm said \"%s\" to \"%s\", not \"%s...\"", line, cmd, want);
	return atoi(line + n);
}

/* "quit": it must exit 0. */
static void
quit_vmm(struct vmm *v)
{
	int status;

	assert_int_equal(write(v->in, "quit\n", 5), 5);
	close(v->in);
	assert_int_equal(waitpid(v->pid, &status, 0), v->pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("thread_vmm %d: status 0x%x, stderr: %s", (int)v->pid, status,
			 vmm_stderr(v));
	close(v->out);
	close(v->err);
}

/* Sched stat @name of target @t in the newest generation; false if it has none (yet). */
static bool
sched_stat(struct kvmstats_segment **seg, unsigned t, const char *name, uint64_t *val)
{
	struct kvmstats_stat_handle h;
	struct kvmstats_error err;

	if (kvmstats_follow(seg, &err) < 0)
		fail_msg("follow: %s", err.msg);
	return kvmstats_stat_lookup(*seg, t, "sched", name, &h) == 0 &&
	       kvmstats_read_scalar(*seg, &h, val, NULL) == 0;
}

/*
 * Wait until vCPU 0's sched block names thread @tid as the one that runs
 * it; fails at the deadline saying what it shows instead.
 */
static void
wait_runner(struct kvmstats_segment **seg, pid_t tid, const struct vmm *v)
{
	uint64_t id = 0, runs = 0;
	bool have = false;

	for (int t = 0; t < WAIT_MS; t += 10) {
		have = sched_stat(seg, 1, "thread_id", &id) &&
		       sched_stat(seg, 1, "thread_runs_vcpu", &runs);
		if (have && id == (uint64_t)tid && runs == 1)
			return;
		sleep_ms(10);
	}
	if (!have)
		fail_msg("vCPU 0 has no sched stats after %d ms (runner %d); stderr: %s", WAIT_MS,
			 (int)tid, vmm_stderr(v));
	fail_msg("vCPU 0's sched thread_id %llu runs %llu, not runner %d; stderr: %s",
		 (unsigned long long)id, (unsigned long long)runs, (int)tid, vmm_stderr(v));
}

/*
 * The VM and its vCPU are made on a thread that exits; another runs the
 * vCPU: its sched stats follow that thread (the creator cannot be read).
 */
static pid_t
start_thread_vmm(struct vmm *v, struct kvmstats_segment **seg)
{
	char *env[] = { "KVMSTATS_PRELOAD_MODE=inprocess", NULL };
	char *argv[] = { "tests/tools/thread_vmm", NULL };
	pid_t runner;

	spawn_vmm(v, argv, env, true, 0, NULL, 0);
	runner = vmm_say(v, "run\n", "runner ");
	*seg = attach_wait(v->pid);
	wait_runner(seg, runner, v);
	return runner;
}

static void
test_sched_exited_creator(void **state)
{
	struct kvmstats_segment *seg;
	struct vmm v;

	(void)state;
	need_kvm();
	start_thread_vmm(&v, &seg);
	kvmstats_detach(&seg);
	quit_vmm(&v);
}

/*
 * The vCPU moves from one thread to the next (as QEMU's parked vCPU fds on
 * replug): its sched stats follow, and its cumulative ones, and the VM's
 * sums, never go back.
 */
static void
test_sched_thread_moves(void **state)
{
	static const char *const cum[] = { "run_ns", "timeslices", "voluntary_switches" };
	uint64_t before[3][2], after;
	struct kvmstats_segment *seg;
	struct vmm v;
	pid_t a, b;

	(void)state;
	need_kvm();
	a = start_thread_vmm(&v, &seg);
	/* Let thread a's figures be read once it has slept (the guest idles): more to lose. */
	for (int t = 0; t < WAIT_MS; t += 10) {
		uint64_t x = 0;

		if (sched_stat(&seg, 1, "voluntary_switches", &x) && x > 0)
			break;
		sleep_ms(10);
	}
	assert_int_equal(vmm_say(&v, "stop\n", "stopped"), 0);
	b = vmm_say(&v, "run\n", "runner ");
	assert_int_not_equal(a, b);
	/* a's last values, read after it stopped (a's segment may still show older ones). */
	for (unsigned i = 0; i < 3; i++) {
		assert_true(sched_stat(&seg, 1, cum[i], &before[i][0]));
		assert_true(sched_stat(&seg, 0, cum[i], &before[i][1]));
	}
	wait_runner(&seg, b, &v);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(sched_stat(&seg, 1, cum[i], &after));
		if (after < before[i][0])
			fail_msg("vCPU 0 %s went back from %llu to %llu when its thread changed",
				 cum[i], (unsigned long long)before[i][0],
				 (unsigned long long)after);
		assert_true(sched_stat(&seg, 0, cum[i], &after));
		if (after < before[i][1])
			fail_msg("the VM's %s went back from %llu to %llu when a thread changed",
				 cum[i], (unsigned long long)before[i][1],
				 (unsigned long long)after);
	}
	kvmstats_detach(&seg);
	quit_vmm(&v);
}

/*
 * In a pid namespace of its own (a container): KVM's id names the host's
 * thread, which /proc there does not show (or shows as another thread):
 * the shim's own thread ids count.
 */
static void
test_sched_pid_namespace(void **state)
{
	/*
	 * The VMM is the namespace's init there, where LeakSanitizer cannot
	 * stop its threads at exit ("fatal error"): an ASan build checks this
	 * VMM for everything but leaks, which the other tests' VMMs cover.
	 */
	char *env[] = { "KVMSTATS_PRELOAD_MODE=inprocess", "KVMSTATS_PRELOAD_NAME=ks-pidns",
			"ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0", "LD_PRELOAD=",
			NULL };
	/*
	 * The shim goes into the VMM only, through env(1): a sanitizer build
	 * of it cannot be loaded into unshare(1) or env(1), which are not
	 * built with the sanitizer (TSan: "undefined symbol: __tsan_init").
	 */
	char vmm[PATH_MAX], shim[PATH_MAX], preload[PATH_MAX + 16];
	char *argv[] = { "/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "/usr/bin/env",
			 preload, vmm, NULL };
	struct kvmstats_segment *seg;
	char created[64] = "";
	struct vmm v;
	pid_t runner;

	(void)state;
	need_kvm();
	if (access(argv[0], X_OK) != 0 || unshare_works() != 0)
		skip();
	build_path(vmm, sizeof(vmm), "tests/tools/thread_vmm");
	build_path(shim, sizeof(shim), "libkvmstats-preload.so");
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", shim);
	spawn_vmm(&v, argv, env, true, 1, created, sizeof(created));
	runner = vmm_say(&v, "run\n", "runner ");
	seg = attach_name("ks-pidns");
	wait_runner(&seg, runner, &v);
	kvmstats_detach(&seg);
	quit_vmm(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inprocess),
		cmocka_unit_test(test_inprocess_truncated),
		cmocka_unit_test(test_socket),
		cmocka_unit_test(test_no_daemon),
		cmocka_unit_test(test_bad_mode),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_off),
		cmocka_unit_test(test_sched_exited_creator),
		cmocka_unit_test(test_sched_thread_moves),
		cmocka_unit_test(test_sched_pid_namespace),
	};
	int ret;

	/* A VMM that dies must not take us with it through a broken pipe. */
	signal(SIGPIPE, SIG_IGN);
	probe_kvm();
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	ks_statsfd_schema_clear(&kernel_vm);
	ks_statsfd_schema_clear(&kernel_vcpu);
	return ret;
}
