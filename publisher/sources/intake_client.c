/* SPDX-License-Identifier: MIT */
/*
 * intake_client.c - the public client of the intake socket
 * (kvmstats/intake.h): what a VMM, the preload shim or a test uses to hand
 * stats fds to kvmstatsd.  Blocking, one message and its reply at a time.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "intake_wire.h"
#include "kvmstats/intake.h"
#include "ks_abi.h"
#include "ks_err.h"
#include "ks_text.h"

int
kvmstats_intake_connect(const char *path, struct kvmstats_error *err)
{
	struct sockaddr_un sa;
	char esc[256];
	int s, ret = ks_intake_addr(&sa, path, err);

	if (ret < 0)
		return ret;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ks_err(err, -errno, "intake: socket: %s", strerror(errno));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return s;
	ret = -errno;
	close(s);
	ks_text_escape(esc, sizeof(esc), path);
	if (ret == -ENOENT || ret == -ECONNREFUSED)
		return ks_err(err, ret, "intake: no kvmstatsd listening at %s (%s): start it "
			      "with --listen %s", esc, strerror(-ret), esc);
	if (ret == -EACCES)
		return ks_err(err, ret, "intake: %s: permission denied: the socket's mode or "
			      "directory does not let this user in", esc);
	return ks_err(err, ret, "intake: connect %s: %s", esc, strerror(-ret));
}

/*
 * Wait for the reply (@wait false: only one already queued).  A daemon that
 * refused us may have closed with our message unread, which queues
 * ECONNRESET ahead of its reply: read once more.  *@got: a reply was read.
 */
static int
recv_reply(int sock, bool wait, bool *got, struct kvmstats_error *err)
{
	int flags = MSG_TRUNC | (wait ? 0 : MSG_DONTWAIT);
	struct ks_intake_reply r;
	int resets = 0;
	ssize_t n;

	*got = false;
	for (;;) {
		n = recv(sock, &r, sizeof(r), flags);
		if (n >= 0)
			break;
		if (errno == EINTR || (errno == ECONNRESET && resets++ == 0))
			continue;
		return ks_err(err, -errno, "intake: no reply from kvmstatsd: %s",
			      strerror(errno));
	}
	if (n == 0)
		return ks_err(err, -ECONNRESET, "intake: kvmstatsd closed the connection "
			      "without a reply");
	*got = true;
	if (n != (ssize_t)sizeof(r) || r.magic != KS_INTAKE_MAGIC || r.status > 0)
		return ks_err(err, -EPROTO, "intake: malformed reply from kvmstatsd (%zd bytes)",
			      n);
	if (r.status == 0)
		return 0;
	r.msg[sizeof(r.msg) - 1] = '\0';
	return ks_err(err, r.status, "%s", r.msg);
}

static int
send_msg(int sock, const struct ks_intake_msg *m, int fd, struct kvmstats_error *err)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	bool got;
	ssize_t n;
	int e, ret;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(*m))
		return recv_reply(sock, true, &got, err);
	if (n >= 0)
		return ks_err(err, -EIO, "intake: short send (%zd bytes)", n);
	e = errno;
	/* Refused, then closed: the daemon's reason may be waiting for us. */
	if (e == EPIPE || e == ECONNRESET) {
		ret = recv_reply(sock, false, &got, err);
		if (got)
			return ret < 0 ? ret : ks_err(err, -e, "intake: kvmstatsd closed the "
						      "connection");
	}
	return ks_err(err, -e, "intake: send: %s", strerror(e));
}

static int
fill_msg(struct ks_intake_msg *m, const char *vm, const char *label,
	 struct kvmstats_error *err)
{
	memset(m, 0, sizeof(*m));
	m->magic = KS_INTAKE_MAGIC;
	m->version = KS_INTAKE_VERSION;
	if (vm == NULL || vm[0] == '\0')
		return ks_err(err, -EINVAL, "intake: no VM name");
	if (strlen(vm) >= sizeof(m->vm))
		return ks_err(err, -ENAMETOOLONG, "intake: a VM name of %zu bytes is longer "
			      "than %zu", strlen(vm), sizeof(m->vm) - 1);
	if (label && strlen(label) >= sizeof(m->label))
		return ks_err(err, -ENAMETOOLONG, "intake: a label of %zu bytes is longer than "
			      "%zu", strlen(label), sizeof(m->label) - 1);
	memcpy(m->vm, vm, strlen(vm));
	if (label)
		memcpy(m->label, label, strlen(label));
	return 0;
}

int
kvmstats_intake_send_fd(int sock, const char *vm, enum kvmstats_target_kind kind,
			uint32_t vcpu_index, const char *label, int fd,
			struct kvmstats_error *err)
{
	struct ks_intake_msg m;
	int ret = fill_msg(&m, vm, label, err);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return ks_err(err, -EBADF, "intake: no fd to send");
	if (kind != KVMSTATS_TARGET_VM && kind != KVMSTATS_TARGET_VCPU)
		return ks_err(err, -EINVAL, "intake: target kind %d is neither the VM nor a "
			      "vCPU", (int)kind);
	m.op = KS_INTAKE_OP_FD;
	m.kind = (uint32_t)kind;
	m.vcpu_index = kind == KVMSTATS_TARGET_VM ? KS_VCPU_INDEX_NONE : vcpu_index;
	return send_msg(sock, &m, fd, err);
}

/* OP_PUBLISH or OP_END for @vm. */
static int
send_op(int sock, const char *vm, enum ks_intake_op op, struct kvmstats_error *err)
{
	struct ks_intake_msg m;
	int ret = fill_msg(&m, vm, NULL, err);

	if (ret < 0)
		return ret;
	m.op = (uint16_t)op;
	return send_msg(sock, &m, -1, err);
}

int
kvmstats_intake_publish(int sock, const char *vm, struct kvmstats_error *err)
{
	return send_op(sock, vm, KS_INTAKE_OP_PUBLISH, err);
}

int
kvmstats_intake_end(int sock, const char *vm, struct kvmstats_error *err)
{
	return send_op(sock, vm, KS_INTAKE_OP_END, err);
}
