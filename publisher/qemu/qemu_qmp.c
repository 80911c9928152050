/* SPDX-License-Identifier: MIT */
/*
 * qemu_qmp.c - one query-cpus-fast over a QEMU QMP monitor (qemu_qmp.h).
 *
 * The exchange is three messages each way, one JSON object per line:
 *	<- greeting {"QMP": ...}
 *	-> {"execute": "qmp_capabilities", "id": "ks-1"}	<- {"return": {}, "id": "ks-1"}
 *	-> {"execute": "query-cpus-fast", "id": "ks-2"}		<- {"return": [...], "id": "ks-2"}
 * with events ({"event": ...}) skipped wherever they come.  Every wait is
 * bounded by one deadline for the whole exchange, and the caller can cut
 * it short through @cancel_fd: a QEMU whose main loop is busy (or not
 * running yet) must not hold up whoever asked.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ks_err.h"
#include "ks_text.h"
#include "qemu_qmp.h"

/* One reply line may be this long: 4096 vCPUs of ~250 bytes fit with room. */
#define QMP_LINE_MAX	(2u << 20)

struct qmp_conn {
	int fd;
	int cancel_fd;
	uint64_t deadline_ns;
	const char *path;
	char *buf;
	size_t len, cap;
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait for @events on the socket; 0, -ETIMEDOUT, -ECANCELED or -errno. */
static int
conn_wait(struct qmp_conn *c, short events)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = c->fd, .events = events },
			{ .fd = c->cancel_fd, .events = POLLIN },
		};
		uint64_t now = mono_ns();
		int r;

		if (now >= c->deadline_ns)
			return -ETIMEDOUT;
		r = poll(p, c->cancel_fd >= 0 ? 2 : 1,
			 (int)((c->deadline_ns - now + 999999) / 1000000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (c->cancel_fd >= 0 && p[1].revents)
			return -ECANCELED;
		if (p[0].revents)
			return 0;
	}
}

static int
conn_send(struct qmp_conn *c, const char *msg, struct kvmstats_error *err)
{
	size_t len = strlen(msg), off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, msg + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return ks_err(err, -errno, "QMP %s: send: %s", c->path, strerror(errno));
		r = conn_wait(c, POLLOUT);
		if (r < 0)
			return ks_err(err, r, "QMP %s: %s", c->path,
				      r == -ETIMEDOUT ? "QEMU did not take our command in time"
						      : strerror(-r));
	}
	return 0;
}

/* The next line from QEMU (NUL-terminated, without its end), or a negative errno. */
static int
conn_line(struct qmp_conn *c, char **line, struct kvmstats_error *err)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		ssize_t n;
		int r;

		if (nl != NULL) {
			size_t used = (size_t)(nl - c->buf) + 1;

			*line = strndup(c->buf, used - 1);
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			return *line ? 0 : ks_err(err, -ENOMEM, "out of memory");
		}
		if (c->len == QMP_LINE_MAX)
			return ks_err(err, -EPROTO, "QMP %s: a line of over %u bytes: not a QMP "
				      "monitor we can use", c->path, QMP_LINE_MAX);
		if (c->cap - c->len < 4096 && c->cap < QMP_LINE_MAX) {
			size_t cap = c->cap ? 2 * c->cap : 16384;
			char *b;

			if (cap > QMP_LINE_MAX)
				cap = QMP_LINE_MAX;
			b = realloc(c->buf, cap);
			if (b == NULL)
				return ks_err(err, -ENOMEM, "out of memory");
			c->buf = b;
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return ks_err(err, -ECONNRESET, "QMP %s: QEMU closed the connection (is "
				      "another client using this monitor?)", c->path);
		if (errno != EAGAIN && errno != EINTR)
			return ks_err(err, -errno, "QMP %s: recv: %s", c->path, strerror(errno));
		r = conn_wait(c, POLLIN);
		if (r == -ETIMEDOUT)
			return ks_err(err, r, "QMP %s: QEMU did not answer in time (a monitor "
				      "another client holds answers nobody else)", c->path);
		if (r < 0)
			return ks_err(err, r, "QMP %s: %s", c->path, strerror(-r));
	}
}

/*
 * The next message that is not an event, parsed.  @id: the reply must carry
 * it (NULL: the greeting, which has none).
 */
static int
conn_message(struct qmp_conn *c, const char *id, json_t **out, struct kvmstats_error *err)
{
	for (;;) {
		json_error_t je;
		json_t *m, *mid;
		char *line;
		int r = conn_line(c, &line, err);

		if (r < 0)
			return r;
		m = json_loads(line, JSON_REJECT_DUPLICATES, &je);
		free(line);
		if (m == NULL || !json_is_object(m)) {
			json_decref(m);
			return ks_err(err, -EPROTO, "QMP %s: QEMU sent something that is not a JSON "
				      "object: is this a QMP monitor (-qmp, not -monitor)?", c->path);
		}
		if (json_object_get(m, "event") != NULL) {
			json_decref(m);
			continue;
		}
		mid = json_object_get(m, "id");
		if (id != NULL && !(json_is_string(mid) && strcmp(json_string_value(mid), id) == 0)) {
			json_decref(m);
			return ks_err(err, -EPROTO, "QMP %s: a reply to a command we did not send",
				      c->path);
		}
		*out = m;
		return 0;
	}
}

/* Run @cmd (it carries @id); the "return" member of its reply in @ret. */
static int
conn_execute(struct qmp_conn *c, const char *cmd, const char *id, const char *name,
	     json_t **reply, json_t **ret, struct kvmstats_error *err)
{
	json_t *e;
	int r = conn_send(c, cmd, err);

	if (r == 0)
		r = conn_message(c, id, reply, err);
	if (r < 0)
		return r;
	*ret = json_object_get(*reply, "return");
	if (*ret != NULL)
		return 0;
	e = json_object_get(json_object_get(*reply, "error"), "desc");
	r = ks_err(err, -EPROTO, "QMP %s: %s failed: %s", c->path, name,
		   json_is_string(e) && ks_text_fault(json_string_value(e),
						       strlen(json_string_value(e)), NULL) == NULL
		   ? json_string_value(e) : "(no readable reason)");
	json_decref(*reply);
	*reply = NULL;
	return r;
}

static int
conn_open(struct qmp_conn *c, pid_t expect_pid, struct kvmstats_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	if (strlen(c->path) >= sizeof(sa.sun_path))
		return ks_err(err, -ENAMETOOLONG, "QMP socket path %s is too long", c->path);
	strcpy(sa.sun_path, c->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return ks_err(err, -errno, "socket: %s", strerror(errno));
	/*
	 * A Unix socket's connect() never goes "in progress": EAGAIN means the
	 * listener's backlog is full (QEMU's main loop is not accepting), and
	 * the socket stays unconnected.  Try again, every 10 ms, until the
	 * deadline or the caller gives up.
	 */
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		struct pollfd p = { .fd = c->cancel_fd, .events = POLLIN };
		int e = errno;

		if (e == EINTR)
			continue;
		if (e != EAGAIN)
			return ks_err(err, -e, "QMP %s: %s%s", c->path, strerror(e),
				      e == ENOENT || e == ECONNREFUSED
				      ? " (start QEMU with -qmp unix:PATH,server=on,wait=off for us)"
				      : "");
		if (mono_ns() >= c->deadline_ns)
			return ks_err(err, -ETIMEDOUT, "QMP %s: cannot connect: QEMU accepts no "
				      "connection (its backlog is full)", c->path);
		if (c->cancel_fd >= 0 && poll(&p, 1, 10) > 0)
			return ks_err(err, -ECANCELED, "QMP %s: given up", c->path);
		if (c->cancel_fd < 0)
			poll(NULL, 0, 10);
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		return ks_err(err, -errno, "QMP %s: SO_PEERCRED: %s", c->path, strerror(errno));
	if (expect_pid > 0 && cred.pid != expect_pid)
		return ks_err(err, -EPERM, "QMP %s is served by process %d, not by the VMM %d: "
			      "give a monitor of that QEMU", c->path, (int)cred.pid, (int)expect_pid);
	return 0;
}

/* One element of query-cpus-fast's list into @cpu. */
static int
take_cpu(const char *path, json_t *o, struct ks_qemu_cpu *cpu, struct kvmstats_error *err)
{
	json_t *tid = json_object_get(o, "thread-id");
	json_t *idx = json_object_get(o, "cpu-index");
	json_t *qom = json_object_get(o, "qom-path");
	const char *s;
	size_t len;

	if (!json_is_object(o) || !json_is_integer(tid) || !json_is_integer(idx) ||
	    !json_is_string(qom))
		return ks_err(err, -EPROTO, "QMP %s: query-cpus-fast gave a vCPU without "
			      "thread-id, cpu-index and qom-path", path);
	s = json_string_value(qom);
	len = json_string_length(qom);
	if (len == 0 || len > KS_QEMU_QOM_MAX || strlen(s) != len ||
	    ks_text_fault(s, len, NULL) != NULL)
		return ks_err(err, -EPROTO, "QMP %s: query-cpus-fast gave a QOM path that is "
			      "empty, over %d bytes or not printable text", path, KS_QEMU_QOM_MAX);
	if (json_integer_value(tid) <= 0 || json_integer_value(tid) > INT32_MAX)
		return ks_err(err, -EPROTO, "QMP %s: query-cpus-fast gave thread-id %" PRId64,
			      path, (int64_t)json_integer_value(tid));
	cpu->thread_id = (pid_t)json_integer_value(tid);
	cpu->cpu_index = json_integer_value(idx);
	memcpy(cpu->qom_path, s, len + 1);
	return 0;
}

static int
take_cpus(const char *path, json_t *list, struct ks_qemu_cpus *out, struct kvmstats_error *err)
{
	size_t n = json_is_array(list) ? json_array_size(list) : 0;

	if (!json_is_array(list) || n > KS_QEMU_CPUS_MAX)
		return ks_err(err, -EPROTO, "QMP %s: query-cpus-fast did not return a list of at "
			      "most %d vCPUs", path, KS_QEMU_CPUS_MAX);
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (out->v == NULL)
		return ks_err(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int r = take_cpu(path, json_array_get(list, i), &out->v[i], err);

		if (r < 0) {
			ks_qemu_cpus_clear(out);
			return r;
		}
		out->n = i + 1;
	}
	return 0;
}

int
ks_qemu_query_cpus(const char *path, pid_t expect_pid, unsigned timeout_ms, int cancel_fd,
		   struct ks_qemu_cpus *out, struct kvmstats_error *err)
{
	struct qmp_conn c = {
		.fd = -1,
		.cancel_fd = cancel_fd,
		.path = path,
		.deadline_ns = mono_ns() + 1000000ull * (timeout_ms ? timeout_ms
								: KS_QEMU_QMP_TIMEOUT_MS),
	};
	json_t *m = NULL, *ret;
	int r;

	memset(out, 0, sizeof(*out));
	r = conn_open(&c, expect_pid, err);
	if (r == 0)
		r = conn_message(&c, NULL, &m, err);
	if (r == 0 && json_object_get(m, "QMP") == NULL)
		r = ks_err(err, -EPROTO, "QMP %s: no QMP greeting: is this a QMP monitor "
			   "(-qmp, not -monitor)?", path);
	json_decref(m);
	m = NULL;
	if (r == 0)
		r = conn_execute(&c, "{\"execute\": \"qmp_capabilities\", \"id\": \"ks-1\"}\n",
				 "ks-1", "qmp_capabilities", &m, &ret, err);
	json_decref(m);
	m = NULL;
	if (r == 0)
		r = conn_execute(&c, "{\"execute\": \"query-cpus-fast\", \"id\": \"ks-2\"}\n",
				 "ks-2", "query-cpus-fast", &m, &ret, err);
	if (r == 0)
		r = take_cpus(path, ret, out, err);
	json_decref(m);
	if (c.fd >= 0)
		close(c.fd);
	free(c.buf);
	return r;
}

void
ks_qemu_cpus_clear(struct ks_qemu_cpus *c)
{
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/*
 * With -accel kvm every vCPU has a thread of its own; a thread-id listed
 * twice (TCG's single thread, or a monitor we should not trust) names no
 * vCPU, so no two targets ever get one label.
 */
const char *
ks_qemu_qom_of_tid(const struct ks_qemu_cpus *c, pid_t tid)
{
	const char *found = NULL;

	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].thread_id != tid)
			continue;
		if (found != NULL)
			return NULL;
		found = c->v[i].qom_path;
	}
	return found;
}

const char *
ks_qemu_qom_of_id(const struct ks_qemu_cpus *c, const char *id)
{
	unsigned long tid;
	char *end;

	if (strncmp(id, "kvm-", 4) != 0 || id[4] < '0' || id[4] > '9')
		return NULL;
	errno = 0;
	tid = strtoul(id + 4, &end, 10);
	if (errno != 0 || tid == 0 || tid > INT32_MAX || strncmp(end, "/vcpu-", 6) != 0)
		return NULL;
	return ks_qemu_qom_of_tid(c, (pid_t)tid);
}
