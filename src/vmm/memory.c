#include "memory.h"

#include <errno.h>
#include <linux/memfd.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

unsigned guest_mem_layout(uint64_t size, uint64_t hole_start, uint64_t hole_end,
			  struct guest_region *regions)
{
	regions[0] = (struct guest_region){ .gpa = 0, .size = size };
	if (size <= hole_start)
		return 1;
	regions[0].size = hole_start;
	regions[1] = (struct guest_region){ .gpa = hole_end, .size = size - hole_start };
	return 2;
}

static void assign_host(struct guest_mem *mem)
{
	uint8_t *host = mem->base;

	for (unsigned i = 0; i < mem->nr_regions; i++) {
		mem->regions[i].host = host;
		host += mem->regions[i].size;
	}
}

int guest_mem_create(struct guest_mem *mem, uint64_t size, uint64_t hole_start,
		     uint64_t hole_end, enum huge_pages pages)
{
	bool hugetlb = pages == HUGE_PAGES_2M;
	int err;

	memset(mem, 0, sizeof(*mem));
	mem->fd = memfd_create("skiff-guest-ram",
			       MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
	if (mem->fd < 0)
		return -errno;
	if (ftruncate(mem->fd, size) < 0)
		goto fail;
	/*
	 * NORESERVE: pages are faulted in only when the guest touches them. Not for hugetlbfs,
	 * where a page missing at fault time is a SIGBUS: there mmap reserves them, or fails.
	 */
	mem->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | (hugetlb ? 0 : MAP_NORESERVE), mem->fd, 0);
	if (mem->base == MAP_FAILED)
		goto fail;
	if (pages == HUGE_PAGES_TRANSPARENT)
		madvise(mem->base, size, MADV_HUGEPAGE); /* advice: the host may not have THP */
	mem->size = size;
	mem->nr_regions = guest_mem_layout(size, hole_start, hole_end, mem->regions);
	mem->zero_filled = true; /* a new memfd reads as zeroes */
	assign_host(mem);
	return 0;
fail:
	err = -errno;
	close(mem->fd);
	mem->fd = -1;
	return err;
}

void guest_mem_wrap(struct guest_mem *mem, void *buf, uint64_t size, uint64_t hole_start,
		    uint64_t hole_end)
{
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	mem->base = buf;
	mem->size = size;
	mem->nr_regions = guest_mem_layout(size, hole_start, hole_end, mem->regions);
	assign_host(mem);
}

void guest_mem_destroy(struct guest_mem *mem)
{
	if (mem->fd >= 0) {
		munmap(mem->base, mem->size);
		close(mem->fd);
	}
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];

		/* Written so that no sum can overflow whatever gpa and len are. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void guest_mem_clear(const struct guest_mem *mem, void *host, size_t len)
{
	if (!mem->zero_filled)
		memset(host, 0, len);
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->regions[0].size;
}
