#include "ctl.h"

#include "ctl_parts.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>


static void print_help(FILE *out)
{
	fprintf(out,
		"Usage: skiff ctl --api-sock PATH [--json] COMMAND [ARGS]\n"
		"       skiff ctl --help\n"
		"\n"
		"Controls a running skiff through its management API (skiff run --api-sock PATH).\n"
		"\n"
		"Commands:\n"
		"  status           the VM's state, vCPUs and memory, and skiff's version\n"
		"  pause            pause the VM's vCPUs\n"
		"  resume           resume a paused VM\n"
		"  stop             stop the VM; that skiff then exits\n"
		"  config           the VM's configuration, in the JSON of Firecracker's\n"
		"                   GET /vm/config (what skiff run --config-file reads)\n"
		"  snapshot SNAPSHOT MEMFILE [--diff]\n"
		"                   save the VM (paused for the while, then resumed if it was\n"
		"                   running) to SNAPSHOT and its RAM to MEMFILE, for skiff run\n"
		"                   --restore; --diff saves only the pages changed since the\n"
		"                   last snapshot (see skiff merge-memory)\n"
		"  migrate tcp:HOST:PORT [--downtime-ms N] [--with-disks]\n"
		"                   move the running VM, live, to the skiff waiting at HOST:PORT\n"
		"                   (skiff run --incoming tcp:HOST:PORT) and follow it to its\n"
		"                   end: a progress bar on stderr when that is a terminal, else\n"
		"                   a line per phase, then a summary; the source skiff exits\n"
		"                   once the guest runs at the destination. --downtime-ms bounds\n"
		"                   the final pause (1-60000, default 50); --with-disks copies\n"
		"                   the disks too (the destination names where, with --disk),\n"
		"                   so no shared storage is needed. Ctrl-C cancels the migration\n"
		"                   (the VM goes on at the source); a second Ctrl-C leaves at once\n"
		"\n"
		"Options:\n"
		"  --api-sock PATH  the Unix socket skiff run --api-sock listens on (required)\n"
		"  --json           print the server's JSON answer on one line ({} when it has\n"
		"                   none); status prints {\"instance_info\": ...,\n"
		"                   \"machine_config\": ...}, the answers to GET / and\n"
		"                   GET /machine-config; migrate prints the last answer to\n"
		"                   GET /migrate, with \"source_exited\": true when the source\n"
		"                   skiff exited in the final phase before reporting the end\n"
		"  -h, --help       show this help\n"
		"\n"
		"Needs libcurl (Debian's libcurl4), loaded when a command runs.\n"
		"\n"
		"Exit status: 0 on success, 1 when the server refuses the request (its reason is\n"
		"printed) or a migration fails or is cancelled, 2 when the server cannot be\n"
		"reached or on any other error (a source skiff that went away before the final\n"
		"phase of its migration, too: whether the migration completed is then unknown).\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("skiff ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see skiff ctl --help)\n", stderr);
	return -EINVAL;
}

static size_t collect(char *data, size_t size, size_t count, void *opaque)
{
	struct ctl_answer *answer = opaque;
	size_t n = size * count;
	char *grown;

	/* Returning less than n makes libcurl abandon the transfer. */
	if (n > CTL_MAX_ANSWER - answer->len) {
		answer->error = -EFBIG;
		return 0;
	}
	grown = realloc(answer->body, answer->len + n + 1);
	if (!grown) {
		answer->error = -ENOMEM;
		return 0;
	}
	memcpy(grown + answer->len, data, n);
	answer->body = grown;
	answer->len += n;
	answer->body[answer->len] = '\0';
	return n;
}

static int add_header(const struct curl_lib *curl, struct curl_slist **headers, const char *line)
{
	/* On failure libcurl returns NULL and leaves the list as it was. */
	struct curl_slist *grown = curl->slist_append(*headers, line);

	if (!grown)
		return -ENOMEM;
	*headers = grown;
	return 0;
}

/* Whether a request failed because nothing listens on the socket any more. */
static bool server_gone(CURLcode code, long os_errno)
{
	if (code == CURLE_COULDNT_CONNECT)
		return os_errno == ECONNREFUSED || os_errno == ENOENT;
	/* Exited while answering: the connection closed or reset under the request. */
	return code == CURLE_GOT_NOTHING || code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR;
}

/* Says why no answer came; returns the matching -errno. */
static int report_no_answer(struct ctl *ctl, CURLcode code, const char *error,
			    const struct ctl_answer *answer)
{
	const char *command = ctl->command->name;
	long os_errno = 0;

	if (answer->error) {
		fprintf(stderr, "skiff ctl: %s: %s: the answer %s\n", command, ctl->socket_path,
			answer->error == -EFBIG ? "is too long" : "does not fit in memory");
		return answer->error;
	}
	ctl->curl->easy_getinfo(ctl->session, CURLINFO_OS_ERRNO, &os_errno);
	if (ctl->server_may_go && server_gone(code, os_errno))
		return -CTL_GONE;
	if (code == CURLE_COULDNT_CONNECT && os_errno > 0) {
		fprintf(stderr, "skiff ctl: %s: cannot connect to %s: %s\n", command,
			ctl->socket_path, strerror(os_errno));
		return -os_errno;
	}
	if (code == CURLE_OPERATION_TIMEDOUT) {
		fprintf(stderr, "skiff ctl: %s: %s: no answer within %d s\n", command,
			ctl->socket_path, CTL_TIMEOUT_SECONDS);
		return -ETIMEDOUT;
	}
	fprintf(stderr, "skiff ctl: %s: %s: %s\n", command, ctl->socket_path,
		error[0] ? error : ctl->curl->easy_strerror(code));
	return -EIO;
}

/* Prints the server's reason for refusing: Firecracker's errors carry a fault_message. */
static int report_refusal(const struct ctl *ctl, long status, const struct ctl_answer *answer)
{
	json_t *fault = answer->len ? json_loadb(answer->body, answer->len, 0, NULL) : NULL;
	const char *message = json_string_value(json_object_get(fault, "fault_message"));

	fprintf(stderr, "skiff ctl: %s: %s (HTTP %ld)\n", ctl->command->name,
		message ? message : "the server gave no fault_message", status);
	json_decref(fault);
	return -CTL_REFUSED;
}

static int set_request(struct ctl *ctl, const char *method, const char *path, const char *body,
		       struct curl_slist *headers, char *error, struct ctl_answer *answer)
{
	const struct curl_lib *curl = ctl->curl;
	CURL *s = ctl->session;
	char url[128];
	CURLcode code;

	/* The host is a formality: the socket decides where the request goes. */
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl->easy_reset(s);
	code = curl->easy_setopt(s, CURLOPT_URL, url);
	code = code ?: curl->easy_setopt(s, CURLOPT_UNIX_SOCKET_PATH, ctl->socket_path);
	/* An http_proxy in the environment must not divert a local socket's requests. */
	code = code ?: curl->easy_setopt(s, CURLOPT_PROXY, "");
	code = code ?: curl->easy_setopt(s, CURLOPT_TIMEOUT, ctl->timeout_s);
	code = code ?: curl->easy_setopt(s, CURLOPT_NOSIGNAL, 1L);
	code = code ?: curl->easy_setopt(s, CURLOPT_ERRORBUFFER, error);
	code = code ?: curl->easy_setopt(s, CURLOPT_HTTPHEADER, headers);
	code = code ?: curl->easy_setopt(s, CURLOPT_WRITEFUNCTION, collect);
	code = code ?: curl->easy_setopt(s, CURLOPT_WRITEDATA, answer);
	if (body) {
		code = code ?: curl->easy_setopt(s, CURLOPT_POSTFIELDS, body);
		code = code ?: curl->easy_setopt(s, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	code = code ?: curl->easy_setopt(s, CURLOPT_CUSTOMREQUEST, method);
	if (code != CURLE_OK) {
		fprintf(stderr, "skiff ctl: %s: libcurl: %s\n", ctl->command->name,
			curl->easy_strerror(code));
		return -EINVAL;
	}
	return 0;
}

/*
 * Sends one request with an optional JSON body. Returns 0 with *reply the answer's JSON
 * (NULL when it has no body) after a 2xx status, -CTL_REFUSED after any other, or -errno
 * when no usable answer came; every failure is reported on stderr.
 */
int ctl_request(struct ctl *ctl, const char *method, const char *path, const char *body,
		       json_t **reply)
{
	const struct curl_lib *curl = ctl->curl;
	struct ctl_answer answer = { 0 };
	struct curl_slist *headers = NULL;
	char error[CURL_ERROR_SIZE] = "";
	json_error_t json_error;
	CURLcode code;
	long status = 0;
	int ret;

	*reply = NULL;
	/* Firecracker's API speaks JSON both ways. */
	ret = add_header(curl, &headers, "Accept: application/json");
	if (!ret && body)
		ret = add_header(curl, &headers, "Content-Type: application/json");
	if (ret) {
		fprintf(stderr, "skiff ctl: %s: %s\n", ctl->command->name, strerror(-ret));
		goto out;
	}
	ret = set_request(ctl, method, path, body, headers, error, &answer);
	if (ret)
		goto out;
	code = curl->easy_perform(ctl->session);
	if (code != CURLE_OK) {
		ret = report_no_answer(ctl, code, error, &answer);
		goto out;
	}
	curl->easy_getinfo(ctl->session, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		ret = report_refusal(ctl, status, &answer);
		goto out;
	}
	if (answer.len) {
		*reply = json_loadb(answer.body, answer.len, 0, &json_error);
		if (!*reply) {
			fprintf(stderr, "skiff ctl: %s: the answer to %s %s is not JSON: %s\n",
				ctl->command->name, method, path, json_error.text);
			ret = -EPROTO;
		}
	}
out:
	free(answer.body);
	curl->slist_free_all(headers);
	return ret;
}

/* One line of JSON, or an indented block; {} stands for an answer with no body. */
int print_json(const json_t *json, size_t flags)
{
	char *text = json ? json_dumps(json, flags | JSON_PRESERVE_ORDER) : strdup("{}");

	if (!text) {
		fprintf(stderr, "skiff ctl: %s\n", strerror(ENOMEM));
		return -ENOMEM;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

static int cmd_status(struct ctl *ctl, const struct ctl_command *cmd)
{
	json_t *info = NULL, *machine = NULL, *both;
	const char *app, *id, *state, *version;
	json_int_t vcpus, memory;
	json_error_t error;
	int ret;

	(void)cmd;
	ret = ctl_request(ctl, "GET", "/", NULL, &info);
	if (ret)
		goto out;
	ret = ctl_request(ctl, "GET", "/machine-config", NULL, &machine);
	if (ret)
		goto out;
	if (!info || !machine) {
		fprintf(stderr, "skiff ctl: status: the answer to GET %s is empty\n",
			info ? "/machine-config" : "/");
		ret = -EPROTO;
		goto out;
	}
	if (ctl->json) {
		both = json_pack("{sOsO}", "instance_info", info, "machine_config", machine);
		if (!both) {
			fprintf(stderr, "skiff ctl: status: %s\n", strerror(ENOMEM));
			ret = -ENOMEM;
			goto out;
		}
		ret = print_json(both, JSON_COMPACT);
		json_decref(both);
		goto out;
	}
	if (json_unpack_ex(info, &error, 0, "{s:s, s:s, s:s, s:s}", "app_name", &app, "id", &id,
			   "state", &state, "vmm_version", &version) ||
	    json_unpack_ex(machine, &error, 0, "{s:I, s:I}", "vcpu_count", &vcpus, "mem_size_mib",
			   &memory)) {
		fprintf(stderr, "skiff ctl: status: unexpected answer: %s\n", error.text);
		ret = -EPROTO;
		goto out;
	}
	printf("state: %s\n"
	       "vcpus: %" JSON_INTEGER_FORMAT "\n"
	       "memory: %" JSON_INTEGER_FORMAT " MiB\n"
	       "version: %s %s\n"
	       "id: %s\n",
	       state, vcpus, memory, app, version, id);
out:
	json_decref(info);
	json_decref(machine);
	return ret;
}

/* pause, resume, stop: the server answers 204 with no body once it has done it. */
static int cmd_change(struct ctl *ctl, const struct ctl_command *cmd)
{
	json_t *reply;
	int ret;

	ret = ctl_request(ctl, cmd->method, cmd->path, cmd->body, &reply);
	if (ret)
		return ret;
	if (ctl->json)
		ret = print_json(reply, JSON_COMPACT);
	else
		printf("%s\n", cmd->done);
	json_decref(reply);
	return ret;
}

static int cmd_config(struct ctl *ctl, const struct ctl_command *cmd)
{
	json_t *config;
	int ret;

	(void)cmd;
	ret = ctl_request(ctl, "GET", "/vm/config", NULL, &config);
	if (ret)
		return ret;
	if (!config && !ctl->json) {
		fprintf(stderr, "skiff ctl: config: the answer to GET /vm/config is empty\n");
		return -EPROTO;
	}
	ret = print_json(config, ctl->json ? JSON_COMPACT : JSON_INDENT(2));
	json_decref(config);
	return ret;
}

/* An absolute path, as the server resolves paths from its own directory, not ours. */
static char *absolute(const char *path)
{
	char *cwd, *full = NULL;

	if (path[0] == '/')
		return strdup(path);
	cwd = getcwd(NULL, 0);
	if (cwd && asprintf(&full, "%s/%s", cwd, path) < 0)
		full = NULL;
	free(cwd);
	return full;
}

static int snapshot_request(struct ctl *ctl, const char *snapshot, const char *mem)
{
	json_t *body = json_pack("{s:s, s:s, s:s}", "snapshot_path", snapshot, "mem_file_path",
				 mem, "snapshot_type", ctl->diff ? "Diff" : "Full"), *reply;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int ret;

	json_decref(body);
	if (!text)
		return -ENOMEM;
	/* Writing a large VM's RAM takes a while. */
	ctl->timeout_s = CTL_SNAPSHOT_TIMEOUT_SECONDS;
	ret = ctl_request(ctl, "PUT", "/snapshot/create", text, &reply);
	ctl->timeout_s = CTL_TIMEOUT_SECONDS;
	json_decref(reply);
	free(text);
	return ret;
}

/* Pauses a running VM for the snapshot and resumes it after, whatever became of it. */
static int cmd_snapshot(struct ctl *ctl, const struct ctl_command *cmd)
{
	char *snapshot = absolute(ctl->operand[0]), *mem = absolute(ctl->operand[1]);
	json_t *info = NULL, *reply;
	bool running;
	int ret;

	(void)cmd;
	ret = snapshot && mem ? ctl_request(ctl, "GET", "/", NULL, &info) : -ENOMEM;
	running = !ret && !strcmp(json_string_value(json_object_get(info, "state")) ?: "",
				  "Running");
	if (running)
		ret = ctl_request(ctl, "PATCH", "/vm", "{\"state\":\"Paused\"}", &reply);
	ret = ret ?: snapshot_request(ctl, snapshot, mem);
	if (running && ctl_request(ctl, "PATCH", "/vm", "{\"state\":\"Resumed\"}", &reply))
		ret = ret ?: -EPROTO;
	if (ret == -ENOMEM)
		fprintf(stderr, "skiff ctl: snapshot: %s\n", strerror(ENOMEM));
	if (!ret && ctl->json)
		ret = print_json(NULL, JSON_COMPACT);
	else if (!ret)
		printf("snapshot %s, memory %s%s\n", snapshot, mem, ctl->diff ? " (diff)" : "");
	json_decref(info);
	free(snapshot);
	free(mem);
	return ret;
}

static const struct ctl_command commands[] = {
	{ .name = "status", .run = cmd_status },
	{ "pause", cmd_change, "PATCH", "/vm", "{\"state\":\"Paused\"}", "paused", 0, NULL },
	{ "resume", cmd_change, "PATCH", "/vm", "{\"state\":\"Resumed\"}", "resumed", 0, NULL },
	/* A skiff extension of Firecracker's actions: the VM stops and skiff exits. */
	{ "stop", cmd_change, "PUT", "/actions", "{\"action_type\":\"InstanceStop\"}", "stopped",
	  0, NULL },
	{ .name = "config", .run = cmd_config },
	{ .name = "snapshot",
	  .run = cmd_snapshot,
	  .operands = 2,
	  .operand_names = "SNAPSHOT and MEMFILE" },
	/* A skiff extension: the migration runs on in the server; migrate follows it. */
	{ .name = "migrate",
	  .run = cmd_migrate,
	  .operands = 1,
	  .operand_names = "a destination, tcp:HOST:PORT" },
};

static const struct ctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	}
	return NULL;
}

/* --downtime-ms N: PUT /migrate's range, checked here for a one-line usage error. */
static int parse_downtime(const char *text, long *ms)
{
	char *end;

	errno = 0;
	*ms = isdigit((unsigned char)text[0]) ? strtol(text, &end, 10) : 0;
	if (!isdigit((unsigned char)text[0]) || errno || *end || *ms < 1 ||
	    *ms > CTL_MAX_DOWNTIME_MS)
		return usage_error("--downtime-ms takes milliseconds from 1 to %d, not '%s'",
				   CTL_MAX_DOWNTIME_MS, text);
	return 0;
}

/* Options may come before or after the command; a --help anywhere wins. */
static int parse_args(int argc, char *const argv[], struct ctl *ctl, bool *help)
{
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			*help = true;
			return 0;
		}
	}
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "--json")) {
			ctl->json = true;
		} else if (!strcmp(arg, "--diff")) {
			ctl->diff = true;
		} else if (!strcmp(arg, "--with-disks")) {
			ctl->with_disks = true;
		} else if (!strcmp(arg, "--downtime-ms")) {
			if (i + 1 == argc)
				return usage_error("--downtime-ms needs N, in milliseconds");
			if (parse_downtime(argv[++i], &ctl->downtime_ms))
				return -EINVAL;
		} else if (!strncmp(arg, "--downtime-ms=", strlen("--downtime-ms="))) {
			if (parse_downtime(arg + strlen("--downtime-ms="), &ctl->downtime_ms))
				return -EINVAL;
		} else if (!strcmp(arg, "--api-sock")) {
			if (i + 1 == argc)
				return usage_error("--api-sock needs a PATH");
			ctl->socket_path = argv[++i];
		} else if (!strncmp(arg, "--api-sock=", strlen("--api-sock="))) {
			ctl->socket_path = arg + strlen("--api-sock=");
		} else if (arg[0] == '-') {
			return usage_error("unknown option '%s'", arg);
		} else if (ctl->command && ctl->nr_operands < ctl->command->operands) {
			ctl->operand[ctl->nr_operands++] = arg;
		} else if (ctl->command) {
			return usage_error("one command at a time, not '%s' and '%s'",
					   ctl->command->name, arg);
		} else {
			ctl->command = find_command(arg);
			if (!ctl->command)
				return usage_error("unknown command '%s'", arg);
		}
	}
	if (!ctl->command)
		return usage_error("a command is required: status, pause, resume, stop, config, "
				   "snapshot or migrate");
	if (ctl->nr_operands < ctl->command->operands)
		return usage_error("%s needs %s", ctl->command->name,
				   ctl->command->operand_names);
	if (ctl->diff && ctl->command->run != cmd_snapshot)
		return usage_error("--diff is for snapshot");
	if ((ctl->downtime_ms || ctl->with_disks) && ctl->command->run != cmd_migrate)
		return usage_error("--downtime-ms and --with-disks are for migrate");
	if (!ctl->socket_path || !ctl->socket_path[0])
		return usage_error("--api-sock PATH is required");
	if (strlen(ctl->socket_path) > CTL_MAX_SOCKET_PATH)
		return usage_error("--api-sock %s: a socket path has at most %zu bytes",
				   ctl->socket_path, CTL_MAX_SOCKET_PATH);
	return 0;
}

int ctl_main(int argc, char *const argv[])
{
	struct ctl ctl = { .timeout_s = CTL_TIMEOUT_SECONDS };
	bool help = false;
	int ret;

	if (parse_args(argc, argv, &ctl, &help))
		return EXIT_CTL_ERROR;
	if (help) {
		print_help(stdout);
		return 0;
	}
	ctl.curl = curl_lib();
	if (!ctl.curl)
		return EXIT_CTL_ERROR;
	ctl.session = ctl.curl->easy_init();
	if (!ctl.session) {
		fprintf(stderr, "skiff ctl: %s: cannot start a libcurl session\n",
			ctl.command->name);
		return EXIT_CTL_ERROR;
	}
	ret = ctl.command->run(&ctl, ctl.command);
	ctl.curl->easy_cleanup(ctl.session);
	if (!ret && fflush(stdout)) {
		ret = -errno;
		fprintf(stderr, "skiff ctl: %s: cannot write the output: %s\n", ctl.command->name,
			strerror(-ret));
	}
	if (ret == -CTL_REFUSED)
		return EXIT_REFUSED;
	return ret ? EXIT_CTL_ERROR : 0;
}
