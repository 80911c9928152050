// SPDX-License-Identifier: MIT
/*
 * fuzz_statsfd.c - libFuzzer harness: any bytes as a KVM binary stats file.
 *
 * The publisher parses stats fds it did not make (--attach, the intake
 * socket, the preload shim), so the bytes are written to a memfd, which
 * ks_statsfd_parse() reads with pread() as it would a real stats fd; a
 * file that parses is then sampled once with ks_statsfd_read_data(), which
 * must stay inside the data_size bytes the parser promised.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "statsfd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One memfd for the whole run: a new one per input would cost more than the parse. */
static int memfd = -1;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_statsfd_schema s;
	struct kvmstats_error err;
	size_t done = 0;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-statsfd", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
	}
	if (ftruncate(memfd, 0) < 0)
		abort();
	while (done < size) {
		ssize_t n = pwrite(memfd, data + done, size - done, (off_t)done);

		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	if (ks_statsfd_parse(memfd, "fuzz stats fd", &s, &err) < 0)
		return 0;
	/* Exactly data_size bytes: ASan catches a read_data that writes past it. */
	if (s.data_size > 0) {
		void *dst = malloc(s.data_size);

		if (dst == NULL)
			abort();
		(void)ks_statsfd_read_data(memfd, &s, dst);
		free(dst);
	}
	/* Every accepted name is a C string the schema owns. */
	for (uint32_t i = 0; i < s.nr_desc; i++)
		if (s.desc[i].name == NULL || s.desc[i].offset % 8 != 0 ||
		    (uint64_t)s.desc[i].offset + 8ull * s.desc[i].size > s.data_size)
			abort();
	ks_statsfd_schema_clear(&s);
	return 0;
}
