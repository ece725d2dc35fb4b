#include "test.h"
#include "fake_driver.h"

#include "../../src/util/bytes.h"
#include "../../src/virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM_SIZE	(1 << 20)
#define DESC		0x1000
#define AVAIL		0x2000
#define USED		0x3000
#define HEADERS		0x4000 /* one 16-byte header per request slot */
#define STATUSES	0x5000 /* one status byte per request slot */
#define DATA		0x10000
#define QSIZE		16
#define F_NEXT		1
#define F_WRITE		2

#define SECTORS		64 /* of the test image */
#define T_IN		0
#define T_OUT		1
#define T_FLUSH		4
#define T_GET_ID	8
#define T_DISCARD	11
#define T_WRITE_ZEROES	13
#define S_OK		0
#define S_IOERR		1
#define S_UNSUPP	2
#define NO_STATUS	0xff /* what the status byte holds until the device writes it */

static uint8_t ram[RAM_SIZE];
static struct guest_mem mem;
static struct virtio_mmio t;
static struct event_loop loop;
static struct virtio_blk *blk;
static char image[64];
static bool uring_mode; /* this run of a test asks for io_uring */
static bool uring_works; /* and the kernel lets us have it */
static unsigned next_desc, next_slot;

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static void wr(uint64_t off, uint32_t v)
{
	fake_write(&t, off, v);
}

static uint32_t rd(uint64_t off)
{
	return fake_read(&t, off);
}

static uint64_t device_features(void)
{
	uint64_t lo;

	wr(0x014, 0);
	lo = rd(0x010);
	wr(0x014, 1);
	return lo | (uint64_t)rd(0x010) << 32;
}

static uint8_t pattern(uint64_t offset)
{
	return (uint8_t)(offset * 7 + offset / 512 + 3);
}

/* Fills fd with SECTORS sectors of pattern(), plus extra bytes. */
static void fill(int fd, unsigned extra)
{
	static uint8_t buf[SECTORS * 512 + 511];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pattern(i);
	CHECK(write(fd, buf, SECTORS * 512 + extra) == SECTORS * 512 + extra);
}

/* A temporary image file; its path goes in image. */
static void make_image(unsigned extra)
{
	int fd;

	strcpy(image, "/tmp/skiff-test-blk-XXXXXX");
	fd = mkstemp(image);
	CHECK(fd >= 0);
	fill(fd, extra);
	close(fd);
}

static bool image_matches(uint64_t offset, const void *expected, size_t len)
{
	uint8_t buf[64 << 10];
	int fd = open(image, O_RDONLY);
	bool same = fd >= 0 && len <= sizeof(buf) && pread(fd, buf, len, offset) == (ssize_t)len &&
		    memcmp(buf, expected, len) == 0;

	close(fd);
	return same;
}

static bool image_is_pattern(uint64_t offset, size_t len)
{
	uint8_t buf[64 << 10];

	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(offset + i);
	return image_matches(offset, buf, len);
}

static off_t image_size(void)
{
	struct stat st;

	return stat(image, &st) ? -1 : st.st_size;
}

/* Brings queue 0 up the way §3.1.1 says, accepting the offered features in mask. */
static void driver_start_with(uint64_t mask)
{
	uint64_t features = device_features() & mask;

	memset(ram + DESC, 0, USED + 0x1000 - DESC);
	next_desc = next_slot = 0;
	CHECK(rd(0x034) == 256);
	fake_negotiate(&t, features);
	fake_setup_queue(&t, 0, QSIZE, DESC, AVAIL, USED);
	wr(0x070, 0xf);
	CHECK(rd(0x070) == 0xf);
}

/* Every feature but EVENT_IDX, so that every batch interrupts. */
static void driver_start(void)
{
	driver_start_with(~VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX));
}

static struct virtio_blk *open_disk(const char *path, bool readonly, const char *id)
{
	struct blk_config cfg = { .path = path, .readonly = readonly };

	strcpy(cfg.id, id);
	return virtio_blk_create(&cfg, &loop);
}

/* Opens image as the device behind t, with a driver set up. */
static void start(bool readonly, const char *id)
{
	memset(ram, 0, sizeof(ram));
	guest_mem_wrap(&mem, ram, RAM_SIZE, 0xc0000000, 0x100000000);
	CHECK(event_loop_init(&loop) == 0);
	blk = open_disk(image, readonly, id);
	CHECK(blk != NULL);
	if (!blk)
		return;
	CHECK(virtio_mmio_init(&t, virtio_blk_device_ops(blk), blk, &mem, 0xd0000000, 5, -1,
			       NULL) == 0);
	CHECK(rd(0x008) == VIRTIO_ID_BLOCK);
	driver_start();
}

static void stop(void)
{
	if (blk) {
		virtio_mmio_destroy(&t, NULL);
		virtio_blk_free(blk);
		blk = NULL;
	}
	event_loop_destroy(&loop);
	if (!strncmp(image, "/tmp/", 5))
		unlink(image);
}

static uint16_t used_idx(void)
{
	return get_le16(ram + USED + 2);
}

static uint32_t last_used_len(void)
{
	return get_le32(ram + USED + 4 + 8 * ((used_idx() - 1) % QSIZE) + 4);
}

/* What the event thread does: runs handlers until the driver has n used entries, or 2 s. */
static void run_events_until(uint16_t n, int max_waits)
{
	for (int i = 0; i < max_waits && used_idx() != n; i++) {
		struct epoll_event ev;

		if (epoll_wait(loop.epoll_fd, &ev, 1, 20) == 1) {
			struct event_source *src = ev.data.ptr;

			src->fn(src->opaque);
		}
	}
}

/* Puts a chain of segments in the descriptor table and makes it available; returns its head. */
static uint16_t post(const struct seg *segs, unsigned n)
{
	uint16_t head = next_desc % QSIZE, idx = get_le16(ram + AVAIL + 2);

	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = ram + DESC + 16 * (next_desc % QSIZE);

		next_desc++;
		put_le64(d, segs[i].gpa);
		put_le32(d + 8, segs[i].len);
		put_le16(d + 12, (segs[i].write ? F_WRITE : 0) | (i + 1 < n ? F_NEXT : 0));
		put_le16(d + 14, next_desc % QSIZE);
	}
	put_le16(ram + AVAIL + 4 + 2 * (idx % QSIZE), head);
	put_le16(ram + AVAIL + 2, idx + 1);
	return head;
}

/* Posts header, data segments and status byte; returns where the status byte is. */
static uint8_t *post_request(uint32_t type, uint64_t sector, const struct seg *data, unsigned n)
{
	unsigned slot = next_slot++ % QSIZE;
	struct seg segs[8] = { { HEADERS + 16 * slot, 16, false } };

	put_le32(ram + HEADERS + 16 * slot, type);
	put_le32(ram + HEADERS + 16 * slot + 4, 0);
	put_le64(ram + HEADERS + 16 * slot + 8, sector);
	if (n)
		memcpy(segs + 1, data, n * sizeof(*data));
	segs[n + 1] = (struct seg){ STATUSES + slot, 1, true };
	ram[STATUSES + slot] = NO_STATUS;
	post(segs, n + 2);
	return ram + STATUSES + slot;
}

/* One request, start to finish; returns its status byte. */
static int request(uint32_t type, uint64_t sector, const struct seg *data, unsigned n)
{
	uint16_t expect = used_idx() + 1;
	uint8_t *status = post_request(type, sector, data, n);

	virtio_mmio_process(&t, 0);
	run_events_until(expect, 100);
	CHECK(used_idx() == expect);
	return *status;
}

static int one(uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len, bool write)
{
	struct seg s = { gpa, len, write };

	return request(type, sector, &s, 1);
}

static void put_segment(uint64_t gpa, uint64_t sector, uint32_t count, uint32_t flags)
{
	put_le64(ram + gpa, sector);
	put_le32(ram + gpa + 8, count);
	put_le32(ram + gpa + 12, flags);
}

/* Runs body once with the synchronous back-end and once asking for io_uring. */
static void both(void (*body)(void))
{
	for (int mode = 0; mode < 2; mode++) {
		int failed = test_failed_checks;

		uring_mode = mode;
		if (uring_mode)
			unsetenv("SKIFF_BLK_SYNC");
		else
			setenv("SKIFF_BLK_SYNC", "1", 1);
		body();
		if (test_failed_checks != failed)
			printf("  (with the %s back-end)\n", uring_mode ? "io_uring" : "sync");
	}
	unsetenv("SKIFF_BLK_SYNC");
}

/* Log lines written while capturing. */
static int saved_stderr = -1, log_fd = -1;
static char log_text[4096];

static void capture_log(void)
{
	fflush(stderr);
	saved_stderr = dup(2);
	log_fd = memfd_create("log", 0);
	dup2(log_fd, 2);
	log_set_level(LOG_WARN);
}

static const char *captured_log(void)
{
	ssize_t n;

	fflush(stderr);
	log_set_level(LOG_OFF);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	n = pread(log_fd, log_text, sizeof(log_text) - 1, 0);
	log_text[n > 0 ? n : 0] = '\0';
	close(log_fd);
	return log_text;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void read_write_body(void)
{
	uint8_t expected[3 * 512];

	make_image(0);
	start(false, "");
	/* Write 2 sectors at sector 5 from two segments that split mid-sector. */
	for (int i = 0; i < 1024; i++)
		ram[DATA + i] = (uint8_t)(i ^ 0x5a);
	struct seg out[2] = { { DATA, 700, false }, { DATA + 700, 324, false } };
	CHECK(request(T_OUT, 5, out, 2) == S_OK);
	CHECK(last_used_len() == 1);
	CHECK(image_matches(5 * 512, ram + DATA, 1024));
	CHECK(image_is_pattern(0, 5 * 512) && image_is_pattern(7 * 512, 512));

	/* Read sectors 4..6 back into three segments. */
	struct seg in[3] = { { DATA + 0x4000, 100, true }, { DATA + 0x5000, 1000, true },
			     { DATA + 0x6000, 436, true } };
	CHECK(request(T_IN, 4, in, 3) == S_OK);
	CHECK(last_used_len() == 1537);
	for (int i = 0; i < 512; i++)
		expected[i] = pattern(4 * 512 + i);
	memcpy(expected + 512, ram + DATA, 1024);
	CHECK(memcmp(ram + DATA + 0x4000, expected, 100) == 0);
	CHECK(memcmp(ram + DATA + 0x5000, expected + 100, 1000) == 0);
	CHECK(memcmp(ram + DATA + 0x6000, expected + 1100, 436) == 0);

	/* Header and data in one descriptor, status in the next: framing is free (§2.7.4). */
	uint64_t h = DATA + 0x8000;
	put_le32(ram + h, T_OUT);
	put_le64(ram + h + 8, SECTORS - 1);
	memset(ram + h + 16, 0xc3, 512);
	ram[STATUSES] = NO_STATUS;
	struct seg joined[2] = { { h, 16 + 512, false }, { STATUSES, 1, true } };
	post(joined, 2);
	virtio_mmio_process(&t, 0);
	run_events_until(3, 100);
	CHECK(used_idx() == 3 && ram[STATUSES] == S_OK);
	CHECK(image_matches((SECTORS - 1) * 512, ram + h + 16, 512));

	/* Data and status in one writable descriptor. */
	memset(ram + DATA, 0xff, 513);
	put_le32(ram + h, T_IN);
	put_le64(ram + h + 8, 2);
	joined[0] = (struct seg){ h, 16, false };
	joined[1] = (struct seg){ DATA, 513, true };
	post(joined, 2);
	virtio_mmio_process(&t, 0);
	run_events_until(4, 100);
	CHECK(used_idx() == 4 && last_used_len() == 513);
	CHECK(ram[DATA + 511] == pattern(2 * 512 + 511) && ram[DATA + 512] == S_OK);

	CHECK(request(T_FLUSH, 0, NULL, 0) == S_OK);
	CHECK(image_size() == SECTORS * 512);
	stop();
}

TEST(read_write_flush_round_trip)
{
	both(read_write_body);
}

static void get_id_body(void)
{
	static const char *const ids[] = { "", "disk0", "abcdefghijklmnopqrst" };

	for (size_t i = 0; i < 3; i++) {
		char expected[20] = { 0 };

		make_image(0);
		start(false, ids[i]);
		memcpy(expected, ids[i], strlen(ids[i]));
		memset(ram + DATA, 0xee, 64);
		CHECK(one(T_GET_ID, 0, DATA, 20, true) == S_OK);
		CHECK(memcmp(ram + DATA, expected, 20) == 0 && ram[DATA + 20] == 0xee);
		CHECK(last_used_len() == 21);
		/* A shorter buffer gets what fits. */
		memset(ram + DATA, 0xee, 64);
		CHECK(one(T_GET_ID, 0, DATA, 4, true) == S_OK);
		CHECK(memcmp(ram + DATA, expected, 4) == 0 && ram[DATA + 4] == 0xee);
		stop();
	}
}

TEST(get_id)
{
	both(get_id_body);
}

static void discard_body(void)
{
	static const uint8_t zeroes[8 * 512];
	uint8_t *status;

	make_image(0);
	start(false, "");
	put_segment(DATA, 8, 8, 0);
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_OK);
	CHECK(image_size() == SECTORS * 512);
	/* Punching holes in ext4, tmpfs and the like reads back as zeroes. */
	CHECK(image_matches(8 * 512, zeroes, sizeof(zeroes)));
	CHECK(image_is_pattern(0, 8 * 512) && image_is_pattern(16 * 512, 512));

	put_segment(DATA, 0, 1, 1); /* unmap: not for discard (§5.2.6.2) */
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_UNSUPP);
	put_segment(DATA, 0, 1, 4); /* an unknown flag */
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_UNSUPP);
	put_segment(DATA, SECTORS - 1, 2, 0);
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_IOERR);
	put_segment(DATA, UINT64_MAX, 2, 0);
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_IOERR);
	put_segment(DATA, SECTORS, 0, 0); /* nothing, at the end: fine */
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_OK);
	put_segment(DATA, 0, (1U << 22) + 1, 0); /* more than max_discard_sectors */
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_IOERR);
	put_segment(DATA, 0, 1, 0);
	put_segment(DATA + 16, 2, 1, 0);
	CHECK(one(T_DISCARD, 0, DATA, 32, false) == S_UNSUPP); /* max_discard_seg is 1 */
	CHECK(one(T_DISCARD, 0, DATA, 8, false) == S_IOERR);	/* half a segment */
	CHECK(request(T_DISCARD, 0, NULL, 0) == S_IOERR);	/* none */
	CHECK(image_is_pattern(0, 8 * 512));
	stop();

	/* Not negotiated: unsupported. */
	make_image(0);
	start(false, "");
	driver_start_with(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	put_segment(DATA, 0, 1, 0);
	status = post_request(T_DISCARD, 0, &(struct seg){ DATA, 16, false }, 1);
	virtio_mmio_process(&t, 0);
	run_events_until(1, 100);
	CHECK(*status == S_UNSUPP);
	status = post_request(T_WRITE_ZEROES, 0, &(struct seg){ DATA, 16, false }, 1);
	virtio_mmio_process(&t, 0);
	run_events_until(2, 100);
	CHECK(*status == S_UNSUPP);
	CHECK(image_is_pattern(0, 512));
	stop();
}

TEST(discard)
{
	both(discard_body);
}

/* Write zeroes on image (whatever the file system), with and without unmap. */
static void write_zeroes_checks(void)
{
	static const uint8_t zeroes[16 * 512];

	put_segment(DATA, 2, 3, 0);
	CHECK(one(T_WRITE_ZEROES, 0, DATA, 16, false) == S_OK);
	CHECK(image_matches(2 * 512, zeroes, 3 * 512));
	CHECK(image_is_pattern(0, 2 * 512) && image_is_pattern(5 * 512, 512));
	put_segment(DATA, 20, 16, 1);
	CHECK(one(T_WRITE_ZEROES, 0, DATA, 16, false) == S_OK);
	CHECK(image_matches(20 * 512, zeroes, 16 * 512));
	CHECK(image_is_pattern(19 * 512, 512) && image_is_pattern(36 * 512, 512));
	/* Again, now that the back-end knows what the file can do. */
	put_segment(DATA, 40, 1, 0);
	CHECK(one(T_WRITE_ZEROES, 0, DATA, 16, false) == S_OK);
	CHECK(image_matches(40 * 512, zeroes, 512));
	put_segment(DATA, 0, 1, 2);
	CHECK(one(T_WRITE_ZEROES, 0, DATA, 16, false) == S_UNSUPP);
	put_segment(DATA, 0, 65537, 0); /* more than max_write_zeroes_sectors */
	CHECK(one(T_WRITE_ZEROES, 0, DATA, 16, false) == S_IOERR);
	put_segment(DATA, SECTORS, 1, 0);
	CHECK(one(T_WRITE_ZEROES, 0, DATA, 16, false) == S_IOERR);
	CHECK(image_size() == SECTORS * 512);
}

static void write_zeroes_body(void)
{
	int memfd;

	make_image(0);
	start(false, "");
	write_zeroes_checks();
	stop();

	/* tmpfs punches holes but has no FALLOC_FL_ZERO_RANGE: zeroes get written instead. */
	memfd = memfd_create("image", 0);
	CHECK(memfd >= 0);
	fill(memfd, 0);
	snprintf(image, sizeof(image), "/proc/self/fd/%d", memfd);
	start(false, "");
	write_zeroes_checks();
	stop();
	close(memfd);
}

TEST(write_zeroes)
{
	both(write_zeroes_body);
}

static void readonly_body(void)
{
	make_image(0);
	start(true, "");
	CHECK(device_features() & VIRTIO_BIT(5)); /* VIRTIO_BLK_F_RO */
	memset(ram + DATA, 0x11, 512);
	CHECK(one(T_OUT, 0, DATA, 512, false) == S_IOERR);
	put_segment(DATA, 0, 1, 0);
	CHECK(one(T_DISCARD, 0, DATA, 16, false) == S_IOERR);
	CHECK(one(T_WRITE_ZEROES, 0, DATA, 16, false) == S_IOERR);
	CHECK(one(T_IN, 1, DATA + 0x1000, 512, true) == S_OK);
	CHECK(ram[DATA + 0x1000] == pattern(512));
	CHECK(request(T_FLUSH, 0, NULL, 0) == S_OK);
	CHECK(image_is_pattern(0, SECTORS * 512));
	stop();

	make_image(0);
	start(false, "");
	CHECK(!(device_features() & VIRTIO_BIT(5)));
	stop();
}

TEST(readonly_refuses_writes)
{
	both(readonly_body);
}

static void bad_requests_body(void)
{
	struct seg s[2];

	make_image(0);
	start(false, "");
	CHECK(one(T_IN, SECTORS, DATA, 512, true) == S_IOERR);
	CHECK(one(T_IN, SECTORS - 1, DATA, 1024, true) == S_IOERR);
	CHECK(one(T_IN, UINT64_MAX, DATA, 512, true) == S_IOERR);
	CHECK(one(T_IN, UINT64_MAX / 512 + 1, DATA, 512, true) == S_IOERR);
	CHECK(one(T_OUT, SECTORS, DATA, 512, false) == S_IOERR);
	CHECK(one(T_IN, 0, DATA, 100, true) == S_IOERR);   /* not whole sectors */
	CHECK(one(T_OUT, 0, DATA, 513, false) == S_IOERR);
	CHECK(one(T_IN, SECTORS, DATA, 0, true) == S_OK);  /* nothing, at the end: fine */
	CHECK(one(T_IN, SECTORS - 1, DATA, 512, true) == S_OK);
	CHECK(one(99, 0, DATA, 512, true) == S_UNSUPP);
	CHECK(image_is_pattern(0, SECTORS * 512));

	/* A header too short to read. */
	s[0] = (struct seg){ HEADERS, 8, false };
	s[1] = (struct seg){ STATUSES, 1, true };
	ram[STATUSES] = NO_STATUS;
	post(s, 2);
	virtio_mmio_process(&t, 0);
	run_events_until(11, 100);
	CHECK(used_idx() == 11 && ram[STATUSES] == S_IOERR);
	/* No header at all: just a status byte. */
	ram[STATUSES] = NO_STATUS;
	post(s + 1, 1);
	virtio_mmio_process(&t, 0);
	CHECK(used_idx() == 12 && ram[STATUSES] == S_IOERR);
	/* Nowhere to put a status: returned untouched, and the device goes on. */
	put_le32(ram + HEADERS, T_IN);
	put_le64(ram + HEADERS + 8, 0);
	s[1] = (struct seg){ DATA, 512, false };
	memset(ram + DATA, 0x77, 512);
	post(s, 2);
	virtio_mmio_process(&t, 0);
	CHECK(used_idx() == 13 && last_used_len() == 0 && ram[DATA] == 0x77);
	CHECK(!(rd(0x070) & VIRTIO_STATUS_NEEDS_RESET));
	/* Data for a read in the readable part: it has no writable data, a zero-length read. */
	s[0] = (struct seg){ HEADERS, 16, false };
	next_slot = 0;
	CHECK(request(T_IN, 0, &(struct seg){ DATA, 512, false }, 1) == S_OK);
	CHECK(ram[DATA] == 0x77);
	CHECK(one(T_FLUSH, 0, DATA, 512, true) == S_OK);
	stop();
}

TEST(out_of_range_and_malformed_requests)
{
	both(bad_requests_body);
}

/* The file shrank under the device: reads past its end come back short. */
static void host_error_body(void)
{
	const char *log;

	make_image(0);
	start(false, "");
	CHECK(truncate(image, 8 * 512) == 0);
	capture_log();
	CHECK(one(T_IN, 7, DATA, 512, true) == S_OK);
	CHECK(one(T_IN, 8, DATA, 512, true) == S_IOERR);
	CHECK(one(T_IN, 7, DATA, 1024, true) == S_IOERR);
	log = captured_log();
	CHECK(strstr(log, image) && strstr(log, "Input/output error") && count_lines(log) == 1);
	stop();
}

TEST(host_errors_become_ioerr)
{
	both(host_error_body);
}

TEST(config_space_and_features)
{
	uint64_t features;
	uint8_t b[8];

	make_image(300);
	capture_log();
	start(false, "");
	const char *log = captured_log();

	CHECK(strstr(log, image) && strstr(log, "not a multiple of 512") && count_lines(log) == 1);
	features = device_features();
	CHECK(features == (VIRTIO_BIT(2) | VIRTIO_BIT(6) | VIRTIO_BIT(9) | VIRTIO_BIT(13) |
			   VIRTIO_BIT(14) | VIRTIO_BIT(VIRTIO_F_VERSION_1) |
			   VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) |
			   VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX)));
	CHECK(rd(0x100) == SECTORS && rd(0x104) == 0); /* capacity, rounded down */
	virtio_mmio_access(&t, 0x100, b, 8, false);
	CHECK(get_le64(b) == SECTORS);
	CHECK(rd(0x100 + 12) == 254);	   /* seg_max */
	CHECK(rd(0x100 + 20) == 512);	   /* blk_size */
	CHECK(rd(0x100 + 36) == 1U << 22); /* max_discard_sectors */
	CHECK(rd(0x100 + 40) == 1);	   /* max_discard_seg */
	CHECK(rd(0x100 + 44) >= 1);	   /* discard_sector_alignment */
	CHECK(rd(0x100 + 48) == 65536);	   /* max_write_zeroes_sectors */
	CHECK(rd(0x100 + 52) == 1);	   /* max_write_zeroes_seg */
	CHECK((rd(0x100 + 56) & 0xff) == 1); /* write_zeroes_may_unmap */
	CHECK(rd(0x100 + 60) == 0);	   /* past the end */
	/* The tail past the last whole sector is out of reach. */
	CHECK(one(T_IN, SECTORS - 1, DATA, 512, true) == S_OK);
	CHECK(one(T_IN, SECTORS, DATA, 512, true) == S_IOERR);
	CHECK(image_size() == SECTORS * 512 + 300);
	stop();
}

TEST(opening_checks_and_locks)
{
	struct virtio_blk *second;
	const char *log;
	char msg[128];

	CHECK(event_loop_init(&loop) == 0);
	make_image(0);
	blk = open_disk(image, false, "");
	CHECK(blk != NULL);
	capture_log();
	second = open_disk(image, false, "");
	log = captured_log();
	CHECK(second == NULL);
	snprintf(msg, sizeof(msg), "%s: in use by another process (locked)\n", image);
	CHECK(strstr(log, msg) && count_lines(log) == 1);
	CHECK(open_disk(image, true, "") == NULL); /* no reading what someone writes */
	virtio_blk_free(blk);

	blk = open_disk(image, true, "");
	second = open_disk(image, true, ""); /* readers share */
	CHECK(blk && second);
	CHECK(open_disk(image, false, "") == NULL);
	virtio_blk_free(second);
	virtio_blk_free(blk);
	blk = NULL;

	second = open_disk(image, false, ""); /* the locks went with their owners */
	CHECK(second != NULL);
	virtio_blk_free(second);

	snprintf(msg, sizeof(msg), "%s.fifo", image);
	CHECK(mkfifo(msg, 0600) == 0);
	CHECK(open_disk(msg, true, "") == NULL); /* refused, without waiting for a writer */
	unlink(msg);
	capture_log();
	CHECK(open_disk("/tmp", true, "") == NULL);
	CHECK(open_disk("/dev/null", true, "") == NULL);
	CHECK(open_disk("/tmp", false, "") == NULL);
	log = captured_log();
	CHECK(strstr(log, "/tmp: not a regular file or block device\n"));
	CHECK(strstr(log, "/dev/null: not a regular file or block device\n"));
	CHECK(strstr(log, "/tmp: Is a directory\n") && count_lines(log) == 3);
	capture_log();
	CHECK(open_disk("/nonexistent/disk.img", true, "") == NULL);
	log = captured_log();
	CHECK(strstr(log, "/nonexistent/disk.img: No such file") && count_lines(log) == 1);
	stop();
}

/* Interrupts: one per batch of completions. */
static void interrupts_body(void)
{
	eventfd_t n = 0;

	make_image(0);
	start(false, "");
	for (int i = 0; i < 4; i++)
		post_request(T_IN, i, &(struct seg){ DATA + 512 * i, 512, true }, 1);
	virtio_mmio_process(&t, 0);
	/* Page-cache hits come back at once; anything the kernel finishes later, by event. */
	if (uring_mode && uring_works)
		run_events_until(4, 100);
	CHECK(used_idx() == 4);
	CHECK(eventfd_read(t.irq_fd, &n) == 0 && n >= 1 && n <= 4);
	if (!uring_mode)
		CHECK(n == 1);
	for (int i = 0; i < 4 * 512; i++)
		CHECK(ram[DATA + i] == pattern(i));
	stop();
}

TEST(completions_interrupt_once_per_batch)
{
	both(interrupts_body);
}

TEST(reset_drops_requests_in_flight)
{
	uint8_t *status[4];
	uint16_t done, finished = 0;

	unsetenv("SKIFF_BLK_SYNC");
	make_image(0);
	start(false, "");
	for (int i = 0; i < 4; i++) {
		memset(ram + DATA + 0x1000 * i, 0x99, 512);
		status[i] = post_request(i < 3 ? T_OUT : T_FLUSH, i,
					 &(struct seg){ DATA + 0x1000 * i, i < 3 ? 512 : 0, false },
					 1);
	}
	virtio_mmio_process(&t, 0);
	done = used_idx(); /* finished during submission (page cache); the flush is async */
	wr(0x070, 0);	   /* reset while the kernel may still be writing */
	CHECK(rd(0x070) == 0);
	run_events_until(done + 1, 5);
	/* Nothing finished after the reset reached the driver's rings. */
	CHECK(used_idx() == done);
	for (int i = 0; i < 4; i++)
		finished += *status[i] != NO_STATUS;
	CHECK(finished == done);
	/* The device works again after the driver sets it up anew. */
	driver_start();
	CHECK(one(T_IN, 0, DATA, 512, true) == S_OK);
	CHECK(memcmp(ram + DATA, ram + DATA + 0x1000, 512) == 0);
	stop();
}

/* More requests than slots: the rest wait in the ring until completions free some. */
TEST(backpressure_when_all_slots_are_busy)
{
	struct seg s[3] = { { HEADERS, 16, false }, { DATA, 512, true }, { STATUSES, 1, true } };
	unsigned posted = 0, total = 300;

	unsetenv("SKIFF_BLK_SYNC");
	make_image(0);
	start(false, "");
	put_le32(ram + HEADERS, T_IN);
	put_le64(ram + HEADERS + 8, 3);
	/*
	 * One chain, made available again and again (a driver may not, but it must not hurt).
	 * Without completions, the device takes 256 and leaves the rest in the ring.
	 */
	for (int round = 0; round < 10000 && used_idx() != total; round++) {
		while (posted < total && (uint16_t)(get_le16(ram + AVAIL + 2) -
						    t.queues[0].last_avail) < QSIZE) {
			next_desc = 0;
			post(s, 3);
			posted++;
		}
		virtio_mmio_process(&t, 0);
		if (round == 30 && uring_works)
			CHECK(t.queues[0].last_avail == 256 && used_idx() == 0);
		if (round >= 30)
			run_events_until(total, 1);
	}
	CHECK(used_idx() == total);
	CHECK(ram[STATUSES] == S_OK && ram[DATA] == pattern(3 * 512));
	stop();
}

static bool io_uring_usable(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(2, &ring, 0) < 0)
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

static void check_environment(void)
{
	uring_works = io_uring_usable();
	if (!uring_works)
		printf("  io_uring is unavailable here: its runs fall back to synchronous I/O\n");
}

/* Swapping the image (PATCH /drives): a second image, OTHER_SECTORS long, named in other. */
#define OTHER_SECTORS	96
static char other[64];

static uint8_t other_pattern(uint64_t offset)
{
	return (uint8_t)(0x40 + offset / 512 + offset % 3);
}

static void make_other(void)
{
	static uint8_t buf[OTHER_SECTORS * 512];
	int fd;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = other_pattern(i);
	strcpy(other, "/tmp/skiff-test-blk-XXXXXX");
	fd = mkstemp(other);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	close(fd);
}

static bool other_is_pattern(uint64_t offset, size_t len)
{
	uint8_t buf[64 << 10];
	int fd = open(other, O_RDONLY);
	bool same = fd >= 0 && len <= sizeof(buf) && pread(fd, buf, len, offset) == (ssize_t)len;

	for (size_t i = 0; same && i < len; i++)
		same = buf[i] == other_pattern(offset + i);
	close(fd);
	return same;
}

/* Whether another open file could take path's lock now, for writing or for reading. */
static bool can_lock(const char *path, bool write)
{
	struct flock lock = { .l_type = write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };
	int fd = open(path, write ? O_RDWR : O_RDONLY);
	bool ok = fd >= 0 && fcntl(fd, F_OFD_SETLK, &lock) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Reads sector into DATA; true if it holds what fn says the image has there. */
static bool sector_reads(uint64_t sector, uint8_t (*fn)(uint64_t))
{
	memset(ram + DATA, 0xee, 512);
	if (one(T_IN, sector, DATA, 512, true) != S_OK)
		return false;
	for (int i = 0; i < 512; i++)
		if (ram[DATA + i] != fn(sector * 512 + i))
			return false;
	return true;
}

static void drain_irq(void)
{
	eventfd_t n;

	eventfd_read(t.irq_fd, &n);
	wr(0x064, rd(0x060)); /* InterruptACK */
}

static void swap_body(void)
{
	struct state_writer w;
	struct state_reader r;
	struct virtio_mmio t2;
	uint32_t generation;
	eventfd_t n = 0;

	make_image(0);
	make_other();
	start(false, "");
	CHECK(sector_reads(3, pattern));
	CHECK(!can_lock(image, false) && can_lock(other, true));
	drain_irq();
	generation = rd(0x0fc);

	CHECK(virtio_blk_swap(blk, other) == 0);
	CHECK(!strcmp(virtio_blk_path(blk), other));
	CHECK(rd(0x100) == OTHER_SECTORS && rd(0x104) == 0); /* capacity */
	CHECK(rd(0x0fc) != generation);
	CHECK(rd(0x060) == 2); /* configuration change, and nothing else */
	CHECK(eventfd_read(t.irq_fd, &n) == 0 && n == 1);
	/* The old image is free for others; the new one is this device's. */
	CHECK(can_lock(image, true));
	CHECK(!can_lock(other, false) && !can_lock(other, true));

	/* Reads and writes reach the new image, past the old one's end too. */
	CHECK(sector_reads(3, other_pattern));
	CHECK(sector_reads(OTHER_SECTORS - 1, other_pattern));
	CHECK(one(T_IN, OTHER_SECTORS, DATA, 512, true) == S_IOERR);
	memset(ram + DATA, 0x3c, 512);
	CHECK(one(T_OUT, 5, DATA, 512, false) == S_OK);
	CHECK(request(T_FLUSH, 0, NULL, 0) == S_OK);
	CHECK(image_is_pattern(0, SECTORS * 512)); /* the old image untouched */
	CHECK(other_is_pattern(0, 5 * 512) && other_is_pattern(6 * 512, 512));

	/* The driver acknowledges; a snapshot now holds the new generation and loads again. */
	wr(0x064, 3);
	CHECK(rd(0x060) == 0);
	state_writer_init(&w);
	CHECK(virtio_mmio_save(&t, &w) == 0);
	virtio_mmio_init(&t2, virtio_blk_device_ops(blk), blk, &mem, 0xd0000000, 5, -1, NULL);
	state_reader_init(&r, w.buf, w.len);
	CHECK(virtio_mmio_load(&t2, &r) == 0);
	CHECK(fake_read(&t2, 0x0fc) == rd(0x0fc) && fake_read(&t2, 0x100) == OTHER_SECTORS);
	virtio_mmio_destroy(&t2, NULL);
	state_writer_free(&w);
	stop();
	unlink(other);
}

TEST(swap_moves_to_the_new_image)
{
	both(swap_body);
}

/* A swap that cannot happen leaves the device on its image, as it was, with one log line. */
static void swap_failures_body(void)
{
	struct virtio_blk *holder;
	uint32_t generation;
	const char *log;
	char fifo[80];

	make_image(0);
	make_other();
	start(false, "");
	drain_irq();
	generation = rd(0x0fc);
	holder = open_disk(other, true, ""); /* someone else reads it: no writing it here */
	CHECK(holder != NULL);
	snprintf(fifo, sizeof(fifo), "%s.fifo", other);
	CHECK(mkfifo(fifo, 0600) == 0);

	capture_log();
	CHECK(virtio_blk_swap(blk, "/nonexistent/disk.img") == -ENOENT);
	log = captured_log();
	CHECK(strstr(log, "/nonexistent/disk.img: No such file") && count_lines(log) == 1);
	capture_log();
	CHECK(virtio_blk_swap(blk, other) == -EBUSY);
	log = captured_log();
	CHECK(strstr(log, other) && strstr(log, "in use by another process") &&
	      count_lines(log) == 1);
	capture_log();
	CHECK(virtio_blk_swap(blk, "/tmp") == -EISDIR);
	CHECK(virtio_blk_swap(blk, "/dev/null") == -EINVAL);
	CHECK(virtio_blk_swap(blk, fifo) == -EINVAL); /* and no waiting for a writer */
	log = captured_log();
	CHECK(strstr(log, "/tmp: Is a directory") && strstr(log, "/dev/null: not a regular") &&
	      strstr(log, fifo) && count_lines(log) == 3);

	CHECK(!strcmp(virtio_blk_path(blk), image));
	CHECK(rd(0x100) == SECTORS && rd(0x0fc) == generation && rd(0x060) == 0);
	CHECK(!can_lock(image, false));
	CHECK(sector_reads(7, pattern));
	memset(ram + DATA, 0x5e, 512);
	CHECK(one(T_OUT, 2, DATA, 512, false) == S_OK);
	CHECK(image_matches(2 * 512, ram + DATA, 512));
	CHECK(other_is_pattern(0, OTHER_SECTORS * 512));
	virtio_blk_free(holder);
	/* Once free, the same file is taken. */
	CHECK(virtio_blk_swap(blk, other) == 0 && sector_reads(7, other_pattern));
	unlink(fifo);
	stop();
	unlink(other);
}

TEST(swap_failures_keep_the_old_image)
{
	both(swap_failures_body);
}

/*
 * Requests the device took before the swap finish on the old image, all of them, before
 * the swap returns (with io_uring the flush at least is still in the kernel when it starts).
 */
static void swap_in_flight_body(void)
{
	uint8_t *status[5];

	make_image(0);
	make_other();
	start(false, "");
	for (int i = 0; i < 5; i++) {
		memset(ram + DATA + 0x1000 * i, 0x90 + i, 512);
		status[i] = post_request(i < 4 ? T_OUT : T_FLUSH, 10 + i,
					 &(struct seg){ DATA + 0x1000 * i, i < 4 ? 512 : 0, false },
					 1);
	}
	virtio_mmio_process(&t, 0);
	CHECK(virtio_blk_swap(blk, other) == 0);
	CHECK(used_idx() == 5);
	for (int i = 0; i < 5; i++)
		CHECK(*status[i] == S_OK);
	for (int i = 0; i < 4; i++)
		CHECK(image_matches((10 + i) * 512, ram + DATA + 0x1000 * i, 512));
	CHECK(other_is_pattern(0, OTHER_SECTORS * 512));
	CHECK(sector_reads(10, other_pattern));
	stop();
	unlink(other);
}

TEST(swap_finishes_requests_in_flight_on_the_old_image)
{
	both(swap_in_flight_body);
}

/* Makes chain (at descriptor first, n long) available again while the ring has room. */
static unsigned post_while_room(const struct seg *chain, unsigned n, unsigned first,
				unsigned count)
{
	unsigned posted = 0;

	while (posted < count &&
	       (uint16_t)(get_le16(ram + AVAIL + 2) - t.queues[0].last_avail) < QSIZE) {
		next_desc = first;
		post(chain, n);
		posted++;
	}
	return posted;
}

/*
 * Requests waiting in the ring for a free slot are taken up by the swap, on the new image.
 * Flushes fill the slots (io_uring runs them one after another, off the submitting thread),
 * then reads wait behind them; where the kernel is quick enough that no stall forms, the
 * swap is checked without one.
 */
TEST(swap_resumes_a_stalled_queue)
{
	const struct seg flush[2] = { { HEADERS, 16, false }, { STATUSES, 1, true } };
	const struct seg read[3] = { { HEADERS + 16, 16, false }, { DATA, 512, true },
				     { STATUSES + 1, 1, true } };
	unsigned flushes = 0, reads = 0, total = 300, stalled = 0;

	unsetenv("SKIFF_BLK_SYNC");
	make_image(0);
	make_other();
	start(false, "");
	put_le32(ram + HEADERS, T_FLUSH);
	put_le32(ram + HEADERS + 16, T_IN);
	put_le64(ram + HEADERS + 16 + 8, 3);
	for (int round = 0; round < 1000 && reads < total - 256; round++) {
		if (flushes < 256)
			flushes += post_while_room(flush, 2, 0, 256 - flushes);
		else
			reads += post_while_room(read, 3, 2, total - 256 - reads);
		virtio_mmio_process(&t, 0);
	}
	if (uring_works && (uint16_t)(t.queues[0].last_avail - used_idx()) == 256 &&
	    get_le16(ram + AVAIL + 2) != t.queues[0].last_avail) {
		stalled = t.queues[0].last_avail;
		CHECK(virtio_blk_swap(blk, other) == 0);
		/* Without another notification, the reads in the ring were taken. */
		CHECK(used_idx() >= 256 && t.queues[0].last_avail > stalled);
	} else {
		printf("  no stall formed: the swap is checked without one\n");
		CHECK(virtio_blk_swap(blk, other) == 0);
	}
	for (int round = 0; round < 10000 && used_idx() != total; round++) {
		reads += post_while_room(read, 3, 2, total - 256 - reads);
		virtio_mmio_process(&t, 0);
		run_events_until(total, 1);
	}
	CHECK(used_idx() == total);
	CHECK(ram[STATUSES] == S_OK && ram[STATUSES + 1] == S_OK);
	CHECK(ram[DATA] == other_pattern(3 * 512) &&
	      ram[DATA + 511] == other_pattern(3 * 512 + 511));
	stop();
	unlink(other);
}

/* The same file again (resized, say): the size is read anew and the lock stays held. */
static void swap_same_file_body(void)
{
	uint32_t generation;
	eventfd_t n;

	make_image(0);
	start(false, "");
	drain_irq();
	generation = rd(0x0fc);
	CHECK(truncate(image, (SECTORS + 8) * 512) == 0);
	CHECK(virtio_blk_swap(blk, image) == 0);
	CHECK(rd(0x100) == SECTORS + 8 && rd(0x0fc) != generation && rd(0x060) == 2);
	CHECK(eventfd_read(t.irq_fd, &n) == 0);
	CHECK(!can_lock(image, false));
	CHECK(sector_reads(SECTORS - 1, pattern));
	CHECK(one(T_IN, SECTORS + 7, DATA, 512, true) == S_OK && ram[DATA] == 0);
	stop();
}

TEST(swap_to_the_same_file_rereads_its_size)
{
	both(swap_same_file_body);
}

/* A read-only disk takes the new image read-only, sharing it with other readers. */
TEST(swap_keeps_readonly)
{
	setenv("SKIFF_BLK_SYNC", "1", 1);
	make_image(0);
	make_other();
	start(true, "");
	CHECK(virtio_blk_swap(blk, other) == 0);
	CHECK(can_lock(other, false) && !can_lock(other, true));
	CHECK(can_lock(image, true));
	CHECK(device_features() & VIRTIO_BIT(5)); /* VIRTIO_BLK_F_RO */
	memset(ram + DATA, 0x11, 512);
	CHECK(one(T_OUT, 0, DATA, 512, false) == S_IOERR);
	CHECK(sector_reads(1, other_pattern));
	CHECK(other_is_pattern(0, OTHER_SECTORS * 512));
	stop();
	unlink(other);
	unsetenv("SKIFF_BLK_SYNC");
}

/* State round trip: the same disk loads; one of another size is refused. */
static void save_load_body(void)
{
	struct state_writer w;
	struct state_reader r;
	struct virtio_mmio t2;

	start(false, "");
	state_writer_init(&w);
	CHECK(virtio_mmio_save(&t, &w) == 0);
	virtio_mmio_init(&t2, virtio_blk_device_ops(blk), blk, &mem, 0xd0000000, 5, -1, NULL);
	state_reader_init(&r, w.buf, w.len);
	CHECK(virtio_mmio_load(&t2, &r) == 0);
	CHECK(t2.status == t.status && t2.queues[0].desc == t.queues[0].desc);
	virtio_mmio_destroy(&t2, NULL);
	stop();
	make_image(0);
	CHECK(truncate(image, image_size() + 4096) == 0);
	start(false, "");
	state_reader_init(&r, w.buf, w.len);
	capture_log();
	CHECK(virtio_mmio_load(&t, &r) < 0); /* 8 sectors more: another disk */
	CHECK(strstr(captured_log(), "not the disk") != NULL);
	stop();
	state_writer_free(&w);
}

TEST(save_and_load)
{
	make_image(0);
	save_load_body();
}

TEST_MAIN(T(check_environment), T(read_write_flush_round_trip), T(get_id), T(discard),
	  T(write_zeroes), T(readonly_refuses_writes), T(out_of_range_and_malformed_requests),
	  T(host_errors_become_ioerr), T(config_space_and_features), T(opening_checks_and_locks),
	  T(completions_interrupt_once_per_batch), T(reset_drops_requests_in_flight),
	  T(backpressure_when_all_slots_are_busy), T(save_and_load),
	  T(swap_moves_to_the_new_image), T(swap_failures_keep_the_old_image),
	  T(swap_finishes_requests_in_flight_on_the_old_image), T(swap_resumes_a_stalled_queue),
	  T(swap_to_the_same_file_rereads_its_size), T(swap_keeps_readonly))
