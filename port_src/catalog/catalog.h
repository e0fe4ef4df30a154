/*
 * catalog.h - service instances read from Consul's and Nomad's HTTP APIs.
 *
 * Both parsers take an untrusted response body and return the instances it
 * lists, or an error naming what was wrong with it; they never crash on
 * malformed or unexpected input and never read outside the body.
 */
#ifndef CARAVAN_CATALOG_H
#define CARAVAN_CATALOG_H

#include <stddef.h>

#include "json_split.h"

enum catalog_api { API_CONSUL, API_NOMAD };

/* Longest address kept, in bytes, with its NUL (a DNS name is at most 253),
 * and longest node name or instance ID (Nomad's IDs join the allocation,
 * task and service names, and its paging tokens are IDs). */
#define CATALOG_TEXT_MAX 256
#define CATALOG_ID_MAX 1024

/* A member costs this struct (32 bytes) plus its three strings, packed in
 * the list's arena: no fixed-size buffers. The strings stay valid until
 * members_free; the arena's chunks never move. */
struct member {
    const char *address; /* as registered: an IP, or a host name */
    const char *node;    /* Consul node name / Nomad node ID */
    const char *id;      /* service instance ID */
    long port;
};

struct members_chunk;

struct members {
    struct member *m;
    size_t n, cap;
    struct members_chunk *chunks;
    /* Entries dropped because one of their fields was unusable (a port out
     * of range, an address over CATALOG_TEXT_MAX - 1 bytes...), and why the
     * first one was. Counted across calls until members_free. */
    size_t skipped;
    const char *skip_reason;
};

void members_init(struct members *ms);
void members_free(struct members *ms);
/* Appends a member with copies of the three strings; returns 0, or -1 when
 * out of memory. */
int members_add(struct members *ms, const char *address, long port, const char *node,
                const char *id);

/*
 * An answer read as it arrives (http.h's stream): each element of the
 * array becomes a member of *out at once, and the body is never held.
 *
 * GET /v1/health/service/:service (Consul docs, "Health HTTP Endpoint - List
 * Service Instances for Service"): an array of {Node, Service, Checks}.
 * Address: Service.Address, or Node.Address when that is empty. With a
 * non-empty `tagged` (lan, wan, lan_ipv4, wan_ipv6, ...): the service's
 * tagged address of that name ({address, port}, either key casing), else the
 * node's (a string), else the default. Port: the tagged port if given, else
 * Service.Port.
 *
 * GET /v1/service/:service_name (Nomad docs, "Services HTTP API - Read
 * Service"): an array of registrations with Address, Port, ID, NodeID.
 *
 * The body must be one strict JSON array (json.h), or the answer fails,
 * wherever the fault is and however the body was cut into pieces. An entry
 * that is not usable (no Node or Service object, no port, a string too long
 * or undecodable) is dropped and counted in out->skipped; the answer fails
 * only when every entry was dropped. Linear in the body; memory beyond the
 * members is one element. On failure, *out may hold the entries read before
 * the fault: the caller discards them.
 */
struct catalog_stream {
    struct json_split split;
    enum catalog_api api;
    char tagged[64];
    struct members *out;
    size_t seen, kept;
    const char *first_bad; /* why the first dropped entry was */
};

void catalog_stream_init(struct catalog_stream *s, enum catalog_api api, const char *tagged,
                         struct members *out);
/* Returns 0, or -1 with *err set: the body is bad, whatever follows. */
int catalog_stream_feed(struct catalog_stream *s, const char *data, size_t len, const char **err);
/* The body has ended. Returns 0, or -1 with *err set. */
int catalog_stream_end(struct catalog_stream *s, const char **err);
void catalog_stream_free(struct catalog_stream *s);

/* A whole body at once, through the same stream. */
int consul_health_parse(const char *body, size_t len, const char *tagged, struct members *out,
                        const char **err);
int nomad_services_parse(const char *body, size_t len, struct members *out, const char **err);

#endif
