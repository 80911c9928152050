/* SPDX-License-Identifier: MIT */
/*
 * test_handles.c - a handle that is not what the call expects (NULL, a
 * pointer to something else, another publisher's VM) is a bug in the
 * caller: the call aborts at once with a message that names the function
 * (ks_magic.h), instead of reading through the pointer.  Each misuse runs
 * in a child, which must die of SIGABRT having said so on stderr.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmstats/publisher.h"
#include "kvmstats/reader.h"
#include "sim_vm.h"

enum misuse {
	NULL_SEGMENT, FOREIGN_SEGMENT, NULL_PUBLISHER, FOREIGN_VM, OTHER_PUBLISHERS_VM,
};

/* Something that is not a handle, in valid memory (the sanitizers stay quiet). */
static uint64_t not_a_handle[64];

/* Another publisher's VM, given to @b. */
static void
other_publishers_vm(void)
{
	struct kvmstats_publisher_opts o;
	struct kvmstats_publisher *a, *b;
	struct kvmstats_error err;
	struct ks_sim_vm *sim;
	struct kvmstats_vm *vm;
	struct kvmstats_fd fd;

	kvmstats_publisher_opts_init(&o);
	o.hz = 10;
	if (ks_sim_vm_create(0, &sim, &err) < 0 || kvmstats_publisher_create(&o, &a, &err) < 0 ||
	    kvmstats_publisher_create(&o, &b, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		_exit(3);
	}
	fd = (struct kvmstats_fd){ ks_sim_vm_stats_fd(sim, -1), KVMSTATS_TARGET_VM, 0, NULL };
	if (kvmstats_publisher_add_vm(a, "handles-vm", &fd, 1, &vm, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		_exit(3);
	}
	kvmstats_publisher_remove_vm(b, vm);
}

static void
misuse(enum misuse m)
{
	struct kvmstats_sample sample;
	struct kvmstats_error err;
	uint64_t v[4];

	switch (m) {
	case NULL_SEGMENT:
		(void)kvmstats_nr_targets(NULL);
		break;
	case FOREIGN_SEGMENT:
		(void)kvmstats_read_record((const struct kvmstats_segment *)not_a_handle, 0, v, 4,
					   &sample);
		break;
	case NULL_PUBLISHER:
		(void)kvmstats_publisher_add_vm(NULL, "x", NULL, 0, NULL, &err);
		break;
	case FOREIGN_VM:
		(void)kvmstats_vm_segment((const struct kvmstats_vm *)not_a_handle);
		break;
	case OTHER_PUBLISHERS_VM:
		other_publishers_vm();
		break;
	}
}

/* Run misuse @m in a child; it must abort, saying @said. */
static void
expect_abort(enum misuse m, const char *said)
{
	char out[2048] = "";
	int p[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGABRT, SIG_DFL);	/* cmocka's handler would catch it */
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		misuse(m);
		_exit(0);			/* not aborted: the check is missing */
	}
	close(p[1]);
	while ((n = read(p[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
		got += n;
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
		fail_msg("misuse %d: %s %d, not SIGABRT; it said: %s", (int)m,
			 WIFEXITED(status) ? "exit" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
	if (strstr(out, said) == NULL)
		fail_msg("misuse %d said \"%s\", not \"%s\"", (int)m, out, said);
}

static void
reader_handles_checked(void **state)
{
	(void)state;
	expect_abort(NULL_SEGMENT, "kvmstats: kvmstats_nr_targets: called with NULL for the "
		     "segment handle: a bug in the calling program");
	expect_abort(FOREIGN_SEGMENT, "kvmstats: kvmstats_read_record: ");
	expect_abort(FOREIGN_SEGMENT, "is not a live segment handle");
}

static void
publisher_handles_checked(void **state)
{
	(void)state;
	expect_abort(NULL_PUBLISHER, "kvmstats_publisher_add_vm: called with NULL for the "
		     "publisher handle");
	expect_abort(FOREIGN_VM, "kvmstats_vm_segment: ");
	expect_abort(FOREIGN_VM, "is not a live VM handle");
	expect_abort(OTHER_PUBLISHERS_VM, "kvmstats_publisher_remove_vm: ");
	expect_abort(OTHER_PUBLISHERS_VM, "is not a live VM of this publisher handle");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reader_handles_checked),
		cmocka_unit_test(publisher_handles_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
