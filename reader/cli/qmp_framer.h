/* SPDX-License-Identifier: MIT */
/*
 * qmp_framer.h - where one QMP message ends in a client's byte stream.
 *
 * QMP sends JSON values back to back, with no length or delimiter: a
 * message ends where its outermost brace or bracket closes (or, for a
 * bare scalar, where the scalar ends).  The framer finds those ends
 * without parsing, one byte at a time, so that input can arrive split
 * anywhere; jansson then parses exactly one message.  Strings and their
 * escapes are tracked so a brace inside a string does not count.  A byte
 * that JSON cannot have where it stands (a control character, a non-ASCII
 * byte outside a string) ends the message there: it gets its parse error,
 * and what follows is framed afresh.
 */
#ifndef KVMSTATS_CLI_QMP_FRAMER_H
#define KVMSTATS_CLI_QMP_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

/* Nesting a message may have: QEMU allows 1024; no QMP command needs 10. */
#define KS_QMP_MAX_DEPTH	32

struct ks_qmp_framer {
	size_t start;		/* offset of the current message, if in_msg */
	unsigned depth;		/* open braces and brackets */
	bool in_msg;
	bool in_string;
	bool escape;		/* the previous byte was a backslash in a string */
	bool bare;		/* a scalar outside any container (true, 12, ...) */
	bool too_deep;		/* nesting went past KS_QMP_MAX_DEPTH */
};

void ks_qmp_framer_init(struct ks_qmp_framer *fr);

/*
 * ks_qmp_framer_next() - scan @buf from *@pos (bytes before it were
 * scanned by earlier calls) for the end of a message.
 * Return: true with the message at [*@start, *@end) and *@pos past it
 * (the framer is ready for the next); false when @len bytes hold no
 * complete message yet (*@pos == @len; the current message, if any,
 * starts at ks_qmp_framer_pending()).
 */
bool ks_qmp_framer_next(struct ks_qmp_framer *fr, const char *buf, size_t len, size_t *pos,
			size_t *start, size_t *end);

/*
 * ks_qmp_framer_pending() - where the incomplete message starts, or @len
 * when there is none (only white space after the last message).
 */
size_t ks_qmp_framer_pending(const struct ks_qmp_framer *fr, size_t len);

/*
 * ks_qmp_framer_shift() - @n bytes were dropped from the front of the
 * buffer (all before ks_qmp_framer_pending()): adjust the offsets.
 */
void ks_qmp_framer_shift(struct ks_qmp_framer *fr, size_t n);

#endif /* KVMSTATS_CLI_QMP_FRAMER_H */
