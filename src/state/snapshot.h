/*
 * The snapshot file: a fixed header, then the VM's state sections (state.h), with a CRC32
 * over each. Guest RAM is a separate file, a plain image of it (see snapshot_write_memory).
 *
 * Header, little-endian, 64 bytes:
 *	0  magic "SKIFFSNP"	8  format version (u32)	12 vCPU count (u32)
 *	16 RAM bytes (u64)	24 state bytes (u64)	32 state CRC32 (u32)
 *	36 flags (u32): 1 = the memory file is a diff
 *	40 sample CRC32 of the memory file (u32): see snapshot_memory_crc()
 *	44 skiff's version, NUL-padded (16 bytes)	60 header CRC32 over bytes 0-59 (u32)
 */
#ifndef SKIFF_SNAPSHOT_H
#define SKIFF_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_FORMAT_VERSION 1
#define SNAPSHOT_HEADER_SIZE	64
#define SNAPSHOT_MAX_STATE	((uint64_t)64 << 20) /* far above any VM's: a sanity bound */
#define SNAPSHOT_FLAG_DIFF	1u

struct snapshot_info {
	uint32_t nr_vcpus;
	uint64_t memory_size;
	uint32_t flags;
	uint32_t memory_crc;
};

/* Writes header and state to path (replacing it atomically). 0, or -errno after a log line. */
int snapshot_write(const char *path, const struct snapshot_info *info, const void *state,
		   size_t state_len);
/*
 * Checks a snapshot file image (magic, version, CRCs, sizes) and points *state into buf.
 * name is what messages call it. Returns 0, or -EINVAL after one log line naming the
 * problem.
 */
int snapshot_parse(const char *name, const uint8_t *buf, size_t len,
		   struct snapshot_info *info, const uint8_t **state, size_t *state_len);

/*
 * A CRC32 over a sample of guest RAM (its first and last page and 62 evenly spaced ones),
 * so that a wrong, truncated or damaged memory file is caught at load without reading it
 * all, which would make restore time grow with the guest.
 */
uint32_t snapshot_memory_crc(const uint8_t *ram, uint64_t size);

/*
 * Writes ram to path as a sparse file of size bytes, looking only at the pages in pages (a
 * bitmap, one bit per 4 KiB page; the others read as zero; NULL: every page). A full image writes those that
 * are not all zero; a diff writes all of them, zero or not, to lay over the previous
 * memory file. progress(opaque, done, total) is called now and then. 0, or -errno after a
 * log line.
 */
int snapshot_write_memory(const char *path, const uint8_t *ram, uint64_t size,
			  const uint64_t *pages, bool diff,
			  void (*progress)(void *, uint64_t, uint64_t), void *opaque);

/*
 * Lays a diff memory file over its base (the memory file of the snapshot before it), in
 * place: every page the diff holds replaces the base's, so base then goes with the diff's
 * snapshot. Needs a filesystem whose holes are page-sized or finer. 0 or -errno, logged.
 */
int snapshot_merge_memory(const char *base, const char *diff);

#endif
