// SPDX-License-Identifier: MIT
/*
 * fuzz_intake_msg.c - libFuzzer harness: the intake socket's message handling.
 *
 * The intake's per-message code (framing, check_msg(), OP_FD, OP_PUBLISH,
 * OP_END) is static in publisher/sources/intake_server.c and only reached
 * from its poll thread, so this harness includes intake_server.c and drives
 * conn_message() on one end of a socketpair, as the thread does, with an
 * engine that is never started (publishing still makes and removes real
 * segments, in a private directory).  The harness defines every symbol of
 * intake_server.c, so the archive's intake_server.o is not linked.
 *
 * Input: up to MAX_MSGS records, each a control byte then the message:
 *   bits 0-1  fds attached: none, the x86 VM stats memfd, the vCPU one, or
 *             the vCPU one and a garbage memfd (two fds in one message);
 *   bit 2     the next byte is the length to send (0..255), not 264;
 *   bit 3     write the right magic and version over the message, so the
 *             fuzzer spends its time past the framing checks.
 */
#include "intake_server.c"

#include <sys/mman.h>

#include "kvm_x86_tables.h"
#include "statsfd_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS	16

static struct ks_engine *engine;
static int vm_fd = -1, vcpu_fd = -1, junk_fd = -1;
static char dir[] = "/tmp/kvmstats-fuzz-intake-XXXXXX";

/* Leave nothing in /tmp after a run that ends normally. */
static void
cleanup(void)
{
	ks_engine_destroy(&engine);
	rmdir(dir);
}

static void
fuzz_init(void)
{
	const struct ks_image_spec vm = {
		.id = "kvm-1", .nr_desc = KS_X86_VM_NR_DESC, .desc = ks_x86_vm_desc,
	}, vcpu = {
		.id = "kvm-1/vcpu-0", .nr_desc = KS_X86_VCPU_NR_DESC, .desc = ks_x86_vcpu_desc,
	};
	struct ks_engine_config cfg;
	struct kvmstats_error err;

	if (mkdtemp(dir) == NULL)
		abort();
	ks_engine_config_init(&cfg);
	cfg.dir = dir;
	cfg.mode = 0600;
	if (ks_engine_create(&cfg, &engine, &err) < 0)
		abort();
	atexit(cleanup);
	vm_fd = ks_image_memfd(&vm, "fuzz-vm", &err);
	vcpu_fd = ks_image_memfd(&vcpu, "fuzz-vcpu", &err);
	junk_fd = memfd_create("fuzz-junk", MFD_CLOEXEC);
	if (vm_fd < 0 || vcpu_fd < 0 || junk_fd < 0 || write(junk_fd, "junk", 4) != 4)
		abort();
}

static int
send_one(int sock, const void *buf, size_t len, unsigned nfds, const int *fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Read the replies so that the next ones fit; each must be a whole reply. */
static void
drain_replies(int sock)
{
	struct ks_intake_reply r;
	ssize_t n;

	while ((n = recv(sock, &r, sizeof(r), MSG_DONTWAIT)) > 0)
		if (n != (ssize_t)sizeof(r) || r.magic != KS_INTAKE_MAGIC ||
		    memchr(r.msg, '\0', sizeof(r.msg)) == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_intake in = { .listen_fd = -1, .wake_fd = -1 };
	struct intake_conn *c;
	int sv[2];

	if (engine == NULL)
		fuzz_init();
	in.e = engine;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		abort();
	c->sock = sv[0];
	c->uid = getuid();
	c->pid = getpid();
	in.conns[0] = c;
	in.nr_conns = 1;

	for (unsigned i = 0; i < MAX_MSGS && size > 0; i++) {
		uint8_t ctl = *data++, buf[sizeof(struct ks_intake_msg)] = { 0 };
		size_t len = sizeof(buf), take;
		int fds[2];
		unsigned nfds = 0;

		size--;
		if ((ctl & 4) && size > 0) {
			len = *data++;
			size--;
		}
		take = size < sizeof(buf) ? size : sizeof(buf);
		memcpy(buf, data, take);
		data += take;
		size -= take;
		if (ctl & 8) {
			struct ks_intake_msg *m = (struct ks_intake_msg *)(void *)buf;

			m->magic = KS_INTAKE_MAGIC;
			m->version = KS_INTAKE_VERSION;
		}
		switch (ctl & 3) {
		case 1: fds[nfds++] = vm_fd; break;
		case 2: fds[nfds++] = vcpu_fd; break;
		case 3: fds[nfds++] = vcpu_fd; fds[nfds++] = junk_fd; break;
		}
		if (send_one(sv[1], buf, len, nfds, fds) < 0)
			break;
		if (!conn_message(&in, c))
			break;
		drain_replies(sv[1]);
	}
	/* What conn_close() does, without the poll thread's bookkeeping. */
	while (c->vms)
		vm_end(&in, c, c->vms, "fuzz input done");
	if (c->nr_fds != 0)
		abort();
	free(c);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
