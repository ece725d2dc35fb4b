/* libFuzzer target: a whole bzImage file through payload decompression, then the ELF loader. */
#include "fuzz_common.h"

#include "../../src/arch/x86/unpack.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_image img = { "fuzz", data, size };
	uint8_t *elf;
	size_t elf_size;

	log_set_level(LOG_OFF);
	if (bzimage_unpack(&img, &elf, &elf_size))
		return 0;
	fuzz_loader(elf, elf_size, elf_load);
	free(elf);
	return 0;
}
