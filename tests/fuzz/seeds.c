// SPDX-License-Identifier: MIT
/*
 * seeds.c - write the fuzzers' seed corpora with the project's own builders.
 *
 *	fuzz-seeds DIR	->  DIR/statsfd/NAME, DIR/segment/NAME (and DIR/exporter/NAME),
 *			    DIR/intake_msg/NAME, DIR/qmp/NAME, DIR/sched/NAME
 *
 * Valid inputs let the fuzzers start past the magic and the first bounds
 * checks: the x86 VM and vCPU stats files (statsfd_image.h and the kernel's
 * tables) and published segments made by the segment writer, with a few
 * sweeps written so the read paths find data.  Generated at build time, not
 * committed: they follow the builders when the layouts change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "intake.h"
#include "kvm_x86_tables.h"
#include "ks_seqlock.h"
#include "segment_writer.h"
#include "statsfd_image.h"
#include "small_vm_stats.h"

static const char *out;

static void
put(const char *sub, const char *name, const void *buf, size_t len)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", out, sub);
	if (mkdir(p, 0755) < 0 && errno != EEXIST) {
		perror(p);
		exit(1);
	}
	snprintf(p, sizeof(p), "%s/%s/%s", out, sub, name);
	f = fopen(p, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(p);
		exit(1);
	}
}

static void
statsfd_seed(const char *name, const struct ks_image_spec *spec)
{
	uint8_t *buf;
	size_t len;
	uint32_t data_off;

	if (ks_image_build(spec, &buf, &len, &data_off) < 0) {
		fprintf(stderr, "seed %s: cannot build\n", name);
		exit(1);
	}
	put("statsfd", name, buf, len);
	free(buf);
}

static void
statsfd_seeds(void)
{
	static const struct ks_image_desc lin[] = {
		{ .name = "a", .flags = 0, .size = 1, .offset = 0 },
		{ .name = "lin", .flags = 0x3 /* KVM_STATS_TYPE_LINEAR_HIST */, .size = 4,
		  .offset = 8, .bucket_size = 10 },
	};
	const struct ks_image_spec vm = {
		.id = "kvm-4242", .nr_desc = KS_X86_VM_NR_DESC, .desc = ks_x86_vm_desc,
	}, vcpu = {
		.id = "kvm-4242/vcpu-0", .nr_desc = KS_X86_VCPU_NR_DESC, .desc = ks_x86_vcpu_desc,
	}, reordered = {
		/* Data before descriptors before id, with gaps: offsets are the file's to choose. */
		.id = "kvm-1", .nr_desc = KS_X86_VM_NR_DESC, .desc = ks_x86_vm_desc,
		.data_offset = 64, .desc_offset = 512, .id_offset = 4096,
	}, small = {
		.id = "kvm-7", .name_size = 8, .nr_desc = 2, .desc = lin,
	};

	statsfd_seed("x86-vm", &vm);
	statsfd_seed("x86-vcpu", &vcpu);
	statsfd_seed("reordered", &reordered);
	statsfd_seed("small-linear", &small);
}

/* ---- segments (the small VM of small_vm_stats.h) ---- */

static void
segment_seed(const char *dir, const char *vm, unsigned nr_vcpus, uint32_t depth,
	     unsigned sweeps)
{
	struct ks_seg_target_def t[8];
	char labels[8][64], ids[8][64];
	struct ks_segment_writer *w;
	struct kvmstats_error err;
	struct ks_seg_def def;
	struct ks_seg_place pl = { .dir = dir, .mode = 0600, .gid = (gid_t)-1 };

	snprintf(ids[0], sizeof(ids[0]), "%s", vm);
	t[0] = (struct ks_seg_target_def){
		.kind = KS_TARGET_VM, .vcpu_index = KS_VCPU_INDEX_NONE, .label = "",
		.id = ids[0], .nr_stats = 2, .stats = vm_stats, .record_words = 2,
	};
	for (unsigned i = 0; i < nr_vcpus; i++) {
		snprintf(labels[1 + i], sizeof(labels[0]), "/machine/unattached/device[%u]", i);
		snprintf(ids[1 + i], sizeof(ids[0]), "%s/vcpu-%u", vm, i);
		t[1 + i] = (struct ks_seg_target_def){
			.kind = KS_TARGET_VCPU, .vcpu_index = i, .label = labels[1 + i],
			.id = ids[1 + i], .nr_stats = 4, .stats = vcpu_stats, .record_words = 9,
		};
	}
	def = (struct ks_seg_def){
		.vm_name = vm, .incarnation = 123456789, .generation = 1,
		.poll_period_ns = 1000000, .ring_depth = depth, .nr_providers = 2,
		.providers = providers, .nr_targets = 1 + nr_vcpus, .targets = t,
	};
	if (ks_segment_create(&def, &pl, &w, &err) < 0 || ks_segment_publish(w, NULL, &err) < 0) {
		fprintf(stderr, "seed %s: %s\n", vm, err.msg);
		exit(1);
	}
	for (uint64_t s = 1; s <= sweeps; s++) {
		for (uint32_t i = 0; i < w->nr_targets; i++) {
			struct ks_shm_slot *slot = ks_segment_slot(w, i, s);
			uint64_t v[9];

			for (uint32_t k = 0; k < w->targets[i].words; k++)
				v[k] = s * 100 + k;
			ks_slot_write_begin(slot);
			ks_slot_stamp(slot, s, s * 1000 + i, 0);
			ks_store_words(slot->values, v, w->targets[i].words);
			ks_slot_write_end(slot);
		}
		ks_header_publish_sweep(w->hdr, s, s * 1000);
	}
	/* The writer is idle: a plain copy of its mapping is a stable image. */
	put("segment", vm, w->base, w->size);
	put("exporter", vm, w->base, w->size);	/* the same segments, scraped */
	ks_segment_unlink(w);
	ks_segment_destroy(&w);
}

/* ---- intake conversations (the record format of fuzz_intake_msg.c) ---- */

struct convo {
	uint8_t buf[16 * (1 + sizeof(struct ks_intake_msg))];
	size_t len;
};

static void
say(struct convo *cv, uint8_t ctl, uint16_t op, uint32_t kind, uint32_t vcpu,
    const char *vm, const char *label)
{
	struct ks_intake_msg m;

	memset(&m, 0, sizeof(m));
	m.magic = KS_INTAKE_MAGIC;
	m.version = KS_INTAKE_VERSION;
	m.op = op;
	m.kind = kind;
	m.vcpu_index = vcpu;
	snprintf(m.vm, sizeof(m.vm), "%s", vm);
	snprintf(m.label, sizeof(m.label), "%s", label);
	cv->buf[cv->len++] = ctl;
	memcpy(cv->buf + cv->len, &m, sizeof(m));
	cv->len += sizeof(m);
}

static void
intake_seeds(void)
{
	struct convo a = { .len = 0 }, b = { .len = 0 };

	/* ctl: 1 VM fd, 2 vCPU fd, 8 magic and version kept right. */
	say(&a, 8 | 1, KS_INTAKE_OP_FD, KS_TARGET_VM, 0, "seed-vm", "");
	say(&a, 8 | 2, KS_INTAKE_OP_FD, KS_TARGET_VCPU, 0, "seed-vm", "/machine/cpu[0]");
	say(&a, 8 | 2, KS_INTAKE_OP_FD, KS_TARGET_VCPU, 1, "seed-vm", "");
	say(&a, 8, KS_INTAKE_OP_PUBLISH, 0, 0, "seed-vm", "");
	say(&a, 8, KS_INTAKE_OP_END, 0, 0, "seed-vm", "");
	put("intake_msg", "publish-end", a.buf, a.len);

	/* Hotplug: a second generation from the whole set. */
	say(&b, 8 | 2, KS_INTAKE_OP_FD, KS_TARGET_VCPU, 0, "seed-hp", "");
	say(&b, 8, KS_INTAKE_OP_PUBLISH, 0, 0, "seed-hp", "");
	say(&b, 8 | 2, KS_INTAKE_OP_FD, KS_TARGET_VCPU, 1, "seed-hp", "");
	say(&b, 8 | 2, KS_INTAKE_OP_FD, KS_TARGET_VCPU, 0, "seed-hp", "replaced");
	say(&b, 8, KS_INTAKE_OP_PUBLISH, 0, 0, "seed-hp", "");
	say(&b, 8 | 1, KS_INTAKE_OP_FD, KS_TARGET_VM, 0, "other", "");
	put("intake_msg", "hotplug", b.buf, b.len);
}

/*
 * ---- QMP sessions (fuzz_qmp.c: a byte of split size, a byte whose low bit
 * says the VM is gone, then what a client sends) ----
 */
static void
qmp_seed(const char *name, const char *session)
{
	char buf[2048];
	size_t n = strlen(session);

	buf[0] = 5;	/* 6-byte pieces */
	buf[1] = 0;	/* the VM is there */
	memcpy(buf + 2, session, n);
	put("qmp", name, buf, n + 2);
}

static void
qmp_seeds(void)
{
	qmp_seed("negotiate-query",
		 "{\"execute\": \"qmp_capabilities\"}"
		 "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vcpu\", "
		 "\"vcpus\": [\"/machine/unattached/device[1]\"], \"providers\": "
		 "[{\"provider\": \"kvm\", \"names\": [\"c1\", \"hist0\"]}, "
		 "{\"provider\": \"kvm\"}]}, \"id\": [1, {\"a\": null}]}");
	qmp_seed("every-command",
		 "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": []}}"
		 "{\"execute\": \"query-version\"}{\"execute\": \"query-commands\"}"
		 "{\"execute\": \"query-cpus-fast\"}"
		 "{\"execute\": \"query-stats-schemas\", \"arguments\": {\"provider\": \"kvm\"}}"
		 "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vm\"}, \"id\": 2.5}");
	qmp_seed("errors",
		 "[1] \"s\" {} {\"execute\": 1} {\"exec-oob\": \"x\"} "
		 "{\"execute\": \"query-stats\"} {\"a\": 1, \"a\": 2} } {\"x\": \"\\\"{\"}");
}

/* ---- QEMU command lines (fuzz_qemu_name.c: NUL-separated arguments) ---- */
static void
qemu_name_seeds(void)
{
	static const char libvirt[] = "qemu-system-x86_64\0-name\0guest=web-01,debug-threads=on"
				      "\0-m\0128\0";
	static const char plain[] = "qemu\0--name\0a,,b\0-name\0debug-threads=on\0";
	static const char cut[] = "qemu\0-name\0guest=cut-off";

	put("qemu_name", "libvirt", libvirt, sizeof(libvirt) - 1);
	put("qemu_name", "plain", plain, sizeof(plain) - 1);
	put("qemu_name", "cut", cut, sizeof(cut) - 1);
}

/* What a vCPU thread's files say (Linux 6.x), and a comm made to look like fields. */
static void
sched_seeds(void)
{
	static const char schedstat[] = "176825 1893123 2\n";
	static const char stat[] = "4242 (CPU 0/KVM) S 1 4242 4242 0 -1 4194368 3108 0 0 0 "
		"12 5 0 0 20 0 5 0 1183 1166323712 3712 18446744073709551615 1 1 0 0 0 0 "
		"0 4096 17663 0 0 0 -1 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
	static const char odd[] = "4242 (x) R 1 2 (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 "
		"16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40\n";
	static const char status[] = "Name:\tCPU 0/KVM\nUmask:\t0022\nState:\tS (sleeping)\n"
		"Tgid:\t4242\nPid:\t4243\nCpus_allowed:\tff\nCpus_allowed_list:\t0-7\n"
		"voluntary_ctxt_switches:\t1523\nnonvoluntary_ctxt_switches:\t17\n";

	put("sched", "schedstat", schedstat, sizeof(schedstat) - 1);
	put("sched", "stat", stat, sizeof(stat) - 1);
	put("sched", "stat-odd-comm", odd, sizeof(odd) - 1);
	put("sched", "status", status, sizeof(status) - 1);
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/kvmstats-seeds-XXXXXX";

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	out = argv[1];
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		perror(out);
		return 1;
	}
	statsfd_seeds();
	intake_seeds();
	qmp_seeds();
	qemu_name_seeds();
	sched_seeds();
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 1;
	}
	segment_seed(dir, "seed-2vcpu", 2, 4, 5);
	segment_seed(dir, "seed-novcpu", 0, 2, 1);
	segment_seed(dir, "seed-empty", 1, 3, 0);
	segment_seed(dir, "seed-deep", 7, 16, 20);
	rmdir(dir);
	return 0;
}
