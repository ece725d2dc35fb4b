/*
 * skiff run --config-file FILE: a VM described in the JSON shape of Firecracker's
 * GET /vm/config (FullVmConfiguration in shared/reference/firecracker-api.yaml), so one
 * file boots a VM with no API calls.
 */
#ifndef SKIFF_CONFIG_FILE_H
#define SKIFF_CONFIG_FILE_H

#include "../vmm/vm.h"

#include <stddef.h>

/*
 * Fills vm from the JSON in buf (named name in messages). Every field is checked: wrong
 * types, out-of-range values, unknown fields and features skiff does not have yet each
 * give one error line naming the field, and -EINVAL. On success *keep holds the strings
 * vm points to; release it with config_file_free() once vm is no longer used.
 */
int config_file_parse(const char *buf, size_t len, const char *name, struct vm_config *vm,
		      void **keep);
/* The same, from a file. */
int config_file_load(const char *path, struct vm_config *vm, void **keep);
void config_file_free(void *keep);

#endif
