/*
 * virtio-console (virtio 1.2 §5.3), one port, no multiport: transmitq to an output fd,
 * receiveq fed from the terminal through the console_sink interface.
 */
#ifndef SKIFF_VIRTIO_CONSOLE_H
#define SKIFF_VIRTIO_CONSOLE_H

#include "mmio.h"

#include "../vmm/console.h"

struct virtio_console;

extern const struct virtio_device_ops virtio_console_ops;

/* Returns NULL with errno set on failure. */
struct virtio_console *virtio_console_create(int out_fd);
void virtio_console_free(struct virtio_console *con);
/* Where the terminal's input goes. */
struct console_sink virtio_console_sink(struct virtio_console *con);

#endif
