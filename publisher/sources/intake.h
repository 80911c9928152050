/* SPDX-License-Identifier: MIT */
/*
 * intake.h - the intake socket's server: a VMM (or the preload shim) hands
 * its stats fds to kvmstatsd over a Unix socket (`kvmstatsd --listen
 * PATH`); the client is the public kvmstats/intake.h.
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
#include "intake_wire.h"
#include "vm_builder.h"

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
	/*
	 * Provider "sched" reads per second (sched_source.h); 0: none.  Each
	 * vCPU's thread is its creator, from its stats fd's id, looked up among
	 * the threads of the peer (SO_PEERCRED): thread_runs_vcpu false.
	 */
	unsigned sched_hz;
};

/* Of the 1024 connections the intake takes, one uid may hold this many by default. */
#define KS_INTAKE_MAX_PER_UID	256

int ks_intake_start(struct ks_engine *e, const struct ks_intake_opts *o,
		    struct ks_intake **out, struct kvmstats_error *err);
/* Close the socket and every connection (their VMs end); sets *@ip to NULL. */
void ks_intake_stop(struct ks_intake **ip);

#endif /* KVMSTATS_PUBLISHER_INTAKE_H */
