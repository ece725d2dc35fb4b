/* Linux bzImage: Documentation/arch/x86/boot.rst, entered at its 64-bit entry point. */
#include "layout.h"
#include "loader.h"

#include "../../log.h"
#include "../../util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define HDR_START		0x1f1
#define OFF_SETUP_SECTS		0x1f1
#define OFF_BOOT_FLAG		0x1fe
#define OFF_JUMP		0x200
#define OFF_HEADER		0x202
#define OFF_VERSION		0x206
#define OFF_LOADFLAGS		0x211
#define OFF_INITRD_ADDR_MAX	0x22c
#define OFF_KERNEL_ALIGNMENT	0x230
#define OFF_RELOCATABLE		0x234
#define OFF_XLOADFLAGS		0x236
#define OFF_CMDLINE_SIZE	0x238
#define OFF_PREF_ADDRESS	0x258
#define OFF_INIT_SIZE		0x260
#define HDR_MIN_END		0x23c /* through cmdline_size, protocol 2.06 */

#define BOOT_FLAG		0xaa55
#define HDRS_MAGIC		0x53726448 /* "HdrS" */
#define LOADED_HIGH		0x01
#define XLF_KERNEL_64		0x01
#define ENTRY_64_OFFSET		0x200
#define DEFAULT_LOAD_ADDR	0x1000000ULL /* LOAD_PHYSICAL_ADDR of a default kernel */

static int check_header(const struct boot_image *img, size_t *hdr_end)
{
	const uint8_t *d = img->data;
	uint16_t version;

	if (img->size < OFF_HEADER + 4 || get_le16(d + OFF_BOOT_FLAG) != BOOT_FLAG ||
	    get_le32(d + OFF_HEADER) != HDRS_MAGIC)
		return -ENOEXEC;
	if (img->size < OFF_VERSION + 2) {
		log_error("%s: truncated bzImage header (%zu bytes)", img->name, img->size);
		return -EINVAL;
	}
	*hdr_end = OFF_HEADER + d[OFF_JUMP + 1];
	version = get_le16(d + OFF_VERSION);
	if (version < 0x206) {
		log_error("%s: boot protocol %u.%02u is too old (skiff needs 2.06 or later)",
			  img->name, version >> 8, version & 0xff);
		return -EINVAL;
	}
	if (*hdr_end < HDR_MIN_END || *hdr_end > img->size || *hdr_end > 0x1000) {
		log_error("%s: setup header length %zu is inconsistent", img->name, *hdr_end);
		return -EINVAL;
	}
	if (!(d[OFF_LOADFLAGS] & LOADED_HIGH)) {
		log_error("%s: not a bzImage (a zImage loads below 1 MiB)", img->name);
		return -EINVAL;
	}
	if (version < 0x20c || !(get_le16(d + OFF_XLOADFLAGS) & XLF_KERNEL_64)) {
		log_error("%s: not a 64-bit kernel (no XLF_KERNEL_64 entry point)", img->name);
		return -EINVAL;
	}
	return 0;
}

/* Chooses the load address: the preferred one, aligned as the kernel asks if it relocates. */
static int place_kernel(const struct boot_image *img, uint64_t pref, uint32_t align,
			bool relocatable, uint64_t *addr)
{
	if (pref < LAYOUT_HIGH_MEM)
		pref = DEFAULT_LOAD_ADDR;
	if (!relocatable) {
		*addr = pref;
		return 0;
	}
	if (align == 0 || (align & (align - 1))) {
		log_error("%s: kernel_alignment 0x%" PRIx32 " is not a power of two", img->name,
			  align);
		return -EINVAL;
	}
	*addr = (pref + align - 1) & ~(uint64_t)(align - 1);
	return 0;
}

int bzimage_load(struct guest_mem *mem, const struct boot_image *img, struct kernel_info *ki)
{
	const uint8_t *d = img->data;
	size_t hdr_end, setup_size, kernel_size;
	uint64_t addr, need, init_size;
	uint8_t *dst;
	int ret = check_header(img, &hdr_end);

	if (ret)
		return ret;
	setup_size = ((size_t)(d[OFF_SETUP_SECTS] ? d[OFF_SETUP_SECTS] : 4) + 1) * 512;
	if (setup_size >= img->size) {
		log_error("%s: truncated: %zu bytes of setup code but only %zu bytes in the file",
			  img->name, setup_size, img->size);
		return -EINVAL;
	}
	kernel_size = img->size - setup_size;
	init_size = get_le16(d + OFF_VERSION) >= 0x20a && hdr_end >= OFF_INIT_SIZE + 4
			    ? get_le32(d + OFF_INIT_SIZE)
			    : 0;
	ret = place_kernel(img,
			   hdr_end >= OFF_PREF_ADDRESS + 8 ? get_le64(d + OFF_PREF_ADDRESS) : 0,
			   get_le32(d + OFF_KERNEL_ALIGNMENT), d[OFF_RELOCATABLE], &addr);
	if (ret)
		return ret;
	need = init_size > kernel_size ? init_size : kernel_size;
	dst = guest_mem_ptr(mem, addr, need);
	if (!dst) {
		log_error("%s: kernel needs %" PRIu64 " bytes at 0x%" PRIx64
			  ", more than guest RAM has there", img->name, need, addr);
		return -EINVAL;
	}
	memcpy(dst, d + setup_size, kernel_size);
	*ki = (struct kernel_info){
		.format = KERNEL_BZIMAGE,
		.is_linux = true,
		.entry = addr + ENTRY_64_OFFSET,
		.end = addr + need,
		.initrd_addr_max = get_le32(d + OFF_INITRD_ADDR_MAX),
		.cmdline_max = get_le32(d + OFF_CMDLINE_SIZE),
		.setup_header = d + HDR_START,
		.setup_header_len = hdr_end - HDR_START,
	};
	return 0;
}
