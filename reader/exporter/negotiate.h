/* SPDX-License-Identifier: MIT */
/*
 * negotiate.h - which exposition format a scraper asked for.
 *
 * Prometheus sends, for example,
 *   Accept: application/openmetrics-text;version=1.0.0,
 *           application/openmetrics-text;version=0.0.1;q=0.75,
 *           text/plain;version=0.0.4;q=0.5,*\/\*;q=0.1
 * The format with the highest q that this exporter writes wins (the first
 * listed, on a tie).  Anything else, or no Accept at all, gets the text
 * format 0.0.4, as Prometheus' own client library does: every scraper
 * reads it.
 */
#ifndef KVMSTATS_EXPORTER_NEGOTIATE_H
#define KVMSTATS_EXPORTER_NEGOTIATE_H

enum expo_format {
	EXPO_TEXT,		/* text/plain; version=0.0.4 */
	EXPO_OPENMETRICS,	/* application/openmetrics-text; version=1.0.0 */
};

/* @accept: the request's Accept header, or NULL. */
enum expo_format negotiate_format(const char *accept);

/* The Content-Type of a response in @fmt. */
const char *negotiate_content_type(enum expo_format fmt);

#endif /* KVMSTATS_EXPORTER_NEGOTIATE_H */
