#include "memory.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* A step after open failed: its errno, with the fd closed. */
static int close_on_error(struct guest_mem *mem)
{
	int err = -errno;

	close(mem->fd);
	mem->fd = -1;
	return err;
}

/* The mapping of size bytes is made: the regions around the hole over it. */
static void lay_out(struct guest_mem *mem, uint64_t size, uint64_t hole_start, uint64_t hole_end)
{
	mem->size = size;
	mem->nr_regions = guest_mem_layout(size, hole_start, hole_end, mem->regions);
	assign_host(mem);
}

int guest_mem_create(struct guest_mem *mem, uint64_t size, uint64_t hole_start,
		     uint64_t hole_end, enum huge_pages pages)
{
	bool hugetlb = pages == HUGE_PAGES_2M;

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
	mem->zero_filled = true; /* a new memfd reads as zeroes */
	lay_out(mem, size, hole_start, hole_end);
	return 0;
fail:
	return close_on_error(mem);
}

int guest_mem_map_file(struct guest_mem *mem, const char *path, uint64_t size,
		       uint64_t hole_start, uint64_t hole_end)
{
	struct stat st;

	memset(mem, 0, sizeof(*mem));
	mem->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mem->fd < 0)
		return -errno;
	if (fstat(mem->fd, &st) < 0)
		goto fail;
	if ((uint64_t)st.st_size != size) {
		errno = st.st_size < (off_t)size ? ENODATA : EFBIG;
		goto fail;
	}
	/* Private: the guest's writes stay in this process; the file is never written. */
	mem->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
			 mem->fd, 0);
	if (mem->base == MAP_FAILED)
		goto fail;
	mem->file_backed = true;
	lay_out(mem, size, hole_start, hole_end);
	return 0;
fail:
	return close_on_error(mem);
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

int guest_mem_track_dirty(struct guest_mem *mem)
{
	mem->dirty = calloc((mem->size / GUEST_PAGE_SIZE + 63) / 64, sizeof(uint64_t));
	return mem->dirty ? 0 : -ENOMEM;
}

static void set_pages(uint64_t *bitmap, uint64_t first, uint64_t end)
{
	for (uint64_t page = first; page < end; page++)
		bitmap[page / 64] |= 1ULL << (page % 64);
}

/* The file's data extents: a memfd's allocated pages, or a memory file's non-holes. */
static int add_data_extents(const struct guest_mem *mem, uint64_t *bitmap)
{
	off_t off = 0, end;

	while ((off = lseek(mem->fd, off, SEEK_DATA)) >= 0 && (uint64_t)off < mem->size) {
		end = lseek(mem->fd, off, SEEK_HOLE);
		if (end < 0)
			return -errno;
		if ((uint64_t)end > mem->size)
			end = mem->size;
		set_pages(bitmap, off / GUEST_PAGE_SIZE,
			  (end + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE);
		off = end;
	}
	return off < 0 && errno != ENXIO ? -errno : 0;
}

int guest_mem_populated(const struct guest_mem *mem, uint64_t *bitmap)
{
	uint64_t pages = mem->size / GUEST_PAGE_SIZE;
	unsigned char *resident;
	int ret = add_data_extents(mem, bitmap);

	if (ret || !mem->file_backed)
		return ret;
	/* Restored RAM: pages the guest wrote are private copies the file knows nothing of. */
	resident = malloc(pages ?: 1);
	if (!resident)
		return -ENOMEM;
	if (mincore(mem->base, mem->size, resident) < 0)
		ret = -errno;
	for (uint64_t page = 0; !ret && page < pages; page++)
		if (resident[page] & 1)
			set_pages(bitmap, page, page + 1);
	free(resident);
	return ret;
}

uint64_t guest_mem_offset(const struct guest_mem *mem, uint64_t gpa)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return (uint64_t)(r->host - mem->base) + (gpa - r->gpa);
	}
	return 0;
}

void guest_mem_mark_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	uint64_t first, last;

	if (!mem->dirty || !len)
		return;
	first = guest_mem_offset(mem, gpa) / GUEST_PAGE_SIZE;
	last = (guest_mem_offset(mem, gpa) + len - 1) / GUEST_PAGE_SIZE;
	for (uint64_t page = first; page <= last; page++)
		__atomic_fetch_or(&mem->dirty[page / 64], 1ULL << (page % 64), __ATOMIC_RELAXED);
}

void guest_mem_destroy(struct guest_mem *mem)
{
	free(mem->dirty);
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
