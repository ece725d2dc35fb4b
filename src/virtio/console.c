#include "console.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

enum { RECEIVEQ, TRANSMITQ };

struct virtio_console {
	struct virtio_mmio *t;
	int out_fd;
	int space_fd;	  /* tells the terminal side that receive buffers are back */
	bool want_space; /* input was refused for lack of receive buffers */
};

static void console_attach(void *dev, struct virtio_mmio *t)
{
	((struct virtio_console *)dev)->t = t;
}

static void transmit(struct virtio_console *con, struct virtio_mmio *t)
{
	struct virtq_chain chain;
	bool pushed = false;

	while (virtio_queue_pop(t, TRANSMITQ, &chain) == 1) {
		struct iovec *iov = chain.iov;
		int n = chain.nr_out;

		/* Write it all: a short write to a terminal must not lose guest output. */
		while (n > 0) {
			ssize_t w = writev(con->out_fd, iov, n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				break; /* the terminal went away; the guest carries on */
			while (n > 0 && (size_t)w >= iov->iov_len) {
				w -= iov->iov_len;
				iov++;
				n--;
			}
			if (n > 0) {
				iov->iov_base = (uint8_t *)iov->iov_base + w;
				iov->iov_len -= w;
			}
		}
		virtio_queue_push(t, TRANSMITQ, chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(t, TRANSMITQ);
}

static void console_notify(void *dev, struct virtio_mmio *t, unsigned queue)
{
	struct virtio_console *con = dev;

	if (queue == TRANSMITQ) {
		transmit(con, t);
	} else if (con->want_space) {
		con->want_space = false;
		eventfd_write(con->space_fd, 1);
	}
}

/* console_sink.receive: fills receive buffers with as much input as they hold. */
static size_t console_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct virtio_console *con = opaque;
	struct virtq_chain chain;
	size_t done = 0;

	virtio_mmio_lock(con->t);
	while (done < len && virtio_queue_pop(con->t, RECEIVEQ, &chain) == 1) {
		size_t n = virtq_write(&chain, 0, buf + done, len - done);

		virtio_queue_push(con->t, RECEIVEQ, chain.head, n);
		done += n;
	}
	if (done)
		virtio_queue_interrupt(con->t, RECEIVEQ);
	if (done < len)
		con->want_space = true;
	virtio_mmio_unlock(con->t);
	return done;
}

/*
 * want_space is the terminal side's, not the driver's: input waiting from before the
 * reset must still be delivered once the driver posts buffers again.
 */
static void console_reset(void *dev)
{
	(void)dev;
}

static int console_save(void *dev, struct state_writer *w)
{
	state_begin(w, "VCON", 1);
	state_put_u8(w, ((struct virtio_console *)dev)->want_space);
	return state_end(w);
}

static int console_load(void *dev, struct state_reader *r)
{
	bool want_space;

	if (state_open(r, "VCON") != 1)
		return -EINVAL;
	want_space = state_get_bool(r);
	if (state_close(r))
		return -EINVAL;
	((struct virtio_console *)dev)->want_space = want_space;
	return 0;
}

const struct virtio_device_ops virtio_console_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.nr_queues = 2,
	.queue_max = 256,
	.attach = console_attach,
	.queue_notify = console_notify,
	.reset = console_reset,
	.save = console_save,
	.load = console_load,
};

struct virtio_console *virtio_console_create(int out_fd)
{
	struct virtio_console *con = calloc(1, sizeof(*con));

	if (!con)
		return NULL;
	con->out_fd = out_fd;
	con->space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (con->space_fd < 0) {
		free(con);
		return NULL;
	}
	return con;
}

void virtio_console_free(struct virtio_console *con)
{
	if (!con)
		return;
	close(con->space_fd);
	free(con);
}

struct console_sink virtio_console_sink(struct virtio_console *con)
{
	return (struct console_sink){ console_receive, con, con->space_fd };
}
