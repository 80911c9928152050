/* SPDX-License-Identifier: MIT */
/*
 * statsfd.c - parse and validate a KVM binary stats file.
 *
 * The file comes from the kernel, but the fd may come from anywhere (another
 * process over SCM_RIGHTS, a test, a fuzzer), so every byte is untrusted:
 * each count and offset is bounded before it sizes an allocation or a read,
 * and every refusal names the file and the exact fault.
 *
 * Checks: everything the kernel's own selftest checks
 * (kvm_binary_stats_test.c), plus that all blocks lie inside the file and
 * apart from each other and the header, that names are printable and
 * unique, and that no two stats share a value.  Descriptors whose type,
 * unit or base (or any other flag bit) is unknown are skipped, as QEMU does:
 * a newer kernel may add kinds of stats we cannot interpret, and that must
 * not cost the stats we can.
 *
 * Header flags: the kernel always writes 0, and no flag is defined.  A
 * nonzero value could only mean a format change this parser does not know,
 * so it is refused rather than misread.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "ks_abi.h"
#include "ks_err.h"
#include "ks_text.h"
#include "pread_exact.h"
#include "statsfd.h"

#define HDR_SIZE	((uint64_t)sizeof(struct kvm_stats_header))
#define DESC_SIZE	((uint64_t)sizeof(struct kvm_stats_desc))
#define KNOWN_FLAGS	(KVM_STATS_TYPE_MASK | KVM_STATS_UNIT_MASK | KVM_STATS_BASE_MASK)

_Static_assert(sizeof(struct kvm_stats_header) == 24, "kvm_stats_header is 24 bytes");
_Static_assert(sizeof(struct kvm_stats_desc) == 16, "kvm_stats_desc is 16 bytes before the name");
_Static_assert(KS_TYPE_LOG_HIST == KVM_STATS_TYPE_LOG_HIST >> KVM_STATS_TYPE_SHIFT,
	       "ks_stat_type numbers are KVM's");
_Static_assert(KS_UNIT_BOOLEAN == KVM_STATS_UNIT_BOOLEAN >> KVM_STATS_UNIT_SHIFT,
	       "ks_stat_unit numbers are KVM's");

/* A block of the file, [start, end). */
struct range {
	const char *name;
	uint64_t start;
	uint64_t end;
};

/* An accepted descriptor's values, for the overlap check. */
struct value_span {
	uint64_t start;
	uint64_t end;
	uint32_t file_idx;
	const char *name;
};

/* Any descriptor's name, for the duplicate check. */
struct name_ent {
	const char *name;
	uint32_t file_idx;
};

struct parse_ctx {
	int fd;
	const char *what;
	struct kvmstats_error *err;
	struct kvm_stats_header hdr;
	uint64_t stride;		/* bytes from one descriptor to the next */
	bool have_size;			/* file_size is the real size (regular file, memfd) */
	uint64_t file_size;
	struct range id, desc, data;
	uint32_t *acc_idx;		/* file index of each accepted descriptor */
	uint32_t *skip_idx;		/* file index of each skipped descriptor */
	struct ks_statsfd_schema *s;
};

/* ---- reading ------------------------------------------------------------ */

/*
 * pread() until @len bytes or end of file.  The kernel serves any range in
 * one call, but a regular file may return less, so loop; each pass either
 * makes progress or stops, so this cannot spin.
 */
static ssize_t
pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int
read_block(struct parse_ctx *c, void *buf, size_t len, uint64_t off, const char *block)
{
	ssize_t n = pread_full(c->fd, buf, len, off);

	if (n < 0)
		return ks_err(c->err, -EIO, "%s: reading the %s (%zu bytes at offset %llu): %s",
			      c->what, block, len, (unsigned long long)off, strerror((int)-n));
	if ((size_t)n != len)
		return ks_err(c->err, -EIO,
			      "%s: short read of the %s: %zd of %zu bytes at offset %llu (file too short)",
			      c->what, block, n, len, (unsigned long long)off);
	return 0;
}

/* ---- header and block layout --------------------------------------------- */

static int
check_header(struct parse_ctx *c)
{
	const struct kvm_stats_header *h = &c->hdr;

	if (h->flags != 0)
		return ks_err(c->err, -EBADMSG,
			      "%s: header flags are 0x%x, expected 0 (unknown format extension)",
			      c->what, h->flags);
	if (h->name_size == 0)
		return ks_err(c->err, -EBADMSG, "%s: header name_size is 0", c->what);
	if (h->name_size > KS_STATSFD_MAX_NAME_SIZE)
		return ks_err(c->err, -E2BIG, "%s: header name_size %u is over the limit of %u",
			      c->what, h->name_size, KS_STATSFD_MAX_NAME_SIZE);
	if (h->num_desc == 0)
		return ks_err(c->err, -EBADMSG, "%s: num_desc is 0: no stats defined", c->what);
	if (h->num_desc > KS_STATSFD_MAX_DESC)
		return ks_err(c->err, -E2BIG, "%s: header num_desc %u is over the limit of %u",
			      c->what, h->num_desc, KS_STATSFD_MAX_DESC);
	if (h->id_offset % 8 || h->desc_offset % 8 || h->data_offset % 8)
		return ks_err(c->err, -EBADMSG,
			      "%s: block offsets must be multiples of 8: id_offset %u, desc_offset %u, data_offset %u",
			      c->what, h->id_offset, h->desc_offset, h->data_offset);
	return 0;
}

static bool
ranges_overlap(const struct range *a, const struct range *b)
{
	return a->start < b->end && b->start < a->end;
}

static int
check_apart(struct parse_ctx *c, const struct range *a, const struct range *b)
{
	if (!ranges_overlap(a, b))
		return 0;
	return ks_err(c->err, -EBADMSG, "%s: %s [%llu, %llu) overlaps the %s [%llu, %llu)",
		      c->what, a->name, (unsigned long long)a->start,
		      (unsigned long long)a->end, b->name,
		      (unsigned long long)b->start, (unsigned long long)b->end);
}

/* A regular file tells its size; a KVM anon-inode fd does not and is checked by reading. */
static int
check_in_file(struct parse_ctx *c, const struct range *r)
{
	if (!c->have_size || r->end <= c->file_size)
		return 0;
	return ks_err(c->err, -EIO, "%s: %s [%llu, %llu) extends past the end of the file (%llu bytes)",
		      c->what, r->name, (unsigned long long)r->start,
		      (unsigned long long)r->end, (unsigned long long)c->file_size);
}

static int
check_id_desc_layout(struct parse_ctx *c)
{
	static const struct range header = { "header", 0, HDR_SIZE };
	int rc;

	c->stride = DESC_SIZE + c->hdr.name_size;
	c->id = (struct range){ "id string", c->hdr.id_offset,
				(uint64_t)c->hdr.id_offset + c->hdr.name_size };
	c->desc = (struct range){ "descriptor block", c->hdr.desc_offset,
				  c->hdr.desc_offset + c->stride * c->hdr.num_desc };
	rc = check_apart(c, &c->id, &header);
	if (rc == 0)
		rc = check_apart(c, &c->desc, &header);
	if (rc == 0)
		rc = check_apart(c, &c->desc, &c->id);
	if (rc == 0)
		rc = check_in_file(c, &c->id);
	if (rc == 0)
		rc = check_in_file(c, &c->desc);
	return rc;
}

/* The data block's extent is known only after the descriptors. */
static int
check_data_layout(struct parse_ctx *c)
{
	static const struct range header = { "header", 0, HDR_SIZE };
	int rc;

	c->data = (struct range){ "data block", c->hdr.data_offset,
				  (uint64_t)c->hdr.data_offset + c->s->data_size };
	if (c->s->data_size == 0)
		return 0;
	rc = check_apart(c, &c->data, &header);
	if (rc == 0)
		rc = check_apart(c, &c->data, &c->id);
	if (rc == 0)
		rc = check_apart(c, &c->data, &c->desc);
	if (rc == 0)
		rc = check_in_file(c, &c->data);
	return rc;
}

/* The selftest's bulk read: the whole data block must be readable now. */
static int
check_data_readable(struct parse_ctx *c)
{
	void *buf;
	int rc;

	if (c->s->data_size == 0)
		return 0;
	buf = malloc(c->s->data_size);
	if (buf == NULL)
		return ks_err(c->err, -ENOMEM, "%s: out of memory", c->what);
	rc = read_block(c, buf, c->s->data_size, c->data.start, "data block");
	free(buf);
	return rc;
}

/* ---- strings ----------------------------------------------------------- */

/*
 * A name field: NUL within @size, non-empty, printable ASCII (names end up
 * in messages, JSON and terminals).  Return: NULL if fine, else the fault.
 */
static const char *
name_fault(const char *raw, uint32_t size, char *why, size_t why_len)
{
	const char *nul = memchr(raw, '\0', size);
	const char *p;

	if (nul == NULL) {
		snprintf(why, why_len, "is not NUL-terminated within name_size %u", size);
		return why;
	}
	if (nul == raw)
		return "is empty";
	for (p = raw; p < nul; p++) {
		if (*p <= ' ' || *p > '~') {
			snprintf(why, why_len, "has non-printable byte 0x%02x at %td",
				 (unsigned char)*p, p - raw);
			return why;
		}
	}
	return NULL;
}

static int
read_id(struct parse_ctx *c)
{
	char *raw, why[96];
	const char *fault;
	int rc;

	raw = malloc(c->hdr.name_size);
	if (raw == NULL)
		return ks_err(c->err, -ENOMEM, "%s: out of memory", c->what);
	rc = read_block(c, raw, c->hdr.name_size, c->id.start, "id string");
	if (rc < 0)
		goto out;
	fault = name_fault(raw, c->hdr.name_size, why, sizeof(why));
	if (fault != NULL) {
		rc = ks_err(c->err, -EBADMSG, "%s: id string %s", c->what, fault);
		goto out;
	}
	if (strncmp(raw, "kvm", 3) != 0) {
		rc = ks_err(c->err, -EBADMSG, "%s: id string \"%s\" does not start with \"kvm\"",
			    c->what, raw);
		goto out;
	}
	c->s->id = strdup(raw);
	if (c->s->id == NULL)
		rc = ks_err(c->err, -ENOMEM, "%s: out of memory", c->what);
out:
	free(raw);
	return rc;
}

/* ---- descriptors -------------------------------------------------------- */

static const char *
type_name(unsigned type)
{
	static const char *const names[] = {
		"cumulative", "instant", "peak", "linear histogram", "log histogram",
	};

	return type <= KS_TYPE_MAX ? names[type] : "unknown";
}

static const char *
unit_name(unsigned unit)
{
	static const char *const names[] = {
		"none", "bytes", "seconds", "cycles", "boolean",
	};

	return unit <= KS_UNIT_MAX ? names[unit] : "unknown";
}

static bool
flags_known(uint32_t flags)
{
	return (flags & ~(uint32_t)KNOWN_FLAGS) == 0 &&
	       (flags & KVM_STATS_TYPE_MASK) <= KVM_STATS_TYPE_MAX &&
	       (flags & KVM_STATS_UNIT_MASK) <= KVM_STATS_UNIT_MAX &&
	       (flags & KVM_STATS_BASE_MASK) <= KVM_STATS_BASE_MAX;
}

/* The exponent's sign must fit the unit (api.rst, selftest). */
static const char *
exponent_fault(const struct ks_kvm_desc *d)
{
	switch (d->unit) {
	case KS_UNIT_SECONDS:
		return d->exponent > 0 ? "is positive; seconds are scaled down only" : NULL;
	case KS_UNIT_BOOLEAN:
		return d->exponent != 0 ? "is not 0 for a boolean" : NULL;
	default:
		return d->exponent < 0 ? "is negative; this unit is scaled up only" : NULL;
	}
}

/* Type-specific rules on size and bucket_size. */
static const char *
shape_fault(const struct ks_kvm_desc *d, char *why, size_t why_len)
{
	bool hist = d->type == KS_TYPE_LINEAR_HIST || d->type == KS_TYPE_LOG_HIST;

	if (d->size == 0)
		return "size is 0";
	if (!hist && d->size != 1) {
		snprintf(why, why_len, "size is %u, but %s stats have one value",
			 d->size, type_name(d->type));
		return why;
	}
	if (d->type == KS_TYPE_LINEAR_HIST && d->bucket_size == 0)
		return "bucket_size is 0 on a linear histogram";
	if (d->type != KS_TYPE_LINEAR_HIST && d->bucket_size != 0) {
		snprintf(why, why_len, "bucket_size is %u on a %s stat (linear histograms only)",
			 d->bucket_size, type_name(d->type));
		return why;
	}
	if (d->unit == KS_UNIT_BOOLEAN && d->type == KS_TYPE_LOG_HIST)
		return "a boolean cannot be a log histogram";
	if (d->unit == KS_UNIT_BOOLEAN && d->type == KS_TYPE_LINEAR_HIST && d->size != 2) {
		snprintf(why, why_len, "a boolean linear histogram has %u buckets, not 2", d->size);
		return why;
	}
	return NULL;
}

static int
check_desc(struct parse_ctx *c, uint32_t i, const struct ks_kvm_desc *d)
{
	uint64_t end = d->offset + (uint64_t)d->size * 8;
	const char *fault;
	char why[128];

	fault = shape_fault(d, why, sizeof(why));
	if (fault != NULL)
		return ks_err(c->err, -EBADMSG, "%s: descriptor %u (\"%s\"): %s",
			      c->what, i, d->name, fault);
	fault = exponent_fault(d);
	if (fault != NULL)
		return ks_err(c->err, -EBADMSG, "%s: descriptor %u (\"%s\"): exponent %d %s (unit %s)",
			      c->what, i, d->name, d->exponent, fault, unit_name(d->unit));
	if (d->offset % 8)
		return ks_err(c->err, -EBADMSG,
			      "%s: descriptor %u (\"%s\"): value offset %u is not a multiple of 8",
			      c->what, i, d->name, d->offset);
	if (end > KS_STATSFD_MAX_DATA)
		return ks_err(c->err, -E2BIG,
			      "%s: descriptor %u (\"%s\"): values end at byte %llu of the data block, over the limit of %u",
			      c->what, i, d->name, (unsigned long long)end, KS_STATSFD_MAX_DATA);
	return 0;
}

static void
decode_desc(const struct kvm_stats_desc *kd, struct ks_kvm_desc *d)
{
	d->type = (kd->flags & KVM_STATS_TYPE_MASK) >> KVM_STATS_TYPE_SHIFT;
	d->unit = (kd->flags & KVM_STATS_UNIT_MASK) >> KVM_STATS_UNIT_SHIFT;
	d->base = (kd->flags & KVM_STATS_BASE_MASK) == KVM_STATS_BASE_POW2 ?
		  KS_BASE_POW2 : KS_BASE_POW10;
	d->exponent = kd->exponent;
	d->size = kd->size;
	d->offset = kd->offset;
	d->bucket_size = kd->bucket_size;
}

/* One descriptor at @raw (stride bytes, copied out: the buffer may be unaligned). */
static int
parse_one(struct parse_ctx *c, uint32_t i, const uint8_t *raw)
{
	struct ks_statsfd_schema *s = c->s;
	const char *fault;
	struct kvm_stats_desc kd;
	struct ks_kvm_desc d;
	char why[96], *name;
	uint64_t end;
	int rc;

	memcpy(&kd, raw, sizeof(kd));
	fault = name_fault((const char *)raw + DESC_SIZE, c->hdr.name_size, why, sizeof(why));
	if (fault != NULL)
		return ks_err(c->err, -EBADMSG, "%s: descriptor %u: name %s", c->what, i, fault);
	name = strdup((const char *)raw + DESC_SIZE);
	if (name == NULL)
		return ks_err(c->err, -ENOMEM, "%s: out of memory", c->what);

	if (!flags_known(kd.flags)) {
		s->skipped[s->nr_skipped] = (struct ks_kvm_skip){ name, kd.flags };
		c->skip_idx[s->nr_skipped++] = i;
		return 0;
	}
	decode_desc(&kd, &d);
	d.name = name;
	rc = check_desc(c, i, &d);
	if (rc < 0) {
		free(name);
		return rc;
	}
	end = d.offset + (uint64_t)d.size * 8;
	if (end > s->data_size)
		s->data_size = (uint32_t)end;
	s->desc[s->nr_desc] = d;
	c->acc_idx[s->nr_desc++] = i;
	return 0;
}

static int
parse_descs(struct parse_ctx *c)
{
	uint32_t n = c->hdr.num_desc, i;
	uint8_t *buf;
	int rc;

	/* Bounded: num_desc <= 4096 and stride <= 16 + 1024 bytes. */
	buf = malloc(c->stride * n);
	c->s->desc = calloc(n, sizeof(*c->s->desc));
	c->s->skipped = calloc(n, sizeof(*c->s->skipped));
	c->acc_idx = calloc(n, sizeof(*c->acc_idx));
	c->skip_idx = calloc(n, sizeof(*c->skip_idx));
	if (buf == NULL || c->s->desc == NULL || c->s->skipped == NULL ||
	    c->acc_idx == NULL || c->skip_idx == NULL) {
		rc = ks_err(c->err, -ENOMEM, "%s: out of memory for %u descriptors", c->what, n);
		goto out;
	}
	rc = read_block(c, buf, c->stride * n, c->desc.start, "descriptor block");
	for (i = 0; rc == 0 && i < n; i++)
		rc = parse_one(c, i, buf + c->stride * i);
out:
	free(buf);
	return rc;
}

/* ---- cross-descriptor checks -------------------------------------------- */

static int
cmp_span(const void *a, const void *b)
{
	const struct value_span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->file_idx < y->file_idx ? -1 : x->file_idx > y->file_idx;
}

/* Two stats sharing a value would publish one counter under two meanings. */
static int
check_value_overlap(struct parse_ctx *c)
{
	const struct ks_statsfd_schema *s = c->s;
	struct value_span *v, *a, *b;
	uint32_t i;
	int rc = 0;

	if (s->nr_desc < 2)
		return 0;
	v = calloc(s->nr_desc, sizeof(*v));
	if (v == NULL)
		return ks_err(c->err, -ENOMEM, "%s: out of memory", c->what);
	for (i = 0; i < s->nr_desc; i++)
		v[i] = (struct value_span){ s->desc[i].offset,
					    s->desc[i].offset + (uint64_t)s->desc[i].size * 8,
					    c->acc_idx[i], s->desc[i].name };
	qsort(v, s->nr_desc, sizeof(*v), cmp_span);
	for (i = 1; i < s->nr_desc && rc == 0; i++) {
		a = &v[i - 1];
		b = &v[i];
		if (a->end > b->start)
			rc = ks_err(c->err, -EBADMSG,
				    "%s: descriptor %u (\"%s\") values [%llu, %llu) overlap descriptor %u (\"%s\") values [%llu, %llu)",
				    c->what, a->file_idx, a->name,
				    (unsigned long long)a->start, (unsigned long long)a->end,
				    b->file_idx, b->name, (unsigned long long)b->start,
				    (unsigned long long)b->end);
	}
	free(v);
	return rc;
}

static int
cmp_name(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r != 0)
		return r;
	return x->file_idx < y->file_idx ? -1 : x->file_idx > y->file_idx;
}

static int
check_duplicates(struct parse_ctx *c)
{
	const struct ks_statsfd_schema *s = c->s;
	uint32_t n = s->nr_desc + s->nr_skipped, i, k = 0;
	struct name_ent *e;
	int rc = 0;

	e = calloc(n, sizeof(*e));
	if (e == NULL)
		return ks_err(c->err, -ENOMEM, "%s: out of memory", c->what);
	for (i = 0; i < s->nr_desc; i++)
		e[k++] = (struct name_ent){ s->desc[i].name, c->acc_idx[i] };
	for (i = 0; i < s->nr_skipped; i++)
		e[k++] = (struct name_ent){ s->skipped[i].name, c->skip_idx[i] };
	qsort(e, n, sizeof(*e), cmp_name);
	for (i = 1; i < n && rc == 0; i++)
		if (strcmp(e[i - 1].name, e[i].name) == 0)
			rc = ks_err(c->err, -EBADMSG,
				    "%s: descriptors %u and %u have the same name \"%s\"",
				    c->what, e[i - 1].file_idx, e[i].file_idx, e[i].name);
	free(e);
	return rc;
}

/* ---- entry points --------------------------------------------------------- */

static int
parse(struct parse_ctx *c)
{
	struct stat st;
	int rc;

	rc = read_block(c, &c->hdr, sizeof(c->hdr), 0, "header");
	if (rc < 0)
		return rc;
	/*
	 * Size 0 means unknown (procfs-like files); the header just read
	 * proves the file is not empty.
	 */
	if (fstat(c->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		c->have_size = true;
		c->file_size = (uint64_t)st.st_size;
	}
	rc = check_header(c);
	if (rc == 0)
		rc = check_id_desc_layout(c);
	if (rc == 0)
		rc = read_id(c);
	if (rc == 0)
		rc = parse_descs(c);
	if (rc == 0)
		rc = check_data_layout(c);
	if (rc == 0)
		rc = check_data_readable(c);
	if (rc == 0)
		rc = check_value_overlap(c);
	if (rc == 0)
		rc = check_duplicates(c);
	return rc;
}

int
ks_statsfd_parse(int fd, const char *what, struct ks_statsfd_schema *out,
		 struct kvmstats_error *err)
{
	struct parse_ctx c;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.what = what != NULL ? what : "stats fd";
	c.err = err;
	c.s = out;
	rc = parse(&c);
	free(c.acc_idx);
	free(c.skip_idx);
	if (rc < 0) {
		ks_statsfd_schema_clear(out);
		return rc;
	}
	out->name_size = c.hdr.name_size;
	out->data_offset = c.hdr.data_offset;
	ks_err_clear(err);
	return 0;
}

static const char link_vm_stats[] = "anon_inode:kvm-vm-stats";
static const char link_vcpu_stats[] = "anon_inode:kvm-vcpu-stats:";

bool
ks_statsfd_link_parse(const char *link, enum ks_target_kind *kind, uint32_t *vcpu)
{
	size_t len = sizeof(link_vcpu_stats) - 1;
	unsigned long id;
	char *end;

	if (strcmp(link, link_vm_stats) == 0) {
		*kind = KS_TARGET_VM;
		*vcpu = KS_VCPU_INDEX_NONE;
		return true;
	}
	if (strncmp(link, link_vcpu_stats, len) != 0 || link[len] < '0' || link[len] > '9')
		return false;
	errno = 0;
	id = strtoul(link + len, &end, 10);
	if (errno != 0 || *end != '\0' || id >= KS_VCPU_INDEX_NONE)
		return false;
	*kind = KS_TARGET_VCPU;
	*vcpu = (uint32_t)id;
	return true;
}

void
ks_statsfd_link_name(enum ks_target_kind kind, uint32_t vcpu, char *buf, size_t len)
{
	if (kind == KS_TARGET_VM)
		snprintf(buf, len, "%s", link_vm_stats);
	else
		snprintf(buf, len, "%s%u", link_vcpu_stats, vcpu);
}

static const char *
file_kind(const struct stat *st)
{
	switch (st->st_mode & S_IFMT) {
	case S_IFIFO: return "a pipe";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFDIR: return "a directory";
	case S_IFREG: return "a regular file";
	default: return "a special file";
	}
}

/* An anonymous inode: only KVM's stats fds are read. */
static int
check_anon(int fd, const char *what, struct kvmstats_error *err)
{
	char path[64], link[128], esc[256];
	enum ks_target_kind kind;
	uint32_t vcpu;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return ks_err(err, -EBADMSG, "%s: an anonymous inode that cannot be told from "
			      "its name (%s: %s; is /proc mounted?)", what, path, strerror(errno));
	link[n] = '\0';
	if (ks_statsfd_link_parse(link, &kind, &vcpu))
		return 0;
	return ks_err(err, -EBADMSG, "%s: is %s, not a KVM stats fd: only those and files in "
		      "memory (tmpfs, memfd) are read", what,
		      ks_text_escape(esc, sizeof(esc), link));
}

int
ks_statsfd_check_fd(int fd, const char *what, struct kvmstats_error *err)
{
	struct statfs fs;
	struct stat st;

	if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0)
		return ks_err(err, -EBADMSG, "%s: cannot be examined: %s", what, strerror(errno));
	if (fs.f_type == ANON_INODE_FS_MAGIC)
		return check_anon(fd, what, err);
	if (S_ISREG(st.st_mode) && (fs.f_type == TMPFS_MAGIC || fs.f_type == HUGETLBFS_MAGIC))
		return 0;
	return ks_err(err, -EBADMSG, "%s: is %s on a filesystem of type %#lx, which a read "
		      "could wait on: only KVM stats fds and files in memory (tmpfs, memfd) "
		      "are read", what, file_kind(&st), (unsigned long)fs.f_type);
}

void
ks_statsfd_schema_clear(struct ks_statsfd_schema *s)
{
	uint32_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nr_desc && s->desc != NULL; i++)
		free(s->desc[i].name);
	for (i = 0; i < s->nr_skipped && s->skipped != NULL; i++)
		free(s->skipped[i].name);
	free(s->desc);
	free(s->skipped);
	free(s->id);
	memset(s, 0, sizeof(*s));
}

static bool
same_desc(const struct ks_kvm_desc *a, const struct ks_kvm_desc *b)
{
	return strcmp(a->name, b->name) == 0 && a->type == b->type &&
	       a->unit == b->unit && a->base == b->base &&
	       a->exponent == b->exponent && a->size == b->size &&
	       a->offset == b->offset && a->bucket_size == b->bucket_size;
}

bool
ks_statsfd_same_layout(const struct ks_statsfd_schema *a,
		       const struct ks_statsfd_schema *b)
{
	uint32_t i;

	if (a->nr_desc != b->nr_desc || a->nr_skipped != b->nr_skipped ||
	    a->data_offset != b->data_offset || a->data_size != b->data_size)
		return false;
	for (i = 0; i < a->nr_desc; i++)
		if (!same_desc(&a->desc[i], &b->desc[i]))
			return false;
	for (i = 0; i < a->nr_skipped; i++)
		if (a->skipped[i].flags != b->skipped[i].flags ||
		    strcmp(a->skipped[i].name, b->skipped[i].name) != 0)
			return false;
	return true;
}

int
ks_statsfd_read_data(int fd, const struct ks_statsfd_schema *s, void *dst)
{
	return ks_pread_exact(fd, dst, s->data_size, s->data_offset);
}
