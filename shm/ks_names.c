/* SPDX-License-Identifier: MIT */
/* ks_names.c - the QMP spellings of the model's enums (qapi/stats.json). */
#include <stddef.h>

#include "kvmstats/reader.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const char *const kind_names[] = { "vm", "vcpu" };
static const char *const type_names[] = {
	"cumulative", "instant", "peak", "linear-histogram", "log2-histogram",
};
/* QMP has no unit for plain numbers: NONE has no name. */
static const char *const unit_names[] = { NULL, "bytes", "seconds", "cycles", "boolean" };
static const char *const state_names[] = {
	"building", "live", "ended", "superseded", "invalid",
};
static const char *const health_names[] = {
	"live", "stale", "dead", "ended", "superseded", "broken",
};

const char *
kvmstats_target_kind_name(unsigned kind)
{
	return kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : NULL;
}

const char *
kvmstats_type_name(unsigned type)
{
	return type < ARRAY_SIZE(type_names) ? type_names[type] : NULL;
}

const char *
kvmstats_unit_name(unsigned unit)
{
	return unit < ARRAY_SIZE(unit_names) ? unit_names[unit] : NULL;
}

const char *
kvmstats_state_name(unsigned state)
{
	return state < ARRAY_SIZE(state_names) ? state_names[state] : NULL;
}

const char *
kvmstats_health_name(unsigned health)
{
	return health < ARRAY_SIZE(health_names) ? health_names[health] : NULL;
}
