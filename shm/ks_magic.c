/* SPDX-License-Identifier: MIT */
/* ks_magic.c - the abort of ks_magic.h. */
#include <stdio.h>
#include <stdlib.h>

#include "ks_magic.h"

void
ks_bad_handle(const char *fn, const char *kind, const void *p)
{
	if (p == NULL)
		fprintf(stderr, "kvmstats: %s: called with NULL for the %s handle: a bug in "
			"the calling program; aborting\n", fn, kind);
	else
		fprintf(stderr, "kvmstats: %s: %p is not a live %s handle (freed already, "
			"never made, or something else): a bug in the calling program; "
			"aborting\n", fn, p, kind);
	abort();
}
