/*
 * ACPI tables for a hardware-reduced platform (ACPI 6.4 §4.1): no PM timer, no GPEs, no
 * legacy PIC or PIT. Power-off goes through the sleep control register, reset through
 * the FADT reset register; both are ports handled by devices/power.c.
 */
#include "layout.h"
#include "tables.h"

#include "../../util/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define RSDP_SIZE	36
#define HEADER_SIZE	36
#define FADT_SIZE	276
#define XSDT_OFFSET	0x40
#define FADT_OFFSET	0x100
#define MADT_OFFSET	0x300 /* up to 2.1 KiB for TABLES_MAX_CPUS */
#define DSDT_OFFSET	0x1000
#define DSDT_MAX	0x2000

#define KBD_AML_MAX	64
#define VIRTIO_AML_MAX	64

_Static_assert(DSDT_OFFSET + HEADER_SIZE + 64 + 4 + KBD_AML_MAX +
			       MAX_VIRTIO_ACPI * VIRTIO_AML_MAX < DSDT_MAX &&
	       DSDT_MAX <= LAYOUT_ACPI_MAX, "the DSDT fits its place");

#define FADT_WBINVD		(1u << 0)
#define FADT_PWR_BUTTON		(1u << 4)
#define FADT_SLP_BUTTON		(1u << 5)
#define FADT_RESET_REG_SUP	(1u << 10)
#define FADT_HW_REDUCED_ACPI	(1u << 20)
#define BOOT_ARCH_8042		(1u << 1)
#define BOOT_ARCH_NO_VGA	(1u << 2)
#define GAS_SYSTEM_IO		1
#define GAS_ACCESS_BYTE		1

#define MADT_LOCAL_APIC		0
#define MADT_IOAPIC		1
#define MADT_INT_OVERRIDE	2
#define MADT_LAPIC_NMI		4

/* Name (_S5, Package () { 5, 5, 0, 0 }): the S5 sleep type. */
static const uint8_t s5_aml[] = {
	0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
	0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, 0x00, 0x00,
};

#define AML_NAME	0x08
#define AML_BYTE	0x0a
#define AML_DWORD	0x0c
#define AML_STRING	0x0d
#define AML_SCOPE	0x10
#define AML_BUFFER	0x11
#define AML_EXT		0x5b
#define AML_DEVICE	0x82

/* ACPI 6.4 §20.2.4: a PkgLength of 1 or 2 bytes (enough for tables below 4 KiB). */
static uint8_t *aml_pkglen(uint8_t *p, size_t len)
{
	if (len + 1 < 64) {
		*p++ = len + 1;
	} else {
		len += 2;
		*p++ = 0x40 | (len & 0x0f);
		*p++ = len >> 4;
	}
	return p;
}

static uint8_t *aml_bytes(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

/* Name (_CRS, Buffer () { crs }): a device's resources. */
static uint8_t *aml_crs(uint8_t *b, const uint8_t *crs, size_t len)
{
	b = aml_bytes(b, (uint8_t[]){ AML_NAME, '_', 'C', 'R', 'S', AML_BUFFER }, 6);
	b = aml_pkglen(b, 2 + len);
	b = aml_bytes(b, (uint8_t[]){ AML_BYTE, len }, 2);
	return aml_bytes(b, crs, len);
}

/* Device () around body, which starts with the device's name. */
static uint8_t *aml_device(uint8_t *p, const uint8_t *body, size_t len)
{
	*p++ = AML_EXT;
	*p++ = AML_DEVICE;
	p = aml_pkglen(p, len);
	return aml_bytes(p, body, len);
}

/*
 * Device (VRnn) { _HID "LNRO0005", _UID n, _CRS: its MMIO window and edge interrupt } —
 * how Linux's virtio_mmio driver finds devices through ACPI (kernels built without
 * VIRTIO_MMIO_CMDLINE_DEVICES, like Debian's, have no other way).
 */
static uint8_t *aml_virtio_device(uint8_t *p, unsigned n, const struct acpi_mmio_device *d)
{
	uint8_t crs[23] = {
		0x86, 0x09, 0x00, 0x01, /* Memory32Fixed, read-write */
		[12] = 0x89, 0x06, 0x00, 0x03, 0x01, /* Interrupt: consumer, edge, high; one */
		[21] = 0x79, 0x00, /* end tag */
	};
	uint8_t body[VIRTIO_AML_MAX], *b = body;
	char name[5];

	put_le32(crs + 4, d->base);
	put_le32(crs + 8, d->size);
	put_le32(crs + 17, d->gsi);
	snprintf(name, sizeof(name), "VR%02X", n & 0xff);
	b = aml_bytes(b, name, 4);
	b = aml_bytes(b, (uint8_t[]){ AML_NAME, '_', 'H', 'I', 'D', AML_STRING }, 6);
	b = aml_bytes(b, "LNRO0005", 9);
	b = aml_bytes(b, (uint8_t[]){ AML_NAME, '_', 'U', 'I', 'D', AML_BYTE, n }, 7);
	b = aml_crs(b, crs, sizeof(crs));
	return aml_device(p, body, b - body);
}

/*
 * Device (KBD_) { _HID EisaId ("PNP0303"), _CRS: ports 0x60 and 0x64, IRQ 1 } — the PS/2
 * keyboard, described as on a PC. On a hardware-reduced platform Linux sets up no ISA
 * interrupts of its own (no legacy PIC: nr_legacy_irqs() is 0), so its i8042 driver needs
 * this device, found by PNPACPI, to learn the ports and to have IRQ 1 mapped to IOAPIC
 * pin 1; with it the driver also skips the absent AUX port instead of probing for it.
 */
static uint8_t *aml_keyboard(uint8_t *p)
{
	const uint8_t crs[] = {
		/* IO (Decode16, min, max, alignment 1, length 1) for each port */
		0x47, 0x01, PORT_I8042 & 0xff, PORT_I8042 >> 8, PORT_I8042 & 0xff,
		PORT_I8042 >> 8, 0x01, 0x01,
		0x47, 0x01, PORT_I8042_CMD & 0xff, PORT_I8042_CMD >> 8, PORT_I8042_CMD & 0xff,
		PORT_I8042_CMD >> 8, 0x01, 0x01,
		0x22, 1u << IRQ_KEYBOARD, 0x00, /* IRQNoFlags: edge, active high, as ISA */
		0x79, 0x00, /* end tag */
	};
	uint8_t body[KBD_AML_MAX], *b = body;

	b = aml_bytes(b, "KBD_", 4);
	/* EisaId ("PNP0303"): three 5-bit letters, then the product number, big-endian */
	b = aml_bytes(b, (uint8_t[]){ AML_NAME, '_', 'H', 'I', 'D', AML_DWORD, 0x41, 0xd0, 0x03,
				      0x03 }, 10);
	b = aml_crs(b, crs, sizeof(crs));
	return aml_device(p, body, b - body);
}

/* The DSDT's definition block: \_S5 and, in \_SB, the keyboard and virtio-mmio devices. */
static size_t build_dsdt_aml(uint8_t *aml, const struct acpi_mmio_device *devs, unsigned n)
{
	uint8_t devices[KBD_AML_MAX + MAX_VIRTIO_ACPI * VIRTIO_AML_MAX], *d = devices, *p = aml;

	p = aml_bytes(p, s5_aml, sizeof(s5_aml));
	d = aml_keyboard(d);
	for (unsigned i = 0; i < n; i++)
		d = aml_virtio_device(d, i, &devs[i]);
	*p++ = AML_SCOPE;
	p = aml_pkglen(p, 4 + (d - devices));
	p = aml_bytes(p, "_SB_", 4);
	p = aml_bytes(p, devices, d - devices);
	return p - aml;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t revision)
{
	memcpy(t, sig, 4);
	put_le32(t + 4, len);
	t[8] = revision;
	memcpy(t + 10, "SKIFF ", 6);
	memcpy(t + 16, "SKIFFVM ", 8);
	put_le32(t + 24, 1);
	memcpy(t + 28, "SKIF", 4);
	put_le32(t + 32, 1);
}

static void finish(uint8_t *t)
{
	table_checksum(t, get_le32(t + 4), &t[9]);
}

static void gas_io(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8;
	g[2] = 0;
	g[3] = GAS_ACCESS_BYTE;
	put_le64(g + 4, port);
}

static void build_fadt(uint8_t *t, uint64_t dsdt)
{
	header(t, "FACP", FADT_SIZE, 6);
	put_le32(t + 40, dsdt);
	t[108] = 0x32; /* CMOS century register */
	/*
	 * The 8042 flag: without it Linux marks the controller absent (acpi_parse_fadt), and
	 * only the DSDT's keyboard device would still lead its driver to it.
	 */
	put_le16(t + 109, BOOT_ARCH_8042 | BOOT_ARCH_NO_VGA);
	put_le32(t + 112, FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP |
				  FADT_HW_REDUCED_ACPI);
	gas_io(t + 116, PORT_ACPI_RESET);
	t[128] = ACPI_RESET_VALUE;
	t[131] = 4; /* FADT minor version: ACPI 6.4 */
	put_le64(t + 140, dsdt);
	gas_io(t + 244, PORT_ACPI_SLEEP_CTL);
	gas_io(t + 256, PORT_ACPI_SLEEP_STS);
	memcpy(t + 268, "SKIFFVMM", 8); /* hypervisor vendor identity */
	finish(t);
}

static uint32_t build_madt(uint8_t *t, unsigned nr_cpus)
{
	uint8_t *e = t + 44;

	put_le32(t + 36, LAYOUT_LAPIC);
	put_le32(t + 40, 0); /* no PCAT_COMPAT: there is no 8259 */
	for (unsigned i = 0; i < nr_cpus; i++, e += 8) {
		e[0] = MADT_LOCAL_APIC;
		e[1] = 8;
		e[2] = i; /* ACPI processor UID */
		e[3] = i; /* APIC ID */
		put_le32(e + 4, 1); /* enabled */
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = tables_ioapic_id(nr_cpus);
	e[3] = 0;
	put_le32(e + 4, LAYOUT_IOAPIC);
	put_le32(e + 8, 0); /* GSI base */
	e += 12;
	/* ISA IRQ 0 is wired to pin 2, as on every PC; the other ISA IRQs map 1:1. */
	e[0] = MADT_INT_OVERRIDE;
	e[1] = 10;
	e[2] = 0;
	e[3] = 0;
	put_le32(e + 4, 2);
	put_le16(e + 8, 0);
	e += 10;
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xff; /* all processors */
	put_le16(e + 3, 0);
	e[5] = 1; /* LINT1 */
	e += 6;
	header(t, "APIC", e - t, 4);
	finish(t);
	return e - t;
}

int acpi_build(struct guest_mem *mem, unsigned nr_cpus, const struct acpi_mmio_device *devs,
	       unsigned nr_devs, uint64_t *rsdp_gpa)
{
	uint8_t *base = guest_mem_ptr(mem, LAYOUT_ACPI, LAYOUT_ACPI_MAX);
	uint8_t *rsdp, *xsdt;
	size_t aml_len;

	if (!base || nr_cpus == 0 || nr_cpus > TABLES_MAX_CPUS || nr_devs > MAX_VIRTIO_ACPI)
		return -EINVAL;
	guest_mem_clear(mem, base, LAYOUT_ACPI_MAX);

	build_fadt(base + FADT_OFFSET, LAYOUT_ACPI + DSDT_OFFSET);
	aml_len = build_dsdt_aml(base + DSDT_OFFSET + HEADER_SIZE, devs, nr_devs);
	header(base + DSDT_OFFSET, "DSDT", HEADER_SIZE + aml_len, 2);
	finish(base + DSDT_OFFSET);
	build_madt(base + MADT_OFFSET, nr_cpus);

	xsdt = base + XSDT_OFFSET;
	header(xsdt, "XSDT", HEADER_SIZE + 2 * 8, 1);
	put_le64(xsdt + HEADER_SIZE, LAYOUT_ACPI + FADT_OFFSET);
	put_le64(xsdt + HEADER_SIZE + 8, LAYOUT_ACPI + MADT_OFFSET);
	finish(xsdt);

	/* ACPI 6.4 §5.2.5.3: the first 20 bytes and all 36 have their own checksums. */
	rsdp = base;
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "SKIFF ", 6);
	rsdp[15] = 2;
	put_le32(rsdp + 20, RSDP_SIZE);
	put_le64(rsdp + 24, LAYOUT_ACPI + XSDT_OFFSET);
	table_checksum(rsdp, 20, &rsdp[8]);
	table_checksum(rsdp, RSDP_SIZE, &rsdp[32]);
	*rsdp_gpa = LAYOUT_ACPI;
	return 0;
}
