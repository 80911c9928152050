/* SPDX-License-Identifier: MIT */
/* real_kvm.c - the running kernel's KVM for the real-kernel tests. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "real_kvm.h"

bool
real_kvm_required(void)
{
	const char *req = getenv("KVMSTATS_REQUIRE_KVM");

	return req != NULL && strcmp(req, "1") == 0;
}

/* /dev/kvm, the binary stats capability, a VM.  Return: false with @why. */
static bool
open_vm(struct real_vm *r, char *why, size_t len)
{
	r->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (r->kvm < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	if (ioctl(r->kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0) {
		snprintf(why, len, "kernel lacks KVM_CAP_BINARY_STATS_FD");
		return false;
	}
	r->vm = ioctl(r->kvm, KVM_CREATE_VM, 0);
	if (r->vm < 0) {
		snprintf(why, len, "KVM_CREATE_VM: %s", strerror(errno));
		return false;
	}
	return true;
}

static void
forget(struct real_vm *r)
{
	memset(r, -1, sizeof(*r));
	r->nr_vcpus = 0;
}

bool
real_kvm_usable(char *why, size_t len)
{
	struct real_vm r;
	bool ok;

	forget(&r);
	ok = open_vm(&r, why, len);
	real_vm_close(&r);
	return ok;
}

bool
real_vm_take_stats(struct real_vm *r, char *why, size_t len)
{
	r->stats[0] = ioctl(r->vm, KVM_GET_STATS_FD, NULL);
	if (r->stats[0] < 0) {
		snprintf(why, len, "KVM_GET_STATS_FD on the VM: %s", strerror(errno));
		return false;
	}
	for (unsigned i = 0; i < r->nr_vcpus; i++) {
		r->stats[1 + i] = ioctl(r->vcpu[i], KVM_GET_STATS_FD, NULL);
		if (r->stats[1 + i] < 0) {
			snprintf(why, len, "KVM_GET_STATS_FD on vCPU %u: %s", i, strerror(errno));
			return false;
		}
	}
	return true;
}

int
real_vm_open(struct real_vm *r, unsigned nr_vcpus, char *why, size_t len)
{
	forget(r);
	if (nr_vcpus > REAL_VM_MAX_VCPUS) {
		snprintf(why, len, "%u vCPUs: at most %u", nr_vcpus, REAL_VM_MAX_VCPUS);
		return -2;
	}
	if (!open_vm(r, why, len))
		return -1;
	/* KVM works from here on: every failure is a real one. */
	for (unsigned i = 0; i < nr_vcpus; i++) {
		r->vcpu[i] = ioctl(r->vm, KVM_CREATE_VCPU, i);
		if (r->vcpu[i] < 0) {
			snprintf(why, len, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
			return -2;
		}
		r->nr_vcpus = i + 1;
	}
	return real_vm_take_stats(r, why, len) ? 0 : -2;
}

static void
close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

void
real_vm_close_stats(struct real_vm *r)
{
	close_fds(r->stats, 1 + REAL_VM_MAX_VCPUS);
}

void
real_vm_close(struct real_vm *r)
{
	real_vm_close_stats(r);
	close_fds(r->vcpu, REAL_VM_MAX_VCPUS);
	close_fds(&r->vm, 1);
	close_fds(&r->kvm, 1);
}

void
real_kvm_unusable(const char *why)
{
	if (real_kvm_required())
		fail_msg("KVMSTATS_REQUIRE_KVM=1 but KVM is not usable: %s", why);
	print_message("skip: %s\n", why);
}

bool
real_kvm_check(void)
{
	char why[256];

	if (real_kvm_usable(why, sizeof(why)))
		return true;
	real_kvm_unusable(why);
	return false;
}

void
real_kvm_require(void)
{
	if (!real_kvm_check())
		skip();
}

void
real_vm_make(struct real_vm *r, unsigned nr_vcpus)
{
	char why[256];
	int ret = real_vm_open(r, nr_vcpus, why, sizeof(why));

	if (ret == 0)
		return;
	real_vm_close(r);
	if (ret == -1) {
		real_kvm_unusable(why);
		skip();
	}
	fail_msg("%s", why);
}
