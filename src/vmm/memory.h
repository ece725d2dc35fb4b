/* Guest RAM: one memfd, one shared mapping, split into regions around the MMIO hole. */
#ifndef SKIFF_MEMORY_H
#define SKIFF_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2
#define GUEST_PAGE_SIZE	      4096

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
	/*
	 * With dirty tracking: RAM pages (one bit per 4 KiB, by offset from base) that skiff
	 * itself wrote for the guest, which KVM's dirty log does not see. NULL otherwise.
	 */
	uint64_t *dirty;
	bool file_backed; /* restored: fd is the snapshot's memory file, mapped privately */
};

/* Splits size bytes of RAM around [hole_start, hole_end); returns the number of regions. */
unsigned guest_mem_layout(uint64_t size, uint64_t hole_start, uint64_t hole_end,
			  struct guest_region *regions);
/* Creates RAM backed by a memfd, lazily faulted but for 2M pages. Returns 0 or -errno. */
int guest_mem_create(struct guest_mem *mem, uint64_t size, uint64_t hole_start,
		     uint64_t hole_end, enum huge_pages pages);
/*
 * Restore: RAM is the memory file at path (exactly size bytes, else -ENODATA or -EFBIG),
 * mapped copy-on-write, so pages load as the guest touches them. Returns 0 or -errno.
 */
int guest_mem_map_file(struct guest_mem *mem, const char *path, uint64_t size,
		       uint64_t hole_start, uint64_t hole_end);
/* Lays RAM out over a caller's buffer (tests and fuzzers): no memfd. */
void guest_mem_wrap(struct guest_mem *mem, void *buf, uint64_t size, uint64_t hole_start,
		    uint64_t hole_end);
void guest_mem_destroy(struct guest_mem *mem);
/* Starts recording skiff's own writes (guest_mem_mark_dirty). Returns 0 or -ENOMEM. */
int guest_mem_track_dirty(struct guest_mem *mem);
/* skiff is about to write [gpa, gpa + len), which lies in RAM; any thread. */
void guest_mem_mark_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/*
 * Sets in bitmap (one bit per page by RAM offset, zeroed by the caller) every page that may
 * hold data, without touching the others: a page never written reads as zero, and reading
 * it would make the kernel allocate it. Returns 0 or -errno.
 */
int guest_mem_populated(const struct guest_mem *mem, uint64_t *bitmap);
/* The RAM offset of gpa, which lies in RAM. */
uint64_t guest_mem_offset(const struct guest_mem *mem, uint64_t gpa);

/* Host pointer to [gpa, gpa + len) if it lies wholly inside one RAM region, else NULL. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Zeroes host bytes of guest RAM, unless RAM is known to be zero already. */
void guest_mem_clear(const struct guest_mem *mem, void *host, size_t len);
/* End of the RAM region that starts at 0: the top of 32-bit addressable RAM. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
