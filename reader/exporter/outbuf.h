/* SPDX-License-Identifier: MIT */
/*
 * outbuf.h - a growable byte buffer for building one HTTP response.
 *
 * A scrape is built whole, in memory, and handed to the HTTP library to
 * send: no lock is held and no segment is touched while a slow client
 * reads.  Appends never fail visibly: running out of memory sets a flag
 * that the caller checks once at the end (outbuf_failed()), so the
 * formatting code stays straight-line.
 */
#ifndef KVMSTATS_EXPORTER_OUTBUF_H
#define KVMSTATS_EXPORTER_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outbuf {
	char *data;
	size_t len, cap;
	bool failed;
};

void outbuf_init(struct outbuf *b);
void outbuf_free(struct outbuf *b);
/* Hand the bytes over (the caller frees them); the buffer is empty again. */
char *outbuf_take(struct outbuf *b, size_t *len);
static inline bool outbuf_failed(const struct outbuf *b) { return b->failed; }

void outbuf_add(struct outbuf *b, const char *s, size_t n);
void outbuf_puts(struct outbuf *b, const char *s);
void outbuf_putc(struct outbuf *b, char c);
void outbuf_u64(struct outbuf *b, uint64_t v);
/*
 * For the hot loop: room for @n bytes at the end, written by the caller
 * through the pointer returned (NULL, and failed set, if there is no
 * memory), then outbuf_advance() to where the writing ended.
 */
char *outbuf_space(struct outbuf *b, size_t n);
void outbuf_advance(struct outbuf *b, char *end);
void outbuf_printf(struct outbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* KVMSTATS_EXPORTER_OUTBUF_H */
