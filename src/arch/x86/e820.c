#include "layout.h"
#include "tables.h"

unsigned e820_build(const struct guest_mem *mem, struct e820_entry *out)
{
	unsigned n = 0;

	/*
	 * EBDA, the legacy VGA/ISA window and the BIOS area are one reserved range, as on a
	 * PC; Linux's PVH entry reserves the ISA window itself, so this way both boot paths
	 * report the very map skiff wrote.
	 */
	out[n++] = (struct e820_entry){ 0, LAYOUT_EBDA, E820_RAM };
	out[n++] = (struct e820_entry){ LAYOUT_EBDA, LAYOUT_HIGH_MEM - LAYOUT_EBDA, E820_RESERVED };
	out[n++] = (struct e820_entry){ LAYOUT_HIGH_MEM, guest_mem_low_end(mem) - LAYOUT_HIGH_MEM,
					E820_RAM };
	for (unsigned i = 1; i < mem->nr_regions; i++)
		out[n++] = (struct e820_entry){ mem->regions[i].gpa, mem->regions[i].size,
						E820_RAM };
	return n;
}

void table_checksum(void *p, size_t len, uint8_t *sum_byte)
{
	uint8_t sum = 0;

	*sum_byte = 0;
	for (size_t i = 0; i < len; i++)
		sum += ((uint8_t *)p)[i];
	*sum_byte = -sum;
}
