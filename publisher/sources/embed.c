/* SPDX-License-Identifier: MIT */
/*
 * embed.c - the embedded publisher API (include/kvmstats/publisher.h):
 * a thin layer over the engine and the VM builder, so that a VMM gets
 * exactly the segments kvmstatsd makes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed_sched.h"
#include "engine.h"
#include "ks_err.h"
#include "ks_magic.h"
#include "kvmstats/publisher.h"
#include "vm_builder.h"

/* The handles the API gives out know what they are (ks_magic.h). */
#define CHECK_PUBLISHER(p)	KS_CHECK_HANDLE(p, KS_MAGIC_PUBLISHER, "publisher")
#define CHECK_VM(v)		KS_CHECK_HANDLE(v, KS_MAGIC_VM, "VM")

struct kvmstats_vm {
	unsigned magic;				/* KS_MAGIC_VM until removed */
	struct kvmstats_publisher *pub;		/* whose VM it is */
	struct ks_engine_vm *evm;
	struct ks_sched_vm *sched;		/* the current generation's vCPU threads, or NULL */
	char *name;				/* of every generation */
	struct kvmstats_vm *prev, *next;	/* in the publisher's list */
};

struct kvmstats_publisher {
	unsigned magic;				/* KS_MAGIC_PUBLISHER until destroyed */
	struct ks_engine *engine;
	ks_log_fn log;
	bool sched;				/* provider "sched": this kernel has it */
	pthread_mutex_t lock;			/* the list of VMs */
	struct kvmstats_vm *vms;
};

static void
vm_link(struct kvmstats_publisher *pub, struct kvmstats_vm *vm)
{
	pthread_mutex_lock(&pub->lock);
	vm->next = pub->vms;
	if (pub->vms)
		pub->vms->prev = vm;
	pub->vms = vm;
	pthread_mutex_unlock(&pub->lock);
}

static void
vm_unlink(struct kvmstats_publisher *pub, struct kvmstats_vm *vm)
{
	pthread_mutex_lock(&pub->lock);
	if (vm->prev)
		vm->prev->next = vm->next;
	else
		pub->vms = vm->next;
	if (vm->next)
		vm->next->prev = vm->prev;
	pthread_mutex_unlock(&pub->lock);
}

static void
vm_free(struct kvmstats_vm *vm)
{
	vm->magic = 0;
	ks_sched_vm_put(vm->sched);
	free(vm->name);
	free(vm);
}

void
kvmstats_publisher_opts_init(struct kvmstats_publisher_opts *opts)
{
	struct ks_engine_config cfg;

	ks_engine_config_init(&cfg);
	*opts = (struct kvmstats_publisher_opts) {
		.hz = cfg.hz, .ring_depth = 0, .dir = cfg.dir,
		.mode = cfg.mode, .gid = cfg.gid, .keep = cfg.keep, .log = cfg.log,
	};
}

int
kvmstats_publisher_create(const struct kvmstats_publisher_opts *opts,
			  struct kvmstats_publisher **out, struct kvmstats_error *err)
{
	struct kvmstats_publisher *pub;
	struct kvmstats_publisher_opts o;
	struct ks_engine_config cfg;
	int ret;

	kvmstats_publisher_opts_init(&o);
	if (opts != NULL) {
		/* Zero fields keep their defaults. */
		o.hz = opts->hz ? opts->hz : o.hz;
		o.ring_depth = opts->ring_depth;
		o.dir = opts->dir;
		o.mode = opts->mode ? opts->mode : o.mode;
		o.gid = opts->gid;
		o.keep = opts->keep;
		o.log = opts->log;
	}
	pub = calloc(1, sizeof(*pub));
	if (pub == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	pub->magic = KS_MAGIC_PUBLISHER;
	pthread_mutex_init(&pub->lock, NULL);
	ks_engine_config_init(&cfg);
	cfg.hz = o.hz;
	if (o.ring_depth) {		/* asked for: exactly that */
		cfg.ring_depth = o.ring_depth;
		cfg.ring_min_bytes = 0;
	}
	cfg.dir = o.dir;
	cfg.mode = o.mode;
	cfg.gid = o.gid;
	cfg.keep = o.keep;
	cfg.log = o.log;
	pub->log = o.log;
	/* Said once, here, not at every VM: the kvm provider is published alone. */
	pub->sched = ks_sched_available(err) == 0;
	if (!pub->sched)
		ks_logf(o.log, "%s; VMs are published with provider kvm alone", err->msg);
	ret = ks_engine_create(&cfg, &pub->engine, err);
	if (ret == 0)
		ret = ks_engine_start(pub->engine, err);
	if (ret < 0) {
		ks_engine_destroy(&pub->engine);
		pthread_mutex_destroy(&pub->lock);
		free(pub);
		return ret;
	}
	*out = pub;
	return 0;
}

/* Duplicate the caller's fds: the VMM keeps and closes its own. */
static int
dup_fds(const struct kvmstats_fd *fds, unsigned n, struct ks_fd_target *out,
	struct kvmstats_error *err)
{
	for (unsigned i = 0; i < n; i++) {
		int fd = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, 3);

		if (fd < 0) {
			int e = errno, bad = fds[i].fd;

			while (i-- > 0)
				close(out[i].fd);
			return ks_err(err, -e, "cannot duplicate stats fd %d: %s", bad,
				      strerror(e));
		}
		out[i] = (struct ks_fd_target) {
			.kind = fds[i].kind == KVMSTATS_TARGET_VM ? KS_TARGET_VM : KS_TARGET_VCPU,
			.vcpu_index = fds[i].kind == KVMSTATS_TARGET_VM ?
				      KS_VCPU_INDEX_NONE : fds[i].vcpu_index,
			.fd = fd,
			.own_fd = true,
			.label = fds[i].label,
		};
	}
	return 0;
}

/*
 * Parse @fds into an engine definition; on error nothing is left open.
 * The vCPU threads are ours: those @th names (the shim's own), else each
 * vCPU's creator from its stats fd's id (in the initial pid namespace
 * only: ks_vm_sched), until ks_embed_vcpu_runs() names the thread that
 * runs it; *@sched gets the reference for that.
 */
static int
build(const struct kvmstats_publisher *pub, const char *name, const struct kvmstats_fd *fds,
      unsigned n, const struct ks_embed_threads *th, struct ks_vm_build *b,
      struct ks_sched_vm **sched, struct kvmstats_error *err)
{
	struct ks_fd_target *t;
	int ret;

	if (fds == NULL || n == 0)
		return ks_err(err, -EINVAL, "no stats fds to publish");
	for (unsigned i = 0; i < n; i++)
		if (fds[i].kind != KVMSTATS_TARGET_VM && fds[i].kind != KVMSTATS_TARGET_VCPU)
			return ks_err(err, -EINVAL, "fd %u: target kind %d is neither vm nor vcpu",
				      i, (int)fds[i].kind);
	t = calloc(n, sizeof(*t));
	if (t == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	ret = dup_fds(fds, n, t, err);
	if (ret == 0)
		ret = ks_vm_build(name, t, n, NULL, b, err);
	free(t);
	*sched = NULL;
	if (ret == 0 && pub->sched) {
		struct ks_vm_sched how = { .pid = getpid(), .warn = pub->log };

		if (th != NULL) {
			how.creators = th->creators;
			how.nr_creators = th->nr_creators;
			how.runners = th->runners;
			how.nr_runners = th->nr_runners;
			how.later = true;
		}
		struct kvmstats_error serr;

		(void)ks_vm_build_add_sched(b, &how, sched, &serr);
	}
	return ret;
}

int
ks_embed_vcpu_runs(struct kvmstats_vm *vm, uint32_t vcpu_index, pid_t tid)
{
	CHECK_VM(vm);
	return vm->sched ? ks_sched_set_runner(vm->sched, vcpu_index, tid) : -ENOENT;
}

int
kvmstats_publisher_add_vm(struct kvmstats_publisher *pub, const char *vm_name,
			  const struct kvmstats_fd *fds, unsigned nr_fds,
			  struct kvmstats_vm **out, struct kvmstats_error *err)
{
	CHECK_PUBLISHER(pub);		/* here: misuse is said with the API's name */
	return ks_embed_add_vm(pub, vm_name, fds, nr_fds, NULL, out, err);
}

int
ks_embed_add_vm(struct kvmstats_publisher *pub, const char *vm_name,
		const struct kvmstats_fd *fds, unsigned nr_fds, const struct ks_embed_threads *th,
		struct kvmstats_vm **out, struct kvmstats_error *err)
{
	struct kvmstats_vm *vm;
	struct ks_vm_build b;
	int ret;

	CHECK_PUBLISHER(pub);
	vm = calloc(1, sizeof(*vm));
	if (vm == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	vm->magic = KS_MAGIC_VM;
	vm->pub = pub;
	ret = build(pub, vm_name, fds, nr_fds, th, &b, &vm->sched, err);
	/* The name the first generation got, from @vm_name or the fds, names them all. */
	if (ret == 0 && (vm->name = strdup(b.def.vm_name)) == NULL) {
		ks_vm_build_clear(&b, false);
		ret = ks_err(err, -ENOMEM, "out of memory");
	} else if (ret == 0) {
		ret = ks_engine_add_vm(pub->engine, &b.def, &vm->evm, err);
		ks_vm_build_clear(&b, true);
	}
	if (ret < 0) {
		vm_free(vm);
		return ret;
	}
	vm_link(pub, vm);
	*out = vm;
	return 0;
}

int
kvmstats_publisher_update_vm(struct kvmstats_publisher *pub, struct kvmstats_vm *vm,
			     const struct kvmstats_fd *fds, unsigned nr_fds,
			     struct kvmstats_error *err)
{
	CHECK_PUBLISHER(pub);		/* here: misuse is said with the API's name */
	CHECK_VM(vm);
	if (vm->pub != pub)
		ks_bad_handle(__func__, "VM of this publisher", vm);
	return ks_embed_update_vm(pub, vm, fds, nr_fds, NULL, err);
}

int
ks_embed_update_vm(struct kvmstats_publisher *pub, struct kvmstats_vm *vm,
		   const struct kvmstats_fd *fds, unsigned nr_fds,
		   const struct ks_embed_threads *th, struct kvmstats_error *err)
{
	struct ks_engine_vm *next;
	struct ks_sched_vm *sched;
	struct ks_vm_build b;
	int ret;

	CHECK_PUBLISHER(pub);
	CHECK_VM(vm);
	if (vm->pub != pub)
		ks_bad_handle(__func__, "VM of this publisher", vm);
	/* Same name as the generation before, so the new segment replaces it. */
	ret = build(pub, vm->name, fds, nr_fds, th, &b, &sched, err);
	if (ret < 0)
		return ret;
	ret = ks_engine_replace_vm(pub->engine, vm->evm, &b.def, &next, err);
	ks_vm_build_clear(&b, true);
	if (ret < 0) {
		ks_sched_vm_put(sched);
		return ret;
	}
	vm->evm = next;
	ks_sched_vm_put(vm->sched);
	vm->sched = sched;
	return 0;
}

const char *
kvmstats_vm_segment(const struct kvmstats_vm *vm)
{
	CHECK_VM(vm);
	return ks_engine_vm_file(vm->evm);
}

void
kvmstats_publisher_remove_vm(struct kvmstats_publisher *pub, struct kvmstats_vm *vm)
{
	CHECK_PUBLISHER(pub);
	if (vm == NULL)
		return;
	CHECK_VM(vm);
	if (vm->pub != pub)
		ks_bad_handle(__func__, "VM of this publisher", vm);
	vm_unlink(pub, vm);
	ks_engine_remove_vm(pub->engine, vm->evm);
	vm_free(vm);
}

void
kvmstats_publisher_destroy(struct kvmstats_publisher **pubp)
{
	struct kvmstats_publisher *pub = pubp ? *pubp : NULL;

	if (pub == NULL)
		return;
	CHECK_PUBLISHER(pub);
	/* The engine ends every VM still published; their handles go with it. */
	ks_engine_destroy(&pub->engine);
	while (pub->vms) {
		struct kvmstats_vm *vm = pub->vms;

		pub->vms = vm->next;
		vm_free(vm);
	}
	pthread_mutex_destroy(&pub->lock);
	pub->magic = 0;
	free(pub);
	*pubp = NULL;
}
