/* SPDX-License-Identifier: MIT */
/*
 * qmp_args.h - checking a QMP command's arguments as QEMU's QAPI input
 * visitor does: members in schema order, the first fault reported, with
 * the member's full name ("providers[0].names[2]") and QEMU's wording;
 * members nobody asked for are reported after the known ones.
 */
#ifndef KVMSTATS_CLI_QMP_ARGS_H
#define KVMSTATS_CLI_QMP_ARGS_H

#include <jansson.h>
#include <stdbool.h>

#include "filter.h"

/* A QMP error: its class ("GenericError", "CommandNotFound") and desc. */
struct ks_qmp_err {
	const char *cls;
	char desc[640];
};

/* Set @e to a GenericError.  Return: false, for "return ks_qmp_fail(...)". */
bool ks_qmp_fail(struct ks_qmp_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * ks_qmp_arg_enum() - member @name of @obj, full name @full, one of
 * @values (NULL-terminated).  @required: a missing one is an error;
 * else *@out is left at -1.  Return: false with @e set on a fault.
 */
bool ks_qmp_arg_enum(json_t *obj, const char *name, const char *full,
		     const char *const *values, bool required, int *out, struct ks_qmp_err *e);

/*
 * ks_qmp_arg_strlist() - optional member @name of @obj, a list of
 * strings, into @l (items point into @obj: keep it while @l is used;
 * free with ks_strlist_free()).  Missing: l->present is false.
 */
bool ks_qmp_arg_strlist(json_t *obj, const char *name, const char *full,
			struct ks_strlist *l, struct ks_qmp_err *e);

/*
 * ks_qmp_arg_unexpected() - the first member of @obj not in @known
 * (NULL-terminated), as "Parameter '<prefix><key>' is unexpected".
 * Return: false with @e set if there is one.
 */
bool ks_qmp_arg_unexpected(json_t *obj, const char *prefix, const char *const *known,
			   struct ks_qmp_err *e);

#endif /* KVMSTATS_CLI_QMP_ARGS_H */
