/* SPDX-License-Identifier: MIT */
/* families.c - the metric families of a scrape, shared by all its VMs. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families.h"

/*
 * Every sample name a family writes is claimed in one hash table, with
 * the family's id: a counter "x" claims "x" and "x_total"; a gauge "x";
 * a histogram "x", "x_bucket", "x_count" and "x_sum".  OpenMetrics names
 * the family "x" where the text format names a counter's "x_total", so
 * both are claimed.
 */
struct claim {
	char *name;			/* NULL: empty */
	unsigned id;
};

struct families {
	struct family *v;
	size_t n, cap;
	struct claim *claims;
	size_t nclaims, claims_cap;	/* power of two */
};

static const char *const counter_suffixes[] = { "", "_total", NULL };
static const char *const gauge_suffixes[] = { "", NULL };
static const char *const hist_suffixes[] = { "", "_bucket", "_count", "_sum", NULL };

static const char *const *
suffixes_of(enum mm_kind kind)
{
	return kind == MM_COUNTER ? counter_suffixes
	       : kind == MM_GAUGE ? gauge_suffixes : hist_suffixes;
}

static uint64_t
hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static struct claim *
claim_slot(struct claim *claims, size_t cap, const char *name)
{
	size_t i = (size_t)hash(name) & (cap - 1);

	while (claims[i].name != NULL && strcmp(claims[i].name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &claims[i];
}

static int
claims_grow(struct families *fs)
{
	size_t cap = fs->claims_cap ? fs->claims_cap * 2 : 256;
	struct claim *claims = calloc(cap, sizeof(*claims));

	if (claims == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < fs->claims_cap; i++)
		if (fs->claims[i].name != NULL)
			*claim_slot(claims, cap, fs->claims[i].name) = fs->claims[i];
	free(fs->claims);
	fs->claims = claims;
	fs->claims_cap = cap;
	return 0;
}

struct families *
families_new(void)
{
	struct families *fs = calloc(1, sizeof(*fs));

	if (fs != NULL && claims_grow(fs) < 0) {
		free(fs);
		return NULL;
	}
	return fs;
}

void
families_free(struct families *fs)
{
	if (fs == NULL)
		return;
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->v[i].header_text);
		free(fs->v[i].header_om);
		for (int k = 0; k < 4; k++)
			free(fs->v[i].open[k]);
	}
	for (size_t i = 0; i < fs->claims_cap; i++)
		free(fs->claims[i].name);
	free(fs->v);
	free(fs->claims);
	free(fs);
}

static bool
same_family(const struct mm_family *a, const struct mm_family *b)
{
	return strcmp(a->name, b->name) == 0 && a->kind == b->kind &&
	       a->boolean == b->boolean &&
	       (a->unit == b->unit || (a->unit && b->unit && strcmp(a->unit, b->unit) == 0));
}

/*
 * Escaped for a HELP line: '\' and newline in both formats; '"' only in
 * OpenMetrics (@quotes), since the text format 0.0.4 has no escape for it
 * and its parsers refuse one.
 */
static char *
escape_help(const char *s, bool quotes)
{
	char *out = malloc(strlen(s) * 2 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '\n' || (quotes && *s == '"')) {
			*o++ = '\\';
			*o++ = *s == '\n' ? 'n' : *s;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

static const char *
type_word(enum mm_kind kind)
{
	return kind == MM_COUNTER ? "counter" : kind == MM_GAUGE ? "gauge" : "histogram";
}

/*
 * The comment lines of @f.  The text format names a counter by its
 * sample ("x_total"), OpenMetrics by its family ("x"), with UNIT.
 */
static int
make_headers(struct family *f, const char *help)
{
	const char *name = f->desc.name, *type = type_word(f->desc.kind);
	const char *sfx = f->desc.kind == MM_COUNTER ? "_total" : "";
	char *help_text = escape_help(help, false), *help_om = escape_help(help, true);
	int n = -1, m = -1;

	if (help_text != NULL && help_om != NULL) {
		n = asprintf(&f->header_text, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, sfx,
			     help_text, name, sfx, type);
		if (f->desc.unit != NULL)
			m = asprintf(&f->header_om, "# TYPE %s %s\n# UNIT %s %s\n# HELP %s %s\n",
				     name, type, name, f->desc.unit, name, help_om);
		else
			m = asprintf(&f->header_om, "# TYPE %s %s\n# HELP %s %s\n", name, type,
				     name, help_om);
	}
	free(help_text);
	free(help_om);
	if (n < 0)
		f->header_text = NULL;
	if (m < 0)
		f->header_om = NULL;
	if (n < 0 || m < 0)
		return -ENOMEM;
	f->header_text_len = (size_t)n;
	f->header_om_len = (size_t)m;
	{
		const char *const sfx4[4] = {
			f->desc.kind == MM_COUNTER ? "_total{" : "{", "_bucket{", "_count{", "_sum{",
		};

		for (int i = 0; i < (f->desc.kind == MM_HISTOGRAM ? 4 : 1); i++) {
			size_t len = strlen(name) + strlen(sfx4[i]);

			f->open[i] = calloc(1, len + 1 + PIECE_SLACK);
			if (f->open[i] == NULL)
				return -ENOMEM;
			snprintf(f->open[i], len + 1, "%s%s", name, sfx4[i]);
			f->open_len[i] = (uint8_t)len;	/* names are < MM_NAME_MAX + 8 bytes */
		}
	}
	return 0;
}

int
families_add(struct families *fs, const struct mm_family *desc, const char *help)
{
	const char *const *sfx = suffixes_of(desc->kind);
	char name[MM_NAME_MAX + 8];
	unsigned id = (unsigned)fs->n;
	struct claim *c;

	c = claim_slot(fs->claims, fs->claims_cap, desc->name);
	if (c->name != NULL)
		return same_family(&fs->v[c->id].desc, desc) ? (int)c->id : -EEXIST;
	for (const char *const *s = sfx; *s != NULL; s++) {
		strcpy(name, desc->name);
		strcat(name, *s);
		if (claim_slot(fs->claims, fs->claims_cap, name)->name != NULL)
			return -EEXIST;
	}
	if (fs->n == FAMILIES_MAX)
		return -ENOSPC;
	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 64;
		struct family *v = realloc(fs->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		fs->v = v;
		fs->cap = cap;
	}
	/* Keep the table at most half full: four claims per family at most. */
	while ((fs->nclaims + 4) * 2 > fs->claims_cap)
		if (claims_grow(fs) < 0)
			return -ENOMEM;
	/* Every name first, then the claims: a failure leaves no claim behind. */
	{
		char *names[4] = { NULL };
		size_t k = 0;

		for (const char *const *x = sfx; *x != NULL; x++, k++) {
			snprintf(name, sizeof(name), "%s%s", desc->name, *x);
			names[k] = strdup(name);
			if (names[k] == NULL)
				break;
		}
		memset(&fs->v[id], 0, sizeof(fs->v[id]));
		fs->v[id].desc = *desc;
		if (sfx[k] != NULL || make_headers(&fs->v[id], help) < 0) {
			for (size_t i = 0; i < 4; i++)
				free(names[i]);
			free(fs->v[id].header_text);
			free(fs->v[id].header_om);
			for (int i = 0; i < 4; i++)
				free(fs->v[id].open[i]);
			return -ENOMEM;
		}
		for (size_t i = 0; i < k; i++) {
			c = claim_slot(fs->claims, fs->claims_cap, names[i]);
			c->name = names[i];
			c->id = id;
			fs->nclaims++;
		}
	}
	fs->n++;
	return (int)id;
}

size_t
families_count(const struct families *fs)
{
	return fs->n;
}

const struct family *
families_get(const struct families *fs, unsigned id)
{
	return id < fs->n ? &fs->v[id] : NULL;
}
