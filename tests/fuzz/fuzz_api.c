/*
 * libFuzzer target: the API's request path after HTTP parsing (which libmicrohttpd does):
 * routing and body checks, then the pre-boot controller that builds the VM's configuration.
 * Input: the method's index (one byte), the path up to '\n', then the body. One controller
 * lives across inputs, so sequences of requests build up state as a client's would.
 */
#include "../../src/api/controller.h"
#include "../../src/api/routes.h"
#include "../../src/log.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int refuse_boot(void *opaque, const struct vm_config *cfg, int serial_fd,
		       struct vm_snapshot *snap, bool paused)
{
	(void)opaque, (void)cfg, (void)serial_fd, (void)snap, (void)paused;
	return -EINVAL; /* no VM here: the controller stays before InstanceStart */
}

static void ignore_quit(void *opaque)
{
	(void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "PUT", "PATCH", "POST", "DELETE" };
	static struct controller ctl;
	static struct api_counters counters;
	static bool ready;
	struct vm_config base = { .cpus = 1, .memory = 128 << 20 };
	struct api_request req;
	struct api_response resp;
	const uint8_t *newline;
	const char *method;
	char path[256];
	size_t len;

	if (!ready) {
		log_set_level(LOG_OFF);
		if (controller_init(&ctl, &base, &counters, NULL,
				    (struct controller_hooks){ refuse_boot, ignore_quit, NULL }))
			return 0;
		ready = true;
	}
	if (size < 2)
		return 0;
	method = methods[data[0] % 5];
	newline = memchr(data + 1, '\n', size - 1);
	len = newline ? (size_t)(newline - data - 1) : size - 1;
	if (len >= sizeof(path))
		return 0;
	memcpy(path, data + 1, len);
	path[len] = '\0';
	data += 1 + len + (newline != NULL);
	size -= 1 + len + (newline != NULL);
	if (api_route(method, path, (const char *)data, size, &req, &resp)) {
		/* These touch files named by the input: not for a fuzzer to do. */
		if (req.op != API_PUT_LOGGER && req.op != API_PUT_SERIAL &&
		    req.op != API_PUT_METRICS && req.op != API_SNAPSHOT_LOAD)
			controller_handle(&ctl, &req, &resp);
		api_request_release(&req);
	}
	api_response_release(&resp);
	return 0;
}
