/* SPDX-License-Identifier: MIT */
/*
 * test_embed.c - the embedded publisher API (kvmstats/publisher.h) without
 * KVM: the simulated VM's memfds stand in for the kernel's stats fds, so
 * this always runs.  Covers what test_real_embed.c covers (labels, tables,
 * values, the caller's fds closed, hotplug generations, remove, destroy)
 * and the bad input a VMM may pass: the errors must be clear and leave
 * nothing behind (no fd, no segment, the old generation still live).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmstats/publisher.h"
#include "kvmstats/reader.h"
#include "sim_vm.h"
#include "seg_check.h"
#include "statsfd.h"

#define NR_VCPUS	3	/* 2 at first, the third hot-added */
#define WAIT_MS		10000

static const char *const labels[1 + NR_VCPUS] = {
	"vm-label", "/machine/unattached/device[0]", "/machine/unattached/device[1]",
	"/machine/peripheral/cpu2",
};

struct fixture {
	struct ks_sim_vm *sim;
	struct kvmstats_publisher *pub;
	int fds[1 + NR_VCPUS];		/* our dups of the sim's fds, -1 once closed */
	char name[64];
};

static unsigned
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Dups of the sim's fds, as a VMM would hold its own. */
static void
dup_sim_fds(struct fixture *f)
{
	for (int i = 0; i <= NR_VCPUS; i++) {
		f->fds[i] = fcntl(ks_sim_vm_stats_fd(f->sim, i - 1), F_DUPFD_CLOEXEC, 3);
		assert_true(f->fds[i] >= 0);
	}
}

static void
close_fds(struct fixture *f)
{
	for (int i = 0; i <= NR_VCPUS; i++) {
		if (f->fds[i] >= 0)
			close(f->fds[i]);
		f->fds[i] = -1;
	}
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kvmstats_publisher_opts o;
	struct kvmstats_error err;

	assert_non_null(f);
	if (ks_sim_vm_create(NR_VCPUS, &f->sim, &err) < 0)
		fail_msg("%s", err.msg);
	ks_sim_vm_step(f->sim);		/* values that are not all zero */
	dup_sim_fds(f);
	kvmstats_publisher_opts_init(&o);
	o.hz = 1000;
	if (kvmstats_publisher_create(&o, &f->pub, &err) < 0)
		fail_msg("%s", err.msg);
	snprintf(f->name, sizeof(f->name), "embed-%d", (int)getpid());
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	kvmstats_publisher_destroy(&f->pub);
	close_fds(f);
	ks_sim_vm_destroy(&f->sim);
	free(f);
	return 0;
}

static struct kvmstats_fd *
stats_set(const struct fixture *f, unsigned nr_vcpus, struct kvmstats_fd *fds)
{
	fds[0] = (struct kvmstats_fd) { f->fds[0], KVMSTATS_TARGET_VM, 0, labels[0] };
	for (unsigned i = 0; i < nr_vcpus; i++)
		fds[1 + i] = (struct kvmstats_fd) {
			f->fds[1 + i], KVMSTATS_TARGET_VCPU, i, labels[1 + i],
		};
	return fds;
}

static void
check_segment(struct kvmstats_segment *seg, const struct fixture *f, unsigned nr_vcpus)
{
	assert_int_equal(kvmstats_nr_targets(seg), 1 + nr_vcpus);
	for (unsigned t = 0; t <= nr_vcpus; t++) {
		assert_int_equal(kvmstats_target(seg, t)->kind,
				 t ? KVMSTATS_TARGET_VCPU : KVMSTATS_TARGET_VM);
		assert_string_equal(kvmstats_target(seg, t)->label, labels[t]);
		if (t > 0)
			assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU,
								labels[t]), (int)t);
		check_target_is_fd(seg, t, ks_sim_vm_stats_fd(f->sim, (int)t - 1));
	}
}

static void
test_embed_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_fd fds[1 + NR_VCPUS];
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct kvmstats_vm *vm = NULL;
	char file[96];

	if (kvmstats_publisher_add_vm(f->pub, f->name, stats_set(f, 2, fds), 3, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	snprintf(file, sizeof(file), "kvmstats.%s", f->name);
	assert_string_equal(kvmstats_vm_segment(vm), file);
	if (kvmstats_attach(f->name, NULL, &seg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	check_segment(seg, f, 2);

	/* The library dup'd them: our closing them changes nothing. */
	close_fds(f);
	seg_check_sweeping(seg, WAIT_MS);

	dup_sim_fds(f);
	if (kvmstats_publisher_update_vm(f->pub, vm, stats_set(f, 3, fds), 4, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_SUPERSEDED, WAIT_MS),
			 KVMSTATS_STATE_SUPERSEDED);
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	check_segment(seg, f, 3);

	kvmstats_publisher_remove_vm(f->pub, vm);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, WAIT_MS),
			 KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
	assert_int_equal(kvmstats_attach(f->name, NULL, &seg, &err), -ENOENT);
}

/* No name: the VM's id string; destroy() ends it. */
static void
test_embed_default_name(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_fd fds[1 + NR_VCPUS];
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct kvmstats_vm *vm = NULL;

	if (kvmstats_publisher_add_vm(f->pub, NULL, stats_set(f, 1, fds), 2, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	if (kvmstats_attach(ks_sim_vm_name(f->sim), NULL, &seg, &err) < 0)
		fail_msg("%s", err.msg);
	/* Labels given; with a NULL one the id would show instead. */
	assert_string_equal(kvmstats_info(seg)->vm_name, ks_sim_vm_name(f->sim));
	kvmstats_publisher_destroy(&f->pub);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, WAIT_MS),
			 KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
}

/* A bad call fails with @code and a message containing @needle, leaving nothing. */
static void
expect_add_error(struct fixture *f, const struct kvmstats_fd *fds, unsigned n, int code,
		 const char *needle)
{
	struct kvmstats_segment *seg;
	struct kvmstats_error err = { 0 };
	struct kvmstats_vm *vm = NULL;
	unsigned before = count_fds();
	int ret;

	ret = kvmstats_publisher_add_vm(f->pub, f->name, fds, n, &vm, &err);
	if (code ? ret != code : ret >= 0)
		fail_msg("add_vm: want %d, got %d (%s)", code, ret, err.msg);
	assert_null(vm);
	assert_true(err.msg[0] != '\0');
	if (strstr(err.msg, needle) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
	print_message("  %s\n", err.msg);
	assert_int_equal(count_fds(), before);
	assert_int_equal(kvmstats_attach(f->name, NULL, &seg, &err), -ENOENT);
}

static void
test_embed_bad_input(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_fd fds[1 + NR_VCPUS];
	int pipefd[2];

	/* No fds at all. */
	expect_add_error(f, NULL, 0, -EINVAL, "no stats fds");
	expect_add_error(f, stats_set(f, 2, fds), 0, -EINVAL, "no stats fds");

	/* A target kind that is neither VM nor vCPU. */
	stats_set(f, 2, fds);
	fds[2].kind = (enum kvmstats_target_kind)7;
	expect_add_error(f, fds, 3, -EINVAL, "kind 7");

	/* A pipe is no stats fd: the error says which fd and what it is. */
	assert_int_equal(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
	stats_set(f, 2, fds);
	fds[1].fd = pipefd[0];
	expect_add_error(f, fds, 3, -EBADMSG, "vCPU 0 stats fd");
	expect_add_error(f, fds, 3, -EBADMSG, "is a pipe");
	/* The first fd, too (nothing parsed before it). */
	stats_set(f, 2, fds);
	fds[0].fd = pipefd[0];
	expect_add_error(f, fds, 3, -EBADMSG, "is a pipe");
	close(pipefd[0]);
	close(pipefd[1]);

	/* A closed fd cannot be duplicated: an error, not a crash of the VMM. */
	stats_set(f, 2, fds);
	fds[2].fd = 1000;
	expect_add_error(f, fds, 3, -EBADF, "1000");
}

/* A bad update fails and leaves the live generation as it was. */
static void
test_embed_bad_update(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_fd fds[1 + NR_VCPUS];
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct kvmstats_vm *vm = NULL;
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(devnull >= 0);
	if (kvmstats_publisher_add_vm(f->pub, f->name, stats_set(f, 2, fds), 3, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	if (kvmstats_attach(f->name, NULL, &seg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(kvmstats_publisher_update_vm(f->pub, vm, NULL, 0, &err) < 0);
	stats_set(f, 3, fds);
	fds[3].fd = devnull;
	assert_true(kvmstats_publisher_update_vm(f->pub, vm, fds, 4, &err) < 0);
	print_message("  %s\n", err.msg);
	seg_check_sweeping(seg, WAIT_MS);
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	check_segment(seg, f, 2);
	close(devnull);
	kvmstats_detach(&seg);
	kvmstats_publisher_remove_vm(f->pub, vm);
}

static void
test_embed_bad_opts(void **state)
{
	struct kvmstats_publisher_opts o;
	struct kvmstats_publisher *pub = NULL;
	struct kvmstats_error err;

	(void)state;
	kvmstats_publisher_opts_init(&o);
	o.hz = 1000000;
	assert_true(kvmstats_publisher_create(&o, &pub, &err) < 0);
	assert_null(pub);
	assert_non_null(strstr(err.msg, "1000000"));
	kvmstats_publisher_destroy(&pub);	/* NULL: nothing to do */
	kvmstats_publisher_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_embed_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embed_default_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embed_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embed_bad_update, setup, teardown),
		cmocka_unit_test(test_embed_bad_opts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
