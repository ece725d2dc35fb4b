#include "boot_timer.h"

#include "../log.h"

#include <inttypes.h>
#include <string.h>

void boot_timer_init(struct boot_timer *bt, struct timespec start)
{
	bt->start = start;
	bt->reported = false;
}

uint64_t boot_timer_elapsed_us(struct timespec start, struct timespec now)
{
	int64_t ns = (now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec);

	return ns < 0 ? 0 : ns / 1000;
}

void boot_timer_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write)
{
	struct boot_timer *bt = opaque;
	struct timespec now;

	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (data[0] != BOOT_TIMER_MAGIC || __atomic_exchange_n(&bt->reported, true,
								 __ATOMIC_SEQ_CST))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	log_info("guest boot time: %" PRIu64 " us since skiff started",
		 boot_timer_elapsed_us(bt->start, now));
}
