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

int vm_collect_dirty(struct vm *vm, uint64_t **bitmap)
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
	mark_used_rings(vm);
	for (uint64_t w = 0; w < WORDS(pages); w++)
		(*bitmap)[w] |= __atomic_exchange_n(&mem->dirty[w], 0, __ATOMIC_RELAXED);
	return 0;
}
