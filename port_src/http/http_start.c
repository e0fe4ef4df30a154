/* http_start.c - a request becomes a libcurl easy handle: the URL and
 * proxy checks, parked while libcurl loads (http_park.c), the options (TLS,
 * timeouts, headers), and then started at once or held until its host name
 * is resolved; see http_internal.h. */
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
    /* The first request starts the load; until it ends, requests wait in
     * order (curl_lib.h says why on a thread). */
    enum curl_lib_state s = curl_lib_load_start();
    if (s == CURL_LIB_LOADING || h->parked != NULL) {
        if (http_park(h, id, req, user) == 0)
            return 0;
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot allocate an HTTP transfer");
        return -1;
    }
    if (s != CURL_LIB_READY) { /* loaded here, no thread to be had, and failed */
        *reason = "http_error";
        snprintf(detail, dlen, HTTP_LIBCURL_MISSING ": %s", curl_lib_error());
        return -1;
    }
    if (h->multi == NULL && http_multi_init(h) != 0) {
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot make libcurl's multi handle");
        return -1;
    }
    return http_start_transfer(h, id, req, user, reason, detail, dlen);
}

/* The request as a transfer, libcurl loaded: now, or once it was parked. */
int http_start_transfer(struct http *h, uint64_t id, const struct http_request *req, void *user,
                        const char **reason, char *detail, size_t dlen)
{
    char proxy[HTTP_PROXY_URL_MAX];
    const char *proxy_why = NULL;
    if (http_proxy_choose(req->base, req->proxy_mode, req->proxy, proxy, sizeof proxy,
                          &proxy_why) != 0) { /* checked by http_start: never */
        *reason = "http_error";
        snprintf(detail, dlen, "%s", proxy_why);
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
    /* A PUT says its body is JSON, and sends it at once: without an empty
     * Expect libcurl would wait for a 100 Continue before a body over 1 KiB. */
    const char *headers[3] = {req->token_header[0] ? req->token_header : NULL,
                              req->put ? "Content-Type: application/json" : NULL,
                              req->put ? "Expect:" : NULL};
    for (size_t i = 0; i < 3; i++) {
        if (headers[i] == NULL)
            continue;
        struct curl_slist *l = curl_lib.slist_append(t->headers, headers[i]);
        if (l == NULL) {
            http_transfer_free(t);
            *reason = "no_memory";
            snprintf(detail, dlen, "cannot allocate request headers");
            return -1;
        }
        t->headers = l;
    }
    if (t->headers != NULL)
        SETOPT(CURLOPT_HTTPHEADER, t->headers);
    SETOPT(CURLOPT_URL, url);
    if (req->put) {
        /* A PUT whose body libcurl copies and sends as is: POSTFIELDS
         * makes it a request with a body, CUSTOMREQUEST names the verb. */
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_COPYPOSTFIELDS, req->body_len > 0 ? req->body : "");
        SETOPT(CURLOPT_CUSTOMREQUEST, "PUT");
    }
    /* IMPORTANT: always explicit, so that libcurl never reads http_proxy,
     * ALL_PROXY or NO_PROXY itself (http_proxy.h); "" is direct. The token
     * header goes to the server only, never in a CONNECT to the proxy. */
    SETOPT(CURLOPT_PROXY, proxy);
    SETOPT(CURLOPT_NOPROXY, "");
    SETOPT(CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    /* HTTP/1.1 even over TLS, where libcurl would offer h2: transfers stay
     * paused across loop turns (http_on_body's budget), and libcurl 7.88 has
     * known stalls pausing multiplexed h2 streams (curl#10751, #10988).
     * One request per connection costs Consul and Nomad nothing. */
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms);
    SETOPT(CURLOPT_WRITEFUNCTION, http_on_body);
    SETOPT(CURLOPT_WRITEDATA, t);
    SETOPT(CURLOPT_HEADERFUNCTION, http_on_header);
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
        http_transfer_free(t);
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
            http_transfer_free(t);
            *reason = "dns_error";
            snprintf(detail, dlen, "cannot start a resolver: %s", why);
            return -1;
        }
        /* Resolution is part of connecting, as in libcurl. */
        t->resolve_due_ms = t->started_ms + req->connect_timeout_ms;
        t->state = T_RESOLVING;
        h->resolving++;
    } else if (curl_lib.multi_add_handle(h->multi, e) != CURLM_OK) {
        http_transfer_free(t);
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
    if (t->state == T_RESOLVING && http_resolve_start(h->resolver, t->host, http_on_resolved, t) != 0)
        http_on_resolved(t, "no_memory", "cannot start resolving the host name");
    return 0;
}
