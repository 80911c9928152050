/* SPDX-License-Identifier: MIT */
/*
 * statsfd_source.h - a KVM stats fd as an engine source (provider "kvm").
 */
#ifndef KVMSTATS_PUBLISHER_STATSFD_SOURCE_H
#define KVMSTATS_PUBLISHER_STATSFD_SOURCE_H

#include <stdbool.h>

#include "engine.h"
#include "statsfd.h"

/*
 * ks_statsfd_block() - a block that reads @fd's data block with one pread()
 * per sweep.  Takes @schema (moved: *@schema is left empty) and, if
 * @own_fd, the fd (closed on release).  The block's stat defs point into
 * the source's context, which lives until the engine releases it.
 * Return: 0, or -ENOMEM with @err filled.
 */
int ks_statsfd_block(int fd, bool own_fd, struct ks_statsfd_schema *schema,
		     struct ks_block_def *out, struct kvmstats_error *err);

/* Release a block that was never handed to the engine. */
void ks_block_release(struct ks_block_def *b);

#endif /* KVMSTATS_PUBLISHER_STATSFD_SOURCE_H */
