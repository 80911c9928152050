/* SPDX-License-Identifier: MIT */
/*
 * json.h - a small streaming JSON writer for the kvmstats CLI.
 *
 * Output is indented by two spaces per level; containers opened with
 * ks_json_begin_inline() or ks_json_begin_object_inline() keep all they
 * hold on one line, which keeps histograms and stat lists readable.  Numbers are written from integers, never
 * through a double, so every u64 comes out exactly.  The writer does not
 * check that keys and values alternate: the CLI's callers are the grammar.
 */
#ifndef KVMSTATS_CLI_JSON_H
#define KVMSTATS_CLI_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Deep enough for a QMP request's "id" echoed back (qmp_framer.h caps nesting). */
#define KS_JSON_MAX_DEPTH	40

struct ks_json {
	FILE *f;
	unsigned depth;
	bool after_key;			/* the next value follows "key": */
	bool empty[KS_JSON_MAX_DEPTH];	/* no element in this container yet */
	bool inline_[KS_JSON_MAX_DEPTH];	/* elements on the opening line */
	bool compact;			/* the whole document on one line */
};

void ks_json_init(struct ks_json *j, FILE *f);
/*
 * ks_json_init_compact() - one line, separators ", " and ": ", no final
 * newline from ks_json_finish(): the framing of a QMP reply, whose sender
 * ends it itself.
 */
void ks_json_init_compact(struct ks_json *j, FILE *f);

void ks_json_begin_object(struct ks_json *j);
/* An object whose members stay on one line (one stat per line). */
void ks_json_begin_object_inline(struct ks_json *j);
void ks_json_end_object(struct ks_json *j);
void ks_json_begin_array(struct ks_json *j);
/* An array whose elements stay on one line (lists of numbers). */
void ks_json_begin_inline(struct ks_json *j);
void ks_json_end_array(struct ks_json *j);

void ks_json_key(struct ks_json *j, const char *key);
void ks_json_string(struct ks_json *j, const char *s);
void ks_json_u64(struct ks_json *j, uint64_t v);
void ks_json_i64(struct ks_json *j, int64_t v);
void ks_json_bool(struct ks_json *j, bool v);
void ks_json_null(struct ks_json *j);
/* A double, to 17 significant digits (JSON has no inf or NaN: never pass them). */
void ks_json_double(struct ks_json *j, double v);

/* Convenience: "key": value. */
void ks_json_kv_string(struct ks_json *j, const char *key, const char *s);
void ks_json_kv_u64(struct ks_json *j, const char *key, uint64_t v);
void ks_json_kv_i64(struct ks_json *j, const char *key, int64_t v);

/* Finish the document with a newline (not in compact mode).  Return: 0, or -EIO on a write error. */
int ks_json_finish(struct ks_json *j);

/*
 * ks_json_write_string() - @s as a JSON string literal that is always
 * valid UTF-8 JSON: quotes and backslashes escaped; what the printable-text
 * rule refuses (ks_text.h: control and bidirectional formatting
 * characters) as \n, \t ... or \uXXXX; a byte that is not UTF-8 as
 * \ufffd (the replacement character); everything else as it is.
 */
void ks_json_write_string(FILE *f, const char *s);

#endif /* KVMSTATS_CLI_JSON_H */
