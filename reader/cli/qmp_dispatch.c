/* SPDX-License-Identifier: MIT */
/*
 * qmp_dispatch.c - a QMP request's envelope: parse, check, find the
 * command, reply (qmp_dispatch.h).  The checks and their order are
 * QEMU's (qmp_dispatch_check_obj(), do_qmp_dispatch()); their messages
 * are QEMU's, so that clients that match on them keep working.
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "qmp_commands.h"
#include "qmp_dispatch.h"

void
ks_qmp_session_init(struct ks_qmp_session *s, const struct ks_qmp_source *src)
{
	s->negotiated = false;
	s->src = src;
}

void
ks_qmp_greeting(FILE *out)
{
	struct ks_json j;

	ks_json_init_compact(&j, out);
	ks_json_begin_object(&j);
	ks_json_key(&j, "QMP");
	ks_json_begin_object(&j);
	ks_json_key(&j, "version");
	ks_json_begin_object(&j);
	ks_json_key(&j, "qemu");
	ks_json_begin_object(&j);
	ks_json_kv_i64(&j, "major", KS_QMP_QEMU_MAJOR);
	ks_json_kv_i64(&j, "minor", KS_QMP_QEMU_MINOR);
	ks_json_kv_i64(&j, "micro", KS_QMP_QEMU_MICRO);
	ks_json_end_object(&j);
	ks_json_kv_string(&j, "package", "kvmstats " KS_VERSION);
	ks_json_end_object(&j);
	ks_json_key(&j, "capabilities");
	ks_json_begin_array(&j);	/* no "oob": one thread answers in order */
	ks_json_end_array(&j);
	ks_json_end_object(&j);
	ks_json_end_object(&j);
	fputs("\r\n", out);
}

/* Any JSON value the client sent (an "id"), written back as it came. */
static void
write_value(struct ks_json *j, json_t *v)
{
	const char *key;
	json_t *m;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		ks_json_begin_object(j);
		json_object_foreach(v, key, m) {
			ks_json_key(j, key);
			write_value(j, m);
		}
		ks_json_end_object(j);
		break;
	case JSON_ARRAY:
		ks_json_begin_array(j);
		json_array_foreach(v, i, m)
			write_value(j, m);
		ks_json_end_array(j);
		break;
	case JSON_STRING:
		ks_json_string(j, json_string_value(v));
		break;
	case JSON_INTEGER:
		ks_json_i64(j, json_integer_value(v));
		break;
	case JSON_REAL:
		ks_json_double(j, json_real_value(v));
		break;
	case JSON_TRUE:
		ks_json_bool(j, true);
		break;
	case JSON_FALSE:
		ks_json_bool(j, false);
		break;
	default:
		ks_json_null(j);
		break;
	}
}

static void
write_error_member(struct ks_json *j, const char *cls, const char *desc)
{
	ks_json_key(j, "error");
	ks_json_begin_object(j);
	ks_json_kv_string(j, "class", cls);
	ks_json_kv_string(j, "desc", desc);
	ks_json_end_object(j);
}

/* A reply: "return" (@ret, already JSON text) or "error", then the request's id. */
static void
reply(FILE *out, const char *ret, size_t ret_len, const struct ks_qmp_err *e, json_t *id)
{
	struct ks_json j;

	ks_json_init_compact(&j, out);
	ks_json_begin_object(&j);
	if (e) {
		write_error_member(&j, e->cls, e->desc);
	} else {
		ks_json_key(&j, "return");
		fwrite(ret, 1, ret_len, out);
		j.after_key = false;	/* the value was written past the writer */
	}
	if (id) {
		ks_json_key(&j, "id");
		write_value(&j, id);
	}
	ks_json_end_object(&j);
	fputs("\r\n", out);
}

void
ks_qmp_error(FILE *out, const char *cls, const char *desc)
{
	struct ks_qmp_err e = { .cls = cls };

	snprintf(e.desc, sizeof(e.desc), "%s", desc);
	reply(out, NULL, 0, &e, NULL);
}

/* The envelope's members, in the order the client sent them, as QEMU checks them. */
static bool
check_envelope(json_t *req, struct ks_qmp_err *e)
{
	bool have_execute = false;
	const char *key;
	json_t *v;

	json_object_foreach(req, key, v) {
		if (strcmp(key, "execute") == 0) {
			if (!json_is_string(v))
				return ks_qmp_fail(e, "QMP input member 'execute' must be a string");
			have_execute = true;
		} else if (strcmp(key, "arguments") == 0) {
			if (!json_is_object(v))
				return ks_qmp_fail(e, "QMP input member 'arguments' must be an object");
		} else if (strcmp(key, "id") != 0) {
			/* "exec-oob" too: out-of-band is not offered, so it is unknown. */
			return ks_qmp_fail(e, "QMP input member '%s' is unexpected", key);
		}
	}
	if (!have_execute)
		return ks_qmp_fail(e, "QMP input lacks member 'execute'");
	return true;
}

/* Run @cmd, its return value into a buffer, so that an error can still replace it. */
static void
run(struct ks_qmp_session *s, const struct ks_qmp_command *cmd, json_t *args, json_t *id,
    FILE *out)
{
	struct ks_qmp_err e = { 0 };
	struct ks_json j;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	bool ok;

	if (!mem) {
		ks_qmp_fail(&e, "Out of memory");
		reply(out, NULL, 0, &e, id);
		return;
	}
	ks_json_init_compact(&j, mem);
	ok = cmd->run(s, args, &j, &e);
	if (fclose(mem) != 0 && ok)
		ok = ks_qmp_fail(&e, "Out of memory");
	reply(out, buf, len, ok ? NULL : &e, id);
	free(buf);
}

void
ks_qmp_handle(struct ks_qmp_session *s, const char *msg, size_t len, FILE *out)
{
	struct ks_qmp_err e = { 0 };
	const struct ks_qmp_command *cmd;
	json_error_t jerr;
	json_t *req, *args, *id, *empty = NULL;
	const char *name;

	req = json_loadb(msg, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		ks_qmp_fail(&e, "JSON parse error, %s", jerr.text);
		reply(out, NULL, 0, &e, NULL);
		return;
	}
	if (!json_is_object(req)) {
		ks_qmp_fail(&e, "QMP input must be a JSON object");
		reply(out, NULL, 0, &e, NULL);
		json_decref(req);
		return;
	}
	id = json_object_get(req, "id");
	if (!check_envelope(req, &e)) {
		reply(out, NULL, 0, &e, id);
		json_decref(req);
		return;
	}
	name = json_string_value(json_object_get(req, "execute"));
	cmd = ks_qmp_find_command(name, s->negotiated);
	if (cmd == NULL) {
		e.cls = "CommandNotFound";
		if (s->negotiated)
			snprintf(e.desc, sizeof(e.desc), "The command %s has not been found", name);
		else
			snprintf(e.desc, sizeof(e.desc), "Expecting capabilities negotiation "
				 "with 'qmp_capabilities'");
		reply(out, NULL, 0, &e, id);
		json_decref(req);
		return;
	}
	args = json_object_get(req, "arguments");
	if (!args)
		args = empty = json_object();
	if (args)
		run(s, cmd, args, id, out);
	else
		ks_qmp_error(out, "GenericError", "Out of memory");
	json_decref(empty);
	json_decref(req);
}
