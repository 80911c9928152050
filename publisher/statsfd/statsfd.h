/* SPDX-License-Identifier: MIT */
/*
 * statsfd.h - parse and validate a KVM binary stats file (KVM_GET_STATS_FD).
 *
 * The header, id string and descriptors are read once, at parse time; the
 * data block is then read with one pread() per sample.  Everything in the
 * file is untrusted: bounds, overlaps, names, counts and flags are checked,
 * and a file that fails gets an error that names it and the fault.
 */
#ifndef KVMSTATS_PUBLISHER_STATSFD_H
#define KVMSTATS_PUBLISHER_STATSFD_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmstats/types.h"
#include "ks_abi.h"

/* Sanity limits: far above any kernel's tables, low enough to bound memory. */
#define KS_STATSFD_MAX_DESC		4096
#define KS_STATSFD_MAX_NAME_SIZE	1024
#define KS_STATSFD_MAX_DATA		(1u << 20)	/* bytes in the data block */

/* One accepted descriptor, decoded. */
struct ks_kvm_desc {
	char *name;			/* NUL-terminated, owned by the schema */
	uint8_t type;			/* enum ks_stat_type */
	uint8_t unit;			/* enum ks_stat_unit */
	uint8_t base;			/* 10 or 2 */
	int16_t exponent;
	uint16_t size;			/* u64 values */
	uint32_t offset;		/* bytes from the start of the data block, multiple of 8 */
	uint32_t bucket_size;
};

/* A descriptor that was skipped because its type, unit or base is unknown. */
struct ks_kvm_skip {
	char *name;
	uint32_t flags;			/* the raw descriptor flags */
};

struct ks_statsfd_schema {
	char *id;			/* the file's id string, e.g. "kvm-1234/vcpu-0" */
	uint32_t name_size;
	uint32_t nr_desc;		/* accepted descriptors, in file order */
	struct ks_kvm_desc *desc;
	uint32_t nr_skipped;
	struct ks_kvm_skip *skipped;
	uint64_t data_offset;		/* file offset of the data block */
	uint32_t data_size;		/* bytes: max(offset + 8 * size) over all descriptors */
};

/*
 * ks_statsfd_parse() - read and validate the immutable blocks of @fd.
 * @what: names the file in error messages, e.g. "VM kvm-1234 vcpu 3 stats fd 7".
 *
 * Return: 0 with @out filled (free it with ks_statsfd_schema_clear()), or a
 * negative errno with @err saying which check failed: -EIO read error or
 * short file, -EBADMSG malformed, -E2BIG over a sanity limit.
 */
int ks_statsfd_parse(int fd, const char *what, struct ks_statsfd_schema *out,
		     struct kvmstats_error *err);

/*
 * ks_statsfd_link_parse() - is @link, what /proc/PID/fd/N says, a KVM
 * stats fd's name: "anon_inode:kvm-vm-stats" (the VM) or
 * "anon_inode:kvm-vcpu-stats:<vcpu_id>" (virt/kvm/kvm_main.c)?  The whole
 * name must match: the VM and vCPU fds themselves ("kvm-vm",
 * "kvm-vcpu:N") share a prefix with them.  Return: true with *@kind and
 * *@vcpu (KS_VCPU_INDEX_NONE for the VM) set.
 */
bool ks_statsfd_link_parse(const char *link, enum ks_target_kind *kind, uint32_t *vcpu);

/* ks_statsfd_link_name() - the link name of that stats fd, into @buf. */
void ks_statsfd_link_name(enum ks_target_kind kind, uint32_t vcpu, char *buf, size_t len);

/*
 * ks_statsfd_check_fd() - may the publisher read @fd at every sweep: is
 * it a KVM stats fd (by its link name: other anonymous inodes, a VFIO
 * device's for one, may sleep or act on a read) or a regular file in
 * memory (tmpfs, hugetlbfs: a memfd)?  A pipe, a device, or a file on a
 * network or FUSE filesystem could stall the poll thread and with it
 * every VM, so an fd from outside (the intake) is checked first.
 * Return: 0, or -EBADMSG with @err saying what @fd is.
 */
int ks_statsfd_check_fd(int fd, const char *what, struct kvmstats_error *err);

/* ks_statsfd_schema_clear() - free what parse allocated; safe twice. */
void ks_statsfd_schema_clear(struct ks_statsfd_schema *s);

/* ks_statsfd_same_layout() - same descriptors and data block (vCPUs of one VM). */
bool ks_statsfd_same_layout(const struct ks_statsfd_schema *a,
			    const struct ks_statsfd_schema *b);

/*
 * ks_statsfd_read_data() - one sample: pread() the data block into @dst
 * (data_size bytes).  Return: 0, or a negative errno (-EIO on a short read).
 */
int ks_statsfd_read_data(int fd, const struct ks_statsfd_schema *s, void *dst);

#endif /* KVMSTATS_PUBLISHER_STATSFD_H */
