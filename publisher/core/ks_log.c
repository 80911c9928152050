/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "ks_log.h"

void
ks_vlogf(ks_log_fn log, const char *fmt, va_list ap)
{
	char line[1024];

	if (log == NULL)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	log(line);
}

void
ks_logf(ks_log_fn log, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ks_vlogf(log, fmt, ap);
	va_end(ap);
}
