/* SPDX-License-Identifier: MIT */
/* stamp.c - whether a sweep's times may come from the TSC (stamp.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "stamp.h"

#define CLOCKSOURCE_FILE "/sys/devices/system/clocksource/clocksource0/current_clocksource"

bool
ks_stamp_tsc_trusted(char *why, size_t len)
{
#if KS_STAMP_HAVE_TSC
	unsigned eax, ebx, ecx, edx;
	char cs[32] = "";
	ssize_t n;
	int fd;

	/*
	 * CPUID 0x80000007 EDX bit 8: invariant TSC, one rate in every P-, C-
	 * and T-state.  (__get_cpuid() fails for a leaf the CPU does not have.)
	 */
	if (!__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx) || !(edx & (1u << 8))) {
		snprintf(why, len, "the CPU does not report an invariant TSC");
		return false;
	}
	/* The kernel's own verdict: "tsc" only while its watchdog finds the CPUs' TSCs in step. */
	fd = open(CLOCKSOURCE_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "cannot read %s: %s", CLOCKSOURCE_FILE, strerror(errno));
		return false;
	}
	n = read(fd, cs, sizeof(cs) - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, len, "cannot read %s: %s", CLOCKSOURCE_FILE, strerror(errno));
		return false;
	}
	cs[n] = '\0';
	cs[strcspn(cs, "\n")] = '\0';
	if (strcmp(cs, "tsc") != 0) {
		snprintf(why, len, "the kernel's clocksource is %s, not tsc", cs[0] ? cs : "unknown");
		return false;
	}
	return true;
#else
	snprintf(why, len, "not an x86-64 build");
	return false;
#endif
}
