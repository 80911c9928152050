/* SPDX-License-Identifier: MIT */
/*
 * ks_sanitizers.h - which sanitizer this translation unit is built with.
 *
 * GCC says so with __SANITIZE_*__, clang with __has_feature(); one place
 * asks both.  KS_ASAN and KS_TSAN are 1 or 0.
 */
#ifndef KVMSTATS_SHM_KS_SANITIZERS_H
#define KVMSTATS_SHM_KS_SANITIZERS_H

#if defined(__SANITIZE_ADDRESS__)
#define KS_ASAN		1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KS_ASAN		1
#endif
#endif
#ifndef KS_ASAN
#define KS_ASAN		0
#endif

#if defined(__SANITIZE_THREAD__)
#define KS_TSAN		1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KS_TSAN		1
#endif
#endif
#ifndef KS_TSAN
#define KS_TSAN		0
#endif

#endif /* KVMSTATS_SHM_KS_SANITIZERS_H */
