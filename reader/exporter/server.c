/* SPDX-License-Identifier: MIT */
/* server.c - the exporter's state and its HTTP face (libmicrohttpd). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exporter_log.h"
#include "exposition.h"
#include "outbuf.h"
#include "server.h"

int
ex_server_init(struct ex_server *s, const struct ex_config *cfg, const char *path)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	s->path = path;
	s->fs = families_new();
	if (s->fs == NULL)
		return -ENOMEM;
	rc = expo_register_own(s->fs);
	if (rc == 0)
		rc = vmset_init(&s->vs, cfg, s->fs);
	if (rc < 0) {
		families_free(s->fs);
		return rc;
	}
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

void
ex_server_clear(struct ex_server *s)
{
	ex_server_stop(s);
	vmset_clear(&s->vs);
	families_free(s->fs);
	pthread_mutex_destroy(&s->lock);
}

int
ex_server_scrape(struct ex_server *s, enum expo_format fmt, char **data, size_t *len)
{
	struct outbuf b;
	uint64_t start;

	outbuf_init(&b);
	pthread_mutex_lock(&s->lock);
	start = kvmstats_now_ns();
	/* Sized once, not grown by doubling (and copying) as it fills. */
	outbuf_space(&b, s->size_hint + s->size_hint / 8);
	vmset_refresh(&s->vs);
	expo_write(&b, fmt, &s->vs, start);
	s->size_hint = b.len;
	pthread_mutex_unlock(&s->lock);
	if (outbuf_failed(&b)) {
		outbuf_free(&b);
		return -ENOMEM;
	}
	*data = outbuf_take(&b, len);
	return 0;
}

/* ---- HTTP --------------------------------------------------------------- */

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len,
      bool must_free)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, must_free ? MHD_RESPMEM_MUST_FREE
							       : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* An answer being sent: freed, and its bytes given back, when the last byte is out. */
struct sending {
	struct ex_server *s;
	char *body;
	size_t len;
};

static void
sent(void *cls)
{
	struct sending *sd = cls;

	/* Pairs with the add in reply_scrape(): a plain count, no ordering needed. */
	atomic_fetch_sub_explicit(&sd->s->inflight, sd->len, memory_order_relaxed);
	free(sd->body);
	free(sd);
}

static enum MHD_Result
reply_scrape(struct ex_server *s, struct MHD_Connection *c, const char *type, char *body,
	     size_t len)
{
	struct sending *sd = malloc(sizeof(*sd));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (sd == NULL) {
		free(body);
		return MHD_NO;
	}
	*sd = (struct sending) { s, body, len };
	atomic_fetch_add_explicit(&s->inflight, len, memory_order_relaxed);
	r = MHD_create_response_from_buffer_with_free_callback_cls(len, body, sent, sd);
	if (r == NULL) {
		sent(sd);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	return reply(c, status, "text/plain; charset=utf-8", (char *)text, strlen(text), false);
}

static enum MHD_Result
index_page(struct ex_server *s, struct MHD_Connection *c)
{
	struct outbuf b;
	size_t len;
	char *body;

	/* The path is letters, digits and /._- (options.c): nothing to escape. */
	outbuf_init(&b);
	outbuf_printf(&b,
		"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		"<title>kvmstats exporter</title></head>\n<body>\n"
		"<h1>kvmstats exporter</h1>\n"
		"<p>KVM statistics of the VMs that kvmstats publishes on this host.</p>\n"
		"<p><a href=\"%s\">Metrics</a></p>\n"
		"<p>Version %s</p>\n</body></html>\n", s->path, KS_VERSION);
	if (outbuf_failed(&b)) {
		outbuf_free(&b);
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	body = outbuf_take(&b, &len);
	return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", body, len, true);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size,
	   void **con_cls)
{
	static int seen;	/* marks a request whose headers have come */
	struct ex_server *s = cls;
	enum expo_format fmt;
	size_t len;
	char *body;

	(void)version;
	(void)upload_data;
	if (*con_cls == NULL) {
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;	/* a body on a GET: read and ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (strcmp(url, "/") == 0)
		return index_page(s, c);
	if (strcmp(url, s->path) != 0)
		return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are elsewhere, "
				  "see /\n");
	if (atomic_load_explicit(&s->inflight, memory_order_relaxed) > EX_INFLIGHT_MAX)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy: too many answers are "
				  "still being read by slow clients; try again\n");
	fmt = negotiate_format(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							   MHD_HTTP_HEADER_ACCEPT));
	if (ex_server_scrape(s, fmt, &body, &len) < 0)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return reply_scrape(s, c, negotiate_content_type(fmt), body, len);
}

/* libmicrohttpd's own messages (it gives the format). */
static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	ex_log("http: %s", msg);
}

/* Split HOST:PORT, [HOST]:PORT or :PORT into @host ("" for any) and @port. */
static bool
split_addr(const char *addr, char *host, size_t hlen, const char **port)
{
	const char *colon;
	size_t n;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (close == NULL || close[1] != ':')
			return false;
		n = (size_t)(close - addr - 1);
		colon = close + 1;
		addr++;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
			return false;
		n = (size_t)(colon - addr);
	}
	if (n >= hlen || colon[1] == '\0')
		return false;
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = colon + 1;
	if (strlen(*port) > 5)
		return false;
	for (const char *p = *port; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return atoi(*port) <= 65535;	/* 0: any free port */
}

static int
open_listener(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256], shown[INET6_ADDRSTRLEN + 16];
	const char *port;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1, rc;

	if (!split_addr(addr, host, sizeof(host), &port)) {
		ex_say("--web.listen-address '%s': give HOST:PORT, [IPV6]:PORT or :PORT, "
			     "with a port from 0 (any free one) to 65535", addr);
		return -2;
	}
	/* ":PORT" is every address: IPv6 and IPv4 on one socket, or IPv4 alone. */
	if (host[0] == '\0') {
		hints.ai_family = AF_INET6;
		rc = getaddrinfo(NULL, port, &hints, &res);
		if (rc == 0) {
			fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0) {
				freeaddrinfo(res);
				res = NULL;
			} else {
				int zero = 0;

				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			}
		}
		if (res == NULL)
			hints.ai_family = AF_INET;
	}
	if (res == NULL) {
		rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
		if (rc != 0) {
			ex_say("--web.listen-address '%s': %s", addr, gai_strerror(rc));
			return -2;
		}
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;

		ex_say("cannot listen on %s: %s%s", addr, strerror(e),
			     e == EADDRINUSE ? " (another exporter running? choose another port with "
					       "--web.listen-address)"
			     : e == EACCES ? " (ports below 1024 need privileges)" : "");
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		char ip[INET6_ADDRSTRLEN] = "?";
		unsigned p = 0;

		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			p = ntohs(in->sin_port);
			snprintf(shown, sizeof(shown), "%s:%u", ip, p);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			p = ntohs(in6->sin6_port);
			snprintf(shown, sizeof(shown), "[%s]:%u", ip, p);
		}
		ex_log("listening on %s", shown);
	}
	return fd;
}

int
ex_server_listen(struct ex_server *s, const char *addr, const struct ex_options *o)
{
	int fd = open_listener(addr);

	if (fd < 0)
		return fd == -2 ? EX_EXIT_USAGE : EX_EXIT_RUNTIME;
	/*
	 * libmicrohttpd closes the socket it is given, when it stops and on
	 * some failures to start: it gets a copy, and ours (for getsockname())
	 * stays ours to close.
	 */
	s->listen_fd = fd;
	fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		ex_say("cannot start the HTTP server on %s: %s", addr, strerror(errno));
		close(s->listen_fd);
		s->listen_fd = -1;
		return EX_EXIT_RUNTIME;
	}
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
				  MHD_USE_ERROR_LOG,
				  0, NULL, NULL, on_request, s,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)o->threads,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->max_connections,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->timeout_s,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
				  MHD_OPTION_END);
	if (s->mhd == NULL) {
		ex_say("cannot start the HTTP server on %s", addr);
		close(s->listen_fd);
		s->listen_fd = -1;
		return EX_EXIT_RUNTIME;
	}
	return EX_EXIT_OK;
}

void
ex_server_stop(struct ex_server *s)
{
	if (s->mhd != NULL) {
		MHD_stop_daemon(s->mhd);
		s->mhd = NULL;
	}
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
}
