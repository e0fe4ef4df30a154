/*
 * http_internal.h - what the files of the HTTP client share, and nothing
 * outside http/ sees: the transfer and client structures and the functions
 * each file offers the others. The public interface is http.h.
 *
 *   http.c           the client: new/free, poll integration, host names
 *                    resolved first, finished transfers answered, cancel
 *   http_start.c     a request turned into a libcurl easy handle (options,
 *                    proxy, TLS), started or held for its host name
 *   http_transfer.c  libcurl's callbacks: sockets and timer, headers, the
 *                    body with its per-turn budget, pause and resume
 *   http_park.c      requests that arrive while libcurl loads: parked in
 *                    order, started or failed when the load ends
 */
#ifndef CARAVAN_HTTP_INTERNAL_H
#define CARAVAN_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "curl_lib.h"
#include "http.h"
#include "http_header.h"
#include "http_resolve.h"
#include "url.h"

/* A transfer whose URL names a host waits for c-ares first. */
enum transfer_state {
    T_RUNNING,   /* in libcurl's multi handle */
    T_RESOLVING, /* waiting for c-ares */
    T_RESOLVED,  /* c-ares answered; http_process starts or fails it */
    T_ABANDONED, /* answered (deadline) while c-ares still works on it */
    T_DEAD,      /* abandoned and c-ares done: http_process frees it */
};

struct transfer {
    struct http *h;
    enum transfer_state state;
    bool added; /* to the multi handle */
    CURL *easy;
    uint64_t id;
    uint64_t seq; /* creation order: the transfers list is newest first */
    void *user;
    struct curl_slist *headers;
    char *body;
    size_t len, cap, max;
    bool too_large;
    /* A 200 body goes to stream, not to body: decided at its first byte. */
    int (*stream)(void *user, const char *data, size_t len);
    enum { BODY_UNDECIDED, BODY_KEPT, BODY_STREAMED, BODY_ERROR } body_mode;
    bool stream_stopped; /* stream refused a piece */
    bool paused;   /* refused a chunk over the loop's budget (on_body) */
    char bad_header[HTTP_HEADER_WHY_MAX]; /* the first header refused and why, or "" */
    struct http_response resp;
    char error[CURL_ERROR_SIZE];
    struct transfer *prev, *next; /* in flight, so http_free can find them */
    /* Host-name resolution (state T_RESOLVING..T_DEAD). */
    char host[URL_HOST_MAX]; /* the proxy's when via_proxy */
    bool via_proxy;
    long port;
    int64_t started_ms, resolve_due_ms;
    long timeout_ms;
    const char *resolve_reason;
    char resolved[HTTP_RESOLVE_ADDRS_MAX];
    struct curl_slist *resolve;
};

struct watched {
    curl_socket_t fd;
    short events;
};

struct parked;

struct http {
    CURLM *multi; /* NULL until libcurl is loaded (curl_lib.h) */
    /* Requests waiting for the load, oldest first (http_park.c); counted
     * in inflight. Only while multi is NULL. */
    struct parked *parked, *parked_tail;
    http_done_fn done;
    void *ctx;
    struct watched *socks; /* grows: every socket libcurl opens is polled */
    size_t nsocks, socks_cap;
    size_t ncurl_polled;   /* how many of the last http_poll_fds were libcurl's */
    struct http_resolver *resolver; /* made on the first host name */
    size_t resolving;      /* transfers in T_RESOLVING..T_DEAD */
    size_t abandoned;      /* of which T_ABANDONED */
    int64_t timer_due; /* -1: libcurl wants no wakeup */
    size_t inflight;
    struct transfer *transfers;
    size_t taken;   /* body bytes taken in this http_process call */
    size_t npaused; /* transfers with paused set */
    uint64_t seqs;  /* transfers ever started */
    /* resume_paused goes round: it starts below the seq it last resumed. */
    uint64_t resume_below;
};

/*
 * Body bytes one http_process call takes in, across all transfers. libcurl
 * reads a readable socket until it would block (up to ~100 chunks of 16 KiB
 * each), so without a bound a few big bodies arriving at once held the
 * loop for 60-180 ms while pings and stdin's end waited. Past the budget
 * on_body refuses the chunk with CURL_WRITEFUNC_PAUSE (libcurl keeps it and
 * delivers it again on unpause) and the next call resumes the transfer,
 * after the loop has served stdin and the other descriptors.
 */
#define HTTP_BUDGET_BYTES (64 * 1024)
/* What is kept of a body whose status is not 200: far more than its first
 * line, which is all the error detail uses. */
#define HTTP_ERROR_BODY_KEEP (16 * 1024)

/* Offered across the files above; each is described where it is defined. */
void http_answer_error(struct http *h, struct transfer *t, const char *reason,
                         const char *detail);
void http_finish(struct http *h, CURL *easy, CURLcode code);
size_t http_on_body(char *data, size_t size, size_t nmemb, void *userp);
size_t http_on_header(char *line, size_t size, size_t nmemb, void *userp);
void http_on_resolved(void *arg, const char *reason, const char *addrs);
int http_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);
int http_on_timer(CURLM *multi, long timeout_ms, void *userp);
void http_resume(struct http *h, struct transfer *t);
void http_resume_paused(struct http *h);
void http_transfer_free(struct transfer *t);
int http_multi_init(struct http *h);
int http_start_transfer(struct http *h, uint64_t id, const struct http_request *req, void *user,
                        const char **reason, char *detail, size_t dlen);
int http_park(struct http *h, uint64_t id, const struct http_request *req, void *user);
void http_park_process(struct http *h);
int http_park_timeout(const struct http *h, int cap);
int http_park_cancel(struct http *h, uint64_t id, void **user);
void http_park_free(struct http *h);

#endif
