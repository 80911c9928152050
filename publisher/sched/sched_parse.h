/* SPDX-License-Identifier: MIT */
/*
 * sched_parse.h - the host scheduler's per-thread numbers, parsed from the
 * text of /proc/<pid>/task/<tid>/{schedstat,stat,status}.
 *
 * The text is untrusted: a thread's name (comm) is chosen by the VMM and
 * appears in stat and status, and a file may be cut short or, from a
 * future kernel, laid out differently.  Every parser takes a buffer and
 * its length (no terminator needed), accepts only the exact shape it
 * knows, and says what it did not like.
 */
#ifndef KVMSTATS_PUBLISHER_SCHED_PARSE_H
#define KVMSTATS_PUBLISHER_SCHED_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The field of /proc/<pid>/stat that says on which CPU the task last ran (proc(5)). */
#define KS_SCHED_STAT_PROCESSOR_FIELD	39

/*
 * ks_sched_parse_schedstat() - "<run ns> <wait ns> <timeslices>\n"
 * (fs/proc/base.c, proc_pid_schedstat): time on a CPU, time waited on a
 * run queue, slices run.  Return: 0, or -EBADMSG with *@why set.
 */
int ks_sched_parse_schedstat(const char *buf, size_t len, uint64_t out[3], const char **why);

/*
 * ks_sched_parse_stat_cpu() - field 39 (processor) of a stat line
 * "<pid> (<comm>) <state> ...": the comm may hold spaces and ')', so the
 * fields are counted from the last ')'.  Return: 0, or -EBADMSG.
 */
int ks_sched_parse_stat_cpu(const char *buf, size_t len, uint64_t *cpu, const char **why);

/*
 * ks_sched_parse_status() - the "voluntary_ctxt_switches:" and
 * "nonvoluntary_ctxt_switches:" lines of a status file, each exactly once
 * and at the start of a line.  Return: 0, or -EBADMSG.
 */
int ks_sched_parse_status(const char *buf, size_t len, uint64_t *voluntary,
			  uint64_t *involuntary, const char **why);

#endif /* KVMSTATS_PUBLISHER_SCHED_PARSE_H */
