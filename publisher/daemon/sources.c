/* SPDX-License-Identifier: MIT */
/*
 * sources.c - the daemon's sources: a simulated VM, a VM of our own, an
 * attached VMM, the intake socket.  Each ends up in the same engine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmstats/reader.h"
#include "ks_err.h"
#include "ks_log.h"
#include "qemu_name.h"
#include "qom_labels.h"
#include "sources.h"
#include "vm_builder.h"

/*
 * Publish a VM whose fds belong to a VM object (simulated or our own): the
 * engine reads them and never closes them.  Its vCPU threads are ours and
 * known: @thread(vm, i) runs vCPU i (sched provider at @sched_hz, 0: none).
 */
static int
publish_vm(struct ks_engine *e, const char *vm_name, unsigned nr_vcpus,
	   int (*stats_fd)(const void *vm, int vcpu), pid_t (*thread)(const void *vm, unsigned i),
	   const void *vm, unsigned sched_hz, ks_log_fn warn, struct kvmstats_error *err)
{
	struct ks_fd_target *fds = calloc(nr_vcpus + 1, sizeof(*fds));
	struct ks_sched_thread *runners = calloc(nr_vcpus + 1, sizeof(*runners));
	struct ks_vm_build b;
	struct kvmstats_error serr;
	int ret;

	if (fds == NULL || runners == NULL) {
		free(fds);
		free(runners);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i <= nr_vcpus; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = i ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = i ? i - 1 : KS_VCPU_INDEX_NONE,
			.fd = stats_fd(vm, (int)i - 1),
		};
	for (unsigned i = 0; i < nr_vcpus; i++)
		runners[i] = (struct ks_sched_thread) { .vcpu_index = i, .tid = thread(vm, i) };
	ret = ks_vm_build(vm_name, fds, nr_vcpus + 1, warn, &b, err);
	free(fds);
	if (ret == 0 && sched_hz) {
		struct ks_vm_sched how = {
			.pid = getpid(), .hz = sched_hz, .runners = runners,
			.nr_runners = nr_vcpus, .warn = warn,
		};

		(void)ks_vm_build_add_sched(&b, &how, NULL, &serr);
	}
	free(runners);
	if (ret < 0)
		return ret;
	ret = ks_engine_add_vm(e, &b.def, NULL, err);
	ks_vm_build_clear(&b, true);
	return ret;
}

static int
sim_fd(const void *vm, int vcpu)
{
	return ks_sim_vm_stats_fd(vm, vcpu);
}

static int
own_fd(const void *vm, int vcpu)
{
	return ks_own_vm_stats_fd(vm, vcpu);
}

/* The simulator thread steps every simulated vCPU. */
static pid_t
sim_thread(const void *vm, unsigned vcpu)
{
	(void)vcpu;
	return ks_sim_vm_thread(vm);
}

static pid_t
own_thread(const void *vm, unsigned vcpu)
{
	return ks_own_vm_vcpu_thread(vm, vcpu);
}

static int
start_sim(struct ks_engine *e, const struct options *o, unsigned vcpus, struct sources *s,
	  ks_log_fn say_line, struct kvmstats_error *err)
{
	char msg[256], name[32];
	const char *vm_name;
	int ret;

	if (s->sim)
		return ks_err(err, -EEXIST, "--fallback-simulate already publishes a simulated VM: "
			      "drop --simulate, or --fallback-simulate");
	ret = ks_sim_vm_create(vcpus, &s->sim, err);
	if (ret == 0)
		ret = ks_sim_vm_start(s->sim, o->sim_hz, err);
	/* Our own VM is kvm-<our pid> too: the simulated one must not take its segment. */
	vm_name = s->sim ? ks_sim_vm_name(s->sim) : NULL;
	if (s->own) {
		snprintf(name, sizeof(name), "sim-%d", (int)getpid());
		vm_name = name;
	}
	if (o->name)
		vm_name = o->name;	/* --name: the only VM source */
	if (ret == 0)
		ret = publish_vm(e, vm_name, vcpus, sim_fd, sim_thread, s->sim, o->sched_hz,
				 say_line, err);
	if (ret == 0) {
		snprintf(msg, sizeof(msg), "publishing simulated VM %s (%u vCPUs)", vm_name,
			 vcpus);
		say_line(msg);
	}
	return ret;
}

static int
start_own(struct ks_engine *e, const struct options *o, struct sources *s,
	  ks_log_fn say_line, struct kvmstats_error *err)
{
	char msg[600];
	int ret = ks_own_vm_available(err);

	if (ret < 0 && o->fallback_simulate) {
		snprintf(msg, sizeof(msg), "cannot run a real VM here (%s); "
			 "publishing a simulated VM instead", err->msg);
		say_line(msg);
		return start_sim(e, o, o->spawn_vm, s, say_line, err);
	}
	if (ret == 0)
		ret = ks_own_vm_create(o->spawn_vm, &s->own, err);
	if (ret == 0)
		ret = ks_own_vm_start(s->own, o->wake_us, err);
	if (ret == 0)
		ret = publish_vm(e, o->name ? o->name : ks_own_vm_name(s->own), o->spawn_vm,
				 own_fd, own_thread, s->own, o->sched_hz, say_line, err);
	if (ret == 0) {
		snprintf(msg, sizeof(msg), "publishing real VM %s (%u vCPUs, guest woken every %u us)",
			 o->name ? o->name : ks_own_vm_name(s->own), o->spawn_vm, o->wake_us);
		say_line(msg);
	}
	return ret;
}

/*
 * The attached VM's name: --name, else the guest name of QEMU's -name, else
 * kvm-<pid>.  A name taken from -name never displaces a live publisher's VM
 * of that name: the VM is then published as kvm-<pid> and that is said.
 */
static int
start_attach(struct ks_engine *e, const struct options *o, struct sources *s,
	     void (*on_end)(void *), ks_log_fn say_line, struct kvmstats_error *err)
{
	struct ks_attach_opts ao = {
		.pid = o->attach, .vm_name = o->name, .rescan_ms = o->rescan_ms,
		.debugfs = o->debugfs, .warn = say_line, .on_end = on_end,
		.sched_hz = o->sched_hz,
	};
	char derived[KVMSTATS_VM_NAME_MAX + 1], why[200];
	int ret;

	if (o->qmp) {
		s->labeller = (struct qom_labeller) {
			.qmp_path = o->qmp, .pid = o->attach, .say = say_line,
		};
		ao.label = qom_label_targets;
		ao.label_arg = &s->labeller;
	}
	if (o->name == NULL) {
		ret = ks_qemu_name_of_pid(o->attach, derived, sizeof(derived), why, sizeof(why));
		if (ret == 1)
			ao.vm_name = derived;
		else if (ret < 0)
			ks_logf(say_line, "VMM %d: not naming the VM after its -name: %s",
				(int)o->attach, why);
	}
	ret = ks_attach_start(e, &ao, &s->attach, err);
	if (ret == -EEXIST && ao.vm_name == derived) {
		ks_logf(say_line, "VMM %d: the name %s from its -name is taken (%s); publishing "
			"it as kvm-%d", (int)o->attach, derived, err->msg, (int)o->attach);
		ao.vm_name = NULL;
		ret = ks_attach_start(e, &ao, &s->attach, err);
	}
	if (ret == 0)
		ks_logf(say_line, "attached to VMM %d: publishing %s", (int)o->attach,
			ks_attach_file(s->attach));
	return ret;
}

static int
start_intake(struct ks_engine *e, const struct options *o, struct sources *s,
	     ks_log_fn say_line, struct kvmstats_error *err)
{
	struct ks_intake_opts io = {
		.path = o->listen, .allow = o->nr_allow ? o->allow : NULL,
		.nr_allow = o->nr_allow, .mode = o->socket_mode, .log = say_line,
		.max_per_uid = o->max_per_uid, .sched_hz = o->sched_hz,
	};
	/* The intake says "listening on PATH" itself, through say_line. */
	return ks_intake_start(e, &io, &s->intake, err);
}

int
sources_start(struct ks_engine *e, const struct options *o, struct sources *s,
	      void (*on_attach_end)(void *), ks_log_fn say_line,
	      struct kvmstats_error *err)
{
	int ret = 0;

	memset(s, 0, sizeof(*s));
	if (o->spawn_vm)
		ret = start_own(e, o, s, say_line, err);
	if (ret == 0 && o->simulate)
		ret = start_sim(e, o, o->simulate, s, say_line, err);
	if (ret == 0 && o->attach)
		ret = start_attach(e, o, s, on_attach_end, say_line, err);
	if (ret == 0 && o->listen)
		ret = start_intake(e, o, s, say_line, err);
	return ret;
}

void
sources_stop_feeds(struct sources *s)
{
	if (s->attach)
		ks_attach_stop(&s->attach);
	if (s->intake)
		ks_intake_stop(&s->intake);
}

void
sources_free(struct sources *s)
{
	if (s->own)
		ks_own_vm_destroy(&s->own);
	if (s->sim)
		ks_sim_vm_destroy(&s->sim);
}
