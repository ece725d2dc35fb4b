/*
 * The management API's requests and answers, as they pass from the HTTP thread (which
 * parses and validates them: routes.c) to the VM's thread (which carries them out:
 * controller.c) through the queue (queue.c).
 */
#ifndef SKIFF_API_H
#define SKIFF_API_H

#include <jansson.h>
#include <stdbool.h>

#define API_ID_MAX 64

enum api_op {
	API_GET_INFO,		/* GET / */
	API_PUT_BOOT_SOURCE,
	API_GET_MACHINE,
	API_PUT_MACHINE,
	API_PATCH_MACHINE,
	API_PUT_DRIVE,
	API_PATCH_DRIVE,
	API_PUT_NET,
	API_PUT_ENTROPY,
	API_PUT_SERIAL,
	API_INSTANCE_START,	/* PUT /actions */
	API_SEND_CTRL_ALT_DEL,
	API_FLUSH_METRICS,
	API_INSTANCE_STOP,	/* skiff's own action: stop the VM, and skiff */
	API_PAUSE,		/* PATCH /vm */
	API_RESUME,
	API_GET_VM_CONFIG,
	API_PUT_LOGGER,
	API_PUT_METRICS,
	API_GET_METRICS,	/* skiff's own: the counters in Prometheus's text format */
	API_SNAPSHOT_CREATE,
	API_SNAPSHOT_LOAD,
	API_MIGRATE_START,	/* skiff's own: PUT /migrate */
	API_MIGRATE_STATUS,	/* GET /migrate */
	API_MIGRATE_CANCEL,	/* DELETE /migrate */
	/* Not from clients: a migration's steps that need the VM's thread (migrate.h). */
	API_MIGRATE_TRACK,
	API_MIGRATE_FINAL,
	API_MIGRATE_COMPLETE,
	API_MIGRATE_ROLLBACK,
	API_OPS
};

struct api_request {
	enum api_op op;
	char id[API_ID_MAX + 1]; /* {drive_id} or {iface_id} of the path */
	json_t *body;		 /* the request's JSON object, checked for its shape; or NULL */
	void *job;		 /* the internal API_MIGRATE_* steps: the migration */
};

struct api_response {
	unsigned status;
	char *body;	   /* malloc'd; NULL for none */
	bool text;	   /* body is text/plain (metrics), not JSON */
};

/* Fills resp with status and {"fault_message": ...}. */
void api_fault(struct api_response *resp, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Fills resp with 200 and obj as JSON (stealing the reference). */
void api_json(struct api_response *resp, json_t *obj);
void api_request_release(struct api_request *req);
void api_response_release(struct api_response *resp);

#endif
