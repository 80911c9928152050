/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the kvmstats subcommands share: options, errors, opening
 * a VM's segment and reading one consistent cut of it.
 */
#ifndef KVMSTATS_CLI_CLI_H
#define KVMSTATS_CLI_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "kvmstats/reader.h"


/* Exit codes, documented in "kvmstats --help". */
enum {
	KS_EXIT_OK = 0,
	KS_EXIT_RUNTIME = 1,	/* no such VM, segment ended, no data yet ... */
	KS_EXIT_USAGE = 2,	/* the command line is wrong or incomplete */
	KS_EXIT_HELP = -1,	/* internal: help printed, stop and exit 0 */
};

/* Options every subcommand takes (also accepted before the subcommand). */
struct ks_cli {
	const char *dir;	/* NULL: $KVMSTATS_SHM_DIR or /dev/shm */
	uid_t owner;		/* KVMSTATS_OWNER_DEFAULT unless --owner */
	bool stale_ok;		/* --stale-ok: the last values of a publisher that is not live */
	const char *cmd;	/* subcommand name, for messages */
};

/* getopt_long entries and short letters of the common options. */
#define KS_CLI_COMMON_SHORT	"hd:o:"
#define KS_CLI_COMMON_LONG					\
	{ "help",  no_argument,       NULL, 'h' },		\
	{ "dir",   required_argument, NULL, 'd' },		\
	{ "owner", required_argument, NULL, 'o' }
/* What commands that show values take besides (ks_cli_getopt() handles it). */
#define KS_CLI_VALUES_LONG					\
	{ "stale-ok", no_argument,    NULL, 'S' }
/*
 * ks_cli_getopt() - getopt_long() for a subcommand, with the common
 * options and errors handled.  Return: the next subcommand-specific
 * option, -1 at the end, or -2 when the caller should exit with *@rc
 * (after --help: KS_EXIT_HELP; after a usage error: KS_EXIT_USAGE).
 */
int ks_cli_getopt(struct ks_cli *cli, int argc, char **argv, const char *shortopts,
		  const struct option *longopts, void (*help)(void), int *rc);

/* "kvmstats: <cmd>: <message>" on stderr. */
/*
 * ks_cli_note_no_vm_stats() - a VM without VM-level stats makes schema and
 * query --target vm say nothing of them; say why on stderr (the
 * publisher's note), so that the silence is not mistaken for a fault.
 */
void ks_cli_note_no_vm_stats(const struct ks_cli *cli, const struct kvmstats_segment *seg);

void ks_cli_error(const struct ks_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print a usage error with a pointer to --help; returns KS_EXIT_USAGE. */
int ks_cli_usage_error(const struct ks_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse an unsigned decimal number into [0, max].  Return: 0 or -EINVAL. */
int ks_cli_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* The segment directory in effect, for messages. */
const char *ks_cli_dir(const struct ks_cli *cli);

/* ks_cli_check_vm_name() - a VM argument that no segment can have is a usage error. */
int ks_cli_check_vm_name(const struct ks_cli *cli, const char *vm);

/*
 * ks_cli_open_vm() - attach to @vm, or with @vm NULL to the only segment
 * in the directory that attaches, for its schema: any state will do.  A
 * superseded segment is followed to its successor.
 * Return: KS_EXIT_OK with *@segp set, or an exit code (message printed).
 */
int ks_cli_open_vm(const struct ks_cli *cli, const char *vm,
		   struct kvmstats_segment **segp);

/*
 * ks_cli_read_cut() - every target's record as of one sweep, in a new
 * buffer (free() it).  Return: an exit code (message printed on error).
 */
int ks_cli_read_cut(const struct ks_cli *cli, const struct kvmstats_segment *seg,
		    uint64_t **valuesp);

/*
 * ks_cli_check_provider() - @name (NULL: no filter) must be one of the
 * segment's providers.  Return: an exit code (message printed).
 */
int ks_cli_check_provider(const struct ks_cli *cli, const struct kvmstats_segment *seg,
			  const char *name);

/*
 * ks_cli_open_live() - a VM to read values from: as ks_cli_open_vm(), but
 * with @vm NULL the only live one; refused (exit 1, message printed)
 * unless its publisher is live (kvmstats_liveness()), or with --stale-ok
 * stale, dead or ended (then with a warning); then its provider @provider
 * (NULL: any) is checked.
 * Return: KS_EXIT_OK, or the exit code of the first check that failed.
 */
int ks_cli_open_live(const struct ks_cli *cli, const char *vm, const char *provider,
		     struct kvmstats_segment **seg);

/*
 * ks_cli_attach_follow() - attach to @vm with the --dir and --owner in
 * effect, and follow it to its newest generation.  Prints nothing.
 * Return: 0 with *@segp set, or a negative errno with @err filled.
 */
int ks_cli_attach_follow(const struct ks_cli *cli, const char *vm,
			 struct kvmstats_segment **segp, struct kvmstats_error *err);

/* ks_cli_attach_why() - "VM 'x': <why attaching failed>[; what to do]" into @buf. */
void ks_cli_attach_why(const char *vm, int r, const struct kvmstats_error *err, char *buf,
		       size_t len);

/*
 * ks_cli_health_why() - how @seg's publisher is (kvmstats_liveness()),
 * and unless it is live, why its values are not current, as the end of a
 * sentence that starts with "VM 'x' " ("is stale: ...").
 * Return: the enum kvmstats_health.
 */
int ks_cli_health_why(const struct kvmstats_segment *seg, char *why, size_t len);

/*
 * ks_cli_try_read_cut() - as ks_cli_read_cut(), but the message of a
 * failure goes to @msg.  Return: 0, or -1 with @msg set.
 */
int ks_cli_try_read_cut(const struct kvmstats_segment *seg, uint64_t **valuesp, char *msg,
			size_t len);

/* Whether @s names a target kind ("vm", "vcpu"); sets *@kind. */
bool ks_cli_parse_kind(const char *s, enum kvmstats_target_kind *kind);

/* Write errors on stdout (disk full, closed pipe) are runtime errors. */
int ks_cli_finish_stdout(const struct ks_cli *cli, int rc);

/* The subcommands. */
int ks_cmd_list(struct ks_cli *cli, int argc, char **argv);
int ks_cmd_schema(struct ks_cli *cli, int argc, char **argv);
int ks_cmd_query(struct ks_cli *cli, int argc, char **argv);
int ks_cmd_info(struct ks_cli *cli, int argc, char **argv);
int ks_cmd_watch(struct ks_cli *cli, int argc, char **argv);
int ks_cmd_top(struct ks_cli *cli, int argc, char **argv);
int ks_cmd_qmp(struct ks_cli *cli, int argc, char **argv);

#endif /* KVMSTATS_CLI_CLI_H */
