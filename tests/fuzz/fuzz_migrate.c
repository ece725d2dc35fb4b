/*
 * libFuzzer target: the destination's side of the live-migration stream after HELLO:
 * frames (header, CRC, sequence), then RAM, ZERO, DISK and STATE messages checked against a
 * 16 MiB guest with one 1 MiB disk, until DONE. The input is the stream, read from a memfd.
 */
#include "../../src/log.h"
#include "../../src/migrate/incoming.h"
#include "../../src/arch/x86/layout.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct incoming in;
	static bool ready;

	if (!ready) {
		log_set_level(LOG_OFF);
		in.buf = malloc(MIGRATE_MAX_PAYLOAD);
		if (!in.buf || guest_mem_create(&in.ram, 16 << 20, LAYOUT_MMIO_HOLE,
						LAYOUT_MMIO_HOLE_END, HUGE_PAGES_NONE))
			abort();
		in.with_disks = true;
		in.nr_disks = 1;
		in.disks[0].size = 1 << 20;
		in.disks[0].fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
		if (in.disks[0].fd < 0 || ftruncate(in.disks[0].fd, 1 << 20) < 0)
			abort();
		ready = true;
	}
	in.s = (struct migrate_stream){ .fd = memfd_create("fuzz-stream", MFD_CLOEXEC),
					.peer = "fuzz" };
	if (in.s.fd < 0 || write(in.s.fd, data, size) != (ssize_t)size ||
	    lseek(in.s.fd, 0, SEEK_SET) < 0)
		abort();
	incoming_receive(&in);
	free(in.state);
	in.state = NULL;
	close(in.s.fd);
	return 0;
}
