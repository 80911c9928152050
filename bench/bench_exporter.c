/* SPDX-License-Identifier: MIT */
/*
 * bench_exporter.c - what a Prometheus scrape of kvmstats-exporter costs,
 * beside what a user pays today for the same numbers: one QMP query-stats
 * of the vm and one of the vcpu target per VM, over each VM's own JSON
 * socket, one VM after another (what a libvirt- or QMP-based exporter
 * does).
 *
 *   bench_exporter [-n SCRAPES] [-b BASELINE_SCRAPES] [-c CONFIGS] [-j JSON]
 *
 * CONFIGS: VMSxVCPUS,... (default 1x8,1x256,64x8,200x4).  Per config, a
 * child process publishes that many simulated VMs (the kernel's x86 stats
 * layout, in memfds) at 10 Hz and runs one JSON server thread per VM, as
 * each QEMU has its monitor; this process runs the exporter's HTTP server
 * (the real one, libmicrohttpd, a thread pool) and the client.
 *
 * Reported per config and mode (per-VM sums, per-vCPU series): scrape
 * latency over HTTP on loopback (keep-alive, p50/p99), the exporter's CPU
 * per scrape (this process's CPU time less the client thread's), the
 * baseline's latency and CPU (its server threads' and its client's), the
 * series per VM and the exporter's RSS.  Goal (issue 9): a 64 VM x 8 vCPU
 * scrape in <= 5 ms and >= 100x faster than the JSON path.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "bench_qmp.h"
#include "bench_util.h"
#include "exporter_log.h"
#include "kvmstats/publisher.h"
#include "kvmstats/reader.h"
#include "options.h"
#include "server.h"
#include "sim_vm.h"
#include "statsfd.h"

static void __attribute__((noreturn))
die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_exporter: %s: %s\n", what, msg);
	exit(1);
}

static double
cpu_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* utime + stime of process @pid, in ns (clock ticks: coarse, so taken over many scrapes). */
static double
proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL)
		die("read", path);
	fclose(f);
	p = strrchr(buf, ')');
	/* After ") S ": fields 4..13, then utime (14) and stime (15). */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&ut, &st) != 2)
		die("parse", path);
	return (double)(ut + st) * 1e9 / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the child: the VMs, their publisher, one JSON server per VM ----------- */

struct json_server {
	struct ks_sim_vm *sim;
	struct kvmstats_segment *seg;	/* the schema's names, as QEMU knows them */
	struct ks_statsfd_schema vm_schema, vcpu_schema;
	unsigned nr_vcpus;
	int sock;
	char *json;
	uint64_t *vals;
};

/* A request is one byte: 0 query-stats target vm, 1 target vcpu. */
static void *
json_server_main(void *arg)
{
	struct json_server *js = arg;
	uint8_t req;

	while (qmp_recv_all(js->sock, &req, 1)) {
		char *p = js->json;
		unsigned first = req == 0 ? 0 : 1, last = req == 0 ? 0 : js->nr_vcpus;
		uint32_t len;

		p += sprintf(p, "{\"return\":[");
		for (unsigned t = first; t <= last; t++) {
			const struct ks_statsfd_schema *s = t ? &js->vcpu_schema : &js->vm_schema;
			int fd = ks_sim_vm_stats_fd(js->sim, (int)t - 1);

			if (ks_statsfd_read_data(fd, s, js->vals) < 0)
				die("pread", "stats fd");
			if (t > first)
				*p++ = ',';
			p = qmp_format_target(js->seg, p, t, js->vals);
		}
		p += sprintf(p, "]}");
		len = (uint32_t)(p - js->json);
		if (!qmp_send_all(js->sock, &len, 4) || !qmp_send_all(js->sock, js->json, len))
			break;
	}
	return NULL;
}

static void
child_main(const char *dir, unsigned nr_vms, unsigned nr_vcpus, const int *socks, int ready)
{
	struct kvmstats_publisher_opts o;
	struct kvmstats_publisher *pub;
	struct kvmstats_error err;
	struct json_server *js = calloc(nr_vms, sizeof(*js));
	pthread_t *threads = calloc(nr_vms, sizeof(*threads));
	struct kvmstats_fd *fds = calloc(nr_vcpus + 1, sizeof(*fds));
	char c = 1;

	kvmstats_publisher_opts_init(&o);
	o.hz = 10;
	o.dir = dir;
	if (js == NULL || threads == NULL || fds == NULL ||
	    kvmstats_publisher_create(&o, &pub, &err) < 0)
		die("publisher", err.msg);
	for (unsigned v = 0; v < nr_vms; v++) {
		struct kvmstats_vm *vm;
		char name[32];

		if (ks_sim_vm_create(nr_vcpus, &js[v].sim, &err) < 0)
			die("sim", err.msg);
		ks_sim_vm_step(js[v].sim);
		for (unsigned i = 0; i <= nr_vcpus; i++)
			fds[i] = (struct kvmstats_fd) { ks_sim_vm_stats_fd(js[v].sim, (int)i - 1),
				i ? KVMSTATS_TARGET_VCPU : KVMSTATS_TARGET_VM, i ? i - 1 : 0, NULL };
		snprintf(name, sizeof(name), "bench-%03u", v);
		if (kvmstats_publisher_add_vm(pub, name, fds, nr_vcpus + 1, &vm, &err) < 0)
			die("add_vm", err.msg);
		if (kvmstats_attach(name, &(struct kvmstats_attach_opts) { dir, KVMSTATS_OWNER_DEFAULT },
				    &js[v].seg, &err) < 0 &&
		    kvmstats_attach(name, &(struct kvmstats_attach_opts) { dir, KVMSTATS_OWNER_DEFAULT },
				    &js[v].seg, &err) < 0)
			die("attach", err.msg);
		if (ks_statsfd_parse(ks_sim_vm_stats_fd(js[v].sim, -1), "VM", &js[v].vm_schema, &err) < 0 ||
		    ks_statsfd_parse(ks_sim_vm_stats_fd(js[v].sim, 0), "vCPU", &js[v].vcpu_schema, &err) < 0)
			die("schema", err.msg);
		js[v].nr_vcpus = nr_vcpus;
		js[v].sock = socks[v];
		js[v].json = malloc(65536 + (size_t)(nr_vcpus + 1) * 8192);
		js[v].vals = malloc(js[v].vcpu_schema.data_size + js[v].vm_schema.data_size + 64);
		if (js[v].json == NULL || js[v].vals == NULL)
			die("malloc", "json");
		if (pthread_create(&threads[v], NULL, json_server_main, &js[v]) != 0)
			die("pthread_create", "json server");
	}
	if (write(ready, &c, 1) != 1)
		die("write", "ready");
	/* Until the parent is done: it closes its end. */
	while (read(ready, &c, 1) > 0)
		;
	kvmstats_publisher_destroy(&pub);
	_exit(0);
}

/* ---- the parent: the exporter and the client ------------------------------ */

struct http_client {
	int fd;
	char *buf;
	size_t cap;
	const char *body;		/* in buf, after the last GET */
};

/* One GET over the keep-alive connection; the body at c->body.  Return: its length. */
static size_t
http_get(struct http_client *c, const char *path)
{
	char req[256];
	size_t have = 0, body_len = 0, head_len = 0;
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench\r\n"
			 "Accept: text/plain;version=0.0.4\r\n\r\n", path);

	if (!qmp_send_all(c->fd, req, (size_t)n))
		die("http", "send");
	for (;;) {
		ssize_t r;
		char *end;

		if (have + 65536 > c->cap) {
			c->cap = (have + 65536) * 2;
			c->buf = realloc(c->buf, c->cap);
			if (c->buf == NULL)
				die("http", "out of memory");
		}
		r = recv(c->fd, c->buf + have, c->cap - have - 1, 0);
		if (r <= 0)
			die("http", "recv");
		have += (size_t)r;
		c->buf[have] = '\0';
		if (head_len == 0 && (end = strstr(c->buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(c->buf, "\r\nContent-Length:");

			if (cl == NULL || strncmp(c->buf, "HTTP/1.1 200", 12) != 0)
				die("http", "no 200 with a Content-Length");
			head_len = (size_t)(end - c->buf) + 4;
			body_len = strtoul(cl + 17, NULL, 10);
		}
		if (head_len != 0 && have >= head_len + body_len)
			break;
	}
	c->body = c->buf + head_len;
	return body_len;
}

static int
connect_loopback(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect", strerror(errno));
	return fd;
}

/* ---- the floor: the same bytes, served as they are ------------------------ */

struct floor_server {
	char *body;
	size_t len;
};

static enum MHD_Result
floor_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	      const char *version, const char *upload_data, size_t *upload_data_size,
	      void **con_cls)
{
	static int seen;
	struct floor_server *fs = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)url; (void)method; (void)version; (void)upload_data; (void)upload_data_size;
	if (*con_cls == NULL) {
		*con_cls = &seen;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(fs->len, fs->body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * GET latency of a server that does nothing but hand libmicrohttpd the
 * same bytes: what HTTP on loopback costs this machine for a body of
 * that size, the limit no exporter can go below.
 */
static struct bench_dist
http_floor(const char *body, size_t len, unsigned scrapes, double *lat)
{
	struct floor_server fs = { malloc(len + 1), len };
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct http_client hc = { 0 };

	if (fs.body == NULL)
		die("malloc", "floor");
	memcpy(fs.body, body, len);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
			     floor_request, &fs, MHD_OPTION_THREAD_POOL_SIZE, 4u,
			     MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
	if (d == NULL || (info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) == NULL)
		die("floor", "cannot start");
	hc.fd = connect_loopback(info->port);
	for (int w = 0; w < 3; w++)
		http_get(&hc, "/metrics");
	for (unsigned i = 0; i < scrapes; i++) {
		uint64_t st = bench_mono_ns();

		http_get(&hc, "/metrics");
		lat[i] = (double)(bench_mono_ns() - st) / 1e3;
	}
	close(hc.fd);
	free(hc.buf);
	MHD_stop_daemon(d);
	free(fs.body);
	return bench_summarise_d(lat, scrapes);
}

static void
quiet_log(const char *line)
{
	(void)line;
}

struct config {
	unsigned vms, vcpus;
};

static unsigned
count_lines(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	unsigned c = 0;

	for (const char *l = s; *l; ) {
		const char *e = strchr(l, '\n');

		if (prefix[0] == '\0' ? *l != '#' : strncmp(l, prefix, n) == 0)
			c++;
		if (e == NULL)
			break;
		l = e + 1;
	}
	return c;
}

/* VMs with kvmstats_vm_up 1. */
static unsigned
count_up(const char *s)
{
	unsigned c = 0;

	for (const char *l = s; (l = strstr(l, "\nkvmstats_vm_up{")) != NULL; l++) {
		const char *e = strchr(l + 1, '\n');

		if (e != NULL && e - l > 2 && e[-1] == '1' && e[-2] == ' ')
			c++;
	}
	return c;
}

/* Series that are the exporter's own, not a VM's (exposition.c). */
#define EXPORTER_OWN_SERIES	8

static void
run_config(const struct config *cf, unsigned scrapes, unsigned baseline_scrapes, FILE *json,
	   const char *base_dir)
{
	char dir[512], env[128], name[128];
	int *socks = calloc(cf->vms * 2u, sizeof(*socks)), ready[2];
	struct bench_dist base_lat, base_cpu;
	double *lat = calloc(scrapes > baseline_scrapes ? scrapes : baseline_scrapes, sizeof(*lat));
	uint64_t *vals = malloc(sizeof(uint64_t) * (size_t)(cf->vcpus + 1) * 256);
	char *rx = malloc(65536 + (size_t)(cf->vcpus + 1) * 8192);
	pid_t child;

	snprintf(dir, sizeof(dir), "%s/%ux%u", base_dir, cf->vms, cf->vcpus);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		die("mkdir", strerror(errno));
	if (socks == NULL || lat == NULL || vals == NULL || rx == NULL)
		die("calloc", "config");
	for (unsigned v = 0; v < cf->vms; v++) {
		int sp[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			die("socketpair", strerror(errno));
		socks[2 * v] = sp[0];
		socks[2 * v + 1] = sp[1];
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ready) < 0)
		die("socketpair", strerror(errno));
	child = fork();
	if (child < 0)
		die("fork", strerror(errno));
	if (child == 0) {
		int *mine = calloc(cf->vms, sizeof(*mine));

		close(ready[0]);
		for (unsigned v = 0; v < cf->vms; v++) {
			close(socks[2 * v]);
			mine[v] = socks[2 * v + 1];
		}
		child_main(dir, cf->vms, cf->vcpus, mine, ready[1]);
	}
	close(ready[1]);
	for (unsigned v = 0; v < cf->vms; v++)
		close(socks[2 * v + 1]);
	{
		char c;

		if (read(ready[0], &c, 1) != 1)
			die("child", "did not get ready");
	}

	/* The baseline: per VM, query-stats vm then vcpu, one VM after another. */
	{
		double c0 = proc_cpu_ns(child), t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID), c1, t1;
		size_t got = 0;

		for (unsigned i = 0; i < baseline_scrapes; i++) {
			uint64_t s = bench_mono_ns();

			for (unsigned v = 0; v < cf->vms; v++)
				for (uint8_t req = 0; req < 2; req++) {
					uint32_t len;

					if (!qmp_send_all(socks[2 * v], &req, 1) ||
					    !qmp_recv_all(socks[2 * v], &len, 4) ||
					    !qmp_recv_all(socks[2 * v], rx, len))
						die("json", "socket");
					got = qmp_parse_values(rx, len, vals, (size_t)(cf->vcpus + 1) * 256);
				}
			lat[i] = (double)(bench_mono_ns() - s) / 1e3;
		}
		c1 = proc_cpu_ns(child);
		t1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		if (got == 0)
			die("json", "no values");
		base_cpu = bench_point(((c1 - c0) + (t1 - t0)) / baseline_scrapes / 1e3);
		base_lat = bench_summarise_d(lat, baseline_scrapes);
	}

	for (int per_vcpu = 0; per_vcpu <= 1; per_vcpu++) {
		struct ex_config cfg = { .dir = dir, .owner = KVMSTATS_OWNER_DEFAULT,
					 .per_vcpu = per_vcpu };
		struct ex_options o = { .threads = 4, .max_connections = 1024, .timeout_s = 15 };
		struct http_client hc = { 0 };
		struct ex_server s;
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		double p0, p1, t0, t1;
		unsigned series = 0, up = 0;
		const char *mode = per_vcpu ? "per-vCPU" : "per-VM";
		long long rss;

		if (ex_server_init(&s, &cfg, "/metrics") < 0 ||
		    ex_server_listen(&s, "127.0.0.1:0", &o) != 0)
			die("exporter", "cannot start");
		if (getsockname(s.listen_fd, (struct sockaddr *)&sa, &sl) < 0)
			die("getsockname", strerror(errno));
		hc.fd = connect_loopback(ntohs(sa.sin_port));
		for (int w = 0; w < 3; w++)	/* the first attaches every segment */
			http_get(&hc, "/metrics");
		p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
		t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		for (unsigned i = 0; i < scrapes; i++) {
			uint64_t st = bench_mono_ns();

			http_get(&hc, "/metrics");
			lat[i] = (double)(bench_mono_ns() - st) / 1e3;
		}
		p1 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
		t1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		up = count_up(hc.body);
		series = count_lines(hc.body, "");
		if (up != cf->vms)
			die("scrape", "not every VM is up in it");
		rss = bench_proc_status_kb("self", "VmRSS");
		snprintf(env, sizeof(env), "%u VMs x %u vCPUs (sim memfds), %s, %u series per VM",
			 cf->vms, cf->vcpus, mode, (series - EXPORTER_OWN_SERIES) / cf->vms);
		snprintf(name, sizeof(name), "scrape %ux%u %s [vs QMP per VM]", cf->vms, cf->vcpus,
			 mode);
		{
			bool goal = cf->vms == 64 && cf->vcpus == 8 && !per_vcpu;
			struct bench_result r = {
				.name = name, .unit = "us", .env = env, .timing = "wall, HTTP keep-alive",
				.d = bench_summarise_d(lat, scrapes),
				.ref_name = "QMP query-stats per VM", .ref = base_lat,
				.retries_per_read = -1, .ratio_max = goal ? 0.01 : 0,
				.target = goal ? ">= 100x faster than the per-VM JSON path" : NULL,
				.vcpus = cf->vms * cf->vcpus, .group = "exporter",
			};

			bench_emit(json, &r);
			if (goal) {
				struct bench_result g = r;

				snprintf(name, sizeof(name), "scrape %ux%u %s [vs 5 ms goal]", cf->vms,
					 cf->vcpus, mode);
				g.ref_name = "the 5 ms goal";
				g.ref = bench_point(5000);
				g.ratio_max = 1.0;
				g.target = "p50 <= 5 ms";
				bench_emit(json, &g);
			}
			snprintf(name, sizeof(name), "CPU/scrape %ux%u %s [vs QMP]", cf->vms, cf->vcpus,
				 mode);
			r.name = name;
			r.timing = "CPU time / scrapes";
			r.d = bench_point(((p1 - p0) - (t1 - t0)) / scrapes / 1e3);
			r.ref_name = "QMP server + client CPU";
			r.ref = base_cpu;
			r.ratio_max = 0;
			r.target = NULL;
			bench_emit(json, &r);
		}
		{
			size_t len = strlen(hc.body);
			char *copy = strdup(hc.body);
			struct bench_result fr = {
				.name = name, .unit = "us", .env = env, .timing = "wall, HTTP keep-alive",
				.d = bench_summarise_d(lat, scrapes), .retries_per_read = -1,
				.vcpus = cf->vms * cf->vcpus, .group = "exporter",
				.ref_name = "same bytes, static (floor)",
			};

			if (copy == NULL)
				die("strdup", "body");
			snprintf(name, sizeof(name), "scrape %ux%u %s [vs HTTP floor]", cf->vms,
				 cf->vcpus, mode);
			fr.ref = http_floor(copy, len, scrapes, lat);
			bench_emit(json, &fr);
			printf("%-40s %.1f MB (the exporter's process, every segment attached); "
			       "%zu kB per scrape\n", "  RSS", (double)rss / 1048576.0, len / 1024);
			free(copy);
		}
		close(hc.fd);
		free(hc.buf);
		ex_server_clear(&s);
	}
	close(ready[0]);		/* the child ends */
	for (unsigned v = 0; v < cf->vms; v++)
		close(socks[2 * v]);
	waitpid(child, NULL, 0);
	free(socks);
	free(lat);
	free(vals);
	free(rx);
}

int
main(int argc, char **argv)
{
	struct config configs[16] = { { 1, 8 }, { 1, 256 }, { 64, 8 }, { 200, 4 } };
	unsigned nconfigs = 4, scrapes = 200, baseline = 30;
	const char *json_path = NULL, *base;
	struct rlimit rl;
	FILE *json = NULL;
	char dir[256];
	int c;

	while ((c = getopt(argc, argv, "n:b:c:j:")) != -1) {
		switch (c) {
		case 'n':
			scrapes = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			baseline = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c': {
			char *save = NULL, *tok;

			nconfigs = 0;
			for (tok = strtok_r(optarg, ",", &save); tok && nconfigs < 16;
			     tok = strtok_r(NULL, ",", &save))
				if (sscanf(tok, "%ux%u", &configs[nconfigs].vms,
					   &configs[nconfigs].vcpus) == 2)
					nconfigs++;
			break;
		}
		case 'j':
			json_path = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_exporter [-n SCRAPES] [-b BASELINE_SCRAPES] "
				"[-c VMSxVCPUS,...] [-j JSON]\n");
			return 2;
		}
	}
	if (scrapes == 0 || baseline == 0 || nconfigs == 0)
		die("usage", "nothing to measure");
	/* 200 VMs: their memfds, the publisher's copies, two segment fds each. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	ex_log_redirect(quiet_log);
	base = getenv("KVMSTATS_SHM_DIR");
	snprintf(dir, sizeof(dir), "%s/bench-exporter.XXXXXX", base && *base ? base : "/dev/shm");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", strerror(errno));
	if (json_path && (json = fopen(json_path, "w")) == NULL)
		die(json_path, strerror(errno));
	printf("kvmstats-exporter scrapes beside one QMP query-stats (vm + vcpu) per VM over its\n"
	       "JSON socket; %u scrapes, %u baseline scrapes per config\n", scrapes, baseline);
	for (unsigned i = 0; i < nconfigs; i++)
		run_config(&configs[i], scrapes, baseline, json, dir);
	if (json)
		fclose(json);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_exporter: could not remove %s\n", dir);
	}
	return 0;
}
