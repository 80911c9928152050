/* SPDX-License-Identifier: MIT */
/* sources.h - start and stop the sources kvmstatsd was asked for. */
#ifndef KVMSTATS_DAEMON_SOURCES_H
#define KVMSTATS_DAEMON_SOURCES_H

#include "attach.h"
#include "engine.h"
#include "intake.h"
#include "options.h"
#include "own_vm.h"
#include "qom_labels.h"
#include "sim_vm.h"

struct sources {
	struct ks_sim_vm *sim;
	struct ks_own_vm *own;
	struct ks_attach *attach;
	struct qom_labeller labeller;	/* --attach --qmp */
	struct ks_intake *intake;
};

/*
 * sources_start() - start every source of @o and publish what they have.
 * @on_attach_end: called (from another thread) when an attached VMM exits.
 */
int sources_start(struct ks_engine *e, const struct options *o, struct sources *s,
		  void (*on_attach_end)(void *), ks_log_fn say_line,
		  struct kvmstats_error *err);

/* Before the engine goes: stop the sources that add or remove VMs. */
void sources_stop_feeds(struct sources *s);

/* After the engine is gone: the VMs whose fds it read. */
void sources_free(struct sources *s);

#endif /* KVMSTATS_DAEMON_SOURCES_H */
