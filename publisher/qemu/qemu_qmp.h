/* SPDX-License-Identifier: MIT */
/*
 * qemu_qmp.h - QEMU's own names for its vCPUs, asked once over one of its
 * QMP monitors.
 *
 * QEMU's query-stats names a vCPU by its QOM path
 * ("/machine/unattached/device[0]"); a KVM stats fd names it
 * "kvm-<tid>/vcpu-<id>", tid being the thread that created the vCPU, which
 * in QEMU is the vCPU's own thread, the one query-cpus-fast reports as
 * "thread-id".  So one query-cpus-fast maps every stats fd to its QOM path.
 *
 * A QMP monitor serves one client at a time, and libvirt keeps its own, so
 * this is meant for a second monitor the user gives QEMU for us
 * (-qmp unix:PATH,server=on,wait=off): we connect, negotiate, ask once and
 * close.  The reply is untrusted input: sizes are capped, every string must
 * be printable text, and the socket must be served by the process we
 * expect, so a wrong path never gives another VM's names.
 */
#ifndef KVMSTATS_PUBLISHER_QEMU_QMP_H
#define KVMSTATS_PUBLISHER_QEMU_QMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstats/types.h"

/* A QOM path longer than this is refused (the intake's label field holds 183). */
#define KS_QEMU_QOM_MAX		183
/* The most vCPUs a reply may list (KVM's own limit is 4096 on x86). */
#define KS_QEMU_CPUS_MAX	4096
/* How long one question may take, connecting included, by default. */
#define KS_QEMU_QMP_TIMEOUT_MS	3000

struct ks_qemu_cpu {
	pid_t thread_id;
	int64_t cpu_index;
	char qom_path[KS_QEMU_QOM_MAX + 1];
};

struct ks_qemu_cpus {
	struct ks_qemu_cpu *v;
	size_t n;
};

/*
 * ks_qemu_query_cpus() - connect to the QMP socket @path, negotiate, run
 * query-cpus-fast, close.  @expect_pid: the process that must be serving
 * the socket (SO_PEERCRED), or 0 for any.  @timeout_ms: for the whole
 * exchange (0: KS_QEMU_QMP_TIMEOUT_MS).  @cancel_fd: an fd that becomes
 * readable when the caller wants to stop waiting, or -1.
 * Return: 0 with @out filled (free with ks_qemu_cpus_clear()), or a
 * negative errno with @err saying what went wrong and what to do:
 * -ENOENT/-ECONNREFUSED (no monitor there), -EACCES, -ETIMEDOUT (QEMU did
 * not answer in time), -EPERM (another process serves the socket),
 * -EPROTO (not a QMP reply we can use), -ECANCELED.
 */
int ks_qemu_query_cpus(const char *path, pid_t expect_pid, unsigned timeout_ms, int cancel_fd,
		       struct ks_qemu_cpus *out, struct kvmstats_error *err);

void ks_qemu_cpus_clear(struct ks_qemu_cpus *c);

/* The QOM path of the vCPU that thread @tid runs, or NULL (none, or more than one). */
const char *ks_qemu_qom_of_tid(const struct ks_qemu_cpus *c, pid_t tid);

/*
 * ks_qemu_qom_of_id() - the QOM path for a vCPU stats fd's KVM id string
 * ("kvm-<tid>/vcpu-<n>"), or NULL when the id has another form or no vCPU
 * of @c runs on that thread.
 */
const char *ks_qemu_qom_of_id(const struct ks_qemu_cpus *c, const char *id);

#endif /* KVMSTATS_PUBLISHER_QEMU_QMP_H */
