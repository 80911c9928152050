/* SPDX-License-Identifier: MIT */
/* metric_map.c - how a kvmstats stat becomes a Prometheus metric family. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_hist.h"
#include "metric_map.h"

/* The suffixes a stat's own name may carry for its unit, longest first. */
static const char *const seconds_suffixes[] = {
	"_nanoseconds", "_microseconds", "_milliseconds", "_seconds", "_secs", "_sec",
	"_ns", "_us", "_ms", "_s", NULL,
};
static const char *const bytes_suffixes[] = {
	"_bytes", "_kib", "_mib", "_gib", "_kb", "_mb", "_gb", "_b", NULL,
};
static const char *const cycles_suffixes[] = { "_cycles", NULL };

static bool
ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* Drop the first of @suffixes that @s (@*len bytes) ends with. */
static void
strip_suffix(const char *s, size_t *len, const char *const *suffixes)
{
	for (; *suffixes != NULL; suffixes++)
		if (ends_with(s, *len, *suffixes)) {
			*len -= strlen(*suffixes);
			return;
		}
}

/* Append @s to the name at @*at, lower-cased, [^a-z0-9_] as '_'. */
static bool
put_sanitized(char *name, size_t *at, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (*at + 1 >= MM_NAME_MAX)
			return false;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			c = '_';
		name[(*at)++] = (char)c;
	}
	name[*at] = '\0';
	return true;
}

const char *
mm_family_of(const char *provider, enum kvmstats_target_kind kind,
	     const struct kvmstats_stat_info *st, struct mm_family *out)
{
	const char *const *suffixes = NULL;
	const char *kind_name = kind == KVMSTATS_TARGET_VM ? "_vm_" : "_vcpu_";
	size_t len = strlen(st->name), at = 0;

	memset(out, 0, sizeof(*out));
	switch (st->type) {
	case KVMSTATS_TYPE_CUMULATIVE:
		out->kind = MM_COUNTER;
		break;
	case KVMSTATS_TYPE_INSTANT:
	case KVMSTATS_TYPE_PEAK:
		out->kind = MM_GAUGE;
		break;
	case KVMSTATS_TYPE_LINEAR_HIST:
	case KVMSTATS_TYPE_LOG_HIST:
		out->kind = MM_HISTOGRAM;
		break;
	default:
		return "a type this exporter does not know";
	}
	switch (st->unit) {
	case KVMSTATS_UNIT_NONE:
		break;
	case KVMSTATS_UNIT_SECONDS:
		out->unit = "seconds";
		suffixes = seconds_suffixes;
		break;
	case KVMSTATS_UNIT_BYTES:
		out->unit = "bytes";
		suffixes = bytes_suffixes;
		break;
	case KVMSTATS_UNIT_CYCLES:
		out->unit = "cycles";
		suffixes = cycles_suffixes;
		break;
	case KVMSTATS_UNIT_BOOLEAN:
		/* A histogram of booleans counts 0s and 1s: a plain histogram. */
		if (out->kind == MM_COUNTER)
			return "a cumulative boolean";
		out->boolean = out->kind == MM_GAUGE;
		break;
	default:
		return "a unit this exporter does not know";
	}
	if (suffixes != NULL)
		strip_suffix(st->name, &len, suffixes);
	if (out->kind == MM_COUNTER && ends_with(st->name, len, "_total"))
		len -= strlen("_total");
	if (len == 0)
		return "an empty name";
	if (!put_sanitized(out->name, &at, provider, strlen(provider)) ||
	    !put_sanitized(out->name, &at, kind_name, strlen(kind_name)) ||
	    !put_sanitized(out->name, &at, st->name, len))
		return "a name too long for a metric";
	if (out->unit != NULL &&
	    (!put_sanitized(out->name, &at, "_", 1) ||
	     !put_sanitized(out->name, &at, out->unit, strlen(out->unit))))
		return "a name too long for a metric";
	/*
	 * A gauge must not look like a part of a histogram or a counter:
	 * Prometheus' linter refuses "_count", "_sum", "_bucket" and "_total"
	 * on one, and OpenMetrics reserves "_created" and "_info".
	 */
	if (out->kind == MM_GAUGE) {
		static const char *const reserved[] = {
			"_count", "_sum", "_bucket", "_total", "_created", "_info", NULL,
		};

		for (const char *const *r = reserved; *r != NULL; r++)
			if (ends_with(out->name, at, *r)) {
				if (!put_sanitized(out->name, &at, "_value", 6))
					return "a name too long for a metric";
				break;
			}
	}
	/*
	 * Values are written as floats that Prometheus parses into a
	 * float64: a scale beyond its range would give "inf" or a value it
	 * refuses.  KVM's scales are 10^-9 to 10^0 and 2^0 to 2^12.
	 */
	if (st->base == 10 ? st->exponent < -300 || st->exponent > 280
			   : st->exponent < -1000 || st->exponent > 950)
		return "a scale (base^exponent) beyond what a float64 holds";
	if (out->kind == MM_HISTOGRAM)
		return mm_hist_shape_fault(st);
	return NULL;
}

static double nearest_double(uint64_t v, unsigned base, int exponent);

const char *
mm_hist_shape_fault(const struct kvmstats_stat_info *st)
{
	double prev = -1;
	uint64_t upper;

	if (st->size < 1)
		return "a histogram without buckets";
	if (st->size > MM_HIST_MAX_BUCKETS)
		return "a histogram of more than 1024 buckets";
	if (st->type == KVMSTATS_TYPE_LOG_HIST) {
		if (st->size > 65)
			return "a log2 histogram of more than 65 buckets";
	} else {
		if (st->bucket_size == 0)
			return "a linear histogram of bucket size 0";
		/* Bucket size-2 ends at (size-1) * bucket_size - 1. */
		if ((uint64_t)(st->size - 1) > UINT64_MAX / st->bucket_size)
			return "a linear histogram whose edges do not fit in 64 bits";
	}
	for (uint32_t i = 0; mm_bucket_upper(st, i, &upper); i++) {
		double x = nearest_double(upper, st->base, st->exponent);

		if (!isfinite(x) || x <= prev)
			return "a histogram whose edges, in base units, are not distinct finite numbers";
		prev = x;
	}
	return NULL;
}

bool
mm_bucket_upper(const struct kvmstats_stat_info *st, uint32_t i, uint64_t *upper)
{
	uint64_t lo;

	if (i + 1 >= st->size)
		return false;	/* the last bucket: le="+Inf" */
	return ks_hist_bounds(st->type == KVMSTATS_TYPE_LINEAR_HIST, st->size, st->bucket_size, i,
			      &lo, upper);
}

char *
mm_put_u64(char *p, uint64_t v)
{
	static const char pairs[201] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	unsigned n = 1;
	char *end, *q;

	/* Digits first, then written from the end: no copy. */
	for (uint64_t x = 10; n < 20 && v >= x; x *= 10)
		n++;
	end = q = p + n;
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;

		v /= 100;
		*--q = pairs[d + 1];
		*--q = pairs[d];
	}
	if (v >= 10) {
		*--q = pairs[v * 2 + 1];
		*--q = pairs[v * 2];
	} else {
		*--q = (char)('0' + v);
	}
	return end;
}

/* @v with a decimal point moved @exponent places (base 10), exactly. */
static char *
put_decimal(char *p, uint64_t v, int exponent)
{
	char digits[24];
	int n;

	if (v == 0) {
		*p++ = '0';
		return p;
	}
	/* Trailing zeros of a fraction go first: 1500e-3 is "1.5". */
	while (exponent < 0 && v % 10 == 0) {
		v /= 10;
		exponent++;
	}
	n = (int)(mm_put_u64(digits, v) - digits);
	if (exponent >= 0) {
		if (n + exponent >= MM_NUM_MAX - 1)
			return p + sprintf(p, "%.*se%d", n, digits, exponent);
		memcpy(p, digits, (size_t)n);
		memset(p + n, '0', (size_t)exponent);
		return p + n + exponent;
	}
	if (-exponent > 40)
		return p + sprintf(p, "%.*se%d", n, digits, exponent);
	if (n > -exponent) {
		int ipart = n + exponent;

		memcpy(p, digits, (size_t)ipart);
		p[ipart] = '.';
		memcpy(p + ipart + 1, digits + ipart, (size_t)(n - ipart));
		return p + n + 1;
	}
	memcpy(p, "0.", 2);
	memset(p + 2, '0', (size_t)(-exponent - n));
	memcpy(p + 2 + (-exponent - n), digits, (size_t)n);
	return p + 2 + (-exponent - n) + n;
}

/* The nearest double to @v * @base^@exponent: rounded once, by strtod or ldexp. */
static double
nearest_double(uint64_t v, unsigned base, int exponent)
{
	char tmp[MM_NUM_MAX];

	if (base == 2)
		return ldexp((double)v, exponent);	/* v rounds once; scaling is exact */
	snprintf(tmp, sizeof(tmp), "%" PRIu64 "e%d", v, exponent);
	return strtod(tmp, NULL);
}

char *
mm_put_value(char *p, uint64_t v, unsigned base, int exponent)
{
	if (base == 10 || exponent == 0)
		return put_decimal(p, v, base == 10 ? exponent : 0);
	if (exponent > 0 && exponent < 64 && v <= UINT64_MAX >> exponent)
		return mm_put_u64(p, v << exponent);
	{
		double x = ldexp((double)v, exponent);

		/* Finite for every scale mm_family_of() accepts; never "inf" in any case. */
		if (isinf(x))
			return p + sprintf(p, "+Inf");
		return p + sprintf(p, "%.17g", x);
	}
}

size_t
mm_format_value(char *buf, uint64_t v, unsigned base, int exponent)
{
	char *end = mm_put_value(buf, v, base, exponent);

	*end = '\0';
	return (size_t)(end - buf);
}

size_t
mm_format_le(char *buf, uint64_t v, unsigned base, int exponent)
{
	double x = nearest_double(v, base, exponent);
	char tmp[MM_NUM_MAX];
	int digits = 1, exp10, n;

	if (isinf(x))
		return (size_t)snprintf(buf, MM_NUM_MAX, "+Inf");
	/* The fewest significant digits that read back to x. */
	for (; digits < 17; digits++) {
		snprintf(tmp, sizeof(tmp), "%.*e", digits - 1, x);
		if (strtod(tmp, NULL) == x)
			break;
	}
	snprintf(tmp, sizeof(tmp), "%.*e", digits - 1, x);
	exp10 = atoi(strchr(tmp, 'e') + 1);
	if (exp10 < -4 || exp10 >= 6)
		n = snprintf(buf, MM_NUM_MAX, "%s", tmp);
	else
		n = snprintf(buf, MM_NUM_MAX, "%.*f",
			     digits - 1 - exp10 > 0 ? digits - 1 - exp10 : 0, x);
	if (strpbrk(buf, ".e") == NULL)
		n += snprintf(buf + n, MM_NUM_MAX - (size_t)n, ".0");
	return (size_t)n;
}

const char *
mm_hist_sum_stat(const char *provider, const char *hist)
{
	static const char *const pairs[][2] = {
		{ "halt_poll_success_hist", "halt_poll_success_ns" },
		{ "halt_poll_fail_hist", "halt_poll_fail_ns" },
		{ "halt_wait_hist", "halt_wait_ns" },
	};

	if (strcmp(provider, "kvm") != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (strcmp(hist, pairs[i][0]) == 0)
			return pairs[i][1];
	return NULL;
}
