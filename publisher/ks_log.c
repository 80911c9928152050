/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "ks_log.h"

void
ks_logf(ks_log_fn log, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log(line);
}
