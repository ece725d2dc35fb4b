#include "slirp_lib.h"

#include "../util/dynlib.h"

#include <pthread.h>

static struct slirp_lib lib;
static const struct slirp_lib *loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	const struct dynlib_symbol symbols[] = {
		{ "slirp_new", &lib.create },
		{ "slirp_cleanup", &lib.cleanup },
		{ "slirp_input", &lib.input },
		{ "slirp_pollfds_fill", &lib.pollfds_fill },
		{ "slirp_pollfds_poll", &lib.pollfds_poll },
		{ "slirp_add_hostfwd", &lib.add_hostfwd },
	};

	/* The library stays open for the life of the process. */
	if (!dynlib_load("libslirp.so.0", "--net user", symbols,
			 sizeof(symbols) / sizeof(symbols[0]), NULL))
		loaded = &lib;
}

const struct slirp_lib *slirp_lib(void)
{
	pthread_once(&once, load);
	return loaded;
}
