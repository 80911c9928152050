/* SPDX-License-Identifier: MIT */
/*
 * test_intake.c - the intake socket end to end, without /dev/kvm: a client
 * hands the simulated VM's stats fds (memfds with the kernel's layout) to
 * the intake, and a reader attaches to what the engine publishes.  Bad
 * peers, bad fds and malformed messages must get error replies, cost no
 * fd and never take the daemon down.
 *
 * The sim keeps its fds: sendmsg() passes a new reference, so the intake's
 * copy and ours are independent and ours need no dup().
 */
#include <dirent.h>
#include <linux/kvm.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ks_time.h"
#include "engine.h"
#include "intake.h"
#include "kvmstats/intake.h"
#include "ks_err.h"
#include "kvmstats/reader.h"
#include "sim_vm.h"
#include "statsfd_image.h"
#include "vm_builder.h"
#include "log_capture.h"
#include "seg_check.h"
#include "statsfd.h"

#define NOBODY		65534
#define QUIET_LONG	60000	/* ms: only OP_PUBLISH can publish */

/* ---- fixture ---- */

struct fx {
	struct ks_engine *e;
	struct ks_intake *in;
	struct ks_sim_vm *sim;
	char dir[64];
	char path[96];
};

/* Limits of the next intake a fixture starts (0: the defaults). */
static unsigned fx_idle_ms, fx_max_per_uid;

static void
fx_start_intake(struct fx *f, unsigned quiet_ms, const uid_t *allow, unsigned nr_allow)
{
	struct ks_intake_opts o = {
		.path = f->path, .allow = allow, .nr_allow = nr_allow,
		.mode = 0666, .quiet_ms = quiet_ms, .log = log_capture_line,
		.idle_ms = fx_idle_ms, .max_per_uid = fx_max_per_uid,
	};
	struct kvmstats_error err;

	if (ks_intake_start(f->e, &o, &f->in, &err) < 0)
		fail_msg("intake: %s", err.msg);
	fx_idle_ms = fx_max_per_uid = 0;
}

static struct fx *
fx_new(unsigned quiet_ms, const uid_t *allow, unsigned nr_allow)
{
	struct ks_engine_config cfg;
	struct kvmstats_error err;
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	log_capture_reset();
	/*
	 * No poll thread: segments then carry the sample taken at publish
	 * and change state (superseded, ended) before the intake replies.
	 * It also keeps TSan quiet, which cannot see liburcu's barriers
	 * between the poll thread and the intake thread's list updates.
	 */
	ks_engine_config_init(&cfg);
	cfg.hz = 200;
	if (ks_engine_create(&cfg, &f->e, &err) < 0)
		fail_msg("engine: %s", err.msg);
	if (ks_sim_vm_create(4, &f->sim, &err) < 0)
		fail_msg("sim: %s", err.msg);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ks-intake.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(chmod(f->dir, 0755), 0);	/* a peer of another uid */
	snprintf(f->path, sizeof(f->path), "%s/intake.sock", f->dir);
	fx_start_intake(f, quiet_ms, allow, nr_allow);
	return f;
}

static void
fx_free(struct fx *f)
{
	ks_intake_stop(&f->in);
	assert_null(f->in);
	ks_engine_destroy(&f->e);
	ks_sim_vm_destroy(&f->sim);
	unlink(f->path);
	assert_int_equal(rmdir(f->dir), 0);	/* the socket file went with stop */
	free(f);
}

static void
vm_name(char *buf, size_t len)
{
	static int seq;

	snprintf(buf, len, "it-%d-%d", (int)getpid(), ++seq);
}

static int
conn(const struct fx *f)
{
	struct kvmstats_error err;
	int s = kvmstats_intake_connect(f->path, &err);

	if (s < 0)
		fail_msg("connect: %s", err.msg);
	return s;
}

/* Send fd @t of the sim: -1 the VM, else vCPU @t. */
static int
send_sim(const struct fx *f, int s, const char *vm, int t, const char *label,
	 struct kvmstats_error *err)
{
	return kvmstats_intake_send_fd(s, vm, t < 0 ? KVMSTATS_TARGET_VM : KVMSTATS_TARGET_VCPU,
				 t < 0 ? 0 : (uint32_t)t, label,
				 ks_sim_vm_stats_fd(f->sim, t), err);
}

static void
send_ok(const struct fx *f, int s, const char *vm, int t, const char *label)
{
	struct kvmstats_error err;

	if (send_sim(f, s, vm, t, label, &err) != 0)
		fail_msg("send fd %d of %s: %s", t, vm, err.msg);
}

static void
op_ok(int s, const char *vm, enum ks_intake_op op)
{
	struct kvmstats_error err;
	int ret = op == KS_INTAKE_OP_PUBLISH ? kvmstats_intake_publish(s, vm, &err)
					     : kvmstats_intake_end(s, vm, &err);

	if (ret != 0)
		fail_msg("op %d on %s: %s", (int)op, vm, err.msg);
}

/* VM + vCPUs 0..@nr-1, labelled, then OP_PUBLISH. */
static void
publish_sim(const struct fx *f, int s, const char *vm, int nr)
{
	char label[64];

	send_ok(f, s, vm, -1, "vm-label");
	for (int i = 0; i < nr; i++) {
		snprintf(label, sizeof(label), "/machine/unattached/device[%d]", i);
		send_ok(f, s, vm, i, label);
	}
	op_ok(s, vm, KS_INTAKE_OP_PUBLISH);
}

/* Attach, retrying for up to @ms; Return: the segment or NULL. */
static struct kvmstats_segment *
attach_wait(const char *vm, unsigned ms)
{
	uint64_t end = (ks_mono_ns() / 1000000) + ms;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;

	do {
		if (kvmstats_attach(vm, NULL, &seg, &err) == 0)
			return seg;
		sleep_ms(5);
	} while ((ks_mono_ns() / 1000000) < end);
	return NULL;
}

static enum kvmstats_state
state_of(const struct kvmstats_segment *seg)
{
	struct kvmstats_status st;

	kvmstats_status(seg, &st);
	return st.state;
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;		/* the directory's own fd */
}

/* The intake closes peers' fds asynchronously: give it a moment. */
static void
assert_fds_back_to(int before)
{
	uint64_t end = (ks_mono_ns() / 1000000) + 10000;
	int now;

	while ((now = count_fds()) != before && (ks_mono_ns() / 1000000) < end)
		sleep_ms(5);
	assert_int_equal(now, before);
}

/* ---- raw messages, for what the client functions never send ---- */

static void
raw_msg(struct ks_intake_msg *m, uint16_t op, const char *vm)
{
	memset(m, 0, sizeof(*m));
	m->magic = KS_INTAKE_MAGIC;
	m->version = KS_INTAKE_VERSION;
	m->op = op;
	m->kind = KS_TARGET_VCPU;
	snprintf(m->vm, sizeof(m->vm), "%s", vm);
}

static void
raw_send(int s, const void *buf, size_t len, const int *fds, unsigned nr)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 32)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert_true(nr <= 32);
	if (nr) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nr);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nr);
	}
	assert_int_equal(sendmsg(s, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* Return: the reply's status; @msg gets its text. */
static int
raw_reply(int s, char *msg, size_t len)
{
	struct ks_intake_reply r;
	ssize_t n = recv(s, &r, sizeof(r), 0);

	assert_int_equal(n, (ssize_t)sizeof(r));
	assert_int_equal(r.magic, KS_INTAKE_MAGIC);
	assert_non_null(memchr(r.msg, '\0', sizeof(r.msg)));
	snprintf(msg, len, "%s", r.msg);
	if (r.status < 0)
		assert_true(r.msg[0] != '\0');	/* every error says why */
	return r.status;
}

static int
raw_roundtrip(int s, const struct ks_intake_msg *m, const int *fds, unsigned nr)
{
	char msg[256];

	raw_send(s, m, sizeof(*m), fds, nr);
	return raw_reply(s, msg, sizeof(msg));
}

static void
assert_closed(int s)
{
	char b[16];

	assert_int_equal(recv(s, b, sizeof(b), 0), 0);
}

/* ---- tests ---- */

static void
check_published(const struct fx *f, struct kvmstats_segment *seg, const char *vm,
		unsigned nr_vcpus)
{
	const char *sim = ks_sim_vm_name(f->sim);
	uint64_t rec[4096], raw[4096];
	char id[64], label[64];

	assert_string_equal(kvmstats_info(seg)->vm_name, vm);
	assert_int_equal(kvmstats_nr_targets(seg), nr_vcpus + 1);
	for (unsigned t = 0; t <= nr_vcpus; t++) {
		const struct kvmstats_target_info *ti = kvmstats_target(seg, t);
		int sfd = ks_sim_vm_stats_fd(f->sim, (int)t - 1);
		struct ks_statsfd_schema s;
		struct kvmstats_error err;

		if (t == 0) {
			snprintf(id, sizeof(id), "%s", sim);
			snprintf(label, sizeof(label), "vm-label");
		} else {
			snprintf(id, sizeof(id), "%s/vcpu-%u", sim, t - 1);
			snprintf(label, sizeof(label), "/machine/unattached/device[%u]", t - 1);
		}
		assert_int_equal(ti->kind, t ? KVMSTATS_TARGET_VCPU : KVMSTATS_TARGET_VM);
		assert_int_equal(ti->vcpu_index, t ? t - 1 : UINT32_MAX);
		assert_string_equal(ti->id, id);
		assert_string_equal(ti->label, label);
		/* The sim is not stepping: what was published is what pread gives. */
		assert_int_equal(ks_statsfd_parse(sfd, "sim", &s, &err), 0);
		assert_int_equal(ti->record_words * 8, s.data_size);
		assert_true(ti->record_words <= 4096);
		assert_int_equal(kvmstats_read_record(seg, t, rec, ti->record_words, NULL), 0);
		assert_int_equal(pread(sfd, raw, s.data_size, (off_t)s.data_offset),
				 (ssize_t)s.data_size);
		assert_memory_equal(rec, raw, s.data_size);
		ks_statsfd_schema_clear(&s);
	}
}

/* 1 VM fd + 3 vCPU fds, labels, OP_PUBLISH: published at once, exactly. */
static void
publish_op_publishes_now(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	char vm[64];
	int s = conn(f);

	(void)state;
	vm_name(vm, sizeof(vm));
	send_ok(f, s, vm, -1, "vm-label");
	send_ok(f, s, vm, 0, "/machine/unattached/device[0]");
	send_ok(f, s, vm, 1, "/machine/unattached/device[1]");
	send_ok(f, s, vm, 2, "/machine/unattached/device[2]");
	assert_int_equal(kvmstats_attach(vm, NULL, &seg, &err), -ENOENT);
	op_ok(s, vm, KS_INTAKE_OP_PUBLISH);
	/* The reply comes after the segment is in place: no waiting. */
	assert_int_equal(kvmstats_attach(vm, NULL, &seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->generation, 1);
	assert_int_equal(state_of(seg), KVMSTATS_STATE_LIVE);
	check_published(f, seg, vm, 3);
	assert_true(log_capture_has("connection from uid 0"));
	assert_true(log_capture_has("published with 3 vCPUs"));
	/* Publishing an unchanged set again is a no-op, not a new generation. */
	op_ok(s, vm, KS_INTAKE_OP_PUBLISH);
	assert_int_equal(state_of(seg), KVMSTATS_STATE_LIVE);
	close(s);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, 10000), KVMSTATS_STATE_ENDED);
	kvmstats_detach(&seg);
	fx_free(f);
}

static void
quiet_period_publishes(void **state)
{
	struct fx *f = fx_new(150, NULL, 0);
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	uint64_t t0;
	char vm[64];
	int s = conn(f);

	(void)state;
	vm_name(vm, sizeof(vm));
	send_ok(f, s, vm, -1, "vm-label");
	send_ok(f, s, vm, 0, "/machine/unattached/device[0]");
	/* Taken before the last fd arrives, so the quiet period ends after t0 + 150 ms. */
	t0 = ks_mono_ns() / 1000000;
	send_ok(f, s, vm, 1, "/machine/unattached/device[1]");
	/* Published means the period passed (a slow machine may take that long). */
	if (kvmstats_attach(vm, NULL, &seg, &err) == 0) {
		assert_true(ks_mono_ns() / 1000000 - t0 >= 150);
		kvmstats_detach(&seg);
	}
	seg = attach_wait(vm, 10000);
	assert_non_null(seg);
	assert_true(ks_mono_ns() / 1000000 - t0 >= 150);
	/*
	 * A stall of more than the period between two fds publishes the
	 * first ones, and the last one as the next generation: either way
	 * the VM ends up with all three, said in the log.
	 */
	for (int i = 0; i < 2000 && kvmstats_nr_targets(seg) < 3; i++) {
		sleep_ms(5);
		assert_true(kvmstats_follow(&seg, &err) >= 0);
	}
	check_published(f, seg, vm, 2);
	assert_true(log_capture_wait("published with 2 vCPUs", 10000));
	kvmstats_detach(&seg);
	close(s);
	fx_free(f);
}

/* A vCPU fd after publishing (hotplug): a new generation with all of them. */
static void
later_fd_is_new_generation(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	unsigned vcpus = 0;
	char vm[64];
	int s = conn(f);

	(void)state;
	vm_name(vm, sizeof(vm));
	publish_sim(f, s, vm, 3);
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	assert_int_equal(kvmstats_nr_targets(seg), 4);

	send_ok(f, s, vm, 3, "/machine/unattached/device[3]");
	assert_int_equal(state_of(seg), KVMSTATS_STATE_LIVE);
	op_ok(s, vm, KS_INTAKE_OP_PUBLISH);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_SUPERSEDED, 10000),
			 KVMSTATS_STATE_SUPERSEDED);
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->generation, 2);
	for (unsigned t = 0; t < kvmstats_nr_targets(seg); t++)
		vcpus += kvmstats_target(seg, t)->kind == KVMSTATS_TARGET_VCPU;
	assert_int_equal(vcpus, 4);
	check_published(f, seg, vm, 4);

	/* The same (kind, index) again replaces the older fd: new label, same count. */
	send_ok(f, s, vm, 1, "relabelled");
	op_ok(s, vm, KS_INTAKE_OP_PUBLISH);
	assert_int_equal(kvmstats_reattach(&seg, &err), 0);
	assert_int_equal(kvmstats_info(seg)->generation, 3);
	assert_int_equal(kvmstats_nr_targets(seg), 5);
	assert_string_equal(kvmstats_target(seg, 2)->label, "relabelled");
	kvmstats_detach(&seg);
	close(s);
	fx_free(f);
}

static void
close_and_end_remove_segments(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_segment *a, *b;
	struct kvmstats_error err;
	char vma[64], vmb[64];
	int s = conn(f);

	(void)state;
	vm_name(vma, sizeof(vma));
	vm_name(vmb, sizeof(vmb));
	publish_sim(f, s, vma, 1);
	publish_sim(f, s, vmb, 2);
	a = attach_wait(vma, 0);
	b = attach_wait(vmb, 0);
	assert_non_null(a);
	assert_non_null(b);

	/* OP_END ends one VM of the connection, not the others. */
	op_ok(s, vma, KS_INTAKE_OP_END);
	assert_int_equal(seg_wait_state(a, KVMSTATS_STATE_ENDED, 10000), KVMSTATS_STATE_ENDED);
	assert_int_equal(state_of(b), KVMSTATS_STATE_LIVE);
	assert_true(attach_wait(vma, 0) == NULL);
	assert_int_equal(kvmstats_intake_publish(s, vma, &err), -ENOENT);

	close(s);
	assert_int_equal(seg_wait_state(b, KVMSTATS_STATE_ENDED, 10000), KVMSTATS_STATE_ENDED);
	assert_true(attach_wait(vmb, 0) == NULL);
	/* The intake logs after the engine ended the VM: wait for the line. */
	assert_true(log_capture_wait("ended (connection closed", 10000));
	kvmstats_detach(&a);
	kvmstats_detach(&b);
	fx_free(f);
}

/* Child of a root test: become nobody, hand over the sim's fds, report. */
static int
child_as_nobody(const struct fx *f, const char *vm, bool expect_allowed)
{
	struct kvmstats_error err;
	char b[8];
	int s, ret;

	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return 10;
	s = kvmstats_intake_connect(f->path, &err);
	if (s < 0)
		return 11;
	ret = send_sim(f, s, vm, -1, "vm-label", &err);
	if (!expect_allowed) {
		if (ret != -EPERM || strstr(err.msg, "--allow-uid 65534") == NULL) {
			fprintf(stderr, "child: got %d: %s\n", ret, err.msg);
			return 12;
		}
		/* And then the daemon hangs up. */
		return recv(s, b, sizeof(b), 0) <= 0 ? 0 : 13;
	}
	if (ret != 0 || send_sim(f, s, vm, 0, "/machine/unattached/device[0]", &err) != 0 ||
	    kvmstats_intake_publish(s, vm, &err) != 0) {
		fprintf(stderr, "child: %s\n", err.msg);
		return 14;
	}
	return 0;
}

static void
run_as_nobody(const struct fx *f, const char *vm, bool expect_allowed)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_as_nobody(f, vm, expect_allowed));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
refused_and_allowed_peers(void **state)
{
	const uid_t allow[] = { NOBODY };
	struct fx *f;
	char vm[64], line[128];

	(void)state;
	if (geteuid() != 0) {
		print_message("skip: needs root to run a peer as uid %d\n", NOBODY);
		skip();
	}
	f = fx_new(QUIET_LONG, NULL, 0);
	vm_name(vm, sizeof(vm));
	run_as_nobody(f, vm, false);
	assert_true(log_capture_has("refused uid 65534"));
	assert_true(attach_wait(vm, 0) == NULL);
	fx_free(f);

	f = fx_new(QUIET_LONG, allow, 1);
	run_as_nobody(f, vm, true);
	snprintf(line, sizeof(line), "VM %s published with 1 vCPUs", vm);
	assert_true(log_capture_has(line));
	assert_true(log_capture_has("uid 65534"));
	/* The child exited: its connection closed, its VM ended. */
	assert_true(log_capture_wait("ended (connection closed", 10000));
	fx_free(f);
}

static int
garbage_memfd(size_t size)
{
	int fd = memfd_create("garbage", MFD_CLOEXEC);
	char buf[4096];

	assert_true(fd >= 0);
	memset(buf, 0xab, sizeof(buf));
	for (size_t done = 0; done < size; done += sizeof(buf))
		assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	return fd;
}

static void
non_stats_fds_rejected(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	/* What each is refused for: what a read could wait on is never read. */
	static const char *const why[] = {
		"is a pipe",
		"is a character device",
		"is a regular file on a filesystem of type 0x9fa0",
		"is anon_inode:[eventfd], not a KVM stats fd",
		"",
		"",
	};
	int p[2], bad[6], before, s;
	char vm[64];

	(void)state;
	before = count_fds();
	s = conn(f);
	vm_name(vm, sizeof(vm));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	bad[0] = p[0];		/* would block: nobody writes */
	bad[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	bad[2] = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);	/* procfs */
	bad[3] = eventfd(0, EFD_CLOEXEC);	/* an anonymous inode, but not KVM's */
	bad[4] = garbage_memfd(8192);
	bad[5] = memfd_create("empty", MFD_CLOEXEC);
	for (int i = 0; i < 6; i++) {
		assert_true(bad[i] >= 0);
		ks_err_clear(&err);
		assert_int_equal(kvmstats_intake_send_fd(s, vm, KVMSTATS_TARGET_VCPU, 0, NULL, bad[i], &err),
				 -EBADMSG);
		assert_non_null(strstr(err.msg, vm));	/* the message names the fd */
		if (strstr(err.msg, why[i]) == NULL)
			fail_msg("fd %d: \"%s\" does not say \"%s\"", i, err.msg, why[i]);
		close(bad[i]);
	}
	close(p[1]);
	/* Nothing was kept: the VM has no fds yet. */
	assert_int_equal(kvmstats_intake_publish(s, vm, &err), -ENOENT);
	publish_sim(f, s, vm, 3);
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	check_published(f, seg, vm, 3);
	kvmstats_detach(&seg);
	close(s);
	assert_fds_back_to(before);
	fx_free(f);
}

static void
malformed_messages(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_segment *seg;
	struct ks_intake_msg m;
	int before, s, fd2[2], many[20];
	char vm[64], msg[256], big[300];
	int sfd = ks_sim_vm_stats_fd(f->sim, 0);

	(void)state;
	vm_name(vm, sizeof(vm));
	before = count_fds();
	s = conn(f);
	fd2[0] = fd2[1] = sfd;
	for (int i = 0; i < 20; i++)
		many[i] = sfd;

	raw_msg(&m, KS_INTAKE_OP_FD, vm);
	assert_int_equal(raw_roundtrip(s, &m, NULL, 0), -EINVAL);		/* no fd */
	assert_int_equal(raw_roundtrip(s, &m, fd2, 2), -EINVAL);		/* two */
	assert_int_equal(raw_roundtrip(s, &m, many, 20), -EINVAL);	/* MSG_CTRUNC */
	raw_msg(&m, KS_INTAKE_OP_PUBLISH, vm);
	assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);		/* fd, no OP_FD */
	raw_msg(&m, KS_INTAKE_OP_END, vm);
	assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);
	raw_msg(&m, 99, vm);
	assert_int_equal(raw_roundtrip(s, &m, NULL, 0), -EOPNOTSUPP);
	raw_msg(&m, KS_INTAKE_OP_FD, vm);
	memset(m.vm, 'a', sizeof(m.vm));					/* unterminated */
	assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);
	raw_msg(&m, KS_INTAKE_OP_FD, vm);
	memset(m.label, 'l', sizeof(m.label));
	assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);
	raw_msg(&m, KS_INTAKE_OP_FD, vm);
	m.label[0] = '\n';							/* control char */
	assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);
	for (int i = 0; i < 3; i++) {
		raw_msg(&m, KS_INTAKE_OP_FD, (const char *[]){ "", ".hidden", "a/b" }[i]);
		assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);
	}
	raw_msg(&m, KS_INTAKE_OP_FD, vm);
	m.kind = 7;
	assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);
	m.kind = KS_TARGET_VCPU;
	m.vcpu_index = UINT32_MAX;
	assert_int_equal(raw_roundtrip(s, &m, &sfd, 1), -EINVAL);
	raw_msg(&m, KS_INTAKE_OP_END, vm);
	assert_int_equal(raw_roundtrip(s, &m, NULL, 0), -ENOENT);
	/* None of that closed the connection or kept anything. */
	publish_sim(f, s, vm, 1);
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	assert_int_equal(kvmstats_nr_targets(seg), 2);
	kvmstats_detach(&seg);
	close(s);

	/* Broken framing or another protocol: an error reply, then the close. */
	s = conn(f);
	raw_msg(&m, KS_INTAKE_OP_FD, vm);
	m.magic = 0xdeadbeef;
	raw_send(s, &m, sizeof(m), &sfd, 1);
	assert_int_equal(raw_reply(s, msg, sizeof(msg)), -EBADMSG);
	assert_non_null(strstr(msg, "magic"));
	assert_closed(s);
	close(s);

	s = conn(f);
	raw_msg(&m, KS_INTAKE_OP_FD, vm);
	m.version = 2;
	raw_send(s, &m, sizeof(m), &sfd, 1);
	assert_int_equal(raw_reply(s, msg, sizeof(msg)), -EPROTONOSUPPORT);
	assert_closed(s);
	close(s);

	s = conn(f);
	raw_send(s, &m, 10, &sfd, 1);						/* short */
	assert_int_equal(raw_reply(s, msg, sizeof(msg)), -EBADMSG);
	assert_non_null(strstr(msg, "264"));
	assert_closed(s);
	close(s);

	s = conn(f);
	memset(big, 0, sizeof(big));
	memcpy(big, &m, sizeof(m));
	raw_send(s, big, sizeof(big), fd2, 2);					/* long */
	assert_int_equal(raw_reply(s, msg, sizeof(msg)), -EBADMSG);
	assert_closed(s);
	close(s);

	s = conn(f);
	raw_send(s, big, 0, &sfd, 1);						/* empty */
	assert_closed(s);
	close(s);

	assert_fds_back_to(before);
	fx_free(f);
}

static void
name_taken_by_other_connection(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_error err;
	struct kvmstats_segment *seg;
	char vm[64];
	int a = conn(f), b = conn(f), ret;

	(void)state;
	vm_name(vm, sizeof(vm));
	send_ok(f, a, vm, -1, "vm-label");
	assert_int_equal(send_sim(f, b, vm, -1, NULL, &err), -EEXIST);
	assert_non_null(strstr(err.msg, vm));
	assert_non_null(strstr(err.msg, "another connection"));
	op_ok(a, vm, KS_INTAKE_OP_PUBLISH);
	assert_int_equal(send_sim(f, b, vm, 0, NULL, &err), -EEXIST);
	/* b never got the VM: its ops on it find nothing. */
	assert_int_equal(kvmstats_intake_end(b, vm, &err), -ENOENT);
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	assert_int_equal(state_of(seg), KVMSTATS_STATE_LIVE);
	kvmstats_detach(&seg);

	/* Once a is gone, the name is free. */
	close(a);
	for (uint64_t end = (ks_mono_ns() / 1000000) + 10000;;) {
		ret = send_sim(f, b, vm, -1, "vm-label", &err);
		if (ret != -EEXIST || (ks_mono_ns() / 1000000) > end)
			break;
		sleep_ms(5);
	}
	assert_int_equal(ret, 0);
	op_ok(b, vm, KS_INTAKE_OP_PUBLISH);
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	assert_int_equal(kvmstats_nr_targets(seg), 1);
	kvmstats_detach(&seg);
	close(b);
	fx_free(f);
}

static void
stop_ends_open_connections(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_segment *seg;
	struct stat st;
	char vm[64];
	int s = conn(f);

	(void)state;
	vm_name(vm, sizeof(vm));
	publish_sim(f, s, vm, 2);
	send_ok(f, s, vm, 3, NULL);		/* pending, never published */
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	ks_intake_stop(&f->in);
	assert_int_equal(seg_wait_state(seg, KVMSTATS_STATE_ENDED, 10000), KVMSTATS_STATE_ENDED);
	assert_closed(s);
	assert_int_equal(stat(f->path, &st), -1);	/* the socket file is gone */
	assert_true(log_capture_has("intake stopped"));
	kvmstats_detach(&seg);
	close(s);
	fx_free(f);
}

static void
socket_path_rules(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct ks_intake_opts o = { .path = f->path };
	struct kvmstats_error err;
	struct ks_intake *in2;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char file[160], buf[8];
	int fd, s;

	(void)state;
	/* A live socket is another daemon's: leave it alone. */
	assert_int_equal(ks_intake_start(f->e, &o, &in2, &err), -EADDRINUSE);
	s = conn(f);		/* still served */
	close(s);
	ks_intake_stop(&f->in);

	/* A regular file is never removed. */
	snprintf(file, sizeof(file), "%s", f->path);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	close(fd);
	assert_int_equal(ks_intake_start(f->e, &o, &in2, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "not a socket"));
	fd = open(file, O_RDONLY | O_CLOEXEC);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	assert_int_equal(unlink(file), 0);

	/* A stale socket (its daemon died) is replaced. */
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	fx_start_intake(f, QUIET_LONG, NULL, 0);
	s = conn(f);
	close(s);
	fx_free(f);
}

/* One uid holds at most max_per_uid connections; a refused one is told why. */
static void
per_uid_connection_limit(void **state)
{
	struct fx *f;
	struct kvmstats_error err;
	int s[5], before;

	(void)state;
	fx_max_per_uid = 4;
	f = fx_new(QUIET_LONG, NULL, 0);
	before = count_fds();
	for (int i = 0; i < 4; i++) {
		s[i] = conn(f);
		/* A round trip: the intake has accepted and serves it. */
		assert_int_equal(kvmstats_intake_end(s[i], "none", &err), -ENOENT);
	}
	s[4] = conn(f);
	assert_int_equal(kvmstats_intake_end(s[4], "none", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "already has 4 intake connections"));
	assert_true(log_capture_has("it has 4 connections, the most per uid"));
	close(s[4]);
	/* One gone, one more may come. */
	close(s[0]);
	for (uint64_t end = ks_mono_ns() + 10 * KS_NSEC_PER_SEC;; sleep_ms(5)) {
		s[0] = conn(f);
		if (kvmstats_intake_end(s[0], "none", &err) == -ENOENT)
			break;
		close(s[0]);
		assert_true(ks_mono_ns() < end);
	}
	for (int i = 0; i < 4; i++)
		close(s[i]);
	assert_fds_back_to(before);
	fx_free(f);
}

/*
 * A connection that holds no VM is closed after idle_ms, with a reply that
 * says so; one that holds a VM stays.  Waits for the close are blocking
 * reads, so a slow machine only makes them longer.
 */
static void
idle_connections_closed(void **state)
{
	struct ks_intake_reply r;
	struct kvmstats_segment *seg;
	struct fx *f;
	char vm[64];
	int idle, busy;

	(void)state;
	fx_idle_ms = 300;
	f = fx_new(QUIET_LONG, NULL, 0);
	vm_name(vm, sizeof(vm));
	idle = conn(f);
	busy = conn(f);
	publish_sim(f, busy, vm, 1);
	assert_int_equal(recv(idle, &r, sizeof(r), 0), (ssize_t)sizeof(r));
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_non_null(strstr(r.msg, "no VM on this connection for 300 ms"));
	assert_closed(idle);
	assert_true(log_capture_wait("closed (idle, holding no VM)", 10000));
	/* Three idle periods later the one with a VM still serves, its VM live. */
	sleep_ms(900);
	op_ok(busy, vm, KS_INTAKE_OP_PUBLISH);
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	assert_int_equal(state_of(seg), KVMSTATS_STATE_LIVE);
	kvmstats_detach(&seg);
	/* Its VM ended, it holds none: now it goes too. */
	op_ok(busy, vm, KS_INTAKE_OP_END);
	assert_int_equal(recv(busy, &r, sizeof(r), 0), (ssize_t)sizeof(r));
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_closed(busy);
	close(idle);
	close(busy);
	fx_free(f);
}

/* 2000 refused connects are a handful of log lines, and a count of the rest. */
static void
refusals_logged_sparingly(void **state)
{
	struct kvmstats_error err;
	unsigned lines;
	struct fx *f;
	char want[64];
	int held, s;

	(void)state;
	fx_max_per_uid = 1;
	f = fx_new(QUIET_LONG, NULL, 0);
	held = conn(f);
	assert_int_equal(kvmstats_intake_end(held, "none", &err), -ENOENT);
	for (int i = 0; i < 2000; i++) {
		s = conn(f);
		assert_int_equal(kvmstats_intake_end(s, "none", &err), -EBUSY);
		close(s);
	}
	ks_intake_stop(&f->in);		/* says how many it did not log */
	lines = log_capture_count("the most per uid");
	/* One window of 10 s, or more on a very slow machine: 10 lines each. */
	assert_true(lines >= 10 && lines < 2000 / 10);
	snprintf(want, sizeof(want), "%u more connections refused", 2000 - lines);
	if (lines == 10)
		assert_true(log_capture_has(want));
	assert_true(log_capture_has("more connections refused"));
	close(held);
	fx_free(f);
}

/* A daemon out of fds says so, instead of blaming the peer's message. */
static void
out_of_fds_said(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_error err;
	struct rlimit old, low;
	char vm[64];
	int s, probe, ret;

	(void)state;
	if (getenv("KVMSTATS_UNDER_VALGRIND")) {
		print_message("skip: valgrind keeps descriptors of its own above the limit\n");
		fx_free(f);
		skip();
	}
	vm_name(vm, sizeof(vm));
	s = conn(f);
	assert_int_equal(kvmstats_intake_end(s, vm, &err), -ENOENT);
	/* No descriptor number is free below the limit: nothing can be received. */
	probe = dup(0);
	assert_true(probe >= 0);
	close(probe);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)probe;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	ret = send_sim(f, s, vm, -1, NULL, &err);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(ret, -EMFILE);
	assert_non_null(strstr(err.msg, "out of file descriptors"));
	/* With descriptors back, the same fd is taken. */
	send_ok(f, s, vm, -1, "vm-label");
	close(s);
	fx_free(f);
}

/* A VM's stats fd offered as a vCPU's (or the reverse, or another vCPU's): its id says. */
static void
fd_of_the_wrong_kind_refused(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct kvmstats_error err;
	char vm[64];
	int s = conn(f);

	(void)state;
	vm_name(vm, sizeof(vm));
	assert_int_equal(kvmstats_intake_send_fd(s, vm, KVMSTATS_TARGET_VCPU, 0, NULL,
					   ks_sim_vm_stats_fd(f->sim, -1), &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "offered as a vCPU's stats fd, but its id"));
	assert_non_null(strstr(err.msg, "is a VM's"));
	assert_int_equal(kvmstats_intake_send_fd(s, vm, KVMSTATS_TARGET_VM, 0, NULL,
					   ks_sim_vm_stats_fd(f->sim, 1), &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "offered as a VM's stats fd, but its id"));
	assert_int_equal(kvmstats_intake_send_fd(s, vm, KVMSTATS_TARGET_VCPU, 2, NULL,
					   ks_sim_vm_stats_fd(f->sim, 1), &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "offered as vCPU 2, but its id"));
	/* Nothing was kept. */
	assert_int_equal(kvmstats_intake_publish(s, vm, &err), -ENOENT);
	close(s);
	fx_free(f);
}

/*
 * The name of another publisher's live segment, or a file that is not a
 * segment, is not the intake's to give: refused at the first fd, and the
 * victim is untouched.
 */
static void
names_of_others_refused(void **state)
{
	struct fx *f = fx_new(QUIET_LONG, NULL, 0);
	struct ks_fd_target fds[2];
	struct ks_engine_config cfg;
	struct ks_engine *other;
	struct kvmstats_segment *seg;
	struct kvmstats_error err;
	struct ks_vm_build b;
	struct stat before, after;
	char vm[64], path[256];
	int s = conn(f), fd;

	(void)state;
	/* Another publisher (an engine of its own) has VM "victim-<pid>". */
	snprintf(vm, sizeof(vm), "victim-%d", (int)getpid());
	ks_engine_config_init(&cfg);
	assert_int_equal(ks_engine_create(&cfg, &other, &err), 0);
	for (int t = 0; t < 2; t++)
		fds[t] = (struct ks_fd_target) {
			.kind = t ? KS_TARGET_VCPU : KS_TARGET_VM,
			.vcpu_index = t ? 0 : KS_VCPU_INDEX_NONE,
			.fd = ks_sim_vm_stats_fd(f->sim, t - 1),
		};
	if (ks_vm_build(vm, fds, 2, NULL, &b, &err) < 0 ||
	    ks_engine_add_vm(other, &b.def, NULL, &err) < 0)
		fail_msg("victim: %s", err.msg);
	ks_vm_build_clear(&b, true);
	snprintf(path, sizeof(path), "%s/kvmstats.%s", ks_engine_dir(other), vm);
	assert_int_equal(stat(path, &before), 0);

	assert_int_equal(send_sim(f, s, vm, -1, NULL, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "is the segment of a live publisher"));
	assert_int_equal(kvmstats_intake_publish(s, vm, &err), -ENOENT);
	assert_int_equal(stat(path, &after), 0);
	assert_true(before.st_ino == after.st_ino);
	seg = attach_wait(vm, 0);
	assert_non_null(seg);
	assert_int_equal(state_of(seg), KVMSTATS_STATE_LIVE);
	kvmstats_detach(&seg);
	ks_engine_destroy(&other);

	/* A file that is no segment, under the name a VM would get. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "precious", 8), 8);
	close(fd);
	assert_int_equal(send_sim(f, s, vm, -1, NULL, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "is not a kvmstats segment"));
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_size, 8);
	assert_int_equal(unlink(path), 0);
	close(s);
	fx_free(f);
}

/* A tiny stats file of vCPU @index: its id must say which vCPU it is. */
static int
vcpu_memfd(uint32_t index)
{
	static const struct ks_image_desc exits = {
		.name = "exits",
		.flags = KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10,
		.size = 1,
	};
	struct ks_image_spec spec = { .nr_desc = 1, .desc = &exits };
	struct kvmstats_error err;
	char id[48];
	int fd;

	snprintf(id, sizeof(id), "kvm-1/vcpu-%u", index);
	spec.id = id;
	fd = ks_image_memfd(&spec, "vcpu-stats", &err);
	if (fd < 0)
		fail_msg("image: %s", err.msg);
	return fd;
}

static void
fd_limit_per_connection(void **state)
{
	struct fx *f;
	struct kvmstats_error err;
	struct rlimit rl;
	char vm[64];
	int s, sfd, before;

	(void)state;
	if (getenv("KVMSTATS_UNDER_VALGRIND")) {
		print_message("skip: 4096 fds in one process under valgrind\n");
		skip();
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 8192) {
		rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
		if (rl.rlim_cur < 8192 || setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			print_message("skip: RLIMIT_NOFILE cannot reach 8192\n");
			skip();
		}
	}
	f = fx_new(QUIET_LONG, NULL, 0);
	vm_name(vm, sizeof(vm));
	before = count_fds();
	s = conn(f);
	for (uint32_t i = 0; i <= 4096; i++) {
		int ret;

		sfd = vcpu_memfd(i);
		ret = kvmstats_intake_send_fd(s, vm, KVMSTATS_TARGET_VCPU, i, NULL, sfd, &err);
		close(sfd);
		if (ret != (i < 4096 ? 0 : -EMFILE))
			fail_msg("fd %u: %d %s", i, ret, err.msg);
	}
	assert_non_null(strstr(err.msg, "4096"));
	assert_int_equal(send_sim(f, s, vm, -1, NULL, &err), -EMFILE);
	/* A replacement is not one more. */
	sfd = vcpu_memfd(7);
	assert_int_equal(kvmstats_intake_send_fd(s, vm, KVMSTATS_TARGET_VCPU, 7, "new", sfd, &err), 0);
	close(sfd);
	close(s);
	assert_fds_back_to(before);
	fx_free(f);
}

/* The client functions check their arguments before anything is sent. */
static void
client_argument_errors(void **state)
{
	struct kvmstats_error err;
	char longname[80];

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(kvmstats_intake_connect("/nonexistent/kvmstats.sock", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "--listen"));
	assert_int_equal(kvmstats_intake_send_fd(-1, longname, KVMSTATS_TARGET_VM, 0, NULL, 0, &err),
			 -ENAMETOOLONG);
	assert_int_equal(kvmstats_intake_send_fd(-1, "", KVMSTATS_TARGET_VM, 0, NULL, 0, &err), -EINVAL);
	assert_int_equal(kvmstats_intake_send_fd(-1, "vm", KVMSTATS_TARGET_VM, 0, NULL, -1, &err), -EBADF);
	assert_int_equal(kvmstats_intake_send_fd(-1, "vm", (enum kvmstats_target_kind)7, 0, NULL,
						 0, &err), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(publish_op_publishes_now),
		cmocka_unit_test(quiet_period_publishes),
		cmocka_unit_test(later_fd_is_new_generation),
		cmocka_unit_test(close_and_end_remove_segments),
		cmocka_unit_test(refused_and_allowed_peers),
		cmocka_unit_test(non_stats_fds_rejected),
		cmocka_unit_test(malformed_messages),
		cmocka_unit_test(name_taken_by_other_connection),
		cmocka_unit_test(stop_ends_open_connections),
		cmocka_unit_test(socket_path_rules),
		cmocka_unit_test(per_uid_connection_limit),
		cmocka_unit_test(idle_connections_closed),
		cmocka_unit_test(refusals_logged_sparingly),
		cmocka_unit_test(out_of_fds_said),
		cmocka_unit_test(fd_of_the_wrong_kind_refused),
		cmocka_unit_test(names_of_others_refused),
		cmocka_unit_test(fd_limit_per_connection),
		cmocka_unit_test(client_argument_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
