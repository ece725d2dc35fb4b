/*
 * The controlling terminal as the guest's console: raw input while the VM runs, restored
 * on every way out (normal exit, fatal signal), and QEMU's Ctrl-A escapes.
 */
#ifndef SKIFF_TERMINAL_H
#define SKIFF_TERMINAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TERMINAL_ESCAPE 0x01 /* Ctrl-A */

struct terminal {
	bool is_tty;	  /* escapes apply only to a terminal, never to piped input */
	bool escape_seen; /* the last byte was Ctrl-A */
};

/* Puts fd in raw mode if it is a terminal. Returns 0 or -errno. */
int terminal_setup(struct terminal *t, int fd);
/* Restores the terminal's original mode; idempotent and async-signal-safe. */
void terminal_restore(void);
/* Handles escapes in place; returns how many bytes remain for the guest; sets *quit. */
size_t terminal_filter(struct terminal *t, uint8_t *buf, size_t len, bool *quit);

#endif
