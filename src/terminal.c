#include "terminal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Globals because a fatal-signal handler must reach them. */
static struct termios saved_mode;
static int saved_fd = -1;

void terminal_restore(void)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSANOW, &saved_mode);
}

static void fatal_signal(int sig)
{
	terminal_restore();
	raise(sig); /* SA_RESETHAND made the default action current again */
}

static void catch_fatal_signals(void)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	struct sigaction sa = { .sa_handler = fatal_signal, .sa_flags = SA_RESETHAND };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
}

int terminal_setup(struct terminal *t, int fd)
{
	struct termios raw;

	memset(t, 0, sizeof(*t));
	if (!isatty(fd))
		return 0;
	if (tcgetattr(fd, &saved_mode) < 0)
		return -errno;
	raw = saved_mode;
	/* Raw input, keys go to the guest (Ctrl-C included); output processing stays on. */
	raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	saved_fd = fd;
	catch_fatal_signals();
	atexit(terminal_restore);
	if (tcsetattr(fd, TCSANOW, &raw) < 0)
		return -errno;
	t->is_tty = true;
	return 0;
}

size_t terminal_filter(struct terminal *t, uint8_t *buf, size_t len, bool *quit)
{
	size_t out = 0;

	*quit = false;
	if (!t->is_tty)
		return len;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (!t->escape_seen) {
			if (c == TERMINAL_ESCAPE)
				t->escape_seen = true;
			else
				buf[out++] = c;
			continue;
		}
		t->escape_seen = false;
		if (c == 'x' || c == 'X') {
			*quit = true;
			return out;
		}
		if (c == 'a' || c == TERMINAL_ESCAPE)
			buf[out++] = TERMINAL_ESCAPE;
		/* Any other key after Ctrl-A is swallowed, as in QEMU. */
	}
	return out;
}
