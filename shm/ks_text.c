/* SPDX-License-Identifier: MIT */
/* ks_text.c - the printable-text rule and its escaping (ks_text.h). */
#include <string.h>

#include <stdio.h>

#include "ks_text.h"

size_t
ks_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c, min;
	size_t n;

	if (len == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;	/* a continuation byte, 0xc0/0xc1 (overlong) or 0xf5.. */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and beyond Unicode are not UTF-8. */
	if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return n;
}

bool
ks_text_cp_printable(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
		return false;		/* C0, DEL, C1 */
	/* Unicode's Bidi_Control: these reorder or hide what a terminal shows. */
	if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069))
		return false;
	return true;
}

/*
 * The next piece of @p: a printable code point (*@raw true) or a sequence
 * the rule refuses (*@raw false): a whole refused code point, or one byte
 * that is not UTF-8.  Return: its length, >= 1 while @left >= 1.
 */
static size_t
next_piece(const unsigned char *p, size_t left, bool *raw, const char **why)
{
	uint32_t cp;
	size_t n = ks_utf8_decode(p, left, &cp);

	if (n == 0) {
		*raw = false;
		*why = "invalid UTF-8";
		return 1;
	}
	*raw = ks_text_cp_printable(cp);
	if (!*raw)
		*why = cp < 0xa0 ? "a control character" : "a bidirectional formatting character";
	return n;
}

const char *
ks_text_fault(const char *s, size_t len, size_t *at)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *why = NULL;
	size_t i = 0;

	while (i < len) {
		bool raw;
		size_t n = next_piece(p + i, len - i, &raw, &why);

		if (!raw) {
			if (at != NULL)
				*at = i;
			return why;
		}
		i += n;
	}
	return NULL;
}

/* Append @n bytes to @buf if they fit with the NUL; Return: whether they did. */
static bool
put(char *buf, size_t len, size_t *used, const char *s, size_t n)
{
	if (*used + n + 1 > len)
		return false;
	memcpy(buf + *used, s, n);
	*used += n;
	return true;
}

/* The text of one piece: itself, "\\", or its bytes as \xNN.  Return: its length. */
static size_t
render_piece(const unsigned char *p, size_t n, bool raw, char out[16])
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;

	if (raw && !(n == 1 && p[0] == '\\')) {
		memcpy(out, p, n);
		return n;
	}
	if (raw) {
		out[0] = out[1] = '\\';
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		out[k++] = '\\';
		out[k++] = 'x';
		out[k++] = hex[p[i] >> 4];
		out[k++] = hex[p[i] & 15];
	}
	return k;
}

char *
ks_text_escape(char *buf, size_t len, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), used = 0;
	const char *why;

	if (len == 0)
		return buf;
	while (left > 0) {
		char piece[16];
		bool raw;
		size_t n = next_piece(p, left, &raw, &why);

		if (!put(buf, len, &used, piece, render_piece(p, n, raw, piece)))
			break;
		p += n;
		left -= n;
	}
	buf[used] = '\0';
	return buf;
}

void
ks_text_fputs(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	const char *why;

	while (left > 0) {
		char piece[16];
		bool raw;
		size_t n = next_piece(p, left, &raw, &why);

		fwrite(piece, 1, render_piece(p, n, raw, piece), f);
		p += n;
		left -= n;
	}
}

size_t
ks_text_columns(const char *s)
{
	size_t cols = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		cols += (*p & 0xc0) != 0x80;
	return cols;
}

char *
ks_text_vformat(char *out, size_t len, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return ks_text_escape(out, len, msg);
}
