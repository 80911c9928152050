/* SPDX-License-Identifier: MIT */
/*
 * sim_vm.c - a simulated VM whose stats files are memfds laid out exactly
 * as x86 KVM lays out its stats fds.
 *
 * Each memfd is built by the image builder from the x86 tables and mapped
 * MAP_SHARED; the simulator updates the data block in place with relaxed
 * atomic stores, as the kernel updates vcpu->stat, and readers pread() the
 * fd, as they would a real one.  Like the kernel's, a read is therefore not
 * an atomic snapshot.
 *
 * The numbers are plausible rather than realistic: cumulative counters and
 * peaks only rise, parts of "exits" never outgrow it, instant values
 * wander up and down, booleans are 0 or 1, and each halt adds one sample to
 * a histogram and its duration to the matching *_ns counter, as
 * kvm_vcpu_halt() does.  A per-object PRNG with a fixed seed makes every
 * run the same, so tests are reproducible.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ks_err.h"
#include "ks_time.h"
#include "kvm_x86_tables.h"
#include "sim_vm.h"
#include "statsfd_image.h"

#define SIM_HZ_MAX		1000000u
/* Longest single sleep, so destroy never waits a whole slow period. */
#define SIM_SLICE_NS		(50ull * 1000 * 1000)
/* Halts simulated one by one per vCPU and step: bounds the work per step. */
#define SIM_MAX_HALTS		16

/* VM descriptors, in ks_x86_vm_desc[] order. */
enum {
	VM_REMOTE_TLB_FLUSH, VM_REMOTE_TLB_FLUSH_REQUESTS, VM_MMU_SHADOW_ZAPPED,
	VM_MMU_PTE_WRITE, VM_MMU_PDE_ZAPPED, VM_MMU_FLOODED, VM_MMU_RECYCLED,
	VM_MMU_CACHE_MISS, VM_MMU_UNSYNC, VM_PAGES_4K, VM_PAGES_2M, VM_PAGES_1G,
	VM_NX_LPAGE_SPLITS, VM_MAX_MMU_RMAP_SIZE, VM_MAX_MMU_PAGE_HASH_COLLISIONS,
	VM_NR
};

/* vCPU descriptors, in ks_x86_vcpu_desc[] order. */
enum {
	VC_HALT_SUCCESSFUL_POLL, VC_HALT_ATTEMPTED_POLL, VC_HALT_POLL_INVALID,
	VC_HALT_WAKEUP, VC_HALT_POLL_SUCCESS_NS, VC_HALT_POLL_FAIL_NS,
	VC_HALT_WAIT_NS, VC_HALT_POLL_SUCCESS_HIST, VC_HALT_POLL_FAIL_HIST,
	VC_HALT_WAIT_HIST, VC_BLOCKING, VC_PF_TAKEN, VC_PF_FIXED, VC_PF_EMULATE,
	VC_PF_SPURIOUS, VC_PF_FAST, VC_PF_MMIO_SPTE_CREATED, VC_PF_GUEST,
	VC_TLB_FLUSH, VC_INVLPG, VC_EXITS, VC_IO_EXITS, VC_MMIO_EXITS,
	VC_SIGNAL_EXITS, VC_IRQ_WINDOW_EXITS, VC_NMI_WINDOW_EXITS, VC_L1D_FLUSH,
	VC_HALT_EXITS, VC_REQUEST_IRQ_EXITS, VC_IRQ_EXITS, VC_HOST_STATE_RELOAD,
	VC_FPU_RELOAD, VC_INSN_EMULATION, VC_INSN_EMULATION_FAIL, VC_HYPERCALLS,
	VC_IRQ_INJECTIONS, VC_NMI_INJECTIONS, VC_REQ_EVENT, VC_NESTED_RUN,
	VC_DIRECTED_YIELD_ATTEMPTED, VC_DIRECTED_YIELD_SUCCESSFUL,
	VC_PREEMPTION_REPORTED, VC_PREEMPTION_OTHER, VC_GUEST_MODE,
	VC_NOTIFY_WINDOW_EXITS, VC_NR
};

_Static_assert(VM_NR == KS_X86_VM_NR_DESC, "VM enum matches the table");
_Static_assert(VC_NR == KS_X86_VCPU_NR_DESC, "vCPU enum matches the table");

/* One simulated stats file: the memfd and its mapped data block. */
struct sim_file {
	int fd;
	void *map;
	size_t map_len;
	uint64_t *data;
	const struct ks_image_desc *table;
	uint64_t rng;
	uint64_t step_ns;		/* VM time one step stands for */
};

struct ks_sim_vm {
	char name[32];
	unsigned nr_vcpus;
	struct sim_file vm;
	struct sim_file *vcpus;
	pthread_mutex_t step_lock;	/* the thread and direct callers may both step */
	pthread_t thread;
	_Atomic pid_t tid;		/* the simulator thread's, once it runs */
	sem_t started;			/* posted once tid is set */
	bool running;
	atomic_bool stop;
	uint64_t period_ns;
};

/* ---- randomness ------------------------------------------------------- */

static uint64_t
splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xorshift64*: small, fast, and plenty for plausible noise. */
static uint64_t
rnd_next(struct sim_file *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545f4914f6cdd1dull;
}

/* Uniform-enough value in [0, n); 0 when n is 0. */
static uint64_t
rnd(struct sim_file *f, uint64_t n)
{
	return n ? (rnd_next(f) >> 11) % n : 0;
}

/* ---- the mapped words -------------------------------------------------- */

static uint64_t *
word(struct sim_file *f, unsigned idx, unsigned bucket)
{
	return f->data + f->table[idx].offset / 8 + bucket;
}

/*
 * The simulator is the only writer of these words (under step_lock);
 * readers are the kernel copying for pread(), so relaxed is enough: no
 * order between values is promised, exactly as with the real stats.
 */
static uint64_t
get(struct sim_file *f, unsigned idx)
{
	return __atomic_load_n(word(f, idx, 0), __ATOMIC_RELAXED);
}

static void
set(struct sim_file *f, unsigned idx, uint64_t v)
{
	__atomic_store_n(word(f, idx, 0), v, __ATOMIC_RELAXED);
}

static void
add(struct sim_file *f, unsigned idx, uint64_t d)
{
	set(f, idx, get(f, idx) + d);
}

/* An instant value: a random step of at most @step either way, kept in [lo, hi]. */
static void
wander(struct sim_file *f, unsigned idx, uint64_t step, uint64_t lo, uint64_t hi)
{
	int64_t v = (int64_t)get(f, idx) + (int64_t)rnd(f, 2 * step + 1) - (int64_t)step;

	if (v < (int64_t)lo)
		v = (int64_t)lo;
	if (v > (int64_t)hi)
		v = (int64_t)hi;
	set(f, idx, (uint64_t)v);
}

/* A peak: replaced only by a larger sample. */
static void
peak(struct sim_file *f, unsigned idx, uint64_t sample)
{
	if (sample > get(f, idx))
		set(f, idx, sample);
}

static unsigned
fls64(uint64_t v)
{
	return v ? 64 - (unsigned)__builtin_clzll(v) : 0;
}

/* One sample of @ns into a log histogram and its *_ns sum, as the kernel does. */
static void
hist_sample(struct sim_file *f, unsigned hist, unsigned sum, uint64_t ns)
{
	unsigned b = fls64(ns);
	uint64_t *w;

	if (b > KS_X86_HIST_BUCKETS - 1)
		b = KS_X86_HIST_BUCKETS - 1;
	w = word(f, hist, b);
	__atomic_store_n(w, __atomic_load_n(w, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
	add(f, sum, ns);
}

/* A duration in [2^lo, 2^hi) ns, spread over the buckets between. */
static uint64_t
rnd_duration(struct sim_file *f, unsigned lo, unsigned hi)
{
	uint64_t base = 1ull << (lo + rnd(f, hi - lo));

	return base + rnd(f, base);
}

/* ---- one step ---------------------------------------------------------- */

static void
step_vm(struct sim_file *f)
{
	uint64_t req = rnd(f, 20);

	add(f, VM_REMOTE_TLB_FLUSH_REQUESTS, req);
	add(f, VM_REMOTE_TLB_FLUSH, rnd(f, req + 1));
	add(f, VM_MMU_SHADOW_ZAPPED, rnd(f, 4));
	add(f, VM_MMU_PTE_WRITE, rnd(f, 10));
	add(f, VM_MMU_PDE_ZAPPED, rnd(f, 2));
	add(f, VM_MMU_FLOODED, rnd(f, 2));
	add(f, VM_MMU_RECYCLED, rnd(f, 2));
	add(f, VM_MMU_CACHE_MISS, rnd(f, 6));
	wander(f, VM_MMU_UNSYNC, 8, 0, 200);
	wander(f, VM_PAGES_4K, 512, 100000, 300000);
	wander(f, VM_PAGES_2M, 4, 0, 2000);
	wander(f, VM_PAGES_1G, 1, 0, 4);
	wander(f, VM_NX_LPAGE_SPLITS, 2, 0, 100);
	peak(f, VM_MAX_MMU_RMAP_SIZE, 1 + rnd(f, 64));
	peak(f, VM_MAX_MMU_PAGE_HASH_COLLISIONS, rnd(f, 16));
}

/*
 * One halt: poll first; a failed poll blocks until a wakeup.  Each sample
 * goes to a histogram and its duration to the matching *_ns counter.  The
 * durations come out of *@budget, the step's share of wall time, so that a
 * vCPU never polls and waits longer than the time that passed.
 * Return: whether the vCPU blocked.
 */
static bool
sim_halt(struct sim_file *f, uint64_t *budget)
{
	uint64_t poll_ns = rnd_duration(f, 8, 17), wait_ns;

	if (poll_ns > *budget)
		poll_ns = *budget;
	*budget -= poll_ns;
	add(f, VC_HALT_ATTEMPTED_POLL, 1);
	if (rnd(f, 32) == 0)
		add(f, VC_HALT_POLL_INVALID, 1);
	if (rnd(f, 2) == 0) {
		add(f, VC_HALT_SUCCESSFUL_POLL, 1);
		hist_sample(f, VC_HALT_POLL_SUCCESS_HIST, VC_HALT_POLL_SUCCESS_NS, poll_ns);
		return false;
	}
	hist_sample(f, VC_HALT_POLL_FAIL_HIST, VC_HALT_POLL_FAIL_NS, poll_ns);
	wait_ns = rnd_duration(f, 12, 21);
	if (wait_ns > *budget)
		wait_ns = *budget;
	*budget -= wait_ns;
	hist_sample(f, VC_HALT_WAIT_HIST, VC_HALT_WAIT_NS, wait_ns);
	add(f, VC_HALT_WAKEUP, 1);
	return true;
}

/* Exits and their kinds: the parts add up to less than the whole. */
static void
step_exits(struct sim_file *f)
{
	uint64_t exits = 50 + rnd(f, 500);
	uint64_t halts = rnd(f, (exits / 16 < SIM_MAX_HALTS ? exits / 16 : SIM_MAX_HALTS) + 1);
	uint64_t mmio = rnd(f, exits / 8 + 1), irq = rnd(f, exits / 8 + 1);
	uint64_t budget = f->step_ns;
	bool blocked = false;
	uint64_t i;

	add(f, VC_EXITS, exits);
	add(f, VC_IO_EXITS, rnd(f, exits / 4 + 1));
	add(f, VC_MMIO_EXITS, mmio);
	add(f, VC_IRQ_EXITS, irq);
	add(f, VC_IRQ_WINDOW_EXITS, rnd(f, exits / 16 + 1));
	add(f, VC_REQUEST_IRQ_EXITS, rnd(f, 2));
	add(f, VC_SIGNAL_EXITS, rnd(f, 4) == 0);
	add(f, VC_NMI_WINDOW_EXITS, rnd(f, 64) == 0);
	add(f, VC_NOTIFY_WINDOW_EXITS, rnd(f, 1024) == 0);
	add(f, VC_L1D_FLUSH, rnd(f, exits / 2 + 1));
	add(f, VC_HOST_STATE_RELOAD, rnd(f, exits / 4 + 1));
	add(f, VC_INSN_EMULATION, mmio + rnd(f, 10));
	add(f, VC_INSN_EMULATION_FAIL, rnd(f, 512) == 0);
	add(f, VC_IRQ_INJECTIONS, irq + rnd(f, 10));
	for (i = 0; i < halts && budget > 0; i++)
		blocked |= sim_halt(f, &budget);
	add(f, VC_HALT_EXITS, i);
	set(f, VC_BLOCKING, blocked && rnd(f, 2));
}

static void
step_faults(struct sim_file *f)
{
	uint64_t taken = rnd(f, 500), fixed = rnd(f, taken + 1);
	uint64_t yields = rnd(f, 3), nested = rnd(f, 16) == 0 ? 1 + rnd(f, 8) : 0;

	add(f, VC_PF_TAKEN, taken);
	add(f, VC_PF_FIXED, fixed);
	add(f, VC_PF_EMULATE, rnd(f, taken - fixed + 1));
	add(f, VC_PF_SPURIOUS, rnd(f, 3));
	add(f, VC_PF_FAST, rnd(f, taken / 2 + 1));
	add(f, VC_PF_MMIO_SPTE_CREATED, rnd(f, 2));
	add(f, VC_PF_GUEST, rnd(f, taken / 4 + 1));
	add(f, VC_TLB_FLUSH, rnd(f, 50));
	add(f, VC_INVLPG, rnd(f, 20));
	add(f, VC_FPU_RELOAD, rnd(f, 10));
	add(f, VC_HYPERCALLS, rnd(f, 5));
	add(f, VC_NMI_INJECTIONS, rnd(f, 128) == 0);
	add(f, VC_REQ_EVENT, rnd(f, 100));
	add(f, VC_DIRECTED_YIELD_ATTEMPTED, yields);
	add(f, VC_DIRECTED_YIELD_SUCCESSFUL, rnd(f, yields + 1));
	add(f, VC_PREEMPTION_REPORTED, rnd(f, 3));
	add(f, VC_PREEMPTION_OTHER, rnd(f, 2));
	/* Now and then the guest runs a nested guest, and may still be in it. */
	add(f, VC_NESTED_RUN, nested);
	set(f, VC_GUEST_MODE, nested && rnd(f, 2));
}

void
ks_sim_vm_step(struct ks_sim_vm *vm)
{
	unsigned i;

	pthread_mutex_lock(&vm->step_lock);
	step_vm(&vm->vm);
	for (i = 0; i < vm->nr_vcpus; i++) {
		step_exits(&vm->vcpus[i]);
		step_faults(&vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->step_lock);
}

/* ---- files ------------------------------------------------------------- */

static int
open_file(struct sim_file *f, const char *id, const char *memfd_name,
	  const struct ks_image_desc *table, uint32_t nr, uint32_t data_size,
	  uint64_t seed, struct kvmstats_error *err)
{
	struct ks_image_spec spec = {
		.id = id, .name_size = KS_X86_NAME_SIZE, .nr_desc = nr, .desc = table,
	};
	uint32_t data_off;
	struct stat st;
	int rc;

	f->table = table;
	f->rng = splitmix64(seed) | 1;	/* xorshift must not start at 0 */
	f->step_ns = 1000 * 1000;	/* a step stands for 1 ms until a thread says otherwise */
	f->fd = ks_image_memfd(&spec, memfd_name, err);
	if (f->fd < 0)
		return f->fd;
	if (fstat(f->fd, &st) < 0)
		return ks_err(err, -errno, "simulated %s: fstat: %s", memfd_name, strerror(errno));
	f->map_len = (size_t)st.st_size;
	f->map = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (f->map == MAP_FAILED) {
		rc = -errno;
		f->map = NULL;
		return ks_err(err, rc, "simulated %s: mmap: %s", memfd_name, strerror(-rc));
	}
	/* The header's data_offset (bytes 20-23) says where the values start. */
	memcpy(&data_off, (const uint8_t *)f->map + 20, sizeof(data_off));
	if (data_off % 8 || (uint64_t)data_off + data_size > f->map_len)
		return ks_err(err, -EINVAL, "simulated %s: built with a bad data block", memfd_name);
	f->data = (uint64_t *)((uint8_t *)f->map + data_off);
	return 0;
}

static void
close_file(struct sim_file *f)
{
	if (f->map != NULL)
		munmap(f->map, f->map_len);
	if (f->fd >= 0)
		close(f->fd);
	f->map = NULL;
	f->fd = -1;
}

/* Starting values of the instant stats, so they have room to wander. */
static void
init_vm_values(struct sim_file *f)
{
	set(f, VM_PAGES_4K, 200000);
	set(f, VM_PAGES_2M, 500);
	set(f, VM_PAGES_1G, 2);
	set(f, VM_MMU_UNSYNC, 20);
	set(f, VM_NX_LPAGE_SPLITS, 10);
}

static int
open_files(struct ks_sim_vm *vm, struct kvmstats_error *err)
{
	char id[64], memfd_name[64];
	unsigned i;
	int rc;

	rc = open_file(&vm->vm, vm->name, "kvm-vm-stats", ks_x86_vm_desc,
		       KS_X86_VM_NR_DESC, KS_X86_VM_DATA_SIZE, 0, err);
	if (rc < 0)
		return rc;
	init_vm_values(&vm->vm);
	for (i = 0; i < vm->nr_vcpus; i++) {
		snprintf(id, sizeof(id), "%s/vcpu-%u", vm->name, i);
		snprintf(memfd_name, sizeof(memfd_name), "kvm-vcpu-stats:%u", i);
		rc = open_file(&vm->vcpus[i], id, memfd_name, ks_x86_vcpu_desc,
			       KS_X86_VCPU_NR_DESC, KS_X86_VCPU_DATA_SIZE, 1 + (uint64_t)i, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
ks_sim_vm_create(unsigned nr_vcpus, struct ks_sim_vm **out, struct kvmstats_error *err)
{
	struct ks_sim_vm *vm;
	unsigned i;
	int rc;

	*out = NULL;
	if (nr_vcpus > KS_SIM_MAX_VCPUS)
		return ks_err(err, -EINVAL, "simulated VM: %u vCPUs, at most %u",
			      nr_vcpus, KS_SIM_MAX_VCPUS);
	vm = calloc(1, sizeof(*vm));
	if (vm != NULL)
		vm->vcpus = calloc(nr_vcpus ? nr_vcpus : 1, sizeof(*vm->vcpus));
	if (vm == NULL || vm->vcpus == NULL) {
		free(vm);
		return ks_err(err, -ENOMEM, "simulated VM: out of memory");
	}
	snprintf(vm->name, sizeof(vm->name), "kvm-%d", (int)getpid());
	vm->nr_vcpus = nr_vcpus;
	vm->vm.fd = -1;
	for (i = 0; i < nr_vcpus; i++)
		vm->vcpus[i].fd = -1;
	pthread_mutex_init(&vm->step_lock, NULL);
	atomic_init(&vm->stop, false);
	rc = open_files(vm, err);
	if (rc < 0) {
		ks_sim_vm_destroy(&vm);
		return rc;
	}
	*out = vm;
	return 0;
}

const char *
ks_sim_vm_name(const struct ks_sim_vm *vm)
{
	return vm->name;
}

unsigned
ks_sim_vm_nr_vcpus(const struct ks_sim_vm *vm)
{
	return vm->nr_vcpus;
}

int
ks_sim_vm_stats_fd(const struct ks_sim_vm *vm, int vcpu)
{
	if (vcpu == -1)
		return vm->vm.fd;
	if (vcpu < 0 || (unsigned)vcpu >= vm->nr_vcpus)
		return -EINVAL;
	return vm->vcpus[vcpu].fd;
}

/* ---- the simulator thread --------------------------------------------- */

/*
 * stop is only a request: the thread's last step is ordered before destroy
 * by pthread_join(), so relaxed loads and stores are enough.
 */
static bool
stopping(struct ks_sim_vm *vm)
{
	return atomic_load_explicit(&vm->stop, memory_order_relaxed);
}

static void *
sim_thread(void *arg)
{
	struct ks_sim_vm *vm = arg;
	uint64_t next = ks_mono_ns(), now;

	/* The thread that "runs" the simulated vCPUs: their sched provider reads it. */
	atomic_store(&vm->tid, gettid());
	sem_post(&vm->started);
	while (!stopping(vm)) {
		ks_sim_vm_step(vm);
		next += vm->period_ns;
		/* Behind by more than a period (host stalled): skip, do not burst. */
		now = ks_mono_ns();
		if (now > next + vm->period_ns)
			next = now;
		ks_sleep_until(next, SIM_SLICE_NS, &vm->stop);
	}
	return NULL;
}

int
ks_sim_vm_start(struct ks_sim_vm *vm, unsigned hz, struct kvmstats_error *err)
{
	int rc;

	if (vm->running)
		return ks_err(err, -EBUSY, "simulated VM %s: already running", vm->name);
	if (hz == 0 || hz > SIM_HZ_MAX)
		return ks_err(err, -EINVAL, "simulated VM %s: %u Hz, must be 1..%u",
			      vm->name, hz, SIM_HZ_MAX);
	vm->period_ns = KS_NSEC_PER_SEC / hz;
	/* Before the thread exists: it reads these without step_lock ordering issues. */
	vm->vm.step_ns = vm->period_ns;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].step_ns = vm->period_ns;
	atomic_store_explicit(&vm->stop, false, memory_order_relaxed);
	sem_init(&vm->started, 0, 0);
	rc = pthread_create(&vm->thread, NULL, sim_thread, vm);
	if (rc != 0) {
		sem_destroy(&vm->started);
		return ks_err(err, -rc, "simulated VM %s: pthread_create: %s",
			      vm->name, strerror(rc));
	}
	while (sem_wait(&vm->started) < 0 && errno == EINTR)
		;
	sem_destroy(&vm->started);
	vm->running = true;
	return 0;
}

pid_t
ks_sim_vm_thread(const struct ks_sim_vm *vm)
{
	return vm->running ? atomic_load(&((struct ks_sim_vm *)vm)->tid) : 0;
}

void
ks_sim_vm_destroy(struct ks_sim_vm **vmp)
{
	struct ks_sim_vm *vm = vmp ? *vmp : NULL;
	unsigned i;

	if (vm == NULL)
		return;
	if (vm->running) {
		atomic_store_explicit(&vm->stop, true, memory_order_relaxed);
		pthread_join(vm->thread, NULL);
		vm->running = false;
	}
	close_file(&vm->vm);
	for (i = 0; i < vm->nr_vcpus; i++)
		close_file(&vm->vcpus[i]);
	pthread_mutex_destroy(&vm->step_lock);
	free(vm->vcpus);
	free(vm);
	*vmp = NULL;
}
