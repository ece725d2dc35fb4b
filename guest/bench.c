/*
 * Benchmarks for bench/: virtio-blk throughput and IOPS, virtio-net transmit rate. The loops run
 * at CPL3 and poll; time is the TSC, calibrated once against the CMOS RTC's seconds, which both
 * skiff and QEMU provide.
 */
#include "virtio.h"

#define CMOS_INDEX		0x70
#define CMOS_DATA		0x71
#define CMOS_SECONDS		0x00
#define US_PER_S		1000000ULL
#define RANDOM_BLOCK		4096
#define NET_BENCH_SECONDS	2

enum blk_phase { SEQ_READ, SEQ_WRITE, RANDOM_QD1, RANDOM_DEEP, BLK_PHASES };

struct bench_result {
	uint64_t amount;	/* bytes or requests */
	uint64_t tsc;
};

struct blk_bench {
	struct blk *blk;
	uint64_t hz;
	uint64_t disk_bytes;
	uint64_t random_state;
	struct bench_result result[BLK_PHASES];
	const char *reason;
};

struct net_bench {
	struct net *net;
	uint64_t hz;
	struct bench_result result;
	const char *reason;
};

static struct blk bench_blk;
static struct net bench_net;
static const uint8_t bench_payload[NET_UDP_MAX];

static uint8_t cmos_seconds(void)
{
	outb(CMOS_INDEX, CMOS_SECONDS);
	return inb(CMOS_DATA);
}

/* Waits for the seconds register to change, false if it does not within TIMEOUT_TSC. */
static bool rtc_next_second(void)
{
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;
	uint8_t now = cmos_seconds();

	while (cmos_seconds() == now) {
		if (rdtsc() > deadline)
			return false;
	}
	return true;
}

/* TSC ticks from one RTC second's start to the next (CPL0: port I/O); counter.c uses it too. */
const char *tsc_calibrate(uint64_t *hz)
{
	uint64_t start;

	if (!rtc_next_second())
		return "rtc-stuck";
	start = rdtsc();
	if (!rtc_next_second())
		return "rtc-stuck";
	*hz = rdtsc() - start;
	return NULL;
}

static uint64_t elapsed_us(const struct bench_result *r, uint64_t hz)
{
	uint64_t us = r->tsc * US_PER_S / hz;

	return us ? us : 1;
}

/* MiB/s in tenths, so that slow paths still show a difference. */
static uint64_t mibps_tenths(const struct bench_result *r, uint64_t hz)
{
	return r->amount * 10 * US_PER_S / elapsed_us(r, hz) / MIB;
}

static void print_mibps(const char *what, const struct bench_result *r, uint64_t hz)
{
	uint64_t tenths = mibps_tenths(r, hz);

	printk("probe: bench %s MiBps=%lu.%lu\n", what, tenths / 10, tenths % 10);
}

static uint64_t per_second(const struct bench_result *r, uint64_t hz)
{
	return r->amount * US_PER_S / elapsed_us(r, hz);
}

static uint64_t bench_fail(struct blk_bench *b, uint32_t status)
{
	b->reason = blk_failure(status, "io-error");
	return 1;
}

/* CPL3: 1 MiB requests one at a time, through the disk and round again, for a second. */
static uint64_t bench_sequential(struct blk_bench *b, uint32_t type, struct bench_result *r)
{
	uint64_t start = rdtsc(), off = 0;
	uint32_t len, status;

	while (rdtsc() - start < b->hz) {
		len = b->disk_bytes - off < MIB ? (uint32_t)(b->disk_bytes - off) : MIB;
		status = blk_io(b->blk, type, off / BLK_SECTOR, blk_buffers[0], len);
		if (status != BLK_S_OK)
			return bench_fail(b, status);
		r->amount += len;
		off = off + len == b->disk_bytes ? 0 : off + len;
	}
	r->tsc = rdtsc() - start;
	return 0;
}

/* xorshift64* (Vigna): a block offset, uniform enough for a benchmark. */
static uint64_t random_sector(struct blk_bench *b)
{
	b->random_state ^= b->random_state >> 12;
	b->random_state ^= b->random_state << 25;
	b->random_state ^= b->random_state >> 27;
	return (b->random_state * 0x2545f4914f6cdd1dULL >> 11) % (b->disk_bytes / RANDOM_BLOCK) *
	       (RANDOM_BLOCK / BLK_SECTOR);
}

/* Cannot fail: no more requests are in flight than max_depth, which the ring holds. */
static void random_submit(struct blk_bench *b, struct blk_request *req)
{
	uint8_t *buf = blk_buffers[0] + (req - b->blk->requests) * RANDOM_BLOCK;

	blk_submit(b->blk, req, BLK_T_IN, random_sector(b), buf, RANDOM_BLOCK);
}

/* CPL3: depth 4 KiB reads in flight for a second; each completion sends the next. */
static uint64_t bench_random(struct blk_bench *b, unsigned int depth, struct bench_result *r)
{
	struct blk_request *req;
	unsigned int i, in_flight = depth;
	uint64_t start = rdtsc();
	uint32_t len;

	for (i = 0; i < depth; i++)
		random_submit(b, &b->blk->requests[i]);
	virtq_kick(&b->blk->vq);
	while (in_flight) {
		req = blk_wait(b->blk);
		if (!req)
			return bench_fail(b, BLK_S_TIMEOUT);
		/* Everything finished by now is answered with a single kick. */
		do {
			if (req->status != BLK_S_OK)
				return bench_fail(b, req->status);
			r->amount++;
			if (rdtsc() - start < b->hz)
				random_submit(b, req);
			else
				in_flight--;
		} while ((req = virtq_get(&b->blk->vq, &len)));
		virtq_kick(&b->blk->vq);
	}
	r->tsc = rdtsc() - start;
	return 0;
}

/* CPL3: writes first, so that the reads find data rather than holes in the host's file. */
static uint64_t blk_bench_user(void *arg)
{
	struct blk_bench *b = arg;

	return bench_sequential(b, BLK_T_OUT, &b->result[SEQ_WRITE]) ||
	       bench_sequential(b, BLK_T_IN, &b->result[SEQ_READ]) ||
	       bench_random(b, 1, &b->result[RANDOM_QD1]) ||
	       bench_random(b, b->blk->max_depth, &b->result[RANDOM_DEEP]);
}

const char *test_blk_bench(struct probe *p)
{
	struct blk_bench b = { .blk = &bench_blk, .random_state = 0x736b696666ULL };
	const char *reason = blk_open(p, &bench_blk);

	if (!reason)
		reason = tsc_calibrate(&b.hz);
	if (reason)
		return reason;
	b.disk_bytes = bench_blk.sectors * BLK_SECTOR;
	if (b.disk_bytes < RANDOM_BLOCK)
		return "disk-too-small";
	if (user_run(p->bsp, blk_bench_user, &b))
		return b.reason;
	print_mibps("blk seq-read", &b.result[SEQ_READ], b.hz);
	print_mibps("blk seq-write", &b.result[SEQ_WRITE], b.hz);
	printk("probe: bench blk randread-4k qd=1 iops=%lu\n",
	       per_second(&b.result[RANDOM_QD1], b.hz));
	printk("probe: bench blk randread-4k qd=%u iops=%lu\n", bench_blk.max_depth,
	       per_second(&b.result[RANDOM_DEEP], b.hz));
	return NULL;
}

/* CPL3: full-size datagrams to the peer for NET_BENCH_SECONDS, counted when the device is done. */
static uint64_t net_bench_user(void *arg)
{
	struct net_bench *b = arg;
	uint64_t start;

	net_start(b->net);
	if (!net_resolve_gateway(b->net)) {
		b->reason = "arp-timeout";
		return 1;
	}
	start = rdtsc();
	while (rdtsc() - start < NET_BENCH_SECONDS * b->hz) {
		while (!net_send_udp(b->net, bench_payload, NET_UDP_MAX))
			;
		b->result.amount += net_poll(b->net) * NET_UDP_MAX;
	}
	b->result.tsc = rdtsc() - start;
	return 0;
}

const char *test_net_bench(struct probe *p)
{
	struct net_bench b = { .net = &bench_net };
	const char *reason = net_open(p, &bench_net);

	if (!reason)
		reason = tsc_calibrate(&b.hz);
	if (reason)
		return reason;
	if (user_run(p->bsp, net_bench_user, &b))
		return b.reason;
	print_mibps("net tx", &b.result, b.hz);
	return NULL;
}
