#include "test.h"

#include "../../src/ctl/ctl.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REQUESTS 8

struct fake_reply {
	int status;
	const char *body; /* NULL: none */
};

struct fake_request {
	char method[16];
	char target[64];
	char content_type[64];
	char body[256];
};

/* A stand-in for skiff's API server: answers each request with the next canned reply. */
struct fake_server {
	char dir[32];
	char path[64];
	int listen_fd;
	pthread_t thread;
	const struct fake_reply *replies;
	size_t nr_replies;
	/* Scripted events, by request number from 1; 0: never. */
	size_t vanish_after; /* then the socket goes, as a migrated skiff's does */
	size_t interrupt_at; /* SIGINT to the process before answering, as Ctrl-C would */
	size_t nr_requests;
	struct fake_request requests[MAX_REQUESTS];
};

struct captured {
	int status;
	char out[4096];
	char err[4096];
};

/* Copies the value of header name (with its ": ") from a request's head, if there. */
static void header_value(const char *head, const char *name, char *value, size_t size)
{
	const char *p = strcasestr(head, name);
	size_t len;

	value[0] = '\0';
	if (!p)
		return;
	p += strlen(name);
	len = strcspn(p, "\r\n");
	snprintf(value, size, "%.*s", (int)len, p);
}

/* Reads one request from fd and answers it; -1 once the client has closed. */
static int serve_one(struct fake_server *srv, int fd)
{
	struct fake_request *req = &srv->requests[srv->nr_requests % MAX_REQUESTS];
	static const struct fake_reply exhausted = { 500, "{\"fault_message\":\"no reply\"}" };
	const struct fake_reply *reply = &exhausted;
	char buf[4096], length[16], answer[1024];
	size_t len = 0, body_len;
	char *end = NULL;
	ssize_t n;

	while (!end) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return -1;
		len += n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	memset(req, 0, sizeof(*req));
	sscanf(buf, "%15s %63s", req->method, req->target);
	header_value(buf, "\r\ncontent-type: ", req->content_type, sizeof(req->content_type));
	header_value(buf, "\r\ncontent-length: ", length, sizeof(length));
	body_len = strtoul(length, NULL, 10);
	end += 4;
	while ((size_t)(buf + len - end) < body_len && len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return -1;
		len += n;
		buf[len] = '\0';
	}
	snprintf(req->body, sizeof(req->body), "%.*s", (int)body_len, end);
	if (srv->nr_requests < srv->nr_replies)
		reply = &srv->replies[srv->nr_requests];
	srv->nr_requests++;
	if (srv->nr_requests == srv->interrupt_at)
		kill(getpid(), SIGINT);
	if (reply->body)
		n = snprintf(answer, sizeof(answer),
			     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			     "Content-Length: %zu\r\n\r\n%s",
			     reply->status, strlen(reply->body), reply->body);
	else
		n = snprintf(answer, sizeof(answer), "HTTP/1.1 %d X\r\n\r\n", reply->status);
	return write(fd, answer, n) == n ? 0 : -1;
}

static void *serve(void *opaque)
{
	struct fake_server *srv = opaque;
	int fd;

	/* Ends when the test shuts the listening socket down, or when scripted to vanish. */
	while ((fd = accept(srv->listen_fd, NULL, NULL)) >= 0) {
		bool vanish = false;

		while (!vanish && serve_one(srv, fd) == 0)
			vanish = srv->nr_requests == srv->vanish_after;
		/* Unlinked first: the client's next connect finds no socket. */
		if (vanish)
			unlink(srv->path);
		close(fd);
		if (vanish)
			break;
	}
	return NULL;
}

static int server_start(struct fake_server *srv, const struct fake_reply *replies, size_t count,
			size_t vanish_after, size_t interrupt_at)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memset(srv, 0, sizeof(*srv));
	srv->vanish_after = vanish_after;
	srv->interrupt_at = interrupt_at;
	srv->replies = replies;
	srv->nr_replies = count;
	strcpy(srv->dir, "/tmp/skiff-ctl-XXXXXX");
	if (!mkdtemp(srv->dir))
		return -1;
	snprintf(srv->path, sizeof(srv->path), "%s/api.sock", srv->dir);
	strcpy(addr.sun_path, srv->path);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0 || bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(srv->listen_fd, 4) || pthread_create(&srv->thread, NULL, serve, srv))
		return -1;
	return 0;
}

static void server_stop(struct fake_server *srv)
{
	shutdown(srv->listen_fd, SHUT_RDWR);
	pthread_join(srv->thread, NULL);
	close(srv->listen_fd);
	unlink(srv->path);
	rmdir(srv->dir);
}

static void read_back(FILE *f, char *buf, size_t size)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Runs ctl_main with stdout and stderr captured; args ends with NULL. */
static void run_ctl(struct captured *c, const char *const *args)
{
	FILE *out = tmpfile(), *err = tmpfile();
	int saved_out, saved_err, argc = 0;

	while (args[argc])
		argc++;
	fflush(stdout);
	saved_out = dup(STDOUT_FILENO);
	saved_err = dup(STDERR_FILENO);
	dup2(fileno(out), STDOUT_FILENO);
	dup2(fileno(err), STDERR_FILENO);
	c->status = ctl_main(argc, (char *const *)args);
	fflush(stdout);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	read_back(out, c->out, sizeof(c->out));
	read_back(err, c->err, sizeof(c->err));
}

/* Runs "skiff ctl --api-sock SOCKET EXTRA... COMMAND" against canned replies. */
static void run_against(struct fake_server *srv, struct captured *c,
			const struct fake_reply *replies, size_t count, const char *extra,
			const char *command)
{
	const char *args[] = { "--api-sock", NULL, command, NULL, NULL };

	c->status = -1;
	if (server_start(srv, replies, count, 0, 0)) {
		CHECK(!"the fake server starts");
		return;
	}
	args[1] = srv->path;
	if (extra) {
		args[2] = extra;
		args[3] = command;
	}
	run_ctl(c, args);
	server_stop(srv);
}

/* Runs "skiff ctl --api-sock SOCKET migrate WORDS..." (words ends with NULL). */
static void run_migrate(struct fake_server *srv, struct captured *c,
			const struct fake_reply *replies, size_t count, size_t vanish_after,
			size_t interrupt_at, const char *const *words)
{
	const char *args[12] = { "--api-sock", NULL, "migrate" };
	size_t n = 3;

	c->status = -1;
	if (server_start(srv, replies, count, vanish_after, interrupt_at)) {
		CHECK(!"the fake server starts");
		return;
	}
	args[1] = srv->path;
	while (*words && n < sizeof(args) / sizeof(args[0]) - 1)
		args[n++] = *words++;
	args[n] = NULL;
	run_ctl(c, args);
	server_stop(srv);
}

static bool json_text_equal(const char *a, const char *b)
{
	json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
	bool equal = ja && jb && json_equal(ja, jb);

	json_decref(ja);
	json_decref(jb);
	return equal;
}

static bool one_line(const char *text)
{
	const char *nl = strchr(text, '\n');

	return nl && nl[1] == '\0';
}

static const struct fake_reply status_replies[] = {
	{ 200, "{\"app_name\":\"skiff\",\"id\":\"vm0\",\"state\":\"Running\","
	       "\"vmm_version\":\"0.1.0\"}" },
	{ 200, "{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":false,"
	       "\"track_dirty_pages\":false,\"huge_pages\":\"None\"}" },
};

TEST(status)
{
	struct fake_server srv;
	struct captured c;

	run_against(&srv, &c, status_replies, 2, NULL, "status");
	CHECK(c.status == 0);
	CHECK(!strcmp(c.out, "state: Running\nvcpus: 2\nmemory: 256 MiB\nversion: skiff 0.1.0\n"
			     "id: vm0\n"));
	CHECK(c.err[0] == '\0');
	CHECK(srv.nr_requests == 2);
	CHECK(!strcmp(srv.requests[0].method, "GET") && !strcmp(srv.requests[0].target, "/"));
	CHECK(!strcmp(srv.requests[1].method, "GET") &&
	      !strcmp(srv.requests[1].target, "/machine-config"));
}

TEST(status_json)
{
	struct fake_server srv;
	struct captured c;
	const char *state = NULL;
	json_int_t vcpus = 0;
	json_t *both;

	run_against(&srv, &c, status_replies, 2, "--json", "status");
	CHECK(c.status == 0 && one_line(c.out));
	both = json_loads(c.out, 0, NULL);
	CHECK(json_unpack(both, "{s:{s:s}, s:{s:I}}", "instance_info", "state", &state,
			  "machine_config", "vcpu_count", &vcpus) == 0);
	CHECK(state && !strcmp(state, "Running") && vcpus == 2);
	json_decref(both);
}

TEST(pause_sends_patch_vm)
{
	static const struct fake_reply replies[] = { { 204, NULL } };
	struct fake_server srv;
	struct captured c;

	run_against(&srv, &c, replies, 1, NULL, "pause");
	CHECK(c.status == 0 && !strcmp(c.out, "paused\n") && c.err[0] == '\0');
	CHECK(srv.nr_requests == 1);
	CHECK(!strcmp(srv.requests[0].method, "PATCH") && !strcmp(srv.requests[0].target, "/vm"));
	CHECK(!strcmp(srv.requests[0].content_type, "application/json"));
	CHECK(json_text_equal(srv.requests[0].body, "{\"state\":\"Paused\"}"));
}

TEST(resume_and_stop)
{
	static const struct fake_reply replies[] = { { 204, NULL } };
	struct fake_server srv;
	struct captured c;

	run_against(&srv, &c, replies, 1, "--json", "resume");
	CHECK(c.status == 0 && !strcmp(c.out, "{}\n"));
	CHECK(!strcmp(srv.requests[0].method, "PATCH") && !strcmp(srv.requests[0].target, "/vm"));
	CHECK(json_text_equal(srv.requests[0].body, "{\"state\":\"Resumed\"}"));

	run_against(&srv, &c, replies, 1, NULL, "stop");
	CHECK(c.status == 0 && !strcmp(c.out, "stopped\n"));
	CHECK(!strcmp(srv.requests[0].method, "PUT") &&
	      !strcmp(srv.requests[0].target, "/actions"));
	CHECK(json_text_equal(srv.requests[0].body, "{\"action_type\":\"InstanceStop\"}"));
}

TEST(config_indented_or_compact)
{
	static const struct fake_reply replies[] = {
		{ 200, "{\"boot-source\": {\"kernel_image_path\": \"/k\"}}" },
	};
	struct fake_server srv;
	struct captured c;

	run_against(&srv, &c, replies, 1, NULL, "config");
	CHECK(c.status == 0);
	CHECK(!strcmp(c.out, "{\n  \"boot-source\": {\n    \"kernel_image_path\": \"/k\"\n  }\n}\n"));
	CHECK(!strcmp(srv.requests[0].method, "GET") &&
	      !strcmp(srv.requests[0].target, "/vm/config"));

	run_against(&srv, &c, replies, 1, "--json", "config");
	CHECK(c.status == 0 && !strcmp(c.out, "{\"boot-source\":{\"kernel_image_path\":\"/k\"}}\n"));
}

TEST(refusal_prints_fault_message)
{
	static const struct fake_reply replies[] = {
		{ 400, "{\"fault_message\":\"The VM is not running\"}" },
	};
	struct fake_server srv;
	struct captured c;

	run_against(&srv, &c, replies, 1, NULL, "pause");
	CHECK(c.status == 1 && c.out[0] == '\0');
	CHECK(!strcmp(c.err, "skiff ctl: pause: The VM is not running (HTTP 400)\n"));

	run_against(&srv, &c, replies, 1, "--json", "status");
	CHECK(c.status == 1 && c.out[0] == '\0');
	CHECK(!strcmp(c.err, "skiff ctl: status: The VM is not running (HTTP 400)\n"));
}

TEST(answer_not_json)
{
	static const struct fake_reply replies[] = { { 200, "<html>" } };
	struct fake_server srv;
	struct captured c;

	run_against(&srv, &c, replies, 1, NULL, "config");
	CHECK(c.status == 2 && c.out[0] == '\0' && one_line(c.err));
	CHECK(strstr(c.err, "not JSON"));
}

TEST(missing_socket)
{
	static const char *const args[] = { "--api-sock", "/nonexistent/skiff.sock", "status",
					    NULL };
	struct captured c;

	run_ctl(&c, args);
	CHECK(c.status == 2 && c.out[0] == '\0' && one_line(c.err));
	CHECK(strstr(c.err, "/nonexistent/skiff.sock"));
	CHECK(strstr(c.err, "No such file or directory"));
}

#define MIGRATE_TO "\"destination\":\"tcp:10.0.0.2:4444\""
#define MIGRATE_RAM                                                                      \
	"{\"phase\":\"ram\"," MIGRATE_TO ",\"bytes_sent\":104857600,\"ram_bytes\":1073741824," \
	"\"remaining_bytes\":536870912,\"dirty_rate_bps\":0,\"rate_bps\":0,"                 \
	"\"dirty_passes\":0,\"throttle_percent\":0,\"estimated_downtime_us\":0}"
#define MIGRATE_DIRTY                                                                    \
	"{\"phase\":\"dirty-passes\"," MIGRATE_TO ",\"bytes_sent\":1181116006,"              \
	"\"ram_bytes\":1073741824,\"remaining_bytes\":10485760,"                             \
	"\"dirty_rate_bps\":83886080,\"rate_bps\":1073741824,\"dirty_passes\":3,"             \
	"\"throttle_percent\":20,\"estimated_downtime_us\":9765}"
#define MIGRATE_FINAL                                                                    \
	"{\"phase\":\"final\"," MIGRATE_TO ",\"bytes_sent\":1234000000,"                     \
	"\"ram_bytes\":1073741824,\"remaining_bytes\":0,\"dirty_rate_bps\":83886080,"         \
	"\"rate_bps\":1073741824,\"dirty_passes\":5,\"throttle_percent\":20,"                \
	"\"estimated_downtime_us\":4000}"
#define MIGRATE_COMPLETED                                                                \
	"{\"phase\":\"completed\"," MIGRATE_TO ",\"bytes_sent\":1288490189,"                 \
	"\"ram_bytes\":1073741824,\"remaining_bytes\":0,\"dirty_rate_bps\":83886080,"         \
	"\"rate_bps\":1073741824,\"dirty_passes\":5,\"throttle_percent\":20,"                \
	"\"estimated_downtime_us\":4000,\"total_us\":3400000,\"downtime_us\":8100}"

static const struct fake_reply migrate_replies[] = {
	{ 204, NULL },
	{ 200, MIGRATE_RAM },
	{ 200, MIGRATE_DIRTY },
	{ 200, MIGRATE_COMPLETED },
};

TEST(migrate_follows_to_the_end)
{
	static const char *const words[] = { "tcp:10.0.0.2:4444", "--downtime-ms", "20", NULL };
	struct fake_server srv;
	struct captured c;

	run_migrate(&srv, &c, migrate_replies, 4, 0, 0, words);
	CHECK(c.status == 0);
	CHECK(!strcmp(c.out, "migrated to tcp:10.0.0.2:4444: 1.2 GiB sent in 3.4 s, downtime "
			     "8.1 ms, 5 dirty passes\n"));
	/* Not a terminal: a line per phase, no bar. */
	CHECK(!strcmp(c.err, "migrate: ram phase, 100.0 MiB sent\n"
			     "migrate: dirty-passes phase, 1.1 GiB sent\n"));
	CHECK(srv.nr_requests == 4);
	CHECK(!strcmp(srv.requests[0].method, "PUT") &&
	      !strcmp(srv.requests[0].target, "/migrate"));
	CHECK(!strcmp(srv.requests[0].content_type, "application/json"));
	CHECK(json_text_equal(srv.requests[0].body,
			      "{\"destination\":\"tcp:10.0.0.2:4444\",\"downtime_ms\":20}"));
	for (size_t i = 1; i < 4; i++)
		CHECK(!strcmp(srv.requests[i].method, "GET") &&
		      !strcmp(srv.requests[i].target, "/migrate"));
}

TEST(migrate_json_prints_the_last_answer)
{
	static const char *const words[] = { "--json", "tcp:10.0.0.2:4444", "--with-disks", NULL };
	struct fake_server srv;
	struct captured c;

	run_migrate(&srv, &c, migrate_replies, 4, 0, 0, words);
	CHECK(c.status == 0 && one_line(c.out) && c.err[0] == '\0');
	CHECK(json_text_equal(c.out, MIGRATE_COMPLETED));
	CHECK(json_text_equal(srv.requests[0].body,
			      "{\"destination\":\"tcp:10.0.0.2:4444\",\"with_disks\":true}"));
}

TEST(migrate_failed)
{
	static const struct fake_reply replies[] = {
		{ 204, NULL },
		{ 200, MIGRATE_RAM },
		{ 200, "{\"phase\":\"failed\"," MIGRATE_TO ",\"bytes_sent\":4096,"
		       "\"error\":\"sending RAM to tcp:10.0.0.2:4444: Connection reset by peer\"}" },
	};
	static const char *const words[] = { "tcp:10.0.0.2:4444", NULL };
	static const char *const json_words[] = { "tcp:10.0.0.2:4444", "--json", NULL };
	const char *last_line;
	struct fake_server srv;
	struct captured c;

	run_migrate(&srv, &c, replies, 3, 0, 0, words);
	CHECK(c.status == 1 && c.out[0] == '\0');
	last_line = strstr(c.err, "skiff ctl: ");
	CHECK(last_line && !strcmp(last_line, "skiff ctl: migrate: sending RAM to "
					      "tcp:10.0.0.2:4444: Connection reset by peer\n"));

	/* --json: the answer all the same, for scripts, and the error for people. */
	run_migrate(&srv, &c, replies, 3, 0, 0, json_words);
	CHECK(c.status == 1 && one_line(c.out) && strstr(c.out, "\"phase\":\"failed\""));
	CHECK(one_line(c.err) && strstr(c.err, "Connection reset by peer"));
}

TEST(migrate_refused)
{
	static const struct fake_reply replies[] = {
		{ 400, "{\"fault_message\":\"migrate: a migration is under way (GET /migrate)\"}" },
	};
	static const char *const words[] = { "tcp:10.0.0.2:4444", NULL };
	struct fake_server srv;
	struct captured c;

	run_migrate(&srv, &c, replies, 1, 0, 0, words);
	CHECK(c.status == 1 && c.out[0] == '\0' && one_line(c.err));
	CHECK(strstr(c.err, "a migration is under way"));
	CHECK(srv.nr_requests == 1);
}

/* A migrated source skiff exits: its socket goes, maybe before "completed" is seen. */
TEST(migrate_source_exits)
{
	static const struct fake_reply replies[] = {
		{ 204, NULL },
		{ 200, MIGRATE_DIRTY },
		{ 200, MIGRATE_FINAL },
	};
	static const char *const words[] = { "tcp:10.0.0.2:4444", NULL };
	static const char *const json_words[] = { "tcp:10.0.0.2:4444", "--json", NULL };
	static const char summary[] = "migrated to tcp:10.0.0.2:4444: at least 1.1 GiB sent, "
				      "5 dirty passes; time and downtime unknown";
	json_t *answer;
	struct fake_server srv;
	struct captured c;

	/* After the final phase: it completed, though its time and downtime were not said. */
	run_migrate(&srv, &c, replies, 3, 3, 0, words);
	CHECK(c.status == 0 && one_line(c.out));
	CHECK(!strncmp(c.out, summary, strlen(summary)));
	CHECK(!strstr(c.err, "skiff ctl:"));

	run_migrate(&srv, &c, replies, 3, 3, 0, json_words);
	answer = json_loads(c.out, 0, NULL);
	CHECK(c.status == 0 && one_line(c.out));
	CHECK(json_is_true(json_object_get(answer, "source_exited")));
	CHECK(!strcmp(json_string_value(json_object_get(answer, "phase")) ?: "", "final"));
	json_decref(answer);

	/* Before it: the outcome is unknown, and said to be. */
	run_migrate(&srv, &c, replies, 3, 2, 0, words);
	CHECK(c.status == 2 && c.out[0] == '\0');
	CHECK(strstr(c.err, "skiff ctl: migrate: ") && strstr(c.err, "dirty-passes phase") &&
	      strstr(c.err, "unknown"));
}

TEST(migrate_interrupt_cancels)
{
	static const struct fake_reply replies[] = {
		{ 204, NULL },
		{ 200, MIGRATE_RAM },
		{ 204, NULL },
		{ 200, "{\"phase\":\"cancelled\"," MIGRATE_TO ",\"bytes_sent\":4096}" },
	};
	static const char *const words[] = { "tcp:10.0.0.2:4444", NULL };
	struct sigaction after;
	struct fake_server srv;
	struct captured c;

	/* Ctrl-C while the RAM pass is under way. */
	run_migrate(&srv, &c, replies, 4, 0, 2, words);
	CHECK(c.status == 1 && c.out[0] == '\0');
	CHECK(strstr(c.err, "skiff ctl: migrate: cancelled"));
	CHECK(srv.nr_requests == 4);
	CHECK(!strcmp(srv.requests[2].method, "DELETE") &&
	      !strcmp(srv.requests[2].target, "/migrate"));
	CHECK(!strcmp(srv.requests[3].method, "GET"));
	/* SIGINT is as it was before. */
	CHECK(sigaction(SIGINT, NULL, &after) == 0 && after.sa_handler == SIG_DFL);
}

TEST(usage)
{
	static const char *const help[] = { "--help", NULL };
	static const char *const bad[][7] = {
		{ NULL },
		{ "status", NULL },
		{ "--api-sock", NULL },
		{ "--api-sock", "/s", NULL },
		{ "--api-sock", "/s", "reboot", NULL },
		{ "--api-sock", "/s", "--yaml", "status", NULL },
		{ "--api-sock", "/s", "pause", "resume", NULL },
		{ "--api-sock", "/s", "migrate", NULL },
		{ "--api-sock", "/s", "migrate", "--downtime-ms", "20", NULL },
		{ "--api-sock", "/s", "migrate", "tcp:h:1", "--downtime-ms", NULL },
		{ "--api-sock", "/s", "migrate", "tcp:h:1", "--downtime-ms", "0", NULL },
		{ "--api-sock", "/s", "migrate", "tcp:h:1", "--downtime-ms", "60001", NULL },
		{ "--api-sock", "/s", "migrate", "tcp:h:1", "--downtime-ms", "fast", NULL },
		{ "--api-sock", "/s", "migrate", "tcp:h:1", "--downtime-ms=5x", NULL },
		{ "--api-sock", "/s", "migrate", "tcp:h:1", "tcp:h:2", NULL },
		{ "--api-sock", "/s", "status", "--with-disks", NULL },
		{ "--api-sock", "/s", "snapshot", "a", "b", "--downtime-ms=5", NULL },
	};
	struct captured c;

	run_ctl(&c, help);
	CHECK(c.status == 0 && !strncmp(c.out, "Usage: skiff ctl --api-sock PATH", 32));
	CHECK(strstr(c.out, "migrate tcp:HOST:PORT [--downtime-ms N] [--with-disks]"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_ctl(&c, bad[i]);
		CHECK(c.status == 2 && c.out[0] == '\0' && one_line(c.err));
		CHECK(!strncmp(c.err, "skiff ctl: ", 11));
	}
}

TEST_MAIN(T(status), T(status_json), T(pause_sends_patch_vm), T(resume_and_stop),
	  T(config_indented_or_compact), T(refusal_prints_fault_message), T(answer_not_json),
	  T(missing_socket), T(migrate_follows_to_the_end), T(migrate_json_prints_the_last_answer),
	  T(migrate_failed), T(migrate_refused), T(migrate_source_exits),
	  T(migrate_interrupt_cancels), T(usage))
