/* virtio-rng (virtio 1.2 §5.4): one queue of device-writable buffers, and the rng test. */
#include "virtio.h"

#define RNG_BYTES	64

struct rng_job {
	struct virtq *vq;
	uint8_t *buf;
	uint32_t got;
};

static struct virtio_dev rng_dev;
static struct virtq rng_vq;
static uint8_t rng_buf[RNG_BYTES];

/* CPL3: the device may fill less than asked for, so ask again for the rest. */
static uint64_t rng_fill_user(void *arg)
{
	struct rng_job *job = arg;
	struct virtq_buf buf;
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;
	uint32_t len;

	while (job->got < RNG_BYTES) {
		buf = (struct virtq_buf){ job->buf + job->got, RNG_BYTES - job->got, true };
		if (rdtsc() > deadline || virtq_add(job->vq, &buf, 1, NULL, job))
			return 1;
		virtq_kick(job->vq);
		while (!virtq_get(job->vq, &len)) {
			if (rdtsc() > deadline)
				return 1;
			cpu_relax();
		}
		job->got += len < RNG_BYTES - job->got ? len : RNG_BYTES - job->got;
	}
	return 0;
}

const char *test_rng(struct probe *p)
{
	struct rng_job job = { &rng_vq, rng_buf, 0 };
	const char *reason = virtio_find(p, VIRTIO_ID_RNG, &rng_dev);
	unsigned int i;

	if (!reason)
		reason = virtio_start(&rng_dev, BIT(VIRTIO_F_RING_EVENT_IDX));
	if (!reason)
		reason = virtq_init(&rng_dev, &rng_vq, 0);
	if (reason)
		return reason;
	virtio_ready(&rng_dev);
	if (user_run(p->bsp, rng_fill_user, &job))
		return "rng-timeout";
	printk("probe: rng bytes=%u\n", job.got);
	for (i = 1; i < RNG_BYTES; i++) {
		if (rng_buf[i] != rng_buf[0])
			return NULL;
	}
	return "all-equal";
}
