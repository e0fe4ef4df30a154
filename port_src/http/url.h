/*
 * url.h - the pure checks on a request's URL, before libcurl sees it: which
 * URLs are refused and why, which host c-ares must resolve, and percent-
 * encoding of path segments. No I/O, no state: unit-tested in
 * test/c/test_url.c.
 */
#ifndef CARAVAN_URL_H
#define CARAVAN_URL_H

#include <stdbool.h>
#include <stddef.h>

#define URL_UNIX_PREFIX "unix://"

/* Room for a URL's host name (DNS names are at most 253 bytes). */
#define URL_HOST_MAX 256

/* Why base cannot be a request's (or a proxy's) URL, or NULL. Every host
 * name must reach url_host_to_resolve, so that the program's c-ares
 * resolves it: a URL libcurl would read otherwise (no scheme, an empty host
 * as in http:///host:port, which libcurl 7.88 reads as http://host:port)
 * would have libcurl resolve it on a thread of its own, which no deadline
 * stops and exit waits for. RFC 3986 has no '@' in user info: one written
 * raw in a password splits it, and the part after it would be taken for
 * the host, which error terms and logs then show ("cannot resolve
 * s3cr@consul"). The URL itself is never repeated in the text. */
const char *url_refusal(const char *base);

/* The host part of an http(s) URL when it is a name to resolve, copied to
 * host (cap bytes), and its port (the scheme's default unless written).
 * False for IP literals (also those libcurl reads leniently, such as
 * "127.1", which it rewrites to dotted decimal), unix:// and hosts
 * url_refusal refuses. */
bool url_host_to_resolve(const char *base, char *host, size_t cap, long *port);

/* Appends s to buf (of cap bytes, NUL-terminated) percent-encoded for a URL
 * path segment or query value (RFC 3986 unreserved bytes stay). Returns 0,
 * or -1 if it does not fit (buf then holds what fitted). */
int url_escape_append(char *buf, size_t cap, const char *s);

#endif
