/* SPDX-License-Identifier: MIT */
/*
 * bench_preload.c - what libkvmstats-preload.so adds to a VMM's ioctls.
 *
 *   bench_preload [-n CALLS]     (KVMSTATS_BENCH_SHIM=path: that shim, not ours)
 *
 * Re-executes itself with LD_PRELOAD=<build>/libkvmstats-preload.so, then
 * times the same cheap ioctl (KVM_CHECK_EXTENSION on /dev/kvm, or TCGETS on
 * /dev/null without KVM) through the shim's ioctl and through the C
 * library's own, in alternating batches so that both see the same machine.
 * Prints both per-call costs (median batch) and the ratio wrapped/libc.
 * With KVM, the same for KVM_RUN on a vCPU fd the shim watches (it made a
 * VM and a vCPU through the shim, in-process mode, then put /dev/null on
 * the vCPU's fd number: each call fails at once with ENOTTY, so what is
 * timed is the shim's KVM_RUN check - the path every guest entry takes -
 * and one cheap system call, not a guest).  The segment goes to
 * $KVMSTATS_SHM_DIR, /tmp if unset, and is removed at exit.
 * No goal is asserted: the shim should add a compare or two to a system call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ks_time.h"

#define BATCH		10000
#define DEFAULT_CALLS	1000000

typedef int (*ioctl_fn)(int fd, unsigned long request, ...);

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* ns per call of one batch. */
static double
batch(ioctl_fn f, int fd, unsigned long req, unsigned long arg)
{
	struct termios t;
	uint64_t t0 = ks_mono_ns();

	for (int i = 0; i < BATCH; i++) {
		if (req == TCGETS)
			f(fd, req, &t);
		else
			f(fd, req, arg);
	}
	return (double)(ks_mono_ns() - t0) / BATCH;
}

/* Both ways, alternating batches; the medians printed. */
static void
measure(ioctl_fn wrapped, ioctl_fn real, int fd, unsigned long req, unsigned long arg,
	const char *what, unsigned nb, double *w, double *r)
{
	for (unsigned i = 0; i < nb; i++) {
		w[i] = batch(wrapped, fd, req, arg);
		r[i] = batch(real, fd, req, arg);
	}
	qsort(w, nb, sizeof(*w), cmp_double);
	qsort(r, nb, sizeof(*r), cmp_double);
	printf("preload shim: %lu x ioctl(%s), median of %u batches of %d\n",
	       nb * (unsigned long)BATCH, what, nb, BATCH);
	printf("  through the shim  %8.1f ns/call\n", w[nb / 2]);
	printf("  libc ioctl        %8.1f ns/call\n", r[nb / 2]);
	printf("  ratio shim/libc   %8.3f\n", w[nb / 2] / r[nb / 2]);
}

/*
 * A VM and a vCPU made through the shim, which watches the vCPU's fd for
 * KVM_RUN; /dev/null then takes that fd number.  Return: it, or -1 (said).
 */
static int
watched_run_fd(ioctl_fn wrapped, int kvm)
{
	int vm = wrapped(kvm, KVM_CREATE_VM, 0), vcpu = -1, null;

	if (vm >= 0)
		vcpu = wrapped(vm, KVM_CREATE_VCPU, 0);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (vcpu < 0 || null < 0 || dup3(null, vcpu, O_CLOEXEC) < 0) {
		fprintf(stderr, "bench_preload: no KVM_RUN figures: cannot make a vCPU: %s\n",
			strerror(errno));
		return -1;
	}
	close(null);
	return vcpu;
}

/* Not yet preloaded: run ourselves again with the shim. */
static void
reexec_with_shim(char **argv)
{
	char exe[PATH_MAX], dir[PATH_MAX], shim[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0) {
		perror("bench_preload: /proc/self/exe");
		exit(1);
	}
	exe[n] = '\0';
	memcpy(dir, exe, (size_t)n + 1);	/* dirname() writes into its argument */
	snprintf(shim, sizeof(shim), "%s/../libkvmstats-preload.so", dirname(dir));
	/* Another build's shim, to compare two side by side. */
	if (getenv("KVMSTATS_BENCH_SHIM") != NULL)
		snprintf(shim, sizeof(shim), "%s", getenv("KVMSTATS_BENCH_SHIM"));
	if (access(shim, R_OK) != 0) {
		fprintf(stderr, "bench_preload: %s: %s (make all first)\n", shim, strerror(errno));
		exit(1);
	}
	setenv("LD_PRELOAD", shim, 1);
	setenv("KVMSTATS_PRELOAD_MODE", "inprocess", 1);
	setenv("KVMSTATS_PRELOAD_NAME", "bench-preload", 1);
	setenv("KVMSTATS_SHM_DIR", getenv("KVMSTATS_SHM_DIR") ? getenv("KVMSTATS_SHM_DIR") : "/tmp",
	       1);
	execv(exe, argv);
	perror("bench_preload: exec");
	exit(1);
}

int
main(int argc, char **argv)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	ioctl_fn real = libc ? (ioctl_fn)dlsym(libc, "ioctl") : NULL;
	ioctl_fn wrapped = (ioctl_fn)dlsym(RTLD_DEFAULT, "ioctl");
	unsigned long calls = DEFAULT_CALLS, req = TCGETS, arg = 0;
	const char *what = "TCGETS on /dev/null";
	double *w, *r;
	unsigned nb;
	int fd, opt;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n' || (calls = strtoul(optarg, NULL, 10)) < BATCH) {
			fprintf(stderr, "usage: bench_preload [-n CALLS >= %d]\n", BATCH);
			return 2;
		}
	}
	if (real == NULL || wrapped == NULL) {
		fprintf(stderr, "bench_preload: cannot find the C library's ioctl\n");
		return 1;
	}
	if (real == wrapped)
		reexec_with_shim(argv);

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		req = KVM_CHECK_EXTENSION;
		arg = KVM_CAP_BINARY_STATS_FD;
		what = "KVM_CHECK_EXTENSION on /dev/kvm";
	} else {
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	nb = (unsigned)(calls / BATCH);
	w = calloc(nb, sizeof(*w));
	r = calloc(nb, sizeof(*r));
	if (fd < 0 || w == NULL || r == NULL) {
		perror("bench_preload");
		return 1;
	}
	measure(wrapped, real, fd, req, arg, what, nb, w, r);
	if (req == KVM_CHECK_EXTENSION) {
		int run = watched_run_fd(wrapped, fd);

		if (run >= 0) {
			wrapped(run, KVM_RUN, 0);	/* the first: the shim notes this thread */
			measure(wrapped, real, run, KVM_RUN, 0,
				"KVM_RUN on a watched vCPU fd, /dev/null behind it", nb, w, r);
			close(run);
		}
	}
	free(w);
	free(r);
	close(fd);
	return 0;
}
