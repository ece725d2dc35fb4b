/* libFuzzer target: the --config-file JSON parser. */
#include "../../src/api/config_file.h"
#include "../../src/log.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_config vm;
	void *keep;

	log_set_level(LOG_OFF);
	memset(&vm, 0, sizeof(vm));
	if (config_file_parse((const char *)data, size, "fuzz", &vm, &keep) == 0)
		config_file_free(keep);
	return 0;
}
