/* SPDX-License-Identifier: MIT */
/*
 * vm_builder.h - turn a VM's KVM stats fds into an engine VM definition.
 *
 * Every way of getting stats fds (a simulated VM, a VM of our own, an
 * attached VMM, the intake socket, the embedded API) ends here: each fd is
 * parsed and validated, descriptors KVM added that we do not know are
 * reported once per layout, and each fd becomes the "kvm" block of its
 * target.
 */
#ifndef KVMSTATS_PUBLISHER_VM_BUILDER_H
#define KVMSTATS_PUBLISHER_VM_BUILDER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

struct ks_fd_target {
	enum ks_target_kind kind;
	uint32_t vcpu_index;		/* KS_VCPU_INDEX_NONE for the VM */
	int fd;
	bool own_fd;			/* the built VM closes it */
	const char *label;		/* NULL: the fd's id string */
};

struct ks_vm_build {
	struct ks_vm_def def;
	struct ks_target_def *targets;
	struct ks_block_def *blocks;	/* one per target */
	char **labels;
	char **ids;
	uint32_t nr;			/* targets built so far */
	uint32_t cap;			/* entries of the arrays above */
	char *vm_name;
	char *file;
};

/* Called with one line per skipped descriptor (unknown type, unit or base). */
typedef void (*ks_warn_fn)(const char *msg);

/*
 * ks_vm_build() - parse every fd and fill @out.  @vm_name NULL: the VM
 * target's id string, else the first vCPU id's part before '/'.
 * On success hand out->def to ks_engine_add_vm() or ks_engine_replace_vm(),
 * then ks_vm_build_clear(out, true).  On error nothing is owned: fds that
 * were marked own_fd are closed.
 */
int ks_vm_build(const char *vm_name, const char *file,
		const struct ks_fd_target *fds, uint32_t nr_fds, ks_warn_fn warn,
		struct ks_vm_build *out, struct kvmstats_error *err);

/*
 * ks_vm_build_clear() - free the definition.  @handed_over: the sources went
 * to the engine (true) or must be released here (false).
 */
void ks_vm_build_clear(struct ks_vm_build *b, bool handed_over);

#endif /* KVMSTATS_PUBLISHER_VM_BUILDER_H */
