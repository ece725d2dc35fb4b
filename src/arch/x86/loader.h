/* Shared between the loaders in this directory; not for the rest of skiff. */
#ifndef SKIFF_X86_LOADER_H
#define SKIFF_X86_LOADER_H

#include "boot.h"

#include <stdbool.h>

enum kernel_format { KERNEL_PVH, KERNEL_VMLINUX, KERNEL_BZIMAGE };

struct kernel_info {
	enum kernel_format format;
	bool is_linux; /* reads its devices from ACPI and takes skiff's Linux defaults */
	uint64_t entry;
	uint64_t end;		  /* first guest address above everything the kernel uses */
	uint64_t initrd_addr_max; /* highest address the initrd may end at (inclusive) */
	uint64_t cmdline_max;	  /* longest command line, not counting the NUL */
	const uint8_t *setup_header; /* bzImage: header bytes for boot_params at 0x1f1 */
	size_t setup_header_len;
};

/* Each returns -ENOEXEC, silently, when the image is not of its format at all. */
int elf_load(struct guest_mem *mem, const struct boot_image *img, struct kernel_info *ki);
int bzimage_load(struct guest_mem *mem, const struct boot_image *img, struct kernel_info *ki);

#endif
