/*
 * ops_dns.h - the DNS backend: the operations `srv' and `addr' over dns.h,
 * answered through a replier (backend.h); see docs/protocol.md.
 */
#ifndef CARAVAN_OPS_DNS_H
#define CARAVAN_OPS_DNS_H

#include "backend.h"
#include "replier.h"

/* Fills b with the DNS backend answering through r. Returns 0, or -1 when
 * memory (or c-ares) cannot be had. */
int ops_dns_backend(struct backend *b, struct replier *r);

#endif
