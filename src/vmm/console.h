/* The terminal side of COM1: stdin to the guest's UART, with back-pressure and escapes. */
#ifndef SKIFF_CONSOLE_H
#define SKIFF_CONSOLE_H

#include "event.h"

#include "../devices/serial.h"
#include "../terminal.h"

#include <stddef.h>
#include <stdint.h>

struct console {
	struct event_loop *loop;
	struct serial *serial;
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
		   struct serial *serial, struct terminal *term, void (*quit)(void *),
		   void *quit_opaque);

#endif
