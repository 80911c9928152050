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

#include "kvmstats/publisher.h"
#include "sched_source.h"

struct kvmstats_vm;

/*
 * The vCPU threads as the caller saw them itself (gettid(): this process's
 * own view, right in any pid namespace): the thread that created each vCPU
 * and, where seen, the one that runs it.  Given, KVM's id string is never
 * used for a thread, and a vCPU whose thread cannot be read keeps a stale
 * sched block until ks_embed_vcpu_runs() names one.
 */
struct ks_embed_threads {
	const struct ks_sched_thread *creators;
	uint32_t nr_creators;
	const struct ks_sched_thread *runners;
	uint32_t nr_runners;
};

/* kvmstats_publisher_add_vm() / _update_vm(), with the threads of @th (may be NULL). */
int ks_embed_add_vm(struct kvmstats_publisher *pub, const char *vm_name,
		    const struct kvmstats_fd *fds, unsigned nr_fds,
		    const struct ks_embed_threads *th, struct kvmstats_vm **out,
		    struct kvmstats_error *err);
int ks_embed_update_vm(struct kvmstats_publisher *pub, struct kvmstats_vm *vm,
		       const struct kvmstats_fd *fds, unsigned nr_fds,
		       const struct ks_embed_threads *th, struct kvmstats_error *err);

/*
 * ks_embed_vcpu_runs() - thread @tid of this process runs vCPU @vcpu_index
 * of @vm's current generation (seen in its KVM_RUN): its sched stats
 * follow that thread, thread_runs_vcpu true.  The caller's exclusion on
 * @vm applies, as for every call on a VM.  Return: 0, or -ENOENT (no sched
 * provider for that vCPU) / -EINVAL.
 */
int ks_embed_vcpu_runs(struct kvmstats_vm *vm, uint32_t vcpu_index, pid_t tid);

#endif /* KVMSTATS_PUBLISHER_EMBED_SCHED_H */
