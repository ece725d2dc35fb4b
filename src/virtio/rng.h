/* virtio-rng (virtio 1.2 §5.4): one queue of device-writable buffers filled by getrandom(). */
#ifndef SKIFF_VIRTIO_RNG_H
#define SKIFF_VIRTIO_RNG_H

#include "mmio.h"

extern const struct virtio_device_ops virtio_rng_ops;

#endif
