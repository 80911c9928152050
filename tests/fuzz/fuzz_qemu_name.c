// SPDX-License-Identifier: MIT
/*
 * fuzz_qemu_name.c - libFuzzer harness: any bytes as a QEMU command line
 * (/proc/PID/cmdline: arguments separated by NULs, the last one possibly
 * cut), through the -name parser that names VMs.  Anyone may start a
 * process with any arguments, and kvmstatsd --attach reads them as root.
 * Checked: a name found is one ks_vm_name_fault() accepts, fits its
 * buffer, and a refusal always says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstats/reader.h"
#include "ks_shmdir.h"
#include "qemu_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[KVMSTATS_VM_NAME_MAX + 1], why[160], why2[160];
	int r;

	memset(name, 0x5a, sizeof(name));
	why[0] = '\0';
	r = ks_qemu_name_parse((const char *)data, size, name, sizeof(name), why, sizeof(why));
	if (r == 1 && (memchr(name, '\0', sizeof(name)) == NULL ||
		       ks_vm_name_fault(name, why2, sizeof(why2)) != NULL))
		abort();
	if (r < 0 && why[0] == '\0')
		abort();
	if (r != 0 && r != 1 && r != -22)
		abort();
	return 0;
}
