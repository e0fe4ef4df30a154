/* http.c - libcurl multi interface in the poll loop; see http.h.
 *
 * libcurl tells us which sockets to watch (socket callback) and when to
 * wake up (timer callback); we report readiness back with
 * lib.multi_socket_action() and collect finished transfers with
 * lib.multi_info_read(). */
#include "http.h"

/* The type-checking macros would rename our function pointers' calls. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

#define UNIX_PREFIX "unix://"

struct transfer {
    struct http *h;
    CURL *easy;
    uint64_t id;
    void *user;
    struct curl_slist *headers;
    char *body;
    size_t len, cap, max;
    bool too_large;
    const char *long_header; /* a header whose value did not fit, or NULL */
    struct http_response resp;
    char error[CURL_ERROR_SIZE];
    struct transfer *prev, *next; /* in flight, so http_free can find them */
};

struct watched {
    curl_socket_t fd;
    short events;
};

struct http {
    CURLM *multi;
    http_done_fn done;
    void *ctx;
    struct watched socks[HTTP_MAX_SOCKETS];
    size_t nsocks;
    int64_t timer_due; /* -1: libcurl wants no wakeup */
    size_t inflight;
    struct transfer *transfers;
};

/*
 * libcurl is loaded with dlopen() on the first HTTP request, not linked:
 * with it come 30-odd libraries (OpenSSL, GnuTLS, Kerberos, LDAP...) whose
 * mapped pages put 8 MiB of RSS on every instance of the program, and the
 * instance behind caravan_epmd never makes an HTTP request.
 */
static struct {
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
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    char *(*version)(void);
} lib;

static bool library_ready = false;
/* Why the last load failed, for caravan:info(); empty if none did. */
static char load_error[256];

/* Binds lib's pointers. Returns 0, or -1 with a reason on stderr. */
static int load_libcurl(void)
{
    void *h = dlopen(HTTP_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(load_error, sizeof load_error, "cannot load " HTTP_LIBCURL_SONAME ": %s",
                 dlerror());
        fprintf(stderr, "caravan_port: %s\n", load_error);
        return -1;
    }
    /* POSIX allows converting dlsym's void * to a function pointer; C11
     * does not, so go through memcpy. */
#define BIND(field, symbol)                                                                    \
    do {                                                                                       \
        void *sym = dlsym(h, symbol);                                                          \
        if (sym == NULL) {                                                                     \
            snprintf(load_error, sizeof load_error, HTTP_LIBCURL_SONAME " lacks %s", symbol);   \
            fprintf(stderr, "caravan_port: %s\n", load_error);                                 \
            dlclose(h);                                                                        \
            return -1;                                                                         \
        }                                                                                      \
        memcpy(&lib.field, &sym, sizeof sym);                                                  \
    } while (0)
    BIND(global_init, "curl_global_init");
    BIND(multi_init, "curl_multi_init");
    BIND(multi_setopt, "curl_multi_setopt");
    BIND(multi_add_handle, "curl_multi_add_handle");
    BIND(multi_remove_handle, "curl_multi_remove_handle");
    BIND(multi_cleanup, "curl_multi_cleanup");
    BIND(multi_socket_action, "curl_multi_socket_action");
    BIND(multi_info_read, "curl_multi_info_read");
    BIND(easy_init, "curl_easy_init");
    BIND(easy_setopt, "curl_easy_setopt");
    BIND(easy_getinfo, "curl_easy_getinfo");
    BIND(easy_cleanup, "curl_easy_cleanup");
    BIND(easy_strerror, "curl_easy_strerror");
    BIND(slist_append, "curl_slist_append");
    BIND(slist_free_all, "curl_slist_free_all");
    BIND(version, "curl_version");
#undef BIND
    return 0;
}

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
    if (h->nsocks >= HTTP_MAX_SOCKETS) {
        fprintf(stderr, "caravan_port: http: more than %d sockets\n", HTTP_MAX_SOCKETS);
        return -1;
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

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t n = size * nmemb;
    if (n > t->max - t->len) {
        t->too_large = true;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 16384;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->body, cap);
        if (grown == NULL)
            return 0;
        t->body = grown;
        t->cap = cap;
    }
    memcpy(t->body + t->len, data, n);
    t->len += n;
    t->body[t->len] = '\0';
    return n;
}

/* Copies the value of header `name` if line is that header. Returns -1
 * when it is but its value does not fit in cap - 1 bytes. */
static int take_header(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    const char *v = line + k + 1;
    size_t vn = n - k - 1;
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
        vn--;
    if (vn >= cap)
        return -1;
    memcpy(out, v, vn);
    out[vn] = '\0';
    return 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t n = size * nmemb;
    static const char *const names[] = {"X-Consul-Index", "X-Nomad-Index", "X-Nomad-NextToken"};
    char *outs[] = {t->resp.index, t->resp.index, t->resp.next_token};
    size_t caps[] = {sizeof t->resp.index, sizeof t->resp.index, sizeof t->resp.next_token};
    for (size_t i = 0; i < 3; i++)
        if (take_header(line, n, names[i], outs[i], caps[i]) != 0 && t->long_header == NULL)
            t->long_header = names[i];
    return n;
}

static const char *curl_atom(CURLcode c, bool too_large, const char *error)
{
    if (too_large)
        return "too_large";
    /* TLS 1.3 lets the client finish its handshake before the server
     * judges the client's certificate: the server's refusal then arrives
     * as an alert on the first read, which libcurl reports as a receive
     * error. It is a TLS failure all the same. */
    if ((c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR) && strstr(error, " alert ") != NULL)
        return "tls_error";
    switch (c) {
    case CURLE_COULDNT_CONNECT: return "connection_refused";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST: return "nxdomain";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED: return "tls_error";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE: return "connection_closed";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return "bad_args";
    case CURLE_OUT_OF_MEMORY: return "no_memory";
    default: return "http_error";
    }
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
        lib.multi_remove_handle(t->h->multi, t->easy);
        lib.easy_cleanup(t->easy);
    }
    lib.slist_free_all(t->headers);
    free(t->body);
    free(t);
}

static void finish(struct http *h, CURL *easy, CURLcode code)
{
    struct transfer *t = NULL;
    lib.easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    struct http_result r = {.response = &t->resp};
    if (code == CURLE_OK && t->long_header != NULL) {
        r.reason = "bad_answer";
        snprintf(r.detail, sizeof r.detail, "%s header longer than %zu bytes", t->long_header,
                 strcmp(t->long_header, "X-Nomad-NextToken") == 0 ? sizeof t->resp.next_token - 1
                                                                  : sizeof t->resp.index - 1);
    } else if (code == CURLE_OK) {
        lib.easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->resp.status);
        t->resp.body = t->body ? t->body : "";
        t->resp.body_len = t->len;
    } else {
        r.reason = curl_atom(code, t->too_large, t->error);
        if (t->too_large)
            snprintf(r.detail, sizeof r.detail, "response body larger than %zu bytes", t->max);
        else
            snprintf(r.detail, sizeof r.detail, "%s",
                     t->error[0] ? t->error : lib.easy_strerror(code));
    }
    h->inflight--;
    h->done(h->ctx, t->id, t->user, &r);
    transfer_free(t);
}

struct http *http_new(http_done_fn done, void *ctx)
{
    if (!library_ready) {
        if (load_libcurl() != 0)
            return NULL;
        if (lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(load_error, sizeof load_error, "curl_global_init failed");
            return NULL;
        }
        load_error[0] = '\0';
        library_ready = true;
    }
    struct http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->multi = lib.multi_init();
    if (h->multi == NULL) {
        free(h);
        return NULL;
    }
    h->done = done;
    h->ctx = ctx;
    h->timer_due = -1;
    lib.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    lib.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    lib.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    lib.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void http_free(struct http *h)
{
    if (h == NULL)
        return;
    while (h->transfers)
        transfer_free(h->transfers);
    lib.multi_cleanup(h->multi);
    free(h);
}

int http_start(struct http *h, uint64_t id, const struct http_request *req, void *user,
               const char **reason, char *detail, size_t dlen)
{
    if (h->inflight >= HTTP_MAX_INFLIGHT) {
        *reason = "overload";
        snprintf(detail, dlen, "%d HTTP requests already in flight", HTTP_MAX_INFLIGHT);
        return -1;
    }
    struct transfer *t = calloc(1, sizeof *t);
    if (t == NULL || (t->easy = lib.easy_init()) == NULL) {
        free(t);
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot allocate an HTTP transfer");
        return -1;
    }
    t->h = h;
    t->id = id;
    t->user = user;
    t->max = req->max_bytes;

    char url[sizeof req->base + sizeof req->path];
    CURL *e = t->easy;
    if (strncmp(req->base, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        /* Nomad's task API socket: HTTP over a unix socket, host irrelevant. */
        lib.easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, req->base + strlen(UNIX_PREFIX));
        snprintf(url, sizeof url, "http://localhost%s", req->path);
    } else {
        snprintf(url, sizeof url, "%s%s", req->base, req->path);
    }
    if (req->token_header[0] != '\0') {
        t->headers = lib.slist_append(NULL, req->token_header);
        if (t->headers == NULL) {
            transfer_free(t);
            *reason = "no_memory";
            snprintf(detail, dlen, "cannot allocate request headers");
            return -1;
        }
        lib.easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    }
    lib.easy_setopt(e, CURLOPT_URL, url);
    lib.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    lib.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    lib.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    lib.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    lib.easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    lib.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    lib.easy_setopt(e, CURLOPT_WRITEDATA, t);
    lib.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    lib.easy_setopt(e, CURLOPT_HEADERDATA, t);
    lib.easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    lib.easy_setopt(e, CURLOPT_PRIVATE, t);
    /* Certificates are verified unless the caller points elsewhere; there is
     * deliberately no option to turn verification off. */
    if (req->ca_file[0])
        lib.easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
    if (req->cert_file[0])
        lib.easy_setopt(e, CURLOPT_SSLCERT, req->cert_file);
    if (req->key_file[0])
        lib.easy_setopt(e, CURLOPT_SSLKEY, req->key_file);

    if (lib.multi_add_handle(h->multi, e) != CURLM_OK) {
        transfer_free(t);
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot queue the HTTP transfer");
        return -1;
    }
    h->inflight++;
    t->next = h->transfers;
    if (h->transfers)
        h->transfers->prev = t;
    h->transfers = t;
    return 0;
}

size_t http_poll_fds(struct http *h, struct pollfd *fds, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nsocks && n < cap; i++, n++)
        fds[n] = (struct pollfd){.fd = h->socks[i].fd, .events = h->socks[i].events};
    return n;
}

int http_timeout(struct http *h, int cap)
{
    if (h->timer_due < 0)
        return cap;
    int64_t left = h->timer_due - clock_now_ms();
    return left < 0 ? 0 : left < cap ? (int)left : cap;
}

static void drain(struct http *h)
{
    CURLMsg *m;
    int left;
    while ((m = lib.multi_info_read(h->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE)
            finish(h, m->easy_handle, m->data.result);
}

void http_process(struct http *h, const struct pollfd *fds, size_t n)
{
    int running = 0;
    for (size_t i = 0; i < n; i++) {
        if (fds[i].revents == 0)
            continue;
        int ev = (fds[i].revents & POLLIN ? CURL_CSELECT_IN : 0) |
                 (fds[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                 (fds[i].revents & (POLLERR | POLLHUP) ? CURL_CSELECT_ERR : 0);
        lib.multi_socket_action(h->multi, fds[i].fd, ev, &running);
    }
    if (h->timer_due >= 0 && clock_now_ms() >= h->timer_due) {
        h->timer_due = -1;
        lib.multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    drain(h);
}

void http_library(char *out, size_t cap)
{
    if (library_ready)
        snprintf(out, cap, HTTP_LIBCURL_SONAME ": %s", lib.version());
    else if (load_error[0])
        snprintf(out, cap, "none: %s", load_error);
    else
        snprintf(out, cap, "none: not loaded yet (loaded on the first HTTP request)");
}

size_t http_inflight(const struct http *h)
{
    return h->inflight;
}

int http_escape_append(char *buf, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = strlen(buf);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        size_t need = plain ? 1 : 3;
        if (used + need >= cap)
            return -1;
        if (plain) {
            buf[used++] = (char)c;
        } else {
            buf[used++] = '%';
            buf[used++] = hex[c >> 4];
            buf[used++] = hex[c & 15];
        }
    }
    buf[used] = '\0';
    return 0;
}
