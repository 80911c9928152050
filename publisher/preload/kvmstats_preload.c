/* SPDX-License-Identifier: MIT */
/*
 * kvmstats_preload.c - libkvmstats-preload.so: KVM statistics of an
 * unmodified VMM, by LD_PRELOAD.
 *
 * The shim wraps the C library's ioctl().  Every request goes straight to
 * the real ioctl after one compare, except KVM_CREATE_VM and
 * KVM_CREATE_VCPU: when one of those succeeds, the shim takes the new VM's
 * or vCPU's stats fd (KVM_GET_STATS_FD) at once, on the creating thread -
 * later a vCPU ioctl would block behind KVM_RUN - and either publishes it
 * from inside the VMM with the embedded publisher ("inprocess") or hands it
 * to kvmstatsd over the intake socket ("socket").  In inprocess mode a
 * KVM_RUN on a vCPU fd also names the thread that runs the vCPU, for the
 * "sched" provider, whenever that thread changes (QEMU's parked vCPU fds
 * are run by a new thread after an unplug and replug): on the KVM_RUN path
 * one relaxed load of the fd's last running thread and one of this
 * thread's cached id (initial-exec TLS), compared; the lock only when they
 * differ.
 *
 * Whatever goes wrong, the VMM must not notice: its ioctl's return value and
 * errno are its own, failures are logged once and switch the shim off, and
 * nothing is printed on success unless KVMSTATS_PRELOAD_VERBOSE=1.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "embed_sched.h"
#include "engine.h"
#include "ks_shmdir.h"
#include "ks_sigbus.h"
#include "ks_text.h"
#include "kvmstats/intake.h"
#include "kvmstats/publisher.h"
#include "kvmstats/reader.h"
#include "qemu_name.h"
#include "qemu_qmp.h"

/* The declaration <sys/ioctl.h> already gives; repeated for the reader. */
int ioctl(int fd, unsigned long request, ...);

#define SHIM_NAME_MAX		48	/* base VM name; ".<n>" and a NUL still fit 64 */
#define SHIM_QUIET_NS		(200 * 1000 * 1000ull)	/* fd set stable this long: publish */
#define SHIM_IDLE_NS		(10 * 1000 * 1000 * 1000ull)
/* Asking QEMU for QOM paths again, while some vCPU has none: after 1, 2, 4 ... 32 s. */
#define SHIM_LABEL_TRIES	6
#define SHIM_LABEL_FIRST_NS	(1000 * 1000 * 1000ull)
#define SHIM_SOCK_TIMEOUT_S	5	/* a stuck daemon must not hang the VMM for long */
#define SHIM_DEFAULT_HZ		100
#define SHIM_DEFAULT_SOCKET	"/run/kvmstats/intake.sock"
/* vCPU fds below this are watched for KVM_RUN (the last running thread, a word each). */
#define SHIM_WATCH_FDS		4096

/*
 * KVM_CREATE_VM and KVM_CREATE_VCPU differ in a single bit, so that
 * "request | bit == KVM_CREATE_VCPU" is true for exactly these two: the
 * fast path costs one OR and one compare.
 */
#define CREATE_BIT	((unsigned long)(KVM_CREATE_VM ^ KVM_CREATE_VCPU))
_Static_assert(CREATE_BIT != 0 && (CREATE_BIT & (CREATE_BIT - 1)) == 0,
	       "KVM_CREATE_VM and KVM_CREATE_VCPU differ in one bit");
_Static_assert((KVM_CREATE_VM | CREATE_BIT) == KVM_CREATE_VCPU, "the bit is VCPU's");

typedef int (*ioctl_fn)(int fd, unsigned long request, ...);

enum shim_mode {
	MODE_OFF,
	MODE_INPROCESS,
	MODE_SOCKET,
};

struct shim_vcpu {
	int stats_fd;			/* socket mode: -1 once sent */
	int relabel_fd;			/* socket mode: a copy of it, sent again once labelled; or -1 */
	uint32_t id;
	pid_t tid;			/* the creating thread: KVM's id says kvm-<tid>/vcpu-<id> */
	int vcpu_fd;			/* inprocess: watched for KVM_RUN; or -1 */
	pid_t run_tid;			/* the thread of its last KVM_RUN; 0: not seen yet */
	pid_t told_tid;			/* the one the publisher was told of; 0: none */
	char label[KS_QEMU_QOM_MAX + 1];	/* QEMU's QOM path; "": KVM's id */
};

/* One VM of the VMM, keyed by its VM fd number. */
struct shim_vm {
	struct shim_vm *next;
	int vm_fd;
	char name[64];
	int stats_fd;			/* inprocess: kept for every generation; socket: -1 */
	struct shim_vcpu *vcpus;
	unsigned nr_vcpus, cap_vcpus;
	bool dirty;			/* fd set changed since it was last published */
	bool gone;			/* its fd number went to a new VM: end it */
	bool renamed;			/* gave its -name way to another VM (vm_give_way()) */
	unsigned seq;			/* 1 for the process's first VM, 2, ... */
	uint64_t changed_ns;
	unsigned label_tries;		/* questions to QEMU that it did not answer */
	bool label_warned;		/* said that QEMU names some vCPUs not */
	bool runners_new;		/* a vCPU's running thread to tell the publisher */
	uint64_t label_due_ns;		/* when to ask again; 0: no need */
	struct kvmstats_vm *pub;	/* the publisher thread's alone */
};

static struct shim {
	/* Read once, at the first KVM_CREATE_VM. */
	enum shim_mode mode;
	bool verbose;
	unsigned hz;
	char name[SHIM_NAME_MAX + 1];
	bool name_derived;		/* from QEMU's -name: gives way to a live VM of that name */
	char socket_path[108];
	char qmp_path[108];		/* a QMP monitor of ours to ask for QOM paths; "": none */
	pid_t pid;			/* the process that read them: only it publishes */
	atomic_bool configured;

	atomic_bool disabled;		/* a failure switched the shim off */
	atomic_bool failure_logged;

	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;		/* wakes the publisher thread */
	bool stopping;
	unsigned nr_vms_named;
	struct shim_vm *vms;
	bool thread_started;
	bool qmp_warned;		/* asking QEMU failed: said once until it works */
	pthread_t thread;
	struct kvmstats_publisher *pub;	/* created and used by the publisher thread */
	int cancel_fd;			/* readable at exit: a QMP question gives up */
	int sock;			/* socket mode: the intake connection, or -1 */
} shim = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.sock = -1,
	.cancel_fd = -1,
};

static ioctl_fn _Atomic real_ioctl;
/*
 * Per fd number: 0 not a watched vCPU fd; RUN_NONE a vCPU's (inprocess)
 * not run yet; else the thread of its last KVM_RUN, as far as the shim has
 * seen.  Written under shim.lock (or, in a forked child, by its own copy).
 */
#define RUN_NONE	((pid_t)-1)
static _Atomic pid_t run_tid[SHIM_WATCH_FDS];
/* This thread's id once it has passed a KVM_RUN; 0 in a new thread (and after fork). */
static __thread pid_t my_tid __attribute__((tls_model("initial-exec")));

/* In a forked child: the thread that forked has another id there. */
static void
forget_tid(void)
{
	my_tid = 0;
}
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;
static pthread_t _Atomic resolver;	/* the thread inside dlsym(), if any */

/* ---- the real ioctl ------------------------------------------------- */

/* Used while dlsym() runs (it may allocate, and an allocator may ioctl). */
static int
syscall_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

static void
resolve(void)
{
	ioctl_fn f;

	atomic_store(&resolver, pthread_self());
	f = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
	atomic_store(&resolver, (pthread_t)0);
	atomic_store_explicit(&real_ioctl, f ? f : syscall_ioctl, memory_order_release);
}

static ioctl_fn
resolve_real_ioctl(void)
{
	/* dlsym() called back into us: pthread_once() would deadlock. */
	if (pthread_equal(atomic_load(&resolver), pthread_self()))
		return syscall_ioctl;
	pthread_once(&resolve_once, resolve);
	return atomic_load_explicit(&real_ioctl, memory_order_acquire);
}

/* ---- messages ------------------------------------------------------- */

static void shim_vsay(const char *fmt, va_list ap, const char *suffix)
	__attribute__((format(printf, 1, 0)));
static void shim_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void shim_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void shim_tell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * One whole line, however long the message: it is cut (with "...") to
 * leave room for the suffix and the newline, and escaped, because it
 * quotes environment variables and names (ks_text.h).
 */
static void
shim_vsay(const char *fmt, va_list ap, const char *suffix)
{
	static const char prefix[] = "kvmstats-preload: ", cut[] = "...";
	char msg[512], line[1024];
	size_t n, room;

	if (vsnprintf(msg, sizeof(msg), fmt, ap) >= (int)sizeof(msg))
		memcpy(msg + sizeof(msg) - sizeof(cut), cut, sizeof(cut));
	memcpy(line, prefix, sizeof(prefix) - 1);
	n = sizeof(prefix) - 1;
	/* Escaping may grow the message: leave room for the suffix and "\n". */
	room = sizeof(line) - n - strlen(suffix) - 1;
	ks_text_escape(line + n, room, msg);
	n += strlen(line + n);
	memcpy(line + n, suffix, strlen(suffix));
	n += strlen(suffix);
	line[n++] = '\n';
	/* One write(): no stdio lock, no line torn by the VMM's own output. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

/* A failure: said once per process, and the shim takes no more fds. */
static void
shim_fail(const char *fmt, ...)
{
	va_list ap;

	atomic_store(&shim.disabled, true);
	if (atomic_exchange(&shim.failure_logged, true))
		return;
	va_start(ap, fmt);
	shim_vsay(fmt, ap, "; the VMM goes on without KVM stats");
	va_end(ap);
}

static void
shim_info(const char *fmt, ...)
{
	va_list ap;

	if (!shim.verbose)
		return;
	va_start(ap, fmt);
	shim_vsay(fmt, ap, "");
	va_end(ap);
}

static void
shim_tell(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shim_vsay(fmt, ap, "");
	va_end(ap);
}

/*
 * What the publisher reports (a segment truncated under it): said always,
 * not only when verbose, for it is not the VMM's doing; the engine says it
 * once per event.
 */
static void
shim_event(const char *line)
{
	shim_tell("%s", line);
}

static const char *
errstr(int e, char *buf, size_t len)
{
	return strerror_r(e, buf, len);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- configuration -------------------------------------------------- */

static bool
parse_mode(const char *s)
{
	if (s == NULL || *s == '\0' || strcmp(s, "inprocess") == 0)
		shim.mode = MODE_INPROCESS;
	else if (strcmp(s, "socket") == 0)
		shim.mode = MODE_SOCKET;
	else if (strcmp(s, "off") == 0)
		shim.mode = MODE_OFF;
	else
		return false;
	return true;
}

static bool
parse_hz(const char *s)
{
	char *end;
	unsigned long v;

	shim.hz = SHIM_DEFAULT_HZ;
	if (s == NULL || *s == '\0')
		return true;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v < KS_HZ_MIN || v > KS_HZ_MAX)
		return false;
	shim.hz = (unsigned)v;
	return true;
}

/* Return: NULL, or what is wrong with the name (in @why). */
static const char *
parse_name(const char *s, char *why, size_t len)
{
	if (s == NULL || *s == '\0') {
		char guest[KVMSTATS_VM_NAME_MAX + 1], gwhy[160];
		int r = ks_qemu_name_of_pid(shim.pid, guest, sizeof(guest), gwhy, sizeof(gwhy));

		if (r == 1 && strlen(guest) > SHIM_NAME_MAX) {
			r = -EINVAL;
			snprintf(gwhy, sizeof(gwhy), "its guest name is longer than %d bytes",
				 SHIM_NAME_MAX);
		}
		if (r < 0)
			shim_tell("not naming the VM after QEMU's -name: %s; it is kvm-%d",
				  gwhy, (int)shim.pid);
		if (r == 1) {
			strcpy(shim.name, guest);
			shim.name_derived = true;
		} else {
			snprintf(shim.name, sizeof(shim.name), "kvm-%d", (int)shim.pid);
		}
		return NULL;
	}
	s = ks_vm_name_of(s);
	if (strlen(s) > SHIM_NAME_MAX) {
		snprintf(why, len, "is longer than %d bytes", SHIM_NAME_MAX);
		return why;
	}
	if (ks_vm_name_fault(s, why, len) != NULL)
		return why;
	strcpy(shim.name, s);
	return NULL;
}

static bool
parse_socket(const char *s)
{
	if (s == NULL || *s == '\0')
		s = SHIM_DEFAULT_SOCKET;
	if (strlen(s) >= sizeof(shim.socket_path))
		return false;
	strcpy(shim.socket_path, s);
	return true;
}

static bool
parse_qmp(const char *s)
{
	if (s == NULL || *s == '\0')
		return true;
	if (strlen(s) >= sizeof(shim.qmp_path))
		return false;
	strcpy(shim.qmp_path, s);
	return true;
}

static void
read_config(void)
{
	const char *mode = secure_getenv("KVMSTATS_PRELOAD_MODE");
	const char *hz = secure_getenv("KVMSTATS_PRELOAD_HZ");
	const char *name = secure_getenv("KVMSTATS_PRELOAD_NAME");
	const char *sock = secure_getenv("KVMSTATS_SOCKET");
	const char *verbose = secure_getenv("KVMSTATS_PRELOAD_VERBOSE");
	const char *qmp = secure_getenv("KVMSTATS_PRELOAD_QMP");
	pthread_condattr_t ca;
	char why[128];

	shim.pid = getpid();
	pthread_atfork(NULL, NULL, forget_tid);
	shim.verbose = verbose != NULL && strcmp(verbose, "1") == 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&shim.cond, &ca);
	pthread_condattr_destroy(&ca);

	if (!parse_mode(mode))
		shim_fail("KVMSTATS_PRELOAD_MODE=%s is not inprocess, socket or off", mode);
	else if (!parse_hz(hz))
		shim_fail("KVMSTATS_PRELOAD_HZ=%s is not a number from %d to %d", hz,
			  KS_HZ_MIN, KS_HZ_MAX);
	else if (parse_name(name, why, sizeof(why)) != NULL)
		shim_fail("KVMSTATS_PRELOAD_NAME=%s %s: it names the VM's segment", name, why);
	else if (!parse_socket(sock))
		shim_fail("KVMSTATS_SOCKET=%s is too long for a socket path", sock);
	else if (!parse_qmp(qmp))
		shim_fail("KVMSTATS_PRELOAD_QMP=%s is too long for a socket path", qmp);
	else if (shim.mode == MODE_INPROCESS)
		shim_info("in-process publisher at %u Hz, VM name %s", shim.hz, shim.name);
	else if (shim.mode == MODE_SOCKET)
		shim_info("handing stats fds to kvmstatsd at %s, VM name %s",
			  shim.socket_path, shim.name);
	atomic_store(&shim.configured, true);
}

/*
 * May this process take stats fds now?  A forked child shares our table,
 * fds and lock state but none of our threads: it publishes nothing.
 */
static bool
shim_active(void)
{
	pthread_once(&config_once, read_config);
	if (shim.mode == MODE_OFF || atomic_load(&shim.disabled))
		return false;
	return getpid() == shim.pid;
}

/* ---- taking stats fds ----------------------------------------------- */

/* Is @fd a KVM VM fd?  Unknown (no /proc) counts as yes: the request said so. */
static bool
is_vm_fd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return true;
	link[n] = '\0';
	return strcmp(link, "anon_inode:kvm-vm") == 0;
}

static int
take_stats_fd(int fd, const char *what, unsigned id)
{
	ioctl_fn real = atomic_load_explicit(&real_ioctl, memory_order_acquire);
	char eb[128];
	int sfd, flags;

	sfd = real(fd, KVM_GET_STATS_FD, NULL);
	if (sfd < 0) {
		int e = errno;

		shim_fail("KVM_GET_STATS_FD on %s %u failed: %s%s", what, id,
			  errstr(e, eb, sizeof(eb)),
			  e == EINVAL || e == ENOTTY ? " (Linux before 5.14 has no binary stats)" : "");
		return -1;
	}
	/* The kernel makes it O_CLOEXEC; a helper the VMM execs must not inherit it. */
	flags = fcntl(sfd, F_GETFD);
	if (flags >= 0 && !(flags & FD_CLOEXEC))
		fcntl(sfd, F_SETFD, flags | FD_CLOEXEC);
	return sfd;
}

/* ---- the table of VMs (shim.lock held) ------------------------------- */

static struct shim_vm *
vm_find(int vm_fd)
{
	struct shim_vm *vm;

	for (vm = shim.vms; vm; vm = vm->next)
		if (vm->vm_fd == vm_fd && !vm->gone)
			return vm;
	return NULL;
}

static void
vm_free(struct shim_vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].stats_fd >= 0)
			close(vm->vcpus[i].stats_fd);
		if (vm->vcpus[i].relabel_fd >= 0)
			close(vm->vcpus[i].relabel_fd);
	}
	if (vm->stats_fd >= 0)
		close(vm->stats_fd);
	free(vm->vcpus);
	free(vm);
}

static void
vm_unlink(struct shim_vm *vm)
{
	struct shim_vm **p;

	for (p = &shim.vms; *p; p = &(*p)->next) {
		if (*p == vm) {
			*p = vm->next;
			return;
		}
	}
}

/* The VM's name from base name @base: the first VM's is @base, later ones "<base>.<n>". */
static void
vm_name_from(struct shim_vm *vm, const char *base)
{
	if (vm->seq == 1)
		snprintf(vm->name, sizeof(vm->name), "%s", base);
	else
		snprintf(vm->name, sizeof(vm->name), "%s.%u", base, vm->seq);
}

/*
 * A name from QEMU's -name gives way to a live publisher's VM of that name:
 * the VM becomes kvm-<pid> (as without -name), and that is said.  Return:
 * whether it was renamed (so the caller tries once more).
 */
static bool
vm_give_way(struct shim_vm *vm, const char *why)
{
	char dflt[32];

	if (!shim.name_derived || vm->renamed)
		return false;
	vm->renamed = true;
	snprintf(dflt, sizeof(dflt), "kvm-%d", (int)shim.pid);
	shim_tell("VM %s: the name from QEMU's -name is taken (%s); publishing it as %s%s",
		  vm->name, why, dflt, vm->seq > 1 ? " with its number" : "");
	vm_name_from(vm, dflt);
	return true;
}

/* A new VM: the first gets the base name, later ones "<name>.<n>". */
static struct shim_vm *
vm_new(int vm_fd, int stats_fd)
{
	struct shim_vm *vm = calloc(1, sizeof(*vm));

	if (vm == NULL) {
		shim_fail("out of memory for VM fd %d", vm_fd);
		return NULL;
	}
	vm->vm_fd = vm_fd;
	vm->stats_fd = stats_fd;
	vm->seq = ++shim.nr_vms_named;
	vm_name_from(vm, shim.name);
	vm->dirty = true;
	vm->changed_ns = now_ns();
	vm->next = shim.vms;
	shim.vms = vm;
	return vm;
}

static bool
vm_add_vcpu(struct shim_vm *vm, int stats_fd, uint32_t id, int vcpu_fd)
{
	if (vm->nr_vcpus == vm->cap_vcpus) {
		unsigned cap = vm->cap_vcpus ? 2 * vm->cap_vcpus : 8;
		struct shim_vcpu *v = realloc(vm->vcpus, cap * sizeof(*v));

		if (v == NULL) {
			shim_fail("out of memory for vCPU %u of VM %s", id, vm->name);
			return false;
		}
		vm->vcpus = v;
		vm->cap_vcpus = cap;
	}
	vm->vcpus[vm->nr_vcpus++] = (struct shim_vcpu) {
		.stats_fd = stats_fd, .relabel_fd = -1, .id = id, .tid = (pid_t)syscall(SYS_gettid),
		.vcpu_fd = -1,
	};
	if (shim.mode == MODE_INPROCESS && vcpu_fd >= 0 && vcpu_fd < SHIM_WATCH_FDS) {
		vm->vcpus[vm->nr_vcpus - 1].vcpu_fd = vcpu_fd;
		atomic_store_explicit(&run_tid[vcpu_fd], RUN_NONE, memory_order_relaxed);
	}
	vm->dirty = true;
	vm->changed_ns = now_ns();
	return true;
}

/* ---- inprocess: the publisher thread ---------------------------------- */

static bool
ensure_publisher(void)
{
	struct kvmstats_publisher_opts o;
	struct kvmstats_error err;

	if (shim.pub)
		return true;
	kvmstats_publisher_opts_init(&o);
	o.hz = shim.hz;
	o.dir = NULL;			/* $KVMSTATS_SHM_DIR or /dev/shm */
	o.log = shim_event;
	if (kvmstats_publisher_create(&o, &shim.pub, &err) < 0) {
		shim_fail("cannot start the in-process publisher: %s", err.msg);
		return false;
	}
	return true;
}

/*
 * The VM's whole fd set, for the embedded API, labels included, in one
 * allocation of its own: it is used with the lock dropped, while a vCPU
 * being created may realloc() vm->vcpus.  Lock held.
 */
static struct kvmstats_fd *
vm_fd_set(const struct shim_vm *vm, unsigned *n)
{
	size_t nr = 1 + (size_t)vm->nr_vcpus;
	struct kvmstats_fd *fds = calloc(nr, sizeof(*fds) + KS_QEMU_QOM_MAX + 1);
	char (*labels)[KS_QEMU_QOM_MAX + 1];

	if (fds == NULL) {
		shim_fail("out of memory publishing VM %s", vm->name);
		return NULL;
	}
	labels = (void *)(fds + nr);
	fds[0] = (struct kvmstats_fd) { vm->stats_fd, KVMSTATS_TARGET_VM, 0, NULL };
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		memcpy(labels[i], vm->vcpus[i].label, sizeof(labels[i]));
		fds[1 + i] = (struct kvmstats_fd) {
			vm->vcpus[i].stats_fd, KVMSTATS_TARGET_VCPU, vm->vcpus[i].id,
			labels[i][0] ? labels[i] : NULL,
		};
	}
	*n = (unsigned)nr;
	return fds;
}

/*
 * The vCPUs' threads as the shim saw them (gettid(): right in any pid
 * namespace, unlike the host tid in KVM's ids), for the embedded
 * publisher, in one allocation of its own (used with the lock dropped).
 * Lock held.  Return: what to free, or NULL (out of memory: said).
 */
static struct ks_sched_thread *
vm_threads(const struct shim_vm *vm, struct ks_embed_threads *th)
{
	struct ks_sched_thread *t = calloc(2 * (size_t)vm->nr_vcpus + 1, sizeof(*t));
	uint32_t nr = vm->nr_vcpus, runs = 0;

	if (t == NULL) {
		shim_fail("out of memory publishing VM %s", vm->name);
		return NULL;
	}
	for (uint32_t i = 0; i < nr; i++) {
		const struct shim_vcpu *c = &vm->vcpus[i];

		t[i] = (struct ks_sched_thread) { .vcpu_index = c->id, .tid = c->tid };
		if (c->run_tid > 0)
			t[nr + runs++] = (struct ks_sched_thread) {
				.vcpu_index = c->id, .tid = c->run_tid, .runs = true,
			};
	}
	*th = (struct ks_embed_threads) {
		.creators = t, .nr_creators = nr, .runners = t + nr, .nr_runners = runs,
	};
	return t;
}

/* Whether vCPU @i of @vm is the only one its thread created. */
static bool
tid_unique(const struct shim_vm *vm, unsigned i)
{
	for (unsigned j = 0; j < vm->nr_vcpus; j++)
		if (j != i && vm->vcpus[j].tid == vm->vcpus[i].tid)
			return false;
	return true;
}

/*
 * QEMU's QOM paths for the vCPUs that have none yet, asked over
 * KVMSTATS_PRELOAD_QMP: the thread that created a vCPU is the one
 * query-cpus-fast reports as its thread-id (a thread that created two
 * vCPUs names neither).  Lock held, dropped while QEMU is asked: QEMU
 * answers from its main loop, which may itself be waiting for a vCPU
 * thread that needs the lock to finish KVM_CREATE_VCPU.  Only this thread
 * frees VMs, so @vm stays; new vCPUs may come meanwhile, and are labelled
 * in the next round.  While a vCPU is left without a label (QEMU busy or
 * not answering yet), QEMU is asked again after 1, 2, 4 ... 32 s.
 * Return: whether a label was given.
 */
static bool
label_vcpus(struct shim_vm *vm)
{
	struct kvmstats_error err;
	struct ks_qemu_cpus cpus;
	bool missing = false, changed = false;
	int r;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		missing |= vm->vcpus[i].label[0] == '\0';
	vm->label_due_ns = 0;
	if (!missing || shim.qmp_path[0] == '\0')
		return false;
	pthread_mutex_unlock(&shim.lock);
	r = ks_qemu_query_cpus(shim.qmp_path, shim.pid, 0, shim.cancel_fd, &cpus, &err);
	pthread_mutex_lock(&shim.lock);
	if (r == -ECANCELED)
		return false;
	missing = false;
	for (unsigned i = 0; r == 0 && i < vm->nr_vcpus; i++) {
		struct shim_vcpu *c = &vm->vcpus[i];
		const char *qom = ks_qemu_qom_of_tid(&cpus, c->tid);

		if (c->label[0] == '\0' && qom != NULL && tid_unique(vm, i)) {
			strcpy(c->label, qom);
			changed = true;
		}
		missing |= c->label[0] == '\0';
	}
	/*
	 * QEMU answered: a vCPU it does not list by its thread (or one thread
	 * that made two) would not be named by asking again.
	 */
	if (r == 0) {
		ks_qemu_cpus_clear(&cpus);
		if (missing && !vm->label_warned)
			shim_tell("VM %s: some vCPUs keep KVM's ids: query-cpus-fast names no "
				  "vCPU on the thread that created them", vm->name);
		vm->label_warned |= missing;
		if (vm->label_tries > 0)
			shim_tell("VM %s: its vCPUs carry QEMU's QOM paths now", vm->name);
		vm->label_tries = 0;
		return changed;
	}
	if (vm->label_tries == 0)
		shim_tell("VM %s: vCPUs keep KVM's ids for now, not QEMU's QOM paths: %s; "
			  "asking again", vm->name, err.msg);
	if (++vm->label_tries < SHIM_LABEL_TRIES)
		vm->label_due_ns = now_ns() + (SHIM_LABEL_FIRST_NS << (vm->label_tries - 1));
	else
		shim_tell("VM %s: given up asking QEMU for QOM paths after %d tries", vm->name,
			  SHIM_LABEL_TRIES);
	return changed;
}

/* One fd of a socket-mode batch: taken from the table, sent with the lock dropped. */
struct held_fd {
	enum ks_target_kind kind;
	uint32_t id;
	int fd;
	char label[KS_QEMU_QOM_MAX + 1];
};

static int send_held(struct shim_vm *vm, char *name, size_t len, const struct held_fd *h,
		     bool locked);

/*
 * Socket mode with labels: the fds held back (and those sent before
 * without a label, once they have one), sent now, then published.  The
 * table gives them up under the lock; they are sent with it dropped, so
 * that a daemon slow to answer holds up this thread only, never a vCPU
 * being created; the first refusal switches the shim off and ends the
 * batch.  While a vCPU has no label yet, a copy of its fd is kept to send
 * again once it has one.  Lock held, dropped inside.
 */
static void
socket_publish(struct shim_vm *vm)
{
	struct kvmstats_error err;
	struct held_fd *h = calloc(1 + (size_t)vm->nr_vcpus, sizeof(*h));
	bool retry = vm->label_due_ns != 0;
	char name[sizeof(vm->name)];
	unsigned n = 0, i;
	int r = 0;

	if (h == NULL) {
		shim_fail("out of memory publishing VM %s", vm->name);
		return;
	}
	if (vm->stats_fd >= 0) {
		h[n++] = (struct held_fd) { .kind = KS_TARGET_VM, .fd = vm->stats_fd };
		vm->stats_fd = -1;
	}
	for (i = 0; i < vm->nr_vcpus; i++) {
		struct shim_vcpu *c = &vm->vcpus[i];
		int fd = c->stats_fd >= 0 ? c->stats_fd : c->label[0] ? c->relabel_fd : -1;

		if (c->relabel_fd >= 0 && c->label[0] == '\0' && !retry) {
			close(c->relabel_fd);	/* QEMU was asked for the last time */
			c->relabel_fd = -1;
		}
		if (fd < 0)
			continue;
		h[n] = (struct held_fd) { .kind = KS_TARGET_VCPU, .id = c->id, .fd = fd };
		memcpy(h[n++].label, c->label, sizeof(c->label));
		if (fd == c->relabel_fd)
			c->relabel_fd = -1;
		else if (c->label[0] == '\0' && retry)
			c->relabel_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		c->stats_fd = -1;
	}
	memcpy(name, vm->name, sizeof(name));
	pthread_mutex_unlock(&shim.lock);
	for (i = 0; i < n; i++) {
		if (r == 0 && !atomic_load(&shim.disabled))
			r = send_held(vm, name, sizeof(name), &h[i], false);
		close(h[i].fd);
	}
	if (n > 0 && r == 0 && !atomic_load(&shim.disabled) &&
	    kvmstats_intake_publish(shim.sock, name, &err) < 0)
		shim_fail("kvmstatsd did not publish VM %s: %s", name, err.msg);
	free(h);
	pthread_mutex_lock(&shim.lock);
}

/* Publish a VM (first time) or its next generation.  Lock held, dropped inside. */
/*
 * Tell the embedded publisher which thread runs each vCPU, as last seen in
 * KVM_RUN: when one changes, and after every publish (a generation starts
 * from the threads known when it was built; one may have moved since).
 * Lock held; the calls only store a word.
 */
static void
tell_runners(struct shim_vm *vm)
{
	vm->runners_new = false;
	if (vm->pub == NULL)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct shim_vcpu *c = &vm->vcpus[i];

		if (c->run_tid > 0 && ks_embed_vcpu_runs(vm->pub, c->id, c->run_tid) == 0 &&
		    c->told_tid != c->run_tid)
			shim_info("VM %s vCPU %u runs on thread %d", vm->name, c->id,
				  (int)c->run_tid);
		c->told_tid = c->run_tid;
	}
}

static void
publish_vm(struct shim_vm *vm)
{
	struct kvmstats_error err;
	struct ks_embed_threads th;
	struct ks_sched_thread *threads;
	struct kvmstats_fd *fds;
	bool dirty = vm->dirty;
	unsigned n = 0;
	int ret;

	vm->dirty = false;
	/* A second question to QEMU that taught nothing new changes nothing. */
	if (!label_vcpus(vm) && !dirty)
		return;
	if (shim.mode == MODE_SOCKET) {
		socket_publish(vm);
		return;
	}
	fds = vm_fd_set(vm, &n);
	if (fds == NULL)
		return;
	threads = vm_threads(vm, &th);
	if (threads == NULL) {
		free(fds);
		return;
	}
	/* Runners seen from here on are told after the publish (tell_runners()). */
	vm->runners_new = false;
	pthread_mutex_unlock(&shim.lock);
	if (!ensure_publisher()) {
		ret = -1;
	} else if (vm->pub == NULL) {
		ret = ks_embed_add_vm(shim.pub, vm->name, fds, n, &th, &vm->pub, &err);
		if (ret == -EEXIST) {
			bool again;

			pthread_mutex_lock(&shim.lock);
			again = vm_give_way(vm, err.msg);
			pthread_mutex_unlock(&shim.lock);
			if (again)
				ret = ks_embed_add_vm(shim.pub, vm->name, fds, n, &th,
						      &vm->pub, &err);
		}
	} else {
		ret = ks_embed_update_vm(shim.pub, vm->pub, fds, n, &th, &err);
	}
	free(fds);
	free(threads);
	if (ret == 0)
		shim_info("published VM %s with %u vCPUs as %s", vm->name, n - 1,
			  kvmstats_vm_segment(vm->pub));
	else if (shim.pub)
		shim_fail("cannot publish VM %s: %s", vm->name, err.msg);
	pthread_mutex_lock(&shim.lock);
	if (ret == 0)
		tell_runners(vm);
}

/* A VM whose fd number a new VM took: end its segment.  Lock held, dropped inside. */
static void socket_end_vm(struct shim_vm *vm);

static void
end_vm(struct shim_vm *vm)
{
	if (shim.mode == MODE_SOCKET) {
		socket_end_vm(vm);
		return;
	}
	vm_unlink(vm);
	pthread_mutex_unlock(&shim.lock);
	if (vm->pub) {
		kvmstats_publisher_remove_vm(shim.pub, vm->pub);
		shim_info("VM %s ended", vm->name);
	}
	vm_free(vm);
	pthread_mutex_lock(&shim.lock);
}

/* The next VM with work to do, or NULL and how long until one is due. */
static struct shim_vm *
next_due(uint64_t *wait_ns)
{
	uint64_t now = now_ns();
	struct shim_vm *vm;

	*wait_ns = SHIM_IDLE_NS;
	for (vm = shim.vms; vm; vm = vm->next) {
		uint64_t age = now - vm->changed_ns;

		if (vm->gone)
			return vm;
		if (atomic_load(&shim.disabled))
			continue;
		/* Time to ask QEMU again for the QOM paths it did not give. */
		if (!vm->dirty && vm->label_due_ns != 0) {
			if (now >= vm->label_due_ns)
				return vm;
			if (vm->label_due_ns - now < *wait_ns)
				*wait_ns = vm->label_due_ns - now;
			continue;
		}
		if (!vm->dirty && vm->runners_new && vm->pub != NULL)
			return vm;
		if (!vm->dirty)
			continue;
		if (age >= SHIM_QUIET_NS)
			return vm;
		if (SHIM_QUIET_NS - age < *wait_ns)
			*wait_ns = SHIM_QUIET_NS - age;
	}
	return NULL;
}

static void
wait_for(uint64_t ns)
{
	uint64_t t = now_ns() + ns;
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
			       .tv_nsec = (long)(t % 1000000000ull) };

	pthread_cond_timedwait(&shim.cond, &shim.lock, &ts);
}

/*
 * Publishes each VM once its fd set has been quiet for SHIM_QUIET_NS, so a
 * VMM creating 64 vCPUs makes one segment, not 64 generations.
 */
static void *
publisher_thread(void *unused)
{
	(void)unused;
	ks_bus_allow();		/* the poll thread it starts inherits this */
	pthread_mutex_lock(&shim.lock);
	while (!shim.stopping) {
		uint64_t wait_ns;
		struct shim_vm *vm = next_due(&wait_ns);

		if (vm == NULL)
			wait_for(wait_ns);
		else if (vm->gone)
			end_vm(vm);
		else if (!vm->dirty && vm->runners_new && vm->pub != NULL)
			tell_runners(vm);
		else
			publish_vm(vm);
	}
	pthread_mutex_unlock(&shim.lock);
	return NULL;
}

/*
 * Start a thread that takes none of the VMM's signals (a VMM may expect
 * SIGUSR1 or SIGTERM on threads of its own); the engine's poll thread,
 * created from it, inherits the mask.  Lock held.
 */
static bool
ensure_thread(void)
{
	sigset_t all, old;
	int ret;

	if (shim.thread_started)
		return true;
	if (shim.qmp_path[0] != '\0' && shim.cancel_fd < 0)
		shim.cancel_fd = eventfd(0, EFD_CLOEXEC);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&shim.thread, NULL, publisher_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		char eb[128];

		shim_fail("cannot start the publisher thread: %s", errstr(ret, eb, sizeof(eb)));
		return false;
	}
	shim.thread_started = true;
	return true;
}

/* ---- socket: hand each fd to kvmstatsd --------------------------------- */

/* Lock held. */
static bool
ensure_connected(void)
{
	struct timeval tv = { .tv_sec = SHIM_SOCK_TIMEOUT_S };
	struct kvmstats_error err;
	int s;

	if (shim.sock >= 0)
		return true;
	s = kvmstats_intake_connect(shim.socket_path, &err);
	if (s < 0) {
		shim_fail("socket mode: %s", err.msg);
		return false;
	}
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	shim.sock = s;
	shim_info("connected to kvmstatsd at %s", shim.socket_path);
	return true;
}

/*
 * Send one stats fd of VM @name (closing ours is the caller's: the daemon
 * holds its own).  A VM fd refused for its name (-EEXIST) is sent once more
 * under the name the VM gives way to, when its name came from QEMU's
 * -name; @name is updated.  @locked: whether the caller holds shim.lock
 * (the give-way needs it).  Return: 0, or -1 (said, and the shim is off).
 */
static int
send_held(struct shim_vm *vm, char *name, size_t len, const struct held_fd *h, bool locked)
{
	enum kvmstats_target_kind kind = (enum kvmstats_target_kind)h->kind;
	struct kvmstats_error err;
	int r = kvmstats_intake_send_fd(shim.sock, name, kind, h->id, h->label, h->fd, &err);

	if (r == -EEXIST && h->kind == KS_TARGET_VM) {
		bool again;

		if (!locked)
			pthread_mutex_lock(&shim.lock);
		again = vm_give_way(vm, err.msg);
		snprintf(name, len, "%s", vm->name);
		if (!locked)
			pthread_mutex_unlock(&shim.lock);
		if (again)
			r = kvmstats_intake_send_fd(shim.sock, name, kind, h->id, h->label, h->fd,
						    &err);
	}
	if (r < 0) {
		shim_fail("kvmstatsd did not take the stats fd of VM %s%s: %s", name,
			  h->kind == KS_TARGET_VM ? "" : " vCPU", err.msg);
		return -1;
	}
	if (h->kind == KS_TARGET_VM)
		shim_info("sent the stats fd of VM %s", name);
	else
		shim_info("sent the stats fd of VM %s vCPU %u%s%s", name, h->id,
			  h->label[0] ? " as " : "", h->label);
	return 0;
}

/* Send one stats fd at once, then close ours (socket mode without labels).  Lock held. */
static void
send_stats_fd(struct shim_vm *vm, enum ks_target_kind kind, uint32_t id, int fd)
{
	struct held_fd h = { .kind = kind, .id = id, .fd = fd };
	char name[sizeof(vm->name)];

	memcpy(name, vm->name, sizeof(name));
	send_held(vm, name, sizeof(name), &h, true);
	close(fd);
}

/* The VM fd number went to a new VM: tell the daemon the old VM ended.  Lock held. */
static void
socket_end_vm(struct shim_vm *vm)
{
	struct kvmstats_error err;

	vm_unlink(vm);
	if (shim.sock >= 0)
		kvmstats_intake_end(shim.sock, vm->name, &err);
	vm_free(vm);
}

/* ---- the two hooks ---------------------------------------------------- */

static void
on_create_vm(int vm_fd)
{
	struct shim_vm *old, *vm;
	int sfd;

	if (!shim_active() || !is_vm_fd(vm_fd))
		return;
	sfd = take_stats_fd(vm_fd, "VM fd", (unsigned)vm_fd);
	if (sfd < 0)
		return;
	pthread_mutex_lock(&shim.lock);
	if (shim.stopping || atomic_load(&shim.disabled))
		goto drop;
	/* The VMM closed a VM and the kernel gave its fd number to this one. */
	old = vm_find(vm_fd);
	if (old && shim.mode == MODE_SOCKET && !shim.thread_started)
		socket_end_vm(old);
	else if (old)
		old->gone = true;	/* the publisher thread ends it: it may be using it */
	if (shim.mode == MODE_SOCKET && shim.qmp_path[0] != '\0') {
		/* Held, with the vCPUs', until they are labelled: one generation, not two. */
		if (!ensure_connected() || !ensure_thread() || vm_new(vm_fd, sfd) == NULL)
			goto drop;
		pthread_cond_signal(&shim.cond);
	} else if (shim.mode == MODE_SOCKET) {
		if (!ensure_connected() || (vm = vm_new(vm_fd, -1)) == NULL)
			goto drop;
		send_stats_fd(vm, KS_TARGET_VM, 0, sfd);
	} else {
		if (!ensure_thread() || vm_new(vm_fd, sfd) == NULL)
			goto drop;
		pthread_cond_signal(&shim.cond);
	}
	pthread_mutex_unlock(&shim.lock);
	return;
drop:
	pthread_mutex_unlock(&shim.lock);
	close(sfd);
}

static void
on_create_vcpu(int vm_fd, unsigned long id, int vcpu_fd)
{
	struct shim_vm *vm;
	int sfd;

	if (!shim_active())
		return;
	pthread_mutex_lock(&shim.lock);
	vm = vm_find(vm_fd);
	pthread_mutex_unlock(&shim.lock);
	if (vm == NULL)			/* a VM we do not publish */
		return;
	sfd = take_stats_fd(vcpu_fd, "vCPU", (unsigned)id);
	if (sfd < 0)
		return;
	pthread_mutex_lock(&shim.lock);
	/* Look again: only the publisher thread frees VMs, but it may have. */
	vm = vm_find(vm_fd);
	if (vm == NULL || shim.stopping || atomic_load(&shim.disabled)) {
		close(sfd);
	} else if (shim.mode == MODE_SOCKET && shim.qmp_path[0] == '\0') {
		send_stats_fd(vm, KS_TARGET_VCPU, (uint32_t)id, sfd);
	} else if (shim.mode == MODE_SOCKET && !ensure_thread()) {
		close(sfd);		/* labels need the thread: the shim is off now */
	} else if (vm_add_vcpu(vm, sfd, (uint32_t)id, vcpu_fd)) {
		pthread_cond_signal(&shim.cond);
	} else {
		close(sfd);
	}
	pthread_mutex_unlock(&shim.lock);
}

/*
 * A KVM_RUN on a watched vCPU fd by a thread other than the last one seen
 * there (or by a thread the shim has not met yet): it runs that vCPU now.
 * Before the real ioctl, which sets errno itself.  A forked child shares
 * our table but none of our threads, and the lock may have been held at
 * fork: it only notes the thread in its own copy of the table, lock-free.
 */
static void __attribute__((noinline))
run_moved(int fd)
{
	pid_t tid = my_tid;

	if (tid == 0)
		my_tid = tid = (pid_t)syscall(SYS_gettid);
	if (atomic_load_explicit(&run_tid[fd], memory_order_relaxed) == tid)
		return;			/* this thread's first KVM_RUN anywhere: ours here already */
	if (getpid() != shim.pid) {
		atomic_store_explicit(&run_tid[fd], tid, memory_order_relaxed);
		return;
	}
	pthread_mutex_lock(&shim.lock);
	/* Under the lock: the table and the vCPUs agree, whichever thread came last. */
	atomic_store_explicit(&run_tid[fd], tid, memory_order_relaxed);
	for (struct shim_vm *vm = shim.vms; vm; vm = vm->next)
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			if (vm->vcpus[i].vcpu_fd == fd && vm->vcpus[i].run_tid != tid) {
				vm->vcpus[i].run_tid = tid;
				vm->runners_new = true;
				pthread_cond_signal(&shim.cond);
			}
	pthread_mutex_unlock(&shim.lock);
}

/* The VMM's KVM_CREATE_VM or KVM_CREATE_VCPU: its result and errno stay its own. */
static int __attribute__((noinline))
ioctl_create(ioctl_fn real, int fd, unsigned long request, void *arg)
{
	int ret = real(fd, request, arg);
	int saved;

	if (ret < 0)
		return ret;
	saved = errno;
	if (request == KVM_CREATE_VM)
		on_create_vm(ret);
	else
		on_create_vcpu(fd, (unsigned long)arg, ret);
	errno = saved;
	return ret;
}

int
ioctl(int fd, unsigned long request, ...)
{
	ioctl_fn real = atomic_load_explicit(&real_ioctl, memory_order_acquire);
	va_list ap;
	void *arg;

	/* glibc passes the third argument through as a pointer-sized word. */
	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (__builtin_expect(real == NULL, 0))
		real = resolve_real_ioctl();
	if (__builtin_expect((request | CREATE_BIT) != KVM_CREATE_VCPU, 1)) {
		if (request == KVM_RUN && (unsigned)fd < SHIM_WATCH_FDS) {
			pid_t last = atomic_load_explicit(&run_tid[fd], memory_order_relaxed);

			if (__builtin_expect(last != 0 && last != my_tid, 0))
				run_moved(fd);
		}
		return real(fd, request, arg);
	}
	return ioctl_create(real, fd, request, arg);
}

/* ---- exit --------------------------------------------------------------- */

static void
free_table(void)
{
	while (shim.vms) {
		struct shim_vm *vm = shim.vms;

		shim.vms = vm->next;
		vm_free(vm);
	}
}

/*
 * At exit (or unload), end every VM: segments marked ended and removed, or
 * the intake connection closed, which ends them in the daemon.  A forked
 * child's exit must not end its parent's VMs.
 */
__attribute__((destructor)) static void
shim_fini(void)
{
	bool started;
	int saved = errno;

	if (!atomic_load(&shim.configured) || getpid() != shim.pid)
		return;
	pthread_mutex_lock(&shim.lock);
	shim.stopping = true;
	started = shim.thread_started;
	pthread_cond_signal(&shim.cond);
	pthread_mutex_unlock(&shim.lock);
	if (shim.cancel_fd >= 0) {
		uint64_t one = 1;

		/* A question to QEMU in flight gives up now, not at its deadline. */
		if (write(shim.cancel_fd, &one, sizeof(one)) < 0)
			shim_info("cannot interrupt the QMP question: %s", strerror(errno));
	}
	if (started)
		pthread_join(shim.thread, NULL);
	if (shim.pub) {
		kvmstats_publisher_destroy(&shim.pub);
		shim_info("every VM ended");
	}
	if (shim.sock >= 0) {
		close(shim.sock);
		shim.sock = -1;
	}
	free_table();
	if (shim.cancel_fd >= 0) {
		close(shim.cancel_fd);
		shim.cancel_fd = -1;
	}
	errno = saved;
}
