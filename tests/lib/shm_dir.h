/* SPDX-License-Identifier: MIT */
/* shm_dir.h - the segment directory a test program publishes into. */
#ifndef KVMSTATS_TESTS_SHM_DIR_H
#define KVMSTATS_TESTS_SHM_DIR_H

#include <stddef.h>

/*
 * $KVMSTATS_SHM_DIR when set, else a new /tmp/kvmstats-@name.XXXXXX, then
 * exported as KVMSTATS_SHM_DIR for the code under test.  Copied to @dir.
 * Return: 0, or -1 when the directory cannot be made.
 */
int test_shm_dir(char *dir, size_t len, const char *name);

#endif
