/* Read-only views of input files (kernels, initrds). */
#ifndef SKIFF_FILE_H
#define SKIFF_FILE_H

#include <stddef.h>
#include <stdint.h>

struct mapped_file {
	const uint8_t *data; /* NULL when size is 0 */
	size_t size;
};

/* Maps path read-only. Logs "PATH: reason" and returns -errno on failure. */
int file_map(const char *path, struct mapped_file *f);
void file_unmap(struct mapped_file *f);

#endif
