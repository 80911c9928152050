/* SPDX-License-Identifier: MIT */
/*
 * synth_vm.h - a VM whose every value is a known function of the sweep.
 *
 * The torture and engine tests publish it: a reader can then check each
 * value it reads against synth_value(sample.sweep, target, word), so a
 * torn or mixed-up read cannot go unnoticed.  Records have the x86 sizes:
 * 15 words for the VM, 138 for a vCPU (42 scalars and 3 histograms of 32).
 */
#ifndef KVMSTATS_TESTS_SYNTH_VM_H
#define KVMSTATS_TESTS_SYNTH_VM_H

#include <stdint.h>

#include "engine.h"

#define SYNTH_VM_WORDS		15
#define SYNTH_VCPU_SCALARS	42
#define SYNTH_VCPU_HISTS	3
#define SYNTH_HIST_BUCKETS	32
#define SYNTH_VCPU_WORDS	(SYNTH_VCPU_SCALARS + SYNTH_VCPU_HISTS * SYNTH_HIST_BUCKETS)

/* Low 32 bits: sweep; then 16 bits of word index; then 16 bits of target index. */
static inline uint64_t
synth_value(uint64_t sweep, uint32_t target, uint32_t word)
{
	return (sweep & 0xffffffffu) | ((uint64_t)(word & 0xffffu) << 32) |
	       ((uint64_t)(target & 0xffffu) << 48);
}

struct synth_vm {
	struct ks_vm_def def;
	struct ks_target_def *targets;
	struct ks_block_def *blocks;
	char (*labels)[48];
	unsigned fail_target;
	unsigned fail_every;
};

/*
 * synth_vm_init() - a VM target and @nr_vcpus vCPU targets.  Target
 * @fail_target's source fails on sweeps divisible by @fail_every (0: never),
 * so its slot is stale and repeats the sweep before.
 */
int synth_vm_init(struct synth_vm *s, const char *vm_name, unsigned nr_vcpus,
		  unsigned fail_target, unsigned fail_every);

/* Free the definition (the sources belong to the engine once handed over). */
void synth_vm_clear(struct synth_vm *s);

/* The sweep whose values a sample of @target at @sweep must hold. */
uint64_t synth_expected_sweep(const struct synth_vm *s, uint32_t target, uint64_t sweep);

#endif /* KVMSTATS_TESTS_SYNTH_VM_H */
