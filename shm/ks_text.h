/* SPDX-License-Identifier: MIT */
/*
 * ks_text.h - what text from another process may hold, and how to show
 * text that breaks the rule.
 *
 * Names and labels come from files anybody can plant in /dev/shm, from
 * peers of the intake socket and from environment variables, and end up
 * on terminals, in logs and in JSON.  One rule says what is acceptable
 * ("printable text"), for the publisher (which refuses anything else up
 * front), the segment validator (which refuses it in a segment) and the
 * output side (which escapes it where it still appears, e.g. in a file
 * name):
 *
 *   - valid UTF-8: shortest form, no surrogates (U+D800..U+DFFF), nothing
 *     above U+10FFFF;
 *   - no control character: C0 (U+0000..U+001F), DEL (U+007F), C1
 *     (U+0080..U+009F), which terminals act on;
 *   - no bidirectional formatting character (Unicode's Bidi_Control: U+061C,
 *     U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), with which a
 *     terminal shows text in another order than it has ("Trojan source").
 */
#ifndef KVMSTATS_SHM_KS_TEXT_H
#define KVMSTATS_SHM_KS_TEXT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * ks_utf8_decode() - the code point that starts at @s (@len bytes left).
 * Return: its length in bytes (1..4) with *@cp set, or 0 if the bytes are
 * not valid UTF-8 there.
 */
size_t ks_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* ks_text_cp_printable() - whether code point @cp may appear in printable text. */
bool ks_text_cp_printable(uint32_t cp);

/*
 * ks_text_fault() - check @len bytes at @s against the rule above.
 * Return: NULL if they are printable text, else what is wrong ("invalid
 * UTF-8", "a control character", "a bidirectional formatting character"),
 * with *@at (if not NULL) set to the byte offset of the fault.
 */
const char *ks_text_fault(const char *s, size_t len, size_t *at);

/*
 * ks_text_escape() - @s (NUL-terminated) for a terminal or a log, into
 * @buf: printable text as it is, a backslash as "\\", and every byte of a
 * sequence the rule refuses as "\xNN", so that what is shown can always be
 * read back to the exact bytes.  Output is cut, never mid-escape, to fit
 * @len bytes with the NUL.  Return: @buf.
 */
char *ks_text_escape(char *buf, size_t len, const char *s);

/*
 * ks_text_vformat() - format a message (which may quote names from files
 * and segments) and escape the whole of it into @out, as ks_text_escape()
 * does: the one way messages are made safe for a terminal or a log.
 * Return: @out.
 */
char *ks_text_vformat(char *out, size_t len, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* ks_text_fputs() - ks_text_escape() straight to @f, however long @s is. */
void ks_text_fputs(FILE *f, const char *s);

/* ks_text_columns() - terminal columns of printable text: its code points. */
size_t ks_text_columns(const char *s);

#endif /* KVMSTATS_SHM_KS_TEXT_H */
