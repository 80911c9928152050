/* SPDX-License-Identifier: MIT */
/*
 * real_kvm.h - the running kernel's KVM for the tests/test_real_* programs:
 * whether it is usable here, a raw VM with vCPUs and their stats fds, and
 * the rule for a host without it: the test is skipped with the reason,
 * unless KVMSTATS_REQUIRE_KVM=1 says KVM must work here: then it fails.
 */
#ifndef KVMSTATS_TESTS_REAL_KVM_H
#define KVMSTATS_TESTS_REAL_KVM_H

#include <stdbool.h>
#include <stddef.h>

#define REAL_VM_MAX_VCPUS	4

/* A VM made with raw ioctls; every fd is -1 until made. */
struct real_vm {
	int kvm, vm;
	unsigned nr_vcpus;
	int vcpu[REAL_VM_MAX_VCPUS];
	int stats[1 + REAL_VM_MAX_VCPUS];	/* [0] the VM's, [1 + i] vCPU i's */
};

/*
 * Whether this host can make a VM whose stats fds can be taken: /dev/kvm
 * opens, the kernel has KVM_CAP_BINARY_STATS_FD, KVM_CREATE_VM works.
 * Return: true, or false with the reason in @why.
 */
bool real_kvm_usable(char *why, size_t len);

/* Whether KVMSTATS_REQUIRE_KVM=1: KVM must work here. */
bool real_kvm_required(void);

/*
 * A VM with @nr_vcpus vCPUs (at most REAL_VM_MAX_VCPUS) and the stats fd of
 * the VM and of each vCPU.  Return: 0; -1 when KVM is not usable here (see
 * real_kvm_usable()); -2 when a vCPU or a stats fd fails on a KVM that
 * works.  On failure @why says which step failed; real_vm_close() then
 * closes what was made.
 */
int real_vm_open(struct real_vm *r, unsigned nr_vcpus, char *why, size_t len);

/* Fresh stats fds of the VM and every vCPU.  Return: false with @why. */
bool real_vm_take_stats(struct real_vm *r, char *why, size_t len);

/* Close the stats fds only (the VM and vCPUs stay). */
void real_vm_close_stats(struct real_vm *r);

/* Close every fd that is open. */
void real_vm_close(struct real_vm *r);

/*
 * For a test that cannot have KVM, for the reason @why: fail when KVM is
 * required, else print "skip: @why".  The caller then skips (a setup
 * function cannot: it leaves its state empty for the tests to skip).
 */
void real_kvm_unusable(const char *why);

/*
 * In a cmocka test: whether KVM is usable; if not, fail when it is
 * required, else print "skip: " and the reason.
 */
bool real_kvm_check(void);

/* In a cmocka test: go on when KVM is usable; else skip, or fail if required. */
void real_kvm_require(void);

/*
 * In a cmocka test: real_vm_open(), skipping (or failing, if required)
 * where KVM is not usable, failing on any other error.
 */
void real_vm_make(struct real_vm *r, unsigned nr_vcpus);

#endif
