#include "curl_lib.h"

#include "../log.h"
#include "../util/dynlib.h"

#include <pthread.h>

/* Process-wide, like the library itself: curl_global_init() may run only once. */
static struct curl_lib lib;
static const struct curl_lib *loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	__typeof__(curl_global_init) *global_init;
	const struct dynlib_symbol symbols[] = {
		{ "curl_global_init", &global_init },
		{ "curl_easy_init", &lib.easy_init },
		{ "curl_easy_setopt", &lib.easy_setopt },
		{ "curl_easy_perform", &lib.easy_perform },
		{ "curl_easy_getinfo", &lib.easy_getinfo },
		{ "curl_easy_strerror", &lib.easy_strerror },
		{ "curl_easy_reset", &lib.easy_reset },
		{ "curl_easy_cleanup", &lib.easy_cleanup },
		{ "curl_slist_append", &lib.slist_append },
		{ "curl_slist_free_all", &lib.slist_free_all },
	};
	CURLcode code;

	/* Never closed: libcurl and its TLS library keep process-wide state until exit. */
	if (dynlib_load("libcurl.so.4", "ctl", symbols, sizeof(symbols) / sizeof(symbols[0]),
			NULL))
		return;
	code = global_init(CURL_GLOBAL_DEFAULT);
	if (code != CURLE_OK) {
		log_error("ctl: cannot initialise libcurl: %s", lib.easy_strerror(code));
		return;
	}
	loaded = &lib;
}

const struct curl_lib *curl_lib(void)
{
	pthread_once(&once, load);
	return loaded;
}
