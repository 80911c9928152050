/* SPDX-License-Identifier: MIT */
/*
 * intake_wire.h - the intake socket's messages, shared by the server
 * (intake_server.c) and the client (intake_client.c).  docs/INTAKE.md is
 * the reference, for clients in other languages too.
 *
 * SOCK_SEQPACKET, one struct ks_intake_msg per message, native byte
 * order; an OP_FD message carries exactly one fd as SCM_RIGHTS ancillary
 * data.  The daemon answers every message with one struct
 * ks_intake_reply.
 */
#ifndef KVMSTATS_PUBLISHER_INTAKE_WIRE_H
#define KVMSTATS_PUBLISHER_INTAKE_WIRE_H

#include <stdint.h>
#include <sys/un.h>

#include "kvmstats/types.h"

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

/*
 * ks_intake_addr() - the socket address of @path, which must fit
 * sun_path with its NUL.  Return: 0, or -EINVAL/-ENAMETOOLONG with @err.
 */
int ks_intake_addr(struct sockaddr_un *sa, const char *path, struct kvmstats_error *err);

#endif /* KVMSTATS_PUBLISHER_INTAKE_WIRE_H */
