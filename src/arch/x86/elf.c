/*
 * ELF64 kernels: with a Xen PVH note they enter at its 32-bit address
 * (xen/include/public/elfnote.h, XEN_ELFNOTE_PHYS32_ENTRY); without one they are Linux
 * vmlinux images entered at e_entry through the 64-bit boot protocol.
 */
#include "layout.h"
#include "loader.h"

#include "../../log.h"
#include "../../util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define EHDR_SIZE		64
#define PHDR_SIZE		56
#define ELFCLASS32		1
#define ELFCLASS64		2
#define ELFDATA2LSB		1
#define ET_EXEC			2
#define EM_X86_64		62
#define PT_LOAD			1
#define PT_NOTE			4
#define XEN_ELFNOTE_GUEST_OS	6
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MAX_PHDRS		64

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~3ULL;
}

/* What the Xen notes say: the PVH entry, and whether the guest is Linux. */
struct xen_notes {
	bool pvh;
	uint64_t entry;
	bool is_linux;
};

static int read_xen_note(const struct boot_image *img, uint32_t type, const uint8_t *desc,
			 uint32_t descsz, struct xen_notes *notes)
{
	if (type == XEN_ELFNOTE_GUEST_OS) {
		notes->is_linux = descsz >= 5 && !memcmp(desc, "linux", 5);
	} else if (type == XEN_ELFNOTE_PHYS32_ENTRY) {
		if (descsz != 4 && descsz != 8) {
			log_error("%s: PVH entry note has %" PRIu32 " bytes, not 4 or 8", img->name,
				  descsz);
			return -EINVAL;
		}
		notes->entry = descsz == 4 ? get_le32(desc) : get_le64(desc);
		notes->pvh = true;
	}
	return 0;
}

/* Reads the Xen notes in one PT_NOTE segment's bytes. */
static int scan_notes(const struct boot_image *img, const uint8_t *p, uint64_t len,
		      struct xen_notes *notes)
{
	while (len >= 12) {
		uint32_t namesz = get_le32(p), descsz = get_le32(p + 4), type = get_le32(p + 8);
		uint64_t name_len = align4(namesz), desc_len = align4(descsz);
		int ret;

		if (name_len > len - 12 || desc_len > len - 12 - name_len) {
			log_error("%s: ELF note runs past its segment", img->name);
			return -EINVAL;
		}
		if (namesz == 4 && !memcmp(p + 12, "Xen", 4)) {
			ret = read_xen_note(img, type, p + 12 + name_len, descsz, notes);
			if (ret)
				return ret;
		}
		p += 12 + name_len + desc_len;
		len -= 12 + name_len + desc_len;
	}
	return 0;
}

static int check_header(const struct boot_image *img)
{
	const uint8_t *e = img->data;

	if (img->size < 4 || memcmp(e, "\x7f" "ELF", 4))
		return -ENOEXEC;
	if (img->size < EHDR_SIZE) {
		log_error("%s: truncated ELF header (%zu bytes)", img->name, img->size);
		return -EINVAL;
	}
	if (e[4] == ELFCLASS32) {
		log_error("%s: 32-bit ELF; skiff boots x86-64 ELF kernels", img->name);
		return -EINVAL;
	}
	if (e[4] != ELFCLASS64 || e[5] != ELFDATA2LSB) {
		log_error("%s: not a little-endian ELF64 file", img->name);
		return -EINVAL;
	}
	if (get_le16(e + 18) != EM_X86_64) {
		log_error("%s: ELF for another architecture (e_machine %u), not x86-64", img->name,
			  get_le16(e + 18));
		return -EINVAL;
	}
	if (get_le16(e + 16) != ET_EXEC) {
		log_error("%s: ELF type %u is not an executable", img->name, get_le16(e + 16));
		return -EINVAL;
	}
	return 0;
}

static int load_segment(struct guest_mem *mem, const struct boot_image *img, const uint8_t *ph,
			uint64_t *end)
{
	uint64_t offset = get_le64(ph + 8), paddr = get_le64(ph + 24);
	uint64_t filesz = get_le64(ph + 32), memsz = get_le64(ph + 40);
	uint8_t *dst;

	if (filesz > memsz || offset > img->size || filesz > img->size - offset) {
		log_error("%s: segment at file offset 0x%" PRIx64 " (%" PRIu64
			  " bytes) runs past the end of the file", img->name, offset, filesz);
		return -EINVAL;
	}
	dst = guest_mem_ptr(mem, paddr, memsz);
	if (paddr < LAYOUT_HIGH_MEM || !dst) {
		log_error("%s: segment at 0x%" PRIx64 " (%" PRIu64
			  " bytes) is outside guest RAM above 1 MiB", img->name, paddr, memsz);
		return -EINVAL;
	}
	memcpy(dst, img->data + offset, filesz);
	guest_mem_clear(mem, dst + filesz, memsz - filesz); /* bss */
	if (paddr + memsz > *end)
		*end = paddr + memsz;
	return 0;
}

static bool entry_in_segments(const uint8_t *phdrs, unsigned phnum, uint64_t entry)
{
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = phdrs + i * PHDR_SIZE;
		uint64_t paddr = get_le64(ph + 24), memsz = get_le64(ph + 40);

		if (get_le32(ph) == PT_LOAD && entry >= paddr && entry - paddr < memsz)
			return true;
	}
	return false;
}

int elf_load(struct guest_mem *mem, const struct boot_image *img, struct kernel_info *ki)
{
	const uint8_t *e = img->data, *phdrs;
	struct xen_notes notes = { 0 };
	uint64_t phoff, entry, end = 0;
	unsigned phnum, loads = 0;
	int ret = check_header(img);

	if (ret)
		return ret;
	phoff = get_le64(e + 32);
	phnum = get_le16(e + 56);
	if (get_le16(e + 54) != PHDR_SIZE || phnum == 0 || phnum > MAX_PHDRS ||
	    phoff > img->size || (uint64_t)phnum * PHDR_SIZE > img->size - phoff) {
		log_error("%s: bad ELF program header table (offset 0x%" PRIx64 ", %u entries)",
			  img->name, phoff, phnum);
		return -EINVAL;
	}
	phdrs = e + phoff;
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = phdrs + i * PHDR_SIZE;
		uint64_t offset = get_le64(ph + 8), filesz = get_le64(ph + 32);

		if (get_le32(ph) != PT_NOTE)
			continue;
		if (offset > img->size || filesz > img->size - offset) {
			log_error("%s: ELF note segment runs past the end of the file", img->name);
			return -EINVAL;
		}
		ret = scan_notes(img, e + offset, filesz, &notes);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = phdrs + i * PHDR_SIZE;

		if (get_le32(ph) != PT_LOAD)
			continue;
		ret = load_segment(mem, img, ph, &end);
		if (ret)
			return ret;
		loads++;
	}
	if (!loads) {
		log_error("%s: ELF has no loadable segments", img->name);
		return -EINVAL;
	}
	entry = notes.pvh ? notes.entry : get_le64(e + 24);
	if (!entry_in_segments(phdrs, phnum, entry)) {
		log_error("%s: entry point 0x%" PRIx64 " is outside the loaded segments", img->name,
			  entry);
		return -EINVAL;
	}
	*ki = (struct kernel_info){
		.format = notes.pvh ? KERNEL_PVH : KERNEL_VMLINUX,
		.is_linux = !notes.pvh || notes.is_linux, /* no PVH note: a vmlinux */
		.entry = entry,
		.end = end,
		.initrd_addr_max = UINT64_MAX,
		.cmdline_max = LAYOUT_CMDLINE_MAX - 1,
	};
	return 0;
}
