/* SPDX-License-Identifier: MIT */
/*
 * embed_sched.h - what the preload shim, which links the publisher
 * statically, may tell an embedded VM beyond the public API: which thread
 * runs a vCPU.  Not exported from libkvmstats-publisher.so (its version
 * script lists the public API only), so the library's ABI is unchanged.
 */
#ifndef KVMSTATS_PUBLISHER_EMBED_SCHED_H
#define KVMSTATS_PUBLISHER_EMBED_SCHED_H

#include <stdint.h>
#include <sys/types.h>

struct kvmstats_vm;

/*
 * ks_embed_vcpu_runs() - thread @tid of this process runs vCPU @vcpu_index
 * of @vm's current generation (seen in its KVM_RUN): its sched stats
 * follow that thread, thread_runs_vcpu true.  The caller's exclusion on
 * @vm applies, as for every call on a VM.  Return: 0, or -ENOENT (no sched
 * provider for that vCPU) / -EINVAL.
 */
int ks_embed_vcpu_runs(struct kvmstats_vm *vm, uint32_t vcpu_index, pid_t tid);

#endif /* KVMSTATS_PUBLISHER_EMBED_SCHED_H */
