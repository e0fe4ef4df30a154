/* url.c - the pure URL checks of a request; see url.h. */
#include "url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

static bool is_unix(const char *base)
{
    return strncmp(base, URL_UNIX_PREFIX, strlen(URL_UNIX_PREFIX)) == 0;
}

bool url_host_to_resolve(const char *base, char *host, size_t cap, long *port)
{
    const char *p = strstr(base, "://");
    if (p == NULL || is_unix(base))
        return false;
    *port = strncmp(base, "https:", 6) == 0 ? 443 : 80;
    p += 3;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL)
        p = at + 1;
    if (*p == '[')
        return false; /* an IPv6 literal */
    size_t n = strcspn(p, ":/?#");
    if (n == 0 || n >= cap)
        return false; /* url_refusal refused both */
    memcpy(host, p, n);
    host[n] = '\0';
    if (p[n] == ':') {
        char *stop;
        long v = strtol(p + n + 1, &stop, 10);
        if (stop != p + n + 1 && v > 0 && v < 65536)
            *port = v;
    }
    uint32_t v4;
    return !address_ipv4_lenient(host, &v4); /* libcurl rewrites such a host to dotted decimal */
}

const char *url_refusal(const char *base)
{
    if (is_unix(base))
        return NULL;
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
        return "url: must start with http://, https:// or unix://";
    const char *p = strstr(base, "://") + 3;
    size_t len = strcspn(p, "/?#");
    const char *at = memchr(p, '@', len);
    if (at != NULL && memchr(at + 1, '@', len - (size_t)(at + 1 - p)) != NULL)
        return "url: its user info holds an '@'; write it as %40";
    const char *host = at != NULL ? at + 1 : p, *end = p + len, *after;
    if (host < end && *host == '[') { /* an IPv6 literal: nothing to resolve */
        after = memchr(host, ']', (size_t)(end - host));
        if (after == NULL)
            return "url: an IPv6 address without its closing ']'";
        after++;
    } else {
        size_t n = strcspn(host, ":/?#");
        if (n == 0)
            return "url: no host after the scheme";
        if (n >= URL_HOST_MAX)
            return "url: host name longer than 255 bytes";
        after = host + n;
    }
    if (after < end && *after != ':')
        return "url: the host must be followed by :PORT or a path";
    if (after < end) { /* ":PORT", empty for the scheme's default as in libcurl */
        size_t digits = strspn(after + 1, "0123456789");
        if (after + 1 + digits != end || digits > 5 ||
            (digits > 0 && (atol(after + 1) < 1 || atol(after + 1) > 65535)))
            return "url: the port must be a number in 1..65535";
    }
    return NULL;
}

int url_escape_append(char *buf, size_t cap, const char *s)
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
