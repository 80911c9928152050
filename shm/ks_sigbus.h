/* SPDX-License-Identifier: MIT */
/*
 * ks_sigbus.h - surviving a segment that is truncated under its mapping.
 *
 * The owner of a segment file (or root) can truncate or shrink it while
 * the publisher and readers have it mapped; touching a page that is no
 * longer backed by the file raises SIGBUS (si_code BUS_ADRERR), which
 * kills the process by default: the daemon with all its VMs, a VMM under
 * the preload shim, any reader.
 *
 * Every segment mapping is registered here.  One SIGBUS handler per
 * process recognises a fault inside a registered mapping by si_addr and
 * recovers in the faulting thread: it maps anonymous zero pages over the
 * whole mapping (read-only for readers, read-write for the publisher),
 * sets the mapping's flag and returns, so the faulting load or store runs
 * again on the private pages and the thread goes on.  Readers then see
 * sweep 0 and no sample; the publisher writes into memory nobody shares
 * until it notices the flag and publishes a new segment.  Any other
 * SIGBUS (outside our mappings, or a hardware memory error) goes to the
 * handler that was installed before ours, or gets the default action.
 *
 * Cost on the hot paths: none.  Reads and sweeps run no extra instruction;
 * the handler and the registry are touched only when a mapping is made or
 * removed, and when a fault happens.
 *
 * Limits: a handler that the program installs for SIGBUS after our first
 * mapping replaces ours (then a truncation is that handler's business);
 * and a thread must not block SIGBUS (ks_bus_allow()).
 */
#ifndef KVMSTATS_SHM_KS_SIGBUS_H
#define KVMSTATS_SHM_KS_SIGBUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ks_bus_guard;

/*
 * ks_bus_guard() - protect the mapping [@base, @base + @len).  A fault in
 * it replaces it with zero pages (@writable: read-write, else read-only)
 * and sets *@faulted (which must outlive the guard).  Installs the process
 * handler on first use.  Return: 0 with *@out set, or -errno.
 */
int ks_bus_guard(void *base, size_t len, bool writable, atomic_bool *faulted,
		 struct ks_bus_guard **out);

/* ks_bus_unguard() - before munmap(); sets *@g to NULL. */
void ks_bus_unguard(struct ks_bus_guard **g);

/* How many faults the handler has caught in this process (only increases). */
uint64_t ks_bus_faults(void);

/*
 * ks_bus_allow() - let the calling thread take SIGBUS.  A thread that
 * blocks it (helper threads often block every signal) is killed by a
 * fault, handler or not: the kernel does not queue a synchronous signal,
 * it unblocks it and resets it to the default.  Every thread that may
 * touch a segment mapping calls this first.
 */
void ks_bus_allow(void);

#endif /* KVMSTATS_SHM_KS_SIGBUS_H */
