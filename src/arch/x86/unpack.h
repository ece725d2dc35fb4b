/* Host-side decompression of a bzImage's payload: the vmlinux ELF inside (boot.rst, 2.08+). */
#ifndef SKIFF_X86_UNPACK_H
#define SKIFF_X86_UNPACK_H

#include "boot.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Decompresses img's payload (gzip, bzip2, xz, lzma, lzo, lz4 or zstd) into a malloc'd
 * buffer that the caller frees, and checks it holds an x86-64 ELF. Returns -ENOEXEC,
 * silently, when img has no payload skiff can read, so the caller can boot img as is;
 * otherwise logs one line and returns -EINVAL (corrupt payload, or not an x86-64 ELF),
 * -EFBIG (more than 1 GiB) or -ENOMEM.
 */
int bzimage_unpack(const struct boot_image *img, uint8_t **elf, size_t *elf_size);

/* bzimage_unpack with another bound on the output than 1 GiB, so tests can reach it. */
int bzimage_unpack_limit(const struct boot_image *img, size_t max_size, uint8_t **elf,
			 size_t *elf_size);

#endif
