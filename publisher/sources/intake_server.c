/* SPDX-License-Identifier: MIT */
/*
 * intake_server.c - the intake socket's server (intake.h; the protocol is
 * docs/INTAKE.md).
 *
 * One thread polls the listening socket, every connection and an
 * eventfd that ks_intake_stop() writes.  All state (connections, their
 * VMs and fds) belongs to that thread alone, so nothing here takes a lock;
 * the engine has its own.  Every peer is untrusted: each message is
 * checked field by field, every fd that arrives and is not kept is closed,
 * sockets are non-blocking and replies are sent with MSG_DONTWAIT, so a
 * peer can cost us at most its own connection.
 *
 * The connection keeps the fds it was sent; a published VM gets dup()s of
 * them (own_fd), so a hotplugged vCPU can be published as a new generation
 * from the whole set while the old generation still reads its own copies
 * until the engine retires it.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dir_check.h"
#include "intake.h"
#include "ks_err.h"
#include "ks_shmdir.h"
#include "ks_sigbus.h"
#include "ks_text.h"
#include "ks_time.h"
#include "segment_writer.h"
#include "statsfd.h"

#define INTAKE_MAX_CONNS	1024		/* one per VMM: a big host's worth */
#define INTAKE_MAX_FDS		4096		/* fds kept per connection */
#define INTAKE_CMSG_FDS		8		/* more in one message: MSG_CTRUNC */
#define INTAKE_QUIET_MS		200
#define INTAKE_IDLE_MS		10000		/* holding no VM this long: closed */
#define INTAKE_MODE		0660
#define INTAKE_ACCEPT_PAUSE_MS	100		/* after EMFILE: do not spin on accept */
#define INTAKE_DRAIN_MAX	16		/* messages drained from a refused peer */
#define INTAKE_LOG_BURST	10		/* refusals logged one by one per window */
#define INTAKE_LOG_WINDOW_NS	(10 * 1000000000ull)

struct intake_fd {
	enum ks_target_kind kind;
	uint32_t vcpu_index;			/* KS_VCPU_INDEX_NONE for the VM */
	int fd;
	char *label;				/* NULL: the fd's id */
};

struct intake_vm {
	struct intake_vm *next;
	char name[sizeof(((struct ks_intake_msg *)0)->vm)];
	struct intake_fd *fds;
	uint32_t nr_fds, cap;
	bool dirty;				/* fds changed since the last publish */
	uint64_t last_fd_ns;
	struct ks_engine_vm *published;
	uint64_t generation;
};

struct intake_conn {
	int sock;
	uid_t uid;
	pid_t pid;
	unsigned nr_fds;			/* kept, over all its VMs */
	struct intake_vm *vms;
	uint64_t idle_since_ns;			/* since it holds no VM (0: it holds one) */
};

/* Refusals are logged a few at a time: a flood of them must not flood the log. */
struct refusals {
	uint64_t window_start;
	unsigned logged, suppressed;
};

struct ks_intake {
	struct ks_engine *e;
	char *path;
	uid_t *allow;
	unsigned nr_allow;
	uint64_t quiet_ns;
	uint64_t idle_ns;
	unsigned max_per_uid;
	ks_log_fn log;
	unsigned sched_hz;		/* 0: no sched provider */
	struct refusals refused;
	int listen_fd, wake_fd;
	int spare_fd;				/* closed to accept-and-refuse at EMFILE */
	dev_t sock_dev;
	ino_t sock_ino;
	uint64_t accept_pause_until;
	struct intake_conn *conns[INTAKE_MAX_CONNS];
	unsigned nr_conns;
	pthread_t thread;
};

static void ilog(const struct ks_intake *in, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
ilog(const struct ks_intake *in, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ks_vlogf(in->log, fmt, ap);
	va_end(ap);
}

/* The count of refusals not logged one by one, once their window is over. */
static void
refusals_flush(struct ks_intake *in, uint64_t now)
{
	struct refusals *r = &in->refused;

	if (now - r->window_start < INTAKE_LOG_WINDOW_NS && now != UINT64_MAX)
		return;
	if (r->suppressed > 0)
		ilog(in, "intake: %u more connections refused in %llu s (not logged one by one)",
		     r->suppressed, (unsigned long long)(INTAKE_LOG_WINDOW_NS / 1000000000ull));
	r->window_start = now;
	r->logged = r->suppressed = 0;
}

static void refused(struct ks_intake *in, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A refusal: logged, at most INTAKE_LOG_BURST per window, then counted. */
static void
refused(struct ks_intake *in, const char *fmt, ...)
{
	va_list ap;

	refusals_flush(in, ks_mono_ns());
	if (in->refused.logged >= INTAKE_LOG_BURST) {
		in->refused.suppressed++;
		return;
	}
	in->refused.logged++;
	va_start(ap, fmt);
	ks_vlogf(in->log, fmt, ap);
	va_end(ap);
}

static void
close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* ---- replies ------------------------------------------------------------- */

static int send_reply(int sock, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Never blocks: a peer that does not read its replies until its socket
 * buffer fills is misbehaving, and gets -EAGAIN here and then closed.
 */
static int
send_reply(int sock, int status, const char *fmt, ...)
{
	struct ks_intake_reply r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.magic = KS_INTAKE_MAGIC;
	r.status = status;
	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	if (send(sock, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(r))
		return -errno;
	return 0;
}

static int
reply_ok(int sock)
{
	return send_reply(sock, 0, "%s", "");
}

/*
 * Read what a refused peer already sent, so that closing with unread data
 * does not turn into ECONNRESET ahead of our reply on its side, and close
 * any fds that came along (MSG_CMSG_CLOEXEC: never inherited meanwhile).
 */
static void
drain_and_close(int sock)
{
	for (int i = 0; i < INTAKE_DRAIN_MAX; i++) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * INTAKE_CMSG_FDS)];
			struct cmsghdr align;
		} cbuf;
		struct ks_intake_msg m;
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
		};
		struct cmsghdr *c;

		if (recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			break;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				close_fds((const int *)(void *)CMSG_DATA(c),
					  (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int)));
	}
	shutdown(sock, SHUT_RDWR);
	close(sock);
}

/* ---- a connection's VMs ---------------------------------------------------- */

static struct intake_vm *
conn_vm(const struct intake_conn *c, const char *name)
{
	for (struct intake_vm *v = c->vms; v; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static const struct intake_conn *
vm_owner(const struct ks_intake *in, const char *name)
{
	for (unsigned i = 0; i < in->nr_conns; i++)
		if (in->conns[i] && conn_vm(in->conns[i], name))
			return in->conns[i];
	return NULL;
}

static unsigned
vm_nr_vcpus(const struct intake_vm *v)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < v->nr_fds; i++)
		n += v->fds[i].kind == KS_TARGET_VCPU;
	return n;
}

static int
cmp_fd(const void *a, const void *b)
{
	const struct intake_fd *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->vcpu_index != y->vcpu_index)
		return x->vcpu_index < y->vcpu_index ? -1 : 1;
	return 0;
}

/* The VM first, then the vCPUs by index; each target gets a dup of its fd. */
static int
vm_targets(struct intake_vm *v, struct ks_fd_target *t, struct kvmstats_error *err)
{
	qsort(v->fds, v->nr_fds, sizeof(*v->fds), cmp_fd);
	for (uint32_t i = 0; i < v->nr_fds; i++) {
		int fd = fcntl(v->fds[i].fd, F_DUPFD_CLOEXEC, 3);

		if (fd < 0) {
			int e = errno;

			for (uint32_t j = 0; j < i; j++)
				close(t[j].fd);
			return ks_err(err, -e, "VM %s: cannot duplicate a stats fd: %s",
				      v->name, strerror(e));
		}
		t[i] = (struct ks_fd_target) {
			.kind = v->fds[i].kind,
			.vcpu_index = v->fds[i].vcpu_index,
			.fd = fd,
			.own_fd = true,
			.label = v->fds[i].label,
		};
	}
	return 0;
}

/* Publish @v's whole fd set: first generation, or a new one (hotplug). */
static int
vm_publish(struct ks_intake *in, const struct intake_conn *c, struct intake_vm *v,
	   struct kvmstats_error *err)
{
	struct ks_engine_vm *nv;
	struct ks_fd_target *t;
	struct ks_vm_build b;
	int ret;

	v->dirty = false;	/* a failed set is not retried until it changes */
	t = calloc(v->nr_fds, sizeof(*t));
	if (t == NULL)
		return ks_err(err, -ENOMEM, "VM %s: out of memory", v->name);
	ret = vm_targets(v, t, err);
	if (ret == 0)
		ret = ks_vm_build(v->name, t, v->nr_fds, in->log, &b, err);
	free(t);
	if (ret < 0)
		return ret;
	if (in->sched_hz) {
		/* The peer's threads, as SO_PEERCRED named the peer in our PID namespace. */
		struct ks_vm_sched how = { .pid = c->pid, .hz = in->sched_hz, .warn = in->log };
		struct kvmstats_error serr;

		(void)ks_vm_build_add_sched(&b, &how, NULL, &serr);
	}
	if (v->published)
		ret = ks_engine_replace_vm(in->e, v->published, &b.def, &nv, err);
	else
		ret = ks_engine_add_vm(in->e, &b.def, &nv, err);
	ks_vm_build_clear(&b, true);	/* the engine owns the sources either way */
	if (ret < 0)
		return ret;
	v->published = nv;
	v->generation++;
	ilog(in, "intake: VM %s published with %u vCPUs%s (generation %llu, %s) for uid %u pid %d",
	     v->name, vm_nr_vcpus(v),
	     v->fds[0].kind == KS_TARGET_VM ? " and VM stats" : "",
	     (unsigned long long)v->generation, ks_engine_vm_file(nv),
	     (unsigned)c->uid, (int)c->pid);
	return 0;
}

static void
vm_free(struct intake_conn *c, struct intake_vm *v)
{
	for (uint32_t i = 0; i < v->nr_fds; i++) {
		close(v->fds[i].fd);
		free(v->fds[i].label);
	}
	c->nr_fds -= v->nr_fds;
	free(v->fds);
	free(v);
}

/* The VM ended: its segment is marked ended and removed, its fds closed. */
static void
vm_end(struct ks_intake *in, struct intake_conn *c, struct intake_vm *v, const char *why)
{
	struct intake_vm **pp;

	for (pp = &c->vms; *pp != v; pp = &(*pp)->next)
		;
	*pp = v->next;
	if (v->published) {
		ks_engine_remove_vm(in->e, v->published);
		ilog(in, "intake: VM %s ended (%s, uid %u pid %d)", v->name, why,
		     (unsigned)c->uid, (int)c->pid);
	}
	vm_free(c, v);
	if (c->vms == NULL)
		c->idle_since_ns = ks_mono_ns();
}

static struct intake_vm *
vm_new(struct intake_conn *c, const char *name)
{
	struct intake_vm *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->next = c->vms;
	c->vms = v;
	c->idle_since_ns = 0;
	return v;
}

/* ---- one message ------------------------------------------------------------ */

struct intake_rx {
	struct ks_intake_msg m;
	ssize_t len;
	int flags;
	int fds[INTAKE_CMSG_FDS];
	unsigned nr_fds;
};

/* A string field of @size bytes: NUL-terminated printable text (ks_text.h). */
static bool
field_ok(const char *s, size_t size)
{
	const char *nul = memchr(s, '\0', size);

	return nul != NULL && ks_text_fault(s, (size_t)(nul - s), NULL) == NULL;
}

/* Return: 0, or a negative errno with @why filled for the reply. */
static int
check_msg(const struct intake_rx *rx, char *why, size_t len)
{
	const struct ks_intake_msg *m = &rx->m;
	char fault[128];

	if (rx->flags & MSG_CTRUNC) {
		snprintf(why, len, "ancillary data truncated: at most one fd per message");
		return -EINVAL;
	}
	if (!field_ok(m->vm, sizeof(m->vm)) || !field_ok(m->label, sizeof(m->label))) {
		snprintf(why, len, "vm and label must be NUL-terminated UTF-8 text without "
			 "control characters, within their %zu and %zu bytes", sizeof(m->vm),
			 sizeof(m->label));
		return -EINVAL;
	}
	if (ks_vm_name_fault(ks_vm_name_of(m->vm), fault, sizeof(fault)) != NULL) {
		snprintf(why, len, "bad VM name \"%s\": it %s, and it names a segment file",
			 m->vm, fault);
		return -EINVAL;
	}
	switch (m->op) {
	case KS_INTAKE_OP_FD:
		if (rx->nr_fds != 1) {
			snprintf(why, len, "OP_FD carries exactly one fd (SCM_RIGHTS), not %u",
				 rx->nr_fds);
			return -EINVAL;
		}
		if (m->kind != KS_TARGET_VM && m->kind != KS_TARGET_VCPU) {
			snprintf(why, len, "unknown target kind %u (0 VM, 1 vCPU)", m->kind);
			return -EINVAL;
		}
		if (m->kind == KS_TARGET_VCPU && m->vcpu_index == KS_VCPU_INDEX_NONE) {
			snprintf(why, len, "vCPU index %u is reserved", m->vcpu_index);
			return -EINVAL;
		}
		return 0;
	case KS_INTAKE_OP_PUBLISH:
	case KS_INTAKE_OP_END:
		if (rx->nr_fds != 0) {
			snprintf(why, len, "op %u carries no fd, %u attached", m->op, rx->nr_fds);
			return -EINVAL;
		}
		return 0;
	default:
		snprintf(why, len, "unknown op %u (1 FD, 2 PUBLISH, 3 END)", m->op);
		return -EOPNOTSUPP;
	}
}

/* Replace a duplicate (kind, vcpu_index), or append: Return 0 or -EMFILE/-ENOMEM. */
static int
vm_keep_fd(struct intake_conn *c, struct intake_vm *v, const struct intake_fd *nf)
{
	for (uint32_t i = 0; i < v->nr_fds; i++) {
		struct intake_fd *f = &v->fds[i];

		if (f->kind == nf->kind && f->vcpu_index == nf->vcpu_index) {
			close(f->fd);
			free(f->label);
			*f = *nf;
			return 0;
		}
	}
	if (c->nr_fds >= INTAKE_MAX_FDS)
		return -EMFILE;
	if (v->nr_fds == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 8;
		struct intake_fd *n = realloc(v->fds, cap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		v->fds = n;
		v->cap = cap;
	}
	v->fds[v->nr_fds++] = *nf;
	c->nr_fds++;
	return 0;
}

/* OP_FD: parse the fd now (errors go back to the sender), keep it. */
static int
op_fd(struct ks_intake *in, struct intake_conn *c, const struct ks_intake_msg *m, int fd)
{
	const struct intake_conn *owner = vm_owner(in, m->vm);
	struct intake_fd nf = {
		.kind = (enum ks_target_kind)m->kind,
		.vcpu_index = m->kind == KS_TARGET_VM ? KS_VCPU_INDEX_NONE : m->vcpu_index,
		.fd = fd,
	};
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	struct intake_vm *v;
	char what[160];
	int ret;

	if (owner && owner != c) {
		close(fd);
		return send_reply(c->sock, -EEXIST, "VM name \"%s\" is in use by another "
				  "connection (uid %u pid %d): choose another name",
				  m->vm, (unsigned)owner->uid, (int)owner->pid);
	}
	if (nf.kind == KS_TARGET_VM)
		snprintf(what, sizeof(what), "VM %s: VM stats fd", m->vm);
	else
		snprintf(what, sizeof(what), "VM %s: vCPU %u stats fd", m->vm, nf.vcpu_index);
	ret = ks_statsfd_check_fd(fd, what, &err);
	if (ret == 0)
		ret = ks_statsfd_parse(fd, what, &s, &err);
	if (ret == 0) {
		/* A VM's fd offered as a vCPU's, or the reverse: its id says. */
		struct ks_fd_target ft = { .kind = nf.kind, .vcpu_index = nf.vcpu_index };

		ret = ks_fd_kind_check(what, &ft, s.id, &err);
		ks_statsfd_schema_clear(&s);
	}
	if (ret < 0) {
		close(fd);
		ilog(in, "intake: rejected a stats fd from uid %u pid %d: %s",
		     (unsigned)c->uid, (int)c->pid, err.msg);
		return send_reply(c->sock, ret == -ENOMEM ? ret : -EBADMSG, "%s", err.msg);
	}

	v = conn_vm(c, m->vm);
	/* A new VM: its name must not be another publisher's (checked again at publish). */
	if (v == NULL && ks_segment_name_check(ks_engine_dir(in->e), m->vm, &err) < 0) {
		close(fd);
		refused(in, "intake: refused VM %s of uid %u pid %d: %s", m->vm,
			(unsigned)c->uid, (int)c->pid, err.msg);
		return send_reply(c->sock, err.code, "%s", err.msg);
	}
	if (v == NULL && (v = vm_new(c, m->vm)) == NULL) {
		close(fd);
		return send_reply(c->sock, -ENOMEM, "out of memory");
	}
	if (m->label[0] && (nf.label = strdup(m->label)) == NULL)
		ret = -ENOMEM;
	else
		ret = vm_keep_fd(c, v, &nf);
	if (ret < 0) {
		close(fd);
		free(nf.label);
		if (v->nr_fds == 0)
			vm_end(in, c, v, "no fds");
		if (ret == -EMFILE)
			return send_reply(c->sock, ret, "this connection already holds %u stats "
					  "fds, the most allowed", INTAKE_MAX_FDS);
		return send_reply(c->sock, ret, "out of memory");
	}
	v->dirty = true;
	v->last_fd_ns = ks_mono_ns();
	return reply_ok(c->sock);
}

static int
op_vm(struct ks_intake *in, struct intake_conn *c, const struct ks_intake_msg *m)
{
	struct intake_vm *v = conn_vm(c, m->vm);
	struct kvmstats_error err;

	if (v == NULL)
		return send_reply(c->sock, -ENOENT, "VM %s: no stats fds were sent for it "
				  "on this connection", m->vm);
	if (m->op == KS_INTAKE_OP_END) {
		vm_end(in, c, v, "OP_END");
		return reply_ok(c->sock);
	}
	if (!v->dirty)		/* already published as it is */
		return reply_ok(c->sock);
	if (vm_publish(in, c, v, &err) < 0) {
		ilog(in, "intake: %s", err.msg);
		return send_reply(c->sock, err.code, "%s", err.msg);
	}
	return reply_ok(c->sock);
}

static int
recv_msg(int sock, struct intake_rx *rx)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * INTAKE_CMSG_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = &rx->m, .iov_len = sizeof(rx->m) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c;

	memset(rx, 0, sizeof(*rx));
	rx->len = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (rx->len < 0)
		return -errno;
	rx->flags = mh.msg_flags;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		const int *p = (const int *)(void *)CMSG_DATA(c);
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			if (rx->nr_fds < INTAKE_CMSG_FDS)
				rx->fds[rx->nr_fds++] = p[i];
			else
				close(p[i]);	/* cannot happen with our buffer; be safe */
		}
	}
	return 0;
}

/*
 * The kernel drops fds it cannot install in us and says MSG_CTRUNC: were
 * we out of descriptors (not: the peer sent more than one)?
 */
static bool
out_of_fds(int sock)
{
	int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EMFILE || errno == ENFILE;
}

/*
 * Read and answer one message.  Return: false if the connection must close
 * (peer gone, framing broken, or a reply it would not take).
 */
static bool
conn_message(struct ks_intake *in, struct intake_conn *c)
{
	struct intake_rx rx;
	char why[512];
	int ret;

	ret = recv_msg(c->sock, &rx);
	if (ret == -EAGAIN || ret == -EINTR)
		return true;
	if (ret < 0 || rx.len == 0) {
		close_fds(rx.fds, rx.nr_fds);
		return false;
	}
	if ((rx.flags & MSG_TRUNC) || rx.len != (ssize_t)sizeof(rx.m)) {
		close_fds(rx.fds, rx.nr_fds);
		send_reply(c->sock, -EBADMSG, "message of %s%zd bytes, expected exactly %zu: "
			   "closing", (rx.flags & MSG_TRUNC) ? "more than " : "", rx.len,
			   sizeof(rx.m));
		return false;
	}
	if (rx.m.magic != KS_INTAKE_MAGIC || rx.m.version != KS_INTAKE_VERSION) {
		close_fds(rx.fds, rx.nr_fds);
		if (rx.m.magic != KS_INTAKE_MAGIC)
			send_reply(c->sock, -EBADMSG, "bad magic 0x%08x, expected 0x%08x: "
				   "not a kvmstats intake client; closing", rx.m.magic,
				   KS_INTAKE_MAGIC);
		else
			send_reply(c->sock, -EPROTONOSUPPORT, "protocol version %u, this "
				   "kvmstatsd speaks version %u: closing", rx.m.version,
				   KS_INTAKE_VERSION);
		return false;
	}
	if ((rx.flags & MSG_CTRUNC) && out_of_fds(c->sock)) {
		close_fds(rx.fds, rx.nr_fds);
		refused(in, "intake: lost a stats fd of uid %u pid %d: kvmstatsd is out of "
			"file descriptors", (unsigned)c->uid, (int)c->pid);
		return send_reply(c->sock, -EMFILE, "kvmstatsd is out of file descriptors, so "
				  "the fd sent was lost: try again later (its limit is "
				  "RLIMIT_NOFILE, or the system's)") == 0;
	}
	ret = check_msg(&rx, why, sizeof(why));
	if (ret < 0) {
		close_fds(rx.fds, rx.nr_fds);
		return send_reply(c->sock, ret, "%s", why) == 0;
	}
	/* One spelling per VM from here on: "kvmstats.x" is VM "x". */
	memmove(rx.m.vm, ks_vm_name_of(rx.m.vm), strlen(ks_vm_name_of(rx.m.vm)) + 1);
	if (rx.m.op == KS_INTAKE_OP_FD)
		ret = op_fd(in, c, &rx.m, rx.fds[0]);
	else
		ret = op_vm(in, c, &rx.m);
	return ret == 0;
}

/* ---- connections ----------------------------------------------------------- */

static void
conn_close(struct ks_intake *in, unsigned slot, const char *why)
{
	struct intake_conn *c = in->conns[slot];

	while (c->vms)
		vm_end(in, c, c->vms, why);
	ilog(in, "intake: connection of uid %u pid %d closed (%s)", (unsigned)c->uid,
	     (int)c->pid, why);
	close(c->sock);
	free(c);
	in->conns[slot] = NULL;
}

static bool
uid_allowed(const struct ks_intake *in, uid_t uid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (unsigned i = 0; i < in->nr_allow; i++)
		if (in->allow[i] == uid)
			return true;
	return false;
}

static unsigned
conns_of(const struct ks_intake *in, uid_t uid)
{
	unsigned n = 0;

	for (unsigned i = 0; i < in->nr_conns; i++)
		n += in->conns[i] != NULL && in->conns[i]->uid == uid;
	return n;
}

static int
free_slot(const struct ks_intake *in)
{
	for (unsigned i = 0; i < INTAKE_MAX_CONNS; i++)
		if (in->conns[i] == NULL)
			return (int)i;
	return -1;
}

static void
conn_accept_one(struct ks_intake *in, int sock)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct intake_conn *c;
	int slot;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		ilog(in, "intake: SO_PEERCRED failed: %s; closing", strerror(errno));
		close(sock);
		return;
	}
	if (!uid_allowed(in, cred.uid)) {
		refused(in, "intake: refused uid %u pid %d: not on the allow-list",
			(unsigned)cred.uid, (int)cred.pid);
		send_reply(sock, -EPERM, "uid %u may not hand stats fds to this kvmstatsd; "
			   "allow it with: kvmstatsd --allow-uid %u", (unsigned)cred.uid,
			   (unsigned)cred.uid);
		drain_and_close(sock);
		return;
	}
	/* One uid cannot take every connection from the others. */
	if (conns_of(in, cred.uid) >= in->max_per_uid) {
		refused(in, "intake: refused uid %u pid %d: it has %u connections, the most "
			"per uid", (unsigned)cred.uid, (int)cred.pid, in->max_per_uid);
		send_reply(sock, -EBUSY, "kvmstatsd: uid %u already has %u intake connections, "
			   "the most one uid may have; close some, or raise the daemon's "
			   "--max-conns-per-uid", (unsigned)cred.uid, in->max_per_uid);
		drain_and_close(sock);
		return;
	}
	slot = free_slot(in);
	c = slot < 0 ? NULL : calloc(1, sizeof(*c));
	if (c == NULL) {
		refused(in, "intake: refused uid %u pid %d: %s", (unsigned)cred.uid,
			(int)cred.pid, slot < 0 ? "too many connections" : "out of memory");
		send_reply(sock, slot < 0 ? -EBUSY : -ENOMEM, "kvmstatsd: %s",
			   slot < 0 ? "too many intake connections; try again later"
			   : "out of memory");
		drain_and_close(sock);
		return;
	}
	c->sock = sock;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->idle_since_ns = ks_mono_ns();
	in->conns[slot] = c;
	in->nr_conns = in->nr_conns > (unsigned)slot + 1 ? in->nr_conns : (unsigned)slot + 1;
	ilog(in, "intake: connection from uid %u pid %d", (unsigned)c->uid, (int)c->pid);
}

/*
 * Out of descriptors: give up the spare one to accept the peer and tell it
 * why, rather than leave it hanging in the backlog.  Return: whether a
 * peer was refused so.
 */
static bool
refuse_with_spare(struct ks_intake *in)
{
	struct ucred cred = { .uid = (uid_t)-1, .pid = 0 };
	socklen_t len = sizeof(cred);
	int sock;

	if (in->spare_fd < 0)
		return false;
	close(in->spare_fd);
	sock = accept4(in->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (sock >= 0) {
		(void)getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len);
		refused(in, "intake: refused uid %u pid %d: kvmstatsd is out of file descriptors",
			(unsigned)cred.uid, (int)cred.pid);
		send_reply(sock, -EMFILE, "kvmstatsd is out of file descriptors: try again "
			   "later (its limit is RLIMIT_NOFILE, or the system's)");
		drain_and_close(sock);
	}
	in->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return sock >= 0;
}

static void
conn_accept(struct ks_intake *in)
{
	for (;;) {
		int sock = accept4(in->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (sock >= 0) {
			conn_accept_one(in, sock);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if ((errno == EMFILE || errno == ENFILE) && refuse_with_spare(in))
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			/* Out of fds with no spare: the listen socket stays readable. */
			refused(in, "intake: accept: %s; pausing accepts", strerror(errno));
			in->accept_pause_until = ks_mono_ns() + INTAKE_ACCEPT_PAUSE_MS * 1000000ull;
		}
		return;
	}
}

/* ---- the thread ------------------------------------------------------------- */

/*
 * A connection that holds no VM for idle_ns (never sent a stats fd, or its
 * VMs ended) is closed: it would keep a slot from VMMs that need one.
 * Return: when the next one falls due, or UINT64_MAX.
 */
static uint64_t
close_idle(struct ks_intake *in, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < in->nr_conns; i++) {
		struct intake_conn *c = in->conns[i];
		uint64_t due;

		if (c == NULL || c->idle_since_ns == 0)
			continue;
		due = c->idle_since_ns + in->idle_ns;
		if (due > now) {
			next = due < next ? due : next;
			continue;
		}
		send_reply(c->sock, -ETIMEDOUT, "no VM on this connection for %llu ms: closing",
			   (unsigned long long)(in->idle_ns / 1000000));
		conn_close(in, i, "idle, holding no VM");
	}
	return next;
}

/* Publish every VM whose quiet period is over; Return: ms to the next timer, or -1. */
static int
run_timers(struct ks_intake *in)
{
	uint64_t now = ks_mono_ns(), next = close_idle(in, now);
	struct kvmstats_error err;

	refusals_flush(in, now);
	for (unsigned i = 0; i < in->nr_conns; i++) {
		struct intake_conn *c = in->conns[i];

		for (struct intake_vm *v = c ? c->vms : NULL; v; v = v->next) {
			uint64_t due = v->last_fd_ns + in->quiet_ns;

			if (!v->dirty)
				continue;
			if (due > now) {
				next = due < next ? due : next;
				continue;
			}
			if (vm_publish(in, c, v, &err) < 0)
				ilog(in, "intake: %s", err.msg);
		}
	}
	if (in->accept_pause_until > now && in->accept_pause_until < next)
		next = in->accept_pause_until;
	/* The count of refusals not logged is said when their window ends. */
	if (in->refused.suppressed > 0 &&
	    in->refused.window_start + INTAKE_LOG_WINDOW_NS < next)
		next = in->refused.window_start + INTAKE_LOG_WINDOW_NS;
	if (next == UINT64_MAX)
		return -1;
	/* poll() takes an int of ms: a long quiet period is waited for in pieces. */
	next = (next - now + 999999) / 1000000;
	return next > INT_MAX ? INT_MAX : (int)next;
}

static void *
intake_thread(void *arg)
{
	struct ks_intake *in = arg;
	struct pollfd pfd[2 + INTAKE_MAX_CONNS];
	unsigned slot[INTAKE_MAX_CONNS];

	ks_bus_allow();		/* the first sample of a VM goes into its mapping */
	for (;;) {
		int timeout = run_timers(in);
		bool accepting = in->accept_pause_until <= ks_mono_ns();
		nfds_t n = 2;

		pfd[0] = (struct pollfd) { .fd = in->wake_fd, .events = POLLIN };
		pfd[1] = (struct pollfd) { .fd = accepting ? in->listen_fd : -1,
					   .events = POLLIN };
		for (unsigned i = 0; i < in->nr_conns; i++) {
			if (in->conns[i] == NULL)
				continue;
			slot[n - 2] = i;
			pfd[n++] = (struct pollfd) { .fd = in->conns[i]->sock, .events = POLLIN };
		}
		if (poll(pfd, n, timeout) < 0)
			continue;	/* EINTR; signals are blocked here anyway */
		if (pfd[0].revents)
			break;
		for (nfds_t k = 2; k < n; k++) {
			if (pfd[k].revents == 0)
				continue;
			if (!conn_message(in, in->conns[slot[k - 2]]))
				conn_close(in, slot[k - 2], "connection closed");
		}
		if (pfd[1].revents)
			conn_accept(in);
	}
	for (unsigned i = 0; i < in->nr_conns; i++)
		if (in->conns[i])
			conn_close(in, i, "intake stopped");
	refusals_flush(in, UINT64_MAX);
	return NULL;
}

/* ---- start and stop ------------------------------------------------------- */

/*
 * Remove a leftover socket file of a previous run, but never another kind
 * of file, and never the socket of a daemon that still listens on it.
 */
static int
remove_stale(const struct sockaddr_un *sa, struct kvmstats_error *err)
{
	const char *path = sa->sun_path;
	struct stat st;
	int s, ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : ks_err(err, -errno, "intake: %s: %s", path,
						    strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return ks_err(err, -EEXIST, "intake: %s exists and is not a socket; not "
			      "removing it: choose another --listen path", path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ks_err(err, -errno, "intake: socket: %s", strerror(errno));
	ret = connect(s, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : -errno;
	close(s);
	if (ret == 0 || (ret != -ECONNREFUSED && ret != -ENOENT))
		return ks_err(err, -EADDRINUSE, "intake: %s is in use by a live socket%s%s; "
			      "is another kvmstatsd listening?", path, ret ? ": " : "",
			      ret ? strerror(-ret) : "");
	if (unlink(path) < 0 && errno != ENOENT)
		return ks_err(err, -errno, "intake: cannot remove stale socket %s: %s", path,
			      strerror(errno));
	return 0;
}

static int
open_listener(struct ks_intake *in, mode_t mode, struct kvmstats_error *err)
{
	struct sockaddr_un sa;
	struct stat st;
	int ret = ks_intake_addr(&sa, in->path, err);

	if (ret < 0)
		return ret;
	ret = ks_dir_check_parent(in->path, "directory of the intake socket", err);
	if (ret < 0)
		return ret;
	ret = remove_stale(&sa, err);
	if (ret < 0)
		return ret;
	in->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (in->listen_fd < 0)
		return ks_err(err, -errno, "intake: socket: %s", strerror(errno));
	if (bind(in->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return ks_err(err, -errno, "intake: bind %s: %s", in->path, strerror(errno));
	/* Recorded so that stop removes our socket, not a successor's. */
	if (stat(in->path, &st) == 0) {
		in->sock_dev = st.st_dev;
		in->sock_ino = st.st_ino;
	}
	if (chmod(in->path, mode) < 0)
		ret = ks_err(err, -errno, "intake: chmod %s %o: %s", in->path, (unsigned)mode,
			     strerror(errno));
	else if (listen(in->listen_fd, SOMAXCONN) < 0)
		ret = ks_err(err, -errno, "intake: listen %s: %s", in->path, strerror(errno));
	if (ret < 0)
		unlink(in->path);
	return ret;
}

static void
intake_free(struct ks_intake *in)
{
	struct stat st;

	if (in->listen_fd >= 0) {
		close(in->listen_fd);
		if (stat(in->path, &st) == 0 && st.st_dev == in->sock_dev &&
		    st.st_ino == in->sock_ino && S_ISSOCK(st.st_mode))
			unlink(in->path);
	}
	if (in->wake_fd >= 0)
		close(in->wake_fd);
	if (in->spare_fd >= 0)
		close(in->spare_fd);
	free(in->allow);
	free(in->path);
	free(in);
}

/* The thread takes no signals: they belong to the daemon's main thread. */
static int
start_thread(struct ks_intake *in, struct kvmstats_error *err)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&in->thread, NULL, intake_thread, in);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0)
		return ks_err(err, -ret, "intake: cannot start its thread: %s", strerror(ret));
	return 0;
}

int
ks_intake_start(struct ks_engine *e, const struct ks_intake_opts *o,
		struct ks_intake **out, struct kvmstats_error *err)
{
	struct ks_intake *in;
	int ret;

	if (e == NULL || o == NULL || out == NULL)
		return ks_err(err, -EINVAL, "intake: no engine or options");
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	in->listen_fd = in->wake_fd = in->spare_fd = -1;
	in->e = e;
	in->log = o->log;
	in->sched_hz = o->sched_hz;
	in->quiet_ns = (uint64_t)(o->quiet_ms ? o->quiet_ms : INTAKE_QUIET_MS) * 1000000ull;
	in->idle_ns = (uint64_t)(o->idle_ms ? o->idle_ms : INTAKE_IDLE_MS) * 1000000ull;
	in->max_per_uid = o->max_per_uid ? o->max_per_uid : KS_INTAKE_MAX_PER_UID;
	if (in->max_per_uid > INTAKE_MAX_CONNS)
		in->max_per_uid = INTAKE_MAX_CONNS;
	in->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	in->path = o->path ? strdup(o->path) : NULL;
	in->nr_allow = o->allow ? o->nr_allow : 0;
	in->allow = calloc(in->nr_allow ? in->nr_allow : 1, sizeof(*in->allow));
	if ((o->path && in->path == NULL) || in->allow == NULL) {
		ret = ks_err(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if (in->nr_allow)
		memcpy(in->allow, o->allow, in->nr_allow * sizeof(*in->allow));
	in->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (in->wake_fd < 0) {
		ret = ks_err(err, -errno, "intake: eventfd: %s", strerror(errno));
		goto fail;
	}
	ret = open_listener(in, o->mode ? o->mode : INTAKE_MODE, err);
	if (ret == 0)
		ret = start_thread(in, err);
	if (ret < 0)
		goto fail;
	ilog(in, "intake: listening on %s", in->path);
	*out = in;
	return 0;
fail:
	intake_free(in);
	return ret;
}

void
ks_intake_stop(struct ks_intake **ip)
{
	struct ks_intake *in = *ip;
	uint64_t one = 1;

	if (in == NULL)
		return;
	while (write(in->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(in->thread, NULL);
	intake_free(in);
	*ip = NULL;
}
