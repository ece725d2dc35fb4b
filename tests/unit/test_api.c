#include "test.h"

#include "../../src/api/config_file.h"
#include "../../src/api/controller.h"
#include "../../src/api/metrics.h"
#include "../../src/api/queue.h"
#include "../../src/api/routes.h"
#include "../../src/api/vm_json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>

/* Routes a request and returns the status it is answered with, or 0 if it goes to the VM. */
static unsigned route(const char *method, const char *path, const char *body,
		      struct api_request *req)
{
	struct api_response resp;
	bool to_vm = api_route(method, path, body, body ? strlen(body) : 0, req, &resp);

	api_response_release(&resp);
	return to_vm ? 0 : resp.status;
}

static bool fault_says(struct api_response *resp, const char *text)
{
	return resp->body && strstr(resp->body, "\"fault_message\"") && strstr(resp->body, text);
}

TEST(routes_reach_the_vm)
{
	struct api_request req;

	CHECK(route("GET", "/", NULL, &req) == 0 && req.op == API_GET_INFO);
	CHECK(route("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", &req) == 0 &&
	      req.op == API_INSTANCE_START);
	api_request_release(&req);
	CHECK(route("PUT", "/actions", "{\"action_type\": \"InstanceStop\"}", &req) == 0 &&
	      req.op == API_INSTANCE_STOP);
	api_request_release(&req);
	CHECK(route("PATCH", "/vm", "{\"state\": \"Resumed\"}", &req) == 0 && req.op == API_RESUME);
	api_request_release(&req);
	CHECK(route("PUT", "/drives/rootfs",
		    "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/r\", \"is_root_device\": true}",
		    &req) == 0 && req.op == API_PUT_DRIVE && !strcmp(req.id, "rootfs"));
	api_request_release(&req);
	CHECK(route("PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/x\"}",
		    &req) == 0 && req.op == API_PATCH_DRIVE);
	api_request_release(&req);
	CHECK(route("PATCH", "/machine-config", "{\"vcpu_count\": 2}", &req) == 0);
	api_request_release(&req);
	CHECK(route("PUT", "/metrics", "{\"metrics_path\": \"/m\", \"properties\": {\"a\": \"b\"}}",
		    &req) == 0);
	api_request_release(&req);
	CHECK(route("GET", "/metrics", NULL, &req) == 0 && req.op == API_GET_METRICS);
}

TEST(routes_answer_bad_requests)
{
	struct api_request req;

	CHECK(route("GET", "/version", NULL, &req) == 200);
	CHECK(route("GET", "/nope", NULL, &req) == 404);
	CHECK(route("DELETE", "/", NULL, &req) == 405);
	CHECK(route("GET", "/boot-source", NULL, &req) == 405);
	CHECK(route("PUT", "/balloon", "{}", &req) == 400);		/* Firecracker's, not ours */
	CHECK(route("PUT", "/snapshot/create", "{}", &req) == 400);
	CHECK(route("PUT", "/boot-source", NULL, &req) == 400);	/* no body */
	CHECK(route("PUT", "/boot-source", "{\"kernel_image_path\": ", &req) == 400);
	CHECK(route("PUT", "/boot-source", "[1]", &req) == 400);
	CHECK(route("PUT", "/boot-source", "{\"kernel_image_path\": 1}", &req) == 400);
	CHECK(route("PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"x\": 1}", &req) == 400);
	CHECK(route("PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"kernel_image_path\": "
		    "\"/j\"}", &req) == 400);
	CHECK(route("PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 128}", &req) ==
	      400);
	CHECK(route("PUT", "/machine-config", "{\"vcpu_count\": 1}", &req) == 400);
	CHECK(route("PATCH", "/machine-config", "{\"cpus\": 1}", &req) == 400);
	CHECK(route("PUT", "/drives/a", "{\"drive_id\": \"b\", \"path_on_host\": \"/r\", "
		    "\"is_root_device\": true}", &req) == 400);	/* ids differ */
	CHECK(route("PUT", "/drives/", "{}", &req) == 400);
	CHECK(route("PUT", "/drives/a%2fb", "{}", &req) == 400);
	CHECK(route("PATCH", "/drives/a", "{\"drive_id\": \"a\"}", &req) == 400);
	CHECK(route("PATCH", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
		    "\"rate_limiter\": {}}", &req) == 400);
	CHECK(route("PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", &req) == 400);
	CHECK(route("PUT", "/actions", "{\"action_type\": \"Reboot\"}", &req) == 400);
	CHECK(route("PUT", "/actions", "{}", &req) == 400);
	CHECK(route("PATCH", "/vm", "{\"state\": \"Stopped\"}", &req) == 400);
	CHECK(route("PUT", "/logger", "{\"show_level\": \"yes\"}", &req) == 400);
	CHECK(route("PUT", "/metrics", "{}", &req) == 400);
	CHECK(route("PUT", "/metrics", "{\"metrics_path\": \"/m\", \"properties\": {\"a\": 1}}",
		    &req) == 400);
	CHECK(route("PUT", "/serial", "{\"serial_out_path\": \"\"}", &req) == 400);
	CHECK(route("PUT", "/entropy", "{\"rate_limiter\": {}}", &req) == 400);
}

TEST(faults_are_json)
{
	struct api_request req;
	struct api_response resp;

	CHECK(!api_route("PUT", "/machine-config", "{\"vcpu_count\": 9999, \"mem_size_mib\": 128}",
			 strlen("{\"vcpu_count\": 9999, \"mem_size_mib\": 128}"), &req, &resp));
	CHECK(resp.status == 400 && fault_says(&resp, "vcpu_count"));
	api_response_release(&resp);
	CHECK(!api_route("POST", "/vm", "", 0, &req, &resp));
	CHECK(resp.status == 405 && fault_says(&resp, "PATCH"));
	CHECK(!strcmp(api_allowed_methods("/machine-config"), "GET, PUT, PATCH"));
	api_response_release(&resp);
}

/* A controller with no VM behind it: boot succeeds or fails as told. */
static int boots;
static int fake_boot_result;

static int fake_boot(void *opaque, const struct vm_config *cfg, int serial_fd,
		     struct vm_snapshot *snap, bool paused)
{
	(void)opaque, (void)serial_fd, (void)snap, (void)paused;
	boots++;
	CHECK(cfg->kernel_path && cfg->cpus == 2 && cfg->nr_disks == 1 && cfg->has_root);
	return fake_boot_result;
}

static void fake_quit(void *opaque)
{
	(void)opaque;
}

static unsigned call(struct controller *ctl, const char *method, const char *path,
		     const char *body, char **answer)
{
	struct api_request req;
	struct api_response resp;

	if (api_route(method, path, body, body ? strlen(body) : 0, &req, &resp)) {
		controller_handle(ctl, &req, &resp);
		api_request_release(&req);
	}
	if (answer)
		*answer = resp.body;
	else
		api_response_release(&resp);
	return resp.status;
}

TEST(controller_builds_the_vm_before_boot)
{
	struct vm_config base = { .cpus = 1, .memory = 128 << 20 };
	struct api_counters counters = { 0 };
	struct controller ctl;
	char *answer;

	CHECK(controller_init(&ctl, &base, &counters, NULL,
			      (struct controller_hooks){ fake_boot, fake_quit, NULL }) == 0);
	CHECK(call(&ctl, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", &answer) == 400);
	CHECK(answer && strstr(answer, "boot-source"));
	free(answer);
	CHECK(call(&ctl, "PATCH", "/vm", "{\"state\": \"Paused\"}", NULL) == 400);
	CHECK(call(&ctl, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}", NULL) == 204);
	CHECK(call(&ctl, "PATCH", "/machine-config", "{\"vcpu_count\": 2}", NULL) == 204);
	CHECK(call(&ctl, "PATCH", "/machine-config", "{\"mem_size_mib\": 1}", NULL) == 400);
	CHECK(call(&ctl, "PUT", "/drives/root", "{\"drive_id\": \"root\", \"path_on_host\": \"/a\", "
		   "\"is_root_device\": true}", NULL) == 204);
	/* the same id again replaces; a second root is refused */
	CHECK(call(&ctl, "PUT", "/drives/root", "{\"drive_id\": \"root\", \"path_on_host\": \"/b\", "
		   "\"is_root_device\": true}", NULL) == 204);
	CHECK(call(&ctl, "PUT", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"/c\", "
		   "\"is_root_device\": true}", NULL) == 400);
	CHECK(call(&ctl, "GET", "/machine-config", NULL, &answer) == 200);
	CHECK(answer && strstr(answer, "\"vcpu_count\":2") && strstr(answer, "\"mem_size_mib\":128"));
	free(answer);
	CHECK(call(&ctl, "GET", "/vm/config", NULL, &answer) == 200);
	CHECK(answer && strstr(answer, "\"/b\"") && !strstr(answer, "\"/a\""));
	free(answer);
	fake_boot_result = -EINVAL;
	CHECK(call(&ctl, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", NULL) == 400);
	fake_boot_result = 0;
	CHECK(call(&ctl, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", NULL) == 204);
	CHECK(boots == 2);
	/* the fake boot set no VM: the state is the controller's to say */
	CHECK(call(&ctl, "GET", "/", NULL, &answer) == 200);
	CHECK(answer && strstr(answer, "\"Running\""));
	free(answer);
	CHECK(call(&ctl, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}", NULL) == 400);
	CHECK(call(&ctl, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", NULL) == 400);
	controller_destroy(&ctl);
}

TEST(export_round_trips)
{
	struct vm_config vm = {
		.kernel_path = "/k", .initrd_path = "/i", .cmdline = "quiet", .cpus = 3,
		.memory = 512ULL << 20, .huge_pages = HUGE_PAGES_TRANSPARENT, .nr_disks = 2,
		.has_root = true, .root_disk = 1, .nr_nets = 2, .rng = true,
	};
	struct vm_config back = { 0 };
	json_t *doc;
	char *text;
	void *keep;

	vm.disks[0] = (struct blk_config){ .path = "/d0", .readonly = true, .id = "data" };
	vm.disks[1] = (struct blk_config){ .path = "/d1" };
	vm.nets[0] = (struct net_config){ .backend = NET_TAP, .ifname = "tap0", .mac_set = true,
					  .mac = { 2, 0, 0, 0, 0, 9 } };
	vm.nets[1] = (struct net_config){ .id = "slirp", .backend = NET_USER, .nr_hostfwd = 1,
					  .hostfwd = { { .udp = true, .host_addr = htonl(0x7f000001),
							 .host_port = 5353, .guest_port = 53 } } };
	doc = vm_json_export(&vm);
	text = json_dumps(doc, 0);
	CHECK(text && strstr(text, "\"udp:127.0.0.1:5353-:53\"") && strstr(text, "\"eth0\""));
	CHECK(config_file_parse(text, strlen(text), "export", &back, &keep) == 0);
	CHECK(!strcmp(back.kernel_path, "/k") && !strcmp(back.initrd_path, "/i"));
	CHECK(!strcmp(back.cmdline, "quiet") && back.cpus == 3 && back.memory == vm.memory);
	CHECK(back.huge_pages == HUGE_PAGES_TRANSPARENT && back.rng);
	CHECK(back.nr_disks == 2 && back.disks[0].readonly && !strcmp(back.disks[0].id, "data"));
	CHECK(!strcmp(back.disks[1].id, "vdb") && back.has_root && back.root_disk == 1);
	CHECK(back.nr_nets == 2 && back.nets[0].mac_set && back.nets[0].mac[5] == 9);
	CHECK(back.nets[1].backend == NET_USER && back.nets[1].nr_hostfwd == 1);
	CHECK(!memcmp(&back.nets[1].hostfwd[0], &vm.nets[1].hostfwd[0], sizeof(struct net_hostfwd)));
	config_file_free(keep);
	free(text);
	json_decref(doc);
}

TEST(metrics_render_both_ways)
{
	struct metrics m = { 0 };
	json_t *obj;
	char *text;

	metrics_add(&m, "uptime_us", "Uptime", NULL, NULL, 42);
	metrics_add(&m, "vcpu_exits_total", "Exits", "reason", "io", 7);
	metrics_add(&m, "vcpu_exits_total", "Exits", "reason", "hlt", 1);
	obj = metrics_to_json(&m);
	CHECK(json_integer_value(json_object_get(obj, "uptime_us")) == 42);
	CHECK(json_integer_value(json_object_get(json_object_get(obj, "vcpu_exits_total"), "hlt")) ==
	      1);
	json_decref(obj);
	text = metrics_to_prometheus(&m);
	CHECK(text && strstr(text, "# TYPE skiff_vcpu_exits_total counter\n"));
	CHECK(text && strstr(text, "skiff_vcpu_exits_total{reason=\"io\"} 7\n"));
	CHECK(text && strstr(text, "skiff_uptime_us 42\n"));
	/* HELP once per name */
	CHECK(text && strstr(text, "# HELP skiff_vcpu_exits_total Exits\n") &&
	      !strstr(strstr(text, "# HELP skiff_vcpu_exits_total") + 1, "# HELP skiff_vcpu"));
	free(text);
	metrics_free(&m);
}

/* The VM side of the queue: answers with the op number as the status. */
static void echo_op(void *opaque, struct api_request *req, struct api_response *resp)
{
	(*(int *)opaque)++;
	resp->status = 200 + req->op;
}

static void *caller(void *arg)
{
	struct api_call call = { .req = { .op = API_GET_METRICS } };

	api_queue_call(arg, &call);
	api_response_release(&call.resp);
	return (void *)(uintptr_t)call.resp.status;
}

TEST(queue_hands_over_and_closes)
{
	struct api_queue q;
	pthread_t threads[4];
	int served = 0;
	void *status;

	CHECK(api_queue_init(&q) == 0);
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, caller, &q);
	while (served < 4) {
		struct pollfd pfd = { .fd = q.fd, .events = POLLIN };

		CHECK(poll(&pfd, 1, 5000) == 1);
		api_queue_serve(&q, echo_op, &served);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], &status);
		CHECK((uintptr_t)status == 200 + API_GET_METRICS);
	}
	api_queue_close(&q);
	pthread_create(&threads[0], NULL, caller, &q);
	pthread_join(threads[0], &status);
	CHECK((uintptr_t)status == 503);
	api_queue_destroy(&q);
}

TEST_MAIN(T(routes_reach_the_vm), T(routes_answer_bad_requests), T(faults_are_json),
	  T(controller_builds_the_vm_before_boot), T(export_round_trips),
	  T(metrics_render_both_ways), T(queue_hands_over_and_closes))
