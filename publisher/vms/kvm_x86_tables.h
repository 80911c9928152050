/* SPDX-License-Identifier: MIT */
/*
 * kvm_x86_tables.h - the x86 (kvm_amd, Linux 6.1 and 6.12) stats tables,
 * descriptor for descriptor in the kernel's order, with its offsets.  Used
 * only by the simulated VM and the tests: the publisher itself never
 * assumes a table, it reads whatever the descriptors say.
 */
#ifndef KVMSTATS_PUBLISHER_KVM_X86_TABLES_H
#define KVMSTATS_PUBLISHER_KVM_X86_TABLES_H

#include "statsfd_image.h"

#define KS_X86_NAME_SIZE	48
#define KS_X86_VM_NR_DESC	15
#define KS_X86_VCPU_NR_DESC	45
#define KS_X86_VM_DATA_SIZE	120
#define KS_X86_VCPU_DATA_SIZE	1104
#define KS_X86_HIST_BUCKETS	32

extern const struct ks_image_desc ks_x86_vm_desc[KS_X86_VM_NR_DESC];
extern const struct ks_image_desc ks_x86_vcpu_desc[KS_X86_VCPU_NR_DESC];

#endif /* KVMSTATS_PUBLISHER_KVM_X86_TABLES_H */
