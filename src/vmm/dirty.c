#include "dirty.h"

#include "../log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define WORDS(pages) (((pages) + 63) / 64)

/* ORs a slot's log (bit i: the slot's page i) into the RAM bitmap at page first. */
static void merge(uint64_t *bitmap, const uint64_t *log, uint64_t first, uint64_t pages)
{
	/* Slots start on 256 KiB boundaries (the hole is aligned): whole words line up. */
	if (first % 64 == 0) {
		for (uint64_t w = 0; w < WORDS(pages); w++)
			bitmap[first / 64 + w] |= log[w];
		return;
	}
	for (uint64_t i = 0; i < pages; i++)
		if (log[i / 64] >> (i % 64) & 1)
			bitmap[(first + i) / 64] |= 1ULL << ((first + i) % 64);
}

/* Used rings are written by skiff at every completion: count them as written. */
static void mark_used_rings(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_mmio *t = &vm->virtio[i];

		for (unsigned q = 0; q < t->ops->nr_queues; q++)
			if (t->queues[q].ready)
				guest_mem_mark_dirty(&vm->mem, t->queues[q].used,
						     6 + 8ULL * t->queues[q].size);
	}
}

int vm_track_dirty(struct vm *vm)
{
	struct guest_mem *mem = &vm->mem;

	if (mem->dirty)
		return 0;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = mem->regions[i].gpa,
			.memory_size = mem->regions[i].size,
			.userspace_addr = (uintptr_t)mem->regions[i].host,
			.flags = KVM_MEM_LOG_DIRTY_PAGES,
		};

		/* api.rst: a slot's flags may change while it is in use. */
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			log_error("starting dirty page logging: %s", strerror(errno));
			return -errno;
		}
	}
	/* Set last: skiff's own writes, on this thread, are marked from here on. */
	return guest_mem_track_dirty(mem);
}

int vm_collect_dirty(struct vm *vm, bool paused, uint64_t **bitmap)
{
	struct guest_mem *mem = &vm->mem;
	uint64_t pages = mem->size / GUEST_PAGE_SIZE, *log;

	if (!mem->dirty)
		return -EINVAL;
	*bitmap = calloc(WORDS(pages), sizeof(uint64_t));
	log = calloc(WORDS(pages), sizeof(uint64_t));
	if (!*bitmap || !log) {
		free(*bitmap);
		free(log);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		struct kvm_dirty_log get = { .slot = i, .dirty_bitmap = log };
		uint64_t first = (uint64_t)(r->host - mem->base) / GUEST_PAGE_SIZE;

		memset(log, 0, WORDS(r->size / GUEST_PAGE_SIZE) * sizeof(uint64_t));
		/* Returns the slot's log and starts a new one (no manual protect here). */
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &get) < 0) {
			int err = -errno;

			log_error("KVM_GET_DIRTY_LOG: %s", strerror(errno));
			free(*bitmap);
			free(log);
			return err;
		}
		merge(*bitmap, log, first, r->size / GUEST_PAGE_SIZE);
	}
	free(log);
	if (paused)
		mark_used_rings(vm);
	for (uint64_t w = 0; w < WORDS(pages); w++)
		(*bitmap)[w] |= __atomic_exchange_n(&mem->dirty[w], 0, __ATOMIC_RELAXED);
	return 0;
}

int vm_merge_dirty(struct vm *vm, const uint64_t *bitmap)
{
	uint64_t words = WORDS(vm->mem.size / GUEST_PAGE_SIZE);

	if (!vm->mem.dirty)
		return -EINVAL;
	for (uint64_t w = 0; w < words; w++)
		if (bitmap[w])
			__atomic_fetch_or(&vm->mem.dirty[w], bitmap[w], __ATOMIC_RELAXED);
	return 0;
}
