/*
 * ops_catalog.h - the catalog backend: the operations `consul_health' and
 * `nomad_services' over http.h, catalog.h and the answer worker, answered
 * through a replier (backend.h); see docs/protocol.md.
 */
#ifndef CARAVAN_OPS_CATALOG_H
#define CARAVAN_OPS_CATALOG_H

#include <stdbool.h>

#include "backend.h"
#include "catalog_request.h"
#include "replier.h"
#include "term.h"

/* Fills b with the catalog backend answering through r. libcurl is loaded
 * on the first request, not here. Returns 0, or -1 without memory. */
int ops_catalog_backend(struct backend *b, struct replier *r);

/* Reads the argument map of a consul_health or nomad_services request into
 * q. Returns 0, or -1 with msg set. */
int ops_catalog_args(const struct request *req, enum catalog_api api, struct catalog_query *q,
                     char *msg, size_t msglen);

/* Whether libcurl is loaded, and whether the answer worker thread was made
 * (for tests). */
bool ops_catalog_http_loaded(const struct backend *b);
bool ops_catalog_has_worker(const struct backend *b);

#endif
