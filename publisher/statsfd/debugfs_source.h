/* SPDX-License-Identifier: MIT */
/*
 * debugfs_source.h - a VM's stats from KVM's debugfs, for a VMM that holds
 * no VM stats fd.
 *
 * QEMU opens a VM stats fd only for the moment of each query-stats, and
 * KVM_GET_STATS_FD on a VM fd taken from another process fails (EIO: KVM
 * checks the caller's mm), so an attached QEMU gives no VM target.  KVM
 * also shows each VM's stats in debugfs, one file per stat, in a directory
 * "<pid>-<vm fd>" named after the thread that created the VM and the VM's
 * fd number (virt/kvm/kvm_main.c, kvm_create_vm_debugfs()).  Those files
 * say values only, as decimal text; what each stat is (type, unit, scale)
 * comes from a VM stats fd of our own, a probe VM made and closed at once:
 * every VM of one kernel shares one descriptor table.
 *
 * What it costs and when it is unavailable: per VM stat and sweep (16 on
 * x86 today) an openat(), a read() and a close(), since such a file cannot
 * seek and prints its value once per open; debugfs must
 * be mounted (mount -t debugfs none /sys/kernel/debug), readable (root:
 * its top directory is 0700), and allowed by kernel lockdown: in
 * confidentiality mode not at all, in integrity mode only for files nobody
 * may write, which leaves out KVM's cumulative and peak stats (writable:
 * a write resets them).  Creating the probe VM needs /dev/kvm.
 * Histograms are left out: debugfs shows one word of them.
 */
#ifndef KVMSTATS_PUBLISHER_DEBUGFS_SOURCE_H
#define KVMSTATS_PUBLISHER_DEBUGFS_SOURCE_H

#include <stdbool.h>
#include <sys/types.h>

#include "engine.h"
#include "statsfd.h"

#define KS_DEBUGFS_DEFAULT	"/sys/kernel/debug"

/*
 * ks_kvm_vm_schema() - the VM stats descriptors of this kernel, from a
 * probe VM (@kvm_dev: "/dev/kvm", or another path for tests).
 * Return: 0 with @out filled (ks_statsfd_schema_clear()), or a negative
 * errno with @err saying why.
 */
int ks_kvm_vm_schema(const char *kvm_dev, struct ks_statsfd_schema *out,
		     struct kvmstats_error *err);

/*
 * ks_debugfs_vm_dir() - the debugfs directory of the VM that process @pid
 * holds as fd @vm_fd, under @root ("/sys/kernel/debug"): "kvm/<tid>-<fd>"
 * for a thread <tid> of @pid (the one that created the VM).  Opened as an
 * O_PATH|O_DIRECTORY fd in *@out_fd, its path in @path, the creating
 * thread (the id a VM stats fd would say: kvm-<tid>) in *@creator.  <root>/kvm
 * must be on debugfs: any other filesystem (a FUSE or network one could
 * stall the sweep, any directory could forge values) is refused, unless
 * @any_fs, for the tests' imitation of debugfs.  Return: 0, or a
 * negative errno with @err saying what is missing and what to do.
 */
int ks_debugfs_vm_dir(const char *root, bool any_fs, pid_t pid, int vm_fd, int *out_fd,
		      char *path, size_t path_len, pid_t *creator, struct kvmstats_error *err);

/*
 * ks_debugfs_block() - the "kvm" block of a VM target, read from debugfs
 * directory @dirfd (taken: closed on release) with the descriptors of
 * @schema (copied).  A stat without a readable file there, or a
 * histogram, is left out and said through @warn; *@left_out (if not NULL)
 * counts them.  Return: 0, or a negative errno with
 * @err filled (-ENOENT: not one stat could be opened).
 */
int ks_debugfs_block(int dirfd, const char *path, const struct ks_statsfd_schema *schema,
		     ks_log_fn warn, struct ks_block_def *out, uint32_t *left_out,
		     struct kvmstats_error *err);

#endif /* KVMSTATS_PUBLISHER_DEBUGFS_SOURCE_H */
