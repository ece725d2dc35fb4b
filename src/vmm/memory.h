/* Guest RAM: one memfd, one shared mapping, split into regions around the MMIO hole. */
#ifndef SKIFF_MEMORY_H
#define SKIFF_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

/* Backing of guest RAM: small pages, hugetlbfs 2 MiB pages, or transparent huge pages. */
enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_2M, HUGE_PAGES_TRANSPARENT };

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_mem {
	int fd;		/* memfd, -1 for a wrapped buffer */
	uint8_t *base;	/* host mapping of all of RAM, regions in order */
	uint64_t size;
	unsigned nr_regions;
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
	/*
	 * RAM came zero-filled and untouched, so loaders need not clear what they lay out:
	 * clearing would only fault in pages the guest may never use.
	 */
	bool zero_filled;
};

/* Splits size bytes of RAM around [hole_start, hole_end); returns the number of regions. */
unsigned guest_mem_layout(uint64_t size, uint64_t hole_start, uint64_t hole_end,
			  struct guest_region *regions);
/* Creates RAM backed by a memfd, lazily faulted but for 2M pages. Returns 0 or -errno. */
int guest_mem_create(struct guest_mem *mem, uint64_t size, uint64_t hole_start,
		     uint64_t hole_end, enum huge_pages pages);
/* Lays RAM out over a caller's buffer (tests and fuzzers): no memfd. */
void guest_mem_wrap(struct guest_mem *mem, void *buf, uint64_t size, uint64_t hole_start,
		    uint64_t hole_end);
void guest_mem_destroy(struct guest_mem *mem);

/* Host pointer to [gpa, gpa + len) if it lies wholly inside one RAM region, else NULL. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Zeroes host bytes of guest RAM, unless RAM is known to be zero already. */
void guest_mem_clear(const struct guest_mem *mem, void *host, size_t len);
/* End of the RAM region that starts at 0: the top of 32-bit addressable RAM. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
