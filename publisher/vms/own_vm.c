/* SPDX-License-Identifier: MIT */
/*
 * own_vm.c - a real KVM VM of our own, running a tiny 32-bit guest whose
 * vCPUs loop on port I/O and HLT, woken by their local APIC timers.
 *
 * The guest, per vCPU, in flat 32-bit protected mode without paging:
 *
 *	program the local APIC (MMIO at 0xFEE00000): enable, divide by 1,
 *	LVT timer periodic on vector 0x40, initial count = wake_us * 1000
 *   loop:
 *	out 0x80, al		-> KVM_EXIT_IO to us: one loop counted
 *	inc eax
 *	sti
 *	hlt			-> blocks in KVM (in-kernel LAPIC) until the timer
 *	jmp loop
 *
 * The timer handler writes EOI and jumps back to the loop.  So every period
 * each vCPU makes one io exit and one halt exit, and the halt poll/wait
 * counters and histograms move, all from the real kernel.
 *
 * KVM's local APIC timer counts a 1 GHz bus clock in every kernel we run on
 * (APIC_BUS_CYCLE_NS = 1 up to 6.9; since 6.10 the default of
 * KVM_CAP_X86_APIC_BUS_CYCLES_NS, also 1 ns), so with "divide by 1" a count
 * of wake_us * 1000 is wake_us microseconds.  KVM clamps periodic timers to
 * its min_timer_period_us parameter (default 200 us).  tests/test_real_own_vm.c
 * measures the wake-up rate through ks_own_vm_loops(); at 1000 us, measured:
 * 950-1000 loops/s per vCPU on a 6.18 host, 660-890 on Debian 6.1's kvm_amd
 * nested in QEMU TCG (emulation is slow enough to lose some ticks).
 *
 * Stopping: immediate_exit = 1 in each kvm_run, then SIGUSR1 to each vCPU
 * thread.  A thread inside KVM_RUN gets -EINTR from the pending signal; a
 * thread about to enter it sees immediate_exit and gets -EINTR at once, so
 * no kick is lost.  This file owns SIGUSR1 (a no-op handler, installed once).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ks_err.h"
#include "own_vm.h"

#define KVM_PATH		"/dev/kvm"
#define KVM_API_VERSION_WANT	12

/* Guest physical memory: one slot at GPA 0. */
#define GUEST_MEM_SIZE		0x10000u
#define GUEST_GDT		0x0100u		/* null, code, data descriptors */
#define GUEST_IDT		0x0800u		/* 256 gates of 8 bytes */
#define GUEST_MAIN		0x1000u		/* entry point */
#define GUEST_TIMER_ISR		0x1100u		/* vector 0x40: EOI, back to the loop */
#define GUEST_OTHER_ISR		0x1180u		/* other interrupts */
#define GUEST_FAULT_STUBS	0x1200u		/* exceptions 0-31: 8 bytes each */
#define GUEST_STACK_TOP		GUEST_MEM_SIZE

#define GUEST_CODE_SEL		0x08
#define GUEST_DATA_SEL		0x10
#define GUEST_NR_VECTORS	256
#define GUEST_NR_EXCEPTIONS	32

#define LAPIC_BASE		0xFEE00000u
#define LOOP_PORT		0x80		/* one write per guest loop */
#define FAULT_PORT		0x81		/* the guest took an exception */
/* A TSS for Intel's real-mode emulation; the address QEMU uses. */
#define TSS_ADDR		0xfffbd000ul

/* count = wake_us * 1000 must fit the 32-bit initial count register. */
#define WAKE_US_MAX		4000000u

#define KICK_SIGNAL		SIGUSR1

struct own_vcpu {
	struct ks_own_vm *vm;
	unsigned index;
	int fd;
	int stats_fd;
	struct kvm_run *run;
	pthread_t thread;
	_Atomic pid_t tid;		/* the thread running it, once it runs; 0 when paused */
	bool thread_live;		/* created and not yet joined */
	_Atomic uint64_t loops;
};

struct ks_own_vm {
	char name[64];
	unsigned nr_vcpus;
	int vm_fd;
	int stats_fd;
	uint8_t *mem;
	size_t run_size;
	unsigned wake_us;		/* 0 until the first start */
	sem_t started;			/* ks_own_vm_start(): posted by each vCPU thread */
	bool running;
	atomic_bool stop;
	struct own_vcpu *vcpus;
};

/* ---- the guest, hand-assembled 32-bit code ------------------------------ */

/*
 * Entered with esi = LAPIC base, ebx = timer initial count, esp = stack top.
 *
 * No IRET anywhere: KVM's instruction emulator implements IRET in real mode
 * only, and a KVM that emulates this guest's instructions instead of
 * running them (PVM does) fails on it with KVM_INTERNAL_ERROR_EMULATION.
 * So the interrupt handlers drop their frame and jump back to the loop, and
 * interrupts are enabled only across HLT ("sti; hlt": the STI shadow makes
 * the pair atomic), so an interrupt finds the guest halted (QEMU TCG's
 * emulated SVM loses the shadow now and then: that HLT is skipped).
 */
#define GUEST_LOOP	(GUEST_MAIN + 36)	/* offset of "loop:" below */
static const uint8_t guest_main[] = {
	/* mov dword [esi + 0xf0], 0x1ff: spurious vector register, APIC on, vector 0xff */
	0xc7, 0x86, 0xf0, 0x00, 0x00, 0x00, 0xff, 0x01, 0x00, 0x00,
	/* mov dword [esi + 0x3e0], 0xb: timer divide configuration, divide by 1 */
	0xc7, 0x86, 0xe0, 0x03, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00,
	/* mov dword [esi + 0x320], 0x20040: LVT timer, periodic (bit 17), vector 0x40 */
	0xc7, 0x86, 0x20, 0x03, 0x00, 0x00, 0x40, 0x00, 0x02, 0x00,
	/* mov [esi + 0x380], ebx: initial count, starts the timer */
	0x89, 0x9e, 0x80, 0x03, 0x00, 0x00,
	/* loop (offset 36): out 0x80, al */
	0xe6, LOOP_PORT,
	/* inc eax: the guest's own loop count, visible in its registers */
	0x40,
	/* sti: interrupts on from after the next instruction */
	0xfb,
	/* hlt: wait for the timer interrupt */
	0xf4,
	/* jmp loop (rel8 -7): only reached if HLT ends without an interrupt */
	0xeb, 0xf9,
};

/*
 * The interrupt handlers, entered through 32-bit interrupt gates (IF now
 * clear) with EFLAGS, CS and EIP on the stack (12 bytes, no privilege
 * change).  The jmp rel32 operands are filled in by load_guest().
 */
static const uint8_t guest_timer_isr[] = {
	/* mov dword [0xfee000b0], 0: EOI (absolute address, whatever esi holds) */
	0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00,
	/* add esp, 12: drop the interrupt frame */
	0x83, 0xc4, 0x0c,
	/* jmp loop (rel32) */
	0xe9, 0x00, 0x00, 0x00, 0x00,
};

/* Any other interrupt (e.g. the spurious vector 0xff, which takes no EOI). */
static const uint8_t guest_other_isr[] = {
	/* add esp, 12: drop the interrupt frame */
	0x83, 0xc4, 0x0c,
	/* jmp loop (rel32) */
	0xe9, 0x00, 0x00, 0x00, 0x00,
};

/* Copy a handler to @at and aim its final "jmp rel32" at the loop. */
static void
put_isr(uint8_t *mem, uint32_t at, const uint8_t *code, size_t len)
{
	int32_t rel = (int32_t)GUEST_LOOP - (int32_t)(at + len);

	memcpy(mem + at, code, len);
	memcpy(mem + at + len - 4, &rel, sizeof(rel));
}

/*
 * Exception stub for vector @v: report it on FAULT_PORT and stop.  The host
 * stops the vCPU on that write, so the halt loop is only a backstop.
 */
#define FAULT_STUB_SIZE	8
static void
put_fault_stub(uint8_t *at, uint8_t v)
{
	const uint8_t stub[FAULT_STUB_SIZE] = {
		0xb0, v,		/* mov al, v */
		0xe6, FAULT_PORT,	/* out 0x81, al */
		0xfa,			/* cli */
		0xf4,			/* hlt */
		0xeb, 0xfd,		/* jmp hlt (rel8 -3) */
	};

	memcpy(at, stub, sizeof(stub));
}

/* A GDT descriptor: flat 4 GiB, 4 KiB granularity, 32-bit, ring 0, present. */
static uint64_t
gdt_flat(unsigned type)
{
	/* limit 0xfffff, base 0, access = P | DPL 0 | S | type, flags = G | D/B */
	return 0xffffull | (uint64_t)(0x90 | type) << 40 | 0xfull << 48 | 0xcull << 52;
}

/* A 32-bit interrupt gate (type 0x8e) to @handler in the code segment. */
static uint64_t
idt_gate(uint32_t handler)
{
	return (uint64_t)(handler & 0xffff) | (uint64_t)GUEST_CODE_SEL << 16 |
	       0x8eull << 40 | (uint64_t)(handler >> 16) << 48;
}

static void
load_guest(uint8_t *mem)
{
	uint64_t gdt[3] = { 0, gdt_flat(11), gdt_flat(3) };
	uint64_t gate;
	unsigned v;

	memcpy(mem + GUEST_GDT, gdt, sizeof(gdt));
	for (v = 0; v < GUEST_NR_VECTORS; v++) {
		if (v < GUEST_NR_EXCEPTIONS) {
			put_fault_stub(mem + GUEST_FAULT_STUBS + v * FAULT_STUB_SIZE, (uint8_t)v);
			gate = idt_gate(GUEST_FAULT_STUBS + v * FAULT_STUB_SIZE);
		} else if (v == 0x40) {
			gate = idt_gate(GUEST_TIMER_ISR);
		} else {
			gate = idt_gate(GUEST_OTHER_ISR);
		}
		memcpy(mem + GUEST_IDT + v * 8, &gate, sizeof(gate));
	}
	memcpy(mem + GUEST_MAIN, guest_main, sizeof(guest_main));
	put_isr(mem, GUEST_TIMER_ISR, guest_timer_isr, sizeof(guest_timer_isr));
	put_isr(mem, GUEST_OTHER_ISR, guest_other_isr, sizeof(guest_other_isr));
}

_Static_assert(GUEST_MAIN + sizeof(guest_main) <= GUEST_TIMER_ISR, "main fits");
_Static_assert(sizeof(guest_main) == GUEST_LOOP - GUEST_MAIN + 7, "loop: is where it says");
_Static_assert(GUEST_TIMER_ISR + sizeof(guest_timer_isr) <= GUEST_OTHER_ISR, "ISR fits");
_Static_assert(GUEST_IDT + GUEST_NR_VECTORS * 8 <= GUEST_MAIN, "IDT fits");
_Static_assert(GUEST_FAULT_STUBS + GUEST_NR_EXCEPTIONS * FAULT_STUB_SIZE <= 0x2000,
	       "stubs stay below the stack");

/* ---- /dev/kvm ------------------------------------------------------------ */

/* Open /dev/kvm and check what we rely on; say precisely what is missing. */
static int
open_kvm(struct kvmstats_error *err)
{
	int fd = open(KVM_PATH, O_RDWR | O_CLOEXEC), rc, ver;

	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -ENODEV || rc == -ENXIO)
			return ks_err(err, rc, "no %s: KVM is not available on this machine "
				      "(no hardware virtualization, or the kvm module is not loaded)",
				      KVM_PATH);
		if (rc == -EACCES || rc == -EPERM)
			return ks_err(err, rc, "no permission to open %s: run as root or join "
				      "the kvm group", KVM_PATH);
		return ks_err(err, rc, "cannot open %s: %s", KVM_PATH, strerror(-rc));
	}
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION_WANT) {
		close(fd);
		return ks_err(err, -ENOTSUP, "%s: KVM API version %d, this program needs %d",
			      KVM_PATH, ver, KVM_API_VERSION_WANT);
	}
	if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0) {
		close(fd);
		return ks_err(err, -ENOTSUP, "%s: no KVM_CAP_BINARY_STATS_FD: the kernel is "
			      "older than 5.14 and has no binary stats fds; use Linux 5.14 or later",
			      KVM_PATH);
	}
	if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0) {
		close(fd);
		return ks_err(err, -ENOTSUP, "%s: no in-kernel irqchip (KVM_CAP_IRQCHIP): "
			      "the guest needs a local APIC timer", KVM_PATH);
	}
	return fd;
}

static int
create_vm_fd(int kvm, struct kvmstats_error *err)
{
	int fd = ioctl(kvm, KVM_CREATE_VM, 0);

	if (fd < 0)
		return ks_err(err, -errno, "KVM_CREATE_VM failed: %s: %s exists but will not "
			      "create a VM (virtualization disabled in firmware, another "
			      "hypervisor holding it, or a sandbox forbidding it)",
			      strerror(errno), KVM_PATH);
	return fd;
}

int
ks_own_vm_available(struct kvmstats_error *err)
{
	int kvm = open_kvm(err), vm;

	if (kvm < 0)
		return kvm;
	vm = create_vm_fd(kvm, err);
	close(kvm);
	if (vm < 0)
		return vm;
	close(vm);
	ks_err_clear(err);
	return 0;
}

/* ---- creating the VM ----------------------------------------------------- */

/*
 * The kernel writes "kvm-%d" with the creating thread's pid (as the initial
 * PID namespace sees it) into the VM stats fd: that string is the VM's
 * name, so it always matches the vCPU id strings "kvm-<pid>/vcpu-<n>".
 */
static int
read_vm_id(struct ks_own_vm *vm, struct kvmstats_error *err)
{
	struct kvm_stats_header h;
	size_t len;
	ssize_t n;

	n = pread(vm->stats_fd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h))
		return ks_err(err, n < 0 ? -errno : -EIO, "VM stats fd: reading the header: %s",
			      n < 0 ? strerror(errno) : "short read");
	len = h.name_size < sizeof(vm->name) ? h.name_size : sizeof(vm->name) - 1;
	n = pread(vm->stats_fd, vm->name, len, h.id_offset);
	if (n != (ssize_t)len)
		return ks_err(err, n < 0 ? -errno : -EIO, "VM stats fd: reading the id: %s",
			      n < 0 ? strerror(errno) : "short read");
	vm->name[len] = '\0';
	if (strncmp(vm->name, "kvm-", 4) != 0)
		return ks_err(err, -EBADMSG, "VM stats fd: id \"%s\" is not kvm-<pid>", vm->name);
	return 0;
}

static int
vm_ioctl(struct ks_own_vm *vm, unsigned long req, unsigned long arg, const char *what,
	 struct kvmstats_error *err)
{
	if (ioctl(vm->vm_fd, req, arg) < 0)
		return ks_err(err, -errno, "VM %s: %s: %s", vm->name, what, strerror(errno));
	return 0;
}

static int
setup_memory(struct ks_own_vm *vm, struct kvmstats_error *err)
{
	struct kvm_userspace_memory_region slot = { 0 };
	void *mem;

	mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return ks_err(err, -errno, "VM %s: guest memory: mmap: %s", vm->name,
			      strerror(errno));
	vm->mem = mem;
	load_guest(vm->mem);
	slot.slot = 0;
	slot.guest_phys_addr = 0;
	slot.memory_size = GUEST_MEM_SIZE;
	slot.userspace_addr = (uint64_t)(uintptr_t)vm->mem;
	return vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&slot,
			"KVM_SET_USER_MEMORY_REGION", err);
}

/* What KVM can offer; calloc'd so every byte is defined (valgrind, too). */
static struct kvm_cpuid2 *
supported_cpuid(int kvm, const char *vm_name, struct kvmstats_error *err)
{
	struct kvm_cpuid2 *c;
	uint32_t nent;

	for (nent = 64; nent <= 4096; nent *= 2) {
		c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (c == NULL) {
			ks_err(err, -ENOMEM, "VM %s: out of memory", vm_name);
			return NULL;
		}
		c->nent = nent;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG) {
			ks_err(err, -errno, "VM %s: KVM_GET_SUPPORTED_CPUID: %s", vm_name,
			       strerror(errno));
			return NULL;
		}
	}
	ks_err(err, -E2BIG, "VM %s: KVM_GET_SUPPORTED_CPUID: more than 4096 entries", vm_name);
	return NULL;
}

/* The guest sees its own APIC id in CPUID, as on real hardware. */
static void
cpuid_set_apic_id(struct kvm_cpuid2 *c, unsigned id)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | (uint32_t)id << 24;
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = id;
	}
}

static void
flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffffu;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1;
	s->s = 1;
	s->l = 0;
	s->g = 1;
}

/* Flat 32-bit protected mode, no paging, with our GDT and IDT. */
static int
set_protected_mode(struct own_vcpu *c, struct kvmstats_error *err)
{
	struct kvm_sregs sr;

	if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
		return ks_err(err, -errno, "VM %s vCPU %u: KVM_GET_SREGS: %s",
			      c->vm->name, c->index, strerror(errno));
	flat_segment(&sr.cs, GUEST_CODE_SEL, 11);	/* code: execute/read, accessed */
	flat_segment(&sr.ds, GUEST_DATA_SEL, 3);	/* data: read/write, accessed */
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.gdt.base = GUEST_GDT;
	sr.gdt.limit = 3 * 8 - 1;
	sr.idt.base = GUEST_IDT;
	sr.idt.limit = GUEST_NR_VECTORS * 8 - 1;
	sr.cr0 |= 1;					/* PE */
	if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0)
		return ks_err(err, -errno, "VM %s vCPU %u: KVM_SET_SREGS: %s",
			      c->vm->name, c->index, strerror(errno));
	return 0;
}

static int
vcpu_ioctl(struct own_vcpu *c, unsigned long req, void *arg, const char *what,
	   struct kvmstats_error *err)
{
	if (ioctl(c->fd, req, arg) < 0)
		return ks_err(err, -errno, "VM %s vCPU %u: %s: %s", c->vm->name, c->index,
			      what, strerror(errno));
	return 0;
}

/*
 * One vCPU: its stats fd is taken at once, before it ever runs, so that
 * taking it never has to wait for (or kick) a running vCPU.
 */
static int
create_vcpu(struct own_vcpu *c, struct kvm_cpuid2 *cpuid, struct kvmstats_error *err)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	void *run;
	int rc;

	c->fd = ioctl(c->vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)c->index);
	if (c->fd < 0)
		return ks_err(err, -errno, "VM %s: KVM_CREATE_VCPU %u: %s", c->vm->name,
			      c->index, strerror(errno));
	c->stats_fd = ioctl(c->fd, KVM_GET_STATS_FD, NULL);
	if (c->stats_fd < 0)
		return ks_err(err, -errno, "VM %s vCPU %u: KVM_GET_STATS_FD: %s",
			      c->vm->name, c->index, strerror(errno));
	run = mmap(NULL, c->vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (run == MAP_FAILED)
		return ks_err(err, -errno, "VM %s vCPU %u: mmap of kvm_run: %s",
			      c->vm->name, c->index, strerror(errno));
	c->run = run;
	cpuid_set_apic_id(cpuid, c->index);
	rc = vcpu_ioctl(c, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2", err);
	if (rc == 0)
		rc = set_protected_mode(c, err);
	/* Application processors would otherwise wait for INIT/SIPI. */
	if (rc == 0)
		rc = vcpu_ioctl(c, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE", err);
	return rc;
}

static int
create_vcpus(struct ks_own_vm *vm, int kvm, struct kvmstats_error *err)
{
	struct kvm_cpuid2 *cpuid;
	int size, rc = 0;
	unsigned i;

	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		return ks_err(err, size < 0 ? -errno : -EINVAL,
			      "VM %s: KVM_GET_VCPU_MMAP_SIZE: %s", vm->name,
			      size < 0 ? strerror(errno) : "smaller than struct kvm_run");
	vm->run_size = (size_t)size;
	cpuid = supported_cpuid(kvm, vm->name, err);
	if (cpuid == NULL)
		return err ? err->code : -ENOMEM;
	for (i = 0; i < vm->nr_vcpus && rc == 0; i++)
		rc = create_vcpu(&vm->vcpus[i], cpuid, err);
	free(cpuid);
	return rc;
}

/* The VM, its stats fd (at once), its irqchip (before any vCPU), memory, vCPUs. */
static int
build_vm(struct ks_own_vm *vm, int kvm, struct kvmstats_error *err)
{
	int rc;

	vm->vm_fd = create_vm_fd(kvm, err);
	if (vm->vm_fd < 0)
		return vm->vm_fd;
	vm->stats_fd = ioctl(vm->vm_fd, KVM_GET_STATS_FD, NULL);
	if (vm->stats_fd < 0)
		return ks_err(err, -errno, "new VM: KVM_GET_STATS_FD: %s", strerror(errno));
	rc = read_vm_id(vm, err);
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_SET_TSS_ADDR, TSS_ADDR, "KVM_SET_TSS_ADDR", err);
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP", err);
	if (rc == 0)
		rc = setup_memory(vm, err);
	if (rc == 0)
		rc = create_vcpus(vm, kvm, err);
	return rc;
}

int
ks_own_vm_create(unsigned nr_vcpus, struct ks_own_vm **out, struct kvmstats_error *err)
{
	struct ks_own_vm *vm;
	unsigned i;
	int kvm, rc;

	*out = NULL;
	if (nr_vcpus == 0 || nr_vcpus > KS_OWN_VM_MAX_VCPUS)
		return ks_err(err, -EINVAL, "own VM: %u vCPUs, must be 1..%u", nr_vcpus,
			      KS_OWN_VM_MAX_VCPUS);
	vm = calloc(1, sizeof(*vm));
	if (vm != NULL)
		vm->vcpus = calloc(nr_vcpus, sizeof(*vm->vcpus));
	if (vm == NULL || vm->vcpus == NULL) {
		free(vm);
		return ks_err(err, -ENOMEM, "own VM: out of memory");
	}
	vm->nr_vcpus = nr_vcpus;
	vm->vm_fd = vm->stats_fd = -1;
	snprintf(vm->name, sizeof(vm->name), "kvm-%d", (int)getpid());
	atomic_init(&vm->stop, false);
	for (i = 0; i < nr_vcpus; i++) {
		vm->vcpus[i] = (struct own_vcpu) { .vm = vm, .index = i, .fd = -1, .stats_fd = -1 };
		atomic_init(&vm->vcpus[i].loops, 0);
	}
	kvm = open_kvm(err);
	if (kvm < 0) {
		ks_own_vm_destroy(&vm);
		return kvm;
	}
	rc = build_vm(vm, kvm, err);
	close(kvm);		/* the VM fd keeps KVM pinned from here on */
	if (rc < 0) {
		ks_own_vm_destroy(&vm);
		return rc;
	}
	*out = vm;
	return 0;
}

const char *
ks_own_vm_name(const struct ks_own_vm *vm)
{
	return vm->name;
}

unsigned
ks_own_vm_nr_vcpus(const struct ks_own_vm *vm)
{
	return vm->nr_vcpus;
}

int
ks_own_vm_stats_fd(const struct ks_own_vm *vm, int vcpu)
{
	if (vcpu == -1)
		return vm->stats_fd;
	if (vcpu < 0 || (unsigned)vcpu >= vm->nr_vcpus)
		return -EINVAL;
	return vm->vcpus[vcpu].stats_fd;
}

uint64_t
ks_own_vm_loops(const struct ks_own_vm *vm, unsigned vcpu)
{
	if (vcpu >= vm->nr_vcpus)
		return 0;
	return atomic_load_explicit(&vm->vcpus[vcpu].loops, memory_order_relaxed);
}

/* ---- running ------------------------------------------------------------- */

static const char *
exit_reason_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN:		return "KVM_EXIT_UNKNOWN";
	case KVM_EXIT_EXCEPTION:	return "KVM_EXIT_EXCEPTION";
	case KVM_EXIT_IO:		return "KVM_EXIT_IO";
	case KVM_EXIT_HLT:		return "KVM_EXIT_HLT";
	case KVM_EXIT_MMIO:		return "KVM_EXIT_MMIO";
	case KVM_EXIT_SHUTDOWN:		return "KVM_EXIT_SHUTDOWN (triple fault)";
	case KVM_EXIT_FAIL_ENTRY:	return "KVM_EXIT_FAIL_ENTRY";
	case KVM_EXIT_INTR:		return "KVM_EXIT_INTR";
	case KVM_EXIT_INTERNAL_ERROR:	return "KVM_EXIT_INTERNAL_ERROR";
	case KVM_EXIT_SYSTEM_EVENT:	return "KVM_EXIT_SYSTEM_EVENT";
	default:			return "unexpected exit";
	}
}

/* The suberror and what KVM adds to it (e.g. the instruction's bytes). */
static void
internal_detail(const struct kvm_run *r, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, ": suberror %u%s", r->internal.suberror,
				    r->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
				    " (instruction emulation failed)" : "");
	uint32_t i;

	for (i = 0; i < r->internal.ndata && i < 4 && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s0x%llx", i ? " " : ", data ",
				      (unsigned long long)r->internal.data[i]);
}

/* Say once why this vCPU stops, with what KVM told us. */
static void
log_stop(const struct own_vcpu *c)
{
	const struct kvm_run *r = c->run;
	char detail[192] = "";

	switch (r->exit_reason) {
	case KVM_EXIT_IO:
		if (r->io.port == FAULT_PORT && r->io.direction == KVM_EXIT_IO_OUT)
			snprintf(detail, sizeof(detail), ": the guest took exception %u",
				 ((const uint8_t *)r)[r->io.data_offset]);
		else
			snprintf(detail, sizeof(detail), ": port 0x%x %s, size %u",
				 r->io.port, r->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
				 r->io.size);
		break;
	case KVM_EXIT_MMIO:
		snprintf(detail, sizeof(detail), ": %s at 0x%llx",
			 r->mmio.is_write ? "write" : "read",
			 (unsigned long long)r->mmio.phys_addr);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(detail, sizeof(detail), ": hardware entry failure reason 0x%llx",
			 (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		internal_detail(r, detail, sizeof(detail));
		break;
	}
	fprintf(stderr, "kvmstats: own VM %s vCPU %u: %s (exit reason %u)%s; "
		"this vCPU stops, the others run on\n", c->vm->name, c->index,
		exit_reason_name(r->exit_reason), r->exit_reason, detail);
}

/* Return: whether the guest may go on. */
static bool
handle_exit(struct own_vcpu *c)
{
	const struct kvm_run *r = c->run;

	if (r->exit_reason == KVM_EXIT_INTR)
		return true;
	if (r->exit_reason == KVM_EXIT_IO && r->io.port == LOOP_PORT &&
	    r->io.direction == KVM_EXIT_IO_OUT) {
		/* Written by this thread only; relaxed: a counter for readers, no ordering. */
		atomic_fetch_add_explicit(&c->loops, r->io.count, memory_order_relaxed);
		return true;
	}
	log_stop(c);
	return false;
}

static bool
stopping(struct ks_own_vm *vm)
{
	return atomic_load(&vm->stop);
}

static void *
vcpu_thread(void *arg)
{
	struct own_vcpu *c = arg;
	sigset_t kick;

	/* The kick must get through; everything else keeps the creator's mask. */
	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	atomic_store(&c->tid, gettid());
	sem_post(&c->vm->started);
	while (!stopping(c->vm)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "kvmstats: own VM %s vCPU %u: KVM_RUN: %s; this vCPU "
				"stops, the others run on\n", c->vm->name, c->index,
				strerror(errno));
			break;
		}
		if (!handle_exit(c))
			break;
	}
	return NULL;
}

static void
kick_handler(int sig)
{
	(void)sig;	/* only there so that the signal interrupts KVM_RUN */
}

static int kick_install_rc;

/* No SA_RESTART: KVM_RUN must come back with EINTR (it never restarts anyway). */
static void
install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	kick_install_rc = sigaction(KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

/* Registers of the first start: entry point, stack, LAPIC base, timer count. */
static int
set_entry_regs(struct own_vcpu *c, unsigned wake_us, struct kvmstats_error *err)
{
	struct kvm_regs regs;

	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_MAIN;
	regs.rflags = 2;			/* bit 1 is always set */
	regs.rsp = GUEST_STACK_TOP;
	regs.rsi = LAPIC_BASE;
	regs.rbx = (uint64_t)wake_us * 1000;	/* 1 GHz APIC bus, divide by 1 */
	return vcpu_ioctl(c, KVM_SET_REGS, &regs, "KVM_SET_REGS", err);
}

static int
check_wake_us(struct ks_own_vm *vm, unsigned wake_us, struct kvmstats_error *err)
{
	if (vm->running)
		return ks_err(err, -EBUSY, "own VM %s: already running", vm->name);
	if (wake_us == 0 || wake_us > WAKE_US_MAX)
		return ks_err(err, -EINVAL, "own VM %s: wake period %u us, must be 1..%u",
			      vm->name, wake_us, WAKE_US_MAX);
	if (vm->wake_us != 0 && wake_us != vm->wake_us)
		return ks_err(err, -EINVAL, "own VM %s: resumed with a wake period of %u us, "
			      "but its guest timer runs at %u us", vm->name, wake_us,
			      vm->wake_us);
	return 0;
}

int
ks_own_vm_start(struct ks_own_vm *vm, unsigned wake_us, struct kvmstats_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned i;
	int rc;

	rc = check_wake_us(vm, wake_us, err);
	for (i = 0; rc == 0 && vm->wake_us == 0 && i < vm->nr_vcpus; i++)
		rc = set_entry_regs(&vm->vcpus[i], wake_us, err);
	if (rc < 0)
		return rc;
	vm->wake_us = wake_us;
	pthread_once(&once, install_kick_handler);
	if (kick_install_rc < 0)
		return ks_err(err, kick_install_rc, "own VM %s: sigaction(SIGUSR1): %s",
			      vm->name, strerror(-kick_install_rc));
	atomic_store(&vm->stop, false);
	vm->running = true;
	sem_init(&vm->started, 0, 0);
	for (i = 0; i < vm->nr_vcpus; i++) {
		struct own_vcpu *c = &vm->vcpus[i];

		__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_RELAXED);
		rc = pthread_create(&c->thread, NULL, vcpu_thread, c);
		if (rc != 0) {
			ks_own_vm_pause(vm);	/* joins the threads made: none posts after */
			sem_destroy(&vm->started);
			return ks_err(err, -rc, "own VM %s: vCPU %u thread: pthread_create: %s",
				      vm->name, i, strerror(rc));
		}
		c->thread_live = true;
	}
	/* Every thread id known on return: the sched provider reads them. */
	for (i = 0; i < vm->nr_vcpus; i++)
		while (sem_wait(&vm->started) < 0 && errno == EINTR)
			;
	sem_destroy(&vm->started);
	return 0;
}

pid_t
ks_own_vm_vcpu_thread(const struct ks_own_vm *vm, unsigned vcpu)
{
	return vcpu < vm->nr_vcpus ? atomic_load(&vm->vcpus[vcpu].tid) : 0;
}

void
ks_own_vm_pause(struct ks_own_vm *vm)
{
	unsigned i;

	if (!vm->running)
		return;
	atomic_store(&vm->stop, true);
	/* immediate_exit before the kick: a thread not yet in KVM_RUN leaves at once. */
	for (i = 0; i < vm->nr_vcpus; i++)
		__atomic_store_n(&vm->vcpus[i].run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].thread_live)
			pthread_kill(vm->vcpus[i].thread, KICK_SIGNAL);
	for (i = 0; i < vm->nr_vcpus; i++) {
		if (!vm->vcpus[i].thread_live)
			continue;
		pthread_join(vm->vcpus[i].thread, NULL);
		vm->vcpus[i].thread_live = false;
		atomic_store(&vm->vcpus[i].tid, 0);
	}
	vm->running = false;
}

/* ---- teardown ------------------------------------------------------------ */

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void
ks_own_vm_destroy(struct ks_own_vm **vmp)
{
	struct ks_own_vm *vm = vmp ? *vmp : NULL;
	unsigned i;

	if (vm == NULL)
		return;
	ks_own_vm_pause(vm);
	for (i = 0; i < vm->nr_vcpus; i++) {
		struct own_vcpu *c = &vm->vcpus[i];

		if (c->run != NULL)
			munmap(c->run, vm->run_size);
		close_fd(&c->stats_fd);
		close_fd(&c->fd);
	}
	close_fd(&vm->stats_fd);
	close_fd(&vm->vm_fd);
	if (vm->mem != NULL)
		munmap(vm->mem, GUEST_MEM_SIZE);
	free(vm->vcpus);
	free(vm);
	*vmp = NULL;
}
