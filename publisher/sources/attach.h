/* SPDX-License-Identifier: MIT */
/*
 * attach.h - publish the stats of a VMM that is already running
 * (`kvmstatsd --attach PID`), without its cooperation.
 *
 * A VMM from another process cannot be asked for stats fds (every VM and
 * vCPU ioctl from outside fails with EIO), but the stats fds it already
 * holds can be duplicated: /proc/PID/fd links named exactly
 * "anon_inode:kvm-vcpu-stats:N" and "anon_inode:kvm-vm-stats" are taken
 * with pidfd_getfd().  QEMU >= 8.1 keeps one per vCPU open.  A monitor
 * thread rescans now and then (vCPU hotplug: a new segment generation) and
 * watches the pidfd (the VMM exited: the segment ends).
 */
#ifndef KVMSTATS_PUBLISHER_ATTACH_H
#define KVMSTATS_PUBLISHER_ATTACH_H

#include <stdbool.h>
#include <sys/types.h>

#include "engine.h"
#include "vm_builder.h"

struct ks_attach;

struct ks_attach_opts {
	pid_t pid;
	const char *vm_name;		/* NULL: "kvm-<pid>"; the segment is kvmstats.<vm_name> */
	unsigned rescan_ms;		/* 0: 1000 */
	/*
	 * Where debugfs is mounted, for the VM's own stats when the VMM keeps
	 * no VM stats fd (QEMU: debugfs_source.h); NULL: not read, and the
	 * segment's note says so.  @kvm_dev: for the probe VM (NULL: /dev/kvm).
	 */
	const char *debugfs;
	bool debugfs_any_fs;		/* tests: @debugfs imitates debugfs (ks_debugfs_vm_dir()) */
	const char *kvm_dev;
	ks_log_fn warn;		/* NULL: silent */
	/*
	 * Provider "sched" reads per second (sched_source.h); 0: none.  Each
	 * vCPU's thread is its creator, from its stats fd's id (the VMM's
	 * running threads cannot be seen from outside): thread_runs_vcpu false.
	 */
	unsigned sched_hz;
	/*
	 * Before each generation is published, on the thread that publishes it:
	 * may relabel the built targets (ks_vm_build_set_label()), e.g. with
	 * QEMU's QOM paths.  @cancel_fd becomes readable once ks_attach_stop()
	 * is called: a hook that waits on another process must give up then.
	 * Return: false when some target is left without the label it should
	 * have (the VMM did not answer yet): the same fds are published again,
	 * labelled anew, at a rescan after 1, 2, 4 ... 32 s.  NULL: targets keep
	 * their KVM id strings.
	 */
	bool (*label)(void *label_arg, struct ks_vm_build *b, int cancel_fd);
	void *label_arg;
	/* Called once, from the monitor thread, when the VMM has exited. */
	void (*on_end)(void *arg);
	void *arg;
};

/*
 * ks_attach_start() - find and duplicate the VMM's stats fds, publish them,
 * start the monitor thread.  Errors say what to do: EPERM (ptrace access
 * rules, Yama ptrace_scope: run as the VMM's user or with CAP_SYS_PTRACE),
 * ENOENT (no such process), ENODATA (the VMM holds no stats fds: QEMU
 * < 8.1 or another VMM that closes them: use the preload shim or the
 * intake socket instead), ENOSYS (kernel without pidfd_getfd, < 5.6).
 */
int ks_attach_start(struct ks_engine *e, const struct ks_attach_opts *o,
		    struct ks_attach **out, struct kvmstats_error *err);

/* The segment file currently published (changes with each generation). */
const char *ks_attach_file(const struct ks_attach *a);

/* Stop monitoring and end the VM's segment; sets *@ap to NULL. */
void ks_attach_stop(struct ks_attach **ap);

#endif /* KVMSTATS_PUBLISHER_ATTACH_H */
