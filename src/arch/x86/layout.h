/*
 * The guest-physical map of a skiff x86-64 machine.
 *
 *   0x00000000  real-mode IVT/BDA (RAM, left alone)
 *   0x00000500  GDT for the loaders' entry modes
 *   0x00007000  hvm_start_info (PVH) or boot_params (Linux), then the PVH memory map
 *   0x00009000  identity page tables for the 64-bit Linux entry (PML4, PDPT, 4 PDs)
 *   0x00020000  kernel command line
 *   0x0009fc00  EBDA (reserved)
 *   0x000e0000  ACPI tables, then the MP table at 0x000f0000 (reserved)
 *   0x00100000  kernels load at or above 1 MiB; RAM continues to the 32-bit hole
 *   0xc0000000  32-bit MMIO hole: virtio-mmio devices from 0xd0000000, IOAPIC, LAPIC,
 *               TSS for KVM
 *   0x100000000 the rest of RAM
 */
#ifndef SKIFF_X86_LAYOUT_H
#define SKIFF_X86_LAYOUT_H

#define LAYOUT_GDT		0x500ULL
#define LAYOUT_ZERO_PAGE	0x7000ULL
#define LAYOUT_PVH_MEMMAP	0x7800ULL
#define LAYOUT_PVH_MODLIST	0x7f00ULL
#define LAYOUT_PML4		0x9000ULL
#define LAYOUT_PDPT		0xa000ULL
#define LAYOUT_PD		0xb000ULL /* four pages: the first 4 GiB in 2 MiB pages */
#define LAYOUT_CMDLINE		0x20000ULL
#define LAYOUT_CMDLINE_MAX	0x10000ULL
#define LAYOUT_EBDA		0x9fc00ULL
#define LAYOUT_ACPI		0xe0000ULL
#define LAYOUT_ACPI_MAX		0x10000ULL
#define LAYOUT_MPTABLE		0xf0000ULL
#define LAYOUT_MPTABLE_MAX	0x10000ULL
#define LAYOUT_HIGH_MEM		0x100000ULL /* 1 MiB: lowest address a kernel may load at */

#define LAYOUT_MMIO_HOLE	0xc0000000ULL
#define LAYOUT_MMIO_HOLE_END	0x100000000ULL
#define LAYOUT_VIRTIO_BASE	0xd0000000ULL /* virtio-mmio windows, 4 KiB apart */
#define LAYOUT_IOAPIC		0xfec00000ULL
#define LAYOUT_LAPIC		0xfee00000ULL
#define LAYOUT_KVM_TSS		0xfffbd000ULL /* three pages KVM needs on Intel hosts */

/* I/O ports of skiff's platform devices. */
#define PORT_COM1		0x3f8
#define PORT_I8042		0x60
#define PORT_I8042_CMD		0x64
#define PORT_RTC		0x70
#define PORT_DEBUG_EXIT		0xf4
#define PORT_ACPI_SLEEP_CTL	0x600
#define PORT_ACPI_SLEEP_STS	0x601
#define PORT_ACPI_RESET		0x602
#define PORT_BOOT_TIMER		0x440

#define ACPI_RESET_VALUE	0x1
#define ACPI_S5_SLP_TYP		5
#define IRQ_KEYBOARD		1 /* the i8042's, on every PC */
#define IRQ_COM1		4
#define IRQ_VIRTIO_FIRST	5 /* virtio device i interrupts on GSI 5 + i */
#define IOAPIC_PINS		24
#define MAX_VIRTIO_DEVICES	(IOAPIC_PINS - IRQ_VIRTIO_FIRST)

#endif
