/* SPDX-License-Identifier: MIT */
/* debugfs_source.c - a VM's "kvm" block from KVM's debugfs (debugfs_source.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "debugfs_source.h"
#include "ks_err.h"
#include "ks_log.h"

#define DEBUGFS_MAGIC_NR	0x64626720	/* linux/magic.h DEBUGFS_MAGIC */

/* ---- the descriptors, from a probe VM --------------------------------- */

static int
ioctl_retry(int fd, unsigned long req, unsigned long arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r;
}

int
ks_kvm_vm_schema(const char *kvm_dev, struct ks_statsfd_schema *out, struct kvmstats_error *err)
{
	int kvm, vm = -1, sfd = -1, ret;

	memset(out, 0, sizeof(*out));
	kvm = open(kvm_dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return ks_err(err, -errno, "cannot open %s for a probe VM, whose stats fd says "
			      "what each VM stat is: %s", kvm_dev, strerror(errno));
	vm = ioctl_retry(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		ret = ks_err(err, -errno, "KVM_CREATE_VM of a probe VM: %s", strerror(errno));
	else if ((sfd = ioctl_retry(vm, KVM_GET_STATS_FD, 0)) < 0)
		ret = ks_err(err, -errno, "KVM_GET_STATS_FD of a probe VM: %s%s", strerror(errno),
			     errno == ENOTTY || errno == EINVAL ? " (Linux before 5.14)" : "");
	else
		ret = ks_statsfd_parse(sfd, "the probe VM's stats fd", out, err);
	if (sfd >= 0)
		close(sfd);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return ret;
}

/* ---- the VM's directory --------------------------------------------- */

/* Is @tid a thread of @pid, now? */
static bool
thread_of(pid_t pid, unsigned long tid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/task/%lu", (int)pid, tid);
	return stat(path, &st) == 0;
}

/* Why <root>/kvm cannot be opened, as something to do. */
static int
explain_kvm_dir(const char *root, int e, struct kvmstats_error *err)
{
	struct statfs sf;

	if (e == ENOENT && (statfs(root, &sf) < 0 || sf.f_type != DEBUGFS_MAGIC_NR))
		return ks_err(err, -ENOENT, "KVM's debugfs is not mounted at %s (mount -t "
			      "debugfs none %s)", root, root);
	if (e == ENOENT)
		return ks_err(err, -ENOENT, "%s has no kvm directory: is the kvm module loaded?",
			      root);
	if (e == EACCES)
		return ks_err(err, -EACCES, "%s/kvm is readable by root only", root);
	if (e == EPERM)
		return ks_err(err, -EPERM, "%s/kvm: kernel lockdown forbids debugfs", root);
	return ks_err(err, -e, "%s/kvm: %s", root, strerror(e));
}

int
ks_debugfs_vm_dir(const char *root, bool any_fs, pid_t pid, int vm_fd, int *out_fd,
		  char *path, size_t path_len, pid_t *creator, struct kvmstats_error *err)
{
	char kvm_path[4096], want[32];
	struct statfs sf;
	struct dirent *de;
	int kvm_dir, found = -1, ret = 0;
	size_t wl;
	DIR *d;

	snprintf(kvm_path, sizeof(kvm_path), "%s/kvm", root);
	kvm_dir = open(kvm_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (kvm_dir < 0)
		return explain_kvm_dir(root, errno, err);
	if (!any_fs && (fstatfs(kvm_dir, &sf) < 0 || sf.f_type != DEBUGFS_MAGIC_NR)) {
		close(kvm_dir);
		return ks_err(err, -EXDEV, "%s is not on debugfs: VM stats are read only from "
			      "KVM's debugfs (mount -t debugfs none %s)", kvm_path, root);
	}
	d = fdopendir(kvm_dir);
	if (d == NULL) {
		close(kvm_dir);
		return ks_err(err, -errno, "%s: %s", kvm_path, strerror(errno));
	}
	/*
	 * "<tid>-<fd>": the thread that created the VM (the main thread, for
	 * QEMU) need not be the process; it must be one of its threads now,
	 * or another process's VM could carry the name of an exited one.
	 */
	wl = (size_t)snprintf(want, sizeof(want), "-%d", vm_fd);
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		unsigned long tid;
		char *end;

		if (nl <= wl || strcmp(de->d_name + nl - wl, want) != 0 ||
		    de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		errno = 0;
		tid = strtoul(de->d_name, &end, 10);
		if (errno != 0 || end != de->d_name + nl - wl || !thread_of(pid, tid))
			continue;
		if (found >= 0) {
			ret = ks_err(err, -ENOTUNIQ, "%s: two directories name VM fd %d of "
				     "process %d", kvm_path, vm_fd, (int)pid);
			break;
		}
		found = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (found < 0) {
			ret = ks_err(err, -errno, "%s/%s: %s", kvm_path, de->d_name,
				     strerror(errno));
			break;
		}
		snprintf(path, path_len, "%s/%s", kvm_path, de->d_name);
		*creator = (pid_t)tid;
	}
	closedir(d);
	if (ret == 0 && found < 0)
		ret = ks_err(err, -ENOENT, "%s has no directory for VM fd %d of process %d "
			     "(<thread>-%d)", kvm_path, vm_fd, (int)pid, vm_fd);
	if (ret < 0) {
		if (found >= 0)
			close(found);
		return ret;
	}
	*out_fd = found;
	return 0;
}

/* ---- the source --------------------------------------------------------- */

struct debugfs_ctx {
	int dirfd;
	uint32_t n;
	struct ks_seg_stat_def *stats;
	char **names;			/* one file per stat, value_index order */
};

/* A file a sweep can read without waiting: a regular file, opened for reading only. */
static int
open_stat(int dirfd, const char *name)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EBADF;
	}
	return fd;
}

/*
 * One value, "1234\n" as debugfs' simple attributes print a u64, and
 * nothing else.  Such a file cannot seek (nonseekable_open()) and prints
 * its value once per open, so each read opens it anew.
 */
static int
read_u64(int dirfd, const char *name, uint64_t *v)
{
	char buf[32];
	int fd = open_stat(dirfd, name);
	ssize_t n;
	uint64_t x = 0;
	ssize_t i;

	if (fd < 0)
		return fd;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	if (n == 0 || buf[0] < '0' || buf[0] > '9')
		return -EBADMSG;
	for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
		unsigned d = (unsigned)(buf[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -EOVERFLOW;
		x = x * 10 + d;
	}
	if (i < n && !(buf[i] == '\n' && i + 1 == n))
		return -EBADMSG;
	*v = x;
	return 0;
}

static int
debugfs_read(void *ctx, _Atomic uint64_t *dst, uint32_t words, uint64_t sweep)
{
	struct debugfs_ctx *c = ctx;

	(void)sweep;
	if (words < c->n)
		return -EINVAL;
	for (uint32_t i = 0; i < c->n; i++) {
		uint64_t v;
		int r = read_u64(c->dirfd, c->names[i], &v);

		if (r < 0)
			return r;	/* the engine marks the slot stale */
		atomic_store_explicit(&dst[i], v, memory_order_relaxed);
	}
	return 0;
}

static void
debugfs_release(void *ctx)
{
	struct debugfs_ctx *c = ctx;

	if (c == NULL)
		return;
	if (c->names)
		for (uint32_t i = 0; i < c->n; i++)
			free(c->names[i]);
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->stats);
	free(c->names);
	free(c);
}

static const struct ks_source_ops debugfs_ops = {
	.read = debugfs_read,
	.release = debugfs_release,
};

int
ks_debugfs_block(int dirfd, const char *path, const struct ks_statsfd_schema *schema,
		 ks_log_fn warn, struct ks_block_def *out, uint32_t *left_out,
		 struct kvmstats_error *err)
{
	struct debugfs_ctx *c = calloc(1, sizeof(*c));
	uint32_t nd = schema->nr_desc, locked = 0;

	if (c == NULL) {
		close(dirfd);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	c->dirfd = dirfd;
	c->stats = calloc(nd ? nd : 1, sizeof(*c->stats));
	c->names = calloc(nd ? nd : 1, sizeof(*c->names));
	if (!c->stats || !c->names) {
		debugfs_release(c);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < nd; i++) {
		const struct ks_kvm_desc *d = &schema->desc[i];
		uint64_t v;
		int r;

		if (d->size != 1) {
			ks_logf(warn, "%s: VM stat %s left out: debugfs shows one of its %u values",
				path, d->name, d->size);
			continue;
		}
		r = read_u64(dirfd, d->name, &v);
		if (r == -EPERM) {
			locked++;	/* said once, below: it is one cause */
			continue;
		}
		if (r < 0) {
			ks_logf(warn, "%s: VM stat %s left out: %s", path, d->name,
				r == -EBADF ? "not a regular file" : strerror(-r));
			continue;
		}
		c->names[c->n] = strdup(d->name);
		if (c->names[c->n] == NULL) {
			debugfs_release(c);
			return ks_err(err, -ENOMEM, "out of memory");
		}
		c->stats[c->n] = (struct ks_seg_stat_def) {
			.name = c->names[c->n],
			.type = d->type, .unit = d->unit, .base = d->base,
			.exponent = d->exponent, .size = 1, .bucket_size = d->bucket_size,
			.value_index = c->n,
		};
		c->n++;
	}
	/*
	 * Kernel lockdown (integrity mode too) lets debugfs files be opened only
	 * when nobody may write them; KVM makes its cumulative and peak stats
	 * writable (a write resets them), so those are the ones refused.
	 */
	if (locked > 0)
		ks_logf(warn, "%s: %u VM stats left out: kernel lockdown forbids opening debugfs "
			"files that can be written, as KVM's cumulative and peak stats can",
			path, locked);
	if (c->n == 0) {
		debugfs_release(c);
		return ks_err(err, -ENOENT, "%s: none of this kernel's %u VM stats can be read "
			      "there%s", path, nd, locked ? " (kernel lockdown)" : "");
	}
	if (left_out != NULL)
		*left_out = nd - c->n;
	*out = (struct ks_block_def) {
		.provider = "kvm",
		.nr_stats = c->n,
		.stats = c->stats,
		.words = c->n,
		.ops = &debugfs_ops,
		.ctx = c,
	};
	return 0;
}
