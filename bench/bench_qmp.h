/* SPDX-License-Identifier: MIT */
/*
 * bench_qmp.h - the QMP-style JSON path, the baseline kvmstats is measured
 * against: a server that preads a target's stats fd and formats it as
 * query-stats does, a length-prefixed reply over a Unix socket, and a
 * client that parses every number back.  The client parses numbers only
 * (no names, no JSON tree): a lower bound on what a real QMP client pays,
 * so the baseline is, if anything, flattered.
 */
#ifndef KVMSTATS_BENCH_QMP_H
#define KVMSTATS_BENCH_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "kvmstats/reader.h"

static inline char *
qmp_put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/*
 * Target @t of @seg (its schema) with values @v (one pread'ed data block)
 * as one element of query-stats' return.  @p must have room: about 48
 * bytes per stat plus 21 per value.
 */
static inline char *
qmp_format_target(const struct kvmstats_segment *seg, char *p, unsigned t, const uint64_t *v)
{
	const struct kvmstats_target_info *ti = kvmstats_target(seg, t);

	p += sprintf(p, "{\"provider\":\"kvm\",\"qom-path\":\"%s\",\"stats\":[", ti->label);
	for (unsigned j = 0; j < ti->nr_stats; j++) {
		const struct kvmstats_stat_info *si = kvmstats_target_stat(seg, t, j);

		p += sprintf(p, "%s{\"name\":\"%s\",\"value\":", j ? "," : "", si->name);
		if (si->size == 1) {
			p = qmp_put_u64(p, v[si->value_index]);
		} else {
			*p++ = '[';
			for (uint32_t k = 0; k < si->size; k++) {
				if (k)
					*p++ = ',';
				p = qmp_put_u64(p, v[si->value_index + k]);
			}
			*p++ = ']';
		}
		*p++ = '}';
	}
	return p + sprintf(p, "]}");
}

static inline bool
qmp_send_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return false;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return true;
}

static inline bool
qmp_recv_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);

		if (r <= 0)
			return false;
		p = (char *)p + r;
		n -= (size_t)r;
	}
	return true;
}

/* Every number after "value": (one, or an array of them), into @out. */
static inline size_t
qmp_parse_values(const char *rx, size_t len, uint64_t *out, size_t max)
{
	const char *p, *end;
	size_t n = 0;

	for (p = rx, end = rx + len; p < end && n < max; p++) {
		if (*p != ':' || p - rx < 7 || memcmp(p - 7, "\"value\"", 7))
			continue;
		p++;
		if (*p == '[')
			p++;
		for (;;) {
			uint64_t v = 0;

			while (*p >= '0' && *p <= '9')
				v = v * 10 + (uint64_t)(*p++ - '0');
			out[n++] = v;
			if (*p != ',' || n >= max)
				break;
			p++;
		}
	}
	return n;
}

#endif /* KVMSTATS_BENCH_QMP_H */
