/*
 * The boot-time device: a guest writes BOOT_TIMER_MAGIC to port PORT_BOOT_TIMER (for
 * example its init, through /dev/port) and skiff logs, at info level, the microseconds
 * since it started. Like Firecracker's boot timer, it measures a whole boot from outside.
 */
#ifndef SKIFF_BOOT_TIMER_H
#define SKIFF_BOOT_TIMER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define BOOT_TIMER_MAGIC 123

struct boot_timer {
	struct timespec start; /* when skiff's main() began */
	bool reported;	       /* only the first write counts */
};

void boot_timer_init(struct boot_timer *bt, struct timespec start);
void boot_timer_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write);
/* Microseconds from start to now. */
uint64_t boot_timer_elapsed_us(struct timespec start, struct timespec now);

#endif
