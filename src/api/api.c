#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Out of memory leaves no body to send: the answer is a bare 500. */
static void api_set_json(struct api_response *resp, unsigned status, json_t *obj)
{
	free(resp->body);
	resp->text = false;
	resp->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	resp->status = resp->body ? status : 500;
	json_decref(obj);
}

void api_fault(struct api_response *resp, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_set_json(resp, status, json_pack("{s:s}", "fault_message", msg));
}

void api_json(struct api_response *resp, json_t *obj)
{
	api_set_json(resp, 200, obj);
}

void api_request_release(struct api_request *req)
{
	json_decref(req->body);
	req->body = NULL;
}

void api_response_release(struct api_response *resp)
{
	free(resp->body);
	resp->body = NULL;
}
