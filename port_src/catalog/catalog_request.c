/* catalog_request.c - the Consul or Nomad GET; see catalog_request.h. */
#include "catalog_request.h"

#include <stdio.h>
#include <string.h>

#include "url.h"

void catalog_query_init(struct catalog_query *q, enum catalog_api api)
{
    memset(q, 0, sizeof *q);
    q->api = api;
    q->timeout_ms = CATALOG_DEFAULT_TIMEOUT_MS;
    q->max_bytes = CATALOG_DEFAULT_MAX_BYTES;
}

/* Appends "&key=value" (or "?key=value" first) with value escaped. */
static int add_param(char *path, size_t cap, const char *key, const char *value)
{
    size_t used = strlen(path);
    int n = snprintf(path + used, cap - used, "%c%s=", strchr(path, '?') ? '&' : '?', key);
    if (n < 0 || (size_t)n >= cap - used)
        return -1;
    return url_escape_append(path, cap, value);
}

static int add_number(char *path, size_t cap, const char *key, long long value, const char *unit)
{
    char num[40];
    snprintf(num, sizeof num, "%lld%s", value, unit);
    return add_param(path, cap, key, num);
}

/* Appends "&flag" (or "?flag" first): Consul reads these by presence. */
static int add_flag(char *path, size_t cap, const char *flag)
{
    size_t used = strlen(path);
    int n = snprintf(path + used, cap - used, "%c%s", strchr(path, '?') ? '&' : '?', flag);
    return n < 0 || (size_t)n >= cap - used ? -1 : 0;
}

int catalog_query_check_consistency(const struct catalog_query *q, char *msg, size_t msglen)
{
    const char *c = q->consistency;
    bool cached = strcmp(q->cached, "true") == 0;
    if (c[0] && strcmp(c, "default") != 0 && strcmp(c, "stale") != 0 &&
        strcmp(c, "consistent") != 0) {
        snprintf(msg, msglen, "consistency: must be default, stale or consistent");
        return -1;
    }
    if (q->cached[0] && !cached && strcmp(q->cached, "false") != 0) {
        snprintf(msg, msglen, "cached: must be true or false");
        return -1;
    }
    if (cached && strcmp(c, "consistent") == 0) {
        snprintf(msg, msglen, "cached: Consul refuses ?cached with ?consistent");
        return -1;
    }
    if (q->max_stale_ms > 0 && strcmp(c, "stale") != 0) {
        snprintf(msg, msglen, "max_stale_ms: bounds stale reads; needs consistency stale");
        return -1;
    }
    return 0;
}

int catalog_request_build(const struct catalog_query *a, struct http_request *r)
{
    memset(r, 0, sizeof *r);
    /* A trailing slash in the base would double the path's. */
    snprintf(r->base, sizeof r->base, "%s", a->url);
    size_t bl = strlen(r->base);
    while (bl > 0 && r->base[bl - 1] == '/' && strncmp(r->base, "unix://", 7) != 0)
        r->base[--bl] = '\0';

    bool consul = a->api == API_CONSUL;
    snprintf(r->path, sizeof r->path, "%s", consul ? "/v1/health/service/" : "/v1/service/");
    int bad = url_escape_append(r->path, sizeof r->path, a->service);
    if (consul) {
        if (strcmp(a->passing, "false") != 0)
            bad |= add_param(r->path, sizeof r->path, "passing", "true");
        if (a->tag[0])
            bad |= add_param(r->path, sizeof r->path, "tag", a->tag);
        if (a->dc[0])
            bad |= add_param(r->path, sizeof r->path, "dc", a->dc);
        /* Consul API docs, "Consistency Modes" and "Agent Caching". max_stale
         * is not sent: the docs have the client judge X-Consul-LastContact,
         * and a server bound turns cheap stale reads into leader reads just
         * when the servers are overloaded (their dns_config.max_stale caution). */
        if (strcmp(a->consistency, "stale") == 0 || strcmp(a->consistency, "consistent") == 0)
            bad |= add_flag(r->path, sizeof r->path, a->consistency);
        if (strcmp(a->cached, "true") == 0)
            bad |= add_flag(r->path, sizeof r->path, "cached");
    } else {
        if (a->namespace_[0])
            bad |= add_param(r->path, sizeof r->path, "namespace", a->namespace_);
        if (a->next_token[0])
            bad |= add_param(r->path, sizeof r->path, "next_token", a->next_token);
        if (a->per_page > 0)
            bad |= add_number(r->path, sizeof r->path, "per_page", a->per_page, "");
    }
    long long wait = 0;
    if (a->index > 0) {
        wait = a->wait_ms > 0 ? a->wait_ms : CATALOG_DEFAULT_WAIT_MS;
        bad |= add_number(r->path, sizeof r->path, "index", a->index, "");
        bad |= add_number(r->path, sizeof r->path, "wait", wait, "ms");
    }
    if (a->token[0])
        snprintf(r->token_header, sizeof r->token_header, "%s: %s",
                 consul ? "X-Consul-Token" : "X-Nomad-Token", a->token);
    snprintf(r->ca_file, sizeof r->ca_file, "%s", a->ca_file);
    snprintf(r->cert_file, sizeof r->cert_file, "%s", a->cert_file);
    snprintf(r->key_file, sizeof r->key_file, "%s", a->key_file);
    /* The servers add up to wait/16 of jitter to a blocking query. */
    r->timeout_ms = (long)(a->timeout_ms + wait + wait / 16);
    r->connect_timeout_ms = CATALOG_CONNECT_TIMEOUT_MS < a->timeout_ms
                                ? CATALOG_CONNECT_TIMEOUT_MS
                                : (long)a->timeout_ms;
    r->max_bytes = (size_t)a->max_bytes;
    r->proxy_mode = a->proxy_mode;
    snprintf(r->proxy, sizeof r->proxy, "%s", a->proxy);
    return bad ? -1 : 0;
}
