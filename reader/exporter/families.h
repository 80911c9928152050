/* SPDX-License-Identifier: MIT */
/*
 * families.h - the metric families of a scrape, shared by all its VMs.
 *
 * An exposition must list every sample of a family together, under one
 * TYPE line, so the families are the outer loop of a scrape and the VMs
 * the inner one.  Each VM's stats are mapped to family ids once, when the
 * segment is attached.  The table keeps a family for as long as the
 * exporter runs, so ids stay valid across scrapes, and the exposition
 * lists families in id order: the exporter's own first, then in the order
 * the segments (in name order) brought them.
 *
 * Segments are untrusted: one may declare a stat whose name maps onto
 * another VM's family with another type, or onto a sample name that a
 * family already uses ("x_count" beside histogram "x"), or thousands of
 * names.  families_add() refuses all of those, so that what one segment
 * declares can never make another VM's samples, or the exposition,
 * invalid.
 */
#ifndef KVMSTATS_EXPORTER_FAMILIES_H
#define KVMSTATS_EXPORTER_FAMILIES_H

#include <stddef.h>
#include <stdint.h>

#include "metric_map.h"

/* Families in all; a segment that would add more is refused. */
#define FAMILIES_MAX	16384

struct family {
	struct mm_family desc;
	/* The family's comment lines, made once: text format 0.0.4, OpenMetrics. */
	char *header_text, *header_om;
	size_t header_text_len, header_om_len;
	/*
	 * What starts each of its sample lines, up to the labels: "x_total{"
	 * or "x{" (SAMPLE_VALUE); a histogram's "x_bucket{", "x_count{",
	 * "x_sum{".  A scrape copies these, the VM's labels, and the value.
	 */
	char *open[4];
	uint8_t open_len[4];
};

enum { SAMPLE_VALUE, SAMPLE_BUCKET, SAMPLE_COUNT, SAMPLE_SUM };

/*
 * Bytes every piece of a sample line (open, labels, bucket closers) has
 * allocated after its end, so that a scrape may copy it in fixed 32-byte
 * steps (exposition.c, put()).
 */
#define PIECE_SLACK	32

struct families;

struct families *families_new(void);
void families_free(struct families *fs);

/*
 * families_add() - the id of family @desc with help text @help (taken
 * from the first stat that adds it), adding it if it is new.  Return:
 * the id (>= 0), -EEXIST if a sample name of @desc already belongs to a
 * different family, -ENOSPC at FAMILIES_MAX, -ENOMEM.
 */
int families_add(struct families *fs, const struct mm_family *desc, const char *help);

size_t families_count(const struct families *fs);
const struct family *families_get(const struct families *fs, unsigned id);

#endif /* KVMSTATS_EXPORTER_FAMILIES_H */
