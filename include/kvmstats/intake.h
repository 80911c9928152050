/* SPDX-License-Identifier: MIT */
/*
 * kvmstats/intake.h - hand a VM's KVM stats fds to kvmstatsd.
 *
 * kvmstatsd --listen PATH serves a Unix socket; a VMM connects, sends the
 * fd that KVM_GET_STATS_FD gave for the VM and for each vCPU, and keeps
 * the connection open while the VM runs: kvmstatsd publishes the VM
 * (after a short quiet period, or at kvmstats_intake_publish()), gives a
 * vCPU added later a new segment generation, and ends the VM when the
 * connection closes or at kvmstats_intake_end().  docs/INTAKE.md
 * describes the protocol, for clients in other languages.
 *
 * Link with -lkvmstats-publisher (pkg-config kvmstats-publisher).  Every
 * call blocks until kvmstatsd replies; none is safe on one socket from two
 * threads at once.  Errors are negative errno values with @err filled.
 */
#ifndef KVMSTATS_INTAKE_H
#define KVMSTATS_INTAKE_H

#include <stdint.h>

#include "kvmstats/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * kvmstats_intake_connect() - connect to kvmstatsd's socket @path.
 * Return: a connected socket (SOCK_SEQPACKET, close-on-exec): keep it open
 * while the VM runs; or -ENOENT/-ECONNREFUSED (nobody listens), -EACCES,
 * -ENAMETOOLONG, another negative errno.
 */
int kvmstats_intake_connect(const char *path, struct kvmstats_error *err);

/*
 * kvmstats_intake_send_fd() - hand over one stats fd of VM @vm: the VM's
 * (@kind KVMSTATS_TARGET_VM, @vcpu_index ignored) or vCPU @vcpu_index's.
 * @label: the target's label (e.g. a QOM path), or NULL for the fd's id.
 * kvmstatsd keeps its own copy: @fd may be closed after the call.
 * Return: 0; -EBADMSG (not a KVM stats fd, or not of that kind or vCPU),
 * -EEXIST (the name is another publisher's), -EINVAL (a bad name or
 * label), -EMFILE (kvmstatsd out of fds: try later), another negative errno.
 */
int kvmstats_intake_send_fd(int sock, const char *vm, enum kvmstats_target_kind kind,
			    uint32_t vcpu_index, const char *label, int fd,
			    struct kvmstats_error *err);

/* kvmstats_intake_publish() - publish @vm's fds now, not after the quiet period. */
int kvmstats_intake_publish(int sock, const char *vm, struct kvmstats_error *err);

/* kvmstats_intake_end() - @vm ended: its segment ends (closing the socket ends all). */
int kvmstats_intake_end(int sock, const char *vm, struct kvmstats_error *err);

#ifdef __cplusplus
}
#endif

#endif /* KVMSTATS_INTAKE_H */
