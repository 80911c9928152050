/* SPDX-License-Identifier: MIT */
/*
 * qom_labels.h - kvmstatsd --attach --qmp: label an attached QEMU's vCPUs
 * with its own QOM paths, asked over the QMP socket given, once for each
 * vCPU set (each segment generation).
 */
#ifndef KVMSTATS_DAEMON_QOM_LABELS_H
#define KVMSTATS_DAEMON_QOM_LABELS_H

#include <stdbool.h>
#include <sys/types.h>

#include "ks_log.h"
#include "vm_builder.h"

struct qom_labeller {
	const char *qmp_path;
	pid_t pid;			/* the VMM: it must be the one serving qmp_path */
	ks_log_fn say;
	bool failing;			/* the last question failed: said once until it works */
};

/*
 * qom_label_targets() - an attach label hook (ks_attach_opts.label): every
 * vCPU target whose KVM id names a thread that query-cpus-fast knows gets
 * that vCPU's QOM path.  When QEMU cannot be asked, the targets keep
 * their KVM ids and the reason is said once.  Return: false when QEMU
 * could not be asked (attach asks again later), true when it answered.
 */
bool qom_label_targets(void *labeller, struct ks_vm_build *b, int cancel_fd);

#endif /* KVMSTATS_DAEMON_QOM_LABELS_H */
