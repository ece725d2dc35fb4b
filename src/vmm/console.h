/* The terminal side of the guest's console: stdin to COM1 or virtio-console, with
 * back-pressure and escapes. */
#ifndef SKIFF_CONSOLE_H
#define SKIFF_CONSOLE_H

#include "event.h"

#include "../terminal.h"

#include <stddef.h>
#include <stdint.h>

/* Where input goes: a device that takes what fits and signals space_fd for the rest. */
struct console_sink {
	size_t (*receive)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
	int space_fd; /* eventfd written when a sink that refused input can take more */
};

struct console {
	struct event_loop *loop;
	struct console_sink sink;
	struct terminal *term;
	void (*quit)(void *opaque); /* Ctrl-A x */
	void *quit_opaque;
	struct event_source in_src, space_src;
	int in_fd; /* -1 once closed or not pollable */
	bool waiting_for_space;
	uint8_t buf[4096]; /* input the guest has not taken yet; stdin waits meanwhile */
	size_t off, len;
};

/* Starts feeding in_fd to serial. A regular file or /dev/null cannot be polled: then the
 * guest simply gets no input. */
void console_start(struct console *con, struct event_loop *loop, int in_fd,
		   struct console_sink sink, struct terminal *term, void (*quit)(void *),
		   void *quit_opaque);

#endif
