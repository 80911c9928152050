/* SPDX-License-Identifier: MIT */
/* shm_dir.c - the segment directory a test program publishes into. */
#include <stdio.h>
#include <stdlib.h>

#include "shm_dir.h"

int
test_shm_dir(char *dir, size_t len, const char *name)
{
	const char *env = getenv("KVMSTATS_SHM_DIR");

	if (env != NULL && env[0] != '\0') {
		snprintf(dir, len, "%s", env);
	} else {
		snprintf(dir, len, "/tmp/kvmstats-%s.XXXXXX", name);
		if (mkdtemp(dir) == NULL)
			return -1;
		setenv("KVMSTATS_SHM_DIR", dir, 1);
	}
	return 0;
}
