/* SPDX-License-Identifier: MIT */
/*
 * attach.c - publish the stats fds of a VMM that is already running.
 *
 * The VMM's stats fds are found by their /proc/PID/fd link names and
 * duplicated with pidfd_getfd(); our duplicates go to the engine, which
 * closes them.  A monitor thread polls the pidfd (readable: the VMM exited)
 * with a timeout of rescan_ms, and on each timeout rescans for hotplug.
 *
 * Only the monitor thread touches a->vm and the fd sets after start;
 * ks_attach_stop() joins it before touching them itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attach.h"
#include "debugfs_source.h"
#include "ks_err.h"
#include "ks_time.h"
#include "statsfd_source.h"
#include "statsfd.h"

#define RESCAN_MS_DEFAULT	1000
#define START_SCAN_TRIES	5	/* scans at start when every fd raced away */
#define LINK_MAX_LEN		128


/* Same numbers on every architecture since the 5.1 syscall table unification. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open		434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd		438
#endif

/* One stats fd of the VMM. */
struct stats_ref {
	enum ks_target_kind kind;
	uint32_t vcpu;			/* KS_VCPU_INDEX_NONE for the VM */
	int fd;				/* the VMM's fd number */
	int dup;			/* ours (published sets only), else -1 */
};

struct ref_set {
	struct stats_ref *v;
	uint32_t n, cap;
	uint32_t nr_vm_fds;		/* the VMM's VM fds ("anon_inode:kvm-vm") */
	int vm_fd;			/* the last of them */
};

struct ks_attach {
	struct ks_engine *e;
	pid_t pid;
	int pidfd;
	int wakefd;			/* ks_attach_stop() wakes the monitor */
	char *vm_name;
	char *debugfs;			/* NULL: no VM stats from debugfs */
	bool debugfs_any_fs;
	char *kvm_dev;
	struct ks_statsfd_schema vm_schema;	/* this kernel's VM stats, once probed */
	bool have_vm_schema;
	char last_note[KS_NOTE_MAX + 1];	/* said once until it changes */
	char comm[32];
	char seg_file[256];
	unsigned rescan_ms;
	ks_log_fn warn;
	unsigned sched_hz;		/* 0: no sched provider */
	void (*on_end)(void *arg);
	void *arg;
	bool (*label)(void *label_arg, struct ks_vm_build *b, int cancel_fd);
	void *label_arg;
	unsigned label_tries;		/* generations published while QEMU did not answer */
	uint64_t label_due_ns;		/* when to publish again for them; 0: no need */
	struct ks_engine_vm *vm;	/* NULL once ended */
	struct ref_set published;	/* what the current generation holds */
	struct ref_set pending;		/* a changed set seen once, not yet applied */
	bool warned_empty;
	bool thread_started;
	bool stopped_in_monitor;	/* ks_attach_stop() called from on_end */
	pthread_t thread;
};

/* ---- system calls glibc < 2.36 does not wrap -------------------------- */

static int
sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int
sys_pidfd_getfd(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

/* Return: 0 same open file, > 0 different, < 0 unknown (no kcmp, no access). */
static int
same_file(pid_t pid, int our_fd, int their_fd)
{
	long r = syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, our_fd, their_fd);

	return r < 0 ? -1 : (int)r;
}

/* ---- fd sets ------------------------------------------------------------ */

static void
set_clear(struct ref_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int
set_add(struct ref_set *s, const struct stats_ref *r)
{
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? 2 * s->cap : 16;
		struct stats_ref *v = realloc(s->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *r;
	return 0;
}

/* VM first, then vCPUs by id; one fd of a kind and id, the lowest. */
static int
ref_cmp(const void *pa, const void *pb)
{
	const struct stats_ref *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind == KS_TARGET_VM ? -1 : 1;
	if (a->vcpu != b->vcpu)
		return a->vcpu < b->vcpu ? -1 : 1;
	return (a->fd > b->fd) - (a->fd < b->fd);
}

static void
set_sort_unique(struct ref_set *s)
{
	uint32_t i, n = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), ref_cmp);
	/* A VMM may briefly hold two fds of one target (QEMU's query-stats). */
	for (i = 0; i < s->n; i++)
		if (n == 0 || s->v[n - 1].kind != s->v[i].kind ||
		    s->v[n - 1].vcpu != s->v[i].vcpu)
			s->v[n++] = s->v[i];
	s->n = n;
}

static bool
same_targets(const struct ref_set *a, const struct ref_set *b)
{
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->v[i].kind != b->v[i].kind || a->v[i].vcpu != b->v[i].vcpu)
			return false;
	return true;
}

/* ---- finding the stats fds ---------------------------------------------- */

static bool
parse_link(const char *link, struct stats_ref *r)
{
	return ks_statsfd_link_parse(link, &r->kind, &r->vcpu);
}

static int
read_link_at(int dirfd, const char *name, char *buf, size_t len)
{
	ssize_t n = readlinkat(dirfd, name, buf, len - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* One /proc/PID/fd entry into @s if it is a stats fd; gone entries are skipped. */
static int
scan_entry(int dirfd, const char *name, struct ref_set *s)
{
	struct stats_ref r = { .dup = -1 };
	char link[LINK_MAX_LEN];
	char *end;
	long fd;
	int ret;

	fd = strtol(name, &end, 10);
	if (name[0] < '0' || name[0] > '9' || *end != '\0' || fd > INT32_MAX)
		return 0;
	ret = read_link_at(dirfd, name, link, sizeof(link));
	if (ret == -ENOENT)
		return 0;		/* closed since readdir() */
	if (ret < 0)
		return ret;
	if (strcmp(link, "anon_inode:kvm-vm") == 0) {
		/* Not read: it names the VM's debugfs directory (debugfs_source.h). */
		s->nr_vm_fds++;
		s->vm_fd = (int)fd;
		return 0;
	}
	if (!parse_link(link, &r))
		return 0;
	r.fd = (int)fd;
	return set_add(s, &r);
}

/*
 * scan_fds() - the VMM's stats fds, sorted.  Return: 0, -ESRCH (the process
 * is gone), -EPERM (no access), or another negative errno.
 */
static int
scan_fds(pid_t pid, struct ref_set *s)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? -ESRCH : errno == EACCES ? -EPERM : -errno;
	while (ret == 0 && (errno = 0, de = readdir(d)) != NULL)
		ret = scan_entry(dirfd(d), de->d_name, s);
	if (ret == 0 && errno != 0)
		ret = errno == ENOENT ? -ESRCH : -errno;
	closedir(d);
	if (ret == -EACCES)
		ret = -EPERM;
	if (ret < 0)
		set_clear(s);
	else
		set_sort_unique(s);
	return ret;
}

/* ---- errors that say what to do ----------------------------------------- */

static void
read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(buf, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, len, "?");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* Yama also restricts PTRACE_MODE_ATTACH checks, which pidfd_getfd() makes. */
static void
yama_hint(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	int scope;

	buf[0] = '\0';
	if (f == NULL)
		return;
	if (fscanf(f, "%d", &scope) == 1)
		snprintf(buf, len, "; /proc/sys/kernel/yama/ptrace_scope is %d (0: classic "
			 "rules; 1: only the VMM's ancestors or CAP_SYS_PTRACE; 2: only "
			 "CAP_SYS_PTRACE; 3: no attaching at all)", scope);
	fclose(f);
}

/* The first number of the "@key" line of /proc/@pid/status, or -1. */
static long long
status_field(const char *pid, const char *key, int base)
{
	size_t klen = strlen(key);
	char path[64], line[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoll(line + klen + 1, NULL, base);
			break;
		}
	}
	fclose(f);
	return v;
}

static long
proc_uid(pid_t pid)
{
	char p[16];

	snprintf(p, sizeof(p), "%d", (int)pid);
	return (long)status_field(p, "Uid", 10);
}

/* Whether CAP_SYS_PTRACE is in our effective set (from /proc/self/status). */
static bool
have_cap_sys_ptrace(void)
{
	long long eff = status_field("self", "CapEff", 16);

	return eff > 0 && (eff & (1ll << 19)) != 0;	/* CAP_SYS_PTRACE is 19 */
}

static int
err_perm(const struct ks_attach *a, const char *what, struct kvmstats_error *err)
{
	char path[64], yama[200];
	struct stat st;
	long uid = -1;

	/*
	 * Its real uid from status (readable by anybody): /proc/PID of a
	 * process that is not dumpable belongs to root, whoever runs it.
	 */
	uid = proc_uid(a->pid);
	snprintf(path, sizeof(path), "/proc/%d", (int)a->pid);
	if (uid < 0 && stat(path, &st) == 0)
		uid = (long)st.st_uid;
	yama_hint(yama, sizeof(yama));
	/* Running as its user, or privileged, would not help: say what else refuses. */
	if (uid == (long)geteuid() || have_cap_sys_ptrace())
		return ks_err(err, -EPERM,
			      "process %d (%s, uid %ld): %s: permission denied by the ptrace "
			      "access mode check, although we are uid %u%s: the process may not "
			      "be dumpable (a set-uid program, or prctl(PR_SET_DUMPABLE, 0)), be "
			      "in another user namespace, or a security module (Yama, SELinux, "
			      "AppArmor) may forbid it%s",
			      (int)a->pid, a->comm, uid, what, (unsigned)geteuid(),
			      have_cap_sys_ptrace() ? " with CAP_SYS_PTRACE" : "", yama);
	return ks_err(err, -EPERM,
		      "process %d (%s, uid %ld): %s: permission denied by the ptrace access "
		      "mode check: run as the VMM's user (uid %ld; we are uid %u) or with "
		      "CAP_SYS_PTRACE%s",
		      (int)a->pid, a->comm, uid, what, uid, (unsigned)geteuid(), yama);
}

static int
err_gone(const struct ks_attach *a, struct kvmstats_error *err)
{
	return ks_err(err, -ENOENT, "process %d (%s) has exited: nothing to attach to",
		      (int)a->pid, a->comm);
}

static int
err_no_fds(const struct ks_attach *a, struct kvmstats_error *err)
{
	return ks_err(err, -ENODATA,
		      "process %d (%s) holds no KVM stats fds: QEMU >= 8.1 keeps one per "
		      "vCPU; for other VMMs use the preload shim (libkvmstats-preload.so) or "
		      "the intake socket (kvmstatsd --listen)", (int)a->pid, a->comm);
}

static int
err_scan(const struct ks_attach *a, int ret, struct kvmstats_error *err)
{
	char what[64];

	if (ret == -ESRCH)
		return err_gone(a, err);
	snprintf(what, sizeof(what), "/proc/%d/fd", (int)a->pid);
	if (ret == -EPERM)
		return err_perm(a, what, err);
	return ks_err(err, ret, "process %d (%s): cannot list %s: %s", (int)a->pid,
		      a->comm, what, strerror(-ret));
}

/* ---- duplicating -------------------------------------------------------- */

/* Is our fd @fd the file that @r names?  It may have been reused meanwhile. */
static bool
dup_is(int fd, const struct stats_ref *r)
{
	char path[64], link[LINK_MAX_LEN], want[LINK_MAX_LEN];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (read_link_at(AT_FDCWD, path, link, sizeof(link)) < 0)
		return false;
	ks_statsfd_link_name(r->kind, r->vcpu, want, sizeof(want));
	return strcmp(link, want) == 0;
}

static int
err_getfd(const struct ks_attach *a, const struct stats_ref *r, int e,
	  struct kvmstats_error *err)
{
	char what[96];

	snprintf(what, sizeof(what), "pidfd_getfd of its fd %d", r->fd);
	if (e == EPERM)
		return err_perm(a, what, err);
	if (e == ESRCH)
		return err_gone(a, err);
	if (e == ENOSYS)
		return ks_err(err, -ENOSYS, "pidfd_getfd: not implemented: this kernel is "
			      "older than Linux 5.6: "
			      "use the preload shim (libkvmstats-preload.so) or the intake "
			      "socket (kvmstatsd --listen) instead");
	return ks_err(err, -e, "process %d (%s): %s: %s", (int)a->pid, a->comm, what,
		      strerror(e));
}

static void
close_dups(struct ref_set *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].dup >= 0) {
			close(s->v[i].dup);
			s->v[i].dup = -1;
		}
}

/*
 * take_fds() - duplicate every fd of @s (the duplicate is O_CLOEXEC).  An
 * fd the VMM closed since the scan (EBADF), or whose number now holds
 * another file, is dropped from @s: the next rescan sees the truth.
 */
static int
take_fds(const struct ks_attach *a, struct ref_set *s, struct kvmstats_error *err)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->n; i++) {
		struct stats_ref r = s->v[i];

		r.dup = sys_pidfd_getfd(a->pidfd, r.fd);
		if (r.dup < 0 && errno == EBADF)
			continue;
		if (r.dup < 0) {
			int e = errno;

			s->n = n;
			close_dups(s);
			return err_getfd(a, &r, e, err);
		}
		if (!dup_is(r.dup, &r)) {
			close(r.dup);
			continue;
		}
		s->v[n++] = r;
	}
	s->n = n;
	return 0;
}

/* ---- publishing --------------------------------------------------------- */

#define LABEL_TRIES		6
#define LABEL_FIRST_NS		(1000 * 1000 * 1000ull)

static void __attribute__((format(printf, 2, 3)))
warnf(const struct ks_attach *a, const char *fmt, ...);

/* Labels missing (@missing) or complete: when to publish again for them. */
static void
label_again_later(struct ks_attach *a, bool missing)
{
	a->label_due_ns = 0;
	if (!missing) {
		a->label_tries = 0;
		return;
	}
	if (++a->label_tries < LABEL_TRIES)
		a->label_due_ns = ks_mono_ns() + (LABEL_FIRST_NS << (a->label_tries - 1));
	else
		warnf(a, "VM %s: given up labelling its vCPUs after %d generations", a->vm_name,
		      LABEL_TRIES);
}

/* The VM's note (why it has no VM target, or where it comes from), said once. */
static void __attribute__((format(printf, 3, 4)))
vm_note(struct ks_attach *a, struct ks_vm_build *b, const char *fmt, ...)
{
	char note[KS_NOTE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	if (ks_vm_build_set_note(b, "%s", note) < 0)
		return;		/* out of memory: the builder's own note stays */
	if (strcmp(note, a->last_note) != 0)
		warnf(a, "VM %s: %s", a->vm_name, note);
	snprintf(a->last_note, sizeof(a->last_note), "%s", note);
}

static bool
has_vm_fd(const struct ref_set *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].kind == KS_TARGET_VM)
			return true;
	return false;
}

/*
 * A VMM that keeps no VM stats fd (QEMU opens one per query-stats only):
 * the VM target from KVM's debugfs directory of its VM, where that can be
 * read (debugfs_source.h); else the note says why there is none.
 */
static void
add_debugfs_vm(struct ks_attach *a, const struct ref_set *s, struct ks_vm_build *b)
{
	static const char *const why = "no VM stats: the VMM keeps no VM stats fd";
	struct kvmstats_error err;
	struct ks_block_def block;
	char path[4096], id[32], lost[80] = "";
	uint32_t left_out = 0;
	pid_t creator;
	int dirfd, r;

	if (a->debugfs == NULL) {
		vm_note(a, b, "%s, and KVM's debugfs is not read (--debugfs none)", why);
		return;
	}
	if (s->nr_vm_fds != 1) {
		vm_note(a, b, "%s, and it holds %u VM fds, so its debugfs directory cannot be "
			"told", why, s->nr_vm_fds);
		return;
	}
	if (!a->have_vm_schema) {
		r = ks_kvm_vm_schema(a->kvm_dev ? a->kvm_dev : "/dev/kvm", &a->vm_schema, &err);
		if (r < 0) {
			vm_note(a, b, "%s; %s", why, err.msg);
			return;
		}
		a->have_vm_schema = true;
	}
	r = ks_debugfs_vm_dir(a->debugfs, a->debugfs_any_fs, a->pid, s->vm_fd, &dirfd, path,
			      sizeof(path), &creator, &err);
	if (r == 0)
		r = ks_debugfs_block(dirfd, path, &a->vm_schema, a->warn, &block, &left_out,
				     &err);
	if (r < 0) {
		vm_note(a, b, "%s, and its debugfs stats cannot be read: %s", why, err.msg);
		return;
	}
	snprintf(id, sizeof(id), "kvm-%d", (int)creator);
	r = ks_vm_build_add_vm(b, id, &block, &err);
	if (r < 0) {
		ks_block_release(&block);
		vm_note(a, b, "%s; %s", why, err.msg);
		return;
	}
	if (left_out > 0)
		snprintf(lost, sizeof(lost), "; %u of its %u VM stats cannot be read there",
			 left_out, a->vm_schema.nr_desc);
	vm_note(a, b, "VM stats read from KVM's debugfs (%s) at every sweep: the VMM keeps "
		"no VM stats fd%s", path, lost);
}

/*
 * publish() - build a VM from the duplicates in @s and add it, or replace
 * the current generation with it.  The duplicates are consumed either way.
 */
static int
publish(struct ks_attach *a, struct ref_set *s, struct kvmstats_error *err)
{
	struct ks_fd_target *fds = calloc(s->n, sizeof(*fds));
	struct ks_engine_vm *vm;
	struct ks_vm_build b;
	int ret;

	if (fds == NULL) {
		close_dups(s);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < s->n; i++)
		fds[i] = (struct ks_fd_target) {
			.kind = s->v[i].kind,
			.vcpu_index = s->v[i].vcpu,
			.fd = s->v[i].dup,
			.own_fd = true,
		};
	ret = ks_vm_build(a->vm_name, fds, s->n, a->warn, &b, err);
	free(fds);
	if (ret < 0)
		return ret;	/* the builder closed every duplicate */
	if (a->label != NULL)
		label_again_later(a, !a->label(a->label_arg, &b, a->wakefd));
	if (!has_vm_fd(s))
		add_debugfs_vm(a, s, &b);
	if (a->sched_hz) {
		struct ks_vm_sched how = { .pid = a->pid, .hz = a->sched_hz, .warn = a->warn };
		struct kvmstats_error serr;

		(void)ks_vm_build_add_sched(&b, &how, NULL, &serr);
	}
	if (a->vm == NULL)
		ret = ks_engine_add_vm(a->e, &b.def, &vm, err);
	else
		ret = ks_engine_replace_vm(a->e, a->vm, &b.def, &vm, err);
	/* The engine owns the sources from the call on, success or not. */
	ks_vm_build_clear(&b, true);
	if (ret < 0)
		return ret;
	a->vm = vm;
	return 0;
}

/* ---- the monitor thread ------------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
warnf(const struct ks_attach *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ks_vlogf(a->warn, fmt, ap);
	va_end(ap);
}

/*
 * Does the VMM still hold exactly what we publish?  Same targets, and where
 * kcmp() can tell, the same open files: a VMM that closed and re-opened a
 * stats fd (a new VM after a reset) leaves our duplicate reading a stale VM.
 */
static bool
still_published(const struct ks_attach *a, const struct ref_set *now)
{
	if (!same_targets(now, &a->published))
		return false;
	for (uint32_t i = 0; i < now->n; i++)
		if (same_file(a->pid, a->published.v[i].dup, now->v[i].fd) > 0)
			return false;
	return true;
}

/* A new generation from @now (scanned, not yet duplicated). */
/* @why: NULL for a changed fd set, else what the new generation is for. */
static void
apply_change(struct ks_attach *a, struct ref_set *now, const char *why)
{
	struct kvmstats_error err;
	int ret;

	ret = take_fds(a, now, &err);
	if (ret == 0 && now->n == 0)
		return;			/* every fd raced away: rescan later */
	if (ret == 0)
		ret = publish(a, now, &err);
	if (ret < 0) {
		warnf(a, "VM %s: keeping generation as it was: %s", a->vm_name, err.msg);
		return;
	}
	set_clear(&a->published);
	a->published = *now;
	memset(now, 0, sizeof(*now));
	if (why != NULL)
		warnf(a, "VM %s: new segment generation, %s", a->vm_name, why);
	else
		warnf(a, "VM %s: process %d now holds %u stats fds: new segment generation",
		      a->vm_name, (int)a->pid, a->published.n);
}

static void
rescan(struct ks_attach *a)
{
	struct ref_set now;

	/* A failing scan means the process is exiting: the pidfd says so next. */
	if (scan_fds(a->pid, &now) < 0)
		return;
	if (still_published(a, &now)) {
		set_clear(&a->pending);
		/* The same fds again, for the labels the last generation lacked. */
		if (a->label_due_ns != 0 && ks_mono_ns() >= a->label_due_ns)
			apply_change(a, &now, "labelled again");
		set_clear(&now);
		return;
	}
	if (now.n == 0) {
		if (!a->warned_empty)
			warnf(a, "VM %s: process %d closed all its stats fds: keeping the last "
			      "generation", a->vm_name, (int)a->pid);
		a->warned_empty = true;
		set_clear(&now);
		return;
	}
	a->warned_empty = false;
	/*
	 * Apply a change only when two scans in a row agree: QEMU's query-stats
	 * opens a VM stats fd for a moment, and a vCPU being plugged is not
	 * finished yet.  Hotplug shows within two rescan periods.
	 */
	if (!same_targets(&now, &a->pending)) {
		set_clear(&a->pending);
		a->pending = now;
		return;
	}
	set_clear(&a->pending);
	apply_change(a, &now, NULL);
	set_clear(&now);
}

static void
vmm_ended(struct ks_attach *a)
{
	if (a->vm != NULL) {
		ks_engine_remove_vm(a->e, a->vm);
		a->vm = NULL;
	}
	warnf(a, "VM %s: process %d exited: segment ended", a->vm_name, (int)a->pid);
	if (a->on_end)
		a->on_end(a->arg);
}

static void attach_free(struct ks_attach *a);

/*
 * The attach whose monitor runs on this thread: ks_attach_stop() called
 * from on_end must know it is on the monitor even before pthread_create()
 * has returned the thread's id to the starter.
 */
static __thread struct ks_attach *monitor_of;

static void *monitor_loop(struct ks_attach *a);

static void *
monitor(void *arg)
{
	struct ks_attach *a = arg;

	monitor_of = a;
	return monitor_loop(a);
}

static void *
monitor_loop(struct ks_attach *a)
{
	struct pollfd p[2] = {
		{ .fd = a->pidfd, .events = POLLIN },
		{ .fd = a->wakefd, .events = POLLIN },
	};

	for (;;) {
		int n = poll(p, 2, (int)a->rescan_ms);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			warnf(a, "VM %s: poll: %s: monitoring stops", a->vm_name, strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;		/* ks_attach_stop() */
		if (p[0].revents) {
			vmm_ended(a);
			break;
		}
		if (n == 0)
			rescan(a);
	}
	if (a->stopped_in_monitor)
		attach_free(a);		/* on_end called ks_attach_stop() */
	return NULL;
}

/* ---- the API ------------------------------------------------------------ */

static void
attach_free(struct ks_attach *a)
{
	close_dups(&a->pending);	/* holds none; published ones belong to the engine */
	set_clear(&a->pending);
	set_clear(&a->published);
	if (a->pidfd >= 0)
		close(a->pidfd);
	if (a->wakefd >= 0)
		close(a->wakefd);
	free(a->vm_name);
	free(a->debugfs);
	free(a->kvm_dev);
	ks_statsfd_schema_clear(&a->vm_schema);
	free(a);
}

static int
attach_alloc(struct ks_engine *e, const struct ks_attach_opts *o, struct ks_attach **out,
	     struct kvmstats_error *err)
{
	struct ks_attach *a = calloc(1, sizeof(*a));
	char name[32];

	if (a == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	a->e = e;
	a->pid = o->pid;
	a->pidfd = -1;
	a->rescan_ms = o->rescan_ms ? o->rescan_ms : RESCAN_MS_DEFAULT;
	a->warn = o->warn;
	a->sched_hz = o->sched_hz;
	a->on_end = o->on_end;
	a->arg = o->arg;
	a->label = o->label;
	a->label_arg = o->label_arg;
	/* Before the first publish: a label hook may wait on it from the start. */
	a->wakefd = eventfd(0, EFD_CLOEXEC);
	if (a->wakefd < 0) {
		int en = errno;

		attach_free(a);
		return ks_err(err, -en, "eventfd: %s", strerror(en));
	}
	snprintf(name, sizeof(name), "kvm-%d", (int)o->pid);
	a->vm_name = strdup(o->vm_name ? o->vm_name : name);
	a->debugfs = o->debugfs ? strdup(o->debugfs) : NULL;
	a->debugfs_any_fs = o->debugfs_any_fs;
	a->kvm_dev = o->kvm_dev ? strdup(o->kvm_dev) : NULL;
	if (a->vm_name == NULL || (o->debugfs && !a->debugfs) || (o->kvm_dev && !a->kvm_dev)) {
		attach_free(a);
		return ks_err(err, -ENOMEM, "out of memory");
	}
	read_comm(o->pid, a->comm, sizeof(a->comm));
	*out = a;
	return 0;
}

static int
open_pidfd(struct ks_attach *a, struct kvmstats_error *err)
{
	a->pidfd = sys_pidfd_open(a->pid);
	if (a->pidfd >= 0)
		return 0;
	if (errno == ESRCH)
		return ks_err(err, -ENOENT, "no process %d: check the VMM's pid "
			      "(pgrep -a qemu)", (int)a->pid);
	if (errno == ENOSYS)
		return ks_err(err, -ENOSYS, "pidfd_open: not implemented: this kernel is "
			      "older than Linux 5.3 (pidfd_getfd needs 5.6), or a tool we run "
			      "under (valgrind <= 3.19) does not know the call: use the preload "
			      "shim (libkvmstats-preload.so) or the intake socket "
			      "(kvmstatsd --listen) instead");
	return ks_err(err, -errno, "pidfd_open(%d): %s", (int)a->pid, strerror(errno));
}

static bool
pidfd_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Scan and duplicate, again if every fd raced away; then publish. */
static int
first_publish(struct ks_attach *a, struct kvmstats_error *err)
{
	struct ref_set s;
	int ret, tries;

	for (tries = 0; tries < START_SCAN_TRIES; tries++) {
		ret = scan_fds(a->pid, &s);
		if (ret < 0)
			return err_scan(a, ret, err);
		if (s.n == 0) {
			set_clear(&s);
			return pidfd_exited(a->pidfd) ? err_gone(a, err) : err_no_fds(a, err);
		}
		ret = take_fds(a, &s, err);
		if (ret < 0) {
			set_clear(&s);
			return ret;
		}
		if (s.n > 0)
			break;
		set_clear(&s);
	}
	if (tries == START_SCAN_TRIES)
		return err_no_fds(a, err);
	ret = publish(a, &s, err);
	if (ret < 0) {
		set_clear(&s);
		return ret;
	}
	a->published = s;
	return 0;
}

int
ks_attach_start(struct ks_engine *e, const struct ks_attach_opts *o,
		struct ks_attach **out, struct kvmstats_error *err)
{
	struct ks_attach *a = NULL;
	int ret;

	if (e == NULL || o == NULL || out == NULL)
		return ks_err(err, -EINVAL, "ks_attach_start: missing engine, options or result");
	if (o->pid <= 0)
		return ks_err(err, -EINVAL, "attach: %d is not a process id", (int)o->pid);
	ret = attach_alloc(e, o, &a, err);
	if (ret < 0)
		return ret;
	ret = open_pidfd(a, err);
	if (ret == 0)
		ret = first_publish(a, err);
	if (ret == 0)
		snprintf(a->seg_file, sizeof(a->seg_file), "%s", ks_engine_vm_file(a->vm));
	if (ret == 0) {
		/* Set first: the monitor may call on_end, and so stop, at once. */
		a->thread_started = true;
		ret = -pthread_create(&a->thread, NULL, monitor, a);
		if (ret < 0) {
			a->thread_started = false;
			ks_err(err, ret, "cannot start the monitor thread: %s", strerror(-ret));
		}
	}
	if (ret < 0) {
		if (a->vm)
			ks_engine_remove_vm(e, a->vm);
		attach_free(a);
		return ret;
	}
	*out = a;
	return 0;
}

/*
 * The engine renames each new generation over the same name, so the name
 * taken at start stays right, and readers on other threads never see it
 * change under them.
 */
const char *
ks_attach_file(const struct ks_attach *a)
{
	return a->seg_file;
}

void
ks_attach_stop(struct ks_attach **ap)
{
	struct ks_attach *a = *ap;
	uint64_t one = 1;

	if (a == NULL)
		return;
	*ap = NULL;
	if (monitor_of == a) {
		/* From on_end: the monitor frees everything when on_end returns. */
		a->stopped_in_monitor = true;
		pthread_detach(a->thread);
		return;
	}
	if (a->thread_started) {
		while (write(a->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(a->thread, NULL);
	}
	if (a->vm != NULL)
		ks_engine_remove_vm(a->e, a->vm);
	a->vm = NULL;
	attach_free(a);
}
