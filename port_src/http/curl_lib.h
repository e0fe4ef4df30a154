/*
 * curl_lib.h - libcurl, bound at run time: the functions the HTTP client
 * (http.c) calls, loaded with dlopen() on the first HTTP request, and
 * libcurl's error codes as the protocol's atoms.
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

/* Bound by curl_lib_load; not to be called before it returned 0. */
extern struct curl_fns curl_lib;

/* Loads and initialises libcurl once. Returns 0, or -1 (the reason on
 * stderr and in curl_lib_describe). */
int curl_lib_load(void);

/* "libcurl.so.4: libcurl/7.88.1 OpenSSL/...", or "none: " and why (not
 * loaded yet, or the dlopen/dlsym error). */
void curl_lib_describe(char *out, size_t cap);

/* The protocol's atom for how a transfer failed: too_large when the body
 * budget said so, else libcurl's code (with its error text, for TLS alerts
 * reported as receive errors). */
const char *curl_lib_atom(CURLcode c, bool too_large, const char *error);

#endif
