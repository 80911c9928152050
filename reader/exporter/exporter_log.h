/* SPDX-License-Identifier: MIT */
/*
 * exporter_log.h - the exporter's log: one line per event on stderr
 * (journald adds the time under systemd).  Lines quote file names and
 * segment strings, so the whole line is escaped (ks_text.h): nothing from
 * a file can move the cursor or forge a line of the log.
 */
#ifndef KVMSTATS_EXPORTER_LOG_H
#define KVMSTATS_EXPORTER_LOG_H

void ex_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * ex_say() - a message on stderr, always (startup and usage errors, which
 * must reach the person who ran the command, not a test's log sink).
 */
void ex_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Tests capture the lines instead (NULL: stderr again). */
void ex_log_redirect(void (*sink)(const char *line));

#endif /* KVMSTATS_EXPORTER_LOG_H */
