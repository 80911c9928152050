/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstats/reader.h"
#include "ks_shmdir.h"

const char *
ks_shm_dir(const char *explicit_dir)
{
	const char *env;

	if (explicit_dir != NULL && explicit_dir[0] != '\0')
		return explicit_dir;
	env = getenv("KVMSTATS_SHM_DIR");
	if (env != NULL && env[0] != '\0')
		return env;
	return KVMSTATS_DEFAULT_DIR;
}

int
ks_shm_file_name(const char *vm, char *buf, size_t len)
{
	const size_t plen = strlen(KVMSTATS_SEGMENT_PREFIX);
	int n;

	if (vm == NULL || buf == NULL)
		return -EINVAL;
	/* A POSIX shm name ("/kvmstats.x") is the file name with a slash. */
	if (vm[0] == '/')
		vm++;
	if (strchr(vm, '/') != NULL)
		return -EINVAL;
	if (strncmp(vm, KVMSTATS_SEGMENT_PREFIX, plen) == 0)
		vm += plen;
	/* Never "", ".", ".." or a hidden (temporary) file. */
	if (vm[0] == '\0')
		return -EINVAL;
	n = snprintf(buf, len, "%s%s", KVMSTATS_SEGMENT_PREFIX, vm);
	if (n < 0 || (size_t)n >= len)
		return -EINVAL;
	return 0;
}
