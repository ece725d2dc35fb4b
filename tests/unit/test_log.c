#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define THIS_FILE "tests/unit/test_log.c"

/* A directory for this run's log files, removed at exit. */
static char dir[] = "/tmp/skiff-test-log-XXXXXX";

static void remove_dir(void)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("  could not remove %s\n", dir);
}

static const char *tmp_path(const char *name)
{
	static char path[4][128];
	static unsigned next;
	static bool made;
	char *p = path[next++ % 4];

	if (!made) {
		made = mkdtemp(dir) != NULL;
		if (made)
			atexit(remove_dir);
	}
	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	return p;
}

/* The file's contents, NUL-terminated; "" if it cannot be read. */
static char *read_all(const char *path)
{
	static char text[1 << 16];
	ssize_t n = -1;
	int fd = open(path, O_RDONLY);

	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static int configure(const char *path, enum log_level level, bool show_level, bool show_origin,
		     const char *module)
{
	struct log_options opts = { path, level, show_level, show_origin, module };
	char err[256] = "";
	int ret = log_configure(&opts, err, sizeof(err));

	if (ret)
		printf("  log_configure: %s\n", err);
	return ret;
}

/* Runs first: nothing has moved the log off stderr yet. */
TEST(default_is_stderr_unchanged)
{
	const char *head = "skiff: hello 1\nskiff: bad\nskiff: open: No such file or directory\n";
	int saved = dup(2), fd = memfd_create("log", 0);
	char text[4096], long_msg[2000];
	ssize_t n;

	memset(long_msg, 'x', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	dup2(fd, 2);
	log_set_level(LOG_WARN);
	log_warn("hello %d", 1);
	log_info("not at warn");
	log_error("bad");
	errno = ENOENT;
	log_warn("open: %m");
	CHECK(errno == ENOENT); /* a caller may log, then return -errno */
	log_warn("%s", long_msg);
	log_set_level(LOG_OFF);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	CHECK(!strncmp(text, head, strlen(head)));
	/* Cut at 1024 bytes with the newline, as before log_configure() existed. */
	CHECK(n == (ssize_t)strlen(head) + 1024);
	CHECK(!strncmp(text + strlen(head), "skiff: xxx", 10));
	CHECK(n > 0 && text[n - 1] == '\n' && text[n - 2] == 'x');
}

TEST(level_names)
{
	enum log_level l;

	CHECK(log_parse_firecracker_level("Error", &l) == 0 && l == LOG_ERROR);
	CHECK(log_parse_firecracker_level("WARNING", &l) == 0 && l == LOG_WARN);
	CHECK(log_parse_firecracker_level("info", &l) == 0 && l == LOG_INFO);
	CHECK(log_parse_firecracker_level("Debug", &l) == 0 && l == LOG_DEBUG);
	CHECK(log_parse_firecracker_level("tRaCe", &l) == 0 && l == LOG_DEBUG);
	CHECK(log_parse_firecracker_level("Off", &l) == 0 && l == LOG_OFF);
	CHECK(log_parse_firecracker_level("warn", &l) == -EINVAL);
	CHECK(log_parse_firecracker_level("", &l) == -EINVAL);
	CHECK(log_parse_firecracker_level("Info ", &l) == -EINVAL);
	CHECK(log_parse_firecracker_level(NULL, &l) == -EINVAL);
	/* --log-level keeps its own exact, lower-case names. */
	CHECK(log_parse_level("warn", &l) == 0 && l == LOG_WARN);
	CHECK(log_parse_level("Warn", &l) == -EINVAL);
	CHECK(log_parse_level("warning", &l) == -EINVAL);
	CHECK(log_parse_level("trace", &l) == -EINVAL);
}

TEST(level_and_origin_formats)
{
	const char *path = tmp_path("format.log");
	char want[512];
	int line;

	CHECK(configure(path, LOG_INFO, true, false, NULL) == 0);
	log_info("a %s", "b");
	log_debug("not at info");
	log_error("e");
	CHECK(log_get_level() == LOG_INFO);
	CHECK(!strcmp(read_all(path), "skiff: [INFO] a b\nskiff: [ERROR] e\n"));

	CHECK(configure(path, LOG_DEBUG, false, true, NULL) == 0);
	line = __LINE__ + 1;
	log_debug("d");
	snprintf(want, sizeof(want), "skiff: [INFO] a b\nskiff: [ERROR] e\nskiff: %s:%d: d\n",
		 THIS_FILE, line);
	CHECK(!strcmp(read_all(path), want));

	CHECK(configure(path, LOG_WARN, true, true, NULL) == 0);
	line = __LINE__ + 1;
	log_warn("w");
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "skiff: [WARN] %s:%d: w\n",
		 THIS_FILE, line);
	CHECK(!strcmp(read_all(path), want));

	CHECK(configure(path, LOG_OFF, true, true, NULL) == 0);
	log_error("off");
	CHECK(!strcmp(read_all(path), want));
}

TEST(file_is_appended_and_created_0600)
{
	const char *old = tmp_path("old.log"), *created = tmp_path("new.log");
	struct stat st;
	int fd = open(old, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0 && write(fd, "before\n", 7) == 7);
	close(fd);
	CHECK(configure(old, LOG_INFO, false, false, NULL) == 0);
	log_info("one");
	CHECK(configure(NULL, LOG_INFO, true, false, NULL) == 0); /* same file, new format */
	log_info("two");
	CHECK(configure(old, LOG_INFO, false, false, NULL) == 0); /* reopened: still appends */
	log_info("three");
	CHECK(!strcmp(read_all(old), "before\nskiff: one\nskiff: [INFO] two\nskiff: three\n"));

	unlink(created);
	CHECK(configure(created, LOG_INFO, false, false, NULL) == 0);
	CHECK(stat(created, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
	log_info("fresh");
	CHECK(!strcmp(read_all(created), "skiff: fresh\n"));
	CHECK(!strcmp(read_all(old), "before\nskiff: one\nskiff: [INFO] two\nskiff: three\n"));
}

TEST(module_filter)
{
	const char *path = tmp_path("module.log");

	CHECK(configure(path, LOG_DEBUG, false, false, "virtio") == 0);
	log_msg(LOG_INFO, "src/virtio/blk.c", 1, "virtio/blk");
	log_msg(LOG_INFO, "src/virtio_x.c", 1, "virtio_x");
	log_msg(LOG_INFO, "src/vmm/vcpu.c", 1, "vmm/vcpu");
	log_msg(LOG_INFO, "src/log.c", 1, "log");
	log_info("a test is not under src/");
	log_msg(LOG_INFO, "/elsewhere/skiff/src/virtio/net.c", 1, "out of tree");
	CHECK(!strcmp(read_all(path), "skiff: virtio/blk\nskiff: out of tree\n"));

	CHECK(configure(path, LOG_DEBUG, false, false, "vmm/vcpu") == 0);
	log_msg(LOG_INFO, "src/vmm/vcpu.c", 1, "vcpu");
	log_msg(LOG_INFO, "src/vmm/vcpu.h", 1, "vcpu.h");
	log_msg(LOG_INFO, "src/vmm/vcpu_x.c", 1, "vcpu_x");
	log_msg(LOG_INFO, "src/vmm/vm.c", 1, "vm");
	log_msg(LOG_INFO, "src/virtio/blk.c", 1, "blk");
	CHECK(!strcmp(read_all(path), "skiff: virtio/blk\nskiff: out of tree\n"
				      "skiff: vcpu\nskiff: vcpu.h\n"));

	CHECK(configure(path, LOG_DEBUG, false, false, "") == 0);
	log_info("all again");
	CHECK(strstr(read_all(path), "skiff: all again\n") != NULL);
}

/* Logs one info line and one debug line; the checks compare what reached the file. */
static void log_probe(void)
{
	log_info("probe");
	log_debug("debug probe");
}

TEST(bad_options_change_nothing)
{
	const char *path = tmp_path("keep.log"), *never = tmp_path("never.log");
	struct log_options opts = { .path = never, .level = LOG_DEBUG, .show_origin = true };
	const char *bad_modules[] = { "../etc", "/virtio", "virtio/", "a//b", "v.c", "a b",
				      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" };
	char err[256];

	CHECK(configure(path, LOG_INFO, true, false, NULL) == 0);

	opts.level = 42;
	CHECK(log_configure(&opts, err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "level: 42 is not a log level"));
	opts.level = (enum log_level)-1;
	CHECK(log_configure(&opts, err, sizeof(err)) == -EINVAL);
	CHECK(!strncmp(err, "level:", 6));
	opts.level = LOG_DEBUG;
	for (size_t i = 0; i < sizeof(bad_modules) / sizeof(bad_modules[0]); i++) {
		opts.module = bad_modules[i];
		err[0] = '\0';
		CHECK(log_configure(&opts, err, sizeof(err)) == -EINVAL);
		CHECK(!strncmp(err, "module ", 7));
	}
	CHECK(access(never, F_OK) < 0); /* checked before the path was opened */

	opts.module = NULL;
	opts.path = tmp_path("no-such-dir/x.log");
	CHECK(log_configure(&opts, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "log_path ") == err && strstr(err, "No such file or directory"));
	opts.path = dir;
	CHECK(log_configure(&opts, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "log_path ") == err && strstr(err, "Is a directory"));
	CHECK(log_configure(&opts, NULL, 0) == -EINVAL); /* no room for a message: still fine */

	CHECK(log_get_level() == LOG_INFO);
	log_probe();
	CHECK(!strcmp(read_all(path), "skiff: [INFO] probe\n"));
}

TEST(fifo_without_reader_fails_at_once)
{
	const char *fifo = tmp_path("noreader.fifo"), *path = tmp_path("fifo-keep.log");
	struct log_options opts = { .path = fifo, .level = LOG_DEBUG };
	char err[256];

	CHECK(configure(path, LOG_INFO, false, false, NULL) == 0);
	CHECK(mkfifo(fifo, 0600) == 0);
	alarm(10); /* were it to wait for a reader, the test dies rather than hang */
	CHECK(log_configure(&opts, err, sizeof(err)) == -EINVAL);
	alarm(0);
	CHECK(strstr(err, "log_path ") == err && strstr(err, "a named pipe with no reader"));
	log_probe();
	CHECK(!strcmp(read_all(path), "skiff: probe\n"));
}

TEST(fifo_with_reader_never_blocks)
{
	const char *fifo = tmp_path("reader.fifo");
	static char buf[1 << 17];
	char big[1000];
	uint64_t missed = log_missed_count();
	sigset_t mask, pending;
	ssize_t n, total = 0;
	int reader, lines = 0;
	bool whole = true;

	CHECK(mkfifo(fifo, 0600) == 0);
	reader = open(fifo, O_RDONLY | O_NONBLOCK);
	CHECK(reader >= 0);
	CHECK(configure(fifo, LOG_INFO, true, false, NULL) == 0);
	log_info("through the pipe");
	n = read(reader, buf, sizeof(buf));
	CHECK(n == 31 && !memcmp(buf, "skiff: [INFO] through the pipe\n", 31));

	/* 200 KB into a 64 KB pipe nobody reads: lines are dropped, whole, and counted. */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	alarm(10);
	for (int i = 0; i < 200; i++)
		log_info("%s", big);
	alarm(0);
	CHECK(log_missed_count() > missed);
	while ((n = read(reader, buf + total, sizeof(buf) - total)) > 0)
		total += n;
	/* Each line: "skiff: [INFO] ", 999 b's, a newline. */
	for (ssize_t at = 0; at < total; at += 1014, lines++)
		whole &= at + 1014 <= total && !strncmp(buf + at, "skiff: [INFO] bbb", 17) &&
			 buf[at + 1013] == '\n';
	CHECK(whole && total % 1014 == 0);
	CHECK(lines > 0 && (uint64_t)lines + log_missed_count() - missed == 200);

	/* The reader gone: a line is missed, and SIGPIPE neither kills nor lingers. */
	close(reader);
	missed = log_missed_count();
	log_error("nobody listens");
	CHECK(log_missed_count() == missed + 1);
	CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
	CHECK(pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 && !sigismember(&mask, SIGPIPE));
	CHECK(configure(tmp_path("after-fifo.log"), LOG_INFO, false, false, NULL) == 0);
}

static void *log_other_error(void *arg)
{
	(void)arg;
	log_error("from another thread");
	return (void *)log_last_error();
}

TEST(last_error_per_thread)
{
	void *other = NULL;
	pthread_t thread;

	CHECK(configure(NULL, LOG_OFF, false, false, "virtio") == 0);
	errno = EACCES;
	log_error("open %s: %m", "disk.img"); /* kept though neither level nor module lets it out */
	CHECK(errno == EACCES);
	log_warn("only errors count");
	CHECK(!strcmp(log_last_error(), "open disk.img: Permission denied"));
	CHECK(pthread_create(&thread, NULL, log_other_error, NULL) == 0);
	pthread_join(thread, &other);
	CHECK(other && other != log_last_error());
	CHECK(!strcmp(log_last_error(), "open disk.img: Permission denied"));
	CHECK(configure(NULL, LOG_INFO, false, false, NULL) == 0);
}

#define THREADS		 4
#define LINES_PER_THREAD 3000

static atomic_int threads_started, threads_done;

static void *log_lines(void *arg)
{
	int id = (int)(intptr_t)arg;

	atomic_fetch_add(&threads_started, 1);
	while (atomic_load(&threads_started) < THREADS)
		; /* all start together, to contend */
	for (int i = 0; i < LINES_PER_THREAD; i++)
		log_info("thread %d line %d %0200d end", id, i, 0);
	atomic_fetch_add(&threads_done, 1);
	return NULL;
}

/* Checks every line of a log file is one whole message; marks the messages seen. */
static bool lines_whole(const char *path, bool seen[THREADS][LINES_PER_THREAD], int *count)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	bool ok = f != NULL;

	while (ok && fgets(line, sizeof(line), f)) {
		char *s = line + 7, end[8];
		int id, i, used = 0;

		ok = !strncmp(line, "skiff: ", 7) && line[strlen(line) - 1] == '\n';
		if (!strncmp(s, "[INFO] ", 7))
			s += 7;
		if (!strncmp(s, THIS_FILE ":", strlen(THIS_FILE ":"))) {
			s = strstr(s, ": ");
			s = s ? s + 2 : line;
		}
		ok = ok &&
		     sscanf(s, "thread %d line %d %*200[0] %3s\n%n", &id, &i, end, &used) == 3 &&
		     !strcmp(end, "end") && s[used] == '\0' && id >= 0 && id < THREADS && i >= 0 &&
		     i < LINES_PER_THREAD && !seen[id][i];
		if (ok) {
			seen[id][i] = true;
			(*count)++;
		} else {
			printf("  bad line in %s: %s", path, line);
		}
	}
	if (f)
		fclose(f);
	return ok;
}

TEST(reconfigure_while_threads_log)
{
	static bool seen[THREADS][LINES_PER_THREAD];
	const char *a = tmp_path("a.log"), *b = tmp_path("b.log");
	uint64_t missed = log_missed_count();
	pthread_t threads[THREADS];
	int count = 0, reconfigured = 0;

	unlink(a);
	unlink(b);
	CHECK(configure(a, LOG_INFO, false, false, NULL) == 0);
	for (int t = 0; t < THREADS; t++)
		CHECK(pthread_create(&threads[t], NULL, log_lines, (void *)(intptr_t)t) == 0);
	/* Swap files and formats until they are done: each swap closes the fd threads used. */
	for (int i = 0; atomic_load(&threads_done) < THREADS; i++) {
		CHECK(configure(i % 2 ? b : a, LOG_INFO, i % 3 == 0, i % 5 == 0, NULL) == 0);
		CHECK(configure(NULL, LOG_INFO, i % 7 == 0, i % 2 == 0, NULL) == 0);
		reconfigured++;
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);
	printf("  %d lines while reconfiguring %d times\n", THREADS * LINES_PER_THREAD,
	       reconfigured);
	CHECK(lines_whole(a, seen, &count));
	CHECK(lines_whole(b, seen, &count));
	CHECK(count == THREADS * LINES_PER_THREAD);
	CHECK(log_missed_count() == missed);
	CHECK(configure(tmp_path("done.log"), LOG_OFF, false, false, NULL) == 0);
}

TEST_MAIN(T(default_is_stderr_unchanged), T(level_names), T(level_and_origin_formats),
	  T(file_is_appended_and_created_0600), T(module_filter), T(bad_options_change_nothing),
	  T(fifo_without_reader_fails_at_once), T(fifo_with_reader_never_blocks),
	  T(last_error_per_thread), T(reconfigure_while_threads_log))
