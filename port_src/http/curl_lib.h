/*
 * curl_lib.h - libcurl, bound at run time: the functions the HTTP client
 * (http.c) calls, loaded with dlopen() on a thread of its own from the
 * first HTTP request on, and libcurl's error codes as the protocol's atoms.
 *
 * libcurl is loaded, not linked: with it come 30-odd libraries (OpenSSL,
 * GnuTLS, Kerberos, LDAP...) whose mapped pages put 8 MiB of RSS on every
 * instance of the program, and the instance behind caravan_epmd never makes
 * an HTTP request.
 */
#ifndef CARAVAN_CURL_LIB_H
#define CARAVAN_CURL_LIB_H

/* The type-checking macros would rename our function pointers' calls. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_LIBCURL_SONAME "libcurl.so.4"
/* The start of a request's error detail when the load failed; the load's
 * own reason follows it. */
#define HTTP_LIBCURL_MISSING "libcurl could not be loaded (is libcurl4 installed?)"

struct curl_fns {
    CURLcode (*global_init)(long);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    CURLcode (*easy_pause)(CURL *, int);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    char *(*version)(void);
};

/* Bound by the loader; not to be called before curl_lib_state() is
 * CURL_LIB_READY. */
extern struct curl_fns curl_lib;

/*
 * The load: dlopen, the bindings and curl_global_init take 15 ms or more
 * (OpenSSL's initialisation), which on the loop would hold up every ping.
 * A loader thread does them; the loop polls curl_lib_loader_fd and calls
 * curl_lib_load_poll, which joins the thread and publishes its outcome.
 * All of these are for the loop's thread only.
 *
 * IMPORTANT: while the loader runs (CURL_LIB_LOADING) the process must
 * leave with _exit, never exit(): the thread may be inside dlopen, holding
 * the dynamic linker's lock that exit()'s destructors (_dl_fini) take, or
 * inside OpenSSL's initialisation while exit() tears libraries down.
 */
enum curl_lib_state {
    CURL_LIB_UNLOADED, /* never asked for */
    CURL_LIB_LOADING,  /* the loader thread runs */
    CURL_LIB_READY,
    CURL_LIB_FAILED,   /* the last load failed: curl_lib_error says why */
};

/* Starts a load unless libcurl is loaded or loading (a failed load is
 * tried again). Without a thread to be had it loads here and now. Returns
 * the state after it. */
enum curl_lib_state curl_lib_load_start(void);
/* The descriptor that turns readable when the loader is done; -1 unless
 * CURL_LIB_LOADING. */
int curl_lib_loader_fd(void);
/* Reaps a finished loader (the failure's reason goes to stderr); never
 * waits. Returns the state. */
enum curl_lib_state curl_lib_load_poll(void);
enum curl_lib_state curl_lib_state(void);
/* Why the last load failed ("libcurl.so.4 lacks curl_multi_init"), or "". */
const char *curl_lib_error(void);

/* "libcurl.so.4: libcurl/7.88.1 OpenSSL/...", or "none: " and why (not
 * loaded yet, or the dlopen/dlsym error). */
void curl_lib_describe(char *out, size_t cap);

/* The protocol's atom for how a transfer failed: too_large when the body
 * budget said so, else libcurl's code (with its error text, for TLS alerts
 * reported as receive errors). */
const char *curl_lib_atom(CURLcode c, bool too_large, const char *error);

#endif
