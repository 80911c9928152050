// SPDX-License-Identifier: MIT
/*
 * test_sched_internals.c - provider "sched" seen from inside
 * (publisher/sched/sched_source.c is compiled into this test): properties
 * that hold whatever the machine's timing, checked on the entries' own
 * state rather than by waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include <cmocka.h>

#include "../publisher/sched/sched_source.c"

/*
 * After a stall longer than the period (the publisher stopped, the host
 * overloaded), every late entry must keep its own phase: if they all get
 * now + period, they are all read in one sweep from then on and the
 * stagger is gone for good.
 */
static void
late_entries_keep_their_phase(void **state)
{
	enum { N = 8 };
	struct ks_sched_thread t[N];
	struct kvmstats_error err;
	struct ks_sched_vm *g;
	uint64_t now, phase[N];

	(void)state;
	for (unsigned i = 0; i < N; i++)
		t[i] = (struct ks_sched_thread) { .vcpu_index = i,
						  .tid = (pid_t)syscall(SYS_gettid) };
	assert_int_equal(ks_sched_vm_create(getpid(), 10, "vm-late", NULL, t, N, false, &g, &err), 0);
	for (unsigned i = 0; i < N; i++)
		phase[i] = g->e[i].due_ns % g->period_ns;
	/* Five periods late, as after a stall. */
	now = ks_mono_ns();
	for (unsigned i = 0; i < N; i++)
		g->e[i].due_ns = now - 5 * g->period_ns + (g->e[i].due_ns % g->period_ns) -
				 (now % g->period_ns);
	refresh(g, 1);
	for (unsigned i = 0; i < N; i++) {
		assert_true(g->e[i].due_ns > now);
		assert_true(g->e[i].due_ns <= now + g->period_ns + g->period_ns / 10);
	}
	for (unsigned i = 1; i < N; i++)
		assert_int_not_equal(g->e[i].due_ns, g->e[0].due_ns);
	/* Each its own phase as before, so the reads still spread over the period. */
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(g->e[i].due_ns % g->period_ns, phase[i]);
	ks_sched_vm_put(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(late_entries_keep_their_phase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
