/*
 * Writes what a kernel finds at entry: command line, initrd, the PVH hvm_start_info
 * (xen/include/public/arch-x86/hvm/start_info.h) or Linux boot_params
 * (Documentation/arch/x86/zero-page.rst), and the GDT and page tables of its entry mode.
 */
#include "boot.h"

#include "layout.h"
#include "loader.h"
#include "tables.h"

#include "../../log.h"
#include "../../util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define PVH_MAGIC		0x336ec578
#define PVH_INFO_SIZE		56
#define PVH_MODULE_SIZE		32
#define PVH_MEMMAP_ENTRY_SIZE	24

/* boot_params offsets (zero-page.rst) and setup header fields skiff writes. */
#define BP_ACPI_RSDP		0x070
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_HDR			0x1f1
#define BP_BOOT_FLAG		0x1fe
#define BP_HEADER		0x202
#define BP_VERSION		0x206
#define BP_TYPE_OF_LOADER	0x210
#define BP_LOADFLAGS		0x211
#define BP_RAMDISK_IMAGE	0x218
#define BP_RAMDISK_SIZE		0x21c
#define BP_CMD_LINE_PTR		0x228
#define BP_KERNEL_ALIGNMENT	0x230
#define BP_CMDLINE_SIZE		0x238
#define BP_E820_TABLE		0x2d0
#define BP_SIZE			0x1000
#define LOADER_UNDEFINED	0xff
#define LOADED_HIGH		0x01

#define PTE_PRESENT		0x1ULL
#define PTE_WRITE		0x2ULL
#define PTE_HUGE		0x80ULL

/* GDT entries at selectors 0x10 (code) and 0x18 (data), as both entry protocols expect. */
#define GDT_CODE32		0x00cf9b000000ffffULL
#define GDT_CODE64		0x00af9b000000ffffULL
#define GDT_DATA		0x00cf93000000ffffULL

static int load_initrd(struct guest_mem *mem, const struct boot_config *cfg,
		       const struct kernel_info *ki, uint64_t *addr)
{
	const struct boot_image *rd = &cfg->initrd;
	uint64_t top = guest_mem_low_end(mem);
	uint8_t *dst;

	if (ki->initrd_addr_max < top - 1)
		top = ki->initrd_addr_max + 1;
	/* Highest page-aligned spot below top that stays clear of the kernel. */
	if (rd->size > top || ((top - rd->size) & ~0xfffULL) < ki->end) {
		log_error("%s: initrd of %zu bytes does not fit between the kernel's end "
			  "(0x%" PRIx64 ") and 0x%" PRIx64 "; give the guest more memory",
			  rd->name, rd->size, ki->end, top);
		return -EINVAL;
	}
	*addr = (top - rd->size) & ~0xfffULL;
	log_debug("initrd at 0x%" PRIx64 ", %zu bytes", *addr, rd->size);
	dst = guest_mem_ptr(mem, *addr, rd->size);
	if (!dst)
		return -EINVAL;
	memcpy(dst, rd->data, rd->size);
	return 0;
}

/* Whether cmdline has a parameter starting with key (which ends in '='). */
static bool has_param(const char *cmdline, const char *key, size_t key_len)
{
	for (const char *p = cmdline; *p; p++)
		if ((p == cmdline || p[-1] == ' ') && !strncmp(p, key, key_len))
			return true;
	return false;
}

/* Appends s[0..n) to buf, space-separated; lengths past size are counted, not written. */
static size_t add_words(char *buf, size_t len, size_t size, const char *s, size_t n)
{
	if (n == 0)
		return len;
	if (len) {
		if (len < size)
			buf[len] = ' ';
		len++;
	}
	if (len < size)
		memcpy(buf + len, s, n < size - len ? n : size - len);
	return len + n;
}

/* The kernel's command line: Linux defaults, the user's, the device parameters. */
static size_t compose_cmdline(const struct boot_config *cfg, const struct kernel_info *ki,
			      char *buf, size_t size)
{
	const char *user = cfg->cmdline ? cfg->cmdline : "";
	const char *d = ki->is_linux ? cfg->linux_defaults : NULL;
	size_t len = 0;

	while (d && *d) {
		size_t word = strcspn(d, " "), key = strcspn(d, "=") + 1;

		if (key <= word && !has_param(user, d, key))
			len = add_words(buf, len, size, d, word);
		d += word + (d[word] == ' ');
	}
	len = add_words(buf, len, size, user, strlen(user));
	if (!ki->is_linux && cfg->device_params)
		len = add_words(buf, len, size, cfg->device_params, strlen(cfg->device_params));
	return len;
}

static int write_cmdline(struct guest_mem *mem, const struct boot_config *cfg,
			 const struct kernel_info *ki)
{
	static char cmdline[LAYOUT_CMDLINE_MAX];
	size_t len = compose_cmdline(cfg, ki, cmdline, sizeof(cmdline));
	uint64_t max = ki->cmdline_max < LAYOUT_CMDLINE_MAX - 1 ? ki->cmdline_max
								 : LAYOUT_CMDLINE_MAX - 1;

	if (len > max) {
		log_error("--cmdline: %zu bytes with skiff's additions, more than %s accepts "
			  "(%" PRIu64 ")", len, cfg->kernel.name, max);
		return -EINVAL;
	}
	cmdline[len] = '\0';
	memcpy(guest_mem_ptr(mem, LAYOUT_CMDLINE, len + 1), cmdline, len + 1);
	log_debug("kernel command line: %s", cmdline);
	return 0;
}

static void write_gdt(struct guest_mem *mem, uint64_t code)
{
	uint8_t *gdt = guest_mem_ptr(mem, LAYOUT_GDT, 4 * 8);

	memset(gdt, 0, 4 * 8);
	put_le64(gdt + 2 * 8, code);
	put_le64(gdt + 3 * 8, GDT_DATA);
}

/* Identity-maps the first 4 GiB with 2 MiB pages: kernel, zero page, cmdline and initrd. */
static void write_page_tables(struct guest_mem *mem)
{
	uint8_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 0x1000);
	uint8_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 0x1000);
	uint8_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4 * 0x1000);

	memset(pml4, 0, 0x1000);
	memset(pdpt, 0, 0x1000);
	put_le64(pml4, LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE);
	for (uint64_t i = 0; i < 4; i++)
		put_le64(pdpt + i * 8, (LAYOUT_PD + i * 0x1000) | PTE_PRESENT | PTE_WRITE);
	for (uint64_t i = 0; i < 4 * 512; i++)
		put_le64(pd + i * 8, (i << 21) | PTE_PRESENT | PTE_WRITE | PTE_HUGE);
}

static void write_pvh_info(struct guest_mem *mem, const struct boot_config *cfg,
			   uint64_t initrd_addr)
{
	uint8_t *info = guest_mem_ptr(mem, LAYOUT_ZERO_PAGE, PVH_INFO_SIZE);
	uint8_t *map = guest_mem_ptr(mem, LAYOUT_PVH_MEMMAP, E820_MAX * PVH_MEMMAP_ENTRY_SIZE);
	struct e820_entry e820[E820_MAX];
	unsigned n = e820_build(mem, e820);

	memset(info, 0, PVH_INFO_SIZE);
	put_le32(info, PVH_MAGIC);
	put_le32(info + 4, 1); /* version 1: has the memory map */
	put_le64(info + 24, LAYOUT_CMDLINE);
	put_le64(info + 32, cfg->rsdp);
	put_le64(info + 40, LAYOUT_PVH_MEMMAP);
	put_le32(info + 48, n);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *m = map + i * PVH_MEMMAP_ENTRY_SIZE;

		put_le64(m, e820[i].addr);
		put_le64(m + 8, e820[i].size);
		put_le32(m + 16, e820[i].type);
		put_le32(m + 20, 0);
	}
	if (cfg->initrd.name) {
		uint8_t *mod = guest_mem_ptr(mem, LAYOUT_PVH_MODLIST, PVH_MODULE_SIZE);

		memset(mod, 0, PVH_MODULE_SIZE);
		put_le64(mod, initrd_addr);
		put_le64(mod + 8, cfg->initrd.size);
		put_le32(info + 12, 1);
		put_le64(info + 16, LAYOUT_PVH_MODLIST);
	}
}

static void write_boot_params(struct guest_mem *mem, const struct boot_config *cfg,
			      const struct kernel_info *ki, uint64_t initrd_addr)
{
	uint8_t *bp = guest_mem_ptr(mem, LAYOUT_ZERO_PAGE, BP_SIZE);
	struct e820_entry e820[E820_MAX];
	unsigned n = e820_build(mem, e820);

	memset(bp, 0, BP_SIZE);
	if (ki->setup_header) {
		memcpy(bp + BP_HDR, ki->setup_header, ki->setup_header_len);
	} else {
		/* A vmlinux has no setup header: describe skiff as a 2.15 boot loader. */
		put_le16(bp + BP_BOOT_FLAG, 0xaa55);
		put_le32(bp + BP_HEADER, 0x53726448);
		put_le16(bp + BP_VERSION, 0x020f);
		put_le32(bp + BP_KERNEL_ALIGNMENT, 0x1000000);
		put_le32(bp + BP_CMDLINE_SIZE, ki->cmdline_max);
	}
	bp[BP_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	bp[BP_LOADFLAGS] |= LOADED_HIGH;
	put_le32(bp + BP_CMD_LINE_PTR, LAYOUT_CMDLINE);
	put_le32(bp + BP_EXT_CMD_LINE_PTR, 0);
	if (cfg->initrd.name) {
		put_le32(bp + BP_RAMDISK_IMAGE, (uint32_t)initrd_addr);
		put_le32(bp + BP_RAMDISK_SIZE, (uint32_t)cfg->initrd.size);
		put_le32(bp + BP_EXT_RAMDISK_IMAGE, initrd_addr >> 32);
		put_le32(bp + BP_EXT_RAMDISK_SIZE, (uint64_t)cfg->initrd.size >> 32);
	}
	put_le64(bp + BP_ACPI_RSDP, cfg->rsdp);
	bp[BP_E820_ENTRIES] = n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *m = bp + BP_E820_TABLE + i * 20;

		put_le64(m, e820[i].addr);
		put_le64(m + 8, e820[i].size);
		put_le32(m + 16, e820[i].type);
	}
}

static void log_e820(const struct guest_mem *mem)
{
	struct e820_entry e820[E820_MAX];
	unsigned n = e820_build(mem, e820);

	for (unsigned i = 0; i < n && log_get_level() >= LOG_DEBUG; i++)
		log_debug("e820: [mem 0x%016" PRIx64 "-0x%016" PRIx64 "] %s", e820[i].addr,
			  e820[i].addr + e820[i].size - 1,
			  e820[i].type == E820_RAM ? "usable" : "reserved");
}

int boot_load(struct guest_mem *mem, const struct boot_config *cfg, struct boot_entry *entry)
{
	struct kernel_info ki;
	uint64_t initrd_addr = 0;
	int ret;

	if (cfg->kernel.size == 0) {
		log_error("%s: file is empty", cfg->kernel.name);
		return -EINVAL;
	}
	if (guest_mem_low_end(mem) <= LAYOUT_HIGH_MEM)
		return -EINVAL;
	ret = elf_load(mem, &cfg->kernel, &ki);
	if (ret == -ENOEXEC)
		ret = bzimage_load(mem, &cfg->kernel, &ki);
	if (ret == -ENOEXEC)
		log_error("%s: not a kernel skiff can boot (neither an ELF nor a bzImage)",
			  cfg->kernel.name);
	if (ret)
		return ret;
	if (cfg->initrd.name) {
		if (cfg->initrd.size == 0) {
			log_error("%s: file is empty", cfg->initrd.name);
			return -EINVAL;
		}
		ret = load_initrd(mem, cfg, &ki, &initrd_addr);
		if (ret)
			return ret;
	}
	ret = write_cmdline(mem, cfg, &ki);
	if (ret)
		return ret;

	log_e820(mem);
	entry->rip = ki.entry;
	entry->params = LAYOUT_ZERO_PAGE;
	if (ki.format == KERNEL_PVH) {
		entry->mode = BOOT_PVH;
		write_gdt(mem, GDT_CODE32);
		write_pvh_info(mem, cfg, initrd_addr);
	} else {
		entry->mode = BOOT_LINUX64;
		write_gdt(mem, GDT_CODE64);
		write_page_tables(mem);
		write_boot_params(mem, cfg, &ki, initrd_addr);
	}
	return 0;
}
