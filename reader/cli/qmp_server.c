/* SPDX-License-Identifier: MIT */
/*
 * qmp_server.c - the poll loop, its endpoints and clients (qmp_server.h).
 *
 * An endpoint is a listening socket and the VM it answers for; a client
 * is one connection, with its QMP session.  Per round, each client gets
 * one read and at most KS_QMP_BATCH of its messages answered, and is not
 * read at all while KS_QMP_DEFAULT_MAX_OUTPUT of its replies wait unread:
 * a client that floods gets its answers at the pace it reads them, and
 * everyone else is served in between.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp_dispatch.h"
#include "qmp_framer.h"
#include "qmp_server.h"
#include "qmp_vm.h"
#include "ks_shmdir.h"

#define KS_QMP_READ_CHUNK	(16 * 1024)
#define KS_QMP_BATCH		64	/* messages of one client per round */

struct endpoint {
	struct ks_qmp_listener l;
	struct ks_qmp_vm vm;
	bool seen;			/* directory mode: still in the directory */
};

struct client {
	int fd;
	struct endpoint *ep;
	struct ks_qmp_session s;
	struct ks_qmp_framer fr;
	char *in;
	size_t in_len, scanned;		/* bytes held, bytes the framer has seen */
	char *out;
	size_t out_len, out_off;	/* reply bytes held, bytes sent */
	bool eof;			/* the client shut its side */
	bool closing;			/* close once the output is sent */
};

struct server {
	const struct ks_qmp_config *cfg;
	struct endpoint **eps;
	size_t n_eps;
	struct client **cl;
	size_t n_cl;
	bool listen_failed;
};

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

/* ---- output ------------------------------------------------------------ */

static size_t
out_pending(const struct client *c)
{
	return c->out_len - c->out_off;
}

static void
append_out(struct client *c, const char *buf, size_t len)
{
	char *n;

	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	n = realloc(c->out, c->out_len + len);
	if (!n) {
		c->closing = true;	/* out of memory: this client goes, not the server */
		return;
	}
	c->out = n;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
}

/* Run @fn with a FILE and append what it wrote to the client's output. */
static void
reply_with(struct client *c, void (*fn)(struct client *c, FILE *f, const void *arg),
	   const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		c->closing = true;
		return;
	}
	fn(c, f, arg);
	if (fclose(f) == 0)
		append_out(c, buf, len);
	else
		c->closing = true;
	free(buf);
}

static void
greet(struct client *c, FILE *f, const void *arg)
{
	(void)c;
	(void)arg;
	ks_qmp_greeting(f);
}

static void
error_then_close(struct client *c, FILE *f, const void *desc)
{
	ks_qmp_error(f, "GenericError", desc);
	c->closing = true;
}

struct msg {
	const char *p;
	size_t len;
};

static void
handle(struct client *c, FILE *f, const void *arg)
{
	const struct msg *m = arg;

	ks_qmp_handle(&c->s, m->p, m->len, f);
}

/* Send what the socket takes now; never wait. */
static void
flush_out(struct client *c)
{
	while (out_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_off, out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->closing = true;
			c->out_off = c->out_len;	/* nobody to send it to */
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
}

/* ---- input ------------------------------------------------------------- */

/* Answer complete messages, KS_QMP_BATCH at most, while the output has room. */
static void
process(const struct server *sv, struct client *c)
{
	char desc[160];
	size_t start = 0, end = 0, pending;
	bool done = false;

	for (int i = 0; i < KS_QMP_BATCH && !c->closing &&
	     out_pending(c) < sv->cfg->max_output; i++) {
		done = ks_qmp_framer_next(&c->fr, c->in, c->in_len, &c->scanned, &start, &end);

		if (c->fr.too_deep) {
			reply_with(c, error_then_close, "JSON nesting depth limit exceeded; "
				   "closing the connection");
			return;
		}
		if (!done)
			break;
		if (end - start > sv->cfg->max_input)
			break;
		reply_with(c, handle, &(struct msg){ c->in + start, end - start });
	}
	pending = ks_qmp_framer_pending(&c->fr, c->scanned);
	/* Bytes before the first unanswered message are done with. */
	if (pending > 0) {
		memmove(c->in, c->in + pending, c->in_len - pending);
		c->in_len -= pending;
		c->scanned -= pending;
		ks_qmp_framer_shift(&c->fr, pending);
	}
	snprintf(desc, sizeof(desc), "QMP input message larger than %zu bytes; closing the "
		 "connection", sv->cfg->max_input);
	if (done && end - start > sv->cfg->max_input) {
		reply_with(c, error_then_close, desc);
		return;
	}
	if (c->fr.in_msg && c->scanned - c->fr.start > sv->cfg->max_input) {
		reply_with(c, error_then_close, desc);
	}
}

/* Whether the client has messages we could answer without reading more. */
static bool
has_backlog(const struct server *sv, const struct client *c)
{
	return !c->closing && c->scanned < c->in_len && out_pending(c) < sv->cfg->max_output;
}

static void
read_in(const struct server *sv, struct client *c)
{
	size_t cap = sv->cfg->max_input + KS_QMP_READ_CHUNK;
	ssize_t n;

	if (!c->in) {
		c->in = malloc(cap);
		if (!c->in) {
			c->closing = true;
			return;
		}
	}
	if (c->in_len >= cap)
		return;	/* process() refuses an oversized message first */
	n = recv(c->fd, c->in + c->in_len, cap - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		c->eof = true;
		return;
	}
	c->in_len += (size_t)n;
}

/* ---- clients ----------------------------------------------------------- */

static void
drop_client(struct server *sv, size_t i)
{
	struct client *c = sv->cl[i];

	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	sv->cl[i] = sv->cl[--sv->n_cl];
}

static void
refuse(const struct server *sv, int fd)
{
	char line[200];
	int n = snprintf(line, sizeof(line), "{\"error\": {\"class\": \"GenericError\", "
			 "\"desc\": \"Too many QMP clients (%u); try again later\"}}\r\n",
			 sv->cfg->max_clients);

	/* Best effort: a full socket buffer just loses the courtesy. */
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0;
	close(fd);
}

static void
accept_clients(struct server *sv, struct endpoint *ep)
{
	for (;;) {
		int fd = accept4(ep->l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c, **cl;

		if (fd < 0)
			return;	/* EAGAIN, or a connection that went before we took it */
		if (sv->n_cl >= sv->cfg->max_clients) {
			refuse(sv, fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		cl = realloc(sv->cl, (sv->n_cl + 1) * sizeof(*cl));
		if (!c || !cl) {
			free(c);
			if (cl)
				sv->cl = cl;
			close(fd);
			continue;
		}
		sv->cl = cl;
		c->fd = fd;
		c->ep = ep;
		ks_qmp_session_init(&c->s, &ep->vm.src);
		ks_qmp_framer_init(&c->fr);
		sv->cl[sv->n_cl++] = c;
		reply_with(c, greet, NULL);
		flush_out(c);
	}
}

/* ---- endpoints --------------------------------------------------------- */

static struct endpoint *
add_endpoint(struct server *sv, const char *path, const char *vm)
{
	struct endpoint *ep = calloc(1, sizeof(*ep)), **eps;
	char why[512];

	eps = realloc(sv->eps, (sv->n_eps + 1) * sizeof(*eps));
	if (!ep || !eps) {
		free(ep);
		if (eps)
			sv->eps = eps;
		ks_cli_error(sv->cfg->cli, "%s: out of memory", path);
		return NULL;
	}
	sv->eps = eps;
	if (ks_qmp_listen(&ep->l, path, &sv->cfg->sock, why, sizeof(why)) < 0) {
		ks_cli_error(sv->cfg->cli, "%s", why);
		sv->listen_failed = true;
		if (!sv->cfg->listen_dir) {
			free(ep);
			return NULL;
		}
		/*
		 * Kept without a socket (poll() skips fd -1) until the VM goes,
		 * so that the failure is said once, not at every rescan.
		 */
	}
	ks_qmp_vm_init(&ep->vm, sv->cfg->cli, vm);
	ep->seen = true;
	sv->eps[sv->n_eps++] = ep;
	return ep;
}

static void
drop_endpoint(struct server *sv, size_t i)
{
	struct endpoint *ep = sv->eps[i];

	for (size_t k = sv->n_cl; k-- > 0;)
		if (sv->cl[k]->ep == ep)
			drop_client(sv, k);
	ks_qmp_unlisten(&ep->l);
	ks_qmp_vm_free(&ep->vm);
	free(ep);
	sv->eps[i] = sv->eps[--sv->n_eps];
}

/* ---- directory mode: an endpoint per VM, while the VM lasts ------------ */

static struct endpoint *
find_endpoint(const struct server *sv, const char *vm)
{
	for (size_t i = 0; i < sv->n_eps; i++)
		if (strcmp(sv->eps[i]->vm.name, vm) == 0)
			return sv->eps[i];
	return NULL;
}

static int
scan_one(const char *segment_file, void *arg)
{
	struct server *sv = arg;
	const char *vm = ks_vm_name_of(segment_file);
	struct endpoint *ep = find_endpoint(sv, vm);
	struct ks_qmp_vm probe;
	char path[512];
	int h;

	if (ep) {
		ep->seen = true;
		return 0;
	}
	/* Only a VM that runs gets a socket: not an ended or broken leftover. */
	ks_qmp_vm_init(&probe, sv->cfg->cli, vm);
	h = ks_qmp_vm_health(&probe);
	ks_qmp_vm_free(&probe);
	if (h != KVMSTATS_HEALTH_LIVE && h != KVMSTATS_HEALTH_STALE)
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.qmp", sv->cfg->listen_dir, vm) >=
	    sizeof(path))
		return 0;
	ep = add_endpoint(sv, path, vm);
	if (ep && ep->l.fd >= 0)
		ks_cli_error(sv->cfg->cli, "serving VM '%s' on %s", vm, path);
	return 0;
}

static void
rescan(struct server *sv)
{
	struct kvmstats_error err = { 0 };

	for (size_t i = 0; i < sv->n_eps; i++)
		sv->eps[i]->seen = false;
	sv->listen_failed = false;
	if (kvmstats_enumerate(sv->cfg->cli->dir, scan_one, sv, &err) < 0) {
		for (size_t i = 0; i < sv->n_eps; i++)
			sv->eps[i]->seen = true;	/* cannot tell: keep them */
		return;
	}
	for (size_t i = sv->n_eps; i-- > 0;) {
		struct endpoint *ep = sv->eps[i];
		int h = ep->seen ? ks_qmp_vm_health(&ep->vm) : -1;

		if (ep->seen && h != KVMSTATS_HEALTH_ENDED && h >= 0)
			continue;
		if (ep->l.fd >= 0)
			ks_cli_error(sv->cfg->cli, "VM '%s' is gone: removing %s", ep->vm.name,
				     ep->l.path);
		drop_endpoint(sv, i);
	}
}

/* ---- the loop ---------------------------------------------------------- */

static short
client_events(const struct server *sv, const struct client *c)
{
	short ev = 0;

	if (!c->eof && !c->closing && out_pending(c) < sv->cfg->max_output)
		ev |= POLLIN;
	if (out_pending(c) > 0)
		ev |= POLLOUT;
	return ev;
}

static void
round_trip(struct server *sv, struct pollfd *pfd, size_t n_eps, size_t n_cl)
{
	/* Clients first: accepting may append to (and reorder nothing in) sv->cl. */
	for (size_t i = 0; i < n_cl; i++) {
		struct client *c = sv->cl[i];
		short re = pfd[n_eps + i].revents;

		if (re & (POLLIN | POLLHUP | POLLERR))
			if (pfd[n_eps + i].events & POLLIN)
				read_in(sv, c);
		process(sv, c);
		if (re & (POLLOUT | POLLERR | POLLHUP) || out_pending(c) > 0)
			flush_out(c);
		/* Shut its side: answer what it sent, then close. */
		if (c->eof && c->scanned >= c->in_len)
			c->closing = true;
	}
	for (size_t i = sv->n_cl; i-- > 0;) {
		struct client *c = sv->cl[i];

		if (c->closing && out_pending(c) == 0)
			drop_client(sv, i);
	}
	for (size_t i = 0; i < n_eps && i < sv->n_eps; i++)
		if (pfd[i].revents & POLLIN)
			accept_clients(sv, sv->eps[i]);
}

static int
loop(struct server *sv, const sigset_t *waitmask)
{
	struct pollfd *pfd = NULL;
	uint64_t next_scan = 0;

	while (!stop_signal) {
		size_t n_eps = sv->n_eps, n_cl = sv->n_cl, n = n_eps + n_cl;
		struct timespec ts = { 0, 0 };
		struct pollfd *p = realloc(pfd, (n + 1) * sizeof(*p));
		bool backlog = false;
		uint64_t now;

		if (!p)
			break;
		pfd = p;
		for (size_t i = 0; i < n_eps; i++)
			pfd[i] = (struct pollfd){ .fd = sv->eps[i]->l.fd, .events = POLLIN };
		for (size_t i = 0; i < n_cl; i++) {
			pfd[n_eps + i] = (struct pollfd){ .fd = sv->cl[i]->fd,
							  .events = client_events(sv, sv->cl[i]) };
			backlog |= has_backlog(sv, sv->cl[i]);
		}
		now = kvmstats_now_ns();
		if (!backlog) {
			uint64_t wait = sv->cfg->listen_dir && next_scan > now ? next_scan - now :
					sv->cfg->listen_dir ? 0 : 1000000000ull;

			ts.tv_sec = (time_t)(wait / 1000000000ull);
			ts.tv_nsec = (long)(wait % 1000000000ull);
		}
		if (ppoll(pfd, n, &ts, waitmask) < 0 && errno != EINTR)
			break;
		if (stop_signal)
			break;
		round_trip(sv, pfd, n_eps, n_cl);
		if (sv->cfg->listen_dir && kvmstats_now_ns() >= next_scan) {
			rescan(sv);
			next_scan = kvmstats_now_ns() + sv->cfg->rescan_ms * 1000000ull;
		}
	}
	free(pfd);
	return KS_EXIT_OK;
}

/* SIGINT and SIGTERM are taken only inside ppoll(): none is lost between checks. */
static void
setup_signals(sigset_t *waitmask)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, waitmask);
	sigdelset(waitmask, SIGINT);
	sigdelset(waitmask, SIGTERM);
}

int
ks_qmp_serve(const struct ks_qmp_config *cfg)
{
	struct server sv = { .cfg = cfg };
	sigset_t waitmask;
	int rc = KS_EXIT_OK;

	setup_signals(&waitmask);
	if (cfg->listen_dir) {
		rescan(&sv);
		if (sv.listen_failed)
			ks_cli_error(cfg->cli, "some VMs have no socket (see above); serving "
				     "the others");
	} else if (!add_endpoint(&sv, cfg->listen, cfg->vm)) {
		rc = KS_EXIT_RUNTIME;
	} else {
		ks_cli_error(cfg->cli, "serving VM '%s' on %s", cfg->vm, cfg->listen);
	}
	if (rc == KS_EXIT_OK)
		rc = loop(&sv, &waitmask);
	while (sv.n_eps > 0)
		drop_endpoint(&sv, sv.n_eps - 1);
	free(sv.eps);
	free(sv.cl);
	return rc;
}
