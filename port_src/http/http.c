/* http.c - libcurl multi interface in the poll loop; see http.h.
 *
 * libcurl tells us which sockets to watch (socket callback) and when to
 * wake up (timer callback); we report readiness back with
 * curl_lib.multi_socket_action() and collect finished transfers with
 * curl_lib.multi_info_read(). Owns the transfers: their body budget (pause
 * and resume), their host names resolved first (http_resolve.h), their
 * answers; libcurl itself is bound in curl_lib.c, URLs checked in url.c. */
#include "http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "curl_lib.h"
#include "fds.h"
#include "grow.h"
#include "http_header.h"
#include "http_proxy.h"
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

struct http {
    CURLM *multi;
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

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct http *h = userp;
    for (size_t i = 0; i < h->nsocks; i++) {
        if (h->socks[i].fd != fd)
            continue;
        if (what == CURL_POLL_REMOVE)
            h->socks[i] = h->socks[--h->nsocks];
        else
            h->socks[i].events = (short)((what & CURL_POLL_IN ? POLLIN : 0) |
                                         (what & CURL_POLL_OUT ? POLLOUT : 0));
        return 0;
    }
    if (what == CURL_POLL_REMOVE)
        return 0;
    if (h->nsocks == h->socks_cap) {
        /* No cap of our own: a socket libcurl opened and we did not poll
         * would hang its transfer until the deadline. */
        size_t cap = h->socks_cap ? 2 * h->socks_cap : 64;
        struct watched *grown = realloc(h->socks, cap * sizeof *grown);
        if (grown == NULL) {
            fprintf(stderr, "caravan_port: http: no memory to watch a socket\n");
            return -1; /* libcurl fails the transfers concerned */
        }
        h->socks = grown;
        h->socks_cap = cap;
    }
    h->socks[h->nsocks].fd = fd;
    h->socks[h->nsocks].events = (short)((what & CURL_POLL_IN ? POLLIN : 0) |
                                         (what & CURL_POLL_OUT ? POLLOUT : 0));
    h->nsocks++;
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http *h = userp;
    h->timer_due = timeout_ms < 0 ? -1 : clock_now_ms() + timeout_ms;
    return 0;
}

/* Appends n bytes to the transfer's body (NUL-terminated). Returns 0, or
 * -1 when out of memory. */
static int keep(struct transfer *t, const char *data, size_t n)
{
    char *body = grow(t->body, &t->cap, t->len + n + 1, 16384);
    if (body == NULL)
        return -1;
    t->body = body;
    memcpy(t->body + t->len, data, n);
    t->len += n;
    t->body[t->len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t n = size * nmemb;
    if (t->h->taken >= HTTP_BUDGET_BYTES && n > 0) {
        if (!t->paused) {
            t->paused = true;
            t->h->npaused++;
        }
        return CURL_WRITEFUNC_PAUSE; /* resumed by the next http_process */
    }
    if (t->body_mode == BODY_UNDECIDED) {
        /* The headers are in by the first body byte; redirects are not
         * followed, so this is the final status. */
        long status = 0;
        curl_lib.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        t->body_mode = status != 200      ? BODY_ERROR
                     : t->stream != NULL ? BODY_STREAMED
                                         : BODY_KEPT;
    }
    if (t->body_mode == BODY_ERROR) {
        /* Only the start of an error page makes its detail (http_detail.h):
         * the rest is read and dropped, so a big one costs no memory and
         * its status is not lost to too_large. */
        t->h->taken += n;
        size_t room = t->len < HTTP_ERROR_BODY_KEEP ? HTTP_ERROR_BODY_KEEP - t->len : 0;
        return keep(t, data, n < room ? n : room) == 0 ? n : 0;
    }
    if (n > t->max - t->len) {
        t->too_large = true;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if (t->body_mode == BODY_STREAMED) {
        t->len += n;
        t->h->taken += n;
        if (t->stream(t->user, data, n) != 0) {
            t->stream_stopped = true;
            return 0; /* stop reading a body already refused */
        }
        return n;
    }
    t->h->taken += n;
    return keep(t, data, n) == 0 ? n : 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t n = size * nmemb;
    char why[HTTP_HEADER_WHY_MAX];
    if (http_header_read(line, n, &t->resp, why, sizeof why) != 0 && t->bad_header[0] == '\0')
        snprintf(t->bad_header, sizeof t->bad_header, "%s", why);
    return n;
}

static void transfer_free(struct transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else if (t->h->transfers == t)
        t->h->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (t->easy) {
        if (t->added)
            curl_lib.multi_remove_handle(t->h->multi, t->easy);
        curl_lib.easy_cleanup(t->easy);
    }
    if (t->state != T_RUNNING)
        t->h->resolving--;
    if (t->state == T_ABANDONED)
        t->h->abandoned--;
    if (t->paused)
        t->h->npaused--;
    curl_lib.slist_free_all(t->headers);
    curl_lib.slist_free_all(t->resolve);
    free(t->body);
    free(t);
}

static void answer_error(struct http *h, struct transfer *t, const char *reason,
                         const char *detail);

/* c-ares' answer for t. Runs inside c-ares (or http_start, or
 * http_free): records only; step_resolving acts on it. */
static void on_resolved(void *arg, const char *reason, const char *addrs)
{
    struct transfer *t = arg;
    t->resolve_reason = reason;
    snprintf(t->resolved, sizeof t->resolved, "%s", addrs);
    t->state = t->state == T_ABANDONED ? T_DEAD : T_RESOLVED;
    if (t->state == T_DEAD)
        t->h->abandoned--;
}

static void finish(struct http *h, CURL *easy, CURLcode code)
{
    struct transfer *t = NULL;
    curl_lib.easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    struct http_result r = {.response = &t->resp};
    if (code == CURLE_OK && t->bad_header[0] != '\0') {
        r.reason = "bad_answer";
        snprintf(r.detail, sizeof r.detail, "%s", t->bad_header);
    } else if (code == CURLE_OK || t->stream_stopped) {
        curl_lib.easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->resp.status);
        t->resp.body = t->body ? t->body : "";
        t->resp.body_len = t->body_mode == BODY_STREAMED ? 0 : t->len;
    } else {
        r.reason = curl_lib_atom(code, t->too_large, t->error);
        const char *fds = t->too_large ? NULL : fds_exhausted();
        if (t->too_large)
            snprintf(r.detail, sizeof r.detail, "response body larger than %zu bytes", t->max);
        else /* libcurl words a socket it could not open as a refusal (fds.h) */
            snprintf(r.detail, sizeof r.detail, "%.60s%s%.190s", fds ? fds : "",
                     fds ? ": " : "", t->error[0] ? t->error : curl_lib.easy_strerror(code));
    }
    h->inflight--;
    h->done(h->ctx, t->id, t->user, &r);
    transfer_free(t);
}

struct http *http_new(http_done_fn done, void *ctx)
{
    if (curl_lib_load() != 0)
        return NULL;
    struct http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->multi = curl_lib.multi_init();
    if (h->multi == NULL) {
        free(h);
        return NULL;
    }
    h->done = done;
    h->ctx = ctx;
    h->timer_due = -1;
    curl_lib.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_lib.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_lib.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_lib.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void http_free(struct http *h)
{
    if (h == NULL)
        return;
    /* c-ares first: destroying it calls back every pending lookup, which
     * only marks its transfer; then nothing refers to the transfers. */
    http_resolve_free(h->resolver);
    h->resolver = NULL;
    while (h->transfers) {
        struct transfer *t = h->transfers;
        /* Not answered yet: the owner of t->user gets it back. */
        if (t->state == T_RUNNING || t->state == T_RESOLVING || t->state == T_RESOLVED)
            answer_error(h, t, "cancelled", "the program is stopping");
        transfer_free(t);
    }
    curl_lib.multi_cleanup(h->multi);
    free(h->socks);
    free(h);
}

/* Sets an option and keeps the first refusal: an option libcurl does not
 * take (an older libcurl without CURLOPT_PROTOCOLS_STR, say) must fail the
 * request, not leave it running without the restriction. */
#define SETOPT(opt, val)                                                                       \
    do {                                                                                       \
        CURLcode c_ = curl_lib.easy_setopt(e, opt, val);                                            \
        if (c_ != CURLE_OK && bad_opt == NULL) {                                               \
            bad_opt = #opt;                                                                    \
            bad_code = c_;                                                                     \
        }                                                                                      \
    } while (0)

int http_start(struct http *h, uint64_t id, const struct http_request *req, void *user,
               const char **reason, char *detail, size_t dlen)
{
    const char *refusal = url_refusal(req->base);
    if (refusal == NULL) /* a host libcurl would decode: http_proxy.h */
        refusal = http_proxy_url_refusal(req->base);
    if (refusal != NULL) {
        *reason = "bad_args";
        snprintf(detail, dlen, "%s", refusal);
        return -1;
    }
    char proxy[HTTP_PROXY_URL_MAX];
    const char *proxy_why = NULL;
    if (http_proxy_choose(req->base, req->proxy_mode, req->proxy, proxy, sizeof proxy,
                          &proxy_why) != 0) {
        *reason = req->proxy_mode == HTTP_PROXY_URL ? "bad_args" : "http_error";
        snprintf(detail, dlen, "%s", proxy_why);
        return -1;
    }
    if (proxy[0] != '\0' && (refusal = url_refusal(proxy)) != NULL) {
        *reason = req->proxy_mode == HTTP_PROXY_URL ? "bad_args" : "http_error";
        snprintf(detail, dlen, "proxy %s", refusal);
        return -1;
    }
    if (h->inflight >= HTTP_MAX_INFLIGHT || h->abandoned >= HTTP_MAX_INFLIGHT) {
        *reason = "overload";
        snprintf(detail, dlen, "%d HTTP requests already in flight", HTTP_MAX_INFLIGHT);
        return -1;
    }
    struct transfer *t = calloc(1, sizeof *t);
    if (t == NULL || (t->easy = curl_lib.easy_init()) == NULL) {
        free(t);
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot allocate an HTTP transfer");
        return -1;
    }
    t->h = h;
    t->id = id;
    t->seq = ++h->seqs;
    t->user = user;
    t->max = req->max_bytes;
    t->stream = req->stream;
    t->state = T_RUNNING;
    t->started_ms = clock_now_ms();
    t->timeout_ms = req->timeout_ms;

    const char *bad_opt = NULL;
    CURLcode bad_code = CURLE_OK;
    char url[sizeof req->base + sizeof req->path];
    CURL *e = t->easy;
    if (strncmp(req->base, URL_UNIX_PREFIX, strlen(URL_UNIX_PREFIX)) == 0) {
        /* Nomad's task API socket: HTTP over a unix socket, host irrelevant. */
        SETOPT(CURLOPT_UNIX_SOCKET_PATH, req->base + strlen(URL_UNIX_PREFIX));
        snprintf(url, sizeof url, "http://localhost%s", req->path);
    } else {
        snprintf(url, sizeof url, "%s%s", req->base, req->path);
    }
    if (req->token_header[0] != '\0') {
        t->headers = curl_lib.slist_append(NULL, req->token_header);
        if (t->headers == NULL) {
            transfer_free(t);
            *reason = "no_memory";
            snprintf(detail, dlen, "cannot allocate request headers");
            return -1;
        }
        SETOPT(CURLOPT_HTTPHEADER, t->headers);
    }
    SETOPT(CURLOPT_URL, url);
    /* IMPORTANT: always explicit, so that libcurl never reads http_proxy,
     * ALL_PROXY or NO_PROXY itself (http_proxy.h); "" is direct. The token
     * header goes to the server only, never in a CONNECT to the proxy. */
    SETOPT(CURLOPT_PROXY, proxy);
    SETOPT(CURLOPT_NOPROXY, "");
    SETOPT(CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    /* HTTP/1.1 even over TLS, where libcurl would offer h2: transfers stay
     * paused across loop turns (on_body's budget), and libcurl 7.88 has
     * known stalls pausing multiplexed h2 streams (curl#10751, #10988).
     * One request per connection costs Consul and Nomad nothing. */
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, t);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, t);
    SETOPT(CURLOPT_ERRORBUFFER, t->error);
    SETOPT(CURLOPT_PRIVATE, t);
    /* Certificates are verified unless the caller points elsewhere; there is
     * deliberately no option to turn verification off. */
    if (req->ca_file[0])
        SETOPT(CURLOPT_CAINFO, req->ca_file);
    if (req->cert_file[0])
        SETOPT(CURLOPT_SSLCERT, req->cert_file);
    if (req->key_file[0])
        SETOPT(CURLOPT_SSLKEY, req->key_file);
    if (bad_opt != NULL) {
        transfer_free(t);
        *reason = "http_error";
        snprintf(detail, dlen, "libcurl refused %s: %s", bad_opt, curl_lib.easy_strerror(bad_code));
        return -1;
    }

    /* Through a proxy, the proxy's name is the one libcurl would resolve
     * (the proxy resolves the server's). */
    t->via_proxy = proxy[0] != '\0';
    if (url_host_to_resolve(t->via_proxy ? proxy : req->base, t->host, sizeof t->host, &t->port)) {
        const char *why = NULL;
        if (h->resolver == NULL && (h->resolver = http_resolve_new(&why)) == NULL) {
            transfer_free(t);
            *reason = "dns_error";
            snprintf(detail, dlen, "cannot start a resolver: %s", why);
            return -1;
        }
        /* Resolution is part of connecting, as in libcurl. */
        t->resolve_due_ms = t->started_ms + req->connect_timeout_ms;
        t->state = T_RESOLVING;
        h->resolving++;
    } else if (curl_lib.multi_add_handle(h->multi, e) != CURLM_OK) {
        transfer_free(t);
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot queue the HTTP transfer");
        return -1;
    } else {
        t->added = true;
    }
    h->inflight++;
    t->next = h->transfers;
    if (h->transfers)
        h->transfers->prev = t;
    h->transfers = t;
    /* Last: the callback may run at once (an /etc/hosts hit) and only
     * records its result, which http_process acts on. */
    if (t->state == T_RESOLVING && http_resolve_start(h->resolver, t->host, on_resolved, t) != 0)
        on_resolved(t, "no_memory", "cannot start resolving the host name");
    return 0;
}

#undef SETOPT

size_t http_poll_fds(struct http *h, struct pollfd *fds, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nsocks && n < cap; i++, n++)
        fds[n] = (struct pollfd){.fd = h->socks[i].fd, .events = h->socks[i].events};
    h->ncurl_polled = n;
    if (h->resolver)
        n += http_resolve_poll_fds(h->resolver, fds + n, cap - n);
    return n;
}

size_t http_nfds(const struct http *h)
{
    return h->nsocks + (h->resolver ? HTTP_RESOLVE_MAX_SOCKS : 0);
}

int http_timeout(struct http *h, int cap)
{
    int64_t now = clock_now_ms();
    if (h->npaused > 0)
        return 0; /* resume them in the next http_process */
    if (h->timer_due >= 0) {
        int64_t left = h->timer_due - now;
        cap = left < 0 ? 0 : left < cap ? (int)left : cap;
    }
    if (h->resolving == 0)
        return cap;
    cap = http_resolve_timeout(h->resolver, cap);
    for (struct transfer *t = h->transfers; t != NULL && cap > 0; t = t->next) {
        if (t->state == T_RESOLVED || t->state == T_DEAD)
            return 0;
        if (t->state == T_RESOLVING) {
            int64_t left = t->resolve_due_ms - now;
            cap = left < 0 ? 0 : left < cap ? (int)left : cap;
        }
    }
    return cap;
}

static void drain(struct http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_lib.multi_info_read(h->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE)
            finish(h, m->easy_handle, m->data.result);
}

/* Answers t with an error now; the caller frees it or leaves it for c-ares. */
static void answer_error(struct http *h, struct transfer *t, const char *reason,
                         const char *detail)
{
    struct http_result r = {.reason = reason, .response = &t->resp};
    const char *fds = strcmp(reason, "cancelled") != 0 ? fds_exhausted() : NULL;
    snprintf(r.detail, sizeof r.detail, "%.60s%s%.190s", fds ? fds : "", fds ? ": " : "",
             detail);
    h->inflight--;
    h->done(h->ctx, t->id, t->user, &r);
}

/* A resolved transfer joins libcurl with its addresses, or fails. */
static void resume(struct http *h, struct transfer *t)
{
    char detail[HTTP_RESOLVE_ADDRS_MAX + 300];
    if (t->resolve_reason != NULL) {
        snprintf(detail, sizeof detail, "cannot resolve %s%s: %s",
                 t->via_proxy ? "the proxy " : "", t->host, t->resolved);
        answer_error(h, t, t->resolve_reason, detail);
        transfer_free(t);
        return;
    }
    snprintf(detail, sizeof detail, "%s:%ld:%s", t->host, t->port, t->resolved);
    long left = t->timeout_ms - (long)(clock_now_ms() - t->started_ms);
    t->resolve = curl_lib.slist_append(NULL, detail);
    if (t->resolve == NULL || curl_lib.easy_setopt(t->easy, CURLOPT_RESOLVE, t->resolve) != CURLE_OK ||
        curl_lib.easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, left > 1 ? left : 1L) != CURLE_OK ||
        curl_lib.multi_add_handle(h->multi, t->easy) != CURLM_OK) {
        answer_error(h, t, "http_error", "libcurl refused the resolved addresses");
        transfer_free(t);
        return;
    }
    t->added = true;
    t->state = T_RUNNING;
    h->resolving--;
}

/* Moves transfers waiting on names along: never from inside a callback. */
static void step_resolving(struct http *h)
{
    int64_t now = clock_now_ms();
    struct transfer *t = h->transfers, *next;
    for (; t != NULL && h->resolving > 0; t = next) {
        next = t->next;
        switch (t->state) {
        case T_RESOLVED:
            resume(h, t);
            break;
        case T_DEAD:
            transfer_free(t);
            break;
        case T_RESOLVING:
            if (now >= t->resolve_due_ms) {
                char detail[400];
                snprintf(detail, sizeof detail, "no address for %s within %lld ms", t->host,
                         (long long)(t->resolve_due_ms - t->started_ms));
                answer_error(h, t, "timeout", detail);
                t->state = T_ABANDONED; /* freed once c-ares lets go of it */
                h->abandoned++;
            }
            break;
        default:
            break;
        }
    }
}

/* Unpauses the transfers on_body paused in the last call, while the
 * budget lasts; the rest stay paused for the next call. The walk goes round
 * the list (newest first) from below the transfer resumed last, so every
 * paused transfer gets its turn: starting at the head each time left an
 * older transfer waiting until every newer big body had ended.
 *
 * libcurl hands each its refused chunk again inside curl_easy_pause (which
 * may pause it anew once the budget is spent) and asks for a timer of 0 to
 * read on. When on_body refuses the chunk there (too large, the stream
 * stopped, out of memory), curl_easy_pause only returns the error: the
 * transfer stays in libcurl, and when that chunk was the body's last,
 * nothing wakes it until a timer fires, seconds later, when it ends "OK"
 * with the chunk lost. It is ended here instead, as libcurl would have. */
static void resume_paused(struct http *h)
{
    uint64_t below = h->resume_below;
    for (int wrapped = 0; wrapped < 2; wrapped++) {
        for (struct transfer *t = h->transfers, *next; t != NULL; t = next) {
            next = t->next;
            if (!t->paused || (t->seq < below) == (wrapped == 1))
                continue;
            if (h->taken >= HTTP_BUDGET_BYTES || h->npaused == 0)
                return;
            t->paused = false;
            h->npaused--;
            h->resume_below = t->seq;
            CURLcode rc = curl_lib.easy_pause(t->easy, CURLPAUSE_CONT);
            if (rc != CURLE_OK)
                finish(h, t->easy, rc);
        }
    }
}

void http_process(struct http *h, const struct pollfd *fds, size_t n)
{
    int running = 0;
    size_t ncurl = h->ncurl_polled < n ? h->ncurl_polled : n;
    h->taken = 0;
    resume_paused(h);
    for (size_t i = 0; i < ncurl; i++) {
        /* Served even once the budget is spent: a connect that completes,
         * a request to send or headers to read cost no body bytes, and a
         * body chunk past the budget is paused by on_body. Skipping the
         * sockets instead left small requests waiting behind big bodies
         * whose resumed chunks spend the budget at the top of every call. */
        if (fds[i].revents == 0)
            continue;
        int ev = (fds[i].revents & POLLIN ? CURL_CSELECT_IN : 0) |
                 (fds[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                 (fds[i].revents & (POLLERR | POLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_lib.multi_socket_action(h->multi, fds[i].fd, ev, &running);
    }
    if (h->resolver)
        http_resolve_process(h->resolver, fds + ncurl, n - ncurl);
    if (h->resolving > 0)
        step_resolving(h);
    if (h->timer_due >= 0 && clock_now_ms() >= h->timer_due) {
        h->timer_due = -1;
        curl_lib.multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    drain(h);
}

void http_library(char *out, size_t cap)
{
    curl_lib_describe(out, cap);
}

int http_cancel(struct http *h, uint64_t id, void **user)
{
    struct transfer *t = h->transfers;
    while (t != NULL && !(t->id == id && (t->state == T_RUNNING || t->state == T_RESOLVING ||
                                          t->state == T_RESOLVED)))
        t = t->next;
    if (t == NULL)
        return 0;
    *user = t->user;
    t->user = NULL;
    h->inflight--;
    if (t->state == T_RESOLVING) {
        /* IMPORTANT: c-ares holds t as its callback's argument: on_resolved
         * turns it T_DEAD and step_resolving frees it. */
        t->state = T_ABANDONED;
        h->abandoned++;
        return 1;
    }
    /* transfer_free takes a paused transfer off npaused and the easy
     * handle off the multi handle, which closes its connection. */
    transfer_free(t);
    return 1;
}

size_t http_inflight(const struct http *h)
{
    return h->inflight;
}
