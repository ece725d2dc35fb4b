/*
 * libFuzzer target: the split-virtqueue parser. The input becomes the first 64 KiB of a
 * small guest RAM holding a 16-entry queue (descriptors, rings, indirect tables, buffers
 * all driver-controlled); every chain the parser accepts must lie inside guest RAM.
 */
#include "../../src/log.h"
#include "../../src/virtio/queue.h"

#include <assert.h>
#include <string.h>

#define RAM_SIZE (256 << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[RAM_SIZE];
	struct guest_mem mem;
	struct virtq q = { .size = 16, .desc = 0x0, .avail = 0x100, .used = 0x200,
			   .indirect = true, .event_idx = size & 1 };
	static struct virtq_chain chain;
	static const uint8_t reply[64] = { 1 };

	log_set_level(LOG_OFF);
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data, size < RAM_SIZE / 4 ? size : RAM_SIZE / 4);
	guest_mem_wrap(&mem, ram, RAM_SIZE, 0xc0000000, 0x100000000);
	if (!virtq_map(&q, &mem))
		return 0;
	for (int i = 0; i < 64 && virtq_pop(&q, &mem, &chain) == 1; i++) {
		for (unsigned s = 0; s < chain.nr_out + chain.nr_in; s++) {
			uint8_t *p = chain.iov[s].iov_base;

			assert(p >= ram && p + chain.iov[s].iov_len <= ram + RAM_SIZE);
		}
		virtq_write(&chain, 0, reply, chain.in_len < sizeof(reply) ? chain.in_len
									 : sizeof(reply));
		virtq_push(&q, chain.head, chain.in_len);
		virtq_should_notify(&q);
	}
	return 0;
}
