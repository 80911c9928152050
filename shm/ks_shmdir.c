/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstats/reader.h"
#include "ks_shmdir.h"
#include "ks_text.h"

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

const char *
ks_vm_name_of(const char *vm)
{
	const size_t plen = strlen(KVMSTATS_SEGMENT_PREFIX);

	/* A POSIX shm name ("/kvmstats.x") is the file name with a slash. */
	if (vm[0] == '/')
		vm++;
	if (strncmp(vm, KVMSTATS_SEGMENT_PREFIX, plen) == 0)
		vm += plen;
	return vm;
}

const char *
ks_vm_name_fault(const char *name, char *why, size_t len)
{
	size_t n = strlen(name), at;
	const char *fault;

	if (n == 0)
		snprintf(why, len, "is empty");
	else if (n > KVMSTATS_VM_NAME_MAX)
		snprintf(why, len, "is %zu bytes long, over the limit of %d", n,
			 KVMSTATS_VM_NAME_MAX);
	else if (strchr(name, '/') != NULL)
		snprintf(why, len, "contains '/'");
	else if (name[0] == '.')
		snprintf(why, len, "starts with '.' (hidden names are for temporary files)");
	else if ((fault = ks_text_fault(name, n, &at)) != NULL)
		snprintf(why, len, "has %s at byte %zu", fault, at);
	else if (strncmp(name, KVMSTATS_SEGMENT_PREFIX, strlen(KVMSTATS_SEGMENT_PREFIX)) == 0)
		snprintf(why, len, "starts with \"%s\" once more (readers take one "
			 "prefix off a file name, and would find another VM)",
			 KVMSTATS_SEGMENT_PREFIX);
	else
		return NULL;
	return why;
}

int
ks_shm_file_name(const char *vm, char *buf, size_t len)
{
	char why[128];
	int n;

	if (vm == NULL || buf == NULL)
		return -EINVAL;
	vm = ks_vm_name_of(vm);
	if (ks_vm_name_fault(vm, why, sizeof(why)) != NULL)
		return -EINVAL;
	n = snprintf(buf, len, "%s%s", KVMSTATS_SEGMENT_PREFIX, vm);
	if (n < 0 || (size_t)n >= len)
		return -EINVAL;
	return 0;
}
