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

#define CATALOG_TEXT_MAX 256

struct member {
    char address[CATALOG_TEXT_MAX]; /* as registered: an IP, or a host name */
    long port;
    char node[CATALOG_TEXT_MAX];    /* Consul node name / Nomad node ID */
    char id[CATALOG_TEXT_MAX];      /* service instance ID */
};

struct members {
    struct member *m;
    size_t n, cap;
};

void members_init(struct members *ms);
void members_free(struct members *ms);
/* Appends an empty member; returns it, or NULL when out of memory. */
struct member *members_add(struct members *ms);

/*
 * GET /v1/health/service/:service (Consul docs, "Health HTTP Endpoint - List
 * Service Instances for Service"): an array of {Node, Service, Checks}.
 * Address: Service.Address, or Node.Address when that is empty. With a
 * non-empty `tagged` (lan, wan, lan_ipv4, wan_ipv6, ...): the service's
 * tagged address of that name ({address, port}, either key casing), else the
 * node's (a string), else the default. Port: the tagged port if given, else
 * Service.Port.
 */
int consul_health_parse(const char *body, size_t len, const char *tagged, struct members *out,
                        const char **err);

/*
 * GET /v1/service/:service_name (Nomad docs, "Services HTTP API - Read
 * Service"): an array of registrations with Address, Port, ID, NodeID.
 */
int nomad_services_parse(const char *body, size_t len, struct members *out, const char **err);

#endif
