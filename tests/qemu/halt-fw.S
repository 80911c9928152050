/* SPDX-License-Identifier: MIT */
/*
 * The test firmware for the QEMU comparisons (-bios): 64 KiB of 16-bit
 * real-mode code that programs the PIT to 1 kHz and halts between its
 * interrupts, forever.  SeaBIOS with no boot device leaves the boot vCPU
 * spinning and every histogram empty, so a histogram's bucket order could
 * not be told from its reverse; here the boot vCPU halts about 1000 times
 * a second, so halt_wait_hist and halt_poll_*_hist fill, and exits,
 * halt_exits and irq_injections move.  The other vCPUs stay in KVM's
 * wait-for-SIPI state, as with any firmware that does not start them.
 *
 * The image is mapped at 0xF0000 (and at the top of 4 GiB); the reset
 * vector at 0xFFFF0 jumps to start.  Built by tests/qemu/test_qemu.py
 * with as and ld (binutils, which gcc brings).
 */
	.code16
	.text
	.globl	start
start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x7000, %sp
	/* IVT entry of vector 8 (IRQ0 after the PIC remap below): F000:tick. */
	movw	$tick, 0x20
	movw	$0xf000, 0x22
	/* 8259 master: ICW1 edge + ICW4, ICW2 base vector 8, ICW3 slave on
	 * IRQ2, ICW4 8086 mode; then only IRQ0 unmasked, the slave masked. */
	movb	$0x11, %al
	outb	%al, $0x20
	movb	$0x08, %al
	outb	%al, $0x21
	movb	$0x04, %al
	outb	%al, $0x21
	movb	$0x01, %al
	outb	%al, $0x21
	movb	$0xfe, %al
	outb	%al, $0x21
	movb	$0xff, %al
	outb	%al, $0xa1
	/* The PIC reaches a CPU through its local APIC only when the APIC is
	 * off or LINT0 is ExtINT (KVM's kvm_apic_accept_pic_intr); the APIC
	 * page is beyond real mode's reach, so turn the APIC off in its MSR
	 * (IA32_APIC_BASE bit 11: global enable). */
	movl	$0x1b, %ecx
	rdmsr
	andl	$~0x800, %eax
	wrmsr
	/* PIT channel 0, mode 2 (rate generator), divisor 1193: 1000 Hz. */
	movb	$0x34, %al
	outb	%al, $0x43
	movw	$1193, %ax
	outb	%al, $0x40
	movb	%ah, %al
	outb	%al, $0x40
idle:
	sti
	hlt
	jmp	idle

tick:
	pushw	%ax
	movb	$0x20, %al		/* non-specific EOI */
	outb	%al, $0x20
	popw	%ax
	iret

	.org	0xfff0
reset:
	ljmp	$0xf000, $start
	.org	0x10000
