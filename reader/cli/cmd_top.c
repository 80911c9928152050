/* SPDX-License-Identifier: MIT */
/*
 * cmd_top.c - "kvmstats top": a live table of a VM's stats (as kvm_stat
 * and varnishstat), in curses; or with --once one look as text or JSON.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <ncursesw/curses.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ks_text.h"
#include "top_model.h"

#define REFRESH_MIN_MS	100
#define REFRESH_MAX_MS	60000

/* SIGINT, SIGTERM: leave at the next look, from any screen. */
static volatile sig_atomic_t got_stop;

struct top {
	const struct ks_cli *cli;
	struct top_model m;
	unsigned refresh_ms;
	bool paused, help, ended;
	size_t scroll;
	char message[256];		/* the status line's note, until the next key */
	bool color;
	bool pick_first;		/* no VM named and several live: the picker first */
};

static void
top_help(void)
{
	printf("Usage: kvmstats top [VM] [--once | -1] [--json] [--per-vcpu] [--filter REGEX]\n"
	       "                    [--sort name|total|rate] [--zero] [--interval S]\n"
	       "                    [--provider P]\n"
	       "\n"
	       "A live table of a VM's stats, refreshed every interval (as kvm_stat and\n"
	       "varnishstat): each stat's total; its rate per second since the look before\n"
	       "(the publisher's timestamps of both samples: exact, even when top is late;\n"
	       "the first look, and --once, over the segment's own ring); averages over\n"
	       "10 s and 60 s (once top has looked that long); for histograms the count\n"
	       "per second and p50/p90/p99 as the bounds of the bucket that holds them\n"
	       "(of the last 10 s when samples came in, else of all time).  The VM view\n"
	       "sums each stat over the vCPUs; the per-vCPU view has a row group per vCPU.\n"
	       "The header says the VM's state: a stale, dead or ended publisher is shown\n"
	       "as such.\n"
	       "\n"
	       "  -1, --once         one look as plain text on stdout, and exit (also when\n"
	       "                     stdout is not a terminal)\n"
	       "      --json         with --once: the same as JSON\n"
	       "      --per-vcpu     start in the per-vCPU view\n"
	       "  -f, --filter REGEX only stats whose name matches (POSIX extended regex)\n"
	       "  -s, --sort KEY     name (default), total or rate\n"
	       "  -z, --zero         hide rows whose total and rate are zero (kvm_stat -z)\n"
	       "  -i, --interval S   seconds between refreshes, 0.1 to 60 (default 1)\n"
	       "  -p, --provider P   only provider P\n"
	       "\n"
	       "Keys: q quit; h or ? help; space pause; + and - refresh faster or slower;\n"
	       "n, t, r sort by name, total, rate; / filter (a regex, matched live);\n"
	       "c clear the filter; v the per-vCPU view; z hide zero rows; 0 reset the\n"
	       "averages; arrows, PgUp, PgDn, Home, End scroll; g another VM.\n"
	       "Exit status: 0 after q (or --once); 1 runtime error; 2 usage error.\n");
}

/* ---- curses --------------------------------------------------------------- */

static void
put_line(int y, int width, int attr, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
put_line(int y, int width, int attr, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (attr)
		attron(attr);
	mvaddnstr(y, 0, buf, width);
	clrtoeol();
	if (attr)
		attroff(attr);
}

static void
draw_help(int rows, int cols)
{
	static const char *const lines[] = {
		"kvmstats top: keys",
		"",
		"  q          quit",
		"  h, ?       this help (any key closes it)",
		"  space      pause / resume",
		"  +, -       refresh faster / slower (0.1 s to 60 s)",
		"  n, t, r    sort by name, total, rate",
		"  /          filter: a regex on stat names, matched as you type",
		"  c          clear the filter",
		"  v          VM view (sums over vCPUs) / per-vCPU view",
		"  z          hide rows whose total and rate are zero",
		"  0          reset the 10 s and 60 s averages",
		"  arrows, PgUp, PgDn, Home, End   scroll",
		"  g          pick another VM",
		"",
		"RATE/s: since the look before (first look: over the ring), publisher times;",
		"AVG10/AVG60 over the snapshots top took in the last 10 s and 60 s.",
		"P50/P90/P99: the bounds of the histogram bucket that holds them.",
	};

	erase();
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) && (int)i < rows; i++)
		put_line((int)i, cols, i == 0 ? A_BOLD : 0, "%s", lines[i]);
	refresh();
}

static void
draw(struct top *t)
{
	const struct top_model *m = &t->m;
	const struct kvmstats_segment_info *in = kvmstats_info(m->seg);
	int rows, cols, body;
	char vm[256];
	static const char *const sorts[] = { "name", "total", "rate" };
	unsigned vcpus = 0;
	int state_attr = 0;

	getmaxyx(stdscr, rows, cols);
	if (t->help) {
		draw_help(rows, cols);
		return;
	}
	erase();
	if (rows < 6 || cols < 40) {
		put_line(0, cols, 0, "terminal too small (%dx%d): 40x6 at least", cols, rows);
		refresh();
		return;
	}
	for (unsigned i = 0; i < kvmstats_nr_targets(m->seg); i++)
		vcpus += kvmstats_target(m->seg, i)->kind == KVMSTATS_TARGET_VCPU;
	ks_text_escape(vm, sizeof(vm), in->vm_name);
	if (strcmp(m->state, "live") != 0)
		state_attr = t->color ? COLOR_PAIR(1) | A_BOLD : A_REVERSE | A_BOLD;
	put_line(0, cols, A_BOLD, "VM %s  gen %llu  sweep %llu  %u vCPUs  heartbeat %.0f ms  "
		 "%s view  refresh %.1f s%s", vm, (unsigned long long)in->generation,
		 (unsigned long long)m->st.sweep, vcpus, (double)m->lv.age_ns / 1e6,
		 m->per_vcpu ? "per-vCPU" : "VM", t->refresh_ms / 1000.0, t->paused ? "  PAUSED" : "");
	put_line(1, cols, state_attr, "state: %s%s", m->state,
		 t->ended ? " (its segment ended or is gone: the last values read)" :
		 strcmp(m->state, "live") ? " (not sweeping: the values are its last)" : "");
	put_line(2, cols, 0, "sort %s  filter %s%s%s (%zu match)  %s  %s", sorts[m->sort],
		 m->have_filter ? "/" : "none", m->have_filter ? m->filter_text : "",
		 m->have_filter ? "/" : "", m->nmatch, m->hide_zero ? "zero rows hidden" : "",
		 t->message);
	put_line(3, cols, A_REVERSE, "%-7s %-30s %14s %12s %12s %12s %10s %10s %10s", "TARGET",
		 "STAT", "TOTAL", "RATE/s", "AVG10/s", "AVG60/s", "P50", "P90", "P99");
	body = rows - 4;
	if (t->scroll + (size_t)body > m->nlines)
		t->scroll = m->nlines > (size_t)body ? m->nlines - (size_t)body : 0;
	for (int y = 0; y < body && t->scroll + (size_t)y < m->nlines; y++) {
		struct top_cells c;

		top_line_cells(&m->lines[t->scroll + (size_t)y], &c);
		put_line(4 + y, cols, 0, "%-7s %-30.30s %14s %12s %12s %12s %10s %10s %10s", c.target,
			 c.name, c.total, c.rate, c.avg10, c.avg60, c.pct[0], c.pct[1], c.pct[2]);
	}
	refresh();
}

/* Read a regex on the status line, applying it as it is typed. */
static void
read_filter(struct top *t)
{
	char buf[128] = "", why[200];
	size_t n = 0;
	int rows, cols, ch;

	getmaxyx(stdscr, rows, cols);
	(void)rows;
	timeout(200);		/* a signal to stop is seen within 0.2 s */
	for (;;) {
		if (got_stop)
			break;
		top_model_set_filter(&t->m, buf, why, sizeof(why));
		draw(t);
		attron(A_BOLD);
		mvprintw(2, 0, "filter: %s  (%zu match; Enter keeps it, Esc clears)", buf,
			 t->m.nmatch);
		attroff(A_BOLD);
		clrtoeol();
		refresh();
		ch = getch();
		if (ch == ERR)
			continue;
		if (ch == '\n' || ch == KEY_ENTER)
			break;
		if (ch == 27) {
			n = 0;
			buf[0] = '\0';
			break;
		}
		if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0)
			buf[--n] = '\0';
		else if (ch >= 32 && ch < 127 && n + 1 < sizeof(buf)) {
			buf[n++] = (char)ch;
			buf[n] = '\0';
		}
	}
	if (top_model_set_filter(&t->m, buf, why, sizeof(why)) < 0) {
		snprintf(t->message, sizeof(t->message), "not a regex: %s", why);
		top_model_set_filter(&t->m, NULL, why, sizeof(why));
	}
	(void)cols;
}

/* The VMs of the directory, for the picker: as "kvmstats list" shows them. */
#define PICK_MAX	256

struct vm_choice {
	struct {
		char name[KVMSTATS_VM_NAME_MAX + 1];
		char line[256];
	} v[PICK_MAX];
	unsigned n;
	const struct ks_cli *cli;
};

/* Attach without a word on stderr (curses owns the terminal). */
static struct kvmstats_segment *
quiet_attach(const struct ks_cli *cli, const char *name)
{
	struct kvmstats_attach_opts o;
	struct kvmstats_segment *seg = NULL;
	struct kvmstats_error err;

	kvmstats_attach_opts_init(&o);
	o.dir = cli->dir;
	o.owner = cli->owner;
	if (kvmstats_attach(name, &o, &seg, &err) < 0)
		return NULL;
	return seg;
}

static int
collect_vm(const char *file, void *arg)
{
	struct vm_choice *c = arg;
	struct kvmstats_segment *seg;
	char vm[160];

	if (c->n == PICK_MAX)
		return 1;
	snprintf(c->v[c->n].name, sizeof(c->v[0].name), "%s", file + strlen(KVMSTATS_SEGMENT_PREFIX));
	ks_text_escape(vm, sizeof(vm), c->v[c->n].name);
	seg = quiet_attach(c->cli, c->v[c->n].name);
	if (seg == NULL) {
		snprintf(c->v[c->n].line, sizeof(c->v[0].line), "%-32.32s  (cannot be attached)", vm);
	} else {
		const struct kvmstats_segment_info *in = kvmstats_info(seg);
		struct kvmstats_liveness lv;

		kvmstats_liveness(seg, &lv);
		snprintf(c->v[c->n].line, sizeof(c->v[0].line),
			 "%-32.32s  %-10s  gen %-4llu  %6.0f Hz  heartbeat %8.0f ms", vm,
			 kvmstats_health_name(lv.health), (unsigned long long)in->generation,
			 in->poll_period_ns ? 1e9 / (double)in->poll_period_ns : 0,
			 (double)lv.age_ns / 1e6);
		kvmstats_detach(&seg);
	}
	c->n++;
	return 0;
}

/* Show the VMs; switch to the one picked.  Return: whether it switched. */
static bool
pick_vm(struct top *t)
{
	struct vm_choice *c = calloc(1, sizeof(*c));
	struct kvmstats_error err;
	struct kvmstats_segment *seg;
	unsigned sel = 0;
	bool picked = false;
	int ch;

	if (c == NULL)
		return false;
	c->cli = t->cli;
	kvmstats_enumerate(t->cli->dir, collect_vm, c, &err);
	if (c->n == 0) {
		snprintf(t->message, sizeof(t->message), "no VM in the directory");
		free(c);
		return false;
	}
	timeout(200);		/* a signal to stop is seen within 0.2 s */
	for (;;) {
		int rows, cols;
		unsigned first = 0, room;

		if (got_stop)
			break;
		getmaxyx(stdscr, rows, cols);
		room = rows > 3 ? (unsigned)rows - 2 : 1;
		if (sel >= room)
			first = sel - room + 1;		/* the selection stays on the screen */
		erase();
		put_line(0, cols, A_BOLD, "pick a VM: arrows and Enter; Esc or q: back (%u VMs%s)",
			 c->n, c->n == PICK_MAX ? ", the first 256" : "");
		put_line(1, cols, A_REVERSE, "%-32s  %-10s  %-8s  %9s  %s", "VM", "STATE", "GEN",
			 "RATE", "HEARTBEAT");
		for (unsigned i = first; i < c->n && (int)(i - first) + 2 < rows; i++)
			put_line((int)(i - first) + 2, cols, i == sel ? A_REVERSE : 0, "%s",
				 c->v[i].line);
		refresh();
		ch = getch();
		if (ch == ERR)
			continue;
		if (ch == 27 || ch == 'q')
			break;
		if ((ch == KEY_UP || ch == 'k') && sel > 0)
			sel--;
		else if ((ch == KEY_DOWN || ch == 'j') && sel + 1 < c->n)
			sel++;
		else if (ch == '\n' || ch == KEY_ENTER) {
			picked = true;
			break;
		}
	}
	if (!picked) {
		free(c);
		return false;
	}
	seg = quiet_attach(t->cli, c->v[sel].name);
	if (seg == NULL) {
		snprintf(t->message, sizeof(t->message), "that VM cannot be attached now");
		free(c);
		return false;
	}
	free(c);
	{
		bool per_vcpu = t->m.per_vcpu, hide = t->m.hide_zero;
		enum top_sort sort = t->m.sort;
		const char *provider = t->m.provider;
		struct kvmstats_segment *old = t->m.seg;
		char filter[sizeof(t->m.filter_text)], why[8];

		snprintf(filter, sizeof(filter), "%s", t->m.filter_text);
		top_model_free(&t->m);
		kvmstats_detach(&old);
		if (top_model_init(&t->m, seg, provider, per_vcpu) < 0)
			return false;
		t->m.hide_zero = hide;
		t->m.sort = sort;
		top_model_set_filter(&t->m, filter, why, sizeof(why));
		t->ended = false;
		t->scroll = 0;
	}
	return true;
}

/* How many segments of the directory are live (0, 1, or more). */
static int
count_live(const char *file, void *arg)
{
	struct vm_choice *c = arg;
	struct kvmstats_segment *seg = quiet_attach(c->cli, file);

	if (seg != NULL) {
		struct kvmstats_liveness lv;

		kvmstats_liveness(seg, &lv);
		if (lv.health == KVMSTATS_HEALTH_LIVE && c->n < PICK_MAX)
			snprintf(c->v[c->n++].name, sizeof(c->v[0].name), "%s",
				 file + strlen(KVMSTATS_SEGMENT_PREFIX));
		kvmstats_detach(&seg);
	}
	return 0;
}

static void
on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
}

static int
run_curses(struct top *t)
{
	SCREEN *scr;
	const char *term = getenv("TERM");
	uint64_t next = 0;
	int ch;

	setlocale(LC_ALL, "");
	scr = newterm(NULL, stdout, stdin);
	if (scr == NULL) {
		ks_cli_error(t->cli, "TERM '%s' has no terminal description here: set TERM to "
			     "one that has (xterm-256color, screen, linux), or use --once",
			     term ? term : "");
		return KS_EXIT_RUNTIME;
	}
	set_term(scr);
	set_escdelay(25);	/* Esc alone is a key here: no second's wait for a sequence */
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	t->color = has_colors();
	if (t->color) {
		start_color();
		use_default_colors();
		init_pair(1, COLOR_RED, -1);
	}
	if (t->pick_first && !pick_vm(t))
		snprintf(t->message, sizeof(t->message), "g picks another VM");
	for (;;) {
		uint64_t now = kvmstats_now_ns();

		if (got_stop)
			break;
		if (!t->paused && now >= next) {
			int r = top_model_update(&t->m, true);

			t->ended = r == 1;
			if (r < 0)
				snprintf(t->message, sizeof(t->message), "reading failed: %s",
					 strerror(-r));
			next = now + (uint64_t)t->refresh_ms * 1000000;
		}
		draw(t);
		/* Wake for the next refresh, or a key, whichever is first. */
		timeout(t->paused ? -1 : (int)((next > now ? next - now : 0) / 1000000) + 1);
		ch = getch();
		if (ch == ERR)
			continue;
		t->message[0] = '\0';
		if (t->help) {
			t->help = false;
			continue;
		}
		switch (ch) {
		case 'q':
		case 'Q':
			goto out;
		case 'h':
		case '?':
			t->help = true;
			break;
		case ' ':
		case 'p':
			t->paused = !t->paused;
			break;
		case '+':
			t->refresh_ms = t->refresh_ms / 2 < REFRESH_MIN_MS ? REFRESH_MIN_MS
									     : t->refresh_ms / 2;
			next = 0;
			break;
		case '-':
			t->refresh_ms = t->refresh_ms * 2 > REFRESH_MAX_MS ? REFRESH_MAX_MS
									     : t->refresh_ms * 2;
			break;
		case 'n':
			t->m.sort = TOP_SORT_NAME;
			top_model_lines(&t->m);
			break;
		case 't':
			t->m.sort = TOP_SORT_TOTAL;
			top_model_lines(&t->m);
			break;
		case 'r':
			t->m.sort = TOP_SORT_RATE;
			top_model_lines(&t->m);
			break;
		case '/':
		case 'f':
			read_filter(t);
			break;
		case 'c': {
			char why[8];

			top_model_set_filter(&t->m, NULL, why, sizeof(why));
			break;
		}
		case 'v':
			top_model_set_per_vcpu(&t->m, !t->m.per_vcpu);
			t->scroll = 0;
			break;
		case 'z':
			t->m.hide_zero = !t->m.hide_zero;
			top_model_lines(&t->m);
			break;
		case '0':
			top_model_reset_averages(&t->m);
			top_model_lines(&t->m);
			snprintf(t->message, sizeof(t->message), "averages reset");
			break;
		case 'g':
			if (pick_vm(t))
				next = 0;
			break;
		case KEY_UP:
		case 'k':
			if (t->scroll > 0)
				t->scroll--;
			break;
		case KEY_DOWN:
		case 'j':
			t->scroll++;
			break;
		case KEY_NPAGE:
			t->scroll += (size_t)(LINES > 5 ? LINES - 5 : 1);
			break;
		case KEY_PPAGE:
			t->scroll = t->scroll > (size_t)(LINES - 5) ? t->scroll - (size_t)(LINES - 5) : 0;
			break;
		case KEY_HOME:
			t->scroll = 0;
			break;
		case KEY_END:
			t->scroll = t->m.nlines;
			break;
		case KEY_RESIZE:
			break;
		default:
			snprintf(t->message, sizeof(t->message), "key not bound: h shows the keys");
			break;
		}
	}
out:
	endwin();
	delscreen(scr);
	return KS_EXIT_OK;
}

static int
parse_seconds(const struct ks_cli *cli, const char *s, unsigned *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= 0.1 && v <= 60))
		return ks_cli_usage_error(cli, "--interval '%s': give seconds from 0.1 to 60", s);
	*ms = (unsigned)(v * 1000 + 0.5);
	return KS_EXIT_OK;
}

int
ks_cmd_top(struct ks_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		KS_CLI_COMMON_LONG,
		{ "once", no_argument, NULL, '1' },
		{ "json", no_argument, NULL, 'J' },
		{ "per-vcpu", no_argument, NULL, 'V' },
		{ "filter", required_argument, NULL, 'f' },
		{ "sort", required_argument, NULL, 's' },
		{ "zero", no_argument, NULL, 'z' },
		{ "interval", required_argument, NULL, 'i' },
		{ "provider", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct top t = { .cli = cli, .refresh_ms = 1000 };
	struct kvmstats_segment *seg = NULL;
	const char *vm = NULL, *filter = NULL, *provider = NULL;
	bool once = false, json = false, per_vcpu = false, zero = false;
	enum top_sort sort = TOP_SORT_NAME;
	int c, rc = KS_EXIT_OK;
	char why[256];

	while ((c = ks_cli_getopt(cli, argc, argv, ":" KS_CLI_COMMON_SHORT "1f:s:zi:p:",
				  longopts, top_help, &rc)) != -1) {
		switch (c) {
		case -2:
			return rc;
		case '1':
			once = true;
			break;
		case 'J':
			json = true;
			break;
		case 'V':
			per_vcpu = true;
			break;
		case 'f':
			filter = optarg;
			break;
		case 's':
			if (strcmp(optarg, "name") == 0)
				sort = TOP_SORT_NAME;
			else if (strcmp(optarg, "total") == 0)
				sort = TOP_SORT_TOTAL;
			else if (strcmp(optarg, "rate") == 0)
				sort = TOP_SORT_RATE;
			else
				return ks_cli_usage_error(cli, "--sort '%s': give name, total or rate",
							  optarg);
			break;
		case 'z':
			zero = true;
			break;
		case 'i':
			rc = parse_seconds(cli, optarg, &t.refresh_ms);
			if (rc != KS_EXIT_OK)
				return rc;
			break;
		case 'p':
			provider = optarg;
			break;
		}
	}
	if (optind < argc)
		vm = argv[optind++];
	if (optind < argc)
		return ks_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (json && !once)
		once = true;
	if (!once && !isatty(STDOUT_FILENO))
		once = true;		/* as varnishstat: a pipe gets one look */
	if (!once && !isatty(STDIN_FILENO))
		return ks_cli_usage_error(cli, "the live view reads keys from a terminal, and "
					  "standard input is not one: use --once");
	if (filter != NULL) {
		regex_t re;
		int e = regcomp(&re, filter, REG_EXTENDED | REG_NOSUB);

		if (e != 0) {
			regerror(e, &re, why, sizeof(why));
			regfree(&re);
			return ks_cli_usage_error(cli, "--filter '%s': not a regular expression: %s",
						  filter, why);
		}
		regfree(&re);
	}
	if (vm == NULL && !once) {
		/* Several live VMs and none named: start on the first, with the picker. */
		struct vm_choice *live = calloc(1, sizeof(*live));
		struct kvmstats_error err;

		if (live != NULL) {
			live->cli = cli;
			kvmstats_enumerate(cli->dir, count_live, live, &err);
			if (live->n > 1) {
				t.pick_first = true;
				seg = quiet_attach(cli, live->v[0].name);
			}
			free(live);
		}
	}
	if (seg == NULL)
		rc = once ? ks_cli_open_live(cli, vm, provider, &seg) : ks_cli_open_vm(cli, vm, &seg);
	if (rc != KS_EXIT_OK)
		return rc;
	if (provider != NULL && (rc = ks_cli_check_provider(cli, seg, provider)) != KS_EXIT_OK)
		goto out;
	if (top_model_init(&t.m, seg, provider, per_vcpu) < 0) {
		ks_cli_error(cli, "out of memory");
		rc = KS_EXIT_RUNTIME;
		goto out;
	}
	seg = NULL;	/* the model's now (it may follow it to a newer one) */
	t.m.hide_zero = zero;
	t.m.sort = sort;
	if (filter != NULL)
		top_model_set_filter(&t.m, filter, why, sizeof(why));
	if (once) {
		int r = top_model_update(&t.m, false);

		if (r < 0) {
			ks_cli_error(cli, "VM '%s': reading failed: %s", kvmstats_info(t.m.seg)->vm_name,
				     strerror(-r));
			rc = KS_EXIT_RUNTIME;
		} else if (json) {
			top_print_json(&t.m, stdout);
		} else {
			top_print_text(&t.m, stdout);
		}
	} else {
		struct sigaction sa = { .sa_handler = on_stop };

		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		rc = run_curses(&t);
	}
	seg = t.m.seg;
	top_model_free(&t.m);
out:
	if (seg != NULL)
		kvmstats_detach(&seg);
	return rc;
}
