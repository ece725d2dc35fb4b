/*
 * AP start-up code. smp.c copies trampoline_start..trampoline_end to a low RAM page whose number
 * is the SIPI vector; the AP starts there in real mode with CS = page << 8, IP = 0. It goes
 * straight to long mode (PE and PG set together, then a far jump into the 64-bit GDT code
 * segment), so the only position-dependent access is the DS-relative GDT pointer.
 */
#include "asm.h"

	.text
	.code16
	.globl trampoline_start, trampoline_end
trampoline_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl (trampoline_gdt_ptr - trampoline_start)
	enter_long_mode
	ljmpl $KERNEL_CS, $ap_start64
trampoline_gdt_ptr:
	.word GDT_SIZE - 1
	.long gdt
trampoline_end:

	.code64
ap_start64:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov ap_boot_stack, %rsp
	call ap_main
	/* ap_main does not return */

	.section .note.GNU-stack, "", @progbits
