/* SPDX-License-Identifier: MIT */
/*
 * intake.h - the intake socket: a VMM (or the preload shim) hands its stats
 * fds to kvmstatsd over a Unix socket (`kvmstatsd --listen PATH`).
 *
 * Wire protocol (docs/INTAKE.md is the reference): SOCK_SEQPACKET, one
 * struct ks_intake_msg per message, native byte order; an OP_FD message
 * carries exactly one fd as SCM_RIGHTS ancillary data.  The daemon answers
 * every message with one struct ks_intake_reply.  The peer's uid
 * (SO_PEERCRED) must be on the allow-list; every fd must parse as a KVM
 * stats fd.  A VM is published once its fds stop arriving (a short quiet
 * period) or on OP_PUBLISH; fds that arrive later (hotplug) make a new
 * segment generation.  The connection closing ends all of its VMs.
 */
#ifndef KVMSTATS_PUBLISHER_INTAKE_H
#define KVMSTATS_PUBLISHER_INTAKE_H

#include <stdint.h>
#include <sys/types.h>

#include "engine.h"
#include "vm_builder.h"

#define KS_INTAKE_MAGIC		0x3149534bu	/* "KSI1" little-endian */
#define KS_INTAKE_VERSION	1

enum ks_intake_op {
	KS_INTAKE_OP_FD = 1,		/* one stats fd attached */
	KS_INTAKE_OP_PUBLISH = 2,	/* publish the VM's fds now */
	KS_INTAKE_OP_END = 3,		/* the VM ended (same as closing, per VM) */
};

struct ks_intake_msg {
	uint32_t magic;			/* KS_INTAKE_MAGIC */
	uint16_t version;		/* KS_INTAKE_VERSION */
	uint16_t op;			/* enum ks_intake_op */
	uint32_t kind;			/* enum ks_target_kind (OP_FD) */
	uint32_t vcpu_index;		/* vCPU id (OP_FD, kind vcpu) */
	char vm[64];			/* VM name, NUL-terminated, e.g. "kvm-1234" */
	char label[184];		/* target label, e.g. a QOM path; "" = the fd's id */
};
_Static_assert(sizeof(struct ks_intake_msg) == 264, "intake message is 264 bytes");

struct ks_intake_reply {
	uint32_t magic;			/* KS_INTAKE_MAGIC */
	int32_t status;			/* 0, or a negative errno */
	char msg[248];			/* why, when status < 0 */
};
_Static_assert(sizeof(struct ks_intake_reply) == 256, "intake reply is 256 bytes");

struct ks_intake;

struct ks_intake_opts {
	const char *path;		/* socket path; an existing socket file is replaced */
	const uid_t *allow;		/* uids allowed to connect; NULL: root and our own uid */
	unsigned nr_allow;
	mode_t mode;			/* socket file mode, e.g. 0660 */
	unsigned quiet_ms;		/* publish after this long without a new fd; 0: 200 */
	unsigned idle_ms;		/* close a connection holding no VM this long; 0: 10000 */
	unsigned max_per_uid;		/* connections one uid may hold; 0: KS_INTAKE_MAX_PER_UID */
	ks_log_fn log;			/* one line per connection event; NULL: silent */
};

/* Of the 1024 connections the intake takes, one uid may hold this many by default. */
#define KS_INTAKE_MAX_PER_UID	256

int ks_intake_start(struct ks_engine *e, const struct ks_intake_opts *o,
		    struct ks_intake **out, struct kvmstats_error *err);
/* Close the socket and every connection (their VMs end); sets *@ip to NULL. */
void ks_intake_stop(struct ks_intake **ip);

/* ---- client side (the preload shim, tests, a VMM of one's own) ---- */

/* Return: a connected SOCK_SEQPACKET|SOCK_CLOEXEC socket, or a negative errno. */
int ks_intake_connect(const char *path, struct kvmstats_error *err);
/* Send one fd and wait for the reply.  Return: 0, or the reply's negative status. */
int ks_intake_send_fd(int sock, const char *vm, enum ks_target_kind kind,
		      uint32_t vcpu_index, const char *label, int fd,
		      struct kvmstats_error *err);
/* Send OP_PUBLISH or OP_END for @vm and wait for the reply. */
int ks_intake_send_op(int sock, const char *vm, enum ks_intake_op op,
		      struct kvmstats_error *err);

#endif /* KVMSTATS_PUBLISHER_INTAKE_H */
