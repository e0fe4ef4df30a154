/* http_proxy.c - the proxy rule of http_proxy.h. */
#include "http_proxy.h"

#include "address.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNIX_PREFIX "unix://"
#define HOST_MAX 256

/* The parts of scheme://[userinfo@]host[:port][/...] that matter here. */
struct authority {
    bool https;
    const char *user; /* userinfo, without its '@'; user_len 0 if none */
    size_t user_len;
    char host[HOST_MAX]; /* lowercase; IPv6 without brackets */
    bool v6;             /* host was in brackets */
    long port;           /* explicit, or the scheme's default */
};

/* Why the host text h (n bytes, without brackets; v6 when it was in
 * brackets) cannot be classified, or NULL.
 *
 * IMPORTANT: libcurl 7.88 percent-decodes a URL's host before it uses it
 * ("%31%32%37.0.0.1" connects to 127.0.0.1, "%6c%6f%63%61%6c%68%6f%73%74" is
 * localhost), and Go does too. Every decision made here (loopback, NO_PROXY)
 * and in http.c (which name c-ares resolves and CURLOPT_RESOLVE pins) reads
 * the host as written, so a '%' in it is refused rather than decoded:
 * decoding here would have to track libcurl's decoder byte for byte (and
 * any later libcurl that decodes differently would reopen the hole), while
 * a host without '%' is one that every decoder leaves as it is. The same
 * for empty labels ("localhost..", ".x"): libcurl strips one trailing dot
 * only, and what the rest means is up to whichever resolver sees it (a
 * proxy's, with the token). The one '%' allowed is an IPv6 zone id,
 * "[fe80::1%25eth0]": the address before it must be a literal, and the zone
 * never changes which host that is. */
static const char *host_refusal(const char *h, size_t n, bool v6)
{
    const char *pct = memchr(h, '%', n);
    if (v6) {
        if (pct == NULL)
            return NULL;
        char addr[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        size_t an = (size_t)(pct - h);
        if (an >= sizeof addr)
            return "url: an IPv6 address that is not a literal";
        memcpy(addr, h, an);
        addr[an] = '\0';
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            return "url: an IPv6 address that is not a literal";
        const char *z = pct + 1, *end = h + n;
        if (end - z > 2 && z[0] == '2' && z[1] == '5')
            z += 2;
        if (z == end)
            return "url: an empty IPv6 zone id";
        for (; z < end; z++)
            if (!isalnum((unsigned char)*z) && strchr("-._~", *z) == NULL)
                return "url: an IPv6 zone id with other than letters, digits, '-._~'";
        return NULL;
    }
    if (pct != NULL)
        return "url: a percent-encoded host; write the host itself";
    if (n > 0 && h[0] == '.')
        return "url: a host that starts with '.'";
    for (size_t i = 0; i + 1 < n; i++)
        if (h[i] == '.' && h[i + 1] == '.')
            return "url: a host with an empty label ('..')";
    return NULL;
}

/* Returns 0, or -1 when url is not http(s)://host... with a usable port
 * (or with a host host_refusal refuses; *why then says why, if not NULL). */
static int parse_authority_why(const char *url, struct authority *a, const char **why)
{
    memset(a, 0, sizeof *a);
    if (strncasecmp(url, "https://", 8) == 0)
        a->https = true;
    else if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *p = url + (a->https ? 8 : 7);
    size_t len = strcspn(p, "/?#");
    const char *end = p + len, *at = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == '@')
            at = c; /* the last '@' ends the userinfo, as in libcurl */
    if (at != NULL) {
        a->user = p;
        a->user_len = (size_t)(at - p);
        p = at + 1;
    }
    const char *host = p, *host_end;
    if (p < end && *p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL)
            return -1;
        p = host_end + 1;
        a->v6 = true;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end == NULL)
            host_end = end;
        p = host_end;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl >= sizeof a->host)
        return -1;
    const char *refused = host_refusal(host, hl, a->v6);
    if (refused != NULL) {
        if (why != NULL)
            *why = refused;
        return -1;
    }
    for (size_t i = 0; i < hl; i++)
        a->host[i] = (char)tolower((unsigned char)host[i]);
    a->host[hl] = '\0';
    a->port = a->https ? 443 : 80;
    if (p < end) {
        if (*p != ':')
            return -1;
        p++;
        if (p < end) { /* "host:" keeps the default, as in libcurl and Go */
            size_t digits = strspn(p, "0123456789");
            if (p + digits != end || digits > 5)
                return -1;
            a->port = strtol(p, NULL, 10);
            if (a->port < 1 || a->port > 65535)
                return -1;
        }
    }
    return 0;
}

static int parse_authority(const char *url, struct authority *a)
{
    return parse_authority_why(url, a, NULL);
}

const char *http_proxy_url_refusal(const char *url)
{
    struct authority a;
    const char *why = NULL;
    if (strncmp(url, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return NULL;
    (void)parse_authority_why(url, &a, &why);
    return why; /* other faults are url_refusal's (http.c) to name */
}

/* host as an IPv6 address (a zone "%eth0" ignored). */
static bool ipv6_literal(const char *host, struct in6_addr *a)
{
    char buf[INET6_ADDRSTRLEN + 1];
    size_t n = strcspn(host, "%");
    if (n >= sizeof buf)
        return false;
    memcpy(buf, host, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, a) == 1;
}

bool http_proxy_loopback(const char *host)
{
    char h[HOST_MAX];
    size_t n = strlen(host);
    if (n >= sizeof h)
        return false;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memcpy(h, host + 1, n - 2);
        h[n - 2] = '\0';
    } else {
        memcpy(h, host, n + 1);
    }
    n = strlen(h);
    if (n > 0 && h[n - 1] == '.')
        h[--n] = '\0';
    static const char suffix[] = ".localhost";
    size_t sl = sizeof suffix - 1;
    if (strcasecmp(h, "localhost") == 0 || (n > sl && strcasecmp(h + n - sl, suffix) == 0))
        return true;
    /* The unspecified addresses too: Linux connects 0.0.0.0 ("0") and ::
     * to the local host. */
    uint32_t v4;
    if (address_ipv4_lenient(h, &v4))
        return (v4 >> 24) == 127 || v4 == 0;
    struct in6_addr v6;
    if (ipv6_literal(h, &v6)) {
        if (IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6))
            return true;
        static const unsigned char zero4[4] = {0, 0, 0, 0};
        return IN6_IS_ADDR_V4MAPPED(&v6) &&
               (v6.s6_addr[12] == 127 || memcmp(v6.s6_addr + 12, zero4, 4) == 0);
    }
    return false;
}

/* An address of either family, for NO_PROXY's IP and CIDR entries. */
struct ip {
    int family;
    unsigned char b[16];
};

static bool parse_ip(const char *s, struct ip *ip)
{
    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, s, ip->b) == 1) {
        ip->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, ip->b) == 1) {
        ip->family = AF_INET6;
        /* Go compares a v4-mapped address equal to its IPv4 form. */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(ip->b, mapped, sizeof mapped) == 0) {
            memmove(ip->b, ip->b + 12, 4);
            memset(ip->b + 4, 0, 12);
            ip->family = AF_INET;
        }
        return true;
    }
    return false;
}

static bool prefix_equal(const struct ip *a, const struct ip *b, unsigned bits)
{
    if (a->family != b->family)
        return false;
    size_t whole = bits / 8;
    if (memcmp(a->b, b->b, whole) != 0)
        return false;
    unsigned rest = bits % 8;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a->b[whole] & mask) == (b->b[whole] & mask);
}

/* One NO_PROXY entry (lowercase, trimmed) against host:port. */
static bool entry_matches(const char *e, const char *host, const struct ip *hip, bool host_is_ip,
                          long port)
{
    char buf[HOST_MAX];
    if (strlen(e) >= sizeof buf)
        return false;
    const char *slash = strchr(e, '/');
    if (slash != NULL) { /* a CIDR: no port */
        size_t n = (size_t)(slash - e);
        memcpy(buf, e, n);
        buf[n] = '\0';
        struct ip net;
        char *stop;
        long bits = strtol(slash + 1, &stop, 10);
        if (*stop != '\0' || stop == slash + 1 || !parse_ip(buf, &net))
            return false;
        if (bits < 0 || bits > (net.family == AF_INET ? 32 : 128))
            return false;
        return host_is_ip && prefix_equal(&net, hip, (unsigned)bits);
    }
    /* host[:port], [v6]:port, or a bare v6 (more than one ':'). */
    const char *want_port = NULL;
    const char *colon = strchr(e, ':');
    if (e[0] == '[') {
        const char *close = strchr(e, ']');
        if (close == NULL)
            return false;
        size_t n = (size_t)(close - e - 1);
        memcpy(buf, e + 1, n);
        buf[n] = '\0';
        if (close[1] == ':')
            want_port = close + 2;
        else if (close[1] != '\0')
            return false;
    } else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
        size_t n = (size_t)(colon - e);
        memcpy(buf, e, n);
        buf[n] = '\0';
        want_port = colon + 1;
    } else {
        strcpy(buf, e);
    }
    if (buf[0] == '\0')
        return false;
    if (want_port != NULL && *want_port != '\0') {
        char *stop;
        long p = strtol(want_port, &stop, 10);
        if (*stop != '\0' || p != port)
            return false;
    }
    struct ip eip;
    if (parse_ip(buf, &eip))
        return host_is_ip && prefix_equal(&eip, hip, eip.family == AF_INET ? 32 : 128);
    /* A domain: "*.d" and ".d" match below d; "d" matches d too (Go
     * keeps ".d" and compares suffixes). */
    const char *d = buf;
    if (strncmp(d, "*.", 2) == 0)
        d++;
    bool self_too = d[0] != '.';
    if (self_too && strcmp(host, d) == 0)
        return true;
    size_t dl = strlen(d), hl = strlen(host);
    if (self_too) /* the suffix is "." d */
        return hl > dl && host[hl - dl - 1] == '.' && strcmp(host + hl - dl, d) == 0;
    return hl >= dl && strcmp(host + hl - dl, d) == 0;
}

bool http_proxy_no_proxy(const char *no_proxy, const char *host, long port)
{
    struct ip hip;
    bool host_is_ip = parse_ip(host, &hip);
    uint32_t v4;
    if (!host_is_ip && address_ipv4_lenient(host, &v4)) { /* libcurl connects "127.1" as 127.0.0.1 */
        host_is_ip = true;
        memset(&hip, 0, sizeof hip);
        hip.family = AF_INET;
        hip.b[0] = (unsigned char)(v4 >> 24);
        hip.b[1] = (unsigned char)(v4 >> 16);
        hip.b[2] = (unsigned char)(v4 >> 8);
        hip.b[3] = (unsigned char)v4;
    }
    for (const char *p = no_proxy; *p;) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        p = *e ? e + 1 : e;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        char entry[HOST_MAX];
        if (s == e || (size_t)(e - s) >= sizeof entry)
            continue;
        for (size_t i = 0; i < (size_t)(e - s); i++)
            entry[i] = (char)tolower((unsigned char)s[i]);
        entry[e - s] = '\0';
        if (strcmp(entry, "*") == 0 || entry_matches(entry, host, &hip, host_is_ip, port))
            return true;
    }
    return false;
}

/* The first of two variables that is set and not empty, as Go reads them. */
static const char *env_any(const char *upper, const char *lower)
{
    const char *v = getenv(upper);
    if (v == NULL || *v == '\0')
        v = getenv(lower);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Writes proxy as scheme://[userinfo@]host:port, the port always present. */
static int normalise(const char *proxy, char *out, size_t cap, const char **why)
{
    char with_scheme[HTTP_PROXY_URL_MAX];
    if (strstr(proxy, "://") == NULL) { /* Go: "proxy:3128" means http://proxy:3128 */
        if ((size_t)snprintf(with_scheme, sizeof with_scheme, "http://%s", proxy) >=
            sizeof with_scheme) {
            *why = "proxy: longer than 1023 bytes";
            return -1;
        }
        proxy = with_scheme;
    }
    struct authority a;
    if (strncasecmp(proxy, "http://", 7) != 0 && strncasecmp(proxy, "https://", 8) != 0) {
        *why = "proxy: only http:// and https:// proxies are supported";
        return -1;
    }
    if (parse_authority(proxy, &a) != 0) {
        *why = "proxy: no usable host and port";
        return -1;
    }
    int n = snprintf(out, cap, "%s://%.*s%s%s%s%s:%ld", a.https ? "https" : "http",
                     (int)a.user_len, a.user ? a.user : "", a.user ? "@" : "", a.v6 ? "[" : "",
                     a.host, a.v6 ? "]" : "", a.port);
    if (n < 0 || (size_t)n >= cap) {
        *why = "proxy: longer than 1023 bytes";
        return -1;
    }
    return 0;
}

int http_proxy_choose(const char *base, enum http_proxy_mode mode, const char *option,
                      char *out, size_t cap, const char **why)
{
    out[0] = '\0';
    if (strncmp(base, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0 || mode == HTTP_PROXY_NONE)
        return 0;
    struct authority target;
    const char *refused = NULL;
    if (parse_authority_why(base, &target, &refused) != 0) {
        if (refused == NULL)
            return 0; /* http.c refuses such a URL before asking */
        *why = refused; /* a host libcurl would read otherwise: never guess */
        return -1;
    }
    if (http_proxy_loopback(target.host))
        return 0;
    if (mode == HTTP_PROXY_URL)
        return normalise(option, out, cap, why);
    const char *proxy = target.https ? env_any("HTTPS_PROXY", "https_proxy")
                                     : env_any("HTTP_PROXY", "http_proxy");
    if (proxy == NULL)
        return 0;
    const char *no_proxy = env_any("NO_PROXY", "no_proxy");
    if (no_proxy != NULL && http_proxy_no_proxy(no_proxy, target.host, target.port))
        return 0;
    if (normalise(proxy, out, cap, why) != 0) {
        *why = target.https ? "HTTPS_PROXY: only http:// and https:// proxies with a host"
                            : "HTTP_PROXY: only http:// and https:// proxies with a host";
        return -1;
    }
    return 0;
}
