/* Kernel loaders: a PVH ELF, a Linux vmlinux ELF, or a Linux bzImage, plus initrd and cmdline. */
#ifndef SKIFF_X86_BOOT_H
#define SKIFF_X86_BOOT_H

#include "../../vmm/memory.h"

#include <stddef.h>
#include <stdint.h>

/* A file's contents, and its name for error messages. */
struct boot_image {
	const char *name;
	const uint8_t *data;
	size_t size;
};

struct boot_config {
	struct boot_image kernel;
	struct boot_image initrd; /* name NULL: none */
	const char *cmdline;	  /* the user's; NULL: empty */
	/* "key=value ..." put before a Linux kernel's command line, each unless the user's
	 * already sets key. */
	const char *linux_defaults;
	/* Appended for kernels that do not read devices from ACPI (all but Linux). */
	const char *device_params;
	uint64_t rsdp; /* guest address of the ACPI RSDP */
};

enum boot_mode {
	BOOT_PVH,     /* 32-bit protected mode, paging off, EBX = hvm_start_info */
	BOOT_LINUX64, /* 64-bit mode on identity page tables, RSI = boot_params */
};

/* Where and how the boot vCPU starts. */
struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t params; /* EBX or RSI */
};

/*
 * Loads cfg's kernel (and initrd and command line) into mem and writes the boot
 * structures the kernel's entry mode needs. Every field read from a file is checked;
 * on failure logs one line naming the file and the problem and returns -errno.
 */
int boot_load(struct guest_mem *mem, const struct boot_config *cfg, struct boot_entry *entry);

#endif
