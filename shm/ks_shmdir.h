/* SPDX-License-Identifier: MIT */
/*
 * ks_shmdir.h - where segment files live and what they are called.
 *
 * One place for the rule, so the publisher, the reader library and the CLI
 * can never disagree about the directory or the name of a VM's segment.
 */
#ifndef KVMSTATS_SHM_KS_SHMDIR_H
#define KVMSTATS_SHM_KS_SHMDIR_H

#include <stddef.h>

/*
 * ks_shm_dir() - the segment directory: @explicit_dir if it is set and not
 * empty, else $KVMSTATS_SHM_DIR if set and not empty, else /dev/shm.
 * The result lives as long as @explicit_dir or the environment.
 */
const char *ks_shm_dir(const char *explicit_dir);

/*
 * ks_shm_file_name() - the file name of a VM's segment into @buf.
 * @vm: "kvm-1234", "kvmstats.kvm-1234" or "/kvmstats.kvm-1234".
 *
 * Return: 0; -EINVAL if the VM part is empty, @vm has a '/' after its first
 * character, or the name does not fit in @len bytes with its NUL.
 */
int ks_shm_file_name(const char *vm, char *buf, size_t len);

#endif /* KVMSTATS_SHM_KS_SHMDIR_H */
