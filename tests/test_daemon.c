/* SPDX-License-Identifier: MIT */
/*
 * test_daemon.c - kvmstatsd as a user runs it: it publishes, a reader in
 * another process sees sweeps advance, SIGTERM/SIGINT end the segment and
 * remove it (or keep it with --keep), and bad command lines exit 2 with a
 * message.  The binary is found through $KVMSTATS_BUILD (set by
 * tests/run-unit.sh), default "build".
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ks_shmdir.h"
#include "kvmstats/reader.h"

static char daemon_path[512];

static pid_t
spawn(char *const argv[], int err_fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		/* A test that failed before it stopped the daemon: the daemon goes too. */
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		if (err_fd >= 0)
			dup2(err_fd, STDERR_FILENO);
		/* The daemon as a shell starts it: SIGPIPE is ours to ignore, not its. */
		signal(SIGPIPE, SIG_DFL);
		execv(daemon_path, argv);
		_exit(127);
	}
	return pid;
}

static int
wait_exit(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("kvmstatsd died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

/* Attach by name, waiting up to 10 s for the daemon to publish. */
static struct kvmstats_segment *
attach_wait(const char *name)
{
	struct kvmstats_segment *seg;
	struct kvmstats_error err;

	for (int i = 0; i < 1000; i++) {
		if (kvmstats_attach(name, NULL, &seg, &err) == 0)
			return seg;
		usleep(10000);
	}
	fail_msg("kvmstatsd never published %s: %s", name, err.msg);
	return NULL;
}

static void
run_and_stop(int sig, bool keep)
{
	char name[64];
	char *argv[] = { "kvmstatsd", "--simulate", "3", "--hz", "500", "--name", name,
			 "--quiet", keep ? "--keep" : NULL, NULL };
	struct kvmstats_segment *seg, *again;
	struct kvmstats_status st, st2;
	struct kvmstats_error err;
	pid_t pid;

	snprintf(name, sizeof(name), "kvmstats.daemon-%d-%d-%d", getpid(), sig, keep);
	pid = spawn(argv, -1);
	seg = attach_wait(name);
	assert_int_equal(kvmstats_nr_targets(seg), 4);
	assert_int_equal(kvmstats_info(seg)->publisher_pid, pid);
	assert_int_equal(kvmstats_info(seg)->poll_period_ns, 2000000);
	kvmstats_status(seg, &st);
	for (int i = 0; i < 5000; i++) {	/* up to 10 s */
		kvmstats_status(seg, &st2);
		if (st2.sweep > st.sweep + 10)
			break;
		usleep(2000);
	}
	assert_true(st2.sweep > st.sweep + 10);
	assert_int_equal(st2.state, KVMSTATS_STATE_LIVE);

	assert_int_equal(kill(pid, sig), 0);
	assert_int_equal(wait_exit(pid), 0);
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_ENDED);
	if (keep) {
		assert_int_equal(kvmstats_attach(name, NULL, &again, &err), 0);
		kvmstats_detach(&again);
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", ks_shm_dir(NULL), name);
		assert_int_equal(unlink(path), 0);
	} else {
		assert_int_equal(kvmstats_attach(name, NULL, &again, &err), -ENOENT);
	}
	kvmstats_detach(&seg);
}

static void
sigterm_ends_and_removes(void **state)
{
	(void)state;
	run_and_stop(SIGTERM, false);
}

/*
 * Its log read by a pipe whose reader is gone (kvmstatsd ... 2>&1 | head):
 * the daemon's lines are lost, the daemon is not.  Killed by SIGPIPE, it
 * would leave its segment behind, dead.
 */
static void
log_reader_gone_survived(void **state)
{
	char name[64];
	char *argv[] = { "kvmstatsd", "--simulate", "1", "--name", name, NULL };
	struct kvmstats_segment *seg, *again;
	struct kvmstats_status st;
	struct kvmstats_error err;
	int p[2];
	pid_t pid;

	(void)state;
	snprintf(name, sizeof(name), "kvmstats.daemon-%d-pipe", getpid());
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);			/* nobody reads its log */
	pid = spawn(argv, p[1]);
	close(p[1]);
	seg = attach_wait(name);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_exit(pid), 0);	/* it wrote its last lines into the void */
	kvmstats_status(seg, &st);
	assert_int_equal(st.state, KVMSTATS_STATE_ENDED);
	assert_int_equal(kvmstats_attach(name, NULL, &again, &err), -ENOENT);
	kvmstats_detach(&seg);
}

static void
sigint_with_keep_leaves_ended(void **state)
{
	(void)state;
	run_and_stop(SIGINT, true);
}

/* Run with @args, expect exit status @code and @needle on stderr. */
static void
expect_exit(char *const argv[], int code, const char *needle)
{
	char path[] = "/tmp/kvmstatsd-test-XXXXXX", out[4096] = { 0 };
	int fd = mkstemp(path);
	ssize_t n;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(wait_exit(spawn(argv, fd)), code);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	assert_true(n >= 0);
	if (strstr(out, needle) == NULL)
		fail_msg("stderr \"%s\" lacks \"%s\"", out, needle);
}

static void
bad_command_lines_exit_2(void **state)
{
	char long_name[301];

	(void)state;
	memset(long_name, 'n', 300);
	long_name[300] = '\0';
	expect_exit((char *[]){ "kvmstatsd", NULL }, 2, "nothing to publish");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "0", NULL }, 2,
		    "--simulate: \"0\" is not a number from 1 to 1024");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "2x", NULL }, 2, "is not a number");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "2", "--hz", "0", NULL }, 2,
		    "--hz");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "2", "--ring-depth", "1", NULL }, 2,
		    "--ring-depth");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "2", "--mode", "999", NULL }, 2,
		    "(octal)");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "2", "--mode", "0660", NULL }, 2,
		    "lets group or others write");
	expect_exit((char *[]){ "kvmstatsd", "--bogus", NULL }, 2, "unknown option");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", NULL }, 2, "needs an argument");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "extra", NULL }, 2,
		    "unexpected argument");
	/* A name no reader could address is a usage error, said up front. */
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--name", "a/b", NULL }, 2,
		    "the VM name contains '/'");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--name", "..", NULL }, 2,
		    "starts with '.'");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--name", ".hidden", NULL }, 2,
		    "starts with '.'");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--name", long_name, NULL }, 2,
		    "is 300 bytes long, over the limit of 128");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--name", "x\033[8m", NULL }, 2,
		    "has a control character at byte 1");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--name", "kvmstats.", NULL }, 2,
		    "is empty");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", "", NULL }, 2,
		    "--dir needs a directory");
	expect_exit((char *[]){ "kvmstatsd", "--listen", long_name, NULL }, 2,
		    "--listen: ");
	expect_exit((char *[]){ "kvmstatsd", "--listen", "", NULL }, 2, "is empty");
	/* A source given twice is a mistake, not "the last one wins". */
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--simulate", "2", NULL }, 2,
		    "--simulate given twice");
	expect_exit((char *[]){ "kvmstatsd", "--attach", "1", "--attach", "2", NULL }, 2,
		    "--attach given twice");
	expect_exit((char *[]){ "kvmstatsd", "--listen", "/tmp/a", "--listen", "/tmp/b", NULL },
		    2, "--listen given twice");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--name", "a", "--name", "b",
				NULL }, 2, "--name given twice");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--group", "nosuchgroup", NULL },
		    2, "no group named \"nosuchgroup\"");
	expect_exit((char *[]){ "kvmstatsd", "--listen", "/tmp/x.sock", "--allow-uid",
				"nosuchuser", NULL }, 2, "no user named \"nosuchuser\"");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--group", "4294967295", NULL },
		    2, "is not a number from 0 to 4294967294");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", "/nonexistent/dir",
				NULL }, 1, "/nonexistent/dir");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--listen", "/tmp/x.sock",
				"--name", "n", NULL }, 2, "--name needs exactly one VM source");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--attach", "1", "--name", "n",
				NULL }, 2, "--name needs exactly one VM source");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--allow-uid", "0", NULL }, 2,
		    "--allow-uid only goes with --listen");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--fallback-simulate", NULL }, 2,
		    "--fallback-simulate only goes with --spawn-vm");
	expect_exit((char *[]){ "kvmstatsd", "--spawn-vm", "65", NULL }, 2,
		    "--spawn-vm: \"65\" is not a number from 1 to 64");
	expect_exit((char *[]){ "kvmstatsd", "--attach", "0", NULL }, 2, "--attach");
	expect_exit((char *[]){ "kvmstatsd", "--attach", "2147483647", NULL }, 1,
		    "2147483647");
}

/* Spawn kvmstatsd with stderr to a new file (read it with err_text()). */
static pid_t
spawn_logged(char *const argv[], int *err_fd)
{
	char path[] = "/tmp/kvmstatsd-log-XXXXXX";

	*err_fd = mkstemp(path);
	assert_true(*err_fd >= 0);
	unlink(path);
	return spawn(argv, *err_fd);
}

static const char *
err_text(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static enum kvmstats_health
health_of(const struct kvmstats_segment *seg)
{
	struct kvmstats_liveness lv;

	assert_int_equal(kvmstats_liveness(seg, &lv), 0);
	return lv.health;
}

/* Wait up to 10 s for @seg to be judged @want. */
static void
wait_health(const struct kvmstats_segment *seg, enum kvmstats_health want)
{
	for (int i = 0; i < 2000 && health_of(seg) != want; i++)
		usleep(5000);
	if (health_of(seg) != want)
		fail_msg("health %s, want %s", kvmstats_health_name(health_of(seg)),
			 kvmstats_health_name(want));
}

static const char *
seg_path(const char *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s/kvmstats.%s", ks_shm_dir(NULL), vm);
	return buf;
}

/* --name names the VM: readers ask for NAME, the file is kvmstats.NAME. */
static void
name_names_the_vm(void **state)
{
	char name[64], with_prefix[80];
	char *argv[] = { "kvmstatsd", "--simulate", "2", "--name", with_prefix, "--quiet", NULL };
	struct kvmstats_segment *seg;
	pid_t pid;

	(void)state;
	snprintf(name, sizeof(name), "myvm-%d", getpid());
	snprintf(with_prefix, sizeof(with_prefix), "kvmstats.%s", name);	/* not doubled */
	pid = spawn(argv, -1);
	seg = attach_wait(name);
	assert_string_equal(kvmstats_info(seg)->vm_name, name);
	assert_string_equal(kvmstats_info(seg)->segment_file, with_prefix);
	kvmstats_detach(&seg);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_exit(pid), 0);
}

/* A file that is not a segment keeps its name and contents. */
static void
foreign_file_untouched(void **state)
{
	char name[64], path[512], buf[64] = { 0 };
	char *argv[] = { "kvmstatsd", "--simulate", "1", "--name", name, "--duration", "5",
			 NULL };
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "important-%d", getpid());
	fd = open(seg_path(name, path, sizeof(path)), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "precious", 8), 8);
	close(fd);
	expect_exit(argv, 1, "is not a kvmstats segment: not replacing it");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 8);
	close(fd);
	assert_string_equal(buf, "precious");
	assert_int_equal(unlink(path), 0);
}

/*
 * A live publisher's name is refused to a second one; once the first is
 * killed (it cannot end its segment) the next one removes what it left at
 * start and takes the name.  Stopped, it is stale; killed, dead.
 */
static void
dead_publisher_replaced(void **state)
{
	char name[64], other[64], buf[4096];
	char *argv[] = { "kvmstatsd", "--simulate", "1", "--name", name, "--quiet", NULL };
	char *argv2[] = { "kvmstatsd", "--simulate", "1", "--name", name, "--duration", "5",
			  NULL };
	char *argv3[] = { "kvmstatsd", "--simulate", "1", "--name", other, NULL };
	struct kvmstats_segment *seg, *next;
	struct kvmstats_error err;
	pid_t a, b;
	int log;

	(void)state;
	snprintf(name, sizeof(name), "victim-%d", getpid());
	snprintf(other, sizeof(other), "other-%d", getpid());
	a = spawn(argv, -1);
	seg = attach_wait(name);
	wait_health(seg, KVMSTATS_HEALTH_LIVE);
	expect_exit(argv2, 1, "is the segment of a live publisher");
	assert_int_equal(kill(a, SIGSTOP), 0);
	wait_health(seg, KVMSTATS_HEALTH_STALE);
	assert_int_equal(kill(a, SIGCONT), 0);
	wait_health(seg, KVMSTATS_HEALTH_LIVE);
	assert_int_equal(kill(a, SIGKILL), 0);
	assert_true(waitpid(a, NULL, 0) == a);
	assert_int_equal(health_of(seg), KVMSTATS_HEALTH_DEAD);

	/* Another name: the dead one's segment is removed at start. */
	b = spawn_logged(argv3, &log);
	next = attach_wait(other);
	kvmstats_detach(&next);
	assert_int_equal(kill(b, SIGTERM), 0);
	assert_int_equal(wait_exit(b), 0);
	if (strstr(err_text(log, buf, sizeof(buf)), "its publisher") == NULL ||
	    strstr(buf, name) == NULL)
		fail_msg("no removal of %s said: %s", name, buf);
	close(log);
	assert_int_equal(kvmstats_attach(name, NULL, &next, &err), -ENOENT);
	/* The reader still has the dead one's last values, and can tell. */
	assert_int_equal(health_of(seg), KVMSTATS_HEALTH_DEAD);

	/* And a dead one's name is taken over in place. */
	a = spawn(argv, -1);
	assert_int_equal(kill(a, SIGKILL), 0);	/* maybe before it published */
	assert_true(waitpid(a, NULL, 0) == a);
	a = spawn(argv, -1);
	next = attach_wait(name);
	assert_int_equal(kvmstats_info(next)->publisher_pid, a);
	wait_health(next, KVMSTATS_HEALTH_LIVE);
	kvmstats_detach(&next);
	kvmstats_detach(&seg);
	assert_int_equal(kill(a, SIGTERM), 0);
	assert_int_equal(wait_exit(a), 0);
}

/* truncate -s 0 of a published segment: kvmstatsd lives on and publishes anew. */
static void
truncated_segment_survived(void **state)
{
	char name[64], path[512], buf[4096];
	char *argv[] = { "kvmstatsd", "--simulate", "2", "--hz", "200", "--name", name, NULL };
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct stat st;
	ino_t ino;
	pid_t pid;
	int log, r = 0;

	(void)state;
	snprintf(name, sizeof(name), "trunc-%d", getpid());
	pid = spawn_logged(argv, &log);
	seg = attach_wait(name);
	assert_int_equal(stat(seg_path(name, path, sizeof(path)), &st), 0);
	ino = st.st_ino;
	assert_int_equal(truncate(path, 0), 0);
	/* Follow the name to the new generation; the old mapping is gone. */
	for (int i = 0; i < 2000 && (r = kvmstats_follow(&seg, &err)) == 0; i++)
		usleep(5000);
	if (r != 1)
		fail_msg("no new segment after the truncation (%d %s): %s", r, err.msg,
			 err_text(log, buf, sizeof(buf)));
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_ino != ino);
	wait_health(seg, KVMSTATS_HEALTH_LIVE);
	assert_int_equal(kill(pid, 0), 0);		/* still there */
	kvmstats_detach(&seg);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_exit(pid), 0);
	err_text(log, buf, sizeof(buf));
	close(log);
	if (strstr(buf, "was truncated under the publisher") == NULL ||
	    strstr(strstr(buf, "was truncated") + 1, "was truncated") != NULL)
		fail_msg("want the truncation said once: %s", buf);
}

/* make run's source: a real VM where KVM works, else a simulated one, said so. */
/*
 * A directory that group or others may write, without the sticky bit, or
 * that belongs to another user, lets them swap the files published there:
 * refused, for the segments and for the intake socket alike, and so is a
 * directory above it that is unsafe; /dev/shm's 1777 is fine.
 */
static void
unsafe_directories_refused(void **state)
{
	char dir[] = "/tmp/kvmstatsd-dir-XXXXXX", sub[64], sock[64];
	const char *shm = getenv("KVMSTATS_SHM_DIR");
	char *safe = (char *)(shm && shm[0] ? shm : "/dev/shm");

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/in.sock", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", dir, NULL }, 1,
		    "is writable by others without the sticky bit");
	expect_exit((char *[]){ "kvmstatsd", "--listen", sock, "--dir", safe, NULL }, 1,
		    "the directory of the intake socket");
	/* With only the socket to listen on, a bad --dir is said at start too. */
	expect_exit((char *[]){ "kvmstatsd", "--listen", "/tmp/unused.sock", "--dir", dir,
				NULL }, 1, "the segment directory");
	/* Safe itself, but under a directory anybody may rename it in. */
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", sub, NULL }, 1,
		    "above the segment directory");
	assert_int_equal(chmod(dir, 0770), 0);
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", dir, NULL }, 1,
		    "(mode 0770) is writable by its group");
	if (geteuid() == 0) {
		/* Its owner may remove anything in it, sticky or not. */
		assert_int_equal(chown(sub, 65534, (gid_t)-1), 0);
		assert_int_equal(chmod(dir, 0755), 0);
		expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", sub, NULL }, 1,
			    "belongs to uid 65534, who may remove or replace");
		assert_int_equal(chown(sub, 0, (gid_t)-1), 0);
	} else {
		print_message("not root: a directory of another user's is not tried\n");
	}
	/* Sticky, like /dev/shm: published, and gone at the end. */
	assert_int_equal(chmod(dir, 01777), 0);
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", dir, "--duration",
				"0.05", NULL }, 0, "");
	expect_exit((char *[]){ "kvmstatsd", "--simulate", "1", "--dir", sub, "--duration",
				"0.05", NULL }, 0, "");
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void
spawn_vm_or_fallback_publishes(void **state)
{
	char name[64];
	char *argv[] = { "kvmstatsd", "--spawn-vm", "2", "--fallback-simulate", "--name", name,
			 "--quiet", NULL };
	struct kvmstats_segment *seg;
	pid_t pid;

	(void)state;
	snprintf(name, sizeof(name), "kvmstats.spawn-%d", getpid());
	pid = spawn(argv, -1);
	seg = attach_wait(name);
	assert_int_equal(kvmstats_nr_targets(seg), 3);
	assert_int_equal(kvmstats_target(seg, 0)->kind, KVMSTATS_TARGET_VM);
	assert_int_equal(kvmstats_target(seg, 2)->vcpu_index, 1);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_exit(pid), 0);
	kvmstats_detach(&seg);
}

static void
help_exits_0(void **state)
{
	char path[] = "/tmp/kvmstatsd-help-XXXXXX", out[8192] = { 0 };
	int fd = mkstemp(path);
	pid_t pid;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	pid = fork();
	if (pid == 0) {
		dup2(fd, STDOUT_FILENO);
		execv(daemon_path, (char *[]){ "kvmstatsd", "--help", NULL });
		_exit(127);
	}
	assert_int_equal(wait_exit(pid), 0);
	assert_true(pread(fd, out, sizeof(out) - 1, 0) > 0);
	close(fd);
	assert_non_null(strstr(out, "Usage: kvmstatsd"));
	assert_non_null(strstr(out, "Exit status"));
}

int
main(void)
{
	const char *build = getenv("KVMSTATS_BUILD");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sigterm_ends_and_removes),
		cmocka_unit_test(sigint_with_keep_leaves_ended),
		cmocka_unit_test(log_reader_gone_survived),
		cmocka_unit_test(bad_command_lines_exit_2),
		cmocka_unit_test(spawn_vm_or_fallback_publishes),
		cmocka_unit_test(name_names_the_vm),
		cmocka_unit_test(foreign_file_untouched),
		cmocka_unit_test(dead_publisher_replaced),
		cmocka_unit_test(truncated_segment_survived),
		cmocka_unit_test(unsafe_directories_refused),
		cmocka_unit_test(help_exits_0),
	};

	snprintf(daemon_path, sizeof(daemon_path), "%s/kvmstatsd", build ? build : "build");
	if (access(daemon_path, X_OK) != 0) {
		fprintf(stderr, "test_daemon: %s not found: build it first (make), or set "
			"KVMSTATS_BUILD\n", daemon_path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);	/* a child gone: EPIPE, not death */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
