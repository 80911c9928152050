/* SPDX-License-Identifier: MIT */
/*
 * kvm_x86_tables.c - the x86 stats descriptors exactly as kvm_amd reports
 * them on Linux 6.1 and 6.12: same order, same offsets.  The order is the
 * kernel's, not the offsets': the VM table ends with 112 then 104.
 */
#include <linux/kvm.h>

#include "kvm_x86_tables.h"

#define POW10		KVM_STATS_BASE_POW10
#define CUM		(KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | POW10)
#define INST		(KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | POW10)
#define PEAK		(KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE | POW10)
#define BOOL_INST	(KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN | POW10)
#define NS_CUM		(KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS | POW10)
#define NS_LOG_HIST	(KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS | POW10)

/* One u64 at @off; nanoseconds are seconds with exponent -9. */
#define D(nm, fl, off)		{ .name = nm, .flags = fl, .size = 1, .offset = off }
#define D_NS(nm, off)		{ .name = nm, .flags = NS_CUM, .exponent = -9, \
				  .size = 1, .offset = off }
#define D_HIST(nm, off)		{ .name = nm, .flags = NS_LOG_HIST, .exponent = -9, \
				  .size = KS_X86_HIST_BUCKETS, .offset = off }

const struct ks_image_desc ks_x86_vm_desc[KS_X86_VM_NR_DESC] = {
	D("remote_tlb_flush", CUM, 0),
	D("remote_tlb_flush_requests", CUM, 8),
	D("mmu_shadow_zapped", CUM, 16),
	D("mmu_pte_write", CUM, 24),
	D("mmu_pde_zapped", CUM, 32),
	D("mmu_flooded", CUM, 40),
	D("mmu_recycled", CUM, 48),
	D("mmu_cache_miss", CUM, 56),
	D("mmu_unsync", INST, 64),
	D("pages_4k", INST, 72),
	D("pages_2m", INST, 80),
	D("pages_1g", INST, 88),
	D("nx_lpage_splits", INST, 96),
	D("max_mmu_rmap_size", PEAK, 112),
	D("max_mmu_page_hash_collisions", PEAK, 104),
};

const struct ks_image_desc ks_x86_vcpu_desc[KS_X86_VCPU_NR_DESC] = {
	D("halt_successful_poll", CUM, 0),
	D("halt_attempted_poll", CUM, 8),
	D("halt_poll_invalid", CUM, 16),
	D("halt_wakeup", CUM, 24),
	D_NS("halt_poll_success_ns", 32),
	D_NS("halt_poll_fail_ns", 40),
	D_NS("halt_wait_ns", 48),
	D_HIST("halt_poll_success_hist", 56),
	D_HIST("halt_poll_fail_hist", 312),
	D_HIST("halt_wait_hist", 568),
	D("blocking", BOOL_INST, 824),
	D("pf_taken", CUM, 832),
	D("pf_fixed", CUM, 840),
	D("pf_emulate", CUM, 848),
	D("pf_spurious", CUM, 856),
	D("pf_fast", CUM, 864),
	D("pf_mmio_spte_created", CUM, 872),
	D("pf_guest", CUM, 880),
	D("tlb_flush", CUM, 888),
	D("invlpg", CUM, 896),
	D("exits", CUM, 904),
	D("io_exits", CUM, 912),
	D("mmio_exits", CUM, 920),
	D("signal_exits", CUM, 928),
	D("irq_window_exits", CUM, 936),
	D("nmi_window_exits", CUM, 944),
	D("l1d_flush", CUM, 952),
	D("halt_exits", CUM, 960),
	D("request_irq_exits", CUM, 968),
	D("irq_exits", CUM, 976),
	D("host_state_reload", CUM, 984),
	D("fpu_reload", CUM, 992),
	D("insn_emulation", CUM, 1000),
	D("insn_emulation_fail", CUM, 1008),
	D("hypercalls", CUM, 1016),
	D("irq_injections", CUM, 1024),
	D("nmi_injections", CUM, 1032),
	D("req_event", CUM, 1040),
	D("nested_run", CUM, 1048),
	D("directed_yield_attempted", CUM, 1056),
	D("directed_yield_successful", CUM, 1064),
	D("preemption_reported", CUM, 1072),
	D("preemption_other", CUM, 1080),
	D("guest_mode", BOOL_INST, 1088),
	D("notify_window_exits", CUM, 1096),
};
