#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX   1024
#define LOG_MODULE_MAX 64

/* pipe(7): a write of at most PIPE_BUF bytes is never split, nor interleaved with another. */
_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a line must be a single atomic pipe write");

struct log_config {
	int fd;
	bool fd_owned;	 /* opened by log_configure(); stderr is not ours to close */
	bool fd_is_fifo; /* non-blocking, and a write with the reader gone raises SIGPIPE */
	enum log_level level;
	bool show_level;
	bool show_origin;
	char module[LOG_MODULE_MAX + 1]; /* "" for all */
};

/*
 * Process-wide by nature: every thread writes to the one log. Lines are formatted and written
 * under the lock, so a reconfiguration falls between two lines, never inside one, and an old fd
 * is closed only once no thread can still be writing to it.
 */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_config current = { .fd = STDERR_FILENO, .level = LOG_WARN };
/* current.level, readable without the lock: a message filtered out costs one load. */
static _Atomic int level_now = LOG_WARN;
static atomic_uint_fast64_t missed_lines;
/* Each thread's last log_error() message: an API call reports the error its own thread met. */
static __thread char last_error[LOG_LINE_MAX];

static const char *const level_names[] = {
	[LOG_OFF] = "off", [LOG_ERROR] = "error", [LOG_WARN] = "warn",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static const char *const level_tags[] = {
	[LOG_OFF] = "OFF", [LOG_ERROR] = "ERROR", [LOG_WARN] = "WARN",
	[LOG_INFO] = "INFO", [LOG_DEBUG] = "DEBUG",
};

void log_set_level(enum log_level level)
{
	pthread_mutex_lock(&log_lock);
	current.level = level;
	atomic_store_explicit(&level_now, level, memory_order_relaxed);
	pthread_mutex_unlock(&log_lock);
}

enum log_level log_get_level(void)
{
	return atomic_load_explicit(&level_now, memory_order_relaxed);
}

int log_parse_level(const char *name, enum log_level *level)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_parse_firecracker_level(const char *name, enum log_level *level)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "error", LOG_ERROR }, { "warning", LOG_WARN }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG }, { "trace", LOG_DEBUG },	 { "off", LOG_OFF },
	};

	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i].name) == 0) {
			*level = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

uint64_t log_missed_count(void)
{
	return atomic_load(&missed_lines);
}

/*
 * The part of a source path under src/: __FILE__ is "src/..." as the Makefile compiles, but
 * an out-of-tree build may give an absolute path. NULL for a file outside src/ (a test).
 */
static const char *path_under_src(const char *file)
{
	const char *under = NULL;

	if (strncmp(file, "src/", 4) == 0)
		return file + 4;
	for (const char *p = strstr(file, "/src/"); p; p = strstr(p + 1, "/src/"))
		under = p + 5;
	return under;
}

/* "virtio" takes src/virtio/... but not src/virtio_x.c; "vmm/vcpu" takes src/vmm/vcpu.c. */
static bool module_matches(const char *module, const char *file)
{
	size_t len = strlen(module);
	const char *path;

	if (len == 0)
		return true;
	path = path_under_src(file);
	if (!path || strncmp(path, module, len) != 0)
		return false;
	return path[len] == '/' || path[len] == '.' || path[len] == '\0';
}

/* A module is a relative path of names made of letters, digits, '_' and '-'. */
static bool module_valid(const char *module)
{
	size_t len = strlen(module);
	bool name_start = true;

	if (len > LOG_MODULE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = module[i];

		if (c == '/') {
			if (name_start)
				return false; /* leading '/' or an empty name */
			name_start = true;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '_' || c == '-') {
			name_start = false;
		} else {
			return false;
		}
	}
	return len == 0 || !name_start; /* no trailing '/' */
}

static void set_error(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/*
 * Opens path for appending. O_NONBLOCK makes opening a named pipe without a reader fail with
 * ENXIO (fifo(7)) rather than wait for one; it stays set on a pipe only.
 */
static int open_output(const char *path, struct log_config *config, char *err, size_t err_len)
{
	struct stat st;
	int fd, flags;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0) {
		int open_errno = errno;

		if (open_errno == ENXIO && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
			set_error(err, err_len, "log_path %s: a named pipe with no reader", path);
		else
			set_error(err, err_len, "log_path %s: %s", path, strerror(open_errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || (flags = fcntl(fd, F_GETFL)) < 0)
		goto fail;
	/* Elsewhere (a terminal, say) blocking is what a reader expects. */
	if (!S_ISFIFO(st.st_mode) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		goto fail;
	config->fd = fd;
	config->fd_owned = true;
	config->fd_is_fifo = S_ISFIFO(st.st_mode);
	return 0;
fail:
	set_error(err, err_len, "log_path %s: %s", path, strerror(errno));
	close(fd);
	return -EINVAL;
}

int log_configure(const struct log_options *opts, char *err, size_t err_len)
{
	const char *module = opts->module ? opts->module : "";
	struct log_config next = {
		.level = opts->level,
		.show_level = opts->show_level,
		.show_origin = opts->show_origin,
	};
	int old_fd = -1, ret;

	/* Checked before the path, so bad input never leaves a new file behind. */
	if ((int)opts->level < LOG_OFF || opts->level > LOG_DEBUG) {
		set_error(err, err_len, "level: %d is not a log level", (int)opts->level);
		return -EINVAL;
	}
	if (!module_valid(module)) {
		set_error(err, err_len,
			  "module %s: not a path under src/ (names of letters, digits, _ and -, "
			  "at most %d characters)",
			  module, LOG_MODULE_MAX);
		return -EINVAL;
	}
	strcpy(next.module, module);
	if (opts->path) {
		ret = open_output(opts->path, &next, err, err_len);
		if (ret)
			return ret;
	}

	pthread_mutex_lock(&log_lock);
	if (opts->path) {
		if (current.fd_owned)
			old_fd = current.fd;
	} else {
		next.fd = current.fd;
		next.fd_owned = current.fd_owned;
		next.fd_is_fifo = current.fd_is_fifo;
	}
	current = next;
	atomic_store_explicit(&level_now, next.level, memory_order_relaxed);
	pthread_mutex_unlock(&log_lock);

	if (old_fd >= 0)
		close(old_fd);
	return 0;
}

/* Appends to buf like snprintf, never moving *len past size - 1. */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = *len + n < size ? *len + n : size - 1;
}

/*
 * One write per line (a line is never split on a pipe, and O_APPEND keeps a file's lines whole
 * across processes). A line that cannot be written is counted, not waited for: a slow reader
 * must not stall a vCPU.
 */
static void write_line(const char *text, size_t len)
{
	static const struct timespec no_wait;
	sigset_t sigpipe, old_mask, pending;
	bool sigpipe_was_pending = false;
	ssize_t n = 0;

	if (current.fd_is_fifo) {
		/* Blocked, so that a reader gone away costs a line (EPIPE), not the process. */
		sigemptyset(&sigpipe);
		sigaddset(&sigpipe, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &sigpipe, &old_mask);
		sigpending(&pending);
		sigpipe_was_pending = sigismember(&pending, SIGPIPE);
	}
	while (len > 0) {
		n = write(current.fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		text += n;
		len -= n;
	}
	if (len > 0)
		atomic_fetch_add(&missed_lines, 1);
	if (current.fd_is_fifo) {
		/* Take back the SIGPIPE this write raised, and only that one. */
		if (n < 0 && errno == EPIPE && !sigpipe_was_pending)
			sigtimedwait(&sigpipe, NULL, &no_wait);
		pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	}
}

/* Formats and writes one line, or none if the configuration filters the message out. */
static void write_message(enum log_level level, const char *file, int line, const char *message)
{
	char text[LOG_LINE_MAX];
	size_t len = 0;

	pthread_mutex_lock(&log_lock);
	if (level > current.level || !module_matches(current.module, file))
		goto out;
	append(text, sizeof(text), &len, "skiff: ");
	if (current.show_level)
		append(text, sizeof(text), &len, "[%s] ",
		       (unsigned)level <= LOG_DEBUG ? level_tags[level] : "?");
	if (current.show_origin)
		append(text, sizeof(text), &len, "%s:%d: ", file, line);
	append(text, sizeof(text), &len, "%s", message);
	text[len++] = '\n';
	write_line(text, len);
out:
	pthread_mutex_unlock(&log_lock);
}

const char *log_last_error(void)
{
	return last_error;
}

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	int saved_errno = errno;
	char message[LOG_LINE_MAX];
	va_list ap;

	/* An error is kept for log_last_error() whatever the configuration lets through. */
	if (level != LOG_ERROR &&
	    (int)level > atomic_load_explicit(&level_now, memory_order_relaxed))
		return;
	/* Formatted outside the lock: other threads wait only for the write. */
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (level == LOG_ERROR)
		strcpy(last_error, message);
	if ((int)level <= atomic_load_explicit(&level_now, memory_order_relaxed))
		write_message(level, file, line, message);
	errno = saved_errno;
}
