// SPDX-License-Identifier: MIT
/*
 * test_qmp.c - kvmstats qmp's framer and dispatcher, without sockets.
 *
 * The framer must cut a byte stream into exactly the messages a client
 * sent, however the bytes arrive; the dispatcher must answer each with
 * QEMU's shape and wording.  A synthetic VM (tests/lib/synth_vm.h) is
 * published into a private directory, so that query-stats values can be
 * checked against the values the VM is known to hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "engine.h"
#include "kvmstats/reader.h"
#include "log_capture.h"
#include "qmp_commands.h"
#include "qmp_dispatch.h"
#include "qmp_framer.h"
#include "shm_dir.h"
#include "synth_vm.h"

static char shm_dir[4096];

/* ---- the framer ------------------------------------------------------- */

/* Feed @in one byte at a time (the worst split); the messages, joined by '|'. */
static void
frame_bytewise(const char *in, char *out, size_t outlen)
{
	struct ks_qmp_framer fr;
	size_t len = strlen(in), pos = 0, start, end, used = 0;

	ks_qmp_framer_init(&fr);
	out[0] = '\0';
	for (size_t avail = 1; avail <= len; avail++) {
		while (ks_qmp_framer_next(&fr, in, avail, &pos, &start, &end))
			used += (size_t)snprintf(out + used, outlen - used, "%s%.*s",
						 used ? "|" : "", (int)(end - start), in + start);
	}
}

static void
test_framer(void **state)
{
	char out[512];

	(void)state;
	frame_bytewise("{\"a\": 1}{\"b\": [1, {}]}  \r\n{}", out, sizeof(out));
	assert_string_equal(out, "{\"a\": 1}|{\"b\": [1, {}]}|{}");
	frame_bytewise("{\"s\": \"}{\\\"]\"} [1]", out, sizeof(out));
	assert_string_equal(out, "{\"s\": \"}{\\\"]\"}|[1]");
	/* Bare scalars end at white space or punctuation; stray closers stand alone. */
	frame_bytewise("true 12{} ] , \"x\" ", out, sizeof(out));
	assert_string_equal(out, "true|12|{}|]|,|\"x\"");
	/* A control character ends an unclosed message, so that the stream recovers. */
	frame_bytewise("[1, \x01{\"ok\": 1}", out, sizeof(out));
	assert_string_equal(out, "[1, \x01|{\"ok\": 1}");
	frame_bytewise("{\"a\": \"no end\n{}", out, sizeof(out));
	assert_string_equal(out, "{\"a\": \"no end\n|{}");
}

static void
test_framer_depth(void **state)
{
	struct ks_qmp_framer fr;
	char deep[KS_QMP_MAX_DEPTH + 2];
	size_t pos = 0, start, end;

	(void)state;
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	ks_qmp_framer_init(&fr);
	assert_false(ks_qmp_framer_next(&fr, deep, strlen(deep), &pos, &start, &end));
	assert_true(fr.too_deep);
	assert_int_equal(ks_qmp_framer_pending(&fr, pos), 0);
}

/* ---- the dispatcher --------------------------------------------------- */

struct fake {
	struct kvmstats_segment *seg;	/* NULL: the VM "is gone" */
};

static int
fake_get(void *arg, bool values, const struct kvmstats_segment **seg, uint64_t **cut,
	 char *why, size_t len)
{
	struct fake *f = arg;
	size_t n;

	if (!f->seg) {
		snprintf(why, len, "VM 'fake' has ended: its publisher marked the segment ended");
		return -1;
	}
	*seg = f->seg;
	if (values) {
		n = kvmstats_cut_words(f->seg);
		*cut = calloc(n + 1, sizeof(**cut));
		assert_non_null(*cut);
		assert_int_equal(kvmstats_read_cut(f->seg, *cut, n, NULL), 0);
	}
	return 0;
}

static struct fake fake;
static const struct ks_qmp_source fake_src = { fake_get, &fake };
static struct ks_engine *engine;

/* One request, one reply, parsed (json_decref() it). */
static json_t *
ask(struct ks_qmp_session *s, const char *req)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_error_t err;
	json_t *r;

	assert_non_null(f);
	ks_qmp_handle(s, req, strlen(req), f);
	assert_int_equal(fclose(f), 0);
	/* Exactly one line, ended by CR LF, as QEMU frames replies. */
	assert_true(len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n');
	assert_null(memchr(buf, '\n', len - 1));
	r = json_loadb(buf, len, 0, &err);
	if (!r)
		fail_msg("reply is not JSON: %s: %s", err.text, buf);
	free(buf);
	return r;
}

static void
assert_error(json_t *r, const char *cls, const char *desc)
{
	json_t *e = json_object_get(r, "error");

	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
	assert_string_equal(json_string_value(json_object_get(e, "desc")), desc);
	json_decref(r);
}

static void
negotiated(struct ks_qmp_session *s)
{
	json_t *r;

	ks_qmp_session_init(s, &fake_src);
	r = ask(s, "{\"execute\": \"qmp_capabilities\"}");
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
}

static void
test_greeting(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	ks_qmp_greeting(f);
	fclose(f);
	assert_string_equal(buf, "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 8, \"minor\": 0, "
			    "\"micro\": 0}, \"package\": \"kvmstats " KS_VERSION "\"}, "
			    "\"capabilities\": []}}\r\n");
	free(buf);
}

static void
test_negotiation(void **state)
{
	struct ks_qmp_session s;
	json_t *r;

	(void)state;
	ks_qmp_session_init(&s, &fake_src);
	assert_error(ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vm\"}}"),
		     "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	r = ask(&s, "{\"execute\": \"query-commands\"}");
	assert_error(r, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	assert_error(ask(&s, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\", \"oob\"]}}"),
		     "GenericError", "Capability oob, oob not available");
	assert_false(s.negotiated);
	r = ask(&s, "{\"id\": \"n\", \"execute\": \"qmp_capabilities\"}");
	assert_string_equal(json_string_value(json_object_get(r, "id")), "n");
	assert_int_equal(json_object_size(json_object_get(r, "return")), 0);
	json_decref(r);
	assert_true(s.negotiated);
	assert_error(ask(&s, "{\"execute\": \"qmp_capabilities\"}"), "CommandNotFound",
		     "Capabilities negotiation is already complete, command ignored");
	assert_error(ask(&s, "{\"execute\": \"quit\"}"), "CommandNotFound",
		     "The command quit has not been found");
}

static void
test_envelope(void **state)
{
	struct ks_qmp_session s;
	json_t *r;

	(void)state;
	negotiated(&s);
	assert_error(ask(&s, "[]"), "GenericError", "QMP input must be a JSON object");
	assert_error(ask(&s, "{}"), "GenericError", "QMP input lacks member 'execute'");
	assert_error(ask(&s, "{\"execute\": []}"), "GenericError",
		     "QMP input member 'execute' must be a string");
	assert_error(ask(&s, "{\"execute\": \"query-version\", \"arguments\": 1}"), "GenericError",
		     "QMP input member 'arguments' must be an object");
	assert_error(ask(&s, "{\"exec-oob\": \"query-version\"}"), "GenericError",
		     "QMP input member 'exec-oob' is unexpected");
	r = ask(&s, "{\"execute\": \"query-version\", \"id\": {\"deep\": [[[1]]], \"big\": 9007199254740993}}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "id"), "big")),
			 9007199254740993LL);
	json_decref(r);
	r = ask(&s, "{\"execute\": \"query-version\", \"execute\": \"x\"}");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"),
								  "desc")), "JSON parse error, "));
	json_decref(r);
}

/* The first value of stat @name of result @i of a query-stats reply. */
static json_t *
value_of(json_t *r, size_t i, const char *name)
{
	json_t *stats = json_object_get(json_array_get(json_object_get(r, "return"), i), "stats");
	size_t k;
	json_t *st;

	json_array_foreach(stats, k, st)
		if (strcmp(json_string_value(json_object_get(st, "name")), name) == 0)
			return json_object_get(st, "value");
	return NULL;
}

static void
test_query_stats(void **state)
{
	struct ks_qmp_session s;
	uint64_t sweep;
	json_t *r, *v;

	(void)state;
	negotiated(&s);
	assert_int_equal(ks_engine_sweep(engine), 0);
	{
		struct kvmstats_status st;

		kvmstats_status(fake.seg, &st);
		sweep = st.sweep;
	}
	r = ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vm\"}}");
	assert_int_equal(json_array_size(json_object_get(r, "return")), 1);
	assert_null(json_object_get(json_array_get(json_object_get(r, "return"), 0), "qom-path"));
	v = value_of(r, 0, "vm_c0");
	assert_non_null(v);
	/* Exact u64 through the writer: the synthetic value has bits above 2^53. */
	assert_true((uint64_t)json_integer_value(v) == synth_value(sweep, 0, 0));
	json_decref(r);
	r = ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vcpu\", "
		"\"vcpus\": [\"/machine/unattached/device[1]\", \"nope\"], "
		"\"providers\": [{\"provider\": \"kvm\", \"names\": [\"c1\", \"hist0\", \"zz\"]}]}}");
	assert_int_equal(json_array_size(json_object_get(r, "return")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(r, "return"), 0), "qom-path")), "/machine/unattached/device[1]");
	assert_true((uint64_t)json_integer_value(value_of(r, 0, "c1")) == synth_value(sweep, 2, 1));
	assert_int_equal(json_array_size(value_of(r, 0, "hist0")), SYNTH_HIST_BUCKETS);
	json_decref(r);
	r = ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vcpu\", \"vcpus\": []}}");
	assert_int_equal(json_array_size(json_object_get(r, "return")), 0);
	json_decref(r);
	assert_error(ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vm\", "
			 "\"providers\": [{\"provider\": \"kvm\", \"names\": [\"a\", {}]}]}}"),
		     "GenericError", "Invalid parameter type for 'providers[0].names[1]', expected: string");
	assert_error(ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"providers\": []}}"),
		     "GenericError", "Parameter 'target' is missing");
}

static void
test_vm_gone(void **state)
{
	struct kvmstats_segment *keep = fake.seg;
	struct ks_qmp_session s;

	(void)state;
	negotiated(&s);
	fake.seg = NULL;
	assert_error(ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vm\"}}"),
		     "GenericError", "VM 'fake' has ended: its publisher marked the segment ended");
	assert_error(ask(&s, "{\"execute\": \"query-cpus-fast\"}"), "GenericError",
		     "VM 'fake' has ended: its publisher marked the segment ended");
	/* Argument errors come first, as in QEMU: no VM needed to report them. */
	assert_error(ask(&s, "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"x\"}}"),
		     "GenericError", "Parameter 'target' does not accept value 'x'");
	fake.seg = keep;
}

static void
test_thread_id(void **state)
{
	(void)state;
	assert_int_equal(ks_qmp_thread_id("kvm-1234/vcpu-0"), 1234);
	assert_int_equal(ks_qmp_thread_id("kvm-77/vcpu-12"), 77);
	assert_int_equal(ks_qmp_thread_id("kvm-77/vcpu-"), 0);
	assert_int_equal(ks_qmp_thread_id("kvm-/vcpu-1"), 0);
	assert_int_equal(ks_qmp_thread_id("kvm-12x/vcpu-1"), 0);
	assert_int_equal(ks_qmp_thread_id("kvm-12/vcpu-1/x"), 0);
	assert_int_equal(ks_qmp_thread_id(""), 0);
	assert_int_equal(ks_qmp_thread_id("/machine/unattached/device[0]"), 0);
}

static int
setup(void **state)
{
	struct ks_engine_config cfg;
	struct kvmstats_attach_opts opts;
	struct kvmstats_error err = { 0 };
	struct synth_vm sv;

	(void)state;
	if (test_shm_dir(shm_dir, sizeof(shm_dir), "test_qmp") < 0)
		return -1;
	ks_engine_config_init(&cfg);
	cfg.log = log_capture_line;
	cfg.dir = shm_dir;
	if (ks_engine_create(&cfg, &engine, &err) < 0 || synth_vm_init(&sv, "qmp", 2, UINT32_MAX, 0) < 0)
		return -1;
	if (ks_engine_add_vm(engine, &sv.def, NULL, &err) < 0)
		return -1;
	synth_vm_clear(&sv);
	if (ks_engine_sweep(engine) < 0)
		return -1;
	kvmstats_attach_opts_init(&opts);
	opts.dir = shm_dir;
	return kvmstats_attach("qmp", &opts, &fake.seg, &err);
}

static int
teardown(void **state)
{
	(void)state;
	if (fake.seg)
		kvmstats_detach(&fake.seg);
	ks_engine_destroy(&engine);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framer),
		cmocka_unit_test(test_framer_depth),
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_query_stats),
		cmocka_unit_test(test_vm_gone),
		cmocka_unit_test(test_thread_id),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
