/* SPDX-License-Identifier: MIT */
/*
 * sim_vm.h - a simulated VM whose stats fds have the kernel's exact layout.
 *
 * One memfd per VM and vCPU, laid out as x86 KVM lays out its stats files
 * (kvm_x86_tables.h), with id strings "kvm-<pid>" and "kvm-<pid>/vcpu-<n>".
 * A simulator thread advances the data plausibly: cumulative counters only
 * rise, instant values go up and down, peaks only rise, booleans are 0 or 1,
 * and each halt histogram's samples add up to its *_ns counter.  Everything
 * from pread() upwards is then the real publisher path.
 */
#ifndef KVMSTATS_PUBLISHER_SIM_VM_H
#define KVMSTATS_PUBLISHER_SIM_VM_H

#include <sys/types.h>

#include "kvmstats/types.h"

struct ks_sim_vm;

#define KS_SIM_MAX_VCPUS	1024

int ks_sim_vm_create(unsigned nr_vcpus, struct ks_sim_vm **out,
		     struct kvmstats_error *err);
/* "kvm-<pid>" */
const char *ks_sim_vm_name(const struct ks_sim_vm *vm);
unsigned ks_sim_vm_nr_vcpus(const struct ks_sim_vm *vm);
/* The stats fd of vCPU @vcpu, or of the VM for @vcpu == -1 (owned by the sim). */
int ks_sim_vm_stats_fd(const struct ks_sim_vm *vm, int vcpu);

/* One simulation step of every VM and vCPU counter (tests call it directly). */
void ks_sim_vm_step(struct ks_sim_vm *vm);

/* Start the simulator thread, stepping @hz times a second. */
int ks_sim_vm_start(struct ks_sim_vm *vm, unsigned hz, struct kvmstats_error *err);

/*
 * The simulator thread's id once started (0 before): it steps every
 * simulated vCPU, so it is their thread for the sched provider.
 */
pid_t ks_sim_vm_thread(const struct ks_sim_vm *vm);

/* Stop the thread if running, close the fds, free; sets *@vmp to NULL. */
void ks_sim_vm_destroy(struct ks_sim_vm **vmp);

#endif /* KVMSTATS_PUBLISHER_SIM_VM_H */
