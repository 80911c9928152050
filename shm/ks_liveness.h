/* SPDX-License-Identifier: MIT */
/*
 * ks_liveness.h - how a reader tells a working publisher from a stuck or
 * a dead one (docs/ABI.md section 11).  One place for the rule, so that
 * the reader library, the CLI and the publisher's takeover of a dead
 * segment all decide alike.
 *
 * Dead: from ABI 1.1 on, a publisher holds an open file description lock
 * (F_OFD_SETLK, F_WRLCK) on the whole segment file from before the file
 * gets its public name until it stops updating it.  The kernel drops the
 * lock when the last descriptor of that open file is closed, so when the
 * process dies, however it dies; nobody else can fake it (a write lock
 * needs a descriptor open for writing, and segments are never writable by
 * group or others: only their owner could).  It works across PID
 * namespaces and is immune to PID reuse, unlike kill(pid, 0).
 *
 * Stale: the publisher lives but its heartbeat is older than
 * ks_stale_after_ns(): stopped (SIGSTOP, a debugger), starved or stuck.
 */
#ifndef KVMSTATS_SHM_KS_LIVENESS_H
#define KVMSTATS_SHM_KS_LIVENESS_H

#include <stdint.h>

/*
 * The heartbeat age above which a live segment is stale:
 * max(KVMSTATS_STALE_PERIODS periods, KVMSTATS_STALE_MIN_NS), reader.h
 * says why.
 */
uint64_t ks_stale_after_ns(uint64_t poll_period_ns);

/* Publisher: take the liveness lock on a segment file open for writing.  Return: 0 or -errno. */
int ks_liveness_lock(int fd);

/*
 * ks_liveness_held() - does any process hold the liveness lock of the file
 * behind @fd (any descriptor of it, even read-only)?
 * Return: 1 held, 0 not held, or -errno.
 */
int ks_liveness_held(int fd);

#endif /* KVMSTATS_SHM_KS_LIVENESS_H */
