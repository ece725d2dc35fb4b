/* Intel MultiProcessor Specification 1.4, chapter 4: for guests that look before ACPI. */
#include "layout.h"
#include "tables.h"

#include "../../util/bytes.h"

#include <errno.h>
#include <string.h>

#define FLOATING_SIZE	16
#define HEADER_SIZE	44
#define ENTRY_CPU	0
#define ENTRY_BUS	1
#define ENTRY_IOAPIC	2
#define ENTRY_IOINT	3
#define ENTRY_LOCALINT	4
#define INT_TYPE_INT	0
#define INT_TYPE_NMI	1
#define INT_TYPE_EXTINT	3
#define ISA_IRQS	16

static uint8_t *local_int(uint8_t *e, uint8_t type, uint8_t lint)
{
	e[0] = ENTRY_LOCALINT;
	e[1] = type;
	put_le16(e + 2, 0);
	e[4] = 0;	/* source bus */
	e[5] = 0;	/* source IRQ */
	e[6] = 0xff;	/* every local APIC */
	e[7] = lint;
	return e + 8;
}

int mptable_build(struct guest_mem *mem, unsigned nr_cpus)
{
	uint8_t *fp = guest_mem_ptr(mem, LAYOUT_MPTABLE, LAYOUT_MPTABLE_MAX);
	uint8_t *table, *e;
	uint8_t ioapic = tables_ioapic_id(nr_cpus);
	unsigned entries = 0;

	if (!fp || nr_cpus == 0 || nr_cpus > TABLES_MAX_CPUS)
		return -EINVAL;
	guest_mem_clear(mem, fp, LAYOUT_MPTABLE_MAX);
	table = fp + FLOATING_SIZE;
	e = table + HEADER_SIZE;

	for (unsigned i = 0; i < nr_cpus; i++, e += 20, entries++) {
		e[0] = ENTRY_CPU;
		e[1] = i;			/* local APIC ID */
		e[2] = 0x14;			/* local APIC version */
		e[3] = 0x01 | (i == 0 ? 0x02 : 0); /* enabled, bootstrap processor */
		put_le32(e + 4, 0x600);		/* CPU signature: family 6 */
		put_le32(e + 8, 0x201);		/* features: FPU, APIC */
	}
	e[0] = ENTRY_BUS;
	e[1] = 0;
	memcpy(e + 2, "ISA   ", 6);
	e += 8;
	entries++;
	e[0] = ENTRY_IOAPIC;
	e[1] = ioapic;
	e[2] = 0x11;
	e[3] = 0x01; /* enabled */
	put_le32(e + 4, LAYOUT_IOAPIC);
	e += 8;
	entries++;
	for (unsigned irq = 0; irq < ISA_IRQS; irq++, e += 8, entries++) {
		e[0] = ENTRY_IOINT;
		e[1] = INT_TYPE_INT;
		put_le16(e + 2, 0); /* polarity and trigger conform to the ISA bus */
		e[4] = 0;
		e[5] = irq;
		e[6] = ioapic;
		e[7] = irq == 0 ? 2 : irq;
	}
	e = local_int(e, INT_TYPE_EXTINT, 0);
	e = local_int(e, INT_TYPE_NMI, 1);
	entries += 2;

	memcpy(table, "PCMP", 4);
	put_le16(table + 4, e - table);
	table[6] = 4; /* spec revision 1.4 */
	memcpy(table + 8, "SKIFF   ", 8);
	memcpy(table + 16, "SKIFF VM    ", 12);
	put_le16(table + 34, entries);
	put_le32(table + 36, LAYOUT_LAPIC);
	table_checksum(table, e - table, &table[7]);

	memcpy(fp, "_MP_", 4);
	put_le32(fp + 4, LAYOUT_MPTABLE + FLOATING_SIZE);
	fp[8] = 1; /* length in 16-byte units */
	fp[9] = 4;
	table_checksum(fp, FLOATING_SIZE, &fp[10]);
	return 0;
}
