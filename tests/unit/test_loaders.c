#include "test.h"

#include "../../src/arch/x86/boot.h"
#include "../../src/arch/x86/layout.h"
#include "../../src/util/bytes.h"

#include <stdbool.h>
#include <string.h>

#define MEM_SIZE (64ULL << 20)
#define SEG_OFF 256
#define SEG_SIZE 256
#define LOAD_ADDR 0x100000ULL

static uint8_t guest_buf[MEM_SIZE]; /* bss: untouched pages cost nothing */
static struct guest_mem mem;
static uint8_t image[8192];

static void fresh_mem(void)
{
	memset(guest_buf, 0, 4 << 20);
	guest_mem_wrap(&mem, guest_buf, MEM_SIZE, LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END);
}

/* An ELF64 x86-64 executable: one PT_LOAD at LOAD_ADDR and, if pvh, a Xen PVH note. */
static size_t make_elf(bool pvh, uint64_t entry)
{
	uint8_t *ph;

	memset(image, 0, sizeof(image));
	memcpy(image, "\x7f" "ELF\x02\x01\x01", 7);
	put_le16(image + 16, 2);
	put_le16(image + 18, 62);
	put_le32(image + 20, 1);
	put_le64(image + 24, entry);
	put_le64(image + 32, 64);
	put_le16(image + 52, 64);
	put_le16(image + 54, 56);
	put_le16(image + 56, 2);
	ph = image + 64;
	put_le32(ph, 1);
	put_le64(ph + 8, SEG_OFF);
	put_le64(ph + 24, LOAD_ADDR);
	put_le64(ph + 32, SEG_SIZE);
	put_le64(ph + 40, SEG_SIZE * 2);
	ph += 56;
	put_le32(ph, 4);
	put_le64(ph + 8, 176);
	put_le64(ph + 32, pvh ? 20 : 0);
	put_le32(image + 176, 4);
	put_le32(image + 180, 4);
	put_le32(image + 184, 18);
	memcpy(image + 188, "Xen", 4);
	put_le32(image + 192, LOAD_ADDR + 0x10);
	memset(image + SEG_OFF, 0xab, SEG_SIZE);
	return SEG_OFF + SEG_SIZE;
}

/* A bzImage: 1 setup sector beyond the boot sector, then a 4 KiB payload. */
static size_t make_bzimage(void)
{
	memset(image, 0, sizeof(image));
	image[0x1f1] = 1;
	put_le16(image + 0x1fe, 0xaa55);
	image[0x201] = 0x6a; /* header ends at 0x26c */
	put_le32(image + 0x202, 0x53726448);
	put_le16(image + 0x206, 0x20f);
	image[0x211] = 0x01;
	put_le32(image + 0x22c, 0x7fffffff);
	put_le32(image + 0x230, 0x200000);
	image[0x234] = 1;
	put_le16(image + 0x236, 0x1);
	put_le32(image + 0x238, 2047);
	put_le64(image + 0x258, 0x1000000);
	put_le32(image + 0x260, 0x10000);
	memset(image + 1024, 0xcd, 4096);
	return 1024 + 4096;
}

static int load(size_t size, const char *cmdline, const uint8_t *initrd, size_t initrd_size,
		struct boot_entry *entry)
{
	struct boot_config cfg = {
		.kernel = { "kernel", image, size },
		.cmdline = cmdline,
		.rsdp = LAYOUT_ACPI,
	};

	if (initrd)
		cfg.initrd = (struct boot_image){ "initrd", initrd, initrd_size };
	fresh_mem();
	return boot_load(&mem, &cfg, entry);
}

TEST(pvh_elf)
{
	struct boot_entry e;
	const uint8_t *info = guest_buf + LAYOUT_ZERO_PAGE;
	static const uint8_t rd[5000] = { 1, 2, 3 };

	CHECK(load(make_elf(true, LOAD_ADDR), "test=smp", rd, sizeof(rd), &e) == 0);
	CHECK(e.mode == BOOT_PVH && e.rip == LOAD_ADDR + 0x10 && e.params == LAYOUT_ZERO_PAGE);
	CHECK(guest_buf[LOAD_ADDR] == 0xab && guest_buf[LOAD_ADDR + SEG_SIZE] == 0); /* bss */
	CHECK(get_le32(info) == 0x336ec578 && get_le32(info + 4) == 1);
	CHECK(!strcmp((char *)guest_buf + get_le64(info + 24), "test=smp"));
	CHECK(get_le64(info + 32) == LAYOUT_ACPI);
	CHECK(get_le32(info + 48) == 3); /* memory map entries */
	CHECK(get_le32(info + 12) == 1); /* one module: the initrd */
	{
		const uint8_t *mod = guest_buf + get_le64(info + 16);
		uint64_t addr = get_le64(mod);

		CHECK(get_le64(mod + 8) == sizeof(rd) && addr % 4096 == 0);
		CHECK(addr + sizeof(rd) <= MEM_SIZE && addr >= LOAD_ADDR + 2 * SEG_SIZE);
		CHECK(!memcmp(guest_buf + addr, rd, sizeof(rd)));
	}
}

TEST(vmlinux_elf)
{
	struct boot_entry e;
	const uint8_t *bp = guest_buf + LAYOUT_ZERO_PAGE;

	CHECK(load(make_elf(false, LOAD_ADDR + 8), "console=ttyS0", NULL, 0, &e) == 0);
	CHECK(e.mode == BOOT_LINUX64 && e.rip == LOAD_ADDR + 8);
	CHECK(get_le16(bp + 0x1fe) == 0xaa55 && get_le32(bp + 0x202) == 0x53726448);
	CHECK(get_le32(bp + 0x228) == LAYOUT_CMDLINE);
	CHECK(!strcmp((char *)guest_buf + LAYOUT_CMDLINE, "console=ttyS0"));
	CHECK(bp[0x1e8] == 3 && get_le64(bp + 0x70) == LAYOUT_ACPI);
	/* identity map: PML4 -> PDPT -> 2 MiB pages */
	CHECK((get_le64(guest_buf + LAYOUT_PML4) & ~0xfffULL) == LAYOUT_PDPT);
	CHECK(get_le64(guest_buf + LAYOUT_PD + 8) == (0x200000 | 0x83));
}

TEST(elf_malformed)
{
	struct boot_entry e;
	size_t n;

	n = make_elf(true, LOAD_ADDR);
	CHECK(load(40, NULL, NULL, 0, &e) < 0); /* truncated header */
	image[4] = 1;
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* ELF32 */
	make_elf(true, LOAD_ADDR);
	put_le16(image + 18, 183); /* aarch64 */
	CHECK(load(n, NULL, NULL, 0, &e) < 0);
	make_elf(true, LOAD_ADDR);
	put_le16(image + 56, 1000);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* phdrs past the end */
	make_elf(true, LOAD_ADDR);
	put_le64(image + 64 + 8, 1 << 20);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* segment data past the end */
	make_elf(true, LOAD_ADDR);
	put_le64(image + 64 + 24, MEM_SIZE - 16);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* segment past the end of RAM */
	make_elf(true, LOAD_ADDR);
	put_le64(image + 64 + 24, 0x1000);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* segment over the boot structures */
	make_elf(true, LOAD_ADDR);
	put_le64(image + 64 + 32, SEG_SIZE * 4);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* filesz > memsz */
	make_elf(true, LOAD_ADDR);
	put_le32(image + 176, 0xfffffff0);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* note name runs past its segment */
	make_elf(true, LOAD_ADDR);
	put_le32(image + 180, 2);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* PVH note of 2 bytes */
	make_elf(true, 0);
	put_le32(image + 192, 0x5000000);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* entry outside the segments */
	make_elf(false, 0x1000);
	CHECK(load(n, NULL, NULL, 0, &e) < 0);
	memset(image, 0, 64);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* not a kernel at all */
	CHECK(load(0, NULL, NULL, 0, &e) < 0); /* empty */
}

TEST(bzimage)
{
	struct boot_entry e;
	const uint8_t *bp = guest_buf + LAYOUT_ZERO_PAGE;
	static const uint8_t rd[8192] = { 9 };
	uint64_t rd_addr;

	CHECK(load(make_bzimage(), "quiet", rd, sizeof(rd), &e) == 0);
	CHECK(e.mode == BOOT_LINUX64 && e.rip == 0x1000000 + 0x200);
	CHECK(guest_buf[0x1000000] == 0xcd && guest_buf[0x1000000 + 4095] == 0xcd);
	CHECK(get_le16(bp + 0x206) == 0x20f && bp[0x210] == 0xff);
	CHECK(get_le32(bp + 0x230) == 0x200000); /* header copied from the image */
	rd_addr = get_le32(bp + 0x218);
	CHECK(get_le32(bp + 0x21c) == sizeof(rd) && rd_addr >= 0x1000000 + 0x10000);
	CHECK(rd_addr + sizeof(rd) <= MEM_SIZE && guest_buf[rd_addr] == 9);
}

TEST(bzimage_malformed)
{
	struct boot_entry e;
	size_t n = make_bzimage();

	put_le16(image + 0x206, 0x205);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* protocol too old */
	make_bzimage();
	image[0x211] = 0;
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* zImage */
	make_bzimage();
	put_le16(image + 0x236, 0);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* no 64-bit entry */
	make_bzimage();
	image[0x1f1] = 200;
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* setup sectors past the end */
	make_bzimage();
	put_le32(image + 0x230, 0x300000);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* alignment not a power of two */
	make_bzimage();
	put_le32(image + 0x260, 0x8000000);
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* init_size beyond RAM */
	make_bzimage();
	image[0x201] = 0x10;
	CHECK(load(n, NULL, NULL, 0, &e) < 0); /* header too short for 2.06 */
	make_bzimage();
	CHECK(load(0x300, NULL, NULL, 0, &e) < 0); /* truncated */
	CHECK(load(0x206, NULL, NULL, 0, &e) < 0); /* ends inside the version field */
}

TEST(cmdline_and_initrd_limits)
{
	static char long_cmdline[3000];
	static uint8_t big_rd[1];
	struct boot_entry e;
	size_t n = make_bzimage();

	memset(long_cmdline, 'a', sizeof(long_cmdline) - 1);
	CHECK(load(n, long_cmdline, NULL, 0, &e) < 0); /* over cmdline_size 2047 */
	long_cmdline[2047] = 0;
	CHECK(load(n, long_cmdline, NULL, 0, &e) == 0);
	put_le32(image + 0x22c, 0x1000fff); /* initrd must end below the kernel */
	CHECK(load(n, NULL, big_rd, sizeof(big_rd), &e) < 0);
	make_bzimage();
	CHECK(load(n, NULL, big_rd, 0, &e) < 0); /* empty initrd */
}

static const char *composed(size_t size, const char *user)
{
	struct boot_config cfg = {
		.kernel = { "kernel", image, size },
		.cmdline = user,
		.linux_defaults = "console=ttyS0 reboot=k panic=1",
		.device_params = "virtio_mmio.device=4K@0xd0000000:5",
		.rsdp = LAYOUT_ACPI,
	};
	struct boot_entry e;

	fresh_mem();
	return boot_load(&mem, &cfg, &e) ? NULL : (const char *)guest_buf + LAYOUT_CMDLINE;
}

TEST(linux_defaults_and_device_params)
{
	const char *c;

	/* Linux (vmlinux, bzImage): defaults unless the user sets the key; devices via ACPI */
	c = composed(make_elf(false, LOAD_ADDR), "console=hvc0 quiet");
	CHECK(c && !strcmp(c, "reboot=k panic=1 console=hvc0 quiet"));
	c = composed(make_bzimage(), NULL);
	CHECK(c && !strcmp(c, "console=ttyS0 reboot=k panic=1"));
	c = composed(make_bzimage(), "xconsole=1 panic=5");
	CHECK(c && !strcmp(c, "console=ttyS0 reboot=k xconsole=1 panic=5"));
	/* other PVH kernels: no Linux defaults, devices on the command line */
	c = composed(make_elf(true, LOAD_ADDR), "test=rng");
	CHECK(c && !strcmp(c, "test=rng virtio_mmio.device=4K@0xd0000000:5"));
	c = composed(make_elf(true, LOAD_ADDR), "");
	CHECK(c && !strcmp(c, "virtio_mmio.device=4K@0xd0000000:5"));
}

TEST_MAIN(T(pvh_elf), T(vmlinux_elf), T(elf_malformed), T(bzimage), T(bzimage_malformed),
	  T(cmdline_and_initrd_limits), T(linux_defaults_and_device_params))
