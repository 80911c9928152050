/* SPDX-License-Identifier: MIT */
/*
 * statsfd_source.c - a KVM stats fd as an engine source.
 *
 * The block is the fd's whole data block, holes included, so one pread()
 * per sweep lands it in the slot and every stat's value_index is simply its
 * descriptor offset / 8.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks_err.h"
#include "statsfd_source.h"

struct statsfd_ctx {
	int fd;
	bool own_fd;
	struct ks_statsfd_schema schema;
	struct ks_seg_stat_def *stats;
};

static int
statsfd_read(void *ctx, _Atomic uint64_t *dst, uint32_t words, uint64_t sweep)
{
	struct statsfd_ctx *c = ctx;

	(void)sweep;
	if ((uint64_t)words * sizeof(uint64_t) < c->schema.data_size)
		return -EINVAL;
	/*
	 * Straight into the open slot: the kernel's stores complete before
	 * pread() returns, and ks_slot_write_end()'s release store orders
	 * them for readers (see ks_seqlock.h).
	 */
	return ks_statsfd_read_data(c->fd, &c->schema, (void *)dst);
}

/* The same read as statsfd_read(), for the engine to issue itself. */
static bool
statsfd_pread_range(void *ctx, struct ks_pread_range *out)
{
	struct statsfd_ctx *c = ctx;

	*out = (struct ks_pread_range) {
		.fd = c->fd, .len = c->schema.data_size, .offset = c->schema.data_offset,
	};
	return true;
}

static void
statsfd_release(void *ctx)
{
	struct statsfd_ctx *c = ctx;

	if (c == NULL)
		return;
	if (c->own_fd && c->fd >= 0)
		close(c->fd);
	ks_statsfd_schema_clear(&c->schema);
	free(c->stats);
	free(c);
}

static const struct ks_source_ops statsfd_ops = {
	.read = statsfd_read,
	.release = statsfd_release,
	.pread_range = statsfd_pread_range,
};

int
ks_statsfd_block(int fd, bool own_fd, struct ks_statsfd_schema *schema,
		 struct ks_block_def *out, struct kvmstats_error *err)
{
	struct statsfd_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return ks_err(err, -ENOMEM, "out of memory for a stats fd source");
	c->stats = calloc(schema->nr_desc ? schema->nr_desc : 1, sizeof(*c->stats));
	if (c->stats == NULL) {
		free(c);
		return ks_err(err, -ENOMEM, "out of memory for a stats fd source");
	}
	c->fd = fd;
	c->own_fd = own_fd;
	c->schema = *schema;
	memset(schema, 0, sizeof(*schema));

	for (uint32_t i = 0; i < c->schema.nr_desc; i++) {
		const struct ks_kvm_desc *d = &c->schema.desc[i];

		c->stats[i] = (struct ks_seg_stat_def) {
			.name = d->name,
			.type = d->type,
			.unit = d->unit,
			.base = d->base,
			.exponent = d->exponent,
			.size = d->size,
			.bucket_size = d->bucket_size,
			.value_index = d->offset / sizeof(uint64_t),
		};
	}
	*out = (struct ks_block_def) {
		.provider = "kvm",
		.nr_stats = c->schema.nr_desc,
		.stats = c->stats,
		.words = c->schema.data_size / sizeof(uint64_t),
		.ops = &statsfd_ops,
		.ctx = c,
	};
	return 0;
}

void
ks_block_release(struct ks_block_def *b)
{
	if (b->ops != NULL && b->ops->release != NULL)
		b->ops->release(b->ctx);
	b->ops = NULL;
	b->ctx = NULL;
}
