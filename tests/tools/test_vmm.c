/* SPDX-License-Identifier: MIT */
/*
 * test_vmm.c - a tiny stand-alone VMM for the attach and preload tests.
 *
 *   test_vmm [--vcpus N] [--vm-stats-fd] [--no-vcpu-stats-fds] [--run] [--help]
 *
 * It knows nothing of kvmstats (libc and <linux/kvm.h> only), so that what
 * a test sees of it is what it would see of any VMM.  It creates a VM and N
 * vCPUs (default 1) and, like QEMU >= 8.1, takes KVM_GET_STATS_FD of every
 * vCPU right after creating it and keeps the fd open.  QEMU keeps no VM
 * stats fd; --vm-stats-fd keeps one too.  --no-vcpu-stats-fds takes none
 * (like QEMU < 8.1).  --run runs a guest in every vCPU (a real-mode loop of
 * OUT and HLT, no irqchip: each HLT returns to us, we sleep 1 ms and
 * re-enter), so that exits, io_exits and halt_exits move.
 *
 * Signals: SIGUSR1 adds a vCPU (next id, with its stats fd, running if
 * --run); SIGUSR2 closes the stats fd of the highest-numbered vCPU that
 * still has one (KVM cannot destroy a vCPU: its thread keeps running);
 * SIGTERM and SIGINT exit 0.
 *
 * stdout (line-buffered): "ready <pid>" once set up, then "hotplug <n>"
 * after each SIGUSR1/SIGUSR2, n being the number of vCPU stats fds open.
 * Errors go to stderr and exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_VCPUS	64
#define GUEST_MEM	0x10000ul	/* 64 KiB at guest physical 0 */
#define GUEST_CODE	0x1000ul
#define GUEST_PORT	0x10

struct vcpu {
	int fd;
	int stats_fd;			/* -1: none, or closed by SIGUSR2 */
	struct kvm_run *run;
	pthread_t thread;
};

struct vmm {
	int kvm, vm;
	int vm_stats_fd;
	size_t run_size;
	unsigned nr_vcpus;
	bool vcpu_stats, run;
	struct vcpu vcpu[MAX_VCPUS];
};

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("test_vmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
usage(FILE *f)
{
	fputs("usage: test_vmm [--vcpus N] [--vm-stats-fd] [--no-vcpu-stats-fds] [--run]\n"
	      "\n"
	      "A minimal KVM VMM for tests: creates a VM and N vCPUs (default 1) and keeps\n"
	      "each vCPU's KVM_GET_STATS_FD open, as QEMU >= 8.1 does.\n"
	      "\n"
	      "  --vcpus N             vCPUs at start, 0-64 (default 1)\n"
	      "  --vm-stats-fd         also keep a VM stats fd (QEMU keeps none)\n"
	      "  --no-vcpu-stats-fds   take no vCPU stats fds (like QEMU < 8.1)\n"
	      "  --run                 run a guest (OUT + HLT loop) in every vCPU\n"
	      "  --help                this text\n"
	      "\n"
	      "SIGUSR1 adds a vCPU with its stats fd; SIGUSR2 closes the last open vCPU\n"
	      "stats fd; SIGTERM/SIGINT exit 0.  stdout: \"ready <pid>\" once set up, then\n"
	      "\"hotplug <n>\" (n: vCPU stats fds open) after each SIGUSR1/SIGUSR2.\n"
	      "Exit status 1 with the reason on stderr when KVM is unusable.\n", f);
}

/* ---- the guest ---------------------------------------------------------- */

/*
 * Real mode at 0:0x1000:  out 0x10, al; inc al; hlt; jmp back.  Without an
 * in-kernel irqchip KVM hands both the OUT and the HLT to us.
 */
static const uint8_t guest_code[] = {
	0xe6, GUEST_PORT,	/* out 0x10, al */
	0xfe, 0xc0,		/* inc al */
	0xf4,			/* hlt */
	0xeb, 0xf9,		/* jmp -7 (to the out) */
};

static void
setup_memory(struct vmm *m)
{
	struct kvm_userspace_memory_region region = { 0 };
	void *mem;

	mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap guest memory: %s", strerror(errno));
	memcpy((uint8_t *)mem + GUEST_CODE, guest_code, sizeof(guest_code));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_MEM;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
}

static void
setup_regs(int fd, unsigned id)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		die("vCPU %u: KVM_GET_SREGS: %s", id, strerror(errno));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		die("vCPU %u: KVM_SET_SREGS: %s", id, strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_CODE;
	regs.rflags = 2;	/* bit 1 is reserved and must be set */
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		die("vCPU %u: KVM_SET_REGS: %s", id, strerror(errno));
}

static void
sleep_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void *
vcpu_thread(void *arg)
{
	struct vcpu *v = arg;

	for (;;) {
		if (ioctl(v->fd, KVM_RUN, NULL) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN: %s", strerror(errno));
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			break;
		case KVM_EXIT_HLT:
			sleep_1ms();	/* a guest that idles, not one that spins */
			break;
		default:
			die("unexpected KVM exit reason %u", v->run->exit_reason);
		}
	}
	return NULL;
}

/* ---- the VM ------------------------------------------------------------- */

static void
open_vm(struct vmm *m)
{
	int size;

	m->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (m->kvm < 0)
		die("cannot open /dev/kvm: %s (no KVM on this machine, or no access to it)",
		    strerror(errno));
	if (ioctl(m->kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0)
		die("the kernel lacks KVM_CAP_BINARY_STATS_FD (Linux < 5.14)");
	size = ioctl(m->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	m->run_size = (size_t)size;
	m->vm = ioctl(m->kvm, KVM_CREATE_VM, 0);
	if (m->vm < 0)
		die("KVM_CREATE_VM: %s", strerror(errno));
#if defined(__x86_64__) || defined(__i386__)
	/* Intel without unrestricted guest needs it for real mode; harmless elsewhere. */
	if (ioctl(m->vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		die("KVM_SET_TSS_ADDR: %s", strerror(errno));
#endif
	m->vm_stats_fd = -1;
}

static void
start_vcpu(struct vmm *m, struct vcpu *v)
{
	int ret;

	v->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED)
		die("mmap kvm_run: %s", strerror(errno));
	ret = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (ret != 0)
		die("pthread_create: %s", strerror(ret));
}

static void
add_vcpu(struct vmm *m)
{
	unsigned id = m->nr_vcpus;
	struct vcpu *v = &m->vcpu[id];

	if (id >= MAX_VCPUS)
		die("at most %d vCPUs", MAX_VCPUS);
	v->fd = ioctl(m->vm, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		die("KVM_CREATE_VCPU %u: %s", id, strerror(errno));
	v->stats_fd = -1;
	/* Before the vCPU first runs, as QEMU does: the ioctl never waits for KVM_RUN. */
	if (m->vcpu_stats) {
		v->stats_fd = ioctl(v->fd, KVM_GET_STATS_FD, NULL);
		if (v->stats_fd < 0)
			die("KVM_GET_STATS_FD on vCPU %u: %s", id, strerror(errno));
	}
	m->nr_vcpus++;
	if (m->run) {
		setup_regs(v->fd, id);
		start_vcpu(m, v);
	}
}

static unsigned
open_vcpu_stats(const struct vmm *m)
{
	unsigned i, n = 0;

	for (i = 0; i < m->nr_vcpus; i++)
		n += m->vcpu[i].stats_fd >= 0;
	return n;
}

static void
remove_vcpu_stats(struct vmm *m)
{
	unsigned i;

	for (i = m->nr_vcpus; i-- > 0;) {
		if (m->vcpu[i].stats_fd >= 0) {
			close(m->vcpu[i].stats_fd);
			m->vcpu[i].stats_fd = -1;
			return;
		}
	}
}

static unsigned
parse_vcpus(const char *s)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || n > MAX_VCPUS) {
		fprintf(stderr, "test_vmm: --vcpus: \"%s\" is not a number from 0 to %d\n",
			s, MAX_VCPUS);
		exit(2);
	}
	return (unsigned)n;
}

static void
parse_args(int argc, char **argv, struct vmm *m, unsigned *nr)
{
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, 'n' },
		{ "vm-stats-fd", no_argument, NULL, 'V' },
		{ "no-vcpu-stats-fds", no_argument, NULL, 'S' },
		{ "run", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool vm_stats = false;
	int c;

	*nr = 1;
	m->vcpu_stats = true;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': *nr = parse_vcpus(optarg); break;
		case 'V': vm_stats = true; break;
		case 'S': m->vcpu_stats = false; break;
		case 'r': m->run = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	m->vm_stats_fd = vm_stats ? 0 : -1;	/* marker until the VM exists */
}

/* Signals are taken synchronously by the main thread only. */
static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0)
		die("pthread_sigmask failed");
}

int
main(int argc, char **argv)
{
	static struct vmm m;
	unsigned i, nr;
	bool want_vm_stats;
	sigset_t set;
	int sig;

	parse_args(argc, argv, &m, &nr);
	/* A test that failed and went away takes its VMM with it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	want_vm_stats = m.vm_stats_fd == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	block_signals(&set);	/* before any thread: they all inherit the mask */
	open_vm(&m);
	if (want_vm_stats) {
		m.vm_stats_fd = ioctl(m.vm, KVM_GET_STATS_FD, NULL);
		if (m.vm_stats_fd < 0)
			die("KVM_GET_STATS_FD on the VM: %s", strerror(errno));
	}
	if (m.run)
		setup_memory(&m);
	for (i = 0; i < nr; i++)
		add_vcpu(&m);
	printf("ready %d\n", (int)getpid());
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			die("sigwait failed");
		switch (sig) {
		case SIGUSR1:
			add_vcpu(&m);
			printf("hotplug %u\n", open_vcpu_stats(&m));
			break;
		case SIGUSR2:
			remove_vcpu_stats(&m);
			printf("hotplug %u\n", open_vcpu_stats(&m));
			break;
		default:
			/* exit_group() takes the vCPU threads down with us. */
			exit(0);
		}
	}
}
