/*
 * Ways into the probe kernel: the PVH entry (32-bit protected mode, paging off, EBX = start_info),
 * the return from CPL3, and interrupt stubs. Also the GDT and the boot page tables.
 */
#include "asm.h"

/* Xen PVH entry note (xen/include/public/elfnote.h); the descriptor is a pointer, as in Linux. */
	.section .note.Xen, "a"
	.balign 4
	.long 4			/* name size */
	.long 8			/* descriptor size */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.quad pvh_start

	.text
	.code32
	.globl pvh_start
pvh_start:
	cli
	mov %ebx, %edi
	lgdt gdt_ptr
	enter_long_mode
	ljmp $KERNEL_CS, $start64

	.code64
start64:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov $bsp_stack_top, %rsp
	mov %edi, %edi		/* upper halves are undefined after the mode switch */
	call probe_main
	/* probe_main does not return */

/*
 * uint64_t user_call(uint64_t (*fn)(void *), void *arg, void *stack_top, void *tss_rsp0)
 * Runs fn(arg) at CPL3 with interrupts off and returns its result. fn comes back with ud2: on
 * this host syscall and int n from CPL3 do not reach CPL0 intact, but exceptions do. RSP0 is
 * the kernel stack as left here, 16-byte aligned so the CPU pushes the 5-word frame right below.
 */
	.globl user_call
user_call:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	sub $8, %rsp
	mov %rsp, (%rcx)
	mov %rdi, %rax
	mov %rsi, %rdi
	pushq $USER_DS_RPL3
	pushq %rdx
	pushq $RFLAGS_FIXED
	pushq $USER_CS_RPL3
	pushq $user_start
	iretq

user_start:
	call *%rax
	ud2

	.globl user_return
user_return:
	add $48, %rsp		/* the exception frame and the alignment slot */
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	/* The echo tests' device interrupts: the C loops find the work, this only acknowledges. */
	.globl irq_entry
irq_entry:
	push %rax
	mov $(LAPIC_BASE + LAPIC_EOI), %eax
	movl $0, (%rax)
	pop %rax
	iretq

	/* The LAPIC spurious vector must not be acknowledged (SDM 11.9). */
	.globl spurious_entry
spurious_entry:
	iretq

	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* KERNEL_CS: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff	/* KERNEL_DS */
	.quad 0x00cff2000000ffff	/* USER_DS: DPL 3 */
	.quad 0x00affa000000ffff	/* USER_CS: 64-bit code, DPL 3 */
	.fill 2 * MAX_CPUS, 8, 0	/* TSS descriptors, filled by user.c */
gdt_end:
	.if gdt_end - gdt != GDT_SIZE
	.error "GDT_SIZE is stale"
	.endif
gdt_ptr:
	.word GDT_SIZE - 1
	.long gdt

/*
 * Identity map of the first 4 GiB in 2 MiB pages, built by the assembler so that booting costs
 * no CPL0 instructions; main.c extends pdpt for RAM above 4 GiB. U is set everywhere so CPL3
 * code can reach all RAM; the IOAPIC and LAPIC pages are uncached.
 */
	.balign 4096
	.globl pml4, pdpt
pml4:
	.quad pdpt + PTE_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd_low + PTE_TABLE
	.quad pd_low + 0x1000 + PTE_TABLE
	.quad pd_low + 0x2000 + PTE_TABLE
	.quad pd_low + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
pd_low:
	.set addr, 0
	.rept 2048
	.if (addr == IOAPIC_DEFAULT) || (addr == LAPIC_BASE)
	.quad addr + PTE_LARGE + PTE_UNCACHED
	.else
	.quad addr + PTE_LARGE
	.endif
	.set addr, addr + 0x200000
	.endr

	.bss
	.balign 16
	.space 16384
bsp_stack_top:

	.section .note.GNU-stack, "", @progbits
