/*
 * libcurl, loaded on first use: only skiff ctl speaks HTTP, and linking it (with the TLS
 * libraries it pulls in) would cost every skiff start their loading.
 */
#ifndef SKIFF_CURL_LIB_H
#define SKIFF_CURL_LIB_H

#include <curl/curl.h>

/* The entry points skiff ctl uses, typed from libcurl's own declarations. */
struct curl_lib {
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_easy_reset) *easy_reset;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
};

/* The library, initialised; NULL, with one line logged, if it cannot be loaded. */
const struct curl_lib *curl_lib(void);

#endif
