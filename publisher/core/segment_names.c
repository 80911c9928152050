/* SPDX-License-Identifier: MIT */
/*
 * segment_names.c - who may have a segment's public name (segment_names.h).
 *
 * The segment directory is shared (/dev/shm is world-writable): a name
 * may hold anything, planted by anybody.  The publisher takes a name only
 *
 *   - when it is free: renameat2(RENAME_NOREPLACE), which fails rather
 *     than replace a file that appeared meanwhile;
 *   - or from its own previous generation (the same inode);
 *   - or from a kvmstats segment of its own uid whose publisher ended it
 *     (state ended or superseded) or died: nobody holds the segment's
 *     liveness lock (ks_liveness.h), which the kernel drops when its
 *     publisher goes, however it goes.  That is how a restarted publisher
 *     takes its VM's name back.
 *
 * Anything else stays: a file that is not a regular file or not a
 * segment, another uid's file, a live publisher's segment.  Replacing
 * uses renameat2(RENAME_EXCHANGE): the old file moves to our hidden
 * temporary name, where we check that it is the very file we judged
 * before we delete it; if another file got in between, the exchange is
 * undone.  Filesystems without renameat2 flags (EINVAL) fall back to
 * link(2), which is as atomic as NOREPLACE, and for replacing to a plain
 * rename(2) right after the judgement.
 *
 * Giving a name back (the VM ended) moves it aside first and deletes it
 * only if it is the file we created, so that not even a file that took
 * the name a moment before is ever deleted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmstats/reader.h"
#include "ks_abi.h"
#include "ks_err.h"
#include "ks_liveness.h"
#include "ks_shmdir.h"
#include "ks_time.h"
#include "segment_names.h"
#include "segment_writer.h"

#define TAKE_TRIES	8	/* the name changed under us this often: give up */

char *
ks_name_tmp(const char *file)
{
	uint64_t rnd;
	char *name;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = ks_mono_ns() * 0x9e3779b97f4a7c15ull;
	if (asprintf(&name, KS_TMP_PREFIX "%s.%d.%016llx", file, (int)getpid(),
		     (unsigned long long)rnd) < 0)
		return NULL;
	return name;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Is @name in @dirfd the file behind @fd? */
static bool
name_is(int dirfd, const char *name, int fd)
{
	struct stat a, b;

	return fd >= 0 && fstat(fd, &a) == 0 &&
	       fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && same_file(&a, &b);
}

/* ---- judging what has the name ---------------------------------------- */

static int
refuse(struct kvmstats_error *err, const char *dir, const char *file, const char *why)
{
	return ks_err(err, -EEXIST, "%s/%s %s: not replacing it; remove it, or give this VM "
		      "another name", dir, file, why);
}

/*
 * What the open file @fd at the name is, for a publisher of our uid.
 * Return: 0 it may be replaced, or -EEXIST (why in @err), or -errno.
 */
static int
judge_segment(int fd, const struct stat *st, const char *dir, const char *file,
	      struct kvmstats_error *err)
{
	struct ks_shm_header h;
	char why[160];
	uint32_t state;
	int held;

	if (st->st_uid != geteuid()) {
		snprintf(why, sizeof(why), "belongs to uid %u", (unsigned)st->st_uid);
		return refuse(err, dir, file, why);
	}
	/* pread, not mmap: a short or hostile file cannot fault us here. */
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, KS_ABI_MAGIC, KS_ABI_MAGIC_LEN) != 0)
		return refuse(err, dir, file, "is not a kvmstats segment");
	state = atomic_load_explicit(&h.state, memory_order_relaxed);
	if (state == KS_STATE_ENDED || state == KS_STATE_SUPERSEDED)
		return 0;		/* final: its publisher is done with it */
	held = ks_liveness_held(fd);
	if (held < 0)
		return ks_err(err, held, "%s/%s: cannot tell whether its publisher lives: %s",
			      dir, file, strerror(-held));
	if (held) {
		snprintf(why, sizeof(why), "is the segment of a live publisher (pid %d)",
			 (int)h.publisher_pid);
		return refuse(err, dir, file, why);
	}
	if (h.abi_major == KS_ABI_MAJOR && h.abi_minor == 0) {
		snprintf(why, sizeof(why), "is an ABI 1.0 segment, whose publisher (pid %d) "
			 "holds no liveness lock, so it may still live", (int)h.publisher_pid);
		return refuse(err, dir, file, why);
	}
	return 0;		/* dead: nobody holds its lock */
}

/*
 * May @file be replaced?  Fills *@st with the file that was judged.
 * Return: 0 yes, -EAGAIN it vanished meanwhile (try the name again),
 * -EEXIST no (why in @err), or another -errno.
 */
static int
judge(int dirfd, const char *dir, const char *file, int pred_fd, struct stat *st,
      struct kvmstats_error *err)
{
	struct stat pred;
	int fd, rc;

	fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -EAGAIN;
		if (errno == ELOOP)
			return refuse(err, dir, file, "is a symbolic link");
		if (errno == EACCES || errno == EPERM)
			return refuse(err, dir, file, "exists and is not readable by us");
		return ks_err(err, -errno, "%s/%s: %s", dir, file, strerror(errno));
	}
	if (fstat(fd, st) < 0) {
		rc = ks_err(err, -errno, "%s/%s: fstat: %s", dir, file, strerror(errno));
	} else if (!S_ISREG(st->st_mode)) {
		rc = refuse(err, dir, file, "is not a regular file");
	} else if (pred_fd >= 0 && fstat(pred_fd, &pred) == 0 && same_file(st, &pred)) {
		rc = 0;		/* our own previous generation */
	} else {
		rc = judge_segment(fd, st, dir, file, err);
	}
	close(fd);
	return rc;
}

/* ---- taking the name ----------------------------------------------------- */

/* No renameat2 flags here (EINVAL): link(2) is NOREPLACE on every filesystem. */
static int
take_free_by_link(int dirfd, const char *tmp, const char *file)
{
	if (linkat(dirfd, tmp, dirfd, file, 0) < 0)
		return -errno;
	(void)unlinkat(dirfd, tmp, 0);
	return 0;
}

static int
take_free(int dirfd, const char *tmp, const char *file)
{
	if (renameat2(dirfd, tmp, dirfd, file, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL)
		return take_free_by_link(dirfd, tmp, file);
	return -errno;
}

/*
 * Swap @tmp (ours) with @file (judged as @old); delete the old file if it
 * is the one judged.  Return: 0 done, -EAGAIN swapped back (another file
 * got the name: judge again), or -errno.
 */
static int
take_over(int dirfd, const char *tmp, const char *file, const struct stat *old)
{
	struct stat now;

	if (renameat2(dirfd, tmp, dirfd, file, RENAME_EXCHANGE) < 0) {
		if (errno == ENOENT)
			return -EAGAIN;		/* the name went meanwhile */
		if (errno != EINVAL)
			return -errno;
		/* No RENAME_EXCHANGE: replace right after the judgement. */
		return renameat(dirfd, tmp, dirfd, file) < 0 ? -errno : 0;
	}
	/* The old file is at our temporary name now. */
	if (fstatat(dirfd, tmp, &now, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;	/* somebody deleted it already */
	if (same_file(&now, old)) {
		(void)unlinkat(dirfd, tmp, 0);
		return 0;
	}
	/* Not the file we judged: give it its name back, and judge again. */
	if (renameat2(dirfd, tmp, dirfd, file, RENAME_EXCHANGE) < 0)
		return -errno;
	return -EAGAIN;
}

int
ks_name_take(int dirfd, const char *dir, const char *tmp, const char *file, int pred_fd,
	     struct kvmstats_error *err)
{
	struct stat old;
	int rc;

	for (int tries = 0; tries < TAKE_TRIES; tries++) {
		rc = take_free(dirfd, tmp, file);
		if (rc == 0)
			return 0;
		if (rc != -EEXIST)
			return ks_err(err, rc, "cannot publish segment %s/%s: rename: %s", dir,
				      file, strerror(-rc));
		rc = judge(dirfd, dir, file, pred_fd, &old, err);
		if (rc == -EAGAIN)
			continue;
		if (rc < 0)
			return rc;
		rc = take_over(dirfd, tmp, file, &old);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN)
			return ks_err(err, rc, "cannot publish segment %s/%s: rename: %s", dir,
				      file, strerror(-rc));
	}
	return ks_err(err, -EBUSY, "cannot publish segment %s/%s: the name changed under us "
		      "%d times in a row; is another program renaming files there?", dir, file,
		      TAKE_TRIES);
}

/* ---- giving it back ------------------------------------------------------ */

int
ks_name_release(int dirfd, const char *name, int our_fd)
{
	char *aside;
	int rc = 0;

	if (!name_is(dirfd, name, our_fd))
		return -ENOENT;		/* a newer generation or a successor: theirs */
	aside = ks_name_tmp(name);
	if (aside == NULL)
		return -ENOMEM;
	if (renameat2(dirfd, name, dirfd, aside, RENAME_NOREPLACE) < 0) {
		rc = -errno;
		/* No renameat2 flags: the check above is all we can do. */
		if (rc == -EINVAL)
			rc = unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	} else if (name_is(dirfd, aside, our_fd)) {
		rc = unlinkat(dirfd, aside, 0) < 0 ? -errno : 0;
	} else {
		/* Another file took the name just before: it keeps it. */
		rc = renameat2(dirfd, aside, dirfd, name, RENAME_NOREPLACE) < 0 ? -errno : -ENOENT;
	}
	free(aside);
	return rc;
}

/* ---- a publisher's start: the files its dead predecessors left --------- */

/*
 * Is @name a file a dead publisher of our uid left: a regular file of
 * ours with the segment magic, ABI 1.1 or later (so its publisher held the
 * liveness lock), whose lock nobody holds, and, under a public name, not
 * ended (an ended one was kept on purpose, --keep)?  *@pid: its publisher.
 */
static bool
left_by_dead(int dirfd, const char *name, bool public_name, struct stat *st, pid_t *pid)
{
	struct ks_shm_header h;
	uint32_t state;
	bool dead = false;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && st->st_uid == geteuid() &&
	    pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    memcmp(h.magic, KS_ABI_MAGIC, KS_ABI_MAGIC_LEN) == 0 &&
	    h.abi_major == KS_ABI_MAJOR && h.abi_minor >= 1) {
		state = atomic_load_explicit(&h.state, memory_order_relaxed);
		*pid = h.publisher_pid;
		dead = !(public_name && (state == KS_STATE_ENDED || state == KS_STATE_SUPERSEDED)) &&
		       ks_liveness_held(fd) == 0;
	}
	close(fd);
	return dead;
}

int
ks_segment_reap(const char *dir, ks_log_fn log)
{
	const char *path = ks_shm_dir(dir);
	struct dirent *de;
	int removed = 0;
	DIR *d;

	d = opendir(path);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		bool public_name = strncmp(de->d_name, KVMSTATS_SEGMENT_PREFIX,
					   strlen(KVMSTATS_SEGMENT_PREFIX)) == 0;
		struct stat st, now;
		pid_t pid;

		if (!public_name && strncmp(de->d_name, KS_TMP_PREFIX, strlen(KS_TMP_PREFIX)) != 0)
			continue;
		if (!left_by_dead(dirfd(d), de->d_name, public_name, &st, &pid))
			continue;
		/* Still that file (a same-uid program could have replaced it)? */
		if (fstatat(dirfd(d), de->d_name, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !same_file(&st, &now) || unlinkat(dirfd(d), de->d_name, 0) < 0)
			continue;
		removed++;
		ks_logf(log, "removed %s/%s: its publisher (pid %d) is gone and did not end it",
			path, de->d_name, (int)pid);
	}
	closedir(d);
	return removed;
}

int
ks_segment_name_check(const char *dir, const char *vm_name, struct kvmstats_error *err)
{
	const char *path = ks_shm_dir(dir);
	char file[256];
	struct stat st;
	int dirfd, rc;

	if (ks_shm_file_name(vm_name, file, sizeof(file)) < 0)
		return ks_err(err, -EINVAL, "VM name \"%s\" cannot name a segment", vm_name);
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return ks_err(err, -errno, "cannot open the segment directory %s: %s", path,
			      strerror(errno));
	rc = judge(dirfd, path, file, -1, &st, err);
	close(dirfd);
	return rc == -EAGAIN ? 0 : rc;		/* -EAGAIN: nothing has the name */
}
