/* SPDX-License-Identifier: MIT */
/*
 * ks_sigbus.c - the registry of segment mappings and the SIGBUS handler
 * (ks_sigbus.h).
 *
 * The registry is a list of fixed chunks of entries that only grows: the
 * handler walks it without a lock (it may run in any thread at any time,
 * and async-signal-safe code cannot take one), so nothing it can reach is
 * ever freed.  Memory is bounded by the most mappings guarded at once.
 * Guarding and unguarding take a mutex among themselves.
 *
 * An entry is in use while its base is not 0.  The guard stores len,
 * writable and flag, then base with a release store; the handler loads
 * base with an acquire load before the rest (pairs with that store), so it
 * never sees a base without its length.  Unguarding stores base 0 before
 * the caller unmaps; a fault in a mapping that is being unmapped
 * meanwhile would be the caller's use-after-unmap, not a race here.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ks_sigbus.h"

#define CHUNK_ENTRIES	64

struct ks_bus_guard {
	_Atomic uintptr_t base;			/* 0: free */
	size_t len;
	bool writable;
	atomic_bool *faulted;
};

struct chunk {
	struct ks_bus_guard e[CHUNK_ENTRIES];
	_Atomic(struct chunk *) next;
};

static struct chunk first_chunk;
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;				/* under guard_lock */
static struct sigaction previous;		/* written before the handler is installed */
static _Atomic uint64_t faults;

static struct ks_bus_guard *
find(uintptr_t addr)
{
	for (struct chunk *c = &first_chunk; c != NULL;
	     c = atomic_load_explicit(&c->next, memory_order_acquire)) {
		for (unsigned i = 0; i < CHUNK_ENTRIES; i++) {
			struct ks_bus_guard *g = &c->e[i];
			/* Pairs with the release store in ks_bus_guard(). */
			uintptr_t base = atomic_load_explicit(&g->base, memory_order_acquire);

			if (base != 0 && addr >= base && addr - base < g->len)
				return g;
		}
	}
	return NULL;
}

/* Not ours: what would have happened without us. */
static void
chain(int sig, siginfo_t *si, void *uc)
{
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, si, uc);
	} else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
		/*
		 * Put the old disposition back and return: the faulting
		 * instruction runs again and the kernel delivers SIGBUS with
		 * it, killing the process (with a core) as it would have.
		 */
		sigaction(SIGBUS, &previous, NULL);
	} else {
		previous.sa_handler(sig);
	}
}

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	struct ks_bus_guard *g = NULL;

	/* BUS_ADRERR: a page beyond the end of the mapped file. */
	if (si->si_code == BUS_ADRERR)
		g = find((uintptr_t)si->si_addr);
	if (g != NULL) {
		uintptr_t base = atomic_load_explicit(&g->base, memory_order_relaxed);
		int prot = PROT_READ | (g->writable ? PROT_WRITE : 0);

		/* mmap(2) is a plain system call: safe in a signal handler on Linux. */
		if (mmap((void *)base, g->len, prot, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0) != MAP_FAILED) {
			atomic_store_explicit(g->faulted, true, memory_order_relaxed);
			atomic_fetch_add_explicit(&faults, 1, memory_order_relaxed);
			errno = saved;
			return;
		}
	}
	chain(sig, si, uc);
	errno = saved;
}

/* Under guard_lock. */
static int
install(void)
{
	struct sigaction sa;

	if (installed)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	/* SA_ONSTACK: a thread that set up an alternate stack keeps using it. */
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &previous) < 0)
		return -errno;
	installed = true;
	return 0;
}

/* Under guard_lock: a free entry, growing the list if need be. */
static struct ks_bus_guard *
free_entry(void)
{
	struct chunk *c = &first_chunk, *next;

	for (;;) {
		for (unsigned i = 0; i < CHUNK_ENTRIES; i++)
			if (atomic_load_explicit(&c->e[i].base, memory_order_relaxed) == 0)
				return &c->e[i];
		next = atomic_load_explicit(&c->next, memory_order_relaxed);
		if (next == NULL)
			break;
		c = next;
	}
	next = calloc(1, sizeof(*next));
	if (next == NULL)
		return NULL;
	/* Release: the handler finds a zeroed chunk.  Pairs with the acquire in find(). */
	atomic_store_explicit(&c->next, next, memory_order_release);
	return &next->e[0];
}

int
ks_bus_guard(void *base, size_t len, bool writable, atomic_bool *faulted,
	     struct ks_bus_guard **out)
{
	struct ks_bus_guard *g;
	int rc;

	if (base == NULL || len == 0 || faulted == NULL)
		return -EINVAL;
	pthread_mutex_lock(&guard_lock);
	rc = install();
	g = rc == 0 ? free_entry() : NULL;
	if (rc == 0 && g == NULL)
		rc = -ENOMEM;
	if (g != NULL) {
		g->len = len;
		g->writable = writable;
		g->faulted = faulted;
		/*
		 * Release: len, writable and faulted are set before a handler
		 * can see the entry.  Pairs with the acquire load in find().
		 */
		atomic_store_explicit(&g->base, (uintptr_t)base, memory_order_release);
	}
	pthread_mutex_unlock(&guard_lock);
	*out = g;
	return rc;
}

void
ks_bus_unguard(struct ks_bus_guard **gp)
{
	struct ks_bus_guard *g = *gp;

	if (g == NULL)
		return;
	*gp = NULL;
	pthread_mutex_lock(&guard_lock);
	atomic_store_explicit(&g->base, 0, memory_order_relaxed);
	pthread_mutex_unlock(&guard_lock);
}

uint64_t
ks_bus_faults(void)
{
	return atomic_load_explicit(&faults, memory_order_relaxed);
}

void
ks_bus_allow(void)
{
	sigset_t bus;

	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
}
