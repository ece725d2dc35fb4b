/*
 * Which pages of guest RAM changed since the last look, for diff snapshots (and, later,
 * migration's dirty passes): KVM's dirty log holds the vCPUs' writes, guest_mem's bitmap
 * skiff's own (virtio buffers and used rings).
 */
#ifndef SKIFF_DIRTY_H
#define SKIFF_DIRTY_H

#include "vm.h"

#include <stdint.h>

/* Starts tracking dirty pages on a running VM (on the event thread). 0 or -errno, logged. */
int vm_track_dirty(struct vm *vm);
/*
 * With the VM tracking dirty pages (vm_config.track_dirty_pages, or vm_track_dirty):
 * returns in *bitmap (calloc'd, one bit per 4 KiB page by RAM offset) the pages written
 * since the previous call or since tracking began, and starts a new interval. With the
 * vCPUs parked, on the event thread (paused), the used rings count as written too; a
 * running VM's are caught by the paused call that must end any series. 0 or -errno.
 */
int vm_collect_dirty(struct vm *vm, bool paused, uint64_t **bitmap);

/* Puts pages back (a bitmap vm_collect_dirty gave), for the next call to return again. */
int vm_merge_dirty(struct vm *vm, const uint64_t *bitmap);

#endif
