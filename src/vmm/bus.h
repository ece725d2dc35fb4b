/*
 * An address space of device ranges (port I/O or MMIO). Devices register before the
 * vCPUs start; afterwards the bus is read-only and vCPU threads dispatch without a lock.
 */
#ifndef SKIFF_BUS_H
#define SKIFF_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_RANGES 32

/* One handler signature for every device: offset is relative to the range's start. */
typedef void (*bus_access_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      bool is_write);

struct bus_range {
	uint64_t start;
	uint64_t len;
	bus_access_fn access;
	void *opaque;
};

struct bus {
	const char *name; /* "pio" or "mmio", for the log */
	unsigned nr_ranges;
	struct bus_range ranges[BUS_MAX_RANGES]; /* sorted by start, never overlapping */
	atomic_uint_fast64_t unclaimed;	 /* accesses nobody handled */
	atomic_bool unclaimed_logged;
};

void bus_init(struct bus *bus, const char *name);
/* Returns 0, -EEXIST if the range overlaps another, -ENOSPC if the bus is full. */
int bus_register(struct bus *bus, uint64_t start, uint64_t len, bus_access_fn access,
		 void *opaque);
/* Dispatches one access; unclaimed reads return all-ones and are counted. */
void bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
