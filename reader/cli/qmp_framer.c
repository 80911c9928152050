/* SPDX-License-Identifier: MIT */
/*
 * qmp_framer.c - the ends of QMP messages in a byte stream (qmp_framer.h).
 */
#include <string.h>

#include "qmp_framer.h"

void
ks_qmp_framer_init(struct ks_qmp_framer *fr)
{
	memset(fr, 0, sizeof(*fr));
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What ends a bare scalar: white space or JSON punctuation. */
static bool
ends_bare(char c)
{
	return is_space(c) || strchr("{}[]\",:", c) != NULL;
}

/*
 * A byte no JSON text has there: a control character (white space aside,
 * outside strings), or outside strings a byte that is not ASCII.  It ends
 * the message at once, so that a client recovers from garbage (an
 * unclosed bracket or quote) with an error reply instead of a hang.
 */
static bool
invalid(char c, bool in_string)
{
	unsigned char u = (unsigned char)c;

	if (u < 0x20)
		return in_string || !is_space(c);
	return !in_string && u >= 0x80;
}

static void
begin(struct ks_qmp_framer *fr, size_t at)
{
	fr->in_msg = true;
	fr->start = at;
	fr->depth = 0;
	fr->in_string = fr->escape = fr->bare = fr->too_deep = false;
}

/* Inside a message: one byte.  Return: whether the message ends after it. */
static bool
step(struct ks_qmp_framer *fr, char c)
{
	if (invalid(c, fr->in_string))
		return true;
	if (fr->in_string) {
		if (fr->escape)
			fr->escape = false;
		else if (c == '\\')
			fr->escape = true;
		else if (c == '"')
			fr->in_string = false;
		return !fr->in_string && fr->depth == 0;
	}
	switch (c) {
	case '"':
		fr->in_string = true;
		return false;
	case '{':
	case '[':
		if (++fr->depth > KS_QMP_MAX_DEPTH)
			fr->too_deep = true;
		return false;
	case '}':
	case ']':
		/* A stray closer at the top is a message of its own (a parse error). */
		if (fr->depth > 0)
			fr->depth--;
		return fr->depth == 0;
	default:
		return fr->depth == 0;	/* ',' or ':' at the top: an error of one byte */
	}
}

bool
ks_qmp_framer_next(struct ks_qmp_framer *fr, const char *buf, size_t len, size_t *pos,
		   size_t *start, size_t *end)
{
	for (size_t i = *pos; i < len; i++) {
		char c = buf[i];

		if (!fr->in_msg) {
			if (is_space(c))
				continue;
			begin(fr, i);
			if (!ends_bare(c) && !invalid(c, false)) {
				fr->bare = true;
				continue;
			}
		} else if (fr->bare) {
			if (invalid(c, false)) {
				*start = fr->start;
				*end = *pos = i + 1;
				fr->in_msg = false;
				return true;
			}
			if (!ends_bare(c))
				continue;
			/* The scalar ended before @c, which starts the next message. */
			*start = fr->start;
			*end = i;
			*pos = i;
			fr->in_msg = false;
			return true;
		}
		if (step(fr, c)) {
			*start = fr->start;
			*end = i + 1;
			*pos = i + 1;
			fr->in_msg = false;
			return true;
		}
	}
	*pos = len;
	return false;
}

size_t
ks_qmp_framer_pending(const struct ks_qmp_framer *fr, size_t len)
{
	return fr->in_msg ? fr->start : len;
}

void
ks_qmp_framer_shift(struct ks_qmp_framer *fr, size_t n)
{
	if (fr->in_msg)
		fr->start -= n;
}
