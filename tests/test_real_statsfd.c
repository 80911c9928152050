/* SPDX-License-Identifier: MIT */
/*
 * test_real_statsfd.c - the parser against the running kernel's stats fds.
 *
 * Creates a VM with two vCPUs through /dev/kvm and parses the real files.
 * Without a usable /dev/kvm (CI containers, no virtualisation) every test
 * is skipped with the reason: lack of KVM is not a failure of this code,
 * unless KVMSTATS_REQUIRE_KVM=1 says KVM must work here: then it fails.
 */
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm_x86_tables.h"
#include "real_kvm.h"
#include "statsfd.h"

#define NR_VCPUS	2

static void
parse_real(int fd, const char *what, struct ks_statsfd_schema *s)
{
	struct kvmstats_error err;

	if (ks_statsfd_parse(fd, what, s, &err) != 0)
		fail_msg("parse: %s", err.msg);
}

/*
 * The kernel writes task_pid_nr(), the id in the initial PID namespace.
 * Return: our pid if we are in it (NSpid has one entry), else -1.
 */
static int
initial_ns_pid(void)
{
	char line[256];
	int fields = 0;
	FILE *f = fopen("/proc/self/status", "r");
	char *p;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "NSpid:", 6) != 0)
			continue;
		for (p = strtok(line + 6, " \t\n"); p != NULL; p = strtok(NULL, " \t\n"))
			fields++;
	}
	fclose(f);
	return fields == 1 ? (int)getpid() : -1;
}

static void
check_id(const char *id, int vcpu)
{
	char want[64];
	int pid = initial_ns_pid(), n, got_pid, got_vcpu;

	if (pid > 0) {
		if (vcpu < 0)
			snprintf(want, sizeof(want), "kvm-%d", pid);
		else
			snprintf(want, sizeof(want), "kvm-%d/vcpu-%d", pid, vcpu);
		assert_string_equal(id, want);
		return;
	}
	/* In a PID namespace only the shape can be checked. */
	n = -1;
	if (vcpu < 0)
		assert_int_equal(sscanf(id, "kvm-%d%n", &got_pid, &n), 1);
	else
		assert_int_equal(sscanf(id, "kvm-%d/vcpu-%d%n", &got_pid, &got_vcpu, &n), 2);
	assert_int_equal(n, (int)strlen(id));
}

static void
check_link(int fd, const char *want)
{
	char path[64], link[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, want);
}

/* Re-read every descriptor raw and compare it with the decoded schema. */
static void
check_raw_descs(int fd, const struct ks_statsfd_schema *s)
{
	struct kvm_stats_header h;
	uint32_t i, acc = 0, skip = 0;
	const struct ks_kvm_desc *d;
	struct kvm_stats_desc *kd;
	size_t stride;
	uint32_t type, unit, base;

	assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.name_size, s->name_size);
	assert_int_equal(h.data_offset, s->data_offset);
	assert_int_equal(h.num_desc, s->nr_desc + s->nr_skipped);
	stride = sizeof(*kd) + h.name_size;
	kd = malloc(stride);
	assert_non_null(kd);
	for (i = 0; i < h.num_desc; i++) {
		assert_int_equal(pread(fd, kd, stride, h.desc_offset + (off_t)stride * i),
				 (ssize_t)stride);
		type = kd->flags & KVM_STATS_TYPE_MASK;
		unit = kd->flags & KVM_STATS_UNIT_MASK;
		base = kd->flags & KVM_STATS_BASE_MASK;
		if (type > KVM_STATS_TYPE_MAX || unit > KVM_STATS_UNIT_MAX ||
		    base > KVM_STATS_BASE_MAX || (kd->flags & ~(uint32_t)(KVM_STATS_TYPE_MASK |
		    KVM_STATS_UNIT_MASK | KVM_STATS_BASE_MASK))) {
			assert_true(skip < s->nr_skipped);
			assert_string_equal(s->skipped[skip].name, kd->name);
			assert_int_equal(s->skipped[skip++].flags, kd->flags);
			continue;
		}
		assert_true(acc < s->nr_desc);
		d = &s->desc[acc++];
		assert_string_equal(d->name, kd->name);
		assert_int_equal(d->type, type >> KVM_STATS_TYPE_SHIFT);
		assert_int_equal(d->unit, unit >> KVM_STATS_UNIT_SHIFT);
		assert_int_equal(d->base, base == KVM_STATS_BASE_POW2 ? 2 : 10);
		assert_int_equal(d->exponent, kd->exponent);
		assert_int_equal(d->size, kd->size);
		assert_int_equal(d->offset, kd->offset);
		assert_int_equal(d->bucket_size, kd->bucket_size);
	}
	assert_int_equal(acc, s->nr_desc);
	assert_int_equal(skip, s->nr_skipped);
	free(kd);
}

/* The bulk read, then each stat's own values, as the kernel selftest does. */
static void
check_reads(int fd, const struct ks_statsfd_schema *s)
{
	uint64_t *buf = malloc(s->data_size), vals[64];
	uint32_t i;

	assert_non_null(buf);
	assert_int_equal(ks_statsfd_read_data(fd, s, buf), 0);
	for (i = 0; i < s->nr_desc; i++) {
		if (s->desc[i].size > 64)
			continue;
		assert_int_equal(pread(fd, vals, s->desc[i].size * 8ul,
				       (off_t)(s->data_offset + s->desc[i].offset)),
				 (ssize_t)(s->desc[i].size * 8ul));
	}
	free(buf);
}

static bool
matches_table(const struct ks_statsfd_schema *s, const struct ks_image_desc *t, uint32_t n)
{
	uint32_t i;

	if (s->nr_desc != n || s->nr_skipped != 0)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(s->desc[i].name, t[i].name) != 0 ||
		    s->desc[i].offset != t[i].offset || s->desc[i].size != t[i].size)
			return false;
	return true;
}

static void
test_real_vm(void **state)
{
	struct ks_statsfd_schema vm, vcpu[NR_VCPUS];
	struct real_vm r;
	struct stat st;
	char what[64], link[64];
	int i;

	(void)state;
	real_vm_make(&r, NR_VCPUS);
	snprintf(what, sizeof(what), "real VM stats fd %d", r.stats[0]);
	parse_real(r.stats[0], what, &vm);
	check_id(vm.id, -1);
	check_link(r.stats[0], "anon_inode:kvm-vm-stats");
	check_raw_descs(r.stats[0], &vm);
	check_reads(r.stats[0], &vm);
	for (i = 0; i < NR_VCPUS; i++) {
		snprintf(what, sizeof(what), "real vCPU %d stats fd %d", i, r.stats[1 + i]);
		parse_real(r.stats[1 + i], what, &vcpu[i]);
		check_id(vcpu[i].id, i);
		snprintf(link, sizeof(link), "anon_inode:kvm-vcpu-stats:%d", i);
		check_link(r.stats[1 + i], link);
		check_raw_descs(r.stats[1 + i], &vcpu[i]);
		check_reads(r.stats[1 + i], &vcpu[i]);
	}
	assert_true(ks_statsfd_same_layout(&vcpu[0], &vcpu[1]));

	/* Informational: what this kernel publishes (tables change between kernels). */
	assert_int_equal(fstat(r.stats[0], &st), 0);
	print_message("kernel tables: VM num_desc %u (skipped %u) data %u bytes at %llu; "
		      "vCPU num_desc %u (skipped %u) data %u bytes at %llu; st_size %lld; "
		      "x86 reference tables: %s\n",
		      vm.nr_desc, vm.nr_skipped, vm.data_size,
		      (unsigned long long)vm.data_offset, vcpu[0].nr_desc,
		      vcpu[0].nr_skipped, vcpu[0].data_size,
		      (unsigned long long)vcpu[0].data_offset, (long long)st.st_size,
		      matches_table(&vm, ks_x86_vm_desc, KS_X86_VM_NR_DESC) &&
		      matches_table(&vcpu[0], ks_x86_vcpu_desc, KS_X86_VCPU_NR_DESC) ?
		      "identical" : "different");
	ks_statsfd_schema_clear(&vm);
	for (i = 0; i < NR_VCPUS; i++)
		ks_statsfd_schema_clear(&vcpu[i]);
	real_vm_close(&r);
}

/* The stats fd outlives the VM and vCPU fds (it holds a VM reference). */
static void
test_real_outlives_vm(void **state)
{
	struct ks_statsfd_schema s;
	struct real_vm r;
	int fd;

	(void)state;
	real_vm_make(&r, NR_VCPUS);
	fd = r.stats[2];	/* vCPU 1's */
	r.stats[2] = -1;
	real_vm_close(&r);
	parse_real(fd, "orphaned vCPU stats fd", &s);
	check_id(s.id, 1);
	check_reads(fd, &s);
	check_raw_descs(fd, &s);
	ks_statsfd_schema_clear(&s);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_vm),
		cmocka_unit_test(test_real_outlives_vm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
