/* SPDX-License-Identifier: MIT */
/*
 * vm_builder.h - turn a VM's KVM stats fds into an engine VM definition.
 *
 * Every way of getting stats fds (a simulated VM, a VM of our own, an
 * attached VMM, the intake socket, the embedded API) ends here: each fd is
 * parsed and validated, descriptors KVM added that we do not know are
 * reported once per layout, and each fd becomes the "kvm" block of its
 * target; ks_vm_build_add_sched() then gives the targets their "sched"
 * blocks (the host scheduler's view of each vCPU thread).
 */
#ifndef KVMSTATS_PUBLISHER_VM_BUILDER_H
#define KVMSTATS_PUBLISHER_VM_BUILDER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "sched_source.h"

/* Bytes of a target label, a QOM path or the like. */
#define KS_LABEL_MAX	1024

struct ks_fd_target {
	enum ks_target_kind kind;
	uint32_t vcpu_index;		/* KS_VCPU_INDEX_NONE for the VM */
	int fd;
	bool own_fd;			/* the built VM closes it */
	const char *label;		/* NULL: the fd's id string */
};

/* Blocks a built target may have: "kvm", then "sched". */
#define KS_BUILD_MAX_BLOCKS	2

struct ks_vm_build {
	struct ks_vm_def def;
	struct ks_target_def *targets;
	struct ks_block_def *blocks;	/* KS_BUILD_MAX_BLOCKS per target */
	char **labels;
	char **ids;
	uint32_t nr;			/* targets built so far */
	uint32_t cap;			/* entries of the arrays above */
	char *vm_name;
	char *note;			/* def.note: see ks_vm_build_set_note() */
};

/*
 * ks_vm_build() - parse every fd and fill @out.  @vm_name: any spelling of
 * ks_vm_name_of() (a "kvmstats." prefix is dropped), or NULL: the VM
 * target's id string, else the first vCPU id's part before '/'.  The name
 * must pass ks_vm_name_fault() and every label (at most KS_LABEL_MAX
 * bytes) must be printable text (ks_text.h); each fd must be what it is
 * offered as: its id string says whether it is a VM's ("kvm-1234") or a
 * vCPU's ("kvm-1234/vcpu-3", whose number must be the vCPU index).
 * @warn gets one line per descriptor skipped (unknown type, unit or base).
 * On success hand out->def to ks_engine_add_vm() or ks_engine_replace_vm(),
 * then ks_vm_build_clear(out, true).  On error nothing is owned: fds that
 * were marked own_fd are closed.
 */
int ks_vm_build(const char *vm_name, const struct ks_fd_target *fds, uint32_t nr_fds,
		ks_log_fn warn, struct ks_vm_build *out, struct kvmstats_error *err);

/*
 * ks_fd_kind_check() - is a stats fd with id string @id what @ft offers it
 * as?  KVM names a VM's "kvm-<pid>" and a vCPU's "kvm-<pid>/vcpu-<id>".
 * Return: 0, or -EINVAL with @err naming @what.
 */
int ks_fd_kind_check(const char *what, const struct ks_fd_target *ft, const char *id,
		     struct kvmstats_error *err);

/*
 * ks_vm_build_set_label() - give built target @i the label @label instead
 * of the one it was built with (a VMM's own name for it, learnt after its
 * fds were parsed, such as QEMU's QOM path).  The rules of ks_vm_build()
 * apply.  Return: 0, or -EINVAL (@err says why) / -ENOMEM, the old label kept.
 */
int ks_vm_build_set_label(struct ks_vm_build *b, uint32_t i, const char *label,
			  struct kvmstats_error *err);

/*
 * ks_vm_build_add_vm() - give a VM built without a VM target one whose
 * "kvm" block is @block (taken: on success the build owns it, on error the
 * caller still does), with KVM id @id, listed first as always.
 * Return: 0, -EEXIST (it has a VM target) or -ENOMEM.
 */
int ks_vm_build_add_vm(struct ks_vm_build *b, const char *id, const struct ks_block_def *block,
		       struct kvmstats_error *err);

/*
 * ks_vm_build_set_note() - the note readers get on where the VM's stats come
 * from (engine.h, ks_vm_def.note).  A VM built without a VM target gets
 * "no VM stats: no VM stats fd was given" until a source says better.
 * The text is escaped (ks_text_escape()) and cut to KS_NOTE_MAX bytes.
 * Return: 0, or -ENOMEM (the old note kept).
 */
int ks_vm_build_set_note(struct ks_vm_build *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * How a VM's vCPU threads are found, for ks_vm_build_add_sched().  Each
 * vCPU's thread is the one @runners names for its vcpu_index (a thread
 * known to run it: thread_runs_vcpu true), else the thread that created
 * it (false): the one @creators names, else - unless @creators is given -
 * the one in its stats fd's id "kvm-<tid>/vcpu-<n>".  Threads are read
 * under /proc/@pid/task/, so only threads of that process count.
 *
 * KVM writes that tid as the initial pid namespace numbers it (the
 * kernel's task_pid_nr()), so it is taken only if this process's /proc
 * shows those numbers too: if this process is in the initial pid namespace
 * (/proc/self/ns/pid is the kernel's first pid namespace).  Elsewhere (a
 * publisher in a container) the number would name another thread, or none:
 * those vCPUs get no thread from their id, and that is said.
 */
struct ks_vm_sched {
	pid_t pid;
	unsigned hz;				/* 0: KS_SCHED_HZ_DEFAULT */
	const struct ks_sched_thread *runners;	/* runs is taken as true; may be NULL */
	uint32_t nr_runners;
	const struct ks_sched_thread *creators;	/* runs is taken as false; may be NULL */
	uint32_t nr_creators;
	/* A runner can still be named (ks_sched_set_runner()): see ks_sched_vm_create(). */
	bool later;
	ks_log_fn warn;				/* vCPUs left out, threads that exit */
};

/*
 * ks_vm_build_add_sched() - add a "sched" block to every vCPU target whose
 * thread can be read, and to the VM target (the sums), if any.  Call it
 * after labels and the VM target are settled.  @keep: if not NULL, a
 * reference to the VM's threads for ks_sched_set_runner() (drop it with
 * ks_sched_vm_put()).  Return: 0, or a negative errno with @err saying why
 * no vCPU got one (also said through how->warn); the VM is then built as
 * before, with "kvm" alone, and may be published so.
 */
int ks_vm_build_add_sched(struct ks_vm_build *b, const struct ks_vm_sched *how,
			  struct ks_sched_vm **keep, struct kvmstats_error *err);

/*
 * ks_sched_creator_of() - the thread id in a vCPU stats fd's id
 * "kvm-<tid>/vcpu-<n>", or 0 if @id is not of that form.
 */
pid_t ks_sched_creator_of(const char *id);

/*
 * ks_sched_ids_usable() - may the tids in KVM's ids be looked up in this
 * process's /proc: is it in the initial pid namespace?  If not, @why (may
 * be NULL) says so.  An unreadable /proc/self/ns/pid counts as yes.
 */
bool ks_sched_ids_usable(char *why, size_t len);

/*
 * ks_vm_build_clear() - free the definition.  @handed_over: the sources went
 * to the engine (true) or must be released here (false).
 */
void ks_vm_build_clear(struct ks_vm_build *b, bool handed_over);

#endif /* KVMSTATS_PUBLISHER_VM_BUILDER_H */
