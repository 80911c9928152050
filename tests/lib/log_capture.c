/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log_capture.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 16];
static size_t log_len;

void
log_capture_line(const char *msg)
{
	int n;

	pthread_mutex_lock(&log_lock);
	n = snprintf(log_buf + log_len, sizeof(log_buf) - log_len, "%s\n", msg);
	/* Full: start over; long tests only check what was said recently. */
	if (n < 0 || log_len + (size_t)n >= sizeof(log_buf)) {
		log_len = (size_t)snprintf(log_buf, sizeof(log_buf), "%s\n", msg);
		if (log_len >= sizeof(log_buf))
			log_len = sizeof(log_buf) - 1;
	} else {
		log_len += (size_t)n;
	}
	pthread_mutex_unlock(&log_lock);
	if (getenv("KVMSTATS_TEST_VERBOSE"))
		fprintf(stderr, "log: %s\n", msg);
}

bool
log_capture_has(const char *what)
{
	bool found;

	pthread_mutex_lock(&log_lock);
	found = strstr(log_buf, what) != NULL;
	pthread_mutex_unlock(&log_lock);
	return found;
}

void
log_capture_reset(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	log_buf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

unsigned
log_capture_count(const char *what)
{
	unsigned n = 0;

	pthread_mutex_lock(&log_lock);
	for (const char *p = strstr(log_buf, what); p != NULL; p = strstr(p + 1, what))
		n++;
	pthread_mutex_unlock(&log_lock);
	return n;
}

bool
log_capture_wait(const char *what, unsigned ms)
{
	struct timespec pause = { 0, 5 * 1000 * 1000 };

	for (unsigned waited = 0; waited < ms && !log_capture_has(what); waited += 5)
		nanosleep(&pause, NULL);
	return log_capture_has(what);
}
