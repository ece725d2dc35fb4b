/*
 * Which pages of guest RAM changed since the last look, for diff snapshots (and, later,
 * migration's dirty passes): KVM's dirty log holds the vCPUs' writes, guest_mem's bitmap
 * skiff's own (virtio buffers and used rings).
 */
#ifndef SKIFF_DIRTY_H
#define SKIFF_DIRTY_H

#include "vm.h"

#include <stdint.h>

/*
 * With the VM tracking dirty pages (vm_config.track_dirty_pages) and its vCPUs parked:
 * returns in *bitmap (calloc'd, one bit per 4 KiB page by RAM offset) the pages written
 * since the previous call or since tracking began, and starts a new interval. 0 or -errno.
 */
int vm_collect_dirty(struct vm *vm, uint64_t **bitmap);

#endif
