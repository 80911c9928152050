/* SPDX-License-Identifier: MIT */
/*
 * thread_vmm - a VMM that creates its VM and its one vCPU on a thread
 * that then exits, and runs the vCPU on threads it starts when told: the
 * "create on one thread, run on another" case, and a vCPU moved from one
 * thread to the next (as QEMU does when a parked vCPU fd is plugged again).
 *
 *   thread_vmm        reads commands, one a line, on stdin:
 *     run             start a new thread that runs the vCPU (KVM_RUN in a
 *                     loop); says "runner <tid>" once its first KVM_RUN returned
 *     stop            stop that thread and wait for it to exit; says "stopped"
 *     quit (or EOF)   exit 0
 *   At start it says "created <tid>" (the thread that created the VM and the
 *   vCPU, gone by then), then "ready <pid>".  Thread ids are gettid()'s,
 *   this process's own view (its pid namespace's).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GUEST_MEM	0x10000
#define GUEST_CODE	0x1000

static int kvm, vm, vcpu;
static struct kvm_run *run;
static pid_t creator;
static atomic_bool stop;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pid_t first_run_tid;

/* out 0x10, al; inc al; hlt; jmp back (as tests/tools/test_vmm.c). */
static const uint8_t guest_code[] = { 0xe6, 0x10, 0xfe, 0xc0, 0xf4, 0xeb, 0xf9 };

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("thread_vmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *
create(void *unused)
{
	struct kvm_userspace_memory_region r = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 2 };
	int size, sfd;
	void *mem;

	(void)unused;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM: %s", strerror(errno));
#if defined(__x86_64__) || defined(__i386__)
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		die("KVM_SET_TSS_ADDR: %s", strerror(errno));
#endif
	mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memcpy((uint8_t *)mem + GUEST_CODE, guest_code, sizeof(guest_code));
	r.memory_size = GUEST_MEM;
	r.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0ul);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU: %s", strerror(errno));
	sfd = ioctl(vcpu, KVM_GET_STATS_FD, NULL);	/* as QEMU does: kept */
	if (sfd < 0)
		die("KVM_GET_STATS_FD: %s", strerror(errno));
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run: %s", strerror(errno));
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS: %s", strerror(errno));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_[S]REGS: %s", strerror(errno));
	creator = (pid_t)syscall(SYS_gettid);
	return NULL;
}

static void *
runner(void *unused)
{
	struct timespec ms = { 0, 1000000 };
	bool first = true;

	(void)unused;
	while (!atomic_load(&stop)) {
		if (ioctl(vcpu, KVM_RUN, NULL) < 0 && errno != EINTR)
			die("KVM_RUN: %s", strerror(errno));
		if (first) {
			pthread_mutex_lock(&lock);
			first_run_tid = (pid_t)syscall(SYS_gettid);
			pthread_cond_signal(&cond);
			pthread_mutex_unlock(&lock);
			first = false;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			nanosleep(&ms, NULL);	/* a guest that idles */
		else if (run->exit_reason != KVM_EXIT_IO && run->exit_reason != KVM_EXIT_INTR)
			die("unexpected KVM exit reason %u", run->exit_reason);
	}
	return NULL;
}

int
main(void)
{
	pthread_t t;
	bool running = false;
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm: %s", strerror(errno));
	if (pthread_create(&t, NULL, create, NULL) != 0 || pthread_join(t, NULL) != 0)
		die("creating thread");
	printf("created %d\nready %d\n", (int)creator, (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		if (strcmp(line, "run\n") == 0 && !running) {
			atomic_store(&stop, false);
			first_run_tid = 0;
			if (pthread_create(&t, NULL, runner, NULL) != 0)
				die("pthread_create");
			pthread_mutex_lock(&lock);
			while (first_run_tid == 0)
				pthread_cond_wait(&cond, &lock);
			printf("runner %d\n", (int)first_run_tid);
			pthread_mutex_unlock(&lock);
			running = true;
		} else if (strcmp(line, "stop\n") == 0 && running) {
			atomic_store(&stop, true);
			pthread_join(t, NULL);
			running = false;
			printf("stopped\n");
		} else if (strcmp(line, "quit\n") == 0) {
			break;
		} else {
			die("unknown or untimely command: %s", line);
		}
	}
	return 0;
}
