/* SPDX-License-Identifier: MIT */
/*
 * qmp_commands.h - the commands kvmstats qmp serves (qmp_commands.c).
 */
#ifndef KVMSTATS_CLI_QMP_COMMANDS_H
#define KVMSTATS_CLI_QMP_COMMANDS_H

#include <jansson.h>
#include <stdbool.h>

#include "json.h"
#include "qmp_args.h"
#include "qmp_dispatch.h"

struct ks_qmp_command {
	const char *name;
	/*
	 * @run: check @args (an object, maybe empty), then write the return
	 * value to @j; or return false with @e set (nothing written).
	 */
	bool (*run)(struct ks_qmp_session *s, json_t *args, struct ks_json *j,
		    struct ks_qmp_err *e);
	bool before_negotiation;	/* offered before qmp_capabilities too */
};

/* The command @name in session state @negotiated, or NULL if not served then. */
const struct ks_qmp_command *ks_qmp_find_command(const char *name, bool negotiated);

/*
 * ks_qmp_thread_id() - the thread id in a vCPU source id of the form
 * "kvm-<tid>/vcpu-<n>" (the thread that created the vCPU: QEMU's vCPU
 * thread), or 0 when @id has another form.
 */
long long ks_qmp_thread_id(const char *id);

#endif /* KVMSTATS_CLI_QMP_COMMANDS_H */
