/* SPDX-License-Identifier: MIT */
/*
 * json.c - the CLI's JSON writer (json.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "ks_text.h"

/*
 * A code point the printable-text rule refuses (ks_text.h): legal in JSON
 * once escaped, and escaped so that no terminal acts on it.
 */
static void
write_escape(FILE *f, uint32_t cp)
{
	switch (cp) {
	case '\b': fputs("\\b", f); break;
	case '\f': fputs("\\f", f); break;
	case '\n': fputs("\\n", f); break;
	case '\r': fputs("\\r", f); break;
	case '\t': fputs("\\t", f); break;
	default: fprintf(f, "\\u%04x", (unsigned)cp);	/* all refused ones are in the BMP */
	}
}

void
ks_json_init(struct ks_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->after_key = false;
	j->empty[0] = true;
	j->inline_[0] = false;
	j->compact = false;
}

void
ks_json_init_compact(struct ks_json *j, FILE *f)
{
	ks_json_init(j, f);
	j->compact = true;
}

/*
 * Per-level state lives in fixed arrays; nesting deeper than the CLI ever
 * goes shares the last entry instead of overflowing (output stays valid).
 */
static unsigned
lvl(unsigned depth)
{
	return depth < KS_JSON_MAX_DEPTH ? depth : KS_JSON_MAX_DEPTH - 1;
}

static void
newline_indent(struct ks_json *j, unsigned depth)
{
	fputc('\n', j->f);
	for (unsigned i = 0; i < depth; i++)
		fputs("  ", j->f);
}

/* Separator and indentation before any value or key at the current level. */
static void
before_item(struct ks_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	unsigned l = lvl(j->depth);

	if (j->depth == 0)
		return;
	if (!j->empty[l])
		fputc(',', j->f);
	if (j->inline_[l]) {
		if (!j->empty[l])
			fputc(' ', j->f);
	} else {
		newline_indent(j, j->depth);
	}
	j->empty[l] = false;
}

static void
open_container(struct ks_json *j, char c, bool inl)
{
	bool outer_inline = j->inline_[lvl(j->depth)] && j->depth > 0;

	before_item(j);
	fputc(c, j->f);
	j->depth++;
	j->empty[lvl(j->depth)] = true;
	j->inline_[lvl(j->depth)] = inl || outer_inline || j->compact;
}

static void
close_container(struct ks_json *j, char c)
{
	bool was_empty = j->empty[lvl(j->depth)];
	bool inl = j->inline_[lvl(j->depth)];

	if (j->depth > 0)
		j->depth--;
	if (!was_empty && !inl)
		newline_indent(j, j->depth);
	fputc(c, j->f);
}

void
ks_json_begin_object(struct ks_json *j)
{
	open_container(j, '{', false);
}

void
ks_json_begin_object_inline(struct ks_json *j)
{
	open_container(j, '{', true);
}

void
ks_json_end_object(struct ks_json *j)
{
	close_container(j, '}');
}

void
ks_json_begin_array(struct ks_json *j)
{
	open_container(j, '[', false);
}

void
ks_json_begin_inline(struct ks_json *j)
{
	open_container(j, '[', true);
}

void
ks_json_end_array(struct ks_json *j)
{
	close_container(j, ']');
}

void
ks_json_write_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	fputc('"', f);
	while (left > 0) {
		uint32_t cp;
		size_t n = ks_utf8_decode(p, left, &cp);

		if (n == 0) {
			/* JSON text is UTF-8: a byte that is not becomes U+FFFD. */
			fputs("\\ufffd", f);
			n = 1;
		} else if (cp == '"' || cp == '\\') {
			fputc('\\', f);
			fputc((int)cp, f);
		} else if (ks_text_cp_printable(cp)) {
			fwrite(p, 1, n, f);
		} else {
			write_escape(f, cp);
		}
		p += n;
		left -= n;
	}
	fputc('"', f);
}

void
ks_json_key(struct ks_json *j, const char *key)
{
	before_item(j);
	ks_json_write_string(j->f, key);
	fputs(": ", j->f);
	j->after_key = true;
}

void
ks_json_string(struct ks_json *j, const char *s)
{
	before_item(j);
	ks_json_write_string(j->f, s);
}

void
ks_json_u64(struct ks_json *j, uint64_t v)
{
	before_item(j);
	fprintf(j->f, "%" PRIu64, v);
}

void
ks_json_i64(struct ks_json *j, int64_t v)
{
	before_item(j);
	fprintf(j->f, "%" PRId64, v);
}

void
ks_json_bool(struct ks_json *j, bool v)
{
	before_item(j);
	fputs(v ? "true" : "false", j->f);
}

void
ks_json_null(struct ks_json *j)
{
	before_item(j);
	fputs("null", j->f);
}

void
ks_json_double(struct ks_json *j, double v)
{
	before_item(j);
	fprintf(j->f, "%.17g", v);
}

void
ks_json_kv_string(struct ks_json *j, const char *key, const char *s)
{
	ks_json_key(j, key);
	ks_json_string(j, s);
}

void
ks_json_kv_u64(struct ks_json *j, const char *key, uint64_t v)
{
	ks_json_key(j, key);
	ks_json_u64(j, v);
}

void
ks_json_kv_i64(struct ks_json *j, const char *key, int64_t v)
{
	ks_json_key(j, key);
	ks_json_i64(j, v);
}

int
ks_json_finish(struct ks_json *j)
{
	if (!j->compact)
		fputc('\n', j->f);
	return ferror(j->f) ? -EIO : 0;
}
