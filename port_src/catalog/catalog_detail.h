/*
 * catalog_detail.h - the error detail of a Consul or Nomad answer that is not
 * 200: "HTTP <status>: " and the first line of the body, printable, at most
 * CATALOG_DETAIL_BODY_MAX bytes of it, with every occurrence of the request's
 * ACL token replaced by '*'.
 *
 * IMPORTANT: the token is masked before the line is cut. Cutting first let
 * a token that straddles the limit through minus its last bytes.
 */
#ifndef CARAVAN_CATALOG_DETAIL_H
#define CARAVAN_CATALOG_DETAIL_H

#include <stddef.h>

#define CATALOG_DETAIL_BODY_MAX 160

/* Writes the detail into out (cap bytes, NUL-terminated). token may be "". */
void catalog_detail(char *out, size_t cap, long status, const char *body, size_t len,
                 const char *token);

#endif
