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
 * GET /v1/health/service/:service (Consul docs, "Health HTTP Endpoint - List
 * Service Instances for Service"): an array of {Node, Service, Checks}.
 * Address: Service.Address, or Node.Address when that is empty. With a
 * non-empty `tagged` (lan, wan, lan_ipv4, wan_ipv6, ...): the service's
 * tagged address of that name ({address, port}, either key casing), else the
 * node's (a string), else the default. Port: the tagged port if given, else
 * Service.Port.
 *
 * The body must be one strict JSON array (json.h), or the call fails. An
 * entry that is not usable (no Node or Service object, no port, a string
 * too long or undecodable) is dropped and counted in out->skipped; the call
 * fails only when every entry was dropped. Linear in len; no memory beyond
 * the members kept.
 */
int consul_health_parse(const char *body, size_t len, const char *tagged, struct members *out,
                        const char **err);

/*
 * GET /v1/service/:service_name (Nomad docs, "Services HTTP API - Read
 * Service"): an array of registrations with Address, Port, ID, NodeID.
 * Entries are dropped and counted as for Consul.
 */
int nomad_services_parse(const char *body, size_t len, struct members *out, const char **err);

#endif
