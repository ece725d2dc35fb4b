#include "bus.h"

#include "../log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int bus_register(struct bus *bus, uint64_t start, uint64_t len, bus_access_fn access,
		 void *opaque)
{
	unsigned i;

	if (len == 0 || start + len < start)
		return -EINVAL;
	if (bus->nr_ranges == BUS_MAX_RANGES)
		return -ENOSPC;
	for (i = 0; i < bus->nr_ranges && bus->ranges[i].start < start; i++)
		;
	if (i > 0 && bus->ranges[i - 1].start + bus->ranges[i - 1].len > start)
		return -EEXIST;
	if (i < bus->nr_ranges && start + len > bus->ranges[i].start)
		return -EEXIST;
	memmove(&bus->ranges[i + 1], &bus->ranges[i],
		(bus->nr_ranges - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct bus_range){ start, len, access, opaque };
	bus->nr_ranges++;
	return 0;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr_ranges;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->start)
			hi = mid;
		else if (addr - r->start >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

void bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);

	/* An access must fit inside the range it starts in, or nobody claims it. */
	if (r && len <= r->len - (addr - r->start)) {
		r->access(r->opaque, addr - r->start, data, len, is_write);
		return;
	}
	if (!is_write)
		memset(data, 0xff, len);
	atomic_fetch_add(&bus->unclaimed, 1);
	if (!atomic_exchange(&bus->unclaimed_logged, true))
		log_debug("unclaimed %s %s at 0x%" PRIx64 " (%u bytes); later ones are only counted",
			  bus->name, is_write ? "write" : "read", addr, len);
}
