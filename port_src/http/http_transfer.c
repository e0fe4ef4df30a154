/* http_transfer.c - libcurl's callbacks for the HTTP client: the sockets
 * and timer it asks to have watched, the headers, and the body taken under
 * the per-turn budget (HTTP_BUDGET_BYTES) with pause and resume; see
 * http_internal.h. */
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

int http_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
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
    /* No cap of our own: a socket libcurl opened and we did not poll would
     * hang its transfer until the deadline. */
    struct watched *grown = grow_array(h->socks, &h->socks_cap, h->nsocks + 1, sizeof *grown, 64);
    if (grown == NULL) {
        fprintf(stderr, "caravan_port: http: no memory to watch a socket\n");
        return -1; /* libcurl fails the transfers concerned */
    }
    h->socks = grown;
    h->socks[h->nsocks].fd = fd;
    h->socks[h->nsocks].events = (short)((what & CURL_POLL_IN ? POLLIN : 0) |
                                         (what & CURL_POLL_OUT ? POLLOUT : 0));
    h->nsocks++;
    return 0;
}

int http_on_timer(CURLM *multi, long timeout_ms, void *userp)
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

size_t http_on_body(char *data, size_t size, size_t nmemb, void *userp)
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
        /* Only the start of an error page makes its detail (catalog_detail.h):
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

size_t http_on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t n = size * nmemb;
    char why[HTTP_HEADER_WHY_MAX];
    if (http_header_read(line, n, &t->resp, why, sizeof why) != 0 && t->bad_header[0] == '\0')
        snprintf(t->bad_header, sizeof t->bad_header, "%s", why);
    return n;
}

/* A resolved transfer joins libcurl with its addresses, or fails. */
void http_resume(struct http *h, struct transfer *t)
{
    char detail[HTTP_RESOLVE_ADDRS_MAX + 300];
    if (t->resolve_reason != NULL) {
        snprintf(detail, sizeof detail, "cannot resolve %s%s: %s",
                 t->via_proxy ? "the proxy " : "", t->host, t->resolved);
        http_answer_error(h, t, t->resolve_reason, detail);
        http_transfer_free(t);
        return;
    }
    snprintf(detail, sizeof detail, "%s:%ld:%s", t->host, t->port, t->resolved);
    long left = t->timeout_ms - (long)(clock_now_ms() - t->started_ms);
    t->resolve = curl_lib.slist_append(NULL, detail);
    if (t->resolve == NULL || curl_lib.easy_setopt(t->easy, CURLOPT_RESOLVE, t->resolve) != CURLE_OK ||
        curl_lib.easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, left > 1 ? left : 1L) != CURLE_OK ||
        curl_lib.multi_add_handle(h->multi, t->easy) != CURLM_OK) {
        http_answer_error(h, t, "http_error", "libcurl refused the resolved addresses");
        http_transfer_free(t);
        return;
    }
    t->added = true;
    t->state = T_RUNNING;
    h->resolving--;
}

/* Unpauses the transfers http_on_body paused in the last call, while the
 * budget lasts; the rest stay paused for the next call. The walk goes round
 * the list (newest first) from below the transfer resumed last, so every
 * paused transfer gets its turn: starting at the head each time left an
 * older transfer waiting until every newer big body had ended.
 *
 * libcurl hands each its refused chunk again inside curl_easy_pause (which
 * may pause it anew once the budget is spent) and asks for a timer of 0 to
 * read on. When http_on_body refuses the chunk there (too large, the stream
 * stopped, out of memory), curl_easy_pause only returns the error: the
 * transfer stays in libcurl, and when that chunk was the body's last,
 * nothing wakes it until a timer fires, seconds later, when it ends "OK"
 * with the chunk lost. It is ended here instead, as libcurl would have. */
void http_resume_paused(struct http *h)
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
                http_finish(h, t->easy, rc);
        }
    }
}
