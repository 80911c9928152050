/* SPDX-License-Identifier: MIT */
/*
 * qmp_args.c - QMP argument checks with QEMU's wording (qmp_args.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp_args.h"

bool
ks_qmp_fail(struct ks_qmp_err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->desc, sizeof(e->desc), fmt, ap);
	va_end(ap);
	e->cls = "GenericError";
	return false;
}

static bool
wrong_type(struct ks_qmp_err *e, const char *full, const char *expected)
{
	return ks_qmp_fail(e, "Invalid parameter type for '%s', expected: %s", full, expected);
}

bool
ks_qmp_arg_enum(json_t *obj, const char *name, const char *full,
		const char *const *values, bool required, int *out, struct ks_qmp_err *e)
{
	json_t *v = json_object_get(obj, name);
	const char *s;

	*out = -1;
	if (v == NULL)
		return required ? ks_qmp_fail(e, "Parameter '%s' is missing", full) : true;
	if (!json_is_string(v))
		return wrong_type(e, full, "string");
	s = json_string_value(v);
	for (int i = 0; values[i]; i++) {
		if (strcmp(values[i], s) == 0) {
			*out = i;
			return true;
		}
	}
	return ks_qmp_fail(e, "Parameter '%s' does not accept value '%s'", full, s);
}

bool
ks_qmp_arg_strlist(json_t *obj, const char *name, const char *full,
		   struct ks_strlist *l, struct ks_qmp_err *e)
{
	json_t *v = json_object_get(obj, name);
	size_t n;

	memset(l, 0, sizeof(*l));
	if (v == NULL)
		return true;
	if (!json_is_array(v))
		return wrong_type(e, full, "array");
	n = json_array_size(v);
	/* One spare element: calloc(0) may return NULL, an empty list may not. */
	l->items = calloc(n + 1, sizeof(*l->items));
	if (!l->items)
		return ks_qmp_fail(e, "Out of memory");
	l->present = true;
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(v, i);
		char elem[256];

		if (!json_is_string(item)) {
			snprintf(elem, sizeof(elem), "%s[%zu]", full, i);
			ks_strlist_free(l);
			return wrong_type(e, elem, "string");
		}
		/* jansson's strings are const; the filter only compares them. */
		l->items[l->n++] = (char *)json_string_value(item);
	}
	return true;
}

bool
ks_qmp_arg_unexpected(json_t *obj, const char *prefix, const char *const *known,
		      struct ks_qmp_err *e)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		bool ok = false;

		for (int i = 0; known[i] && !ok; i++)
			ok = strcmp(known[i], key) == 0;
		if (!ok)
			return ks_qmp_fail(e, "Parameter '%s%s' is unexpected", prefix, key);
	}
	return true;
}
