/* SPDX-License-Identifier: MIT */
/*
 * sched_source.h - provider "sched": the host scheduler's view of each
 * vCPU thread, as engine sources beside the "kvm" ones.
 *
 * Per vCPU target, from /proc/<pid>/task/<tid>/: time run on a CPU and
 * time waited on a run queue (schedstat), time slices (schedstat),
 * voluntary and involuntary context switches (status), the CPU it last ran
 * on (stat field 39), the thread read and whether that thread is known to
 * run the vCPU or is only the one that created it.  The VM target gets the
 * sums of the cumulative ones.
 *
 * Cost: reading those three files takes about 10 us per thread (status
 * alone 6-10 us), twenty times a stats fd's pread(), and the kernel
 * updates a running thread's run time only at a scheduler tick (1-4 ms).
 * So the files are read at a rate of their own (hz, default
 * KS_SCHED_HZ_DEFAULT), each thread at its own phase so that the reads
 * spread over the sweeps instead of piling into one; every sweep copies
 * the newest values into the slot.  The fds stay open: a sweep makes no
 * open(), and an fd names the thread, not its number, so a thread that
 * exits is never confused with a later one given the same tid.
 *
 * One struct ks_sched_vm serves all the blocks of one VM generation; it is
 * refcounted, so that whoever learns a vCPU's running thread later (the
 * preload shim, at its first KVM_RUN) can say so while the engine owns the
 * blocks.
 */
#ifndef KVMSTATS_PUBLISHER_SCHED_SOURCE_H
#define KVMSTATS_PUBLISHER_SCHED_SOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

#define KS_SCHED_PROVIDER	"sched"
#define KS_SCHED_HZ_DEFAULT	10
#define KS_SCHED_HZ_MAX		1000

/* Words of a vCPU's and of the VM's "sched" block. */
#define KS_SCHED_VCPU_WORDS	8
#define KS_SCHED_VM_WORDS	5

struct ks_sched_vm;

/* Which thread is a vCPU's, for ks_sched_vm_create(). */
struct ks_sched_thread {
	uint32_t vcpu_index;
	pid_t tid;			/* 0: none known: no block, unless @later */
	bool runs;			/* seen running the vCPU, not just its creator */
};

/*
 * ks_sched_available() - does this kernel keep per-thread scheduler
 * statistics?  It reads this thread's schedstat: missing (no
 * CONFIG_SCHED_INFO), unreadable, or all zeros (sched_info off) are each
 * said in @err.  Return: 0 or a negative errno.
 */
int ks_sched_available(struct kvmstats_error *err);

/*
 * ks_sched_vm_create() - open and read once the files of every thread of
 * @threads, threads of process @pid, to be read @hz times a second
 * (1..KS_SCHED_HZ_MAX).  A thread that cannot be read (or none known) is
 * said through @warn (quoting @vm_name); without @later it gets no block
 * (ks_sched_vcpu_block() returns false for it).  @later: whoever creates
 * the VM can still name the thread that runs a vCPU (ks_sched_set_runner(),
 * the preload shim at a KVM_RUN): such a vCPU gets a block anyway, stale
 * until a thread is named, and the VM is not refused for having no
 * readable thread.  @warn is also called, from the sweeping thread, when a
 * thread read until then fails (it exited: its vCPU's slots go stale, as
 * for a failing stats fd).  Return: 0 with *@out holding one reference, or
 * -EINVAL / -ENOMEM; -ENOENT with @err saying why if no thread at all can
 * be read (never with @later).
 */
int ks_sched_vm_create(pid_t pid, unsigned hz, const char *vm_name, ks_log_fn warn,
		       const struct ks_sched_thread *threads, uint32_t nr, bool later,
		       struct ks_sched_vm **out, struct kvmstats_error *err);

/*
 * ks_sched_vcpu_block() - the block of @threads[@i]; it holds a reference.
 * Return: false (nothing done) if that thread had no files to read and
 * none can be named later.
 */
bool ks_sched_vcpu_block(struct ks_sched_vm *s, uint32_t i, struct ks_block_def *out);

/* ks_sched_vm_block() - the VM target's block of sums; it holds a reference. */
void ks_sched_vm_block(struct ks_sched_vm *s, struct ks_block_def *out);

/*
 * ks_sched_set_runner() - thread @tid (of the same process) runs vCPU
 * @vcpu_index: from the next read on, its files are read and
 * thread_runs_vcpu is true.  Any thread may call it, at any time; the
 * sweeping thread opens the files.  Return: 0, or -ENOENT (no such vCPU
 * with a block) / -EINVAL.
 */
int ks_sched_set_runner(struct ks_sched_vm *s, uint32_t vcpu_index, pid_t tid);

struct ks_sched_vm *ks_sched_vm_get(struct ks_sched_vm *s);
void ks_sched_vm_put(struct ks_sched_vm *s);

#endif /* KVMSTATS_PUBLISHER_SCHED_SOURCE_H */
