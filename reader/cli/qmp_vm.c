/* SPDX-License-Identifier: MIT */
/*
 * qmp_vm.c - a served VM's segment, followed across generations (qmp_vm.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp_vm.h"

/*
 * A current segment: attach if there is none; if the one held is not
 * live (superseded, its publisher dead or restarted, ended and replaced),
 * follow its name to the newest file.  Return: 0, or -1 with @why set.
 */
static int
refresh(struct ks_qmp_vm *vm, char *why, size_t len)
{
	struct kvmstats_error err = { 0 };
	struct kvmstats_liveness lv;
	int r;

	if (vm->seg == NULL) {
		r = ks_cli_attach_follow(vm->cli, vm->name, &vm->seg, &err);
		if (r < 0) {
			ks_cli_attach_why(vm->name, r, &err, why, len);
			return -1;
		}
		return 0;
	}
	if (kvmstats_liveness(vm->seg, &lv) == 0 && lv.health == KVMSTATS_HEALTH_LIVE)
		return 0;
	r = kvmstats_follow(&vm->seg, &err);
	if (r == 0 && kvmstats_liveness(vm->seg, &lv) == 0 &&
	    lv.health == KVMSTATS_HEALTH_BROKEN) {
		/* Damaged under us and nothing to follow: start afresh next time. */
		kvmstats_detach(&vm->seg);
		snprintf(why, len, "VM '%s': its segment was truncated or damaged; "
			 "'kvmstats list' shows the VMs", vm->name);
		return -1;
	}
	/* r < 0: a successor that does not attach (yet); keep what we have. */
	return 0;
}

static int
get(void *arg, bool values, const struct kvmstats_segment **segp, uint64_t **cut, char *why,
    size_t len)
{
	struct ks_qmp_vm *vm = arg;
	char health[256];
	int h;

	if (refresh(vm, why, len) < 0)
		return -1;
	h = ks_cli_health_why(vm->seg, health, sizeof(health));
	/* A stale publisher's VM still has its vCPUs and schema; not current values. */
	if (h != KVMSTATS_HEALTH_LIVE && (values || h != KVMSTATS_HEALTH_STALE)) {
		snprintf(why, len, "VM '%s' %s", kvmstats_info(vm->seg)->vm_name, health);
		return -1;
	}
	if (values && ks_cli_try_read_cut(vm->seg, cut, why, len) < 0)
		return -1;
	*segp = vm->seg;
	return 0;
}

void
ks_qmp_vm_init(struct ks_qmp_vm *vm, const struct ks_cli *cli, const char *name)
{
	memset(vm, 0, sizeof(*vm));
	vm->cli = cli;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->src.get = get;
	vm->src.arg = vm;
}

void
ks_qmp_vm_free(struct ks_qmp_vm *vm)
{
	if (vm->seg)
		kvmstats_detach(&vm->seg);
}

int
ks_qmp_vm_health(struct ks_qmp_vm *vm)
{
	char why[512];

	if (refresh(vm, why, sizeof(why)) < 0)
		return -1;
	return ks_cli_health_why(vm->seg, why, sizeof(why));
}
