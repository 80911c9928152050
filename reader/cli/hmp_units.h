/* SPDX-License-Identifier: MIT */
/*
 * hmp_units.h - render a stat the way QEMU's HMP "info stats" does.
 *
 * Internal to kvmstats (the CLI and its tests), not part of the public API.
 * Pure functions: they look at the schema entry and the values they are
 * given and nothing else, so every formatting rule is unit-testable.
 *
 * The rules (docs: /work/shared/reference/qemu-stats-api.md section 4):
 *   "    <name> (<type>[, <scale>][, bucket size=<n>]): <value>"
 * where <scale> is an SI prefix + s/B for base 10 and exponents -18..18 in
 * steps of 3, an IEC prefix + s/B for base 2 and exponents 0..60 in steps
 * of 10, else "* <base>^<exp>[ <unit's English name>]" for a non-zero
 * exponent, else the short unit (s, B) or the English name (cycles,
 * boolean).  Values: scalars signed (PRId64, as QEMU), booleans yes/no,
 * histograms "[1]=v [2]=v " with a trailing space.
 */
#ifndef KVMSTATS_READER_HMP_UNITS_H
#define KVMSTATS_READER_HMP_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmstats/reader.h"

/* "n" for -9, "K" for 3, "" for 0 ... ; NULL outside -18..18 or not a multiple of 3. */
const char *ks_hmp_si_prefix(int exponent);

/* "Ki" for 10 ... "Ei" for 60, "" for 0; NULL outside 0..60 or not a multiple of 10. */
const char *ks_hmp_iec_prefix(int exponent);

/*
 * ks_hmp_scale() - the scale and unit text that follows "<type>, ", e.g.
 * "ns", "KiB", "* 2^12 bytes", "* 10^3 cycles", "boolean"; "" when the
 * stat has no unit and exponent 0 (then HMP prints no ", " either).
 * Return: the length of the full text, as snprintf() does.
 */
int ks_hmp_scale(char *buf, size_t len, unsigned unit, unsigned base, int exponent);

/*
 * ks_hmp_stat_head() - "<name> (<type>[, <scale>][, bucket size=<n>])",
 * without the indentation.  Return: as snprintf().
 */
int ks_hmp_stat_head(char *buf, size_t len, const struct kvmstats_stat_info *si);

/* True if HMP and QMP print this stat as a boolean (yes/no, true/false). */
int ks_hmp_is_boolean(const struct kvmstats_stat_info *si);

/*
 * ks_hmp_print_stat() - one whole "info stats" line, newline included,
 * for a stat with si->size values in @values.  Return: 0, or -EIO if
 * writing to @f failed.
 */
int ks_hmp_print_stat(FILE *f, const struct kvmstats_stat_info *si,
		      const uint64_t *values);

#endif /* KVMSTATS_READER_HMP_UNITS_H */
