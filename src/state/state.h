/*
 * Device state as bytes: what snapshots and migration carry. Each device writes one
 * section (a 4-character tag, a version and a length) of little-endian fields, and reads
 * it back with every field checked; a section that is short, long, of another tag or of
 * an unknown version is refused rather than half-loaded.
 */
#ifndef SKIFF_STATE_H
#define SKIFF_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state_writer {
	uint8_t *buf; /* grows as needed; free() when done */
	size_t len, cap;
	size_t section_start;
	bool failed; /* out of memory: every later put is ignored */
};

struct state_reader {
	const uint8_t *buf;
	size_t len, pos;
	size_t section_end;
	bool failed; /* read past the data or the section: every later get returns 0 */
};

void state_writer_init(struct state_writer *w);
void state_writer_free(struct state_writer *w);
void state_begin(struct state_writer *w, const char tag[4], uint16_t version);
/* Closes the section; returns 0, or -ENOMEM if any put failed. */
int state_end(struct state_writer *w);
void state_put_u8(struct state_writer *w, uint8_t v);
void state_put_u16(struct state_writer *w, uint16_t v);
void state_put_u32(struct state_writer *w, uint32_t v);
void state_put_u64(struct state_writer *w, uint64_t v);
void state_put_bytes(struct state_writer *w, const void *p, size_t n);

void state_reader_init(struct state_reader *r, const void *buf, size_t len);
/* Opens the next section; returns its version, or -EINVAL if the tag is not tag. */
int state_open(struct state_reader *r, const char tag[4]);
/* Checks the section was read exactly to its end; returns 0 or -EINVAL. */
int state_close(struct state_reader *r);
uint8_t state_get_u8(struct state_reader *r);
uint16_t state_get_u16(struct state_reader *r);
uint32_t state_get_u32(struct state_reader *r);
uint64_t state_get_u64(struct state_reader *r);
void state_get_bytes(struct state_reader *r, void *p, size_t n);
bool state_get_bool(struct state_reader *r); /* a u8 that must be 0 or 1 */

#endif
