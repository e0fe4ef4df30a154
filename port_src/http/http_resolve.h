/*
 * http_resolve.h - host names of Consul and Nomad URLs resolved with c-ares
 * inside the program's poll loop, so that no resolver can block it.
 *
 * libcurl's own resolver runs getaddrinfo() in a thread that curl joins
 * when the transfer ends or the multi handle is cleaned up: behind a
 * black-holed DNS server a 500 ms request was answered after 8 s, pings
 * waited as long and exit after stdin closed took 7.7 s. http.c resolves
 * here instead and hands libcurl the addresses (CURLOPT_RESOLVE).
 *
 * This is not in dns.c: dns.c serves the `srv' and `addr' operations with
 * channels keyed by the servers a request names (a pool with LRU eviction);
 * this resolver is one channel on the system's resolv.conf and /etc/hosts
 * (as getaddrinfo would read them), owned by the HTTP client alone.
 *
 * Ownership: the callback runs exactly once per started lookup, possibly
 * from inside http_resolve_start (an /etc/hosts hit), from
 * http_resolve_process, or from http_resolve_free (status "cancelled").
 * It must only record the result: freeing what the caller's loop holds
 * from inside it is not allowed.
 */
#ifndef CARAVAN_HTTP_RESOLVE_H
#define CARAVAN_HTTP_RESOLVE_H

#include <poll.h>
#include <stddef.h>

#include "ares_socks.h"

/* Sockets the resolver may have open: ares_socks refuses more. */
#define HTTP_RESOLVE_MAX_SOCKS ARES_SOCKS_MAX
/* Room for the addresses handed to libcurl: "[v6],a.b.c.d,..." */
#define HTTP_RESOLVE_ADDRS_MAX 512

/* reason is NULL on success with addrs a comma-separated list (IPv6 in
 * brackets), else a protocol atom (nxdomain, timeout, dns_error,
 * cancelled) with a detail in addrs. */
typedef void (*http_resolve_fn)(void *arg, const char *reason, const char *addrs);

struct http_resolver;

struct http_resolver *http_resolve_new(const char **why);
void http_resolve_free(struct http_resolver *r);

/* Starts resolving host (A and AAAA). Returns 0, or -1 if c-ares cannot. */
int http_resolve_start(struct http_resolver *r, const char *host, http_resolve_fn fn, void *arg);

size_t http_resolve_poll_fds(const struct http_resolver *r, struct pollfd *fds, size_t cap);
int http_resolve_timeout(struct http_resolver *r, int cap);
void http_resolve_process(struct http_resolver *r, const struct pollfd *fds, size_t n);

#endif
