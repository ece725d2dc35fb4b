/* Shared by the loader fuzz targets: a small guest to load into, with logging silenced. */
#ifndef SKIFF_FUZZ_COMMON_H
#define SKIFF_FUZZ_COMMON_H

#include "../../src/arch/x86/layout.h"
#include "../../src/arch/x86/loader.h"
#include "../../src/log.h"
#include "../../src/vmm/memory.h"

#define FUZZ_MEM_SIZE (64ULL << 20)

static struct guest_mem *fuzz_guest(void)
{
	static uint8_t ram[FUZZ_MEM_SIZE];
	static struct guest_mem mem;

	log_set_level(LOG_OFF);
	guest_mem_wrap(&mem, ram, sizeof(ram), LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END);
	return &mem;
}

/* Runs one loader on the input, then, if it took it, the whole boot path with an initrd. */
static int fuzz_loader(const uint8_t *data, size_t size,
		       int (*load)(struct guest_mem *, const struct boot_image *,
				   struct kernel_info *))
{
	struct guest_mem *mem = fuzz_guest();
	struct boot_image img = { "fuzz", data, size };
	struct boot_config cfg = { .kernel = img, .cmdline = "console=ttyS0",
				   .initrd = { "initrd", data, size } };
	struct kernel_info ki;
	struct boot_entry entry;

	if (load(mem, &img, &ki) == 0)
		boot_load(mem, &cfg, &entry);
	return 0;
}

#endif
