/*
 * Leveled logging, one line per message. By default lines go to stderr at level warn and read
 * "skiff: <message>". log_configure() does what Firecracker's PUT /logger asks (its Logger
 * object): another output, a level, the level and origin shown on each line, a module filter.
 *
 * A line is, with each bracketed part present only when asked for:
 *	skiff: [LEVEL] FILE:LINE: message
 * e.g. "skiff: [WARN] src/virtio/blk.c:123: request past the end of the disk", where LEVEL is
 * ERROR, WARN, INFO or DEBUG and FILE the source path as compiled (src/...). A line is at most
 * 1024 bytes with its newline; a longer message is cut.
 *
 * Every function may be called from any thread while others log: a line is written whole, with
 * one configuration. Logging leaves errno as the caller had it (so "%m" works, and so does
 * logging before returning -errno).
 */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Returns 0 and sets *level for "off", "error", "warn", "info", "debug"; -EINVAL otherwise. */
int log_parse_level(const char *name, enum log_level *level);
/*
 * Firecracker's names, any case: Error, Warning, Info, Debug, Trace, Off. Trace is LOG_DEBUG,
 * skiff having nothing finer. Returns 0 and sets *level, or -EINVAL.
 */
int log_parse_firecracker_level(const char *name, enum log_level *level);

/*
 * The whole configuration: PUT /logger fills what its body leaves out with Firecracker's
 * defaults (level LOG_INFO, show_level and show_origin false, no module).
 */
struct log_options {
	/*
	 * Lines are appended to this file, created 0600 if missing, or to this named pipe, which
	 * must already have a reader. A full pipe drops lines (see log_missed_count()) rather than
	 * stall a vCPU thread. NULL keeps the current output.
	 */
	const char *path;
	enum log_level level;
	bool show_level;  /* "[WARN] " */
	bool show_origin; /* "src/virtio/blk.c:123: " */
	/*
	 * Only messages from sources under src/<module>: a directory ("virtio") or a file without
	 * its ".c" ("vmm/vcpu"). NULL or "" for all.
	 */
	const char *module;
};

/*
 * Applies opts all at once, or not at all: on bad input, writes one line naming the field
 * (level, log_path or module, as Firecracker names them) into err and returns -EINVAL.
 */
int log_configure(const struct log_options *opts, char *err, size_t err_len);

/* Lines that could not be written (a full pipe, a reader gone, a failed write) since start. */
uint64_t log_missed_count(void);

/*
 * The message (without "skiff: " or any prefix) of the last log_error() the calling thread made,
 * whether or not the configuration let it through; "" if none. Valid until the thread's next
 * log_error(). For an API handler to tell its client why a call it made failed.
 */
const char *log_last_error(void);

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
