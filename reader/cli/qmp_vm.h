/* SPDX-License-Identifier: MIT */
/*
 * qmp_vm.h - one VM as kvmstats qmp serves it: its segment, attached on
 * first use and followed to each new generation or restarted publisher,
 * with values only while its publisher is live.
 */
#ifndef KVMSTATS_CLI_QMP_VM_H
#define KVMSTATS_CLI_QMP_VM_H

#include "cli.h"
#include "qmp_dispatch.h"

struct ks_qmp_vm {
	const struct ks_cli *cli;	/* --dir, --owner */
	char name[256];			/* as given: "x" or "kvmstats.x" */
	struct kvmstats_segment *seg;	/* NULL until attached */
	struct ks_qmp_source src;	/* for the sessions of this VM */
};

/* ks_qmp_vm_init() - set up @vm for @name (not attached yet: that is per command). */
void ks_qmp_vm_init(struct ks_qmp_vm *vm, const struct ks_cli *cli, const char *name);

void ks_qmp_vm_free(struct ks_qmp_vm *vm);

/*
 * ks_qmp_vm_health() - attach or follow as needed, then judge the segment
 * (enum kvmstats_health), or -1 when it cannot be attached.  For the
 * directory mode, which drops VMs that end.
 */
int ks_qmp_vm_health(struct ks_qmp_vm *vm);

#endif /* KVMSTATS_CLI_QMP_VM_H */
