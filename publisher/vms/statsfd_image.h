/* SPDX-License-Identifier: MIT */
/*
 * statsfd_image.h - build the bytes of a KVM binary stats file.
 *
 * The simulated VM uses it to lay its memfds out exactly as the kernel does;
 * the tests use it to make other layouts (blocks reordered, gaps, linear
 * histograms) and malformed files.
 */
#ifndef KVMSTATS_PUBLISHER_STATSFD_IMAGE_H
#define KVMSTATS_PUBLISHER_STATSFD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "kvmstats/types.h"

/* One descriptor as the kernel writes it; flags are KVM_STATS_{TYPE,UNIT,BASE}_*. */
struct ks_image_desc {
	const char *name;
	uint32_t flags;
	int16_t exponent;
	uint16_t size;
	uint32_t offset;		/* bytes into the data block */
	uint32_t bucket_size;
};

/*
 * struct ks_image_spec - the file to build.  Zero fields take the kernel's
 * choice: name_size 48; header, id, descriptors, data back to back in that
 * order; data size max(offset + 8 * size); file ends after the last block.
 */
struct ks_image_spec {
	const char *id;
	uint32_t name_size;
	uint32_t hdr_flags;
	uint32_t nr_desc;		/* as written in the header */
	const struct ks_image_desc *desc;	/* nr_desc entries */
	uint32_t id_offset;
	uint32_t desc_offset;
	uint32_t data_offset;
	uint32_t data_size;
	uint32_t file_size;
};

/*
 * ks_image_build() - the file's bytes in a malloc()ed buffer (data block
 * zeroed).  *@data_off gets the data block's offset.  Return: 0 or -errno.
 */
int ks_image_build(const struct ks_image_spec *spec, uint8_t **bufp, size_t *lenp,
		   uint32_t *data_off);

/*
 * ks_image_memfd() - the same bytes in a new sealed-size memfd named
 * @memfd_name.  Return: the fd, or a negative errno with @err filled.
 */
int ks_image_memfd(const struct ks_image_spec *spec, const char *memfd_name,
		   struct kvmstats_error *err);

#endif /* KVMSTATS_PUBLISHER_STATSFD_IMAGE_H */
