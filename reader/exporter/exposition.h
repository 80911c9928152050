/* SPDX-License-Identifier: MIT */
/*
 * exposition.h - one scrape, written in the Prometheus text format 0.0.4
 * or OpenMetrics 1.0.
 *
 * Every VM's series come from one cut (all targets as of one sweep), so
 * a VM's counters and histograms agree with each other.  A VM whose
 * publisher is stale or dead shows only its liveness series
 * (kvmstats_vm_up 0): its numbers stop instead of going on as if live.
 * An ended VM shows nothing.
 */
#ifndef KVMSTATS_EXPORTER_EXPOSITION_H
#define KVMSTATS_EXPORTER_EXPOSITION_H

#include <stdint.h>

#include "families.h"
#include "negotiate.h"
#include "outbuf.h"
#include "vmset.h"

/*
 * expo_register_own() - claim the exporter's own family names (liveness
 * and self-monitoring) before any segment can.  Return: 0 or -errno.
 */
int expo_register_own(struct families *fs);

/*
 * expo_write() - the scrape of @vs (after vmset_refresh()) into @b; it
 * reads each VM's cut (vmset_read()) just before formatting it.
 * @start_ns: kvmstats_now_ns() when the scrape began, for its duration.
 */
void expo_write(struct outbuf *b, enum expo_format fmt, struct vmset *vs, uint64_t start_ns);

#endif /* KVMSTATS_EXPORTER_EXPOSITION_H */
