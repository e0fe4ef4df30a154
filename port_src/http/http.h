/*
 * http.h - HTTP GETs (and the PUTs of agent registration) with libcurl's
 * multi interface, driven by the program's poll() loop. This file pair is the only place that calls libcurl.
 *
 * A request is answered exactly once through the done callback: with the
 * status code, the headers caravan reads (X-Consul-Index, X-Nomad-Index,
 * X-Nomad-NextToken) and the body (or, for a streamed request, nothing:
 * the body went to its stream; for a status other than 200, its first
 * 16 KiB, which hold the error's detail), or with a stable error atom. A header
 * value too long for its field is an error (bad_answer), never cut. Bodies are
 * bounded (max_bytes): a larger one is cut off and answered `too_large`.
 * Tokens travel only in request headers; nothing here logs them.
 *
 * libcurl is loaded by the first request, on a thread (curl_lib.h):
 * requests made meanwhile wait for it in order, each bound by its timeout
 * and cancellable, and are answered http_error if the load fails.
 */
#ifndef CARAVAN_HTTP_H
#define CARAVAN_HTTP_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_header.h"
#include "http_proxy.h"

/* Outstanding requests; each blocking watch holds one for minutes. */
#define HTTP_MAX_INFLIGHT 1024
/* A poll array this long serves a caller with one request in flight (the
 * command line); the port sizes its array with http_nfds. */
#define HTTP_MAX_SOCKETS 64
#define HTTP_URL_MAX 8192
#define HTTP_PATH_MAX 256
/* A PUT's JSON body: a service registration with 64 tags and 64 meta pairs
 * at Consul's own limits fits (register_body.h). */
#define HTTP_BODY_MAX 65536

struct http_request {
    char base[1024];              /* http(s)://host:port, or unix:///path/to/socket */
    char path[HTTP_URL_MAX];      /* /v1/...?query, already escaped */
    char token_header[512];       /* "X-Consul-Token: ..." or empty */
    char ca_file[HTTP_PATH_MAX];  /* empty: the system's CA store */
    char cert_file[HTTP_PATH_MAX];
    char key_file[HTTP_PATH_MAX];
    long connect_timeout_ms;
    long timeout_ms;              /* the whole request */
    size_t max_bytes;             /* body limit */
    /* Which proxy: http_proxy.h's rule (loopback, localhost and unix
     * sockets always direct). proxy is the URL for HTTP_PROXY_URL. */
    enum http_proxy_mode proxy_mode;
    char proxy[HTTP_PROXY_URL_MAX];
    /* Optional. A 200 response's body goes to stream piece by piece as it
     * arrives, instead of being kept (the response's body is then empty);
     * max_bytes still bounds it. stream gets the request's user pointer and
     * returns 0, or -1 to stop the transfer: that is then answered as the
     * response all the same, and the stream's owner knows why it stopped.
     * Other statuses keep their body, for the error's detail. */
    int (*stream)(void *user, const char *data, size_t len);
    /* put: a PUT with a JSON body of body_len bytes, copied when the
     * request starts (body may go away once http_start returns); else a GET. */
    bool put;
    const char *body;
    size_t body_len;
};

struct http_result {
    const char *reason;  /* NULL on a response (any status), else an atom */
    char detail[256];
    const struct http_response *response;
};

typedef void (*http_done_fn)(void *ctx, uint64_t id, void *user, const struct http_result *r);

struct http;

/* NULL only when out of memory; loads nothing yet. */
struct http *http_new(http_done_fn done, void *ctx);
/* Frees h; every request not answered yet is answered `cancelled' first,
 * so that done can release its user pointer. */
void http_free(struct http *h);

/* Starts a GET (or PUT), or parks it while libcurl loads. Returns 0 (done
 * will be called later, never from inside this call), or -1 with *reason
 * and detail set. user travels to done. */
int http_start(struct http *h, uint64_t id, const struct http_request *req, void *user,
               const char **reason, char *detail, size_t dlen);

/* Sockets to poll: libcurl's, then the resolver's. http_process must get
 * the same array back. http_nfds bounds how many there may be. */
size_t http_poll_fds(struct http *h, struct pollfd *fds, size_t cap);
size_t http_nfds(const struct http *h);
int http_timeout(struct http *h, int cap);
void http_process(struct http *h, const struct pollfd *fds, size_t n);
size_t http_inflight(const struct http *h);

/* Ends request id at once, without calling done: a running transfer leaves
 * libcurl's multi handle (paused or not) and is freed; one whose host name
 * c-ares still resolves is answered by nobody and freed when c-ares lets go
 * of it (http_resolve.h: no per-lookup cancel), its slot free at once.
 * Returns 1 with *user set (the caller frees it), or 0 when no request of
 * that id is in flight (answered already, or never seen). Not from inside
 * done or any libcurl callback. */
int http_cancel(struct http *h, uint64_t id, void **user);

/* The library behind HTTP (curl_lib.h): "libcurl.so.4: libcurl/7.88.1 OpenSSL/...", or
 * "none: " and why (not loaded yet, or the dlopen/dlsym error). */
void http_library(char *out, size_t cap);
/* Whether libcurl is loaded; whether its loader thread still runs (a
 * process that ends then must leave with _exit: curl_lib.h). */
bool http_library_loaded(void);
bool http_library_loading(void);

#endif
