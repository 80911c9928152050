/* SPDX-License-Identifier: MIT */
/* exporter_log.c - the exporter's log, escaped, one line per event. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "exporter_log.h"
#include "ks_text.h"

static void (*log_sink)(const char *line);
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
ex_log_redirect(void (*sink)(const char *line))
{
	log_sink = sink;
}

void
ex_log(const char *fmt, ...)
{
	char escaped[2048];
	va_list ap;

	va_start(ap, fmt);
	ks_text_vformat(escaped, sizeof(escaped), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (log_sink != NULL)
		log_sink(escaped);
	else
		fprintf(stderr, "kvmstats-exporter: %s\n", escaped);
	pthread_mutex_unlock(&log_lock);
}

void
ex_say(const char *fmt, ...)
{
	char escaped[2048];
	va_list ap;

	va_start(ap, fmt);
	ks_text_vformat(escaped, sizeof(escaped), fmt, ap);
	va_end(ap);
	fprintf(stderr, "kvmstats-exporter: %s\n", escaped);
}
