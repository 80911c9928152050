/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "ks_err.h"

int
ks_err(struct kvmstats_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void
ks_err_clear(struct kvmstats_error *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
