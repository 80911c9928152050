/* SPDX-License-Identifier: MIT */
/*
 * hmp_units.c - QEMU HMP "info stats" rendering of a stat (hmp_units.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "hmp_units.h"
#include "ks_text.h"

/* Indexed by exponent / 3 + 6: atto .. exa.  QEMU spells micro "u", kilo "K". */
static const char *const si_prefixes[] = {
	"a", "f", "p", "n", "u", "m", "", "K", "M", "G", "T", "P", "E",
};

/* Indexed by exponent / 10: 1 .. exbi. */
static const char *const iec_prefixes[] = {
	"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
};

const char *
ks_hmp_si_prefix(int exponent)
{
	if (exponent < -18 || exponent > 18 || exponent % 3 != 0)
		return NULL;
	return si_prefixes[exponent / 3 + 6];
}

const char *
ks_hmp_iec_prefix(int exponent)
{
	if (exponent < 0 || exponent > 60 || exponent % 10 != 0)
		return NULL;
	return iec_prefixes[exponent / 10];
}

/* Only seconds and bytes have a short symbol that takes a prefix. */
static const char *
short_unit(unsigned unit)
{
	switch (unit) {
	case KVMSTATS_UNIT_SECONDS:
		return "s";
	case KVMSTATS_UNIT_BYTES:
		return "B";
	default:
		return NULL;
	}
}

int
ks_hmp_scale(char *buf, size_t len, unsigned unit, unsigned base, int exponent)
{
	const char *sym = short_unit(unit);
	const char *name = unit == KVMSTATS_UNIT_NONE ? NULL : kvmstats_unit_name(unit);
	const char *prefix = NULL;

	if (sym && base == 10)
		prefix = ks_hmp_si_prefix(exponent);
	else if (sym && base == 2)
		prefix = ks_hmp_iec_prefix(exponent);
	if (prefix)
		return snprintf(buf, len, "%s%s", prefix, sym);
	if (exponent != 0)
		return snprintf(buf, len, "* %u^%d%s%s", base, exponent,
				name ? " " : "", name ? name : "");
	/* Exponent 0 with a base QEMU has no prefix table for: plain unit. */
	if (sym)
		return snprintf(buf, len, "%s", sym);
	return snprintf(buf, len, "%s", name ? name : "");
}

/* "<type>[, <scale>][, bucket size=<n>]": short, bounded by its parts. */
static void
describe(char *buf, size_t len, const struct kvmstats_stat_info *si)
{
	const char *type = kvmstats_type_name(si->type);
	char scale[64];
	char bucket[32] = "";

	ks_hmp_scale(scale, sizeof(scale), si->unit, si->base, si->exponent);
	if (si->type == KVMSTATS_TYPE_LINEAR_HIST)
		snprintf(bucket, sizeof(bucket), ", bucket size=%" PRIu32, si->bucket_size);
	snprintf(buf, len, "%s%s%s%s", type ? type : "unknown",
		 scale[0] ? ", " : "", scale, bucket);
}

int
ks_hmp_stat_head(char *buf, size_t len, const struct kvmstats_stat_info *si)
{
	char desc[128];

	describe(desc, sizeof(desc), si);
	return snprintf(buf, len, "%s (%s)", si->name, desc);
}

int
ks_hmp_is_boolean(const struct kvmstats_stat_info *si)
{
	/*
	 * A boolean linear histogram (the ABI allows two buckets) is still a
	 * histogram: its counts are printed as a list, not as one yes/no.
	 */
	return si->unit == KVMSTATS_UNIT_BOOLEAN && si->size == 1;
}

static void
print_value(FILE *f, const struct kvmstats_stat_info *si, const uint64_t *values)
{
	if (ks_hmp_is_boolean(si)) {
		fprintf(f, ": %s\n", values[0] ? "yes" : "no");
		return;
	}
	if (si->size == 1) {
		/* QEMU prints the u64 with PRId64: above INT64_MAX it goes negative. */
		fprintf(f, ": %" PRId64 "\n", (int64_t)values[0]);
		return;
	}
	fputs(": ", f);
	for (uint32_t i = 0; i < si->size; i++)
		fprintf(f, "[%" PRIu32 "]=%" PRId64 " ", i + 1, (int64_t)values[i]);
	fputc('\n', f);
}

int
ks_hmp_print_stat(FILE *f, const struct kvmstats_stat_info *si, const uint64_t *values)
{
	char desc[128];

	describe(desc, sizeof(desc), si);
	/* Validated text already (ks_validate.c); escaped all the same. */
	fputs("    ", f);
	ks_text_fputs(f, si->name);
	fprintf(f, " (%s)", desc);
	print_value(f, si, values);
	return ferror(f) ? -EIO : 0;
}
