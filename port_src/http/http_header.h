/*
 * http_header.h - the response headers caravan reads (X-Consul-Index,
 * X-Nomad-Index, X-Nomad-NextToken; X-Consul-KnownLeader,
 * X-Consul-LastContact and Age for http_header_fresh), one raw header line at a time as
 * libcurl hands them over (name, colon, value, CRLF; untrusted bytes).
 *
 * A value is copied whole into its field of struct http_response, or not at
 * all: a value that does not fit, or holds a NUL byte (which would cut the
 * C string short), makes the request fail (bad_answer) with what was wrong,
 * instead of going on with a value cut short.
 */
#ifndef CARAVAN_HTTP_HEADER_H
#define CARAVAN_HTTP_HEADER_H

#include <stddef.h>

/* Longest header value read (X-Nomad-NextToken); a longer one makes the
 * request fail with bad_answer rather than be cut short. */
#define HTTP_HEADER_VALUE_MAX 2048

/* A response as the request's caller sees it (http.h), its headers read here. */
struct http_response {
    long status;
    const char *body;
    size_t body_len;
    char index[32];      /* X-Consul-Index or X-Nomad-Index, empty if absent */
    char next_token[HTTP_HEADER_VALUE_MAX]; /* X-Nomad-NextToken, empty if absent */
    /* How fresh a Consul answer is (http_header_fresh): X-Consul-KnownLeader,
     * X-Consul-LastContact (ms) and Age (s, agent cache hits); empty if absent. */
    char known_leader[8], last_contact[24], age[24];
};

/* Room for a refusal's text: the longest is under 60 bytes. */
#define HTTP_HEADER_WHY_MAX 96

/* Reads line[0..n) into resp if it is one of the headers above. Returns 0,
 * or -1 with why[0..cap) saying which header is refused and why ("X-Consul-
 * Index header longer than 31 bytes", "... header holds a NUL byte"). */
int http_header_read(const char *line, size_t n, struct http_response *resp, char *why,
                     size_t cap);

/* Whether a 200 Consul answer is fresh enough to use (Consul API docs,
 * "Consistency Modes - Visibility into Response Staleness" and "Agent
 * Caching - Background Refresh Caching"). Returns 0, or -1 with why[0..cap)
 * saying why not: X-Consul-KnownLeader: false (in any mode: the servers
 * know of no leader, so what they list may be arbitrarily old), or, when
 * max_stale_ms > 0, an X-Consul-LastContact (ms) or Age (s, a cache hit)
 * over it or not a number. Absent headers pass: not every server sends them. */
int http_header_fresh(const struct http_response *resp, long long max_stale_ms, char *why,
                      size_t cap);

#endif
