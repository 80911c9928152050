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
 * Start test_vmm with the shim and @env added to ours, and wait for
 * "ready <pid>".  ASan's runtime may not come first in a preloaded
 * process: tell it that this is on purpose.
 */
static void
start_vmm(struct vmm *v, const char *vcpus, char *const *env)
{
	char vmm[PATH_MAX], shim[PATH_MAX], preload[PATH_MAX + 16], line[64];
	char *add[16] = { preload, "ASAN_OPTIONS=verify_asan_link_order=0" };
	char *argv[] = { vmm, "--vcpus", (char *)vcpus, "--run", NULL };
	posix_spawn_file_actions_t fa;
	int pipefd[2], i = 2;
	char **envp;

	build_path(vmm, sizeof(vmm), "tests/tools/test_vmm");
	build_path(shim, sizeof(shim), "libkvmstats-preload.so");
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", shim);
	for (; *env && i < 15; env++)
		add[i++] = *env;
	envp = child_env(add);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	v->err = memfd_create("vmm-stderr", MFD_CLOEXEC);
	assert_true(v->err >= 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, v->err, STDERR_FILENO);
	assert_int_equal(posix_spawn(&v->pid, vmm, &fa, NULL, argv, envp), 0);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(pipefd[1]);
	v->out = pipefd[0];
	read_line(v, line, sizeof(line));
	if (strncmp(line, "ready ", 6) != 0 || atoi(line + 6) != v->pid)
		fail_msg("test_vmm said \"%s\", not \"ready %d\"", line, (int)v->pid);
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
attach_wait(pid_t pid)
{
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err = { 0 };
	char vm[32];

	snprintf(vm, sizeof(vm), "kvm-%d", (int)pid);
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
