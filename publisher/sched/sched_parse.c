/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "sched_parse.h"

/* Decimal digits at *@p (before @end) into *@v; no sign, no overflow, at least one. */
static bool
take_u64(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (s >= end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*p = s;
	*v = n;
	return true;
}

static int
bad(const char **why, const char *what)
{
	if (why != NULL)
		*why = what;
	return -EBADMSG;
}

int
ks_sched_parse_schedstat(const char *buf, size_t len, uint64_t out[3], const char **why)
{
	const char *p = buf, *end = buf + len;
	uint64_t v[3];

	for (int i = 0; i < 3; i++) {
		if (i > 0 && (p >= end || *p++ != ' '))
			return bad(why, "schedstat: not three numbers separated by spaces");
		if (!take_u64(&p, end, &v[i]))
			return bad(why, "schedstat: a field is not a decimal number of 64 bits");
	}
	if (p < end && *p == '\n')
		p++;
	if (p != end)
		return bad(why, "schedstat: more than three numbers and a newline");
	memcpy(out, v, sizeof(v));
	return 0;
}

int
ks_sched_parse_stat_cpu(const char *buf, size_t len, uint64_t *cpu, const char **why)
{
	const char *end = buf + len, *p = NULL;
	uint64_t v;

	/* The last ')' closes the comm, whatever the comm holds. */
	for (const char *q = buf; q < end; q++)
		if (*q == ')')
			p = q;
	if (p == NULL || p == buf)
		return bad(why, "stat: no \"(comm)\" field");
	p++;
	/* Fields 3 .. 39 follow, each after one space; only the last one is read. */
	for (int field = 3; field < KS_SCHED_STAT_PROCESSOR_FIELD; field++) {
		if (p >= end || *p++ != ' ')
			return bad(why, "stat: fewer than 39 fields");
		while (p < end && *p != ' ' && *p != '\n')
			p++;
	}
	if (p >= end || *p++ != ' ' || !take_u64(&p, end, &v))
		return bad(why, "stat: field 39 (processor) is not a decimal number");
	if (p < end && *p != ' ' && *p != '\n')
		return bad(why, "stat: field 39 (processor) is not a decimal number");
	/* A CPU number: far below 2^32 on any machine. */
	if (v > UINT32_MAX)
		return bad(why, "stat: field 39 (processor) is out of range");
	*cpu = v;
	return 0;
}

/* The value of "@key\t<number>\n" if the line at @p..@eol is that key's. */
static int
status_line(const char *p, const char *eol, const char *key, uint64_t *v, int *seen)
{
	size_t klen = strlen(key);

	if ((size_t)(eol - p) <= klen || memcmp(p, key, klen) != 0)
		return 0;
	p += klen;
	while (p < eol && (*p == '\t' || *p == ' '))
		p++;
	if (!take_u64(&p, eol, v) || p != eol)
		return -1;
	return ++*seen == 1 ? 0 : -1;
}

int
ks_sched_parse_status(const char *buf, size_t len, uint64_t *voluntary,
		      uint64_t *involuntary, const char **why)
{
	const char *p = buf, *end = buf + len;
	uint64_t vol = 0, invol = 0;
	int seen_vol = 0, seen_invol = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			eol = end;
		if (status_line(p, eol, "voluntary_ctxt_switches:", &vol, &seen_vol) < 0 ||
		    status_line(p, eol, "nonvoluntary_ctxt_switches:", &invol, &seen_invol) < 0)
			return bad(why, "status: a *ctxt_switches line is twice there or not "
				   "\"key: number\"");
		p = eol + 1;
	}
	if (seen_vol != 1 || seen_invol != 1)
		return bad(why, "status: no voluntary_ctxt_switches or nonvoluntary_ctxt_switches "
			   "line");
	*voluntary = vol;
	*involuntary = invol;
	return 0;
}
