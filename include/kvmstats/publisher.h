/* SPDX-License-Identifier: MIT */
/*
 * kvmstats/publisher.h - publish a VM's KVM statistics from inside its VMM.
 *
 * A VMM that links libkvmstats-publisher registers the stats fds it takes
 * with KVM_GET_STATS_FD (one per VM and per vCPU, with labels such as QOM
 * paths) and gets the same engine and segments as kvmstatsd: a poll thread
 * in the VMM reads each fd once per period into shared memory, and any
 * number of readers in other processes read without disturbing the VMM.
 *
 *	struct kvmstats_publisher *pub;
 *	struct kvmstats_vm *vm;
 *	struct kvmstats_error err;
 *	struct kvmstats_fd fds[] = {
 *		{ vm_stats_fd, KVMSTATS_TARGET_VM, 0, NULL },
 *		{ vcpu0_stats_fd, KVMSTATS_TARGET_VCPU, 0, "/machine/unattached/device[0]" },
 *	};
 *
 *	if (kvmstats_publisher_create(NULL, &pub, &err) < 0 ||
 *	    kvmstats_publisher_add_vm(pub, "my-vm", fds, 2, &vm, &err) < 0)
 *		log("kvmstats: %s", err.msg);	// the VM runs on regardless
 *	...
 *	kvmstats_publisher_destroy(&pub);	// segments marked ended, removed
 *
 * The library duplicates the fds it is given (close-on-exec): the VMM keeps
 * and closes its own.  Thread safety: calls on one publisher may come from
 * any threads; calls on one VM need the caller's exclusion.
 *
 * Handles: a publisher or VM handle that is NULL (where one is required),
 * destroyed or removed, not a handle at all, or a VM given to another
 * publisher than its own, is a bug in the caller: the function aborts the
 * program with a message that names it (reader.h says the same).  A bad
 * fd, name or option is an error return, never an abort.
 */
#ifndef KVMSTATS_PUBLISHER_H
#define KVMSTATS_PUBLISHER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstats/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kvmstats_publisher;
struct kvmstats_vm;

/*
 * kvmstats_publisher_opts - zero or kvmstats_publisher_opts_init() means
 * the defaults: 100 Hz, ring depth 4 (doubled for a small VM, up to 64,
 * until its ring spans 512 KiB: readers then cost the sweep less; a
 * nonzero ring_depth is taken as it is), $KVMSTATS_SHM_DIR or /dev/shm,
 * mode 0640, the caller's group, segments removed when they end, silent.
 */
struct kvmstats_publisher_opts {
	unsigned hz;
	unsigned ring_depth;
	const char *dir;
	mode_t mode;
	gid_t gid;			/* (gid_t)-1: the caller's */
	bool keep;
	/*
	 * Rare events, one line each, without a newline: a segment truncated
	 * under the publisher (it publishes a new one).  Called from the poll
	 * thread; it may quote names.  NULL: said nowhere.
	 */
	void (*log)(const char *line);
};

void kvmstats_publisher_opts_init(struct kvmstats_publisher_opts *opts);

/* Create a publisher and start its poll thread.  @opts may be NULL. */
int kvmstats_publisher_create(const struct kvmstats_publisher_opts *opts,
			      struct kvmstats_publisher **out, struct kvmstats_error *err);

/* One stats fd and the target it describes. */
struct kvmstats_fd {
	int fd;
	enum kvmstats_target_kind kind;
	uint32_t vcpu_index;		/* vcpu targets */
	const char *label;		/* NULL: the fd's id string */
};

/*
 * kvmstats_publisher_add_vm() - publish a VM: segment "kvmstats.<vm_name>"
 * (@vm_name NULL: the VM fd's id string, e.g. "kvm-1234").  Every fd is
 * validated; a bad one fails the call with @err naming it.
 */
int kvmstats_publisher_add_vm(struct kvmstats_publisher *pub, const char *vm_name,
			      const struct kvmstats_fd *fds, unsigned nr_fds,
			      struct kvmstats_vm **out, struct kvmstats_error *err);

/*
 * kvmstats_publisher_update_vm() - the VM's set of fds changed (vCPU
 * hotplug): a new segment generation replaces the old one, whose readers
 * see it superseded and re-attach.  @fds is the whole new set.
 */
int kvmstats_publisher_update_vm(struct kvmstats_publisher *pub, struct kvmstats_vm *vm,
				 const struct kvmstats_fd *fds, unsigned nr_fds,
				 struct kvmstats_error *err);

/* The segment's file name, e.g. "kvmstats.my-vm". */
const char *kvmstats_vm_segment(const struct kvmstats_vm *vm);

/* The VM ended: mark its segment ended and remove it (unless keep). */
void kvmstats_publisher_remove_vm(struct kvmstats_publisher *pub, struct kvmstats_vm *vm);

/* Stop, end every VM; sets *@pubp to NULL. */
void kvmstats_publisher_destroy(struct kvmstats_publisher **pubp);

#ifdef __cplusplus
}
#endif

#endif /* KVMSTATS_PUBLISHER_H */
