/*
 * Firecracker's endpoints (shared/reference/firecracker-api.yaml) and skiff's few own:
 * a request's method, path and body become an api_request for the VM, or are answered
 * here (version, unknown paths, wrong methods, malformed bodies). State-free: this runs on
 * the API thread.
 */
#ifndef SKIFF_API_ROUTES_H
#define SKIFF_API_ROUTES_H

#include "api.h"

#include <stddef.h>

/* Bodies larger than this are refused with 413, as Firecracker's limit (51200 bytes). */
#define API_MAX_BODY 51200

/* Returns true with req filled for the VM, or false with resp filled: the answer. */
bool api_route(const char *method, const char *path, const char *body, size_t len,
	       struct api_request *req, struct api_response *resp);
/*
 * For the Allow header of a 405: the methods path takes, e.g. "GET, PUT" (valid until the
 * calling thread's next call); NULL: no such path.
 */
const char *api_allowed_methods(const char *path);

#endif
