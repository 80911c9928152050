/* SPDX-License-Identifier: MIT */
/* options.h - kvmstatsd's command line. */
#ifndef KVMSTATS_DAEMON_OPTIONS_H
#define KVMSTATS_DAEMON_OPTIONS_H

#include <stdbool.h>
#include <sys/types.h>

#include "engine.h"

#define KS_MAX_ALLOW_UIDS	64

struct options {
	struct ks_engine_config cfg;
	unsigned simulate;		/* vCPUs of a simulated VM; 0: none */
	unsigned sim_hz;
	unsigned spawn_vm;		/* vCPUs of a real VM of our own; 0: none */
	unsigned wake_us;		/* its guest's APIC timer period */
	bool fallback_simulate;		/* --spawn-vm without KVM: simulate instead */
	pid_t attach;			/* a running VMM; 0: none */
	unsigned rescan_ms;
	const char *qmp;		/* --attach: a QMP socket of that QEMU; NULL: none */
	const char *debugfs;		/* --attach: debugfs for VM stats; NULL: none */
	bool debugfs_given;
	const char *listen;		/* intake socket path; NULL: none */
	uid_t allow[KS_MAX_ALLOW_UIDS];
	unsigned nr_allow;
	mode_t socket_mode;
	unsigned max_per_uid;		/* intake connections per uid; 0: the default */
	/* "sched" provider reads per second (sched_source.h); 0: no such provider */
	unsigned sched_hz;
	const char *name;
	double duration;		/* seconds; 0: until a signal */
	bool quiet;
};

/* Return: 0 go on, 1 done (help or version printed), -1 usage error (printed). */
int parse_options(int argc, char **argv, struct options *o);

#endif /* KVMSTATS_DAEMON_OPTIONS_H */
