/* SPDX-License-Identifier: MIT */
/*
 * test_qemu_names.c - QEMU's names for its VM and vCPUs (publisher/qemu/):
 * the guest name of -name, and the QMP client that asks query-cpus-fast,
 * against a scripted QMP server in a thread.  Both read untrusted input (a
 * command line anyone may write, a socket anyone may serve): every way
 * such input can be wrong is here, with what the caller is told.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmstats/reader.h"
#include "qemu_name.h"
#include "qemu_qmp.h"

/* ---- -name ------------------------------------------------------------ */

/* Parse an argument vector given as "a|b|c" ('|' stands for the NUL). */
static int
parse(const char *argv, char *name, char *why)
{
	char buf[4096];
	size_t len = strlen(argv);

	memcpy(buf, argv, len + 1);
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '|')
			buf[i] = '\0';
	name[0] = why[0] = '\0';
	return ks_qemu_name_parse(buf, len + 1, name, KVMSTATS_VM_NAME_MAX + 1, why, 160);
}

static void
test_guest_name(void **state)
{
	static const struct {
		const char *argv, *want;
	} good[] = {
		{ "qemu|-name|web-01", "web-01" },
		{ "qemu|-name|guest=web-01,debug-threads=on", "web-01" },	/* libvirt's form */
		{ "qemu|--name|web-01", "web-01" },
		{ "qemu|-name|debug-threads=on,guest=db", "db" },
		{ "qemu|-name|a,,b", "a,b" },					/* ",," is a comma */
		{ "qemu|-name|first|-m|128|-name|second", "second" },		/* the last wins */
		{ "qemu|-name|kept|-name|debug-threads=on", "kept" },		/* no guest: kept */
		{ "qemu|-name|caf\xc3\xa9", "caf\xc3\xa9" },
		{ "qemu|-name|guest=a,guest=b", "b" },			/* QEMU keeps the last */
	};
	static const char *const none[] = {
		"qemu|-m|128",
		"qemu|-name",				/* no value */
		"qemu|-name|debug-threads=on",		/* no guest */
		"qemu|-name|guest=",			/* names nothing */
		"qemu|-namex|web-01",			/* another option */
		"qemu|-m|-name",			/* a value, not an option */
	};
	static const struct {
		const char *argv, *why;
	} bad[] = {
		{ "qemu|-name|../etc", "'/'" },
		{ "qemu|-name|.hidden", "'.'" },
		{ "qemu|-name|kvmstats.x", "kvmstats." },
		{ "qemu|-name|esc\x1b[2Jape", "control" },
		{ "qemu|-name|bad\xff", "UTF-8" },
	};
	char name[KVMSTATS_VM_NAME_MAX + 1], why[160], longv[400];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(parse(good[i].argv, name, why), 1);
		assert_string_equal(name, good[i].want);
	}
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (parse(none[i], name, why) != 0)
			fail_msg("%s: found a name (%s)", none[i], name);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i].argv, name, why), -EINVAL);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("%s: reason \"%s\" does not say %s", bad[i].argv, why, bad[i].why);
	}
	/* Another key's long value is skipped, not a reason to refuse. */
	snprintf(longv, sizeof(longv), "qemu|-name|process=%0300d,guest=web", 0);
	assert_int_equal(parse(longv, name, why), 1);
	assert_string_equal(name, "web");
	/* Longer than a VM name may be: refused with the limit, never cut. */
	snprintf(longv, sizeof(longv), "qemu|-name|%0300d", 0);
	assert_int_equal(parse(longv, name, why), -EINVAL);
	assert_non_null(strstr(why, "longer than"));
	/* A command line cut in the middle of the value (no NUL): no option there. */
	{
		static const char cut[] = { 'q', 0, '-', 'n', 'a', 'm', 'e', 0, 'w', 'e', 'b' };

		assert_int_equal(ks_qemu_name_parse(cut, sizeof(cut), name, sizeof(name), why,
						    sizeof(why)), 0);
	}
}

static void
test_guest_name_of_pid(void **state)
{
	char name[KVMSTATS_VM_NAME_MAX + 1], why[160];

	(void)state;
	/* This test runs without -name; a process that is gone has no name either. */
	assert_int_equal(ks_qemu_name_of_pid(getpid(), name, sizeof(name), why, sizeof(why)), 0);
	assert_int_equal(ks_qemu_name_of_pid(0x7ffffff0, name, sizeof(name), why, sizeof(why)),
			 0);
}

/* ---- a scripted QMP server ------------------------------------------- */

struct script {
	char path[108];
	int listen_fd;
	const char *greeting;		/* NULL: say nothing at all */
	const char *caps_reply;		/* to qmp_capabilities */
	const char *cpus_reply;		/* to query-cpus-fast */
	char seen[2048];		/* what the client sent */
	pthread_t thread;
};

static bool
read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);

		if (r <= 0)
			return false;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return true;
}

static void
say(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t w = send(fd, s + off, len - off, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static void *
serve(void *arg)
{
	struct script *sc = arg;
	char line[512];
	int c = accept(sc->listen_fd, NULL, NULL);

	if (c < 0)
		return NULL;
	if (sc->greeting == NULL) {
		/* Silent: hold the connection until the client gives up and closes. */
		while (read(c, line, sizeof(line)) > 0)
			;
		close(c);
		return NULL;
	}
	say(c, sc->greeting);
	if (read_line(c, line, sizeof(line))) {
		strncat(sc->seen, line, sizeof(sc->seen) - strlen(sc->seen) - 1);
		say(c, sc->caps_reply);
	}
	if (read_line(c, line, sizeof(line))) {
		strncat(sc->seen, line, sizeof(sc->seen) - strlen(sc->seen) - 1);
		say(c, sc->cpus_reply);
	}
	/* An empty reply stands for a QEMU that closes the connection instead. */
	while (sc->cpus_reply[0] != '\0' && read(c, line, sizeof(line)) > 0)
		;
	close(c);
	return NULL;
}

static void
script_start(struct script *sc)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static unsigned seq;

	snprintf(sc->path, sizeof(sc->path), "/tmp/ks-qmp-test.%d.%u", (int)getpid(), seq++);
	unlink(sc->path);
	strcpy(sa.sun_path, sc->path);
	sc->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sc->listen_fd >= 0);
	assert_int_equal(bind(sc->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(sc->listen_fd, 4), 0);
	assert_int_equal(pthread_create(&sc->thread, NULL, serve, sc), 0);
}

static void
script_stop(struct script *sc)
{
	pthread_join(sc->thread, NULL);
	close(sc->listen_fd);
	unlink(sc->path);
}

#define GREETING	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, " \
			"\"major\": 7}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define CAPS_OK		"{\"return\": {}, \"id\": \"ks-1\"}\r\n"
#define CPU(tid, idx, qom) \
	"{\"thread-id\": " #tid ", \"props\": {\"core-id\": 0}, \"qom-path\": \"" qom "\", " \
	"\"cpu-index\": " #idx ", \"target\": \"x86_64\"}"
#define CPUS_OK	"{\"return\": [" CPU(4711, 0, "/machine/unattached/device[0]") ", " \
		CPU(4712, 1, "/machine/unattached/device[2]") ", " \
		CPU(4790, 2, "/machine/peripheral/cpu2") "], \"id\": \"ks-2\"}\r\n"

/* Run one exchange against @sc; the result and the cpus. */
static int
ask(struct script *sc, pid_t expect, unsigned timeout_ms, int cancel_fd,
    struct ks_qemu_cpus *cpus, struct kvmstats_error *err)
{
	int r;

	script_start(sc);
	r = ks_qemu_query_cpus(sc->path, expect, timeout_ms, cancel_fd, cpus, err);
	/* The server reads until we close: joining it needs our side closed, which it is. */
	script_stop(sc);
	return r;
}

static void
test_qmp_cpus(void **state)
{
	struct script sc = { .greeting = GREETING, .caps_reply = CAPS_OK, .cpus_reply = CPUS_OK };
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;

	(void)state;
	assert_int_equal(ask(&sc, getpid(), 2000, -1, &cpus, &err), 0);
	assert_int_equal(cpus.n, 3);
	assert_string_equal(ks_qemu_qom_of_tid(&cpus, 4712), "/machine/unattached/device[2]");
	assert_string_equal(ks_qemu_qom_of_id(&cpus, "kvm-4790/vcpu-2"), "/machine/peripheral/cpu2");
	assert_string_equal(ks_qemu_qom_of_id(&cpus, "kvm-4711/vcpu-0"),
			    "/machine/unattached/device[0]");
	assert_null(ks_qemu_qom_of_id(&cpus, "kvm-4711"));		/* a VM's id */
	assert_null(ks_qemu_qom_of_id(&cpus, "kvm-9999/vcpu-0"));	/* unknown thread */
	assert_null(ks_qemu_qom_of_id(&cpus, "kvm-+4711/vcpu-0"));
	assert_null(ks_qemu_qom_of_id(&cpus, "kvm-4711x/vcpu-0"));
	assert_null(ks_qemu_qom_of_id(&cpus, "other"));
	assert_int_equal(cpus.v[2].cpu_index, 2);
	/* We negotiated, then asked, each with its id. */
	assert_non_null(strstr(sc.seen, "\"qmp_capabilities\", \"id\": \"ks-1\""));
	assert_non_null(strstr(sc.seen, "\"query-cpus-fast\", \"id\": \"ks-2\""));
	ks_qemu_cpus_clear(&cpus);
}

static void
test_qmp_events_skipped(void **state)
{
	struct script sc = {
		.greeting = GREETING,
		.caps_reply = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
			      "\"event\": \"RESUME\"}\r\n" CAPS_OK,
		.cpus_reply = "{\"event\": \"STOP\"}\n" CPUS_OK,
	};
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;

	(void)state;
	assert_int_equal(ask(&sc, 0, 2000, -1, &cpus, &err), 0);
	assert_int_equal(cpus.n, 3);
	ks_qemu_cpus_clear(&cpus);
}

/* Each bad answer, and a word the caller's message must hold. */
static void
test_qmp_bad_answers(void **state)
{
	static const struct {
		const char *greeting, *caps, *cpus;
		int code;
		const char *says;
	} cases[] = {
		{ "(qemu) \r\n", CAPS_OK, CPUS_OK, -EPROTO, "-monitor" },	/* an HMP monitor */
		{ "{\"hello\": 1}\n", CAPS_OK, CPUS_OK, -EPROTO, "greeting" },
		{ GREETING, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}, "
		  "\"id\": \"ks-1\"}\n", CPUS_OK, -EPROTO, "nope" },
		{ GREETING, "{\"return\": {}, \"id\": \"other\"}\n", CPUS_OK, -EPROTO, "did not send" },
		{ GREETING, CAPS_OK, "{\"return\": {\"x\": 1}, \"id\": \"ks-2\"}\n", -EPROTO, "list" },
		{ GREETING, CAPS_OK, "{\"return\": [{\"thread-id\": 1}], \"id\": \"ks-2\"}\n",
		  -EPROTO, "qom-path" },
		{ GREETING, CAPS_OK, "{\"return\": [" CPU(-5, 0, "/a") "], \"id\": \"ks-2\"}\n",
		  -EPROTO, "thread-id" },
		{ GREETING, CAPS_OK, "{\"return\": [" CPU(5, 0, "/a\\u001b[2J") "], \"id\": \"ks-2\"}\n",
		  -EPROTO, "printable" },
		{ GREETING, CAPS_OK, "{\"return\": [" CPU(5, 0, "/a\\u0000b") "], \"id\": \"ks-2\"}\n",
		  -EPROTO, "JSON" },						/* a NUL: refused as JSON */
		{ GREETING, CAPS_OK, "{\"return\": [" CPU(5, 0, "") "], \"id\": \"ks-2\"}\n",
		  -EPROTO, "empty" },
		{ GREETING, CAPS_OK, "{\"return\": [], \"id\": \"ks-2\", \"id\": \"ks-2\"}\n",
		  -EPROTO, "JSON" },						/* duplicate keys */
		{ GREETING, CAPS_OK, "", -ECONNRESET, "closed" },
	};
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct script sc = {
			.greeting = cases[i].greeting, .caps_reply = cases[i].caps,
			.cpus_reply = cases[i].cpus,
		};
		int r = ask(&sc, 0, 2000, -1, &cpus, &err);

		if (r != cases[i].code || strstr(err.msg, cases[i].says) == NULL)
			fail_msg("case %zu: got %d \"%s\", want %d saying %s", i, r,
				 r < 0 ? err.msg : "", cases[i].code, cases[i].says);
		assert_null(cpus.v);
	}
}

static void
test_qmp_long_qom_path(void **state)
{
	char reply[1024], qom[KS_QEMU_QOM_MAX + 2];
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;
	struct script sc = { .greeting = GREETING, .caps_reply = CAPS_OK, .cpus_reply = reply };

	(void)state;
	memset(qom, 'x', sizeof(qom) - 1);
	qom[sizeof(qom) - 1] = '\0';
	snprintf(reply, sizeof(reply), "{\"return\": [{\"thread-id\": 5, \"cpu-index\": 0, "
		 "\"qom-path\": \"%s\"}], \"id\": \"ks-2\"}\n", qom);
	assert_int_equal(ask(&sc, 0, 2000, -1, &cpus, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "over"));
}

static void
test_qmp_waits_are_bounded(void **state)
{
	struct script silent = { .greeting = NULL };
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;
	uint64_t one = 1;
	int cancel = eventfd(0, EFD_CLOEXEC);

	(void)state;
	/* A QEMU that never answers: the deadline ends the wait. */
	assert_int_equal(ask(&silent, 0, 200, -1, &cpus, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "in time"));
	/* The caller going away ends it at once, whatever the deadline. */
	assert_int_equal(write(cancel, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_int_equal(ask(&silent, 0, 600000, cancel, &cpus, &err), -ECANCELED);
	close(cancel);
}

/* A monitor whose backlog is full (QEMU's main loop not accepting): waited for, then said. */
static void
test_qmp_backlog_full(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;
	int l, c[8], n = 0, r;

	(void)state;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/ks-qmp-full.%d", (int)getpid());
	unlink(sa.sun_path);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 0), 0);
	/* Fill the backlog: connects that nobody accepts, until one would block. */
	while (n < 8) {
		c[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (connect(c[n], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(c[n]);
			break;
		}
		n++;
	}
	assert_true(n < 8);		/* the backlog is full now */
	r = ks_qemu_query_cpus(sa.sun_path, 0, 300, -1, &cpus, &err);
	assert_int_equal(r, -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "accepts no connection"));
	while (n > 0)
		close(c[--n]);
	close(l);
	unlink(sa.sun_path);
}

static void
test_qmp_who_serves(void **state)
{
	struct script sc = { .greeting = GREETING, .caps_reply = CAPS_OK, .cpus_reply = CPUS_OK };
	struct ks_qemu_cpus cpus;
	struct kvmstats_error err;
	int r;

	(void)state;
	/* Served by this process, not by process 1: another VM's names are never taken. */
	assert_int_equal(ask(&sc, 1, 2000, -1, &cpus, &err), -EPERM);
	assert_non_null(strstr(err.msg, "not by the VMM 1"));
	/* Nobody there: what to start QEMU with. */
	r = ks_qemu_query_cpus("/nonexistent/qmp.sock", 0, 200, -1, &cpus, &err);
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(err.msg, "-qmp unix:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_name),
		cmocka_unit_test(test_guest_name_of_pid),
		cmocka_unit_test(test_qmp_cpus),
		cmocka_unit_test(test_qmp_events_skipped),
		cmocka_unit_test(test_qmp_bad_answers),
		cmocka_unit_test(test_qmp_long_qom_path),
		cmocka_unit_test(test_qmp_waits_are_bounded),
		cmocka_unit_test(test_qmp_backlog_full),
		cmocka_unit_test(test_qmp_who_serves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
