/* SPDX-License-Identifier: MIT */
/*
 * own_vm.h - a real KVM VM of our own, running a tiny guest, for
 * `kvmstatsd --spawn-vm` and for the real-kernel tests.
 *
 * Where /dev/kvm exists: create a VM with an in-kernel irqchip and its
 * vCPUs, take every stats fd at once (KVM_GET_STATS_FD right after the VM
 * and each vCPU is created, before any vCPU runs, so no vCPU is ever kicked
 * for it), and run a guest in every vCPU that loops on port I/O and HLT,
 * woken by its local APIC timer.  exits, io_exits, halt_exits,
 * halt_wait_ns and the halt histograms then all move, from the real kernel.
 * Same shape as sim_vm.h, so the daemon and the tests use either alike.
 */
#ifndef KVMSTATS_PUBLISHER_OWN_VM_H
#define KVMSTATS_PUBLISHER_OWN_VM_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/types.h>

#include "kvmstats/types.h"

struct ks_own_vm;

#define KS_OWN_VM_MAX_VCPUS	64

/*
 * ks_own_vm_available() - can this machine run a VM?  Return: 0, or a
 * negative errno with @err saying why not (no /dev/kvm, no permission, no
 * KVM_CAP_BINARY_STATS_FD, KVM_CREATE_VM failing, ...).
 */
int ks_own_vm_available(struct kvmstats_error *err);

/* Create the VM and its vCPUs and take the stats fds; nothing runs yet. */
int ks_own_vm_create(unsigned nr_vcpus, struct ks_own_vm **out,
		     struct kvmstats_error *err);
/* "kvm-<pid>", the VM's own id string. */
const char *ks_own_vm_name(const struct ks_own_vm *vm);
unsigned ks_own_vm_nr_vcpus(const struct ks_own_vm *vm);
/* The stats fd of vCPU @vcpu, or of the VM for -1 (owned by the VM). */
int ks_own_vm_stats_fd(const struct ks_own_vm *vm, int vcpu);

/*
 * ks_own_vm_start() - one thread per vCPU runs the guest; each vCPU's APIC
 * timer wakes it every @wake_us microseconds.
 */
int ks_own_vm_start(struct ks_own_vm *vm, unsigned wake_us, struct kvmstats_error *err);

/*
 * ks_own_vm_vcpu_thread() - the thread running vCPU @vcpu (set before
 * ks_own_vm_start() returns), or 0 while paused.  Not the vCPU's creator:
 * every vCPU is created on the caller's thread.
 */
pid_t ks_own_vm_vcpu_thread(const struct ks_own_vm *vm, unsigned vcpu);

/* How many times each vCPU's guest loop ran (port writes seen), for tests. */
uint64_t ks_own_vm_loops(const struct ks_own_vm *vm, unsigned vcpu);

/*
 * ks_own_vm_pause() - stop the vCPU threads and keep everything else: the
 * fds stay open and no vCPU runs, so every stat holds still (tests compare
 * published values with a direct pread).  ks_own_vm_start() with the same
 * @wake_us resumes the guest where it stopped.  Threads are kicked out of
 * KVM_RUN with SIGUSR1, which the own VM takes over (a no-op handler).
 */
void ks_own_vm_pause(struct ks_own_vm *vm);

/* Stop the vCPU threads, close every fd, free; sets *@vmp to NULL. */
void ks_own_vm_destroy(struct ks_own_vm **vmp);

#endif /* KVMSTATS_PUBLISHER_OWN_VM_H */
