/*
 * libFuzzer target: a snapshot file as skiff run --restore and PUT /snapshot/load read it:
 * header, CRCs and sizes, the configuration section, then the configuration's JSON.
 */
#include "../../src/api/vm_json.h"
#include "../../src/log.h"
#include "../../src/vmm/vm_snapshot.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_config cfg = { 0 };
	struct vm_snapshot snap;
	struct field_error err;
	uint8_t *buf = malloc(size ?: 1);
	json_t *doc;

	log_set_level(LOG_OFF);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (vm_snapshot_parse("fuzz", buf, size, &snap))
		return 0;
	doc = json_loads(snap.config, JSON_REJECT_DUPLICATES, NULL);
	if (doc)
		vm_json_parse(doc, false, &cfg, &err);
	json_decref(doc);
	vm_snapshot_close(&snap);
	return 0;
}
