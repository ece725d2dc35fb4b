/* Constants of the virtio 1.2 specification shared by the transport and the devices. */
#ifndef SKIFF_VIRTIO_H
#define SKIFF_VIRTIO_H

/* Device status (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	0x01
#define VIRTIO_STATUS_DRIVER		0x02
#define VIRTIO_STATUS_DRIVER_OK		0x04
#define VIRTIO_STATUS_FEATURES_OK	0x08
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

/* Reserved feature bits (§6). */
#define VIRTIO_F_RING_INDIRECT_DESC	28
#define VIRTIO_F_RING_EVENT_IDX		29
#define VIRTIO_F_VERSION_1		32

/* Device IDs (§5). */
#define VIRTIO_ID_NET			1
#define VIRTIO_ID_BLOCK			2
#define VIRTIO_ID_CONSOLE		3
#define VIRTIO_ID_ENTROPY		4

#define VIRTIO_BIT(n)			(1ULL << (n))

#endif
