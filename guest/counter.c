/*
 * test=counter: a guest that keeps running and dirtying memory, for pause/resume, snapshot and
 * migration tests. About every 100 ms of TSC time it prints "probe: counter=N sum=X". Between
 * lines, at CPL3, it checks the next slice of a memory region against the pattern it last wrote
 * there and rewrites the slice with the next generation of the pattern.
 *
 * counter_mib=N sizes the region (default 4); counter_max=N passes after line N (absent or 0: run
 * until the VM is stopped); counter_ms=N sets the period (default 100; restore benchmarks use 1,
 * so that the first line after a restore marks when the guest runs again); counter_kib=N sets
 * the slice checked and rewritten per tick (default 1024, at most the region), which with the
 * period sets how fast the guest dirties memory. The lines depend only on N, counter_mib and
 * counter_kib, so two runs (paused or not, skiff or QEMU) print the same ones.
 *
 * Two options add I/O to every tick, at CPL3 after the memory slice, so that a guest restored
 * from a snapshot shows its devices still work. A failure ends the test with reason blk-... or
 * net-... (or that of opening the device); the lines stay as they are.
 * - counter_blk=1, with a virtio-blk disk of at least 64 sectors: before line N, sector N % 64
 *   gets the 8 bytes "skiffctr" and then N as 63 little-endian 64-bit words; it is read back
 *   and checked, and so is the sector written before line N - 1 (for a restored guest, the
 *   last one written before the snapshot).
 * - counter_net=PORT, with a virtio-net device: before line N, one UDP datagram "counter=N"
 *   from 10.0.2.15:40000 to 10.0.2.2:PORT, the host under user networking (net_ip=, net_gw=
 *   and net_peer='s address change them as for net-echo); the gateway is resolved with ARP at
 *   start. Frames received are dropped, their buffers given back.
 */
#include "virtio.h"

#define COUNTER_DEFAULT_MIB	4
#define COUNTER_DEFAULT_MS	100
#define COUNTER_DEFAULT_KIB	1024	/* checked and rewritten per tick: 256 pages */
#define PATTERN_GOLDEN		0x9e3779b97f4a7c15ULL
#define PATTERN_MIX		0xff51afd7ed558ccdULL
#define COUNTER_BLK_SECTORS	64
#define COUNTER_BLK_SIGNATURE	0x7274636666696b73ULL	/* "skiffctr" in memory order */
#define COUNTER_BLK_WORDS	(BLK_SECTOR / 8)
#define COUNTER_NET_MSG_MAX	32

struct counter {
	uint64_t *region;
	uint64_t words;
	uint64_t cursor;	/* words before it hold generation lap + 1, the rest lap */
	uint64_t lap;
	uint64_t sum;		/* of every word in the region, kept as they are rewritten */
	uint64_t period;	/* TSC ticks between lines */
	uint64_t slice;		/* words checked and rewritten per tick */
	uint64_t last;		/* TSC at the last line */
	uint64_t bad;		/* the word that did not match */
	uint64_t n;		/* the line this tick comes before */
	struct blk *blk;	/* counter_blk=1, else NULL */
	struct net *net;	/* counter_net=PORT, else NULL */
	const char *io_failure;
};

/* What a tick did, for the CPL0 side to report. */
enum tick_result {
	TICK_OK,
	TICK_PATTERN_MISMATCH,
	TICK_IO_FAILURE,
};

static struct blk counter_blk;
static struct net counter_net;
static uint64_t blk_out[COUNTER_BLK_WORDS], blk_in[COUNTER_BLK_WORDS];

/*
 * A word's value in a generation: for a given word every generation differs (a stale page
 * shows), and within a generation every word differs (a misplaced page shows).
 */
static uint64_t pattern(uint64_t word, uint64_t generation)
{
	return (word ^ generation * PATTERN_GOLDEN) * PATTERN_MIX;
}

/* CPL3: generation 0 everywhere. */
static uint64_t counter_fill(void *arg)
{
	struct counter *c = arg;
	uint64_t i;

	for (i = 0; i < c->words; i++) {
		c->region[i] = pattern(i, 0);
		c->sum += c->region[i];
	}
	return 0;
}

/* CPL3: checks that sector n % 64 holds line n's contents. */
static const char *blk_check(struct blk *blk, uint64_t n)
{
	uint32_t status, i;

	memset(blk_in, 0xff, sizeof(blk_in));
	status = blk_io(blk, BLK_T_IN, n % COUNTER_BLK_SECTORS, blk_in, BLK_SECTOR);
	if (status != BLK_S_OK)
		return blk_failure(status, "blk-read-error");
	if (blk_in[0] != COUNTER_BLK_SIGNATURE)
		return "blk-mismatch";
	for (i = 1; i < COUNTER_BLK_WORDS; i++) {
		if (blk_in[i] != n)
			return "blk-mismatch";
	}
	return NULL;
}

/* CPL3: line n's sector out and back in, and line n - 1's still there. */
static const char *blk_tick(struct blk *blk, uint64_t n)
{
	const char *reason;
	uint32_t status, i;

	blk_out[0] = COUNTER_BLK_SIGNATURE;
	for (i = 1; i < COUNTER_BLK_WORDS; i++)
		blk_out[i] = n;
	status = blk_io(blk, BLK_T_OUT, n % COUNTER_BLK_SECTORS, blk_out, BLK_SECTOR);
	if (status != BLK_S_OK)
		return blk_failure(status, "blk-write-error");
	reason = blk_check(blk, n);
	if (!reason && n > 1)
		reason = blk_check(blk, n - 1);
	return reason;
}

/* CPL3: "counter=N" to the host; waits for a transmit buffer only when all are in flight. */
static const char *net_tick(struct net *net, uint64_t n)
{
	char digits[20], msg[COUNTER_NET_MSG_MAX] = "counter=";
	uint32_t len = sizeof("counter=") - 1, k = 0;
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;

	do {
		digits[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (k)
		msg[len++] = digits[--k];
	/* Polling takes back what the device sent and re-posts what it received. */
	net_poll(net);
	while (net_send_udp(net, msg, len)) {
		if (rdtsc() > deadline)
			return "net-tx-stuck";
		cpu_relax();
		net_poll(net);
	}
	return NULL;
}

/* CPL3: the transmit and receive buffers out, and the gateway's MAC address found. */
static uint64_t counter_net_start(void *arg)
{
	struct counter *c = arg;

	net_start(c->net);
	if (!net_resolve_gateway(c->net)) {
		c->io_failure = "net-arp-timeout";
		return TICK_IO_FAILURE;
	}
	return TICK_OK;
}

/*
 * CPL3: waits out the period, then checks and rewrites one slice, then does the tick's I/O. The
 * wait is measured from the last line, so after a pause (or a TSC that jumped either way) the next
 * line comes at once and the ones missed are not made up.
 */
static uint64_t counter_tick(void *arg)
{
	struct counter *c = arg;
	uint64_t i, end, old, now;

	while ((now = rdtsc()) - c->last < c->period)
		cpu_relax();
	c->last = now;
	end = c->cursor + c->slice;
	if (end > c->words)
		end = c->words;
	for (i = c->cursor; i < end; i++) {
		old = c->region[i];
		if (old != pattern(i, c->lap)) {
			c->bad = i;
			return TICK_PATTERN_MISMATCH;
		}
		c->region[i] = pattern(i, c->lap + 1);
		c->sum += c->region[i] - old;
	}
	c->cursor = end;
	if (c->cursor == c->words) {
		c->cursor = 0;
		c->lap++;
	}
	if (c->blk)
		c->io_failure = blk_tick(c->blk, c->n);
	if (c->net && !c->io_failure)
		c->io_failure = net_tick(c->net, c->n);
	return c->io_failure ? TICK_IO_FAILURE : TICK_OK;
}

/* The first RAM above the image that holds bytes, or 0. */
static uint64_t find_region(const struct probe *p, uint64_t bytes)
{
	uint64_t start, end;
	unsigned int i;

	for (i = 0; i < p->memmap_count; i++) {
		const struct memmap_entry *e = &p->memmap[i];

		if (e->type != E820_RAM)
			continue;
		start = (e->addr + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		if (start < (uint64_t)image_end)
			start = (uint64_t)image_end;
		end = e->addr + e->size;
		if (end > p->mapped_end)
			end = p->mapped_end;
		if (start < end && bytes <= end - start)
			return start;
	}
	return 0;
}

const char *test_counter(struct probe *p)
{
	struct counter c = { 0 };
	uint64_t mib = COUNTER_DEFAULT_MIB, max = 0, ms = COUNTER_DEFAULT_MS, blk = 0, port = 0;
	uint64_t kib = COUNTER_DEFAULT_KIB;
	uint64_t hz, n;
	const char *s, *reason;

	s = cmdline_value(p, "counter_mib", NULL);
	if (s && (!parse_u64(s, &mib) || !mib || mib > p->mapped_end / MIB))
		return "bad-counter-mib";
	s = cmdline_value(p, "counter_max", NULL);
	if (s && !parse_u64(s, &max))
		return "bad-counter-max";
	s = cmdline_value(p, "counter_ms", NULL);
	if (s && (!parse_u64(s, &ms) || !ms || ms > 60000))
		return "bad-counter-ms";
	s = cmdline_value(p, "counter_kib", NULL);
	if (s && (!parse_u64(s, &kib) || !kib || kib > mib * 1024))
		return "bad-counter-kib";
	s = cmdline_value(p, "counter_blk", NULL);
	if (s && (!parse_u64(s, &blk) || blk > 1))
		return "bad-counter-blk";
	s = cmdline_value(p, "counter_net", NULL);
	if (s && (!parse_u64(s, &port) || !port || port > 0xffff))
		return "bad-counter-net";
	c.region = (uint64_t *)find_region(p, mib * MIB);
	if (!c.region)
		return "no-room";
	reason = tsc_calibrate(&hz);
	if (reason)
		return reason;
	c.words = mib * MIB / 8;
	c.slice = kib * 1024 / 8;
	c.period = hz * ms / 1000;
	if (blk) {
		reason = blk_open(p, &counter_blk);
		if (reason)
			return reason;
		if (counter_blk.sectors < COUNTER_BLK_SECTORS)
			return "blk-too-small";
		c.blk = &counter_blk;
	}
	if (port) {
		reason = net_open(p, &counter_net);
		if (reason)
			return reason;
		counter_net.peer_port = (uint16_t)port;
		c.net = &counter_net;
		if (user_run(p->bsp, counter_net_start, &c))
			return c.io_failure;
	}
	user_run(p->bsp, counter_fill, &c);
	c.last = rdtsc();
	for (n = 1; !max || n <= max; n++) {
		c.n = n;
		switch (user_run(p->bsp, counter_tick, &c)) {
		case TICK_OK:
			break;
		case TICK_PATTERN_MISMATCH:
			printk("probe: counter mismatch offset=%lu lap=%lu\n", c.bad * 8, c.lap);
			return "pattern-mismatch";
		default:
			return c.io_failure;
		}
		/* Port I/O faults at CPL3 (IOPL 0, no I/O bitmap), so lines are printed here. */
		printk("probe: counter=%lu sum=%x\n", n, (uint32_t)(c.sum ^ c.sum >> 32));
	}
	return NULL;
}
