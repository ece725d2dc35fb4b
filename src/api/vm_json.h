/*
 * A VM in the JSON of Firecracker's API (shared/reference/firecracker-api.yaml): the
 * sections of FullVmConfiguration (GET /vm/config, --config-file) parsed into a vm_config
 * and exported back from one, so that what GET /vm/config gives boots the same VM.
 */
#ifndef SKIFF_VM_JSON_H
#define SKIFF_VM_JSON_H

#include "../vmm/vm.h"

#include "api.h"
#include "json_fields.h"

/*
 * Each parser checks every field (types, ranges, unknown fields, features skiff lacks) and
 * returns 0, or -EINVAL with err filled. Strings in vm point into obj, which must outlive vm.
 */
int vm_json_boot_source(json_t *obj, struct vm_config *vm, struct field_error *err);
/* A whole MachineConfiguration: vcpu_count and mem_size_mib are required. */
int vm_json_machine(json_t *obj, struct vm_config *vm, struct field_error *err);
/* Append one drive or network interface; name is what messages call it. */
int vm_json_drive(const char *name, json_t *obj, struct vm_config *vm,
		  struct field_error *err);
int vm_json_net(const char *name, json_t *obj, struct vm_config *vm,
		struct field_error *err);
int vm_json_entropy(json_t *obj, struct vm_config *vm, struct field_error *err);
/* FullVmConfiguration; sections that are absent leave vm as it was. */
int vm_json_parse(json_t *root, bool need_boot_source, struct vm_config *vm,
		  struct field_error *err);

/* FullVmConfiguration describing vm; NULL when out of memory. */
json_t *vm_json_export(const struct vm_config *vm);

/* Ids in API paths and bodies: 1-64 of [A-Za-z0-9_.-]. */
bool vm_json_valid_id(const char *id);

#endif
