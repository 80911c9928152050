/* SPDX-License-Identifier: MIT */
/* families.c - the metric families of a scrape, shared by all its VMs. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
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
	for (size_t i = 0; i < fs->n; i++)
		free(fs->v[i].help);
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

/* Escaped for a HELP line: '\' and newline in both formats, '"' for OpenMetrics too. */
static char *
escape_help(const char *s)
{
	char *out = malloc(strlen(s) * 2 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			*o++ = '\\';
			*o++ = *s == '\n' ? 'n' : *s;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
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
	fs->v[id].desc = *desc;
	fs->v[id].help = escape_help(help);
	if (fs->v[id].help == NULL)
		return -ENOMEM;
	for (const char *const *s = sfx; *s != NULL; s++) {
		strcpy(name, desc->name);
		strcat(name, *s);
		c = claim_slot(fs->claims, fs->claims_cap, name);
		c->name = strdup(name);
		if (c->name == NULL)
			return -ENOMEM;	/* the family is not counted: its claims stay, harmless */
		c->id = id;
		fs->nclaims++;
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
