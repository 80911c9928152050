/* SPDX-License-Identifier: MIT */
/*
 * ks_log.h - how publisher components say what happened: one line at a
 * time to a function their user gives (kvmstatsd's stderr, a test's
 * capture, nothing), formatted here and only here.
 */
#ifndef KVMSTATS_PUBLISHER_KS_LOG_H
#define KVMSTATS_PUBLISHER_KS_LOG_H

/* One line, without its newline.  It may quote names from peers: escape before showing. */
typedef void (*ks_log_fn)(const char *line);

#include <stdarg.h>

/* ks_logf() - format one line and hand it to @log (NULL: say nothing). */
void ks_logf(ks_log_fn log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ks_vlogf() - the same, for a component's own printf-like wrapper. */
void ks_vlogf(ks_log_fn log, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif /* KVMSTATS_PUBLISHER_KS_LOG_H */
