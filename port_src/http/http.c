/* http.c - libcurl multi interface in the poll loop; see http.h.
 *
 * libcurl tells us which sockets to watch (socket callback) and when to
 * wake up (timer callback); we report readiness back with
 * curl_lib.multi_socket_action() and collect finished transfers with
 * curl_lib.multi_info_read(). Owns the transfers: their body budget (pause
 * and http_resume), their host names resolved first (http_resolve.h), their
 * answers; libcurl itself is bound in curl_lib.c, URLs checked in url.c. */
#include "http_internal.h"

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

void http_transfer_free(struct transfer *t)
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

void http_answer_error(struct http *h, struct transfer *t, const char *reason,
                         const char *detail);

/* c-ares' answer for t. Runs inside c-ares (or http_start, or
 * http_free): records only; step_resolving acts on it. */
void http_on_resolved(void *arg, const char *reason, const char *addrs)
{
    struct transfer *t = arg;
    t->resolve_reason = reason;
    snprintf(t->resolved, sizeof t->resolved, "%s", addrs);
    t->state = t->state == T_ABANDONED ? T_DEAD : T_RESOLVED;
    if (t->state == T_DEAD)
        t->h->abandoned--;
}

void http_finish(struct http *h, CURL *easy, CURLcode code)
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
    http_transfer_free(t);
}

struct http *http_new(http_done_fn done, void *ctx)
{
    struct http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->done = done;
    h->ctx = ctx;
    h->timer_due = -1;
    return h;
}

/* The multi handle, once libcurl is loaded. Returns 0 or -1. */
int http_multi_init(struct http *h)
{
    h->multi = curl_lib.multi_init();
    if (h->multi == NULL)
        return -1;
    curl_lib.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_on_socket);
    curl_lib.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_lib.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_on_timer);
    curl_lib.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return 0;
}

void http_free(struct http *h)
{
    if (h == NULL)
        return;
    http_park_free(h);
    /* c-ares first: destroying it calls back every pending lookup, which
     * only marks its transfer; then nothing refers to the transfers. */
    http_resolve_free(h->resolver);
    h->resolver = NULL;
    while (h->transfers) {
        struct transfer *t = h->transfers;
        /* Not answered yet: the owner of t->user gets it back. */
        if (t->state == T_RUNNING || t->state == T_RESOLVING || t->state == T_RESOLVED)
            http_answer_error(h, t, "cancelled", "the program is stopping");
        http_transfer_free(t);
    }
    if (h->multi != NULL)
        curl_lib.multi_cleanup(h->multi);
    free(h->socks);
    free(h);
}

#undef SETOPT

size_t http_poll_fds(struct http *h, struct pollfd *fds, size_t cap)
{
    size_t n = 0;
    h->ncurl_polled = 0;
    if (h->multi == NULL) { /* nothing but the loader, if it runs */
        int fd = curl_lib_loader_fd();
        if (fd >= 0 && cap > 0)
            fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
        return n;
    }
    for (size_t i = 0; i < h->nsocks && n < cap; i++, n++)
        fds[n] = (struct pollfd){.fd = h->socks[i].fd, .events = h->socks[i].events};
    h->ncurl_polled = n;
    if (h->resolver)
        n += http_resolve_poll_fds(h->resolver, fds + n, cap - n);
    return n;
}

size_t http_nfds(const struct http *h)
{
    return h->multi == NULL ? curl_lib_loader_fd() >= 0
                            : h->nsocks + (h->resolver ? HTTP_RESOLVE_MAX_SOCKS : 0);
}

int http_timeout(struct http *h, int cap)
{
    if (h->multi == NULL)
        return http_park_timeout(h, cap);
    int64_t now = clock_now_ms();
    if (h->npaused > 0)
        return 0; /* http_resume them in the next http_process */
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
            http_finish(h, m->easy_handle, m->data.result);
}

/* Answers t with an error now; the caller frees it or leaves it for c-ares. */
void http_answer_error(struct http *h, struct transfer *t, const char *reason,
                         const char *detail)
{
    struct http_result r = {.reason = reason, .response = &t->resp};
    const char *fds = strcmp(reason, "cancelled") != 0 ? fds_exhausted() : NULL;
    snprintf(r.detail, sizeof r.detail, "%.60s%s%.190s", fds ? fds : "", fds ? ": " : "",
             detail);
    h->inflight--;
    h->done(h->ctx, t->id, t->user, &r);
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
            http_resume(h, t);
            break;
        case T_DEAD:
            http_transfer_free(t);
            break;
        case T_RESOLVING:
            if (now >= t->resolve_due_ms) {
                char detail[400];
                snprintf(detail, sizeof detail, "no address for %s within %lld ms", t->host,
                         (long long)(t->resolve_due_ms - t->started_ms));
                http_answer_error(h, t, "timeout", detail);
                t->state = T_ABANDONED; /* freed once c-ares lets go of it */
                h->abandoned++;
            }
            break;
        default:
            break;
        }
    }
}

void http_process(struct http *h, const struct pollfd *fds, size_t n)
{
    if (h->multi == NULL) { /* fds hold the loader's at most */
        http_park_process(h);
        return;
    }
    int running = 0;
    size_t ncurl = h->ncurl_polled < n ? h->ncurl_polled : n;
    h->taken = 0;
    http_resume_paused(h);
    for (size_t i = 0; i < ncurl; i++) {
        /* Served even once the budget is spent: a connect that completes,
         * a request to send or headers to read cost no body bytes, and a
         * body chunk past the budget is paused by http_on_body. Skipping the
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

bool http_library_loaded(void)
{
    return curl_lib_load_poll() == CURL_LIB_READY;
}

bool http_library_loading(void)
{
    return curl_lib_load_poll() == CURL_LIB_LOADING;
}

int http_cancel(struct http *h, uint64_t id, void **user)
{
    if (http_park_cancel(h, id, user))
        return 1;
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
        /* IMPORTANT: c-ares holds t as its callback's argument: http_on_resolved
         * turns it T_DEAD and step_resolving frees it. */
        t->state = T_ABANDONED;
        h->abandoned++;
        return 1;
    }
    /* http_transfer_free takes a paused transfer off npaused and the easy
     * handle off the multi handle, which closes its connection. */
    http_transfer_free(t);
    return 1;
}

size_t http_inflight(const struct http *h)
{
    return h->inflight;
}
