/* SPDX-License-Identifier: MIT */
/* negotiate.c - which exposition format a scraper asked for. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "negotiate.h"

/* [s, e) without blanks around it. */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

static bool
equals(const char *s, const char *e, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(e - s) == n && strncasecmp(s, word, n) == 0;
}

/*
 * A qvalue (RFC 9110 12.4.2): "0" to "1" with up to three decimals, as
 * thousandths; -1 if it is not one.
 */
static int
parse_q(const char *s, const char *e)
{
	int q = 0, scale = 1000;

	if (s == e || (*s != '0' && *s != '1'))
		return -1;
	q = (*s - '0') * 1000;
	s++;
	if (s < e) {
		if (*s != '.')
			return -1;
		for (s++; s < e; s++) {
			if (*s < '0' || *s > '9' || scale == 1)
				return -1;
			scale /= 10;
			q += (*s - '0') * scale;
		}
	}
	return q <= 1000 ? q : -1;
}

/*
 * One element of the list: the format it names and its q (thousandths),
 * or a q of -1 if it names no format of ours or is malformed.
 */
static int
element(const char *s, const char *e, enum expo_format *fmt)
{
	const char *semi = memchr(s, ';', (size_t)(e - s));
	const char *type_end = semi ? semi : e, *type = s;
	const char *version = NULL, *version_end = NULL;
	int q = 1000;

	trim(&type, &type_end);
	while (semi != NULL) {
		const char *p = semi + 1, *pe, *eq;

		semi = memchr(p, ';', (size_t)(e - p));
		pe = semi ? semi : e;
		trim(&p, &pe);
		eq = memchr(p, '=', (size_t)(pe - p));
		if (eq == NULL)
			continue;
		{
			const char *k = p, *ke = eq, *v = eq + 1, *ve = pe;

			trim(&k, &ke);
			trim(&v, &ve);
			if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
				v++;
				ve--;
			}
			if (equals(k, ke, "q"))
				q = parse_q(v, ve);
			else if (equals(k, ke, "version")) {
				version = v;
				version_end = ve;
			}
		}
	}
	if (q < 0)
		return -1;
	if (equals(type, type_end, "application/openmetrics-text")) {
		if (version != NULL && !equals(version, version_end, "1.0.0") &&
		    !equals(version, version_end, "0.0.1"))
			return -1;
		*fmt = EXPO_OPENMETRICS;
		return q;
	}
	if (equals(type, type_end, "text/plain")) {
		if (version != NULL && !equals(version, version_end, "0.0.4"))
			return -1;
		*fmt = EXPO_TEXT;
		return q;
	}
	if (equals(type, type_end, "*/*") || equals(type, type_end, "text/*")) {
		*fmt = EXPO_TEXT;
		return q;
	}
	return -1;
}

enum expo_format
negotiate_format(const char *accept)
{
	enum expo_format best = EXPO_TEXT;
	int best_q = 0;

	if (accept == NULL)
		return EXPO_TEXT;
	for (const char *s = accept; *s != '\0';) {
		const char *comma = strchr(s, ',');
		const char *e = comma ? comma : s + strlen(s);
		enum expo_format fmt;
		int q = element(s, e, &fmt);

		if (q > best_q) {
			best_q = q;
			best = fmt;
		}
		s = comma ? comma + 1 : e;
	}
	return best;
}

const char *
negotiate_content_type(enum expo_format fmt)
{
	return fmt == EXPO_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
				       : "text/plain; version=0.0.4; charset=utf-8";
}
