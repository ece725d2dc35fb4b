/* Firmware tables a guest reads to find its memory and CPUs: e820, ACPI, Intel MP. */
#ifndef SKIFF_X86_TABLES_H
#define SKIFF_X86_TABLES_H

#include "../../vmm/memory.h"

#include <stddef.h>
#include <stdint.h>

#define E820_RAM	1
#define E820_RESERVED	2
#define E820_MAX	8

/* The most vCPUs the tables can describe: 8-bit xAPIC IDs, and one ID for the IOAPIC. */
#define TABLES_MAX_CPUS 254

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Fills out[] (E820_MAX entries) with the map of mem; returns the number of entries. */
unsigned e820_build(const struct guest_mem *mem, struct e820_entry *out);

/* Makes the byte sum of [p, p + len) zero by setting *sum_byte. */
void table_checksum(void *p, size_t len, uint8_t *sum_byte);

/* An MMIO device for the DSDT: a virtio-mmio window and its edge-triggered GSI. */
struct acpi_mmio_device {
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
};

#define MAX_VIRTIO_ACPI 24

/*
 * Writes RSDP, XSDT, FADT, MADT and DSDT (with the virtio-mmio devices) at LAYOUT_ACPI;
 * returns 0 and the RSDP address.
 */
int acpi_build(struct guest_mem *mem, unsigned nr_cpus, const struct acpi_mmio_device *devs,
	       unsigned nr_devs, uint64_t *rsdp);
/* Writes the MP floating pointer and configuration table at LAYOUT_MPTABLE. */
int mptable_build(struct guest_mem *mem, unsigned nr_cpus);

/* The IOAPIC's ID in both tables: just past the CPUs' APIC IDs (0..nr_cpus-1). */
static inline uint8_t tables_ioapic_id(unsigned nr_cpus)
{
	return nr_cpus;
}

#endif
