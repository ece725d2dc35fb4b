#include "console.h"

#include "../log.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void read_input(void *opaque);
static void space_available(void *opaque);

static void push_input(struct console *con)
{
	con->off += con->sink.receive(con->sink.opaque, con->buf + con->off, con->len - con->off);
	if (con->off < con->len) {
		if (!con->waiting_for_space) {
			if (con->in_fd >= 0)
				event_del(con->loop, &con->in_src);
			event_add(con->loop, &con->space_src, con->sink.space_fd, space_available,
				  con);
			con->waiting_for_space = true;
		}
		return;
	}
	con->off = con->len = 0;
	if (con->waiting_for_space) {
		event_del(con->loop, &con->space_src);
		if (con->in_fd >= 0)
			event_add(con->loop, &con->in_src, con->in_fd, read_input, con);
		con->waiting_for_space = false;
	}
}

static void space_available(void *opaque)
{
	struct console *con = opaque;
	eventfd_t unused;

	eventfd_read(con->sink.space_fd, &unused);
	push_input(con);
}

static void read_input(void *opaque)
{
	struct console *con = opaque;
	ssize_t n = read(con->in_fd, con->buf, sizeof(con->buf));
	bool quit;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* End of input: the guest keeps running without a keyboard. */
		event_del(con->loop, &con->in_src);
		con->in_fd = -1;
		return;
	}
	con->off = 0;
	con->len = terminal_filter(con->term, con->buf, n, &quit);
	if (quit) {
		log_info("Ctrl-A x: stopping the VM");
		con->quit(con->quit_opaque);
		return;
	}
	push_input(con);
}

void console_start(struct console *con, struct event_loop *loop, int in_fd,
		   struct console_sink sink, struct terminal *term, void (*quit)(void *),
		   void *quit_opaque)
{
	*con = (struct console){
		.loop = loop, .sink = sink, .term = term, .quit = quit,
		.quit_opaque = quit_opaque, .in_fd = in_fd,
	};
	if (in_fd < 0 || event_add(loop, &con->in_src, in_fd, read_input, con) < 0)
		con->in_fd = -1;
}
