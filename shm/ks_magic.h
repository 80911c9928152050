/* SPDX-License-Identifier: MIT */
/*
 * ks_magic.h - handles that know what they are (the Varnish habit).
 *
 * Every object a public API hands out (a reader's segment, an embedded
 * publisher, one of its VMs) begins with a magic number: set when it is
 * made, cleared when it is freed.  Each entry point checks the handle it
 * is given before it trusts it.  A NULL, freed or foreign pointer there is
 * a bug in the calling program, not bad input, so the check aborts on the
 * spot with a message that names the function and the handle, instead of
 * reading or writing through it and failing later somewhere unrelated.
 * (A freed handle is caught as long as its memory was not reused for
 * another handle of the same kind.)  Cost: one load and one compare of a
 * line the call is about to read anyway.
 */
#ifndef KVMSTATS_SHM_KS_MAGIC_H
#define KVMSTATS_SHM_KS_MAGIC_H

#define KS_MAGIC_SEGMENT	0x4b535347u	/* "GSSK": struct kvmstats_segment */
#define KS_MAGIC_PUBLISHER	0x4b535055u	/* "UPSK": struct kvmstats_publisher */
#define KS_MAGIC_VM		0x4b53564du	/* "MVSK": struct kvmstats_vm */

/* Print "kvmstats: @fn: @p is not a @kind handle ..." to stderr and abort(). */
_Noreturn void ks_bad_handle(const char *fn, const char *kind, const void *p);

/* Abort unless @p points at a live object whose field magic is @m. */
#define KS_CHECK_HANDLE(p, m, kind)						\
	do {									\
		if (__builtin_expect((p) == NULL || (p)->magic != (m), 0))	\
			ks_bad_handle(__func__, (kind), (p));			\
	} while (0)

#endif /* KVMSTATS_SHM_KS_MAGIC_H */
