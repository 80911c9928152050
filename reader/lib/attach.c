/* SPDX-License-Identifier: MIT */
/*
 * attach.c - find, check, map and validate a segment; detach; reattach.
 *
 * The order matters: the file is checked (regular, owner, size) before it
 * is mapped, the ready gate is awaited (bounded) before anything else is
 * read, and the header and schema are copied into private memory before
 * they are validated, so nothing checked can change afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ks_err.h"
#include "ks_reader.h"
#include "ks_shmdir.h"
#include "ks_validate.h"

/* How long a reader waits for a publisher to open the ready gate. */
#define READY_TRIES		10
#define READY_SLEEP_NS		10000000L

void
kvmstats_attach_opts_init(struct kvmstats_attach_opts *opts)
{
	opts->dir = NULL;
	opts->owner = KVMSTATS_OWNER_DEFAULT;
}

int
kvmstats_segment_file_name(const char *vm, char *buf, size_t len)
{
	return ks_shm_file_name(vm, buf, len);
}

static int
open_segment(const char *dir, const char *file, struct kvmstats_error *err)
{
	char path[4096];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return ks_err(err, -ENAMETOOLONG, "segment path %s/%s is too long", dir, file);
	/* O_NONBLOCK: a FIFO planted under the name must not hang us. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
		return ks_err(err, -ENOENT, "no segment %s in %s: is a publisher running for this VM?",
			      file, dir);
	case EACCES:
		return ks_err(err, -EACCES,
			      "cannot read segment %s: permission denied (join the segment's group, or run as its owner)",
			      path);
	case ELOOP:
		return ks_err(err, -ELOOP, "segment %s is a symbolic link: refused (a publisher "
			      "never makes one; remove it if nobody should have)", path);
	default:
		return ks_err(err, -errno, "cannot open segment %s: %s", path, strerror(errno));
	}
}

/* Anybody can create files in /dev/shm: only trust the expected owner. */
static int
check_file(int fd, const char *file, uid_t owner, struct stat *st,
	   struct kvmstats_error *err)
{
	if (fstat(fd, st) < 0)
		return ks_err(err, -errno, "segment %s: fstat: %s", file, strerror(errno));
	if (!S_ISREG(st->st_mode))
		return ks_err(err, -EBADMSG, "segment %s is not a regular file", file);
	if (owner == KVMSTATS_OWNER_DEFAULT) {
		if (st->st_uid != 0 && st->st_uid != getuid())
			return ks_err(err, -EPERM,
				      "segment %s is owned by uid %u, expected root or uid %u: refused (set the expected owner to trust it)",
				      file, (unsigned)st->st_uid, (unsigned)getuid());
	} else if (st->st_uid != owner) {
		return ks_err(err, -EPERM, "segment %s is owned by uid %u, expected uid %u: refused",
			      file, (unsigned)st->st_uid, (unsigned)owner);
	}
	/*
	 * Whoever may write the file may also truncate it, and a truncated
	 * mapping is SIGBUS in every reader: trust no file its owner shares
	 * write access to.
	 */
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return ks_err(err, -EACCES,
			      "segment %s has mode %04o: writable by group or others, who could change or truncate it under its readers: refused (publish with a mode such as 0640)",
			      file, (unsigned)(st->st_mode & 07777));
	if ((uint64_t)st->st_size < sizeof(struct ks_shm_header))
		return ks_err(err, -EBADMSG, "segment %s: %lld bytes, shorter than the %zu-byte header",
			      file, (long long)st->st_size, sizeof(struct ks_shm_header));
	if ((uint64_t)st->st_size > SIZE_MAX / 2)
		return ks_err(err, -EBADMSG, "segment %s: %lld bytes is too large",
			      file, (long long)st->st_size);
	return 0;
}

static int
truncated(const struct kvmstats_segment *seg, struct kvmstats_error *err)
{
	return ks_err(err, -EIO, "segment %s was truncated under this reader: its data is "
		      "gone (its owner shrank the file)", seg->file);
}

/* Like Varnish's reader: a few short waits, then give up with -EAGAIN. */
static int
wait_ready(const struct kvmstats_segment *seg, struct kvmstats_error *err)
{
	const struct timespec pause = { 0, READY_SLEEP_NS };
	const struct ks_shm_header *hdr = seg->hdr;
	const char *file = seg->file;

	for (int i = 0; i < READY_TRIES && !atomic_load(&seg->faulted); i++) {
		/*
		 * Acquire: pairs with the release store of ready in
		 * ks_segment_publish(); everything the publisher wrote
		 * before it (schema, first samples) is visible after it.
		 */
		if (atomic_load_explicit((_Atomic uint32_t *)&hdr->ready,
					 memory_order_acquire) == KS_READY_MAGIC)
			return 0;
		nanosleep(&pause, NULL);
	}
	return ks_err(err, -EAGAIN,
		      "segment %s: not ready (its publisher is still building it, or died doing so): try again",
		      file);
}

/* Copy header (atomics with atomic loads) and schema, then validate the copy. */
static int
copy_schema(struct kvmstats_segment *seg, uint64_t file_size, struct kvmstats_error *err)
{
	struct ks_shm_header h;
	int rc;

	ks_header_snapshot(&h, seg->hdr);
	rc = ks_validate_header(&h, file_size, seg->file, 0, err);
	if (rc < 0)
		return rc;
	/* Rounded up to the alignment: data_off is a multiple of 4096. */
	seg->schema = aligned_alloc(KS_CACHELINE, h.data_off);
	if (seg->schema == NULL)
		return ks_err(err, -ENOMEM, "out of memory for a %llu-byte schema",
			      (unsigned long long)h.data_off);
	memcpy(seg->schema, &h, sizeof(h));
	memcpy((uint8_t *)seg->schema + sizeof(h), seg->map + sizeof(h), h.data_off - sizeof(h));
	return ks_validate_segment(seg->schema, h.data_off, file_size, seg->file, 0, err);
}

static int
map_segment(struct kvmstats_segment *seg, int fd, const struct stat *st,
	    struct kvmstats_error *err)
{
	void *p = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
	int rc;

	if (p == MAP_FAILED)
		return ks_err(err, -errno, "segment %s: mmap: %s", seg->file, strerror(errno));
	seg->map = p;
	seg->map_size = (size_t)st->st_size;
	seg->hdr = p;
	/* A truncation must not kill the reader: ks_sigbus.h. */
	rc = ks_bus_guard(p, seg->map_size, false, &seg->faulted, &seg->guard);
	if (rc < 0)
		return ks_err(err, rc, "segment %s: cannot guard the mapping against SIGBUS: %s",
			      seg->file, strerror(-rc));
	return 0;
}

static void
fill_info(struct kvmstats_segment *seg, const struct stat *st)
{
	const struct ks_shm_header *h = seg->schema;
	struct kvmstats_segment_info *in = &seg->info;

	in->segment_file = seg->file;
	in->vm_name = ks_copy_string(seg->schema, h->vm_name_off);
	/* Validated with the schema (ks_validate.c); a 1.0 or 1.1 segment has none. */
	seg->note = h->abi_minor >= 2 && h->note_len > 0
		    ? ks_copy_string(seg->schema, h->note_off) : "";
	in->publisher_pid = h->publisher_pid;
	in->owner = st->st_uid;
	in->abi_major = h->abi_major;
	in->abi_minor = h->abi_minor;
	in->incarnation = h->incarnation;
	in->generation = h->generation;
	in->created_mono_ns = h->created_mono_ns;
	in->poll_period_ns = h->poll_period_ns;
	in->segment_size = h->segment_size;
	in->ring_depth = h->ring_depth;
	in->nr_providers = h->nr_providers;
	in->nr_targets = h->nr_targets;
	/* The stats a caller can see: unknown ones were left out (schema.c). */
	in->nr_stats = seg->nr_stats;
}

static int
attach_fd(struct kvmstats_segment *seg, int fd, struct kvmstats_error *err)
{
	struct stat st;
	int rc;

	rc = check_file(fd, seg->file, seg->owner_opt, &st, err);
	if (rc == 0)
		rc = map_segment(seg, fd, &st, err);
	if (rc == 0)
		rc = wait_ready(seg, err);
	if (rc == 0)
		rc = copy_schema(seg, (uint64_t)st.st_size, err);
	/* Whatever was read after a truncation is zeros: say what happened. */
	if (atomic_load(&seg->faulted))
		rc = truncated(seg, err);
	if (rc == 0)
		rc = ks_reader_build_schema(seg, err);
	if (rc == 0) {
		seg->dev = st.st_dev;
		seg->ino = st.st_ino;
		fill_info(seg, &st);
	}
	return rc;
}

static int
attach_file(const char *dir, const char *file, uid_t owner,
	    struct kvmstats_segment **segp, struct kvmstats_error *err)
{
	struct kvmstats_segment *seg = calloc(1, sizeof(*seg));
	int fd, rc;

	if (seg == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	seg->magic = KS_MAGIC_SEGMENT;
	seg->fd = -1;
	atomic_init(&seg->faulted, false);
	seg->owner_opt = owner;
	seg->dir = strdup(dir);
	seg->file = strdup(file);
	if (seg->dir == NULL || seg->file == NULL) {
		kvmstats_detach(&seg);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	fd = open_segment(dir, file, err);
	if (fd < 0) {
		kvmstats_detach(&seg);
		return fd;
	}
	/* Kept: the liveness lock is asked through it (kvmstats_liveness()). */
	seg->fd = fd;
	rc = attach_fd(seg, fd, err);
	if (rc < 0) {
		kvmstats_detach(&seg);
		return rc;
	}
	ks_err_clear(err);
	*segp = seg;
	return 0;
}

int
kvmstats_attach(const char *vm, const struct kvmstats_attach_opts *opts,
		struct kvmstats_segment **segp, struct kvmstats_error *err)
{
	struct kvmstats_attach_opts def;
	char file[256], why[128];

	if (segp == NULL)
		return ks_err(err, -EINVAL, "no place for the segment handle");
	*segp = NULL;
	if (opts == NULL) {
		kvmstats_attach_opts_init(&def);
		opts = &def;
	}
	if (vm == NULL)
		return ks_err(err, -EINVAL, "no VM name");
	if (ks_vm_name_fault(ks_vm_name_of(vm), why, sizeof(why)) != NULL)
		return ks_err(err, -EINVAL, "\"%s\" is not a VM name: it %s", vm, why);
	if (ks_shm_file_name(vm, file, sizeof(file)) < 0)
		return ks_err(err, -EINVAL, "\"%s\" is not a VM or segment name", vm);
	return attach_file(ks_shm_dir(opts->dir), file, opts->owner, segp, err);
}

void
kvmstats_detach(struct kvmstats_segment **segp)
{
	struct kvmstats_segment *seg;

	if (segp == NULL || *segp == NULL)
		return;
	seg = *segp;
	CHECK_SEGMENT(seg);	/* detached twice, or never attached */
	*segp = NULL;
	ks_bus_unguard(&seg->guard);
	if (seg->map != NULL)
		munmap((void *)seg->map, seg->map_size);
	if (seg->fd >= 0)
		close(seg->fd);
	ks_reader_free_schema(seg);
	free(seg->schema);
	free(seg->dir);
	free(seg->file);
	seg->magic = 0;
	free(seg);
}

int
kvmstats_reattach(struct kvmstats_segment **segp, struct kvmstats_error *err)
{
	struct kvmstats_segment *old, *seg = NULL;
	int rc;

	if (segp == NULL)
		return ks_err(err, -EINVAL, "reattach: no segment");
	CHECK_SEGMENT(*segp);
	old = *segp;
	rc = attach_file(old->dir, old->file, old->owner_opt, &seg, err);
	if (rc < 0)
		return rc;
	kvmstats_detach(&old);
	*segp = seg;
	return 0;
}
