#include "test.h"

#include "../../src/arch/x86/layout.h"
#include "../../src/arch/x86/tables.h"
#include "../../src/util/bytes.h"

#include <string.h>

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static struct guest_mem mem_of(uint64_t size)
{
	static uint8_t *buf;
	struct guest_mem mem;

	free(buf);
	buf = calloc(1, size > LAYOUT_MMIO_HOLE ? 2 * LAYOUT_HIGH_MEM : size);
	/* Tables live below 1 MiB: only that part of a large layout is ever touched. */
	guest_mem_wrap(&mem, buf, size, LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END);
	return mem;
}

TEST(memory_layout_splits_around_hole)
{
	struct guest_region r[2];

	CHECK(guest_mem_layout(64 << 20, LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END, r) == 1);
	CHECK(r[0].gpa == 0 && r[0].size == 64 << 20);
	CHECK(guest_mem_layout(5ULL << 30, LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END, r) == 2);
	CHECK(r[0].size == LAYOUT_MMIO_HOLE);
	CHECK(r[1].gpa == 4ULL << 30 && r[1].size == (5ULL << 30) - LAYOUT_MMIO_HOLE);
}

TEST(guest_mem_ptr_bounds)
{
	struct guest_mem mem = mem_of(16 << 20);

	CHECK(guest_mem_ptr(&mem, 0, 16 << 20) == mem.base);
	CHECK(guest_mem_ptr(&mem, (16 << 20) - 1, 1) != NULL);
	CHECK(guest_mem_ptr(&mem, (16 << 20) - 1, 2) == NULL);
	CHECK(guest_mem_ptr(&mem, 16 << 20, 0) != NULL); /* empty range at the end */
	CHECK(guest_mem_ptr(&mem, 16 << 20, 1) == NULL);
	CHECK(guest_mem_ptr(&mem, 1, UINT64_MAX) == NULL);
	CHECK(guest_mem_ptr(&mem, UINT64_MAX, 2) == NULL);
}

TEST(e820_small)
{
	struct guest_mem mem = mem_of(64 << 20);
	struct e820_entry e[E820_MAX];
	unsigned n = e820_build(&mem, e);
	uint64_t ram = 0;

	CHECK(n == 3);
	for (unsigned i = 0; i < n; i++) {
		if (e[i].type == E820_RAM)
			ram += e[i].size;
		if (i)
			CHECK(e[i].addr >= e[i - 1].addr + e[i - 1].size); /* sorted, disjoint */
	}
	CHECK(e[2].addr == LAYOUT_HIGH_MEM && e[2].addr + e[2].size == 64 << 20);
	CHECK(ram == (64 << 20) - (LAYOUT_HIGH_MEM - LAYOUT_EBDA));
}

TEST(e820_above_4g)
{
	struct guest_mem mem = mem_of(5ULL << 30);
	struct e820_entry e[E820_MAX];
	unsigned n = e820_build(&mem, e);

	CHECK(n == 4);
	CHECK(e[2].addr + e[2].size == LAYOUT_MMIO_HOLE);
	CHECK(e[3].addr == 4ULL << 30 && e[3].size == (5ULL << 30) - LAYOUT_MMIO_HOLE);
	CHECK(e[3].type == E820_RAM);
}

static const uint8_t *table_at(struct guest_mem *mem, uint64_t gpa)
{
	const uint8_t *t = guest_mem_ptr(mem, gpa, 36);

	return t ? guest_mem_ptr(mem, gpa, get_le32(t + 4)) : NULL;
}

TEST(acpi_tables)
{
	struct guest_mem mem = mem_of(64 << 20);
	static const struct acpi_mmio_device devs[2] = { { 0xd0000000, 0x1000, 5 },
							 { 0xd0001000, 0x1000, 6 } };
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt, *e, *crs;
	uint64_t rsdp_gpa;
	unsigned cpus = 0;

	CHECK(acpi_build(&mem, 4, devs, 2, &rsdp_gpa) == 0);
	rsdp = guest_mem_ptr(&mem, rsdp_gpa, 36);
	CHECK(!memcmp(rsdp, "RSD PTR ", 8) && rsdp[15] == 2);
	CHECK(sum(rsdp, 20) == 0 && sum(rsdp, 36) == 0);
	CHECK(rsdp_gpa >= 0xe0000 && rsdp_gpa < 0x100000 && rsdp_gpa % 16 == 0);
	xsdt = table_at(&mem, get_le64(rsdp + 24));
	CHECK(!memcmp(xsdt, "XSDT", 4) && sum(xsdt, get_le32(xsdt + 4)) == 0);
	CHECK(get_le32(xsdt + 4) == 36 + 16);
	fadt = table_at(&mem, get_le64(xsdt + 36));
	madt = table_at(&mem, get_le64(xsdt + 44));
	CHECK(!memcmp(fadt, "FACP", 4) && sum(fadt, get_le32(fadt + 4)) == 0);
	CHECK(get_le32(fadt + 4) == 276);
	CHECK(get_le32(fadt + 112) & (1u << 20)); /* hardware-reduced */
	CHECK(get_le64(fadt + 244 + 4) == PORT_ACPI_SLEEP_CTL && fadt[244] == 1);
	CHECK(get_le64(fadt + 116 + 4) == PORT_ACPI_RESET && fadt[128] == ACPI_RESET_VALUE);
	dsdt = table_at(&mem, get_le64(fadt + 140));
	CHECK(!memcmp(dsdt, "DSDT", 4) && sum(dsdt, get_le32(dsdt + 4)) == 0);
	CHECK(memmem(dsdt, get_le32(dsdt + 4), "_S5_\x12", 5) != NULL);
	/* \_SB.VR01: LNRO0005 with its window and GSI in _CRS */
	crs = memmem(dsdt, get_le32(dsdt + 4), "VR01", 4);
	CHECK(crs && memmem(crs, 30, "LNRO0005", 8));
	crs = crs ? memmem(crs, 60, "_CRS", 4) : NULL;
	CHECK(crs && crs[4] == 0x11 && crs[8] == 0x86);
	CHECK(crs && get_le32(crs + 12) == 0xd0001000 && get_le32(crs + 16) == 0x1000);
	CHECK(crs && crs[20] == 0x89 && get_le32(crs + 25) == 6);
	CHECK(crs && crs[29] == 0x79);
	CHECK(!memcmp(madt, "APIC", 4) && sum(madt, get_le32(madt + 4)) == 0);
	CHECK(get_le32(madt + 36) == LAYOUT_LAPIC);
	for (e = madt + 44; e < madt + get_le32(madt + 4); e += e[1]) {
		if (e[0] == 0 && (get_le32(e + 4) & 1))
			CHECK(e[3] == cpus++);
		if (e[0] == 1)
			CHECK(get_le32(e + 4) == LAYOUT_IOAPIC && e[2] == 4);
		CHECK(e[1] >= 2);
	}
	CHECK(e == madt + get_le32(madt + 4));
	CHECK(cpus == 4);
}

TEST(acpi_limits)
{
	struct guest_mem mem = mem_of(64 << 20);
	uint64_t rsdp;

	CHECK(acpi_build(&mem, 0, NULL, 0, &rsdp) < 0);
	CHECK(acpi_build(&mem, TABLES_MAX_CPUS + 1, NULL, 0, &rsdp) < 0);
	CHECK(acpi_build(&mem, TABLES_MAX_CPUS, NULL, 0, &rsdp) == 0);
}

TEST(mptable)
{
	struct guest_mem mem = mem_of(64 << 20);
	const uint8_t *fp = guest_mem_ptr(&mem, LAYOUT_MPTABLE, 16), *t, *e;
	unsigned cpus = 0, ioints = 0, entries;

	CHECK(mptable_build(&mem, 3) == 0);
	CHECK(!memcmp(fp, "_MP_", 4) && sum(fp, 16) == 0 && fp[8] == 1);
	t = guest_mem_ptr(&mem, get_le32(fp + 4), get_le16(guest_mem_ptr(&mem, get_le32(fp + 4) + 4, 2)));
	CHECK(!memcmp(t, "PCMP", 4) && sum(t, get_le16(t + 4)) == 0);
	entries = get_le16(t + 34);
	e = t + 44;
	for (unsigned i = 0; i < entries; i++) {
		if (e[0] == 0) {
			CHECK(e[1] == cpus);
			CHECK(((e[3] & 2) != 0) == (cpus == 0)); /* only CPU 0 is the BSP */
			cpus++;
			e += 20;
		} else {
			ioints += e[0] == 3;
			if (e[0] == 3 && e[5] == 4)
				CHECK(e[7] == 4 && e[6] == 3); /* COM1 -> pin 4 of IOAPIC id 3 */
			e += 8;
		}
	}
	CHECK(e == t + get_le16(t + 4));
	CHECK(cpus == 3 && ioints == 16);
}

TEST_MAIN(T(memory_layout_splits_around_hole), T(guest_mem_ptr_bounds), T(e820_small),
	  T(e820_above_4g), T(acpi_tables), T(acpi_limits), T(mptable))
