#include "rng.h"

#include <sys/random.h>

/* Fills every writable segment; a chain with none is returned empty, as §5.4.6 allows. */
static void rng_notify(void *dev, struct virtio_mmio *t, unsigned queue)
{
	struct virtq_chain chain;
	bool pushed = false;

	(void)dev;
	while (virtio_queue_pop(t, queue, &chain) == 1) {
		uint32_t written = 0;

		for (unsigned i = chain.nr_out; i < chain.nr_out + chain.nr_in; i++) {
			ssize_t n = getrandom(chain.iov[i].iov_base, chain.iov[i].iov_len, 0);

			if (n < 0)
				break;
			written += n;
			if ((size_t)n < chain.iov[i].iov_len)
				break;
		}
		virtio_queue_push(t, queue, chain.head, written);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(t, queue);
}

static void rng_reset(void *dev)
{
	(void)dev; /* no state beyond the transport's */
}

const struct virtio_device_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_ENTROPY,
	.nr_queues = 1,
	.queue_max = 256,
	.queue_notify = rng_notify,
	.reset = rng_reset,
};
