/* libFuzzer target: the bzImage loader, then the boot structures. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_loader(data, size, bzimage_load);
}
