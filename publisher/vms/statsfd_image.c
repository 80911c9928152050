/* SPDX-License-Identifier: MIT */
/*
 * statsfd_image.c - build the bytes of a KVM binary stats file.
 *
 * The builder writes exactly what the spec says, including nonsense (blocks
 * that overlap, names without a NUL, a header that lies about num_desc),
 * because the tests need malformed files.  Its only rule is its own buffer:
 * every write is clipped to the file size, so a spec can describe a file
 * that is shorter than its blocks without the builder overrunning anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ks_err.h"
#include "statsfd_image.h"

#define KS_IMAGE_DEFAULT_NAME_SIZE	48
/* Far above any real stats file; keeps a silly spec from allocating gigabytes. */
#define KS_IMAGE_MAX_FILE		(64u << 20)

_Static_assert(sizeof(struct kvm_stats_header) == 24, "kvm_stats_header is 24 bytes");
_Static_assert(sizeof(struct kvm_stats_desc) == 16, "kvm_stats_desc is 16 bytes before the name");

/* The resolved layout: the spec with the kernel's choices filled in. */
struct image_layout {
	uint32_t name_size;
	uint64_t stride;
	uint64_t id_off;
	uint64_t desc_off;
	uint64_t data_off;
	uint64_t data_size;
	uint64_t file_size;
};

static uint64_t
align8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

static uint64_t
max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* The kernel's data block length: the end of the furthest value. */
static uint64_t
default_data_size(const struct ks_image_spec *spec)
{
	uint64_t end = 0;
	uint32_t i;

	for (i = 0; i < spec->nr_desc; i++)
		end = max_u64(end, (uint64_t)spec->desc[i].offset +
				   (uint64_t)spec->desc[i].size * 8);
	return end;
}

static void
resolve_layout(const struct ks_image_spec *spec, struct image_layout *l)
{
	uint64_t end;

	l->name_size = spec->name_size ? spec->name_size : KS_IMAGE_DEFAULT_NAME_SIZE;
	l->stride = sizeof(struct kvm_stats_desc) + (uint64_t)l->name_size;
	/* Each unset offset follows the block before it, as the kernel lays them out. */
	l->id_off = spec->id_offset ? spec->id_offset : sizeof(struct kvm_stats_header);
	l->desc_off = spec->desc_offset ? spec->desc_offset :
		      align8(l->id_off + l->name_size);
	l->data_off = spec->data_offset ? spec->data_offset :
		      align8(l->desc_off + l->stride * spec->nr_desc);
	l->data_size = spec->data_size ? spec->data_size : default_data_size(spec);

	end = sizeof(struct kvm_stats_header);
	end = max_u64(end, l->id_off + l->name_size);
	end = max_u64(end, l->desc_off + l->stride * spec->nr_desc);
	end = max_u64(end, l->data_off + l->data_size);
	l->file_size = spec->file_size ? spec->file_size : end;
}

/* Copy @len bytes to @off, dropping whatever falls outside the file. */
static void
put(uint8_t *buf, uint64_t file_size, uint64_t off, const void *src, uint64_t len)
{
	if (off >= file_size)
		return;
	if (len > file_size - off)
		len = file_size - off;
	memcpy(buf + off, src, len);
}

/* A name field: the string's bytes, at most @name_size of them, zero padded. */
static void
put_name(uint8_t *buf, uint64_t file_size, uint64_t off, const char *name,
	 uint32_t name_size)
{
	size_t len;

	if (name == NULL)
		return;		/* the buffer is already zero */
	len = strlen(name);
	if (len > name_size)
		len = name_size;
	put(buf, file_size, off, name, len);
}

static void
put_desc(uint8_t *buf, const struct image_layout *l, uint64_t off,
	 const struct ks_image_desc *d)
{
	struct kvm_stats_desc kd;

	memset(&kd, 0, sizeof(kd));
	kd.flags = d->flags;
	kd.exponent = d->exponent;
	kd.size = d->size;
	kd.offset = d->offset;
	kd.bucket_size = d->bucket_size;
	put(buf, l->file_size, off, &kd, sizeof(kd));
	put_name(buf, l->file_size, off + sizeof(kd), d->name, l->name_size);
}

int
ks_image_build(const struct ks_image_spec *spec, uint8_t **bufp, size_t *lenp,
	       uint32_t *data_off)
{
	struct kvm_stats_header hdr;
	struct image_layout l;
	uint8_t *buf;
	uint32_t i;

	if (spec == NULL || bufp == NULL || lenp == NULL ||
	    (spec->nr_desc && spec->desc == NULL))
		return -EINVAL;
	resolve_layout(spec, &l);
	if (l.file_size > KS_IMAGE_MAX_FILE || l.data_off > UINT32_MAX ||
	    l.desc_off > UINT32_MAX)
		return -EFBIG;
	/* calloc(0) may return NULL; a one-byte buffer keeps "empty file" simple. */
	buf = calloc(1, l.file_size ? l.file_size : 1);
	if (buf == NULL)
		return -ENOMEM;

	hdr.flags = spec->hdr_flags;
	hdr.name_size = l.name_size;
	hdr.num_desc = spec->nr_desc;
	hdr.id_offset = (uint32_t)l.id_off;
	hdr.desc_offset = (uint32_t)l.desc_off;
	hdr.data_offset = (uint32_t)l.data_off;
	put(buf, l.file_size, 0, &hdr, sizeof(hdr));
	put_name(buf, l.file_size, l.id_off, spec->id, l.name_size);
	for (i = 0; i < spec->nr_desc; i++)
		put_desc(buf, &l, l.desc_off + l.stride * i, &spec->desc[i]);

	*bufp = buf;
	*lenp = l.file_size;
	if (data_off != NULL)
		*data_off = (uint32_t)l.data_off;
	return 0;
}

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int
ks_image_memfd(const struct ks_image_spec *spec, const char *memfd_name,
	       struct kvmstats_error *err)
{
	uint8_t *buf;
	size_t len;
	int fd, rc;

	rc = ks_image_build(spec, &buf, &len, NULL);
	if (rc < 0)
		return ks_err(err, rc, "stats image \"%s\": cannot build: %s",
			      memfd_name, strerror(-rc));
	fd = memfd_create(memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		rc = -errno;
		free(buf);
		return ks_err(err, rc, "stats image \"%s\": memfd_create: %s",
			      memfd_name, strerror(-rc));
	}
	rc = write_all(fd, buf, len);
	free(buf);
	if (rc < 0) {
		close(fd);
		return ks_err(err, rc, "stats image \"%s\": write: %s",
			      memfd_name, strerror(-rc));
	}
	/*
	 * Like the kernel's file, the size never changes; the data stays
	 * writable (no F_SEAL_WRITE) so the simulator can update values.
	 */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		close(fd);
		return ks_err(err, rc, "stats image \"%s\": sealing: %s",
			      memfd_name, strerror(-rc));
	}
	return fd;
}
