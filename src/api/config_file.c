#include "config_file.h"

#include "vm_json.h"

#include "../log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int config_file_parse(const char *buf, size_t len, const char *name, struct vm_config *vm,
		      void **keep)
{
	struct field_error err;
	json_error_t error;
	json_t *root;

	*keep = NULL;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &error);
	if (!root) {
		log_error("%s: line %d: %s", name, error.line, error.text);
		return -EINVAL;
	}
	if (vm_json_parse(root, true, vm, &err)) {
		log_error("%s: %s", name, err.msg);
		json_decref(root);
		return -EINVAL;
	}
	*keep = root;
	return 0;
}

int config_file_load(const char *path, struct vm_config *vm, void **keep)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");
	int ret;

	if (!f) {
		ret = -errno;
		log_error("%s: %s", path, strerror(errno));
		return ret;
	}
	/* A config is small; anything past 1 MiB is not one. */
	buf = malloc(1 << 20);
	if (buf)
		len = fread(buf, 1, 1 << 20, f);
	if (!buf || ferror(f) || !feof(f)) {
		log_error("%s: unreadable or larger than 1 MiB", path);
		ret = -EINVAL;
	} else {
		ret = config_file_parse(buf, len, path, vm, keep);
	}
	free(buf);
	fclose(f);
	return ret;
}

void config_file_free(void *keep)
{
	json_decref(keep);
}
