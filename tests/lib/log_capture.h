/* SPDX-License-Identifier: MIT */
/*
 * log_capture.h - collect the lines a component logs (a ks_log_fn) so a
 * test can check what it said.  Thread-safe; keeps the recent 64 KiB.
 */
#ifndef KVMSTATS_TESTS_LOG_CAPTURE_H
#define KVMSTATS_TESTS_LOG_CAPTURE_H

#include <stdbool.h>

/* A ks_log_fn; with $KVMSTATS_TEST_VERBOSE set it also echoes to stderr. */
void log_capture_line(const char *msg);
/* Whether any captured line contains @what. */
bool log_capture_has(const char *what);
void log_capture_reset(void);
/* How many times @what occurs in what was captured. */
unsigned log_capture_count(const char *what);
/* Wait up to @ms for a line with @what (a component may log after it answers). */
bool log_capture_wait(const char *what, unsigned ms);

#endif
