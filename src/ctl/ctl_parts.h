/* What skiff ctl's files share; not for anyone else. */
#ifndef SKIFF_CTL_PARTS_H
#define SKIFF_CTL_PARTS_H

#include "curl_lib.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#define EXIT_REFUSED   1
#define EXIT_CTL_ERROR 2

/* What a request returns when the server answered with an error status (exit 1). */
#define CTL_REFUSED EREMOTEIO
/* What a request returns, silently, when the server went away and ctl->server_may_go. */
#define CTL_GONE ESHUTDOWN

/* A request with no answer by then fails: a stuck server must not hang its caller. */
#define CTL_TIMEOUT_SECONDS 10
/* Long enough to write a large VM's RAM to disk. */
#define CTL_SNAPSHOT_TIMEOUT_SECONDS 3600
/* The API's answers are a few KiB; anything much larger is not one of them. */
#define CTL_MAX_ANSWER (1 << 20)
/* The longest path a Unix socket address holds, less its terminating NUL. */
#define CTL_MAX_SOCKET_PATH (sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)
/* How often migrate asks for progress: a smooth bar, and a trifle for the server. */
#define CTL_MIGRATE_POLL_MS 100
/* PUT /migrate's range for downtime_ms. */
#define CTL_MAX_DOWNTIME_MS 60000

struct ctl;

struct ctl_command {
	const char *name;
	int (*run)(struct ctl *ctl, const struct ctl_command *cmd);
	/* For the commands that change the VM: the request, and what to print once done. */
	const char *method;
	const char *path;
	const char *body;
	const char *done;
	unsigned operands;	    /* words after the command's name it takes */
	const char *operand_names; /* for the error when some are missing */
};

struct ctl {
	const char *socket_path;
	const struct ctl_command *command;
	const char *operand[2];
	unsigned nr_operands;
	bool json;
	bool diff;	 /* snapshot --diff */
	long downtime_ms; /* migrate --downtime-ms; 0: the server's default */
	bool with_disks;  /* migrate --with-disks */
	long timeout_s;	 /* for the next request */
	/* A server gone is an answer, not an error: a migrated skiff exits. */
	bool server_may_go;
	const struct curl_lib *curl;
	CURL *session; /* one per run, so that status's two requests share a connection */
};

/* An answer's body as it arrives, NUL-terminated. */
struct ctl_answer {
	char *body;
	size_t len;
	int error; /* why collect() stopped the transfer */
};

/*
 * Sends one request with an optional JSON body. Returns 0 with *reply the answer's JSON
 * (NULL when it has no body) after a 2xx status, -CTL_REFUSED after any other, -CTL_GONE
 * when the server went away and ctl->server_may_go, or -errno when no usable answer came;
 * every failure but the last is reported on stderr.
 */
int ctl_request(struct ctl *ctl, const char *method, const char *path, const char *body,
		json_t **reply);
/* One line of JSON, or an indented block; {} stands for an answer with no body. */
int print_json(const json_t *json, size_t flags);

/* migrate.c */
int cmd_migrate(struct ctl *ctl, const struct ctl_command *cmd);

#endif
