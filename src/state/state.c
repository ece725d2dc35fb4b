#include "state.h"

#include "../util/bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SECTION_HEADER 10 /* tag, u16 version, u32 length of the body */

void state_writer_init(struct state_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void state_writer_free(struct state_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static uint8_t *reserve(struct state_writer *w, size_t n)
{
	if (w->failed)
		return NULL;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *p;

		while (cap < w->len + n)
			cap *= 2;
		p = realloc(w->buf, cap);
		if (!p) {
			w->failed = true;
			return NULL;
		}
		w->buf = p;
		w->cap = cap;
	}
	w->len += n;
	return w->buf + w->len - n;
}

void state_put_bytes(struct state_writer *w, const void *p, size_t n)
{
	uint8_t *dst = n ? reserve(w, n) : NULL; /* nothing to copy: p may be NULL */

	if (dst)
		memcpy(dst, p, n);
}

void state_put_u8(struct state_writer *w, uint8_t v)
{
	state_put_bytes(w, &v, 1);
}

void state_put_u16(struct state_writer *w, uint16_t v)
{
	uint8_t *dst = reserve(w, 2);

	if (dst)
		put_le16(dst, v);
}

void state_put_u32(struct state_writer *w, uint32_t v)
{
	uint8_t *dst = reserve(w, 4);

	if (dst)
		put_le32(dst, v);
}

void state_put_u64(struct state_writer *w, uint64_t v)
{
	uint8_t *dst = reserve(w, 8);

	if (dst)
		put_le64(dst, v);
}

void state_begin(struct state_writer *w, const char tag[4], uint16_t version)
{
	w->section_start = w->len;
	state_put_bytes(w, tag, 4);
	state_put_u16(w, version);
	state_put_u32(w, 0); /* the length, filled in by state_end() */
}

int state_end(struct state_writer *w)
{
	if (w->failed)
		return -ENOMEM;
	put_le32(w->buf + w->section_start + 6, w->len - w->section_start - SECTION_HEADER);
	return 0;
}

void state_reader_init(struct state_reader *r, const void *buf, size_t len)
{
	*r = (struct state_reader){ .buf = buf, .len = len, .section_end = len };
}

static const uint8_t *take(struct state_reader *r, size_t n)
{
	if (r->failed || n > r->section_end - r->pos) {
		r->failed = true;
		return NULL;
	}
	r->pos += n;
	return r->buf + r->pos - n;
}

void state_get_bytes(struct state_reader *r, void *p, size_t n)
{
	const uint8_t *src = take(r, n);

	if (src)
		memcpy(p, src, n);
	else
		memset(p, 0, n);
}

uint8_t state_get_u8(struct state_reader *r)
{
	const uint8_t *src = take(r, 1);

	return src ? *src : 0;
}

uint16_t state_get_u16(struct state_reader *r)
{
	const uint8_t *src = take(r, 2);

	return src ? get_le16(src) : 0;
}

uint32_t state_get_u32(struct state_reader *r)
{
	const uint8_t *src = take(r, 4);

	return src ? get_le32(src) : 0;
}

uint64_t state_get_u64(struct state_reader *r)
{
	const uint8_t *src = take(r, 8);

	return src ? get_le64(src) : 0;
}

bool state_get_bool(struct state_reader *r)
{
	uint8_t v = state_get_u8(r);

	if (v > 1)
		r->failed = true;
	return v == 1;
}

int state_open(struct state_reader *r, const char tag[4])
{
	const uint8_t *h;
	uint32_t body;

	r->section_end = r->len;
	h = take(r, SECTION_HEADER);
	if (!h || memcmp(h, tag, 4))
		return -EINVAL;
	body = get_le32(h + 6);
	if (body > r->len - r->pos) {
		r->failed = true;
		return -EINVAL;
	}
	r->section_end = r->pos + body;
	return get_le16(h + 4);
}

int state_close(struct state_reader *r)
{
	int ret = (r->failed || r->pos != r->section_end) ? -EINVAL : 0;

	r->section_end = r->len;
	return ret;
}
