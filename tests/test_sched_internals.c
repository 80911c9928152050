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
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

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
	assert_int_equal(ks_sched_vm_create(getpid(), 10, "vm-late", NULL, t, N, false, &g, &err),
			 0);
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

/* A thread that has barely run, alive until its pipe is written. */
struct idle {
	pthread_t t;
	int pipe[2];
	_Atomic pid_t tid;
};

static void *
idle_main(void *arg)
{
	struct idle *w = arg;
	char c;

	atomic_store(&w->tid, (pid_t)syscall(SYS_gettid));
	(void)!read(w->pipe[0], &c, 1);
	return NULL;
}

static pid_t
idle_start(struct idle *w)
{
	assert_int_equal(pipe(w->pipe), 0);
	atomic_init(&w->tid, 0);
	assert_int_equal(pthread_create(&w->t, NULL, idle_main, w), 0);
	while (atomic_load(&w->tid) == 0)
		sched_yield();
	return atomic_load(&w->tid);
}

static void
idle_stop(struct idle *w)
{
	assert_int_equal(write(w->pipe[1], "x", 1), 1);
	pthread_join(w->t, NULL);
	close(w->pipe[0]);
	close(w->pipe[1]);
}

/* Read every entry now, as a sweep would once they are due. */
static void
read_all(struct ks_sched_vm *g, uint64_t sweep)
{
	for (uint32_t i = 0; i < g->nr; i++)
		g->e[i].due_ns = 0;
	refresh(g, sweep);
}

/*
 * vCPU 0 moves from this thread (which has run the whole test so far) to
 * one that has barely run: its cumulative values, and the VM's sums, must
 * not go back to the new thread's counters; from there they grow with it.
 */
static void
thread_change_keeps_counters_monotonic(void **state)
{
	struct ks_sched_thread t[2];
	struct kvmstats_error err;
	struct ks_sched_vm *g;
	struct idle a, b;
	uint64_t vcpu[KS_SCHED_VM_WORDS], sum[KS_SCHED_VM_WORDS];

	(void)state;
	t[0] = (struct ks_sched_thread) { .vcpu_index = 0, .tid = (pid_t)syscall(SYS_gettid) };
	t[1] = (struct ks_sched_thread) { .vcpu_index = 1, .tid = idle_start(&b) };
	assert_int_equal(ks_sched_vm_create(getpid(), 10, "vm-move", NULL, t, 2, false, &g, &err),
			 0);
	/* This thread has run the whole test: its counters are past a fresh thread's. */
	read_all(g, 1);
	memcpy(vcpu, g->e[0].val, sizeof(vcpu));
	memcpy(sum, g->sum, sizeof(sum));
	assert_int_equal(ks_sched_set_runner(g, 0, idle_start(&a)), 0);
	read_all(g, 2);
	assert_int_equal(g->e[0].val[W_THREAD_ID], (uint64_t)atomic_load(&a.tid));
	assert_int_equal(g->e[0].val[W_THREAD_RUNS], 1);
	/* At the switch the vCPU's values are its last ones, exactly; the VM's no less. */
	for (unsigned w = 0; w < KS_SCHED_VM_WORDS; w++) {
		if (g->e[0].val[w] != vcpu[w])
			fail_msg("vCPU 0 word %u went from %llu to %llu", w,
				 (unsigned long long)vcpu[w], (unsigned long long)g->e[0].val[w]);
		if (g->sum[w] < sum[w])
			fail_msg("the VM's word %u went back from %llu to %llu", w,
				 (unsigned long long)sum[w], (unsigned long long)g->sum[w]);
	}
	/* And back to this thread, whose counters are far above: no jump up either. */
	memcpy(vcpu, g->e[0].val, sizeof(vcpu));
	assert_int_equal(ks_sched_set_runner(g, 0, t[0].tid), 0);
	read_all(g, 3);
	for (unsigned w = 0; w < KS_SCHED_VM_WORDS; w++)
		assert_int_equal(g->e[0].val[w], vcpu[w]);
	ks_sched_vm_put(g);
	idle_stop(&a);
	idle_stop(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(late_entries_keep_their_phase),
		cmocka_unit_test(thread_change_keeps_counters_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
