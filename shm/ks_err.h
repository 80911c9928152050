/* SPDX-License-Identifier: MIT */
/* ks_err.h - filling a struct kvmstats_error; shared by publisher and reader. */
#ifndef KVMSTATS_SHM_KS_ERR_H
#define KVMSTATS_SHM_KS_ERR_H

#include "kvmstats/types.h"

/*
 * ks_err() - record an error and return its code, so call sites read
 * "return ks_err(err, -EINVAL, "...", ...);".  @err may be NULL.  @code is
 * a negative errno value.
 */
int ks_err(struct kvmstats_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ks_err_clear() - reset @err to "no error" (@err may be NULL). */
void ks_err_clear(struct kvmstats_error *err);

#endif /* KVMSTATS_SHM_KS_ERR_H */
