/*
 * virtio-console (virtio 1.2 §5.3) without multiport: a receiveq and a transmitq, and the
 * console-echo test. The CPL0 part only sleeps until the device interrupts and acknowledges it;
 * the rings are worked at CPL3.
 */
#include "virtio.h"

#define CONSOLE_RX_QUEUE	0
#define CONSOLE_TX_QUEUE	1
#define CONSOLE_BUFS		16
#define CONSOLE_BUF_SIZE	256
#define CONSOLE_VECTOR		0x30

struct console_job {
	unsigned int lines;	/* complete lines before quit */
	unsigned int len;	/* of the line so far */
	char line[8];
	bool after_cr;
	const char *reason;
};

static struct virtio_dev con_dev;
static struct virtq con_rx;
static struct virtq con_tx;
static uint8_t con_bufs[CONSOLE_BUFS][CONSOLE_BUF_SIZE];

static const char *console_open(const struct probe *p)
{
	const char *reason = virtio_find(p, VIRTIO_ID_CONSOLE, &con_dev);

	if (!reason)
		reason = virtio_start(&con_dev, BIT(VIRTIO_F_RING_INDIRECT_DESC) |
						BIT(VIRTIO_F_RING_EVENT_IDX));
	if (!reason)
		reason = virtq_init(&con_dev, &con_rx, CONSOLE_RX_QUEUE);
	if (!reason)
		reason = virtq_init(&con_dev, &con_tx, CONSOLE_TX_QUEUE);
	if (reason)
		return reason;
	virtio_ready(&con_dev);
	return NULL;
}

static void rx_post(uint8_t *buf)
{
	struct virtq_buf b = { buf, CONSOLE_BUF_SIZE, true };

	virtq_add(&con_rx, &b, 1, NULL, buf);
}

/* CPL3 */
static uint64_t console_start_user(void *arg)
{
	unsigned int i;

	(void)arg;
	for (i = 0; i < CONSOLE_BUFS && i < con_rx.size; i++)
		rx_post(con_bufs[i]);
	virtq_kick(&con_rx);
	return 0;
}

/* CPL3: the received buffer itself goes out, so that it needs no copy; false on a timeout. */
static bool console_send(uint8_t *buf, uint32_t len)
{
	struct virtq_buf b = { buf, len, false };
	uint64_t deadline = rdtsc() + TIMEOUT_TSC;
	uint32_t done;

	if (virtq_add(&con_tx, &b, 1, NULL, buf))
		return false;
	virtq_kick(&con_tx);
	while (!virtq_get(&con_tx, &done)) {
		if (rdtsc() > deadline)
			return false;
		cpu_relax();
	}
	return true;
}

/* Lines end at CR, LF or CRLF, so raw and cooked terminals both work; true at "quit". */
static bool console_byte(struct console_job *job, char c)
{
	bool crlf = c == '\n' && job->after_cr;

	job->after_cr = c == '\r';
	if (c != '\n' && c != '\r') {
		if (job->len < sizeof(job->line))
			job->line[job->len++] = c;
		return false;
	}
	if (crlf)
		return false;
	if (job->len == 4 && !memcmp(job->line, "quit", 4))
		return true;
	job->lines++;
	job->len = 0;
	return false;
}

/* CPL3: echoes what came in and posts the buffers again; 1 at "quit" or on failure. */
static uint64_t console_echo_user(void *arg)
{
	struct console_job *job = arg;
	bool quit = false, posted = false;
	uint32_t len, i;
	uint8_t *buf;

	while (!quit && (buf = virtq_get(&con_rx, &len))) {
		if (len > CONSOLE_BUF_SIZE)
			len = CONSOLE_BUF_SIZE;
		if (len && !console_send(buf, len)) {
			job->reason = "tx-timeout";
			return 1;
		}
		for (i = 0; i < len && !quit; i++)
			quit = console_byte(job, (char)buf[i]);
		rx_post(buf);
		posted = true;
	}
	if (posted)
		virtq_kick(&con_rx);
	return quit;
}

const char *test_console_echo(struct probe *p)
{
	struct console_job job = { 0 };
	const char *reason = console_open(p);

	if (reason)
		return reason;
	irq_install(CONSOLE_VECTOR);
	lapic_enable();
	ioapic_route(&p->plat, con_dev.irq, CONSOLE_VECTOR, lapic_id());
	user_run(p->bsp, console_start_user, NULL);
	printk("probe: console ready\n");
	do {
		/* A buffer used after virtq_arm looked interrupts, and sti; hlt cannot miss it. */
		while (!virtq_arm(&con_rx)) {
			irq_wait();
			virtio_irq_ack(&con_dev);
		}
	} while (!user_run(p->bsp, console_echo_user, &job));
	if (job.reason)
		return job.reason;
	printk("probe: console-echo lines=%u\n", job.lines);
	return NULL;
}
