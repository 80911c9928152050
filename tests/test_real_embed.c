/* SPDX-License-Identifier: MIT */
/*
 * test_real_embed.c - the embedded publisher API (kvmstats/publisher.h)
 * with the running kernel's stats fds.
 *
 * The test is its own VMM: it creates a VM and vCPUs with raw ioctls,
 * registers their stats fds with labels, and reads the segment as any
 * reader would.  No vCPU ever runs, so every value is stable and must
 * equal a pread() of the kernel's file.  Without a usable /dev/kvm every
 * test is skipped with the reason, or fails if KVMSTATS_REQUIRE_KVM=1.
 */
#include <errno.h>
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
#include "real_kvm.h"
#include "seg_check.h"
#include "statsfd.h"

#define NR_VCPUS	3	/* 2 at first, the third hot-added */
#define WAIT_MS		10000

static const char *const labels[1 + NR_VCPUS] = {
	"vm-label", "/machine/unattached/device[0]", "/machine/unattached/device[1]",
	"/machine/peripheral/cpu2",
};

/* Skip without KVM, unless KVMSTATS_REQUIRE_KVM=1 makes that a failure. */
static int
setup(void **state)
{
	struct real_vm *r = calloc(1, sizeof(*r));
	char why[256];

	assert_non_null(r);
	if (real_vm_open(r, NR_VCPUS, why, sizeof(why)) < 0) {
		real_vm_close(r);
		free(r);
		real_kvm_unusable(why);
		*state = NULL;
		return 0;
	}
	*state = r;
	return 0;
}

static int
teardown(void **state)
{
	struct real_vm *r = *state;

	if (r) {
		real_vm_close(r);
		free(r);
	}
	return 0;
}

static struct kvmstats_fd *
stats_set(const struct real_vm *r, unsigned nr_vcpus, struct kvmstats_fd *fds)
{
	fds[0] = (struct kvmstats_fd) { r->stats[0], KVMSTATS_TARGET_VM, 0, labels[0] };
	for (unsigned i = 0; i < nr_vcpus; i++)
		fds[1 + i] = (struct kvmstats_fd) {
			r->stats[1 + i], KVMSTATS_TARGET_VCPU, i, labels[1 + i],
		};
	return fds;
}

static void
check_segment(struct kvmstats_segment *seg, const struct real_vm *r, unsigned nr_vcpus)
{
	assert_int_equal(kvmstats_nr_targets(seg), 1 + nr_vcpus);
	assert_int_equal(kvmstats_target(seg, 0)->kind, KVMSTATS_TARGET_VM);
	for (unsigned t = 0; t <= nr_vcpus; t++) {
		assert_string_equal(kvmstats_target(seg, t)->label, labels[t]);
		if (t > 0) {
			assert_int_equal(kvmstats_target(seg, t)->kind, KVMSTATS_TARGET_VCPU);
			assert_int_equal(kvmstats_target(seg, t)->vcpu_index, t - 1);
			assert_int_equal(kvmstats_target_lookup(seg, KVMSTATS_TARGET_VCPU,
								labels[t]), (int)t);
		}
		check_target_is_fd(seg, t, r->stats[t]);
	}
}

static void
test_real_embed_lifecycle(void **state)
{
	struct real_vm *r = *state;
	struct kvmstats_publisher_opts o;
	struct kvmstats_fd fds[1 + NR_VCPUS];
	struct kvmstats_publisher *pub;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct kvmstats_vm *vm = NULL;
	char name[64], file[80], why[256];

	if (r == NULL)
		skip();
	snprintf(name, sizeof(name), "embed-%d", (int)getpid());
	snprintf(file, sizeof(file), "kvmstats.%s", name);
	kvmstats_publisher_opts_init(&o);
	o.hz = 1000;
	if (kvmstats_publisher_create(&o, &pub, &err) < 0 ||
	    kvmstats_publisher_add_vm(pub, name, stats_set(r, 2, fds), 3, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(kvmstats_vm_segment(vm), file);
	if (kvmstats_attach(name, NULL, &seg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	assert_int_equal(kvmstats_info(seg)->publisher_pid, getpid());
	check_segment(seg, r, 2);

	/* Our fds closed: the publisher reads its own copies on. */
	real_vm_close_stats(r);
	seg_check_sweeping(seg, WAIT_MS);

	/* Hotplug: the whole new set, from fresh stats fds. */
	if (!real_vm_take_stats(r, why, sizeof(why)))
		fail_msg("%s", why);
	if (kvmstats_publisher_update_vm(pub, vm, stats_set(r, 3, fds), 4, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_SUPERSEDED, WAIT_MS),
			 KVMSTATS_STATE_SUPERSEDED);
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	check_segment(seg, r, 3);
	seg_check_sweeping(seg, WAIT_MS);

	kvmstats_publisher_remove_vm(pub, vm);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, WAIT_MS),
			 KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
	assert_int_equal(kvmstats_attach(name, NULL, &seg, &err), -ENOENT);
	kvmstats_publisher_destroy(&pub);
	assert_null(pub);
}

/* destroy() ends what is still published; a NULL VM name is the VM's id string. */
static void
test_real_embed_destroy_ends(void **state)
{
	struct real_vm *r = *state;
	struct kvmstats_fd fds[1 + NR_VCPUS];
	struct kvmstats_publisher *pub;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct kvmstats_vm *vm = NULL;
	char name[32];

	if (r == NULL)
		skip();
	snprintf(name, sizeof(name), "kvm-%d", (int)getpid());
	if (kvmstats_publisher_create(NULL, &pub, &err) < 0 ||
	    kvmstats_publisher_add_vm(pub, NULL, stats_set(r, 2, fds), 3, &vm, &err) < 0)
		fail_msg("%s", err.msg);
	if (kvmstats_attach(name, NULL, &seg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(kvmstats_info(seg)->vm_name, name);
	kvmstats_publisher_destroy(&pub);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, WAIT_MS),
			 KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
	assert_int_equal(kvmstats_attach(name, NULL, &seg, &err), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_real_embed_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_embed_destroy_ends, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
