/*
 * catalog_request.h - the GET that asks Consul or Nomad for a service's
 * instances: path, query parameters (escaped), token header, timeouts. Used
 * by the port operations (ops_catalog.c) and the command line (cli.c).
 */
#ifndef CARAVAN_CATALOG_REQUEST_H
#define CARAVAN_CATALOG_REQUEST_H

#include <stdbool.h>

#include "catalog.h"
#include "http.h"

/* The non-blocking part of a request: connect, send, the server's work. */
#define CATALOG_DEFAULT_TIMEOUT_MS 10000
#define CATALOG_CONNECT_TIMEOUT_MS 3000
/* Big enough for ~10,000 Consul instances with their checks; a body past
 * it is an error, not an allocation. */
#define CATALOG_DEFAULT_MAX_BYTES (32LL * 1024 * 1024)
/* Without an explicit wait, a blocking query waits this long (Consul's and
 * Nomad's own default). */
#define CATALOG_DEFAULT_WAIT_MS 300000

struct catalog_query {
    enum catalog_api api;
    char url[1024], service[256], token[256], tag[256], dc[256], namespace_[256];
    char tagged[64], next_token[HTTP_HEADER_VALUE_MAX], ca_file[HTTP_PATH_MAX], cert_file[HTTP_PATH_MAX];
    char key_file[HTTP_PATH_MAX], passing[8];
    long long index, wait_ms, timeout_ms, max_bytes, per_page;
    enum http_proxy_mode proxy_mode;
    char proxy[HTTP_PROXY_URL_MAX];
    /* Consul only: consistency default | stale | consistent ("" = default),
     * cached true | false, and the bound put on an answer's staleness
     * (0 = none; judged from its headers: http_header_fresh). */
    char consistency[16], cached[8];
    long long max_stale_ms;
};

void catalog_query_init(struct catalog_query *q, enum catalog_api api);

/* Refuses what Consul refuses (its "Consistency Modes" and "Agent Caching"
 * docs; a 400 otherwise): a consistency other than default, stale or
 * consistent, cached with consistent, and max_stale without stale (it
 * bounds stale reads). Returns 0, or -1 with msg naming the key. */
int catalog_query_check_consistency(const struct catalog_query *q, char *msg, size_t msglen);

/* Fills r for q. Returns 0, or -1 when the URL or parameters do not fit. */
int catalog_request_build(const struct catalog_query *q, struct http_request *r);

#endif
