/* SPDX-License-Identifier: MIT */
/*
 * ks_shmdir.h - where segment files live, what they are called, and what
 * may name a VM.
 *
 * One place for the rules, so the publisher, the reader library and the
 * CLI can never disagree about the directory, the name of a VM's segment,
 * or whether a name is one that every reader can address.
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
 * ks_vm_name_of() - the VM part of any of a VM's three spellings:
 * "kvm-1234", "kvmstats.kvm-1234" (its segment file) or
 * "/kvmstats.kvm-1234" (its POSIX shm name).  A prefix is never doubled:
 * --name kvmstats.x names VM "x".  Return: a pointer into @vm.
 */
const char *ks_vm_name_of(const char *vm);

/*
 * ks_vm_name_fault() - whether @name (a VM part, see ks_vm_name_of()) can
 * name a VM: its segment kvmstats.<name> must be a file name that every
 * reader lists and can be asked for, so the name is 1 to
 * KVMSTATS_VM_NAME_MAX bytes of printable text (ks_text.h), without '/',
 * not starting with '.' (temporary and hidden files), nor with "kvmstats."
 * (one prefix is the file's; a second would make the name ambiguous).
 * Return: NULL if it can, else @why filled with what is wrong.
 */
const char *ks_vm_name_fault(const char *name, char *why, size_t len);

/*
 * ks_shm_file_name() - the file name of a VM's segment into @buf.
 * @vm: any spelling of ks_vm_name_of().
 *
 * Return: 0; -EINVAL if the VM part fails ks_vm_name_fault() or the name
 * does not fit in @len bytes with its NUL.
 */
int ks_shm_file_name(const char *vm, char *buf, size_t len);

#endif /* KVMSTATS_SHM_KS_SHMDIR_H */
