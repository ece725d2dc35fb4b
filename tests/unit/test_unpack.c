#include "test.h"

#include "../../src/arch/x86/unpack.h"
#include "../../src/util/bytes.h"

#include <bzlib.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define ELF_SIZE	(64 * 1024)
#define PAYLOAD_OFFSET	0x200 /* the decompressor's code comes first in a real bzImage */
#define PAYLOAD_MAX	(2 * ELF_SIZE + 4096)
#define IMAGE_MAX	(5 * 512 + PAYLOAD_OFFSET + PAYLOAD_MAX + 4 + 64)
#define BOMB_SIZE	(8 << 20)
#define LZOP_BLOCK	8192
#define LZ4_BLOCK	16384

static uint8_t elf[ELF_SIZE];
static uint8_t payload[PAYLOAD_MAX];
static uint8_t image[IMAGE_MAX];
static uint8_t zeros[BOMB_SIZE]; /* bss: untouched pages cost nothing */

/* What the last unpack() produced and logged. */
static uint8_t *unpacked;
static size_t unpacked_size;
static char log_text[4096];
static unsigned log_lines;

/* A 64 KiB x86-64 ELF: headers, 8 KiB of noise, then text and zeros; it compresses ~7:1. */
static void make_elf(uint16_t machine)
{
	static const char text[] = "mov rax, rbx; call printk\n";
	uint32_t x = 1;

	memset(elf, 0, sizeof(elf));
	memcpy(elf, "\x7f" "ELF\x02\x01\x01", 7);
	put_le16(elf + 16, 2);
	put_le16(elf + 18, machine);
	put_le32(elf + 20, 1);
	put_le64(elf + 24, 0x1000000);
	put_le64(elf + 32, 64);
	put_le16(elf + 52, 64);
	put_le16(elf + 54, 56);
	put_le16(elf + 56, 1);
	put_le32(elf + 64, 1);
	put_le64(elf + 64 + 8, 0x1000);
	put_le64(elf + 64 + 24, 0x1000000);
	put_le64(elf + 64 + 32, ELF_SIZE - 0x1000);
	put_le64(elf + 64 + 40, ELF_SIZE - 0x1000);
	for (size_t i = 0x1000; i < 0x3000; i++) {
		x = x * 1103515245 + 12345;
		elf[i] = x >> 24;
	}
	for (size_t i = 0x3000; i < 0x8000; i++)
		elf[i] = text[i % (sizeof(text) - 1)];
}

static size_t gzip_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream zs = { .next_in = (Bytef *)in, .avail_in = len, .next_out = out,
			.avail_out = cap };
	size_t n = 0;

	if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	if (deflate(&zs, Z_FINISH) == Z_STREAM_END)
		n = zs.total_out;
	deflateEnd(&zs);
	return n;
}

static size_t bzip2_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	unsigned int n = cap;

	if (BZ2_bzBuffToBuffCompress((char *)out, &n, (char *)in, len, 9, 0, 0) != BZ_OK)
		return 0;
	return n;
}

/* As the kernel's xz_wrap.sh: CRC32, since its own decompressor checks nothing stronger. */
static size_t xz_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = 0;

	if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &n, cap) != LZMA_OK)
		return 0;
	return n;
}

static size_t lzma_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;
	size_t n = 0;

	if (lzma_lzma_preset(&opt, 6) || lzma_alone_encoder(&s, &opt) != LZMA_OK)
		return 0;
	s.next_in = in;
	s.avail_in = len;
	s.next_out = out;
	s.avail_out = cap;
	if (lzma_code(&s, LZMA_FINISH) == LZMA_STREAM_END)
		n = s.total_out;
	lzma_end(&s);
	return n;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	return p + 4;
}

static uint32_t lzop_sum(bool crc, const uint8_t *p, size_t len)
{
	return crc ? lzo_crc32(0, (const lzo_bytep)p, len)
		   : lzo_adler32(1, (const lzo_bytep)p, len);
}

/*
 * The lzop file format around lzo1x_1 blocks, as lzop writes it: header (version 1.04),
 * then per block its lengths, the checksums flags asks for, and the data (stored as is
 * when it does not compress), then a zero length. The buffers are big enough by design.
 */
static size_t lzop_compress(const uint8_t *in, size_t len, uint8_t *out, uint32_t flags)
{
	static const uint8_t magic[9] = { 0x89, 'L', 'Z', 'O', 0, '\r', '\n', 0x1a, '\n' };
	static const uint8_t fields[] = { 0x10, 0x40, 0x20, 0xa0, 0x09, 0x40, 1, 5 };
	static lzo_align_t wrkmem[LZO1X_1_MEM_COMPRESS / sizeof(lzo_align_t) + 1];
	static uint8_t block[LZOP_BLOCK + LZOP_BLOCK / 16 + 64 + 3];
	uint8_t *p = out;

	if (lzo_init() != LZO_E_OK)
		return 0;
	memcpy(p, magic, sizeof(magic));
	memcpy(p += sizeof(magic), fields, sizeof(fields));
	p = put_be32(p + sizeof(fields), flags);
	memset(p, 0, 12); /* mode, mtime low and high */
	p += 12;
	*p++ = 11;
	memcpy(p, "vmlinux.bin", 11);
	p += 11;
	p = put_be32(p, lzop_sum(flags & 0x1000, out + 9, p - out - 9));
	for (size_t off = 0; off < len; off += LZOP_BLOCK) {
		lzo_uint dst_len = len - off < LZOP_BLOCK ? len - off : LZOP_BLOCK, src_len;
		const uint8_t *src = block;

		lzo1x_1_compress((const lzo_bytep)in + off, dst_len, block, &src_len, wrkmem);
		if (src_len >= dst_len) {
			src = in + off;
			src_len = dst_len;
		}
		p = put_be32(put_be32(p, dst_len), src_len);
		if (flags & 0x001)
			p = put_be32(p, lzop_sum(false, in + off, dst_len));
		if (flags & 0x100)
			p = put_be32(p, lzop_sum(true, in + off, dst_len));
		if ((flags & 0x002) && src_len < dst_len)
			p = put_be32(p, lzop_sum(false, src, src_len));
		if ((flags & 0x200) && src_len < dst_len)
			p = put_be32(p, lzop_sum(true, src, src_len));
		memcpy(p, src, src_len);
		p += src_len;
	}
	return put_be32(p, 0) - out;
}

/* lzop -9's default: an Adler-32 of each block's data. */
static size_t lzo_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	(void)cap;
	return lzop_compress(in, len, out, 0x001);
}

/* Every checksum lzop can write: CRC-32 header, both kinds over data and compressed data. */
static size_t lzo_crc_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	(void)cap;
	return lzop_compress(in, len, out, 0x1000 | 0x001 | 0x002 | 0x100 | 0x200);
}

/* The legacy frame ("lz4 -l"), in small blocks, with a second magic after the first two. */
static size_t lz4_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	uint8_t *p = out;
	unsigned blocks = 0;

	put_le32(p, 0x184c2102);
	p += 4;
	for (size_t off = 0; off < len; off += LZ4_BLOCK, blocks++) {
		int n = len - off < LZ4_BLOCK ? len - off : LZ4_BLOCK;

		if (blocks == 2) {
			put_le32(p, 0x184c2102);
			p += 4;
		}
		n = LZ4_compress_default((const char *)in + off, (char *)p + 4, n,
					 cap - (p + 4 - out));
		if (n <= 0)
			return 0;
		put_le32(p, n);
		p += 4 + n;
	}
	return p - out;
}

/* With a content checksum, as the zstd tool writes by default. */
static size_t zstd_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t n;

	if (!cctx)
		return 0;
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 19);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	n = ZSTD_compress2(cctx, out, cap, in, len);
	ZSTD_freeCCtx(cctx);
	return ZSTD_isError(n) ? 0 : n;
}

static const struct codec {
	const char *name;
	size_t (*compress)(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
	size_t corrupt_at; /* a byte whose change the decoder must notice; 0: the middle */
} codecs[] = {
	{ "gzip", gzip_compress, 0 },
	{ "bzip2", bzip2_compress, 0 },
	{ "xz", xz_compress, 0 },
	{ "lzma", lzma_compress, 13 }, /* no checksum, but the range coder starts with 0 */
	{ "lzo", lzo_compress, 0 },
	{ "lzo-crc32", lzo_crc_compress, 0 },
	{ "lz4", lz4_compress, 7 }, /* no checksum: the top byte of the first block's length */
	{ "zstd", zstd_compress, 0 },
};

#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/*
 * A bzImage as the kernel builds it: setup sectors, decompressor code, the payload with its
 * uncompressed size appended (size_append), more code. Returns the file's size.
 */
static size_t make_image(unsigned setup_sects, size_t payload_len, uint32_t out_size)
{
	size_t pm = ((setup_sects ? setup_sects : 4) + 1) * 512, start = pm + PAYLOAD_OFFSET;

	memset(image, 0, sizeof(image));
	image[0x1f1] = setup_sects;
	put_le16(image + 0x1fe, 0xaa55);
	image[0x201] = 0x6a; /* header ends at 0x26c */
	put_le32(image + 0x202, 0x53726448);
	put_le16(image + 0x206, 0x20f);
	image[0x211] = 0x01;
	put_le16(image + 0x236, 0x1);
	put_le32(image + 0x248, PAYLOAD_OFFSET);
	put_le32(image + 0x24c, payload_len + 4);
	memset(image + pm, 0xcc, PAYLOAD_OFFSET);
	memcpy(image + start, payload, payload_len);
	put_le32(image + start + payload_len, out_size);
	memset(image + start + payload_len + 4, 0xcc, 64);
	return start + payload_len + 4 + 64;
}

/* Compresses data with c into a bzImage; returns its size, 0 if compressing failed. */
static size_t build(const struct codec *c, const uint8_t *data, size_t len)
{
	size_t n = c->compress(data, len, payload, sizeof(payload));

	return n ? make_image(1, n, len) : 0;
}

static uint8_t *payload_in_image(void)
{
	return image + 2 * 512 + PAYLOAD_OFFSET;
}

/* Unpacks image[0, size) with the log captured; limit 0: bzimage_unpack's own. */
static int unpack(size_t size, size_t limit)
{
	struct boot_image img = { "vmlinuz", image, size };
	int saved = dup(2), fd = memfd_create("log", 0), ret;
	ssize_t n;

	free(unpacked);
	unpacked = NULL;
	fflush(stderr);
	dup2(fd, 2);
	log_set_level(LOG_ERROR);
	ret = limit ? bzimage_unpack_limit(&img, limit, &unpacked, &unpacked_size)
		    : bzimage_unpack(&img, &unpacked, &unpacked_size);
	log_set_level(LOG_OFF);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, log_text, sizeof(log_text) - 1, 0);
	close(fd);
	log_text[n > 0 ? n : 0] = '\0';
	log_lines = 0;
	for (const char *s = log_text; *s; s++)
		log_lines += *s == '\n';
	return ret;
}

static bool unpacked_is(const uint8_t *want, size_t len)
{
	return unpacked && unpacked_size == len && !memcmp(unpacked, want, len);
}

/* A failure that names the file in one log line. */
static bool logged_once(void)
{
	return log_lines == 1 && !strncmp(log_text, "skiff: vmlinuz: ", 16);
}

static void note_codec(const struct codec *c, int failed_before)
{
	if (test_failed_checks != failed_before)
		printf("  (with %s)\n", c->name);
}

TEST(each_format)
{
	make_elf(62);
	for (const struct codec *c = codecs; c < codecs + NCODECS; c++) {
		int failed = test_failed_checks;
		size_t size = build(c, elf, ELF_SIZE);

		CHECK(size > 0);
		CHECK(unpack(size, 0) == 0 && log_lines == 0);
		CHECK(unpacked_is(elf, ELF_SIZE));
		note_codec(c, failed);
	}
}

/* setup_sects 0 means 4 (boot.rst). */
TEST(default_setup_sects)
{
	size_t n;

	make_elf(62);
	n = gzip_compress(elf, ELF_SIZE, payload, sizeof(payload));
	CHECK(n > 0);
	CHECK(unpack(make_image(0, n, ELF_SIZE), 0) == 0 && unpacked_is(elf, ELF_SIZE));
}

TEST(truncated)
{
	make_elf(62);
	for (const struct codec *c = codecs; c < codecs + NCODECS; c++) {
		int failed = test_failed_checks;
		size_t size = build(c, elf, ELF_SIZE);
		uint32_t len = get_le32(image + 0x24c);

		put_le32(image + 0x24c, len - 5); /* the stream's last byte and the size trailer */
		CHECK(unpack(size, 0) == -EINVAL && logged_once());
		put_le32(image + 0x24c, len / 2);
		CHECK(unpack(size, 0) == -EINVAL && logged_once());
		put_le32(image + 0x24c, len);
		CHECK(unpack(size - 64 - len / 2, 0) == -ENOEXEC && log_lines == 0); /* cut file */
		note_codec(c, failed);
	}
}

TEST(corrupted)
{
	make_elf(62);
	for (const struct codec *c = codecs; c < codecs + NCODECS; c++) {
		int failed = test_failed_checks;
		size_t size = build(c, elf, ELF_SIZE);
		size_t at = c->corrupt_at ? c->corrupt_at : get_le32(image + 0x24c) / 2;

		payload_in_image()[at] ^= 0xff;
		CHECK(unpack(size, 0) == -EINVAL && logged_once());
		note_codec(c, failed);
	}
}

/* An lzop header or block checksum that does not match. */
TEST(lzo_checksums)
{
	const struct codec *crc = &codecs[5];
	size_t size;

	make_elf(62);
	size = build(crc, elf, ELF_SIZE);
	payload_in_image()[45] ^= 1; /* the header checksum */
	CHECK(unpack(size, 0) == -EINVAL && logged_once() && strstr(log_text, "header checksum"));
	size = build(crc, elf, ELF_SIZE);
	payload_in_image()[57] ^= 1; /* the first block's Adler-32 of its data */
	CHECK(unpack(size, 0) == -EINVAL && logged_once() && strstr(log_text, "block checksum"));
}

TEST(header_fields)
{
	size_t size;

	make_elf(62);
	size = build(&codecs[0], elf, ELF_SIZE);
	put_le32(image + 0x248, size);
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);
	put_le32(image + 0x248, 0xffffffff);
	put_le32(image + 0x24c, 0xffffffff);
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);
	put_le32(image + 0x248, PAYLOAD_OFFSET);
	put_le32(image + 0x24c, size);
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);
	put_le32(image + 0x24c, 0);
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);

	size = build(&codecs[0], elf, ELF_SIZE);
	put_le16(image + 0x206, 0x207); /* no payload fields before 2.08 */
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);
	size = build(&codecs[0], elf, ELF_SIZE);
	image[0x201] = 0x40; /* the header ends before payload_length */
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);
	size = build(&codecs[0], elf, ELF_SIZE);
	image[0x202] = 'X';
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);
	size = build(&codecs[0], elf, ELF_SIZE);
	CHECK(unpack(0x24f, 0) == -ENOEXEC && log_lines == 0);
	memcpy(payload_in_image(), "PK\3\4", 4);
	CHECK(unpack(size, 0) == -ENOEXEC && log_lines == 0);
}

TEST(not_x86_64_elf)
{
	size_t size;

	make_elf(183); /* aarch64 */
	size = build(&codecs[0], elf, ELF_SIZE);
	CHECK(unpack(size, 0) == -EINVAL && logged_once() && strstr(log_text, "x86-64"));
	make_elf(62);
	elf[4] = 1; /* ELFCLASS32 */
	size = build(&codecs[6], elf, ELF_SIZE);
	CHECK(unpack(size, 0) == -EINVAL && logged_once());
	make_elf(62);
	size = build(&codecs[7], elf, 63); /* shorter than an ELF header */
	CHECK(unpack(size, 0) == -EINVAL && logged_once());
	size = build(&codecs[4], (const uint8_t *)"hello", 5);
	CHECK(unpack(size, 0) == -EINVAL && logged_once());
}

/* The output limit, exactly: one byte more than allowed fails, the limit itself does not. */
TEST(output_limit)
{
	make_elf(62);
	for (const struct codec *c = codecs; c < codecs + NCODECS; c++) {
		int failed = test_failed_checks;
		size_t size = build(c, elf, ELF_SIZE);

		CHECK(unpack(size, ELF_SIZE - 1) == -EFBIG && logged_once());
		CHECK(unpack(size, ELF_SIZE) == 0 && unpacked_is(elf, ELF_SIZE));
		CHECK(unpack(size, 4096) == -EFBIG && logged_once());
		note_codec(c, failed);
	}
}

/* 8 MiB of zeros squeezed into a few KiB, against a 1 MiB limit. */
TEST(decompression_bomb)
{
	for (const struct codec *c = codecs; c < codecs + NCODECS; c++) {
		int failed = test_failed_checks;
		size_t size = build(c, zeros, BOMB_SIZE);

		CHECK(size > 0);
		CHECK(unpack(size, 1 << 20) == -EFBIG && logged_once() && !unpacked);
		note_codec(c, failed);
	}
}

TEST_MAIN(T(each_format), T(default_setup_sects), T(truncated), T(corrupted), T(lzo_checksums),
	  T(header_fields), T(not_x86_64_elf), T(output_limit), T(decompression_bomb))
