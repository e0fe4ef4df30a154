/* ops_catalog.c - the catalog backend: the operations `consul_health' and
 * `nomad_services', and the agent registration PUTs `consul_register' and
 * `consul_deregister', `consul_check_pass' (register.h); see ops_catalog.h and docs/protocol.md.
 * Arguments become a GET (http.c); the body is read by
 * catalog.c as it arrives, possibly minutes later for a blocking query, and
 * never held whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_detail.h"
#include "catalog_request.h"
#include "http.h"
#include "answer_worker.h"
#include "http_header.h"
#include "ops_catalog.h"
#include "register.h"
#include "url.h"

#define MAX_MAX_BYTES (256LL * 1024 * 1024)
/* Consul and Nomad cap wait at 10 minutes. */
#define MAX_WAIT_MS (10LL * 60 * 1000)
/* max_stale_ms: a day; caravan_options takes the same range. */
#define MAX_STALE_MS (24LL * 60 * 60 * 1000)

struct catalog_backend {
    struct replier *r;
    struct http *http;             /* made on the first request, which loads libcurl */
    struct answer_worker *answers; /* made on the first big 200 answer */
    size_t nhttp;                  /* how many of the last polled fds were http's */
};

static void on_done(void *ctx, uint64_t id, void *user, const struct http_result *r);
static void answer_sent(struct catalog_backend *o, struct answer_job *job);

/* A request in flight: its answer is read as it arrives. */
struct pending {
    char token[256]; /* only to redact it from error details */
    struct members members;
    struct catalog_stream stream; /* fills members */
    long long max_stale_ms; /* Consul: http_header_fresh's bound */
    bool registration; /* a PUT to the agent: answered by its status */
};

static void pending_free(struct pending *p)
{
    catalog_stream_free(&p->stream);
    members_free(&p->members);
    free(p);
}

/* A piece of a 200 body. The stream latches its error; the answer, when
 * the transfer ends, reports it. */
static int on_body_piece(void *user, const char *data, size_t len)
{
    struct pending *p = user;
    const char *err;
    return catalog_stream_feed(&p->stream, data, len, &err);
}

int ops_catalog_args(const struct request *req, enum catalog_api api, struct catalog_query *a,
                  char *msg, size_t msglen)
{
    catalog_query_init(a, api);
    struct term_arg spec[20] = {
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
    bool proxy_atom = false, proxy_seen = false;
    spec[10] = (struct term_arg){.key = "proxy", .type = ARG_ATOM_OR_BINARY, .dest = a->proxy,
                                 .max = sizeof a->proxy - 1, .is_atom = &proxy_atom,
                                 .seen = &proxy_seen};
    size_t n = 11;
    if (api == API_CONSUL) {
        spec[n++] = (struct term_arg){.key = "tag", .type = ARG_BINARY, .dest = a->tag,
                                      .max = sizeof a->tag - 1};
        spec[n++] = (struct term_arg){.key = "dc", .type = ARG_BINARY, .dest = a->dc,
                                      .max = sizeof a->dc - 1};
        spec[n++] = (struct term_arg){.key = "passing", .type = ARG_ATOM, .dest = a->passing,
                                      .max = sizeof a->passing - 1};
        spec[n++] = (struct term_arg){.key = "tagged_address", .type = ARG_BINARY,
                                      .dest = a->tagged, .max = sizeof a->tagged - 1};
        spec[n++] = (struct term_arg){.key = "consistency", .type = ARG_ATOM,
                                      .dest = a->consistency, .max = sizeof a->consistency - 1};
        spec[n++] = (struct term_arg){.key = "cached", .type = ARG_ATOM, .dest = a->cached,
                                      .max = sizeof a->cached - 1};
        spec[n++] = (struct term_arg){.key = "max_stale_ms", .type = ARG_INT,
                                      .dest = &a->max_stale_ms, .min = 0, .max = MAX_STALE_MS};
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
    if (proxy_seen && proxy_atom && strcmp(a->proxy, "none") != 0) {
        snprintf(msg, msglen, "proxy: must be none or a binary http:// or https:// URL");
        return -1;
    }
    if (proxy_seen && !proxy_atom && strncmp(a->proxy, "http://", 7) != 0 &&
        strncmp(a->proxy, "https://", 8) != 0) {
        snprintf(msg, msglen, "proxy: must be none or a binary http:// or https:// URL");
        return -1;
    }
    a->proxy_mode = !proxy_seen ? HTTP_PROXY_ENV : proxy_atom ? HTTP_PROXY_NONE : HTTP_PROXY_URL;
    if (a->proxy_mode != HTTP_PROXY_URL)
        a->proxy[0] = '\0';
    if (catalog_query_check_consistency(a, msg, msglen) != 0)
        return -1;
    if (a->passing[0] && strcmp(a->passing, "true") != 0 && strcmp(a->passing, "false") != 0) {
        snprintf(msg, msglen, "passing: must be true or false");
        return -1;
    }
    if (a->service[0] == '\0' || strpbrk(a->token, "\r\n") != NULL) {
        snprintf(msg, msglen, "service must not be empty; token must be one line");
        return -1;
    }
    const char *why = url_refusal(a->url);
    if (why != NULL) {
        snprintf(msg, msglen, "%s", why);
        return -1;
    }
    return 0;
}

static int start(struct catalog_backend *o, const struct request *req, enum catalog_api api)
{
    char msg[512];
    struct catalog_query a;
    struct http_request r;
    if (ops_catalog_args(req, api, &a, msg, sizeof msg) != 0)
        return replier_error(o->r, req->id, "bad_args", msg);
    a.api = api;
    if (catalog_request_build(&a, &r) != 0)
        return replier_error(o->r, req->id, "bad_args", "url or parameters too long");
    if (o->http == NULL && (o->http = http_new(on_done, o)) == NULL)
        return replier_error(o->r, req->id, "no_memory", "cannot allocate the HTTP client");
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return replier_error(o->r, req->id, "no_memory", "cannot allocate the request");
    snprintf(p->token, sizeof p->token, "%s", a.token);
    p->max_stale_ms = a.max_stale_ms;
    members_init(&p->members);
    catalog_stream_init(&p->stream, api, a.tagged, &p->members);
    r.stream = on_body_piece;
    const char *reason = NULL;
    if (http_start(o->http, req->id, &r, p, &reason, msg, sizeof msg) != 0) {
        pending_free(p);
        return replier_error(o->r, req->id, reason, msg);
    }
    return 0;
}

/* consul_register #{url, id, name, address, port, tags, meta, check, ...} -> 200;
 * consul_deregister, consul_check_pass #{url, id, ...} -> 200 (docs/protocol.md). */
static int start_register(struct catalog_backend *o, const struct request *req,
                          enum register_op op)
{
    char msg[512];
    struct register_query q;
    struct http_request r;
    if (register_args(req, op, &q, msg, sizeof msg) != 0)
        return replier_error(o->r, req->id, "bad_args", msg);
    char *body = malloc(HTTP_BODY_MAX);
    struct pending *p = body == NULL ? NULL : calloc(1, sizeof *p);
    int rc;
    if (p == NULL) {
        rc = replier_error(o->r, req->id, "no_memory", "cannot allocate the request");
        goto done;
    }
    if (register_build(&q, &r, body, HTTP_BODY_MAX) != 0) {
        rc = replier_error(o->r, req->id, "bad_args", "url, id or registration too long");
        goto done;
    }
    if (o->http == NULL && (o->http = http_new(on_done, o)) == NULL) {
        rc = replier_error(o->r, req->id, "no_memory", "cannot allocate the HTTP client");
        goto done;
    }
    snprintf(p->token, sizeof p->token, "%s", q.token);
    p->registration = true;
    members_init(&p->members);
    const char *reason = NULL;
    rc = 0;
    if (http_start(o->http, req->id, &r, p, &reason, msg, sizeof msg) != 0)
        rc = replier_error(o->r, req->id, reason, msg);
    else
        p = NULL; /* on_done frees it; libcurl copied the body */
done:
    if (p != NULL)
        pending_free(p);
    free(body);
    return rc;
}

static int op_register(void *state, const struct request *req)
{
    return start_register(state, req, REGISTER_OP_REGISTER);
}

static int op_deregister(void *state, const struct request *req)
{
    return start_register(state, req, REGISTER_OP_DEREGISTER);
}

static int op_check_pass(void *state, const struct request *req)
{
    return start_register(state, req, REGISTER_OP_CHECK_PASS);
}

/* consul_health #{url, service, token, index, wait_ms, passing, tag, dc, tagged_address,
 *                 timeout_ms, max_bytes, ca_file, cert_file, key_file}
 *   -> #{index, members => [#{address, port, node, id}]} */
static int op_consul(void *state, const struct request *req)
{
    return start(state, req, API_CONSUL);
}

/* nomad_services #{url, service, token, index, wait_ms, namespace, next_token, per_page, ...}
 *   -> #{index, next_token, members} */
static int op_nomad(void *state, const struct request *req)
{
    return start(state, req, API_NOMAD);
}

static void on_done(void *ctx, uint64_t id, void *user, const struct http_result *r)
{
    struct catalog_backend *o = ctx;
    struct pending *p = user;
    char detail[256];
    if (o->r->failed)
        goto done;
    if (r->reason) {
        replier_error(o->r, id, r->reason, r->detail);
        goto done;
    }
    const struct http_response *resp = r->response;
    if (p->registration && resp->status == 200) {
        replier_ok_ulong(o->r, id, 200);
        goto done;
    }
    if (resp->status != 200) {
        catalog_detail(detail, sizeof detail, resp->status, resp->body, resp->body_len, p->token);
        const char *reason = resp->status == 401 || resp->status == 403 ? "forbidden"
                           : resp->status == 404                       ? "not_found"
                           : resp->status >= 500                       ? "server_error"
                                                                       : "http_status";
        replier_error(o->r, id, reason, detail);
        goto done;
    }
    /* A stale answer is an error: the caller keeps the listing it had. */
    if (p->stream.api == API_CONSUL &&
        http_header_fresh(resp, p->max_stale_ms, detail, sizeof detail) != 0) {
        replier_error(o->r, id, "stale", detail);
        goto done;
    }
    /* The members were read as the body arrived; encoding many of them
     * takes milliseconds (10 for 35,000): the worker thread does it, off
     * the loop. */
    struct answer_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        replier_error(o->r, id, "no_memory", "cannot allocate the answer");
        goto done;
    }
    job->id = id;
    job->api = p->stream.api;
    snprintf(job->index, sizeof job->index, "%s", resp->index);
    snprintf(job->next_token, sizeof job->next_token, "%s", resp->next_token);
    const char *err = NULL;
    if (catalog_stream_end(&p->stream, &err) != 0)
        job->body_error = err;
    job->members = p->members;
    members_init(&p->members);
    /* A small answer is encoded here at once: behind big ones in the
     * worker's queue it would wait for all of them, past its own deadline. */
    bool small = job->members.n <= ANSWER_INLINE_MEMBERS;
    if (!small && o->answers == NULL)
        o->answers = answer_worker_new();
    if (small || o->answers == NULL || answer_worker_submit(o->answers, job) != 0) {
        answer_job_run(job); /* no thread to be had: here, then */
        answer_sent(o, job);
    }
done:
    pending_free(p);
}

static void answer_sent(struct catalog_backend *o, struct answer_job *job)
{
    if (job->skipped > 0) {
        o->r->counters.entries_skipped += job->skipped;
        fprintf(stderr, "caravan_port: %s answer: unusable entries dropped: %zu (%s)\n",
                job->api == API_CONSUL ? "Consul" : "Nomad", job->skipped, job->skip_reason);
    }
    if (!o->r->failed && job->outcome != ANSWER_NOT_ENCODED &&
        (size_t)job->x.index > o->r->max_reply) {
        /* IMPORTANT: the owner would kill the program over this reply, and
         * every request in flight with it (replier.h). */
        char detail[256];
        snprintf(detail, sizeof detail,
                 "the answer (%zu members) encodes to %zu bytes, over the %zu a reply may "
                 "have; narrow the query (tag, namespace, per_page)",
                 job->members_n, (size_t)job->x.index, o->r->max_reply);
        ei_x_free(&job->x); /* the big buffer goes now, not with the job */
        if (ei_x_new(&job->x) == 0 && reply_error(&job->x, job->id, "too_large", detail) == 0)
            job->outcome = ANSWER_ERROR;
        else
            job->outcome = ANSWER_NOT_ENCODED;
    }
    if (o->r->failed) {
        /* nobody to answer */
    } else if (job->outcome == ANSWER_NOT_ENCODED) {
        replier_error(o->r, job->id, "no_memory", REPLIER_NO_MEMORY);
    } else {
        replier_send_built(o->r, &job->x, job->outcome == ANSWER_OK);
    }
    answer_job_free(job);
}

static int b_cancel(void *state, uint64_t id)
{
    struct catalog_backend *o = state;
    void *user = NULL;
    if (o->http != NULL && http_cancel(o->http, id, &user)) {
        pending_free(user);
        return 1;
    }
    return o->answers != NULL && answer_worker_cancel(o->answers, id);
}

static int b_tick(void *state)
{
    struct catalog_backend *o = state;
    struct answer_job *job;
    while (o->answers != NULL && (job = answer_worker_take(o->answers)) != NULL) {
        if (job->cancelled) /* its owner said cancel: nobody waits for it */
            answer_job_free(job);
        else
            answer_sent(o, job);
    }
    return o->r->failed ? -1 : 0;
}

static const struct backend_op catalog_ops[] = {
    {"consul_health", op_consul},
    {"nomad_services", op_nomad},
    {"consul_register", op_register},
    {"consul_deregister", op_deregister},
    {"consul_check_pass", op_check_pass},
};

static size_t b_nfds(const void *state)
{
    const struct catalog_backend *o = state;
    return (o->http ? http_nfds(o->http) : 0) + 1; /* and the answer worker's */
}

/* libcurl's sockets, then the answer worker's fd (answer_worker.h). */
static size_t b_poll_fds(void *state, struct pollfd *fds, size_t cap)
{
    struct catalog_backend *o = state;
    size_t room = o->answers != NULL && cap > 0 ? cap - 1 : cap; /* the worker's fd last */
    size_t n = o->http ? http_poll_fds(o->http, fds, room) : 0;
    o->nhttp = n;
    if (o->answers != NULL && n < cap)
        fds[n++] = (struct pollfd){.fd = answer_worker_fd(o->answers), .events = POLLIN};
    return n;
}

static int b_timeout(void *state, int cap)
{
    struct catalog_backend *o = state;
    return o->http ? http_timeout(o->http, cap) : cap;
}

/* The worker's fd needs nothing here: b_tick takes its answers. */
static void b_process(void *state, const struct pollfd *fds, size_t n)
{
    struct catalog_backend *o = state;
    if (o->http)
        http_process(o->http, fds, n < o->nhttp ? n : o->nhttp);
}

static uint64_t b_inflight(const void *state)
{
    const struct catalog_backend *o = state;
    return o->http ? http_inflight(o->http) : 0;
}

static void b_free(void *state)
{
    struct catalog_backend *o = state;
    if (o == NULL)
        return;
    /* http_free hands every unanswered request back through on_done so
     * that its state is freed; the replier sends nothing any more. */
    http_free(o->http);
    answer_worker_free(o->answers);
    free(o);
}

int ops_catalog_backend(struct backend *b, struct replier *r)
{
    struct catalog_backend *o = calloc(1, sizeof *o);
    if (o == NULL)
        return -1;
    o->r = r;
    *b = (struct backend){.state = o,
                          .ops = catalog_ops,
                          .nops = sizeof catalog_ops / sizeof catalog_ops[0],
                          .nfds = b_nfds,
                          .poll_fds = b_poll_fds,
                          .timeout = b_timeout,
                          .process = b_process,
                          .tick = b_tick,
                          .cancel = b_cancel,
                          .inflight_key = "http_inflight",
                          .inflight = b_inflight,
                          .free = b_free};
    return 0;
}

bool ops_catalog_http_loaded(const struct backend *b)
{
    return ((const struct catalog_backend *)b->state)->http != NULL && http_library_loaded();
}

bool ops_catalog_has_worker(const struct backend *b)
{
    return ((const struct catalog_backend *)b->state)->answers != NULL;
}
