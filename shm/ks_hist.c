/* SPDX-License-Identifier: MIT */
/* ks_hist.c - which values a bucket of a KVM histogram holds. */
#include "ks_hist.h"

bool
ks_hist_bounds(bool linear, uint32_t size, uint32_t bucket_size, uint32_t i, uint64_t *lo,
	       uint64_t *hi)
{
	bool last = i + 1 == size;

	if (i >= size)
		return false;
	if (linear) {
		if (bucket_size == 0 || (uint64_t)i > UINT64_MAX / bucket_size)
			return false;
		*lo = (uint64_t)i * bucket_size;
		if (!last && (uint64_t)(i + 1) > UINT64_MAX / bucket_size)
			return false;
		*hi = last ? UINT64_MAX : (uint64_t)(i + 1) * bucket_size - 1;
		return true;
	}
	if (i > 64)
		return false;		/* no 64-bit value lands there */
	*lo = i == 0 ? 0 : UINT64_C(1) << (i - 1);
	*hi = last ? UINT64_MAX : i == 0 ? 0 : i == 64 ? UINT64_MAX : (UINT64_C(1) << i) - 1;
	return true;
}
