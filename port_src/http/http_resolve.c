/* http_resolve.c - c-ares for the HTTP client's host names; see
 * http_resolve.h for why it is here and not in dns.c. */
#include "http_resolve.h"

#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ares_socks.h"

struct http_resolver {
    ares_channel ares;
    struct ares_socks socks; /* every socket c-ares has open; it refuses more */
};

struct lookup {
    http_resolve_fn fn;
    void *arg;
};

struct http_resolver *http_resolve_new(const char **why)
{
    if (ares_socks_library_init() != 0) {
        *why = "c-ares could not be initialised";
        return NULL;
    }
    struct http_resolver *r = calloc(1, sizeof *r);
    if (r == NULL) {
        *why = "out of memory";
        return NULL;
    }
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = 0;
    /* The host's resolv.conf may name any number of servers (c-ares reads
     * them all, glibc only 3): sockets past the table's room are refused. */
    ares_socks_options(&r->socks, &o, &mask);
    int rc = ares_init_options(&r->ares, &o, mask);
    if (rc != ARES_SUCCESS) {
        *why = ares_strerror(rc);
        free(r);
        return NULL;
    }
    ares_socks_guard(&r->socks, r->ares);
    return r;
}

void http_resolve_free(struct http_resolver *r)
{
    if (r == NULL)
        return;
    /* Calls every pending callback with ARES_EDESTRUCTION. */
    ares_destroy(r->ares);
    free(r);
}

static const char *atom(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME: return "nxdomain";
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return "cancelled";
    case ARES_ENOMEM: return "no_memory";
    default: return "dns_error";
    }
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct lookup *l = arg;
    char addrs[HTTP_RESOLVE_ADDRS_MAX] = "";
    size_t used = 0;
    if (status == ARES_SUCCESS && res != NULL) {
        for (struct ares_addrinfo_node *n = res->nodes; n != NULL; n = n->ai_next) {
            char text[INET6_ADDRSTRLEN];
            const void *a;
            if (n->ai_family == AF_INET)
                a = &((const struct sockaddr_in *)(const void *)n->ai_addr)->sin_addr;
            else if (n->ai_family == AF_INET6)
                a = &((const struct sockaddr_in6 *)(const void *)n->ai_addr)->sin6_addr;
            else
                continue;
            if (inet_ntop(n->ai_family, a, text, sizeof text) == NULL)
                continue;
            int w = snprintf(addrs + used, sizeof addrs - used, n->ai_family == AF_INET6
                                                                   ? "%s[%s]" : "%s%s",
                             used ? "," : "", text);
            if (w < 0 || (size_t)w >= sizeof addrs - used) {
                addrs[used] = '\0'; /* enough addresses: keep the whole ones */
                break;
            }
            used += (size_t)w;
        }
    }
    if (res != NULL)
        ares_freeaddrinfo(res);
    if (status == ARES_SUCCESS && used == 0)
        status = ARES_ENODATA;
    if (status != ARES_SUCCESS)
        snprintf(addrs, sizeof addrs, "%s", ares_strerror(status));
    l->fn(l->arg, status == ARES_SUCCESS ? NULL : atom(status), addrs);
    free(l);
}

int http_resolve_start(struct http_resolver *r, const char *host, http_resolve_fn fn, void *arg)
{
    struct lookup *l = malloc(sizeof *l);
    if (l == NULL)
        return -1;
    l->fn = fn;
    l->arg = arg;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(r->ares, host, NULL, &hints, on_addrinfo, l);
    return 0;
}

size_t http_resolve_poll_fds(const struct http_resolver *r, struct pollfd *fds, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->socks.n && n < cap; i++, n++)
        fds[n] = ares_socks_pollfd(&r->socks, i);
    return n;
}

int http_resolve_timeout(struct http_resolver *r, int cap)
{
    struct timeval max = {cap / 1000, (cap % 1000) * 1000}, tv;
    struct timeval *t = ares_timeout(r->ares, &max, &tv);
    long ms = t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
    return ms < cap ? (int)ms : cap;
}

void http_resolve_process(struct http_resolver *r, const struct pollfd *fds, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (fds[i].revents == 0)
            continue;
        any = true;
        ares_socket_t rd = fds[i].revents & (POLLIN | POLLERR | POLLHUP) ? fds[i].fd
                                                                           : ARES_SOCKET_BAD;
        ares_socket_t wr = fds[i].revents & (POLLOUT | POLLERR) ? fds[i].fd : ARES_SOCKET_BAD;
        ares_process_fd(r->ares, rd, wr);
    }
    if (!any) /* timeouts and retries */
        ares_process_fd(r->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}
