// SPDX-License-Identifier: MIT
/*
 * fuzz_sched.c - libFuzzer harness: any bytes as the text of a thread's
 * /proc schedstat, stat and status files.
 *
 * A VMM names its threads (comm appears in stat and status) and a future
 * kernel may lay the files out otherwise, so the publisher's parsers
 * (publisher/sched/sched_parse.c) get every input here: each must stay
 * inside the buffer (ASan: the input is copied to a heap block of exactly
 * its size, with no terminator), and say why whenever it refuses.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	uint64_t ss[3], cpu, vol, invol;
	const char *why;
	int ret;

	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	why = NULL;
	ret = ks_sched_parse_schedstat(buf, size, ss, &why);
	if (ret != 0 && (ret != -EBADMSG || why == NULL))
		abort();
	why = NULL;
	ret = ks_sched_parse_stat_cpu(buf, size, &cpu, &why);
	if ((ret != 0 && (ret != -EBADMSG || why == NULL)) || (ret == 0 && cpu > UINT32_MAX))
		abort();
	why = NULL;
	ret = ks_sched_parse_status(buf, size, &vol, &invol, &why);
	if (ret != 0 && (ret != -EBADMSG || why == NULL))
		abort();
	free(buf);
	return 0;
}
