/*
 * The destination's side of the stream, between HELLO and DONE (dest.c); apart so that a
 * fuzzer can drive it.
 */
#ifndef SKIFF_MIGRATE_INCOMING_H
#define SKIFF_MIGRATE_INCOMING_H

#include "stream.h"

#include "../vmm/vm.h"

#include <jansson.h>

struct incoming {
	struct migrate_stream s;
	struct guest_mem ram;
	const struct vm_config *base; /* the command line's: its --disk paths replace the source's */
	uint32_t nr_vcpus;
	json_t *config;		      /* the source's configuration, from HELLO */
	bool with_disks;
	enum console_kind console;
	bool prebuilt;		      /* the VM exists already, paused: it owns ram */
	unsigned nr_disks;
	struct {
		uint64_t size;
		int fd;		/* with disks: the image being written here */
		bool created;	/* removed again if the migration fails */
	} disks[VM_MAX_DISKS];
	uint8_t *buf; /* one frame */
	uint8_t *state;
	size_t state_len;
	uint32_t memory_crc;
};

/*
 * Receives RAM, ZERO, DISK and STATE messages into in (its RAM, its disks' fds, its state)
 * until DONE; every offset and length is checked against what HELLO set up. 0, or -EPROTO
 * or -errno after a log line.
 */
int incoming_receive(struct incoming *in);

#endif
