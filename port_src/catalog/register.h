/*
 * register.h - a node's own service at the local Consul agent: the
 * operations consul_register, consul_deregister and consul_check_pass read
 * into a register_query, checked, and the PUT built from it
 * (docs/protocol.md).
 *
 * Consul API docs, "Agent Service HTTP API": Register Service is
 * PUT /v1/agent/service/register with the service definition as JSON (ID,
 * Name, Address, Port, Tags, Meta, Check); Deregister Service is
 * PUT /v1/agent/service/deregister/:service_id with no body. "Check HTTP
 * API", TTL Check Pass: PUT /v1/agent/check/pass/:check_id; the check a
 * service registers with has the ID service:<service ID>.
 *
 * IMPORTANT: the body is written by this file from typed arguments, every
 * string escaped as JSON (register_json_string); nothing the caller sends is
 * pasted into it as JSON.
 */
#ifndef CARAVAN_REGISTER_H
#define CARAVAN_REGISTER_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "term.h"

/* Consul's own limits ("Service Definition": Meta, "Node Meta" rules): 64
 * meta pairs, keys of at most 128 bytes of ASCII letters, digits, '-' and
 * '_', not starting with "consul-", values of at most 512 bytes. 64 tags of
 * at most 255 bytes is caravan's bound, not Consul's. */
#define REGISTER_TAGS_MAX 64
#define REGISTER_TAG_MAX 255
#define REGISTER_META_MAX 64
#define REGISTER_META_KEY_MAX 128
#define REGISTER_META_VALUE_MAX 512
#define REGISTER_DEFAULT_TIMEOUT_MS 5000

enum register_check { REGISTER_CHECK_TCP, REGISTER_CHECK_TTL, REGISTER_CHECK_NONE };
enum register_op { REGISTER_OP_REGISTER, REGISTER_OP_DEREGISTER, REGISTER_OP_CHECK_PASS };

struct register_query {
    enum register_op op;
    char url[1024], token[256], ca_file[HTTP_PATH_MAX], cert_file[HTTP_PATH_MAX];
    char key_file[HTTP_PATH_MAX];
    enum http_proxy_mode proxy_mode;
    char proxy[HTTP_PROXY_URL_MAX];
    long long timeout_ms;
    char id[256], name[256], address[256];
    long long port;
    enum register_check check;
    /* Go durations as Consul reads them ("10s", "1m30s", "500ms"); "" =
     * not sent (Consul's default). ttl is required for a TTL check. */
    char interval[32], check_timeout[32], deregister_after[32], ttl[32];
    /* Tags ([binary()]) and Meta (#{binary() => binary()}) stay in the
     * request's buffer, checked; register_build decodes them again. */
    const char *buf;
    size_t tags_at, meta_at;
    bool has_tags, has_meta;
};

/* Reads and checks the arguments of op (consul_register, consul_deregister
 * or consul_check_pass: the last two take the connection and id only). Returns 0, or -1 with msg naming the key and the rule.
 * q keeps pointing into req's buffer: build before the request goes. */
int register_args(const struct request *req, enum register_op op, struct register_query *q,
                  char *msg, size_t msglen);

/* Fills r with the PUT for q (path, JSON body in body, headers, timeouts);
 * r->body points at body (cap bytes). Returns 0, or -1 when it does not fit. */
int register_build(const struct register_query *q, struct http_request *r, char *body,
                   size_t cap);

/* Appends s (len bytes) as a JSON string, quotes included, to out (cap bytes,
 * NUL-terminated, *used its length). Returns 0, or -1 when it does not fit
 * or s is not UTF-8. */
int register_json_string(char *out, size_t cap, size_t *used, const char *s, size_t len);

/* A Go duration as time.ParseDuration reads it, positive, without a sign:
 * one or more <decimal><unit>, unit ns us ms s m h. */
bool register_duration_ok(const char *s);

#endif
