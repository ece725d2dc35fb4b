/* CRC-32 as zlib's crc32() computes it: reflected, polynomial 0xedb88320, inverted in and out. */
#include "probe.h"

static uint32_t crc_table[256];

/* Loops over its input: call it at CPL3. crc starts at 0, as with zlib. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	uint32_t c;
	unsigned int i, k;

	/* Built on first use, so that it too runs at CPL3; entry 0 is 0 even when built. */
	if (!crc_table[1]) {
		for (i = 0; i < 256; i++) {
			c = i;
			for (k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320 ^ (c >> 1) : c >> 1;
			crc_table[i] = c;
		}
	}
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
