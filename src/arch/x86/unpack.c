/*
 * A bzImage's payload (boot.rst: payload_offset, payload_length) is the kernel's vmlinux ELF,
 * compressed in one of the formats of arch/x86/boot/compressed/Makefile and followed by its
 * uncompressed size (scripts/Makefile.lib, size_append). Each format goes through its usual
 * library; the output grows as needed up to a limit, since only some formats store its size.
 */
#include "unpack.h"

#include "../../log.h"
#include "../../util/bytes.h"

#include <bzlib.h>
#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define OFF_SETUP_SECTS		0x1f1
#define OFF_BOOT_FLAG		0x1fe
#define OFF_JUMP		0x200
#define OFF_HEADER		0x202
#define OFF_VERSION		0x206
#define OFF_PAYLOAD_OFFSET	0x248
#define OFF_PAYLOAD_LENGTH	0x24c
#define HDR_PAYLOAD_END		0x250
#define BOOT_FLAG		0xaa55
#define HDRS_MAGIC		0x53726448 /* "HdrS" */
#define PROTOCOL_PAYLOAD	0x208

#define UNPACK_MAX		(1ULL << 30)
#define SIZE_TRAILER		4
/* xz and lzma -9 decode with 65 MiB; the limit keeps a forged header from asking for more. */
#define LZMA_MEMLIMIT		(256ULL << 20)

/* lzop's header and block flags (lzop's conf.h), as decompress_unlzo.c reads them. */
#define LZOP_MAGIC_LEN		9
#define LZOP_BLOCK_MAX		(256 * 1024)
#define F_ADLER32_D		0x00000001
#define F_ADLER32_C		0x00000002
#define F_CRC32_D		0x00000100
#define F_CRC32_C		0x00000200
#define F_H_FILTER		0x00000800
#define F_H_CRC32		0x00001000

#define LZ4_LEGACY_MAGIC	0x184c2102
#define LZ4_LEGACY_BLOCK	(8 << 20)

struct unpack {
	const uint8_t *in;
	size_t in_len;
	uint8_t *out;
	size_t len;	  /* bytes produced */
	size_t cap;	  /* bytes allocated */
	size_t max;	  /* the most a good payload may produce */
	const char *why;  /* the problem, when a decoder returns -EINVAL */
};

static int corrupt(struct unpack *u, const char *why)
{
	u->why = why;
	return -EINVAL;
}

/*
 * Grows the output until want more bytes fit or it reaches max + 1 bytes: one byte past the
 * limit tells a payload that is too big from one of exactly the limit.
 */
static int out_reserve(struct unpack *u, size_t want)
{
	size_t limit = u->max + 1, cap = u->cap;
	uint8_t *p;

	if (want > limit - u->len)
		want = limit - u->len;
	if (cap - u->len >= want)
		return 0;
	while (cap - u->len < want)
		cap = cap > limit / 2 ? limit : cap * 2;
	p = realloc(u->out, cap);
	if (!p)
		return -ENOMEM;
	u->out = p;
	u->cap = cap;
	return 0;
}

/* The room left in the output, up to at_most bytes (what a decoder's length type holds). */
static size_t out_room(const struct unpack *u, size_t at_most)
{
	return u->cap - u->len < at_most ? u->cap - u->len : at_most;
}

/* Before each call of a streaming decoder: stops once past the limit, else makes room. */
static int out_more(struct unpack *u)
{
	return u->len > u->max ? -EFBIG : out_reserve(u, 1);
}

static int unpack_gzip(struct unpack *u)
{
	z_stream zs = { .next_in = (Bytef *)u->in, .avail_in = u->in_len };
	int ret, zret;

	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	for (;;) {
		ret = out_more(u);
		if (ret)
			break;
		zs.next_out = u->out + u->len;
		zs.avail_out = out_room(u, UINT_MAX);
		zret = inflate(&zs, Z_NO_FLUSH);
		u->len = zs.next_out - u->out;
		if (zret == Z_OK)
			continue;
		if (zret == Z_MEM_ERROR)
			ret = -ENOMEM;
		else if (zret == Z_BUF_ERROR) /* there was room, so the input ran out */
			ret = corrupt(u, "truncated");
		else if (zret != Z_STREAM_END)
			ret = corrupt(u, zs.msg ? zs.msg : "bad data");
		break;
	}
	inflateEnd(&zs);
	return ret;
}

static int unpack_bzip2(struct unpack *u)
{
	bz_stream bs = { .next_in = (char *)u->in, .avail_in = u->in_len };
	int ret, bzret;

	if (BZ2_bzDecompressInit(&bs, 0, 0) != BZ_OK)
		return -ENOMEM;
	for (;;) {
		ret = out_more(u);
		if (ret)
			break;
		bs.next_out = (char *)u->out + u->len;
		bs.avail_out = out_room(u, UINT_MAX);
		bzret = BZ2_bzDecompress(&bs);
		u->len = (uint8_t *)bs.next_out - u->out;
		/* BZ_OK with room left means it wants input there is no more of. */
		if (bzret == BZ_OK && bs.avail_out == 0)
			continue;
		if (bzret == BZ_OK)
			ret = corrupt(u, "truncated");
		else if (bzret == BZ_MEM_ERROR)
			ret = -ENOMEM;
		else if (bzret != BZ_STREAM_END)
			ret = corrupt(u, "bad data or CRC");
		break;
	}
	BZ2_bzDecompressEnd(&bs);
	return ret;
}

static const char *lzma_problem(lzma_ret ret)
{
	switch (ret) {
	case LZMA_FORMAT_ERROR:
		return "bad header";
	case LZMA_OPTIONS_ERROR:
		return "unsupported options";
	case LZMA_MEMLIMIT_ERROR:
		return "needs more than 256 MiB of memory to decompress";
	case LZMA_BUF_ERROR:
		return "truncated";
	default:
		return "bad data or check";
	}
}

/* xz (.xz streams, the kernel's xz_wrap.sh) or lzma (the legacy .lzma, "lzma -9"). */
static int unpack_liblzma(struct unpack *u, bool alone)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret lret;
	int ret;

	lret = alone ? lzma_alone_decoder(&s, LZMA_MEMLIMIT)
		     : lzma_stream_decoder(&s, LZMA_MEMLIMIT, 0);
	if (lret != LZMA_OK)
		return -ENOMEM;
	s.next_in = u->in;
	s.avail_in = u->in_len;
	for (;;) {
		ret = out_more(u);
		if (ret)
			break;
		s.next_out = u->out + u->len;
		s.avail_out = out_room(u, SIZE_MAX);
		lret = lzma_code(&s, LZMA_FINISH);
		u->len = s.next_out - u->out;
		if (lret == LZMA_OK)
			continue;
		if (lret == LZMA_MEM_ERROR)
			ret = -ENOMEM;
		else if (lret != LZMA_STREAM_END)
			ret = corrupt(u, lzma_problem(lret));
		break;
	}
	lzma_end(&s);
	return ret;
}

static int unpack_xz(struct unpack *u)
{
	return unpack_liblzma(u, false);
}

static int unpack_lzma(struct unpack *u)
{
	return unpack_liblzma(u, true);
}

static int unpack_zstd(struct unpack *u)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	ZSTD_inBuffer in = { u->in, u->in_len, 0 };
	int ret;

	if (!dctx)
		return -ENOMEM;
	for (;;) {
		ZSTD_outBuffer out;
		size_t zret;

		ret = out_more(u);
		if (ret)
			break;
		out = (ZSTD_outBuffer){ u->out + u->len, out_room(u, SIZE_MAX), 0 };
		zret = ZSTD_decompressStream(dctx, &out, &in);
		u->len += out.pos;
		if (ZSTD_isError(zret)) {
			ret = corrupt(u, ZSTD_getErrorName(zret));
			break;
		}
		if (zret == 0) /* the frame is done; what follows is the size trailer */
			break;
		if (in.pos == in.size && out.pos < out.size) {
			ret = corrupt(u, "truncated");
			break;
		}
	}
	ZSTD_freeDCtx(dctx);
	return ret;
}

static bool read_be32(const struct unpack *u, size_t *pos, uint32_t *v)
{
	const uint8_t *p;

	if (u->in_len - *pos < 4)
		return false;
	p = u->in + *pos;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	*pos += 4;
	return true;
}

static uint32_t lzop_sum(bool crc, const uint8_t *p, size_t len)
{
	return crc ? lzo_crc32(0, (const lzo_bytep)p, len)
		   : lzo_adler32(1, (const lzo_bytep)p, len);
}

/* The lzop file header (lzop's read_header()); leaves *pos at the first block. */
static int lzop_header(struct unpack *u, size_t *pos, uint32_t *flags)
{
	uint32_t stored, sum;
	uint16_t version;
	size_t skip;

	if (u->in_len < LZOP_MAGIC_LEN + 2)
		return corrupt(u, "truncated header");
	version = u->in[LZOP_MAGIC_LEN] << 8 | u->in[LZOP_MAGIC_LEN + 1];
	/* version, library version, [version needed], method, [level] */
	*pos = LZOP_MAGIC_LEN + (version >= 0x0940 ? 8 : 5);
	if (*pos > u->in_len || !read_be32(u, pos, flags))
		return corrupt(u, "truncated header");
	/* A filter would have to be undone after decompression; the kernel never uses one. */
	if (*flags & F_H_FILTER)
		return corrupt(u, "lzop filters are not supported");
	/* mode, mtime, [mtime high], then the file name after its length byte */
	skip = version >= 0x0940 ? 12 : 8;
	if (u->in_len - *pos <= skip)
		return corrupt(u, "truncated header");
	skip += 1 + u->in[*pos + skip];
	if (u->in_len - *pos < skip)
		return corrupt(u, "truncated header");
	*pos += skip;
	sum = lzop_sum(*flags & F_H_CRC32, u->in + LZOP_MAGIC_LEN, *pos - LZOP_MAGIC_LEN);
	if (!read_be32(u, pos, &stored))
		return corrupt(u, "truncated header");
	return stored == sum ? 0 : corrupt(u, "bad header checksum");
}

/*
 * One block after its uncompressed length, checksums read in lzop's order (lzo.c); a block
 * stored uncompressed has no checksums of its compressed form.
 */
static int lzop_block(struct unpack *u, size_t *pos, uint32_t flags, uint32_t dst_len)
{
	static const uint32_t sum_flags[4] = { F_ADLER32_D, F_CRC32_D, F_ADLER32_C, F_CRC32_C };
	uint32_t src_len, sums[4];
	unsigned int have = 0;
	const uint8_t *src;
	lzo_uint done = dst_len;
	uint8_t *dst;
	int ret;

	if (!read_be32(u, pos, &src_len))
		return corrupt(u, "truncated");
	if (src_len == 0 || src_len > dst_len)
		return corrupt(u, "bad block length");
	for (int i = 0; i < 4; i++) {
		if (!(flags & sum_flags[i]) || (i >= 2 && src_len == dst_len))
			continue;
		if (!read_be32(u, pos, &sums[i]))
			return corrupt(u, "truncated");
		have |= 1u << i;
	}
	if (u->in_len - *pos < src_len)
		return corrupt(u, "truncated");
	ret = out_reserve(u, dst_len);
	if (ret)
		return ret;
	if (out_room(u, dst_len) < dst_len)
		return -EFBIG;
	src = u->in + *pos;
	dst = u->out + u->len;
	if (src_len == dst_len)
		memcpy(dst, src, dst_len);
	else if (lzo1x_decompress_safe((const lzo_bytep)src, src_len, dst, &done, NULL) !=
		 LZO_E_OK || done != dst_len)
		return corrupt(u, "bad data");
	for (int i = 0; i < 4; i++) {
		bool data = i < 2;

		if ((have & 1u << i) &&
		    lzop_sum(i & 1, data ? dst : src, data ? dst_len : src_len) != sums[i])
			return corrupt(u, "bad block checksum");
	}
	u->len += dst_len;
	*pos += src_len;
	return 0;
}

/* The lzop file format, as the kernel's decompress_unlzo.c reads it ("lzop -9"). */
static int unpack_lzo(struct unpack *u)
{
	uint32_t flags, dst_len;
	size_t pos;
	int ret;

	if (lzo_init() != LZO_E_OK)
		return -ELIBBAD;
	ret = lzop_header(u, &pos, &flags);
	while (!ret) {
		if (!read_be32(u, &pos, &dst_len))
			return corrupt(u, "truncated");
		if (dst_len == 0) /* the end marker */
			return 0;
		if (dst_len > LZOP_BLOCK_MAX) /* unlzo's limit too */
			return corrupt(u, "block larger than 256 KiB");
		ret = lzop_block(u, &pos, flags, dst_len);
	}
	return ret;
}

/* The legacy frame ("lz4 -l"), as the kernel's decompress_unlz4.c reads it. */
static int unpack_lz4(struct unpack *u)
{
	size_t pos = 4, end;
	int ret;

	if (u->in_len < 4 + SIZE_TRAILER)
		return corrupt(u, "truncated");
	/* Blocks run to the size trailer, not to an end mark: unlz4 is given in_len - 4. */
	end = u->in_len - SIZE_TRAILER;
	while (pos < end) {
		uint32_t block;
		size_t room;
		int n;

		if (end - pos < 4)
			return corrupt(u, "truncated");
		block = get_le32(u->in + pos);
		pos += 4;
		if (block == LZ4_LEGACY_MAGIC) /* another frame follows; unlz4 reads on */
			continue;
		if (block > LZ4_COMPRESSBOUND(LZ4_LEGACY_BLOCK))
			return corrupt(u, "bad block length");
		if (block > end - pos)
			return corrupt(u, "truncated");
		ret = out_reserve(u, LZ4_LEGACY_BLOCK);
		if (ret)
			return ret;
		room = out_room(u, LZ4_LEGACY_BLOCK);
		n = LZ4_decompress_safe((const char *)u->in + pos, (char *)u->out + u->len, block,
					room);
		/* Room is short of a block only at the limit, where a good block may not fit. */
		if (n < 0)
			return room < LZ4_LEGACY_BLOCK ? -EFBIG : corrupt(u, "bad data");
		u->len += n;
		pos += block;
	}
	return 0;
}

static const struct format {
	const char *name;
	const char *magic;
	size_t magic_len;
	int (*decode)(struct unpack *u);
} formats[] = {
	{ "gzip", "\x1f\x8b", 2, unpack_gzip },
	{ "bzip2", "BZh", 3, unpack_bzip2 },
	{ "xz", "\xfd" "7zXZ\0", 6, unpack_xz },
	{ "lzma", "\x5d\0\0", 3, unpack_lzma },
	{ "lzo", "\x89" "LZO\0\r\n\x1a\n", LZOP_MAGIC_LEN, unpack_lzo },
	{ "lz4", "\x02\x21\x4c\x18", 4, unpack_lz4 },
	{ "zstd", "\x28\xb5\x2f\xfd", 4, unpack_zstd },
};

/* Finds the payload through the setup header; -ENOEXEC when it has none that fits. */
static int find_payload(const struct boot_image *img, const uint8_t **payload, size_t *len)
{
	const uint8_t *d = img->data;
	uint64_t start, length;
	unsigned int setup_sects;

	if (img->size < HDR_PAYLOAD_END || get_le16(d + OFF_BOOT_FLAG) != BOOT_FLAG ||
	    get_le32(d + OFF_HEADER) != HDRS_MAGIC ||
	    get_le16(d + OFF_VERSION) < PROTOCOL_PAYLOAD ||
	    OFF_HEADER + d[OFF_JUMP + 1] < HDR_PAYLOAD_END)
		return -ENOEXEC;
	setup_sects = d[OFF_SETUP_SECTS] ? d[OFF_SETUP_SECTS] : 4;
	/* payload_offset counts from the protected-mode code, after the setup sectors */
	start = (setup_sects + 1) * 512ULL + get_le32(d + OFF_PAYLOAD_OFFSET);
	length = get_le32(d + OFF_PAYLOAD_LENGTH);
	if (length == 0 || start > img->size || length > img->size - start)
		return -ENOEXEC;
	*payload = d + start;
	*len = length;
	return 0;
}

static const struct format *find_format(const uint8_t *payload, size_t len)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		const struct format *f = &formats[i];

		if (len >= f->magic_len && !memcmp(payload, f->magic, f->magic_len))
			return f;
	}
	return NULL;
}

static bool is_x86_64_elf(const uint8_t *e, size_t len)
{
	/* ELFCLASS64, ELFDATA2LSB, EM_X86_64 */
	return len >= 64 && !memcmp(e, "\x7f" "ELF", 4) && e[4] == 2 && e[5] == 1 &&
	       get_le16(e + 18) == 62;
}

/* Runs fmt's decoder into u->out and logs what went wrong, if anything did. */
static int decode(const struct boot_image *img, const struct format *fmt, struct unpack *u)
{
	int ret;

	/* Kernels compress three to five times; the output grows from there if it must. */
	u->cap = u->in_len <= u->max / 4 ? 4 * u->in_len : u->max + 1;
	u->out = malloc(u->cap);
	ret = u->out ? fmt->decode(u) : -ENOMEM;
	if (!ret && u->len > u->max)
		ret = -EFBIG;
	if (ret == -EINVAL)
		log_error("%s: corrupt %s payload: %s", img->name, fmt->name, u->why);
	else if (ret == -EFBIG)
		log_error("%s: %s payload decompresses to more than %zu bytes", img->name,
			  fmt->name, u->max);
	else if (ret)
		log_error("%s: cannot decompress the %s payload: %s", img->name, fmt->name,
			  strerror(-ret));
	else if (!is_x86_64_elf(u->out, u->len)) {
		log_error("%s: %s payload decompresses to %zu bytes that are not an x86-64 ELF",
			  img->name, fmt->name, u->len);
		ret = -EINVAL;
	}
	return ret;
}

int bzimage_unpack_limit(const struct boot_image *img, size_t max_size, uint8_t **elf,
			 size_t *elf_size)
{
	struct unpack u = { .max = max_size };
	const struct format *fmt;
	uint8_t *trimmed;
	int ret = find_payload(img, &u.in, &u.in_len);

	if (ret)
		return ret;
	fmt = find_format(u.in, u.in_len);
	if (!fmt)
		return -ENOEXEC;
	ret = decode(img, fmt, &u);
	if (ret) {
		free(u.out);
		return ret;
	}
	trimmed = realloc(u.out, u.len);
	*elf = trimmed ? trimmed : u.out; /* a failed shrink leaves the bigger buffer */
	*elf_size = u.len;
	return 0;
}

int bzimage_unpack(const struct boot_image *img, uint8_t **elf, size_t *elf_size)
{
	return bzimage_unpack_limit(img, UNPACK_MAX, elf, elf_size);
}
