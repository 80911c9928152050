/* SPDX-License-Identifier: MIT */
/* outbuf.c - a growable byte buffer for building one HTTP response. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metric_map.h"
#include "outbuf.h"

void
outbuf_init(struct outbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void
outbuf_free(struct outbuf *b)
{
	free(b->data);
	outbuf_init(b);
}

char *
outbuf_take(struct outbuf *b, size_t *len)
{
	char *data = b->data;

	*len = b->len;
	outbuf_init(b);
	return data;
}

/* Room for @n more bytes and a NUL; false (and failed set) if there is none. */
static bool
reserve(struct outbuf *b, size_t n)
{
	size_t cap;
	char *data;

	if (b->failed)
		return false;
	if (b->cap - b->len > n)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len <= n) {
		if (cap > SIZE_MAX / 2) {
			b->failed = true;
			return false;
		}
		cap *= 2;
	}
	data = realloc(b->data, cap);
	if (data == NULL) {
		b->failed = true;
		return false;
	}
	b->data = data;
	b->cap = cap;
	return true;
}

char *
outbuf_space(struct outbuf *b, size_t n)
{
	return reserve(b, n) ? b->data + b->len : NULL;
}

void
outbuf_advance(struct outbuf *b, char *end)
{
	b->len = (size_t)(end - b->data);
	b->data[b->len] = '\0';
}

void
outbuf_add(struct outbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
outbuf_puts(struct outbuf *b, const char *s)
{
	outbuf_add(b, s, strlen(s));
}

void
outbuf_putc(struct outbuf *b, char c)
{
	outbuf_add(b, &c, 1);
}

void
outbuf_u64(struct outbuf *b, uint64_t v)
{
	char *p = outbuf_space(b, 20);

	if (p != NULL)
		outbuf_advance(b, mm_put_u64(p, v));
}

void
outbuf_printf(struct outbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}
