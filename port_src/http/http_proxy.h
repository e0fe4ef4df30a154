/*
 * http_proxy.h - which proxy, if any, a Consul or Nomad request goes through.
 *
 * libcurl left to itself reads http_proxy / HTTPS_PROXY / ALL_PROXY /
 * NO_PROXY from the environment the program inherits from the VM: with an
 * egress proxy set, `GET http://127.0.0.1:8500/...' and its X-Consul-Token
 * went to the proxy, whose answer was taken for Consul's. The rule here is
 * HashiCorp's own clients' (Go's http.ProxyFromEnvironment,
 * golang.org/x/net/http/httpproxy), with one addition:
 *
 *   - loopback addresses (127.0.0.0/8, ::1, ::ffff:127.x), the unspecified
 *     addresses (0.0.0.0, ::), which Linux connects to the local host,
 *     `localhost', names ending in `.localhost' and unix sockets always go
 *     direct, even with an explicit proxy option;
 *   - a host libcurl would decode (percent-encoded, other than an IPv6 zone
 *     id) or one with an empty label is refused (http_proxy_url_refusal),
 *     so the host classified is the host libcurl connects to;
 *   - proxy `none' goes direct; proxy `"http://..."' uses that proxy;
 *   - otherwise HTTPS_PROXY (https_proxy) for https:// URLs, HTTP_PROXY
 *     (http_proxy) for http:// URLs, unless NO_PROXY (no_proxy) matches:
 *     `*', an IP, a CIDR, `domain' (itself and its subdomains), `.domain'
 *     or `*.domain' (subdomains only), each optionally with `:port'. An
 *     uppercase variable wins over the lowercase one when both are set.
 *     A value without a scheme means http://. ALL_PROXY is not read (Go
 *     does not either).
 *
 * The chosen proxy is always handed to libcurl explicitly (CURLOPT_PROXY,
 * "" for direct, with CURLOPT_NOPROXY "") so that libcurl never consults
 * the environment itself; and its port is always written out (libcurl's
 * default proxy port is 1080, Go's 80 or 443).
 */
#ifndef CARAVAN_HTTP_PROXY_H
#define CARAVAN_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_proxy_mode {
    HTTP_PROXY_ENV = 0, /* the environment decides (the default) */
    HTTP_PROXY_NONE,    /* direct */
    HTTP_PROXY_URL,     /* the given proxy */
};

/* Room for a proxy URL, credentials included. */
#define HTTP_PROXY_URL_MAX 1024

/* Chooses the proxy for a request to base (http://, https:// or unix://;
 * already accepted by http.c). option is the proxy URL for HTTP_PROXY_URL.
 * out (cap bytes) gets "" (direct) or "scheme://[userinfo@]host:port".
 * Returns 0, or -1 with *why naming what is unusable (a proxy that is not
 * http:// or https://, has no host, or does not fit); why never repeats the
 * proxy URL, which may hold a password. */
int http_proxy_choose(const char *base, enum http_proxy_mode mode, const char *option,
                      char *out, size_t cap, const char **why);

/* Why url's host cannot be classified as libcurl will use it (a '%' other
 * than an IPv6 zone id's, an empty label), or NULL; for http.c to refuse
 * the request as bad_args before anything is resolved or sent. NULL for
 * unix:// and for faults of other kinds. */
const char *http_proxy_url_refusal(const char *url);

/* Whether a URL's host (as written between "://" or "@" and ":port", IPv6
 * in brackets) names this machine: loopback, localhost or unspecified. */
bool http_proxy_loopback(const char *host);

/* Whether Go's NO_PROXY rule (above) exempts host:port from the proxy.
 * host is lowercase, IPv6 without brackets. */
bool http_proxy_no_proxy(const char *no_proxy, const char *host, long port);

#endif
