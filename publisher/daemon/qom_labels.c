/* SPDX-License-Identifier: MIT */
/* qom_labels.c - QEMU's QOM paths as an attached VM's vCPU labels (qom_labels.h). */
#include <errno.h>

#include "ks_log.h"
#include "qemu_qmp.h"
#include "qom_labels.h"

bool
qom_label_targets(void *labeller, struct ks_vm_build *b, int cancel_fd)
{
	struct qom_labeller *l = labeller;
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;
	unsigned labelled = 0, vcpus = 0;
	int r;

	r = ks_qemu_query_cpus(l->qmp_path, l->pid, 0, cancel_fd, &cpus, &err);
	if (r == -ECANCELED)
		return true;		/* stopping: nothing to ask again */
	if (r < 0) {
		if (!l->failing)
			ks_logf(l->say, "VM %s: vCPUs keep KVM's ids for now, not QEMU's QOM "
				"paths: %s; asking again", b->vm_name, err.msg);
		l->failing = true;
		return false;
	}
	for (uint32_t i = 0; i < b->nr; i++) {
		const char *qom;

		if (b->targets[i].kind != KS_TARGET_VCPU)
			continue;
		vcpus++;
		qom = ks_qemu_qom_of_id(&cpus, b->ids[i]);
		if (qom != NULL && ks_vm_build_set_label(b, i, qom, &err) == 0)
			labelled++;
	}
	ks_qemu_cpus_clear(&cpus);
	if (labelled < vcpus || l->failing)
		ks_logf(l->say, "VM %s: %u of %u vCPUs labelled with QEMU's QOM paths%s",
			b->vm_name, labelled, vcpus,
			labelled < vcpus ? " (QEMU runs the others on threads query-cpus-fast "
			"does not list)" : "");
	l->failing = false;
	/* QEMU answered: asking again would not name the others either. */
	return true;
}
