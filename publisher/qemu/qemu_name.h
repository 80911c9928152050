/* SPDX-License-Identifier: MIT */
/*
 * qemu_name.h - the name a QEMU was given with -name, as a VM name.
 *
 * "-name guest=web-01,debug-threads=on" (libvirt's form, the domain name)
 * or "-name web-01" name the VM web-01 in QEMU's own query-name; dashboards
 * and alerts key on it, so kvmstats publishes the VM under that name
 * unless the user names it otherwise.  The command line is untrusted text
 * (any user may start a QEMU): a name that could not name a segment
 * (ks_vm_name_fault()) is refused with the reason, never mangled.
 */
#ifndef KVMSTATS_PUBLISHER_QEMU_NAME_H
#define KVMSTATS_PUBLISHER_QEMU_NAME_H

#include <stddef.h>
#include <sys/types.h>

/*
 * ks_qemu_name_parse() - the guest name in a NUL-separated argument vector
 * (@args, @len bytes, as /proc/PID/cmdline holds it) into @name.
 * QEMU's rules: "-name" or "--name" takes the next argument, a list of
 * "key=value" separated by ',' (",," is a literal comma) whose first
 * element may omit "guest="; with several -name options the last guest
 * wins.  Return: 1 found (and valid), 0 no -name with a guest, -EINVAL
 * found but unusable (@why says why).
 */
int ks_qemu_name_parse(const char *args, size_t len, char *name, size_t name_len,
		       char *why, size_t why_len);

/* ks_qemu_name_of_pid() - the same, for process @pid (/proc/@pid/cmdline). */
int ks_qemu_name_of_pid(pid_t pid, char *name, size_t name_len, char *why, size_t why_len);

#endif /* KVMSTATS_PUBLISHER_QEMU_NAME_H */
