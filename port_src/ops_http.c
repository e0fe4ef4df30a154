/* ops_http.c - the HTTP operations `consul_health' and `nomad_services';
 * see docs/protocol.md. Arguments become a GET (http.c); the body is read by
 * catalog.c when the response arrives, possibly minutes later for a
 * blocking query. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_request.h"
#include "http.h"
#include "http_detail.h"
#include "ops.h"

#define MAX_MAX_BYTES (256LL * 1024 * 1024)
/* Consul and Nomad cap wait at 10 minutes. */
#define MAX_WAIT_MS (10LL * 60 * 1000)

/* What the answer needs once it arrives. */
struct pending {
    enum catalog_api api;
    char tagged[64];
    char token[256]; /* only to redact it from error details */
};

int ops_http_args(const struct request *req, enum catalog_api api, struct catalog_query *a,
                  char *msg, size_t msglen)
{
    catalog_query_init(a, api);
    struct term_arg spec[16] = {
        {.key = "url", .type = ARG_BINARY, .required = true, .dest = a->url, .max = sizeof a->url - 1},
        {.key = "service", .type = ARG_BINARY, .required = true, .dest = a->service,
         .max = sizeof a->service - 1},
        {.key = "token", .type = ARG_BINARY, .dest = a->token, .max = sizeof a->token - 1},
        {.key = "index", .type = ARG_INT, .dest = &a->index, .min = 0, .max = INT64_MAX},
        {.key = "wait_ms", .type = ARG_INT, .dest = &a->wait_ms, .min = 0, .max = MAX_WAIT_MS},
        {.key = "timeout_ms", .type = ARG_INT, .dest = &a->timeout_ms, .min = 1, .max = 600000},
        {.key = "max_bytes", .type = ARG_INT, .dest = &a->max_bytes, .min = 1, .max = MAX_MAX_BYTES},
        {.key = "ca_file", .type = ARG_BINARY, .dest = a->ca_file, .max = sizeof a->ca_file - 1},
        {.key = "cert_file", .type = ARG_BINARY, .dest = a->cert_file,
         .max = sizeof a->cert_file - 1},
        {.key = "key_file", .type = ARG_BINARY, .dest = a->key_file, .max = sizeof a->key_file - 1},
    };
    size_t n = 10;
    if (api == API_CONSUL) {
        spec[n++] = (struct term_arg){.key = "tag", .type = ARG_BINARY, .dest = a->tag,
                                      .max = sizeof a->tag - 1};
        spec[n++] = (struct term_arg){.key = "dc", .type = ARG_BINARY, .dest = a->dc,
                                      .max = sizeof a->dc - 1};
        spec[n++] = (struct term_arg){.key = "passing", .type = ARG_ATOM, .dest = a->passing,
                                      .max = sizeof a->passing - 1};
        spec[n++] = (struct term_arg){.key = "tagged_address", .type = ARG_BINARY,
                                      .dest = a->tagged, .max = sizeof a->tagged - 1};
    } else {
        spec[n++] = (struct term_arg){.key = "namespace", .type = ARG_BINARY,
                                      .dest = a->namespace_, .max = sizeof a->namespace_ - 1};
        spec[n++] = (struct term_arg){.key = "next_token", .type = ARG_BINARY,
                                      .dest = a->next_token, .max = sizeof a->next_token - 1};
        spec[n++] = (struct term_arg){.key = "per_page", .type = ARG_INT, .dest = &a->per_page,
                                      .min = 0, .max = 1000000};
    }
    if (term_args_parse(req, spec, n, msg, msglen) != 0)
        return -1;
    if (a->passing[0] && strcmp(a->passing, "true") != 0 && strcmp(a->passing, "false") != 0) {
        snprintf(msg, msglen, "passing: must be true or false");
        return -1;
    }
    if (a->service[0] == '\0' || strpbrk(a->token, "\r\n") != NULL) {
        snprintf(msg, msglen, "service must not be empty; token must be one line");
        return -1;
    }
    if (strncmp(a->url, "http://", 7) != 0 && strncmp(a->url, "https://", 8) != 0 &&
        strncmp(a->url, "unix://", 7) != 0) {
        snprintf(msg, msglen, "url: must start with http://, https:// or unix://");
        return -1;
    }
    return 0;
}

static int start(struct ops *o, const struct request *req, enum catalog_api api)
{
    char msg[512];
    struct catalog_query a;
    struct http_request r;
    if (ops_http_args(req, api, &a, msg, sizeof msg) != 0)
        return ops_send_error(o, req->id, "bad_args", msg);
    a.api = api;
    if (catalog_request_build(&a, &r) != 0)
        return ops_send_error(o, req->id, "bad_args", "url or parameters too long");
    if (o->http == NULL && (o->http = http_new(ops_http_done, o)) == NULL)
        return ops_send_error(o, req->id, "http_error",
                              "libcurl could not be loaded (is libcurl4 installed?)");
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ops_send_error(o, req->id, "no_memory", "cannot allocate the request");
    p->api = api;
    snprintf(p->tagged, sizeof p->tagged, "%s", a.tagged);
    snprintf(p->token, sizeof p->token, "%s", a.token);
    const char *reason = NULL;
    if (http_start(o->http, req->id, &r, p, &reason, msg, sizeof msg) != 0) {
        free(p);
        return ops_send_error(o, req->id, reason, msg);
    }
    return 0;
}

/* consul_health #{url, service, token, index, wait_ms, passing, tag, dc, tagged_address,
 *                 timeout_ms, max_bytes, ca_file, cert_file, key_file}
 *   -> #{index, members => [#{address, port, node, id}]} */
int ops_http_consul(struct ops *o, const struct request *req)
{
    return start(o, req, API_CONSUL);
}

/* nomad_services #{url, service, token, index, wait_ms, namespace, next_token, per_page, ...}
 *   -> #{index, next_token, members} */
int ops_http_nomad(struct ops *o, const struct request *req)
{
    return start(o, req, API_NOMAD);
}

static int encode_text(ei_x_buff *x, const char *key, const char *value)
{
    return ei_x_encode_atom(x, key) || ei_x_encode_binary(x, value, (int)strlen(value));
}

static int encode_members(ei_x_buff *x, const struct members *ms)
{
    if (ms->n > 0 && ei_x_encode_list_header(x, (long)ms->n))
        return -1;
    for (size_t i = 0; i < ms->n; i++) {
        const struct member *m = &ms->m[i];
        if (ei_x_encode_map_header(x, 4) || encode_text(x, "address", m->address) ||
            ei_x_encode_atom(x, "port") || ei_x_encode_long(x, m->port) ||
            encode_text(x, "node", m->node) || encode_text(x, "id", m->id))
            return -1;
    }
    return ei_x_encode_empty_list(x);
}

/* X-Consul-Index / X-Nomad-Index: absent is 0; otherwise decimal digits
 * only, below 2^64. strtoull alone would take "-1" as 2^64 - 1 and wrap an
 * overflow to ULLONG_MAX, which a watch would then send back forever. */
static int parse_index(const char *s, unsigned long long *out)
{
    *out = 0;
    if (s[0] == '\0')
        return 0;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

void ops_http_done(void *ctx, uint64_t id, void *user, const struct http_result *r)
{
    struct ops *o = ctx;
    struct pending *p = user;
    char detail[256];
    if (o->sink_failed)
        goto done;
    if (r->reason) {
        ops_send_error(o, id, r->reason, r->detail);
        goto done;
    }
    const struct http_response *resp = r->response;
    if (resp->status != 200) {
        http_detail(detail, sizeof detail, resp->status, resp->body, resp->body_len, p->token);
        const char *reason = resp->status == 401 || resp->status == 403 ? "forbidden"
                           : resp->status == 404                       ? "not_found"
                           : resp->status >= 500                       ? "server_error"
                                                                       : "http_status";
        ops_send_error(o, id, reason, detail);
        goto done;
    }
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    int rc = p->api == API_CONSUL
                 ? consul_health_parse(resp->body, resp->body_len, p->tagged, &ms, &err)
                 : nomad_services_parse(resp->body, resp->body_len, &ms, &err);
    if (rc != 0) {
        snprintf(detail, sizeof detail, "unexpected response body: %s", err);
        ops_send_error(o, id, "bad_answer", detail);
        members_free(&ms);
        goto done;
    }
    unsigned long long index = 0;
    if (parse_index(resp->index, &index) != 0) {
        snprintf(detail, sizeof detail, "index header is not a decimal number below 2^64: %.40s",
                 resp->index);
        ops_send_error(o, id, "bad_answer", detail);
        members_free(&ms);
        goto done;
    }
    if (ms.skipped > 0) {
        o->counters.entries_skipped += ms.skipped;
        fprintf(stderr, "caravan_port: %s answer: unusable entries dropped: %zu (%s)\n",
                p->api == API_CONSUL ? "Consul" : "Nomad", ms.skipped, ms.skip_reason);
    }
    ei_x_buff *x = ops_ok_begin(o, id);
    if (x == NULL || ei_x_encode_map_header(x, 3) || ei_x_encode_atom(x, "index") ||
        ei_x_encode_ulonglong(x, index) || encode_text(x, "next_token", resp->next_token) ||
        ei_x_encode_atom(x, "members") || encode_members(x, &ms)) {
        o->counters.ok--;
        ops_send_error(o, id, "no_memory", "cannot encode the answer");
    } else {
        ops_send(o);
    }
    members_free(&ms);
done:
    free(p);
}
