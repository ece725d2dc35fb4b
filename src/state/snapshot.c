#include "snapshot.h"

#include "../log.h"
#include "../util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define PAGE		4096
#define SAMPLE_PAGES	64
#define MAGIC		"SKIFFSNP"

static uint32_t crc(const void *buf, size_t len)
{
	uLong c = crc32(0, Z_NULL, 0);
	const uint8_t *p = buf;

	/* zlib takes lengths as uInt: feed it in chunks. */
	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

/* Creates path's temporary sibling; the caller renames it over path once complete. */
static int open_temp(const char *path, char **temp)
{
	int fd;

	if (asprintf(temp, "%s.tmp", path) < 0) {
		*temp = NULL;
		return -ENOMEM;
	}
	fd = open(*temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = -errno;

		log_error("%s: %s", *temp, strerror(errno));
		free(*temp);
		*temp = NULL;
		return err;
	}
	return fd;
}

/* Makes the file durable, then puts it at path. */
static int finish_temp(int fd, char *temp, const char *path, int ret)
{
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(temp, path) < 0)
		ret = -errno;
	if (ret) {
		log_error("%s: %s", path, strerror(-ret));
		unlink(temp);
	}
	free(temp);
	return ret;
}

int snapshot_write(const char *path, const struct snapshot_info *info, const void *state,
		   size_t state_len)
{
	uint8_t header[SNAPSHOT_HEADER_SIZE] = MAGIC;
	char *temp;
	int fd, ret;

	put_le32(header + 8, SNAPSHOT_FORMAT_VERSION);
	put_le32(header + 12, info->nr_vcpus);
	put_le64(header + 16, info->memory_size);
	put_le64(header + 24, state_len);
	put_le32(header + 32, crc(state, state_len));
	put_le32(header + 36, info->flags);
	put_le32(header + 40, info->memory_crc);
	strncpy((char *)header + 44, SKIFF_VERSION, 16);
	put_le32(header + 60, crc(header, 60));
	fd = open_temp(path, &temp);
	if (fd < 0)
		return fd;
	ret = write_all(fd, header, sizeof(header), 0) ?:
	      write_all(fd, state, state_len, sizeof(header));
	return finish_temp(fd, temp, path, ret);
}

int snapshot_parse(const char *name, const uint8_t *buf, size_t len,
		   struct snapshot_info *info, const uint8_t **state, size_t *state_len)
{
	char version[17] = "";
	uint64_t size;

	if (len < SNAPSHOT_HEADER_SIZE || memcmp(buf, MAGIC, 8)) {
		log_error("%s: not a skiff snapshot", name);
		return -EINVAL;
	}
	if (get_le32(buf + 60) != crc(buf, 60)) {
		log_error("%s: the snapshot's header is corrupted (CRC mismatch)", name);
		return -EINVAL;
	}
	memcpy(version, buf + 44, 16);
	if (get_le32(buf + 8) != SNAPSHOT_FORMAT_VERSION) {
		log_error("%s: snapshot format %u (from skiff %s); this skiff reads format %d",
			  name, get_le32(buf + 8), version, SNAPSHOT_FORMAT_VERSION);
		return -EINVAL;
	}
	size = get_le64(buf + 24);
	if (size > SNAPSHOT_MAX_STATE || size != len - SNAPSHOT_HEADER_SIZE) {
		log_error("%s: the snapshot is truncated or has trailing data (%zu state bytes, "
			  "the header says %llu)", name, len - SNAPSHOT_HEADER_SIZE,
			  (unsigned long long)size);
		return -EINVAL;
	}
	if (get_le32(buf + 32) != crc(buf + SNAPSHOT_HEADER_SIZE, size)) {
		log_error("%s: the snapshot's state is corrupted (CRC mismatch)", name);
		return -EINVAL;
	}
	*info = (struct snapshot_info){
		.nr_vcpus = get_le32(buf + 12),
		.memory_size = get_le64(buf + 16),
		.flags = get_le32(buf + 36),
		.memory_crc = get_le32(buf + 40),
	};
	*state = buf + SNAPSHOT_HEADER_SIZE;
	*state_len = size;
	return 0;
}

uint32_t snapshot_memory_crc(const uint8_t *ram, uint64_t size)
{
	uint64_t pages = size / PAGE, step = pages / SAMPLE_PAGES;
	uLong c = crc32(0, Z_NULL, 0);

	if (!pages)
		return (uint32_t)c;
	for (uint64_t i = 0; i < SAMPLE_PAGES - 1 && i * (step ?: 1) < pages; i++)
		c = crc32(c, ram + i * (step ?: 1) * PAGE, PAGE);
	c = crc32(c, ram + (pages - 1) * PAGE, PAGE);
	return (uint32_t)c;
}

static bool page_listed(const uint64_t *pages, uint64_t page)
{
	return !pages || pages[page / 64] >> (page % 64) & 1;
}

int snapshot_write_memory(const char *path, const uint8_t *ram, uint64_t size,
			  const uint64_t *pages, bool diff,
			  void (*progress)(void *, uint64_t, uint64_t), void *opaque)
{
	uint64_t count = size / PAGE, next_report = 0;
	char *temp;
	int fd, ret = 0;

	fd = open_temp(path, &temp);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		ret = -errno;
	/* Runs of pages to write go out as one pwrite each; the rest stay holes. */
	for (uint64_t i = 0; !ret && i < count;) {
		uint64_t end = i;

		while (end < count && page_listed(pages, end) &&
		       (diff || !bytes_all_zero(ram + end * PAGE, PAGE)))
			end++;
		if (end > i)
			ret = write_all(fd, ram + i * PAGE, (end - i) * PAGE, i * PAGE);
		i = end + 1;
		if (progress && (i >= next_report || i >= count)) {
			progress(opaque, (i < count ? i : count) * PAGE, size);
			next_report = i + 32768; /* every 128 MiB */
		}
	}
	return finish_temp(fd, temp, path, ret);
}

/* Copies [off, end) of in to the same place in out. */
static int copy_range(int in, int out, off_t off, off_t end)
{
	static uint8_t buf[1 << 20];

	while (off < end) {
		size_t n = end - off < (off_t)sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
		ssize_t got = pread(in, buf, n, off);
		int ret;

		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		ret = write_all(out, buf, got, off);
		if (ret)
			return ret;
		off += got;
	}
	return 0;
}

int snapshot_merge_memory(const char *base, const char *diff)
{
	int in = open(diff, O_RDONLY | O_CLOEXEC), out = -1, ret = 0;
	const char *bad = diff;
	struct stat din, dout;
	off_t off = 0, end;

	if (in < 0 || fstat(in, &din) < 0) {
		ret = -errno;
		goto out;
	}
	bad = base;
	out = open(base, O_WRONLY | O_CLOEXEC);
	if (out < 0 || fstat(out, &dout) < 0) {
		ret = -errno;
		goto out;
	}
	if (din.st_size != dout.st_size) {
		log_error("%s and %s: not the same size, so not a diff and its base", diff, base);
		ret = -EINVAL;
		goto out;
	}
	if (din.st_blksize > PAGE) {
		log_error("%s: on a filesystem with %ld-byte blocks its holes are not pages", diff,
			  (long)din.st_blksize);
		ret = -EINVAL;
		goto out;
	}
	/* The diff's data is exactly its pages: holes are what it leaves to the base. */
	while ((off = lseek(in, off, SEEK_DATA)) >= 0) {
		end = lseek(in, off, SEEK_HOLE);
		if (end < 0)
			break;
		ret = copy_range(in, out, off, end);
		if (ret)
			goto out;
		off = end;
	}
	if (errno != ENXIO)
		ret = -errno;
	else if (fsync(out) < 0)
		ret = -errno;
out:
	if (ret && ret != -EINVAL)
		log_error("%s: %s", bad, strerror(-ret));
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}
