#include "slirp_lib.h"

#include "../log.h"

#include <dlfcn.h>
#include <pthread.h>

static struct slirp_lib lib;
static const struct slirp_lib *loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	void *h = dlopen("libslirp.so.0", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		log_error("--net user: cannot load libslirp: %s", dlerror());
		return;
	}
	/* POSIX's way from a data pointer to a function pointer: copy the bits. */
	*(void **)&lib.create = dlsym(h, "slirp_new");
	*(void **)&lib.cleanup = dlsym(h, "slirp_cleanup");
	*(void **)&lib.input = dlsym(h, "slirp_input");
	*(void **)&lib.pollfds_fill = dlsym(h, "slirp_pollfds_fill");
	*(void **)&lib.pollfds_poll = dlsym(h, "slirp_pollfds_poll");
	*(void **)&lib.add_hostfwd = dlsym(h, "slirp_add_hostfwd");
	if (!lib.create || !lib.cleanup || !lib.input || !lib.pollfds_fill ||
	    !lib.pollfds_poll || !lib.add_hostfwd) {
		log_error("--net user: libslirp lacks a function skiff needs");
		dlclose(h);
		return;
	}
	loaded = &lib; /* the handle stays open for the life of the process */
}

const struct slirp_lib *slirp_lib(void)
{
	pthread_once(&once, load);
	return loaded;
}
