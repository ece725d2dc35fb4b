/* Constants shared by the assembly entry code and C. */
#ifndef PROBE_ASM_H
#define PROBE_ASM_H

#define KERNEL_CS	0x08
#define KERNEL_DS	0x10
#define USER_DS_RPL3	0x1b
#define USER_CS_RPL3	0x23
#define TSS_FIRST	0x28		/* then one 16-byte TSS descriptor per CPU */

#define MAX_CPUS	64
#define GDT_SIZE	(TSS_FIRST + 16 * MAX_CPUS)

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020

#define MSR_EFER	0xc0000080
#define EFER_LME	0x100

#define RFLAGS_FIXED	0x002

#define PTE_TABLE	0x007		/* present, writable, user */
#define PTE_LARGE	0x087		/* ... and a 2 MiB / 1 GiB page */
#define PTE_UNCACHED	0x018		/* PCD | PWT */

#define IOAPIC_DEFAULT	0xfec00000	/* where an IOAPIC sits unless the MADT says otherwise */
#define LAPIC_BASE	0xfee00000
#define LAPIC_EOI	0xb0

#define USER_RETURN_VECTOR	6	/* #UD: CPL3 code ends with ud2 */

#ifdef __ASSEMBLER__
/* From protected mode with paging off (or real mode with a GDT loaded) into long mode. */
.macro enter_long_mode
	mov $CR4_PAE, %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov $(CR0_PG | CR0_PE), %eax
	mov %eax, %cr0
.endm
#endif

#endif
