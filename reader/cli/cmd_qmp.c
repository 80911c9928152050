/* SPDX-License-Identifier: MIT */
/*
 * cmd_qmp.c - "kvmstats qmp": a read-only QMP server answered from shared
 * memory; the options (the server is qmp_server.c).
 */
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "qmp_server.h"

static void
qmp_help(void)
{
	printf("Usage: kvmstats qmp --listen PATH [VM] [OPTIONS]\n"
	       "       kvmstats qmp --listen-dir SOCKDIR [OPTIONS]\n"
	       "\n"
	       "Serve QEMU's QMP protocol, read-only, from the VMs' shared memory: the\n"
	       "greeting, qmp_capabilities, query-stats and query-stats-schemas (all of\n"
	       "QEMU's arguments and filters), query-version, query-commands and\n"
	       "query-cpus-fast, with QEMU's error replies for everything else.  Values\n"
	       "come only from a live publisher; a stale, dead or ended VM is an error\n"
	       "that says so.  A VM's next generation is followed.\n"
	       "\n"
	       "  -l, --listen PATH      a socket for VM (default: the only VM there is)\n"
	       "  -L, --listen-dir DIR   a socket DIR/<vm>.qmp for every VM, made as VMs\n"
	       "                         appear and removed as they end\n"
	       "  -m, --socket-mode MODE file mode of the sockets, octal (default 0600)\n"
	       "  -g, --socket-group G   their group, a name or a number\n"
	       "  -u, --socket-owner U   their owner, a name or a number (root only)\n"
	       "      --max-clients N    connections at once, over all sockets (default %u);\n"
	       "                         one more gets an error reply and is closed\n"
	       "      --max-input BYTES  size of one message (default %u); a longer one\n"
	       "                         gets an error reply and its client is closed\n"
	       "      --max-output BYTES unread replies of one client before it is no\n"
	       "                         longer read (default %u)\n"
	       "\n"
	       "An existing file at a socket path is replaced only if it is a socket\n"
	       "nobody listens on.  Sockets are removed at exit (SIGINT, SIGTERM).\n",
	       KS_QMP_DEFAULT_MAX_CLIENTS, KS_QMP_DEFAULT_MAX_INPUT, KS_QMP_DEFAULT_MAX_OUTPUT);
}

/* A user or group: a name, or else a number.  Return: 0 or -1. */
static int
parse_id(const char *arg, bool group, unsigned *out)
{
	struct passwd *pw = group ? NULL : getpwnam(arg);
	struct group *gr = group ? getgrnam(arg) : NULL;
	uint64_t v;

	if (pw || gr) {
		*out = pw ? (unsigned)pw->pw_uid : (unsigned)gr->gr_gid;
		return 0;
	}
	if (ks_cli_parse_u64(arg, UINT_MAX - 1, &v) < 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
parse_size(const struct ks_cli *cli, const char *opt, const char *arg, uint64_t min,
	   uint64_t max, uint64_t *out)
{
	if (ks_cli_parse_u64(arg, max, out) < 0 || *out < min)
		return ks_cli_usage_error(cli, "%s '%s': must be a number from %llu to %llu",
					  opt, arg, (unsigned long long)min,
					  (unsigned long long)max);
	return KS_EXIT_OK;
}

enum { OPT_MAX_CLIENTS = 256, OPT_MAX_INPUT, OPT_MAX_OUTPUT };

static int
parse_one(struct ks_cli *cli, int c, struct ks_qmp_config *cfg)
{
	uint64_t v = 0;
	unsigned id;
	char *end;
	int rc = KS_EXIT_OK;

	switch (c) {
	case 'l':
		cfg->listen = optarg;
		break;
	case 'L':
		cfg->listen_dir = optarg;
		break;
	case 'm':
		v = strtoul(optarg, &end, 8);
		if (optarg[0] < '0' || optarg[0] > '7' || *end != '\0' || v > 07777)
			return ks_cli_usage_error(cli, "--socket-mode '%s': must be an octal "
						  "mode from 0 to 07777", optarg);
		cfg->sock.mode = (mode_t)v;
		break;
	case 'g':
		if (parse_id(optarg, true, &id) < 0)
			return ks_cli_usage_error(cli, "--socket-group '%s': no such group "
						  "(a name or a number)", optarg);
		cfg->sock.gid = (gid_t)id;
		break;
	case 'u':
		if (parse_id(optarg, false, &id) < 0)
			return ks_cli_usage_error(cli, "--socket-owner '%s': no such user "
						  "(a name or a number)", optarg);
		cfg->sock.uid = (uid_t)id;
		break;
	case OPT_MAX_CLIENTS:
		rc = parse_size(cli, "--max-clients", optarg, 1, 65536, &v);
		cfg->max_clients = (unsigned)v;
		break;
	case OPT_MAX_INPUT:
		rc = parse_size(cli, "--max-input", optarg, 256, 64 << 20, &v);
		cfg->max_input = (size_t)v;
		break;
	case OPT_MAX_OUTPUT:
		rc = parse_size(cli, "--max-output", optarg, 4096, 1u << 30, &v);
		cfg->max_output = (size_t)v;
		break;
	}
	return rc;
}

static int
parse_args(struct ks_cli *cli, int argc, char **argv, struct ks_qmp_config *cfg)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		{ "listen",	  required_argument, NULL, 'l' },
		{ "listen-dir",	  required_argument, NULL, 'L' },
		{ "socket-mode",  required_argument, NULL, 'm' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "socket-owner", required_argument, NULL, 'u' },
		{ "max-clients",  required_argument, NULL, OPT_MAX_CLIENTS },
		{ "max-input",	  required_argument, NULL, OPT_MAX_INPUT },
		{ "max-output",	  required_argument, NULL, OPT_MAX_OUTPUT },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc = KS_EXIT_OK;

	while ((c = ks_cli_getopt(cli, argc, argv, ":" KS_CLI_COMMON_SHORT "l:L:m:g:u:",
				  longopts, qmp_help, &rc)) != -1) {
		if (c == -2)
			return rc;
		rc = parse_one(cli, c, cfg);
		if (rc != KS_EXIT_OK)
			return rc;
	}
	if (optind < argc)
		cfg->vm = argv[optind++];
	if (optind < argc)
		return ks_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!cfg->listen == !cfg->listen_dir)
		return ks_cli_usage_error(cli, "give one of --listen PATH or --listen-dir DIR");
	if (cfg->listen_dir && cfg->vm)
		return ks_cli_usage_error(cli, "--listen-dir serves every VM: no VM argument");
	if ((cfg->listen && !cfg->listen[0]) || (cfg->listen_dir && !cfg->listen_dir[0]))
		return ks_cli_usage_error(cli, "--listen and --listen-dir need a path");
	return cfg->vm ? ks_cli_check_vm_name(cli, cfg->vm) : KS_EXIT_OK;
}

/* With no VM named: the only one in the directory, by name (its generations follow). */
static int
pick_vm(struct ks_cli *cli, char *name, size_t len)
{
	struct kvmstats_segment *seg;
	int rc = ks_cli_open_vm(cli, NULL, &seg);

	if (rc != KS_EXIT_OK)
		return rc;
	snprintf(name, len, "%s", kvmstats_info(seg)->vm_name);
	kvmstats_detach(&seg);
	return KS_EXIT_OK;
}

int
ks_cmd_qmp(struct ks_cli *cli, int argc, char **argv)
{
	struct ks_qmp_config cfg = {
		.cli = cli,
		.sock = { .mode = 0600, .uid = (uid_t)-1, .gid = (gid_t)-1 },
		.max_clients = KS_QMP_DEFAULT_MAX_CLIENTS,
		.max_input = KS_QMP_DEFAULT_MAX_INPUT,
		.max_output = KS_QMP_DEFAULT_MAX_OUTPUT,
		.rescan_ms = KS_QMP_DEFAULT_RESCAN_MS,
	};
	char only[256];
	struct stat st;
	int rc = parse_args(cli, argc, argv, &cfg);

	if (rc != KS_EXIT_OK)
		return rc;
	if (cfg.listen_dir && (stat(cfg.listen_dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
		ks_cli_error(cli, "--listen-dir %s: not a directory", cfg.listen_dir);
		return KS_EXIT_RUNTIME;
	}
	if (cfg.listen && !cfg.vm) {
		rc = pick_vm(cli, only, sizeof(only));
		if (rc != KS_EXIT_OK)
			return rc;
		cfg.vm = only;
	}
	fflush(stdout);
	return ks_qmp_serve(&cfg);
}
