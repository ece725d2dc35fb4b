/* libFuzzer target: the ELF loader (PVH note and vmlinux paths), then the boot structures. */
#include "fuzz_common.h"

#include "../../src/arch/x86/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem *mem = fuzz_guest();
	struct boot_image img = { "fuzz", data, size };
	struct boot_config cfg = { .kernel = img, .cmdline = "console=ttyS0",
				   .initrd = { "initrd", data, size } };
	struct kernel_info ki;
	struct boot_entry entry;

	if (elf_load(mem, &img, &ki) == 0)
		boot_load(mem, &cfg, &entry);
	return 0;
}
