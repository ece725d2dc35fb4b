/*
 * CPU and interrupt discovery from the ACPI MADT (ACPI 6.5 §5.2.12), or from the Intel MP table
 * (MP spec 1.4 §4) when there is no ACPI; ACPI power-off through the FADT and the DSDT's \_S5_.
 * The discovery helpers return NULL or the reason the tables were rejected.
 */
#include "probe.h"

#define RSDP_SIG		0x2052545020445352ULL	/* "RSD PTR " */
#define MP_FLOAT_SIG		0x5f504d5f		/* "_MP_" */
#define MP_CONFIG_SIG		0x504d4350		/* "PCMP" */
#define AML_S5_NAME		0x5f35535f		/* "_S5_" */

#define ACPI_HEADER_LEN		36
#define MADT_ENTRIES		44
#define MADT_LAPIC		0
#define MADT_IOAPIC		1
#define MADT_OVERRIDE		2
#define MADT_X2APIC		9
#define MADT_ENABLED		0x1

/* FADT field offsets (ACPI 6.5 §5.2.9). */
#define FADT_DSDT		40
#define FADT_PM1A_CONTROL	64
#define FADT_FLAGS		112
#define FADT_X_DSDT		140
#define FADT_SLEEP_CONTROL	244
#define FADT_HW_REDUCED		(1u << 20)
#define GAS_SYSTEM_MEMORY	0
#define GAS_SYSTEM_IO		1

#define AML_PACKAGE_OP		0x12
#define AML_BYTE_PREFIX		0x0a
#define AML_ONE_OP		0x01

#define MP_CONFIG_ENTRIES	44
#define MP_PROCESSOR		0
#define MP_IOAPIC		2
#define MP_LAST_TYPE		4
#define MP_ENABLED		0x1

struct acpi_rsdp {
	uint64_t signature;
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length;		/* revision 2 and later */
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

static const char *add_cpu(struct platform *plat, uint32_t apic_id)
{
	if (plat->ncpus == MAX_CPUS)
		return "too-many-cpus";
	plat->apic_ids[plat->ncpus++] = apic_id;
	return NULL;
}

static bool acpi_table_ok(const struct probe *p, uint64_t addr, const char *sig)
{
	const uint8_t *t = (const uint8_t *)addr;
	uint32_t len;

	if (!phys_range_ok(p, addr, ACPI_HEADER_LEN) || memcmp(t, sig, 4))
		return false;
	len = read_u32(t + 4);
	return len >= ACPI_HEADER_LEN && phys_range_ok(p, addr, len) && !checksum8(t, len);
}

static uint64_t find_rsdp(const struct probe *p)
{
	uint64_t a;

	if (p->rsdp)
		return p->rsdp;
	for (a = 0xe0000; a < 0x100000; a += 16) {
		if (read_u64((const void *)a) == RSDP_SIG && !checksum8((const void *)a, 20))
			return a;
	}
	return 0;
}

static const char *parse_madt(struct platform *plat, const uint8_t *t)
{
	uint32_t len = read_u32(t + 4), off;
	bool have_ioapic = false;
	const char *err = NULL;

	if (len < MADT_ENTRIES)
		return "bad-madt";
	for (off = MADT_ENTRIES; off + 2 <= len && !err; off += t[off + 1]) {
		const uint8_t *e = t + off;
		uint8_t elen = e[1];

		if (elen < 2 || off + elen > len)
			return "bad-madt";
		switch (e[0]) {
		case MADT_LAPIC:
			if (elen < 8)
				return "bad-madt";
			if (read_u32(e + 4) & MADT_ENABLED)
				err = add_cpu(plat, e[3]);
			break;
		case MADT_X2APIC:
			if (elen < 16)
				return "bad-madt";
			if (read_u32(e + 8) & MADT_ENABLED)
				err = add_cpu(plat, read_u32(e + 4));
			break;
		case MADT_IOAPIC:
			if (elen < 12)
				return "bad-madt";
			if (!have_ioapic) {
				plat->ioapic_addr = read_u32(e + 4);
				plat->ioapic_gsi_base = read_u32(e + 8);
				have_ioapic = true;
			}
			break;
		case MADT_OVERRIDE:
			if (elen < 10)
				return "bad-madt";
			if (e[2] == 0 && e[3] < 16) {
				plat->isa_gsi[e[3]] = read_u32(e + 4);
				plat->isa_flags[e[3]] = read_u16(e + 8);
			}
			break;
		}
	}
	if (err)
		return err;
	return plat->ncpus ? NULL : "no-cpus";
}

static const char *parse_fadt(const struct probe *p, struct platform *plat, const uint8_t *t)
{
	uint32_t len = read_u32(t + 4);
	uint64_t dsdt;

	if (len < FADT_FLAGS + 4)
		return "bad-fadt";
	plat->has_fadt = true;
	plat->hw_reduced = read_u32(t + FADT_FLAGS) & FADT_HW_REDUCED;
	if (plat->hw_reduced) {
		if (len < FADT_SLEEP_CONTROL + 12)
			return "bad-fadt";
		plat->sleep_control_space = t[FADT_SLEEP_CONTROL];
		plat->sleep_control_addr = read_u64(t + FADT_SLEEP_CONTROL + 4);
	} else {
		plat->pm1a_control = read_u32(t + FADT_PM1A_CONTROL);
	}
	dsdt = read_u32(t + FADT_DSDT);
	if (len >= FADT_X_DSDT + 8 && read_u64(t + FADT_X_DSDT))
		dsdt = read_u64(t + FADT_X_DSDT);
	/* Only its extent now, so smp.c keeps clear of it; it is checked when used. */
	if (dsdt && phys_range_ok(p, dsdt, ACPI_HEADER_LEN)) {
		plat->dsdt = dsdt;
		plat->dsdt_len = read_u32((const uint8_t *)dsdt + 4);
	}
	return NULL;
}

static const char *acpi_discover(const struct probe *p, struct platform *plat, uint64_t rsdp_addr)
{
	const struct acpi_rsdp *rsdp = (const void *)rsdp_addr;
	const uint8_t *root, *table, *madt = NULL, *fadt = NULL;
	const char *root_sig = "RSDT", *err;
	uint32_t entry_size = 4, off, len;
	uint64_t addr;

	if (!phys_range_ok(p, rsdp_addr, sizeof(*rsdp)) || rsdp->signature != RSDP_SIG ||
	    checksum8(rsdp, 20) || (rsdp->revision >= 2 && checksum8(rsdp, sizeof(*rsdp))))
		return "bad-rsdp";
	addr = rsdp->rsdt;
	if (rsdp->revision >= 2 && rsdp->xsdt) {
		addr = rsdp->xsdt;
		root_sig = "XSDT";
		entry_size = 8;
	}
	if (!acpi_table_ok(p, addr, root_sig))
		return entry_size == 8 ? "bad-xsdt" : "bad-rsdt";
	root = (const uint8_t *)addr;
	len = read_u32(root + 4);
	for (off = ACPI_HEADER_LEN; off + entry_size <= len; off += entry_size) {
		addr = entry_size == 8 ? read_u64(root + off) : read_u32(root + off);
		if (!phys_range_ok(p, addr, ACPI_HEADER_LEN))
			return entry_size == 8 ? "bad-xsdt" : "bad-rsdt";
		table = (const uint8_t *)addr;
		if (!madt && !memcmp(table, "APIC", 4)) {
			if (!acpi_table_ok(p, addr, "APIC"))
				return "bad-madt";
			madt = table;
		} else if (!fadt && !memcmp(table, "FACP", 4)) {
			if (!acpi_table_ok(p, addr, "FACP"))
				return "bad-fadt";
			fadt = table;
		}
	}
	if (!madt)
		return "no-madt";
	err = parse_madt(plat, madt);
	if (!err && fadt)
		err = parse_fadt(p, plat, fadt);
	return err;
}

static uint64_t mp_scan(uint64_t start, uint64_t len)
{
	uint64_t a;

	for (a = start; a < start + len; a += 16) {
		const uint8_t *f = (const uint8_t *)a;

		if (read_u32(f) == MP_FLOAT_SIG && f[8] == 1 && !checksum8(f, 16))
			return a;
	}
	return 0;
}

static uint64_t mp_find(void)
{
	uint64_t ebda = (uint64_t)read_u16((const void *)0x40e) << 4, found = 0;

	if (ebda && ebda + 1024 <= 0xa0000)
		found = mp_scan(ebda, 1024);
	if (!found)
		found = mp_scan(639 * 1024, 1024);
	if (!found)
		found = mp_scan(0xf0000, 0x10000);
	return found;
}

static const char *mp_discover(const struct probe *p, struct platform *plat, uint64_t floating)
{
	const uint8_t *f = (const uint8_t *)floating, *c;
	uint32_t base_len, off, size;
	bool have_ioapic = false;
	const char *err = NULL;

	/* A non-zero feature byte 1 names a default configuration, which this probe lacks. */
	if (f[11] || !read_u32(f + 4))
		return "mp-default-config";
	c = (const uint8_t *)(uint64_t)read_u32(f + 4);
	if (!phys_range_ok(p, (uint64_t)c, MP_CONFIG_ENTRIES) || read_u32(c) != MP_CONFIG_SIG)
		return "bad-mp-table";
	base_len = read_u16(c + 4);
	if (base_len < MP_CONFIG_ENTRIES || !phys_range_ok(p, (uint64_t)c, base_len) ||
	    checksum8(c, base_len))
		return "bad-mp-table";
	/* Walk by length, as Linux does: some firmware (qboot) leaves the entry count 0. */
	for (off = MP_CONFIG_ENTRIES; off < base_len && !err; off += size) {
		size = c[off] == MP_PROCESSOR ? 20 : 8;
		if (off + size > base_len || c[off] > MP_LAST_TYPE)
			return "bad-mp-table";
		if (!(c[off + 3] & MP_ENABLED))
			continue;
		if (c[off] == MP_PROCESSOR)
			err = add_cpu(plat, c[off + 1]);
		if (c[off] == MP_IOAPIC && !have_ioapic) {
			plat->ioapic_addr = read_u32(c + off + 4);
			have_ioapic = true;
		}
	}
	if (err)
		return err;
	return plat->ncpus ? NULL : "no-cpus";
}

int platform_discover(struct probe *p, const char **reason)
{
	struct platform *plat = &p->plat;
	uint64_t addr;
	unsigned int i;

	plat->ioapic_addr = IOAPIC_DEFAULT;
	for (i = 0; i < 16; i++)
		plat->isa_gsi[i] = i;

	addr = find_rsdp(p);
	if (addr) {
		plat->acpi = true;
		*reason = acpi_discover(p, plat, addr);
		return *reason ? -1 : 0;
	}
	addr = mp_find();
	if (addr) {
		*reason = mp_discover(p, plat, addr);
		return *reason ? -1 : 0;
	}
	/* Neither table: a uniprocessor machine (MP spec 1.4 §3.6.1). */
	plat->ncpus = 1;
	plat->apic_ids[0] = lapic_id();
	return 0;
}

/* The first element of \_S5_'s package is SLP_TYPa (ACPI 6.5 §7.4.2). */
static int find_s5(const uint8_t *aml, uint32_t len, uint8_t *slp_typ)
{
	uint32_t i, pos;

	for (i = ACPI_HEADER_LEN; i + 4 <= len; i++) {
		if (read_u32(aml + i) != AML_S5_NAME)
			continue;
		pos = i + 4;
		if (pos + 1 >= len || aml[pos] != AML_PACKAGE_OP)
			continue;
		pos += 1 + 1 + (aml[pos + 1] >> 6) + 1;	/* PkgLength, NumElements */
		if (pos + 1 >= len)
			return -1;
		if (aml[pos] == AML_BYTE_PREFIX) {
			*slp_typ = aml[pos + 1] & 7;
			return 0;
		}
		if (aml[pos] <= AML_ONE_OP) {
			*slp_typ = aml[pos];
			return 0;
		}
	}
	return -1;
}

static bool sleep_control_usable(const struct probe *p)
{
	const struct platform *plat = &p->plat;

	if (plat->sleep_control_space == GAS_SYSTEM_IO)
		return plat->sleep_control_addr <= 0xffff;
	return plat->sleep_control_space == GAS_SYSTEM_MEMORY &&
	       phys_range_ok(p, plat->sleep_control_addr, 1);
}

int acpi_poweroff(const struct probe *p, const char **reason)
{
	const struct platform *plat = &p->plat;
	uint8_t slp_typ;

	*reason = NULL;
	if (!plat->acpi)
		*reason = "no-acpi";
	else if (!plat->has_fadt)
		*reason = "no-fadt";
	else if (!acpi_table_ok(p, plat->dsdt, "DSDT"))
		*reason = "bad-dsdt";
	else if (find_s5((const uint8_t *)plat->dsdt, plat->dsdt_len, &slp_typ))
		*reason = "no-s5";
	else if (plat->hw_reduced && !sleep_control_usable(p))
		*reason = "bad-sleep-control";
	else if (!plat->hw_reduced && !plat->pm1a_control)
		*reason = "no-pm1a-control";
	if (*reason)
		return -1;

	/* SLP_TYP and SLP_EN: ACPI 6.5 §4.8.3.7 (sleep control), §4.8.3.2.1 (PM1 control). */
	if (plat->hw_reduced && plat->sleep_control_space == GAS_SYSTEM_IO)
		outb((uint16_t)plat->sleep_control_addr, (uint8_t)(slp_typ << 2 | 1 << 5));
	else if (plat->hw_reduced)
		*(volatile uint8_t *)plat->sleep_control_addr = (uint8_t)(slp_typ << 2 | 1 << 5);
	else
		outw((uint16_t)plat->pm1a_control, (uint16_t)(slp_typ << 10 | 1 << 13));
	return 0;
}
