/* SPDX-License-Identifier: MIT */
/*
 * test_debugfs.c - VM stats from KVM's debugfs (publisher/statsfd/
 * debugfs_source.c), for an attached VMM that keeps no VM stats fd: the
 * VM's directory found by the rules of its name, values read from files
 * the way debugfs prints them, and every way such a directory can be
 * wrong.  A directory of ordinary files stands in for debugfs; the
 * descriptors are the simulated VM's, which has the x86 kernel's layout.
 * tests/test_real_attach.c reads the real debugfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "debugfs_source.h"
#include "log_capture.h"
#include "sim_vm.h"
#include "statsfd.h"

struct fixture {
	char root[64];
	char dir[200];			/* root/kvm/<tid>-<fd> */
	struct ks_statsfd_schema schema;
	struct ks_sim_vm *sim;
};

static void
put_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The value the fixture's file of scalar stat @i holds. */
static uint64_t
value_of(uint32_t i)
{
	return 1000ull * (i + 1) + 7;
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct kvmstats_error err;
	char kvm[128], text[32];

	assert_non_null(fx);
	snprintf(fx->root, sizeof(fx->root), "/tmp/ks-debugfs.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	snprintf(kvm, sizeof(kvm), "%s/kvm", fx->root);
	assert_int_equal(mkdir(kvm, 0700), 0);
	/* The VM of fd 42 made by this very thread, as KVM would name it. */
	snprintf(fx->dir, sizeof(fx->dir), "%s/%ld-42", kvm, (long)syscall(SYS_gettid));
	assert_int_equal(mkdir(fx->dir, 0700), 0);
	if (ks_sim_vm_create(1, &fx->sim, &err) < 0)
		fail_msg("sim VM: %s", err.msg);
	if (ks_statsfd_parse(ks_sim_vm_stats_fd(fx->sim, -1), "sim VM", &fx->schema, &err) < 0)
		fail_msg("sim VM schema: %s", err.msg);
	assert_true(fx->schema.nr_desc >= 4);
	for (uint32_t i = 0; i < fx->schema.nr_desc; i++) {
		snprintf(text, sizeof(text), "%llu\n", (unsigned long long)value_of(i));
		put_file(fx->dir, fx->schema.desc[i].name, text);
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	ks_statsfd_schema_clear(&fx->schema);
	ks_sim_vm_destroy(&fx->sim);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static int
open_dir(const struct fixture *fx)
{
	int fd = open(fx->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* One sweep's read of the block into @v. */
static int
read_block(const struct ks_block_def *b, uint64_t *v)
{
	_Atomic uint64_t dst[256];
	int r;

	assert_true(b->words <= 256);
	r = b->ops->read(b->ctx, dst, b->words, 1);
	for (uint32_t i = 0; r == 0 && i < b->words; i++)
		v[i] = atomic_load(&dst[i]);
	return r;
}

/* A second thread of this process, alive until its pipe's write end closes. */
struct waiter {
	int tell[2];			/* the thread's tid, to the test */
	int hold[2];			/* EOF on hold[0]: the thread ends */
	pid_t tid;
};

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	char c;

	if (write(w->tell[1], &tid, sizeof(tid)) != (ssize_t)sizeof(tid))
		return NULL;
	while (read(w->hold[0], &c, 1) > 0)
		;
	return NULL;
}

static void
test_find_dir(void **state)
{
	struct fixture *fx = *state;
	struct kvmstats_error err;
	char path[512], other[300];
	pid_t creator = 0;
	int fd;

	/* Found under a thread of ours: this thread made "the VM". */
	assert_int_equal(ks_debugfs_vm_dir(fx->root, true, getpid(), 42, &fd, path, sizeof(path),
					   &creator, &err), 0);
	assert_string_equal(path, fx->dir);
	assert_int_equal(creator, (pid_t)syscall(SYS_gettid));
	close(fd);
	/* Another fd number: none. */
	assert_int_equal(ks_debugfs_vm_dir(fx->root, true, getpid(), 43, &fd, path, sizeof(path),
					   &creator, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no directory for VM fd 43"));
	/* A directory of a thread that is not ours (pid 1) does not count. */
	snprintf(other, sizeof(other), "%s/kvm/1-43", fx->root);
	assert_int_equal(mkdir(other, 0700), 0);
	assert_int_equal(ks_debugfs_vm_dir(fx->root, true, getpid(), 43, &fd, path, sizeof(path),
					   &creator, &err), -ENOENT);
	/* Two directories that could be the VM (two threads of ours): refused, not guessed. */
	{
		struct waiter w;
		pthread_t t;

		assert_int_equal(pipe(w.tell), 0);
		assert_int_equal(pipe(w.hold), 0);
		assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
		assert_int_equal(read(w.tell[0], &w.tid, sizeof(w.tid)), (ssize_t)sizeof(w.tid));
		snprintf(other, sizeof(other), "%s/kvm/%d-42", fx->root, (int)w.tid);
		assert_int_equal(mkdir(other, 0700), 0);
		assert_int_equal(ks_debugfs_vm_dir(fx->root, true, getpid(), 42, &fd, path,
						   sizeof(path), &creator, &err), -ENOTUNIQ);
		assert_non_null(strstr(err.msg, "two directories"));
		close(w.hold[1]);	/* the thread ends */
		pthread_join(t, NULL);
		close(w.hold[0]);
		close(w.tell[0]);
		close(w.tell[1]);
		rmdir(other);
	}
	/* Without the tests' leave, a directory that is not on debugfs is refused. */
	assert_int_equal(ks_debugfs_vm_dir(fx->root, false, getpid(), 42, &fd, path, sizeof(path),
					   &creator, &err), -EXDEV);
	assert_non_null(strstr(err.msg, "is not on debugfs"));
	/* No kvm directory, on what is not debugfs: "not mounted", and how to mount it. */
	assert_int_equal(ks_debugfs_vm_dir("/tmp", true, getpid(), 42, &fd, path, sizeof(path),
					   &creator, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "not mounted at /tmp"));
	assert_non_null(strstr(err.msg, "mount -t debugfs"));
}

static void
test_values(void **state)
{
	struct fixture *fx = *state;
	struct kvmstats_error err;
	struct ks_block_def b;
	uint64_t v[256];
	uint32_t left = 99;
	char text[32];

	assert_int_equal(ks_debugfs_block(open_dir(fx), fx->dir, &fx->schema, NULL, &b, &left,
					  &err), 0);
	assert_int_equal(left, 0);
	assert_string_equal(b.provider, "kvm");
	assert_int_equal(b.nr_stats, fx->schema.nr_desc);
	assert_int_equal(read_block(&b, v), 0);
	for (uint32_t i = 0; i < b.nr_stats; i++) {
		const struct ks_kvm_desc *d = &fx->schema.desc[i];

		/* The descriptor as the kernel gave it, the value as the file says. */
		assert_string_equal(b.stats[i].name, d->name);
		assert_int_equal(b.stats[i].type, d->type);
		assert_int_equal(b.stats[i].unit, d->unit);
		assert_int_equal(b.stats[i].exponent, d->exponent);
		assert_int_equal(v[b.stats[i].value_index], value_of(i));
	}
	/* Each read opens the file anew: a new value shows at the next sweep. */
	put_file(fx->dir, fx->schema.desc[1].name, "18446744073709551615\n");
	assert_int_equal(read_block(&b, v), 0);
	assert_int_equal(v[b.stats[1].value_index], UINT64_MAX);
	/* Text a u64 cannot be: the read fails (the engine marks the slot stale). */
	put_file(fx->dir, fx->schema.desc[1].name, "18446744073709551616\n");
	assert_int_equal(read_block(&b, v), -EOVERFLOW);
	put_file(fx->dir, fx->schema.desc[1].name, "12 34\n");
	assert_int_equal(read_block(&b, v), -EBADMSG);
	put_file(fx->dir, fx->schema.desc[1].name, "");
	assert_int_equal(read_block(&b, v), -EBADMSG);
	put_file(fx->dir, fx->schema.desc[1].name, "-5\n");
	assert_int_equal(read_block(&b, v), -EBADMSG);
	snprintf(text, sizeof(text), "%llu", (unsigned long long)value_of(1));	/* no newline */
	put_file(fx->dir, fx->schema.desc[1].name, text);
	assert_int_equal(read_block(&b, v), 0);
	/* The stat's file gone (the VM is being destroyed): the read fails. */
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", fx->dir, fx->schema.desc[1].name);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(read_block(&b, v), -ENOENT);
	}
	b.ops->release(b.ctx);
}

static void
test_left_out(void **state)
{
	struct fixture *fx = *state;
	struct kvmstats_error err;
	struct ks_block_def b;
	char path[512];
	uint32_t left = 0;
	uint64_t v[256];

	log_capture_reset();
	/* A stat with no file, one whose file is a FIFO (a read could wait), one a directory. */
	snprintf(path, sizeof(path), "%s/%s", fx->dir, fx->schema.desc[0].name);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", fx->dir, fx->schema.desc[2].name);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/%s", fx->dir, fx->schema.desc[3].name);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(ks_debugfs_block(open_dir(fx), fx->dir, &fx->schema, log_capture_line,
					  &b, &left, &err), 0);
	assert_int_equal(left, 3);
	assert_int_equal(b.nr_stats, fx->schema.nr_desc - 3);
	assert_true(log_capture_has("left out: No such file or directory"));
	assert_true(log_capture_has("left out: not a regular file"));
	assert_int_equal(read_block(&b, v), 0);
	for (uint32_t i = 0; i < b.nr_stats; i++)
		assert_string_not_equal(b.stats[i].name, fx->schema.desc[0].name);
	b.ops->release(b.ctx);

}

static void
test_histograms_left_out(void **state)
{
	struct fixture *fx = *state;
	struct ks_statsfd_schema s = fx->schema;
	struct ks_kvm_desc d[2];
	struct kvmstats_error err;
	struct ks_block_def b;
	uint32_t left = 0;

	/* debugfs prints one word of a histogram: never published as if it were all. */
	memcpy(d, fx->schema.desc, sizeof(d));
	d[1].size = 32;
	d[1].type = KS_TYPE_LOG_HIST;
	s.desc = d;
	s.nr_desc = 2;
	log_capture_reset();
	assert_int_equal(ks_debugfs_block(open_dir(fx), fx->dir, &s, log_capture_line, &b, &left,
					  &err), 0);
	assert_int_equal(left, 1);
	assert_int_equal(b.nr_stats, 1);
	assert_true(log_capture_has("debugfs shows one of its 32 values"));
	b.ops->release(b.ctx);

}

static void
test_nothing_readable(void **state)
{
	struct fixture *fx = *state;
	struct kvmstats_error err;
	struct ks_block_def b;
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -f '%s'/*", fx->dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ks_debugfs_block(open_dir(fx), fx->dir, &fx->schema, NULL, &b, NULL,
					  &err), -ENOENT);
	assert_non_null(strstr(err.msg, "none of this kernel's"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_find_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histograms_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_readable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
