// SPDX-License-Identifier: MIT
/*
 * fuzz_exporter.c - libFuzzer harness: any bytes as a segment, scraped by
 * kvmstats-exporter.
 *
 * What a hostile segment declares becomes metric names, label values,
 * bucket edges and HELP text in an exposition that other VMs' series
 * share.  The bytes go to a file in a private directory; the harness
 * holds the file's liveness lock and stamps its heartbeat now, so that a
 * segment that validates is live and its values are formatted too.  Then
 * four scrapes (text and OpenMetrics, per-VM and per-vCPU), each checked:
 * nothing but printable text and newlines, every line complete, every
 * sample line starting with a metric name, OpenMetrics ending in "# EOF".
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exporter_log.h"
#include "ks_liveness.h"
#include "ks_time.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEARTBEAT_OFF	200	/* struct ks_shm_header: heartbeat_ns */

static char dir[] = "/tmp/kvmstats-fuzz-exporter-XXXXXX";
static char path[sizeof(dir) + 32];

static void
quiet(const char *line)
{
	(void)line;
}

static void
check(const char *out, size_t len, enum expo_format fmt)
{
	bool line_start = true;

	if (len == 0 || out[len - 1] != '\n')
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 && c != '\n')
			abort();
		if (c == 0x7f)
			abort();
		if (line_start && c != '#' && !(c >= 'a' && c <= 'z') && c != '_')
			abort();
		line_start = c == '\n';
	}
	if (fmt == EXPO_OPENMETRICS && (len < 6 || memcmp(out + len - 6, "# EOF\n", 6) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	uint8_t *copy;
	int fd;

	if (!ready) {
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(path, sizeof(path), "%s/kvmstats.fuzz", dir);
		ex_log_redirect(quiet);
		ready = true;
	}
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	if (size >= HEARTBEAT_OFF + 8) {
		uint64_t now = ks_mono_ns();

		memcpy(copy + HEARTBEAT_OFF, &now, 8);
	}
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, copy, size) != (ssize_t)size))
		abort();
	free(copy);
	(void)ks_liveness_lock(fd);
	for (int per_vcpu = 0; per_vcpu <= 1; per_vcpu++) {
		struct ex_config cfg = { .dir = dir, .owner = KVMSTATS_OWNER_DEFAULT,
					 .per_vcpu = per_vcpu };
		struct ex_server s;

		if (ex_server_init(&s, &cfg, "/metrics") < 0)
			abort();
		for (int f = 0; f < 2; f++) {
			enum expo_format fmt = f ? EXPO_OPENMETRICS : EXPO_TEXT;
			char *out;
			size_t len;

			if (ex_server_scrape(&s, fmt, &out, &len) < 0)
				abort();
			check(out, len, fmt);
			free(out);
		}
		ex_server_clear(&s);
	}
	close(fd);
	return 0;
}
