/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_abi.h"
#include "synth_vm.h"

struct synth_ctx {
	uint32_t target;
	unsigned fail_every;
};

static int
synth_read(void *ctx, _Atomic uint64_t *dst, uint32_t words, uint64_t sweep)
{
	const struct synth_ctx *c = ctx;

	if (c->fail_every && sweep % c->fail_every == 0)
		return -EIO;
	for (uint32_t w = 0; w < words; w++)
		atomic_store_explicit(&dst[w], synth_value(sweep, c->target, w),
				      memory_order_relaxed);
	return 0;
}

static void
synth_release(void *ctx)
{
	free(ctx);
}

static const struct ks_source_ops synth_ops = {
	.read = synth_read,
	.release = synth_release,
};

/* Stat tables shared by every target of a kind (names are static strings). */
static struct ks_seg_stat_def vm_stats[SYNTH_VM_WORDS];
static struct ks_seg_stat_def vcpu_stats[SYNTH_VCPU_SCALARS + SYNTH_VCPU_HISTS];
static char stat_names[SYNTH_VCPU_SCALARS + SYNTH_VCPU_HISTS + SYNTH_VM_WORDS][16];

static void
init_stat_tables(void)
{
	unsigned k = 0;

	for (unsigned i = 0; i < SYNTH_VM_WORDS; i++, k++) {
		snprintf(stat_names[k], sizeof(stat_names[k]), "vm_c%u", i);
		vm_stats[i] = (struct ks_seg_stat_def) {
			.name = stat_names[k], .type = KS_TYPE_CUMULATIVE,
			.unit = KS_UNIT_NONE, .base = 10, .size = 1, .value_index = i,
		};
	}
	for (unsigned i = 0; i < SYNTH_VCPU_SCALARS; i++, k++) {
		snprintf(stat_names[k], sizeof(stat_names[k]), "c%u", i);
		vcpu_stats[i] = (struct ks_seg_stat_def) {
			.name = stat_names[k], .type = KS_TYPE_CUMULATIVE,
			.unit = KS_UNIT_NONE, .base = 10, .size = 1, .value_index = i,
		};
	}
	for (unsigned h = 0; h < SYNTH_VCPU_HISTS; h++, k++) {
		snprintf(stat_names[k], sizeof(stat_names[k]), "hist%u", h);
		vcpu_stats[SYNTH_VCPU_SCALARS + h] = (struct ks_seg_stat_def) {
			.name = stat_names[k], .type = KS_TYPE_LOG_HIST,
			.unit = KS_UNIT_SECONDS, .base = 10, .exponent = -9,
			.size = SYNTH_HIST_BUCKETS,
			.value_index = SYNTH_VCPU_SCALARS + h * SYNTH_HIST_BUCKETS,
		};
	}
}

int
synth_vm_init(struct synth_vm *s, const char *vm_name, unsigned nr_vcpus,
	      unsigned fail_target, unsigned fail_every)
{
	unsigned n = nr_vcpus + 1;

	memset(s, 0, sizeof(*s));
	init_stat_tables();
	s->targets = calloc(n, sizeof(*s->targets));
	s->blocks = calloc(n, sizeof(*s->blocks));
	s->labels = calloc(n, sizeof(*s->labels));
	if (!s->targets || !s->blocks || !s->labels)
		return -ENOMEM;
	for (unsigned t = 0; t < n; t++) {
		struct synth_ctx *c = calloc(1, sizeof(*c));
		bool vm = t == 0;

		if (c == NULL)
			return -ENOMEM;
		c->target = t;
		c->fail_every = t == fail_target ? fail_every : 0;
		s->blocks[t] = (struct ks_block_def) {
			.provider = "kvm",
			.nr_stats = vm ? SYNTH_VM_WORDS : SYNTH_VCPU_SCALARS + SYNTH_VCPU_HISTS,
			.stats = vm ? vm_stats : vcpu_stats,
			.words = vm ? SYNTH_VM_WORDS : SYNTH_VCPU_WORDS,
			.ops = &synth_ops,
			.ctx = c,
		};
		if (vm)
			snprintf(s->labels[t], sizeof(s->labels[t]), "vm");
		else
			snprintf(s->labels[t], sizeof(s->labels[t]),
				 "/machine/unattached/device[%u]", t - 1);
		s->targets[t] = (struct ks_target_def) {
			.kind = vm ? KS_TARGET_VM : KS_TARGET_VCPU,
			.vcpu_index = vm ? KS_VCPU_INDEX_NONE : t - 1,
			.label = s->labels[t],
			.id = "",
			.nr_blocks = 1,
			.blocks = &s->blocks[t],
		};
	}
	s->fail_target = fail_target;
	s->fail_every = fail_every;
	s->def = (struct ks_vm_def) {
		.vm_name = vm_name, .nr_targets = n, .targets = s->targets,
	};
	return 0;
}

void
synth_vm_clear(struct synth_vm *s)
{
	free(s->targets);
	free(s->blocks);
	free(s->labels);
	memset(s, 0, sizeof(*s));
}

uint64_t
synth_expected_sweep(const struct synth_vm *s, uint32_t target, uint64_t sweep)
{
	/* A failed read repeats the sweep before (never itself a failure: fail_every >= 2). */
	if (target == s->fail_target && s->fail_every && sweep % s->fail_every == 0)
		return sweep - 1;
	return sweep;
}
