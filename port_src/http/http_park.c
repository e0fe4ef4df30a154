/* http_park.c - requests that arrive while libcurl loads (curl_lib.h):
 * parked in order, one record each, and started in that order when the
 * load ends, or all answered with the load's error; meanwhile each keeps
 * its deadline and can be cancelled. See http_internal.h. */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "curl_lib.h"

/* One request waiting for libcurl: a copy of it (the caller's may go away
 * once http_start returns), its PUT body too. */
struct parked {
    struct parked *next;
    uint64_t id;
    void *user;
    int64_t parked_ms, due_ms; /* due: parked_ms + the request's timeout */
    char *body;
    struct http_request req;
};

int http_park(struct http *h, uint64_t id, const struct http_request *req, void *user)
{
    struct parked *p = malloc(sizeof *p);
    if (p == NULL)
        return -1;
    p->next = NULL;
    p->id = id;
    p->user = user;
    p->req = *req;
    p->body = NULL;
    if (req->put && req->body_len > 0) {
        if ((p->body = malloc(req->body_len)) == NULL) {
            free(p);
            return -1;
        }
        memcpy(p->body, req->body, req->body_len);
    }
    p->req.body = p->body;
    p->parked_ms = clock_now_ms();
    p->due_ms = p->parked_ms + req->timeout_ms;
    if (h->parked_tail)
        h->parked_tail->next = p;
    else
        h->parked = p;
    h->parked_tail = p;
    h->inflight++;
    return 0;
}

/* Takes p out of the list (prev is the one before it, or NULL). */
static void unlink_parked(struct http *h, struct parked *prev, struct parked *p)
{
    if (prev)
        prev->next = p->next;
    else
        h->parked = p->next;
    if (h->parked_tail == p)
        h->parked_tail = prev;
    h->inflight--;
}

static void parked_free(struct parked *p)
{
    free(p->body);
    free(p);
}

/* Answers p (already unlinked) with an error and frees it. */
static void answer(struct http *h, struct parked *p, const char *reason, const char *detail)
{
    struct http_response none = {0};
    struct http_result r = {.reason = reason, .response = &none};
    snprintf(r.detail, sizeof r.detail, "%s", detail);
    h->done(h->ctx, p->id, p->user, &r);
    parked_free(p);
}

/* Starts p (already unlinked) with what is left of its timeout. */
static void start(struct http *h, struct parked *p, int64_t now)
{
    long left = (long)(p->due_ms - now);
    p->req.timeout_ms = left > 0 ? left : 1;
    if (p->req.connect_timeout_ms > p->req.timeout_ms)
        p->req.connect_timeout_ms = p->req.timeout_ms;
    const char *reason = NULL;
    char detail[256];
    if (http_start_transfer(h, p->id, &p->req, p->user, &reason, detail, sizeof detail) != 0)
        answer(h, p, reason, detail);
    else
        parked_free(p);
}

void http_park_process(struct http *h)
{
    int64_t now = clock_now_ms();
    /* Deadlines first: a request whose time ran out while libcurl loaded
     * is answered timeout, as libcurl would have answered it. */
    for (struct parked *prev = NULL, *p = h->parked, *next; p != NULL; p = next) {
        next = p->next;
        if (now < p->due_ms) {
            prev = p;
            continue;
        }
        unlink_parked(h, prev, p);
        char detail[128];
        snprintf(detail, sizeof detail, "no answer within %ld ms (libcurl was still loading)",
                 p->req.timeout_ms);
        answer(h, p, "timeout", detail);
    }
    enum curl_lib_state s = curl_lib_load_poll();
    if (s == CURL_LIB_LOADING || h->parked == NULL)
        return;
    if (s == CURL_LIB_READY && h->multi == NULL && http_multi_init(h) != 0)
        s = CURL_LIB_FAILED;
    /* In arrival order; done may run for each, never reentering here. */
    while (h->parked != NULL) {
        struct parked *p = h->parked;
        unlink_parked(h, NULL, p);
        if (s == CURL_LIB_READY) {
            start(h, p, now);
        } else {
            char detail[256];
            snprintf(detail, sizeof detail, HTTP_LIBCURL_MISSING ": %s",
                     curl_lib_error()[0] ? curl_lib_error() : "curl_multi_init failed");
            answer(h, p, "http_error", detail);
        }
    }
}

int http_park_timeout(const struct http *h, int cap)
{
    if (h->parked == NULL)
        return cap;
    int64_t now = clock_now_ms();
    for (const struct parked *p = h->parked; p != NULL && cap > 0; p = p->next) {
        int64_t left = p->due_ms - now;
        cap = left < 0 ? 0 : left < cap ? (int)left : cap;
    }
    return cap;
}

int http_park_cancel(struct http *h, uint64_t id, void **user)
{
    for (struct parked *prev = NULL, *p = h->parked; p != NULL; prev = p, p = p->next) {
        if (p->id != id)
            continue;
        unlink_parked(h, prev, p);
        *user = p->user;
        parked_free(p);
        return 1;
    }
    return 0;
}

void http_park_free(struct http *h)
{
    while (h->parked != NULL) {
        struct parked *p = h->parked;
        unlink_parked(h, NULL, p);
        answer(h, p, "cancelled", "the program is stopping");
    }
}
