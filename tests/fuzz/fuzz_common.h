/* Shared by the loader fuzz targets: a small guest to load into, with logging silenced. */
#ifndef SKIFF_FUZZ_COMMON_H
#define SKIFF_FUZZ_COMMON_H

#include "../../src/arch/x86/layout.h"
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

#endif
