/* SPDX-License-Identifier: MIT */
/* enumerate.c - list the segments of a directory, in name order. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ks_err.h"
#include "ks_shmdir.h"
#include "kvmstats/reader.h"

struct names {
	char **v;
	size_t n, cap;
};

static int
names_add(struct names *nm, const char *name)
{
	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? nm->cap * 2 : 16;
		char **v = realloc(nm->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		nm->v = v;
		nm->cap = cap;
	}
	nm->v[nm->n] = strdup(name);
	if (nm->v[nm->n] == NULL)
		return -ENOMEM;
	nm->n++;
	return 0;
}

static void
names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Published segments only: temporary files start with a dot. */
static bool
is_segment(const struct dirent *de)
{
	if (strncmp(de->d_name, KVMSTATS_SEGMENT_PREFIX, strlen(KVMSTATS_SEGMENT_PREFIX)) != 0 ||
	    de->d_name[strlen(KVMSTATS_SEGMENT_PREFIX)] == '\0')
		return false;
	return de->d_type == DT_REG || de->d_type == DT_UNKNOWN;
}

static int
collect(const char *dir, struct names *nm, struct kvmstats_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return ks_err(err, -errno, "cannot list segments in %s: %s", dir, strerror(errno));
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (is_segment(de))
			rc = names_add(nm, de->d_name);
	closedir(d);
	if (rc < 0)
		return ks_err(err, rc, "out of memory listing %s", dir);
	if (nm->n > 1)		/* qsort(NULL, 0, ...) is undefined */
		qsort(nm->v, nm->n, sizeof(*nm->v), cmp_name);
	return 0;
}

int
kvmstats_enumerate(const char *dir, int (*cb)(const char *segment_file, void *arg), void *arg,
		   struct kvmstats_error *err)
{
	struct names nm = { 0 };
	int rc;

	if (cb == NULL)
		return ks_err(err, -EINVAL, "enumerate: no callback");
	rc = collect(ks_shm_dir(dir), &nm, err);
	for (size_t i = 0; rc == 0 && i < nm.n; i++)
		rc = cb(nm.v[i], arg);
	names_free(&nm);
	return rc;
}
