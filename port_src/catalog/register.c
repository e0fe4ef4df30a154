/* register.c - the arguments and the PUT of consul_register and
 * consul_deregister; see register.h. */
#include "register.h"

#include <ei.h>
#include <stdio.h>
#include <string.h>

#include "url.h"

/* The length of the UTF-8 sequence at s (n bytes left), or 0 when it is
 * not one (overlong, surrogate, past U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t need = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                : s[0] >= 0xf0 && s[0] <= 0xf4                              ? 4
                                                                            : 0;
    if (need == 0 || need > n)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return need;
}

int register_json_string(char *out, size_t cap, size_t *used, const char *s, size_t len)
{
    size_t u = *used;
#define PUT(c)                                                                                 \
    do {                                                                                       \
        if (u + 1 >= cap)                                                                      \
            return -1;                                                                         \
        out[u++] = (c);                                                                        \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = utf8_len((const unsigned char *)s + i, len - i);
        if (n == 0)
            return -1;
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c < 0x20 || c == 0x7f) {
            if (u + 7 >= cap)
                return -1;
            u += (size_t)snprintf(out + u, cap - u, "\\u%04x", c);
        } else {
            for (size_t k = 0; k < n; k++)
                PUT(s[i + k]);
        }
        i += n;
    }
    PUT('"');
#undef PUT
    out[u] = '\0';
    *used = u;
    return 0;
}

bool register_duration_ok(const char *s)
{
    static const char *const units[] = {"ns", "us", "ms", "s", "m", "h"};
    if (*s == '\0')
        return false;
    while (*s) {
        size_t digits = strspn(s, "0123456789");
        s += digits;
        size_t frac = 0;
        if (*s == '.') {
            frac = strspn(s + 1, "0123456789");
            s += 1 + frac;
        }
        if (digits == 0 && frac == 0)
            return false;
        size_t best = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i]);
            if (l > best && strncmp(s, units[i], l) == 0)
                best = l;
        }
        if (best == 0)
            return false;
        s += best;
    }
    return true;
}

static bool text_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len((const unsigned char *)s + i, len - i);
        if (n == 0 || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
        i += n;
    }
    return true;
}

/* A binary of at most max bytes at *idx, into out (max + 1 bytes). */
static int binary_at(const char *buf, int *idx, char *out, size_t max, size_t *len)
{
    int type = 0, size = 0;
    long n = 0;
    if (ei_get_type(buf, idx, &type, &size) != 0 || type != ERL_BINARY_EXT || size < 0 ||
        (size_t)size > max || ei_decode_binary(buf, idx, out, &n) != 0)
        return -1;
    out[n] = '\0';
    *len = (size_t)n;
    return 0;
}

static int check_tags(const char *buf, size_t at, char *msg, size_t msglen)
{
    int idx = (int)at, arity = 0;
    char tag[REGISTER_TAG_MAX + 1];
    size_t len = 0;
    if (ei_decode_list_header(buf, &idx, &arity) != 0 || arity > REGISTER_TAGS_MAX) {
        snprintf(msg, msglen, "tags: must be a list of at most %d binaries", REGISTER_TAGS_MAX);
        return -1;
    }
    for (int i = 0; i < arity; i++) {
        if (binary_at(buf, &idx, tag, REGISTER_TAG_MAX, &len) != 0 || len == 0 ||
            !text_ok(tag, len)) {
            snprintf(msg, msglen, "tags: element %d is not a non-empty UTF-8 binary of at most "
                                  "%d bytes without control characters", i + 1, REGISTER_TAG_MAX);
            return -1;
        }
    }
    if (arity > 0 && (ei_decode_list_header(buf, &idx, &arity) != 0 || arity != 0)) {
        snprintf(msg, msglen, "tags: not a proper list");
        return -1;
    }
    return 0;
}

static bool meta_key_ok(const char *k, size_t len)
{
    if (len == 0 || len > REGISTER_META_KEY_MAX || strncmp(k, "consul-", 7) == 0)
        return false;
    return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

static int check_meta(const char *buf, size_t at, char *msg, size_t msglen)
{
    int idx = (int)at, arity = 0;
    char key[REGISTER_META_KEY_MAX + 1], value[REGISTER_META_VALUE_MAX + 1];
    size_t klen = 0, vlen = 0;
    if (ei_decode_map_header(buf, &idx, &arity) != 0 || arity > REGISTER_META_MAX) {
        snprintf(msg, msglen, "meta: must be a map of at most %d pairs", REGISTER_META_MAX);
        return -1;
    }
    for (int i = 0; i < arity; i++) {
        if (binary_at(buf, &idx, key, REGISTER_META_KEY_MAX, &klen) != 0 || !meta_key_ok(key, klen)) {
            snprintf(msg, msglen, "meta: keys are binaries of 1..%d ASCII letters, digits, '-' "
                                  "and '_', not starting with consul-", REGISTER_META_KEY_MAX);
            return -1;
        }
        if (binary_at(buf, &idx, value, REGISTER_META_VALUE_MAX, &vlen) != 0 ||
            !text_ok(value, vlen)) {
            snprintf(msg, msglen, "meta: value of %s is not a UTF-8 binary of at most %d bytes "
                                  "without control characters", key, REGISTER_META_VALUE_MAX);
            return -1;
        }
    }
    return 0;
}

int register_args(const struct request *req, enum register_op op, struct register_query *q,
                  char *msg, size_t msglen)
{
    bool deregister = op != REGISTER_OP_REGISTER;
    memset(q, 0, sizeof *q);
    q->op = op;
    q->timeout_ms = REGISTER_DEFAULT_TIMEOUT_MS;
    q->port = -1;
    q->buf = req->buf;
    char check[8] = "";
    size_t id_len = 0, name_len = 0, addr_len = 0;
    bool proxy_atom = false, proxy_seen = false;
    struct term_arg spec[20] = {
        {.key = "url", .type = ARG_BINARY, .required = true, .dest = q->url, .max = sizeof q->url - 1},
        {.key = "id", .type = ARG_BINARY, .required = true, .dest = q->id, .max = sizeof q->id - 1,
         .len_out = &id_len},
        {.key = "token", .type = ARG_BINARY, .dest = q->token, .max = sizeof q->token - 1},
        {.key = "timeout_ms", .type = ARG_INT, .dest = &q->timeout_ms, .min = 1, .max = 600000},
        {.key = "ca_file", .type = ARG_BINARY, .dest = q->ca_file, .max = sizeof q->ca_file - 1},
        {.key = "cert_file", .type = ARG_BINARY, .dest = q->cert_file, .max = sizeof q->cert_file - 1},
        {.key = "key_file", .type = ARG_BINARY, .dest = q->key_file, .max = sizeof q->key_file - 1},
        {.key = "proxy", .type = ARG_ATOM_OR_BINARY, .dest = q->proxy, .max = sizeof q->proxy - 1,
         .is_atom = &proxy_atom, .seen = &proxy_seen},
    };
    size_t n = 8;
    if (!deregister) {
        spec[n++] = (struct term_arg){.key = "name", .type = ARG_BINARY, .required = true,
                                      .dest = q->name, .max = sizeof q->name - 1, .len_out = &name_len};
        spec[n++] = (struct term_arg){.key = "address", .type = ARG_BINARY, .required = true,
                                      .dest = q->address, .max = sizeof q->address - 1,
                                      .len_out = &addr_len};
        spec[n++] = (struct term_arg){.key = "port", .type = ARG_INT, .required = true,
                                      .dest = &q->port, .min = 1, .max = 65535};
        spec[n++] = (struct term_arg){.key = "tags", .type = ARG_TERM, .dest = &q->tags_at,
                                      .seen = &q->has_tags};
        spec[n++] = (struct term_arg){.key = "meta", .type = ARG_TERM, .dest = &q->meta_at,
                                      .seen = &q->has_meta};
        spec[n++] = (struct term_arg){.key = "check", .type = ARG_ATOM, .dest = check,
                                      .max = sizeof check - 1};
        spec[n++] = (struct term_arg){.key = "interval", .type = ARG_BINARY, .dest = q->interval,
                                      .max = sizeof q->interval - 1};
        spec[n++] = (struct term_arg){.key = "check_timeout", .type = ARG_BINARY,
                                      .dest = q->check_timeout, .max = sizeof q->check_timeout - 1};
        spec[n++] = (struct term_arg){.key = "deregister_after", .type = ARG_BINARY,
                                      .dest = q->deregister_after,
                                      .max = sizeof q->deregister_after - 1};
        spec[n++] = (struct term_arg){.key = "ttl", .type = ARG_BINARY, .dest = q->ttl,
                                      .max = sizeof q->ttl - 1};
    }
    if (term_args_parse(req, spec, n, msg, msglen) != 0)
        return -1;
    if (proxy_seen && (proxy_atom ? strcmp(q->proxy, "none") != 0
                                  : strncmp(q->proxy, "http://", 7) != 0 &&
                                        strncmp(q->proxy, "https://", 8) != 0)) {
        snprintf(msg, msglen, "proxy: must be none or a binary http:// or https:// URL");
        return -1;
    }
    q->proxy_mode = !proxy_seen ? HTTP_PROXY_ENV : proxy_atom ? HTTP_PROXY_NONE : HTTP_PROXY_URL;
    if (q->proxy_mode != HTTP_PROXY_URL)
        q->proxy[0] = '\0';
    if (strpbrk(q->token, "\r\n") != NULL) {
        snprintf(msg, msglen, "token: must be one line");
        return -1;
    }
    if (id_len == 0 || !text_ok(q->id, id_len)) {
        snprintf(msg, msglen, "id: must be non-empty UTF-8 without control characters");
        return -1;
    }
    const char *why = url_refusal(q->url);
    if (why != NULL) {
        snprintf(msg, msglen, "%s", why);
        return -1;
    }
    if (deregister)
        return 0;
    if (name_len == 0 || !text_ok(q->name, name_len) || addr_len == 0 ||
        !text_ok(q->address, addr_len)) {
        snprintf(msg, msglen, "name, address: must be non-empty UTF-8 without control characters");
        return -1;
    }
    if (q->has_tags && check_tags(req->buf, q->tags_at, msg, msglen) != 0)
        return -1;
    if (q->has_meta && check_meta(req->buf, q->meta_at, msg, msglen) != 0)
        return -1;
    q->check = check[0] == '\0' || strcmp(check, "tcp") == 0 ? REGISTER_CHECK_TCP
             : strcmp(check, "ttl") == 0                     ? REGISTER_CHECK_TTL
             : strcmp(check, "none") == 0                    ? REGISTER_CHECK_NONE
                                                              : (enum register_check)-1;
    if ((int)q->check == -1) {
        snprintf(msg, msglen, "check: must be tcp, ttl or none");
        return -1;
    }
    const struct {
        const char *key, *value;
    } durations[] = {{"interval", q->interval}, {"check_timeout", q->check_timeout},
                     {"deregister_after", q->deregister_after}, {"ttl", q->ttl}};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        if (durations[i].value[0] && !register_duration_ok(durations[i].value)) {
            snprintf(msg, msglen, "%s: not a duration (\"10s\", \"1m30s\", \"500ms\")",
                     durations[i].key);
            return -1;
        }
    }
    if (q->check == REGISTER_CHECK_TTL && q->ttl[0] == '\0') {
        snprintf(msg, msglen, "ttl: a TTL check needs one");
        return -1;
    }
    return 0;
}

/* Appends text as is (only this file's own constant JSON). */
static int raw(char *out, size_t cap, size_t *used, const char *text)
{
    size_t l = strlen(text);
    if (*used + l >= cap)
        return -1;
    memcpy(out + *used, text, l + 1);
    *used += l;
    return 0;
}

static int member(char *out, size_t cap, size_t *used, const char *key, const char *value)
{
    return raw(out, cap, used, key) | register_json_string(out, cap, used, value, strlen(value));
}

static int body_tags(const struct register_query *q, char *out, size_t cap, size_t *used)
{
    int idx = (int)q->tags_at, arity = 0;
    char tag[REGISTER_TAG_MAX + 1];
    size_t len = 0;
    int bad = raw(out, cap, used, ",\"Tags\":[");
    bad |= ei_decode_list_header(q->buf, &idx, &arity);
    for (int i = 0; i < arity && !bad; i++) {
        bad |= binary_at(q->buf, &idx, tag, REGISTER_TAG_MAX, &len);
        bad |= (i > 0 ? raw(out, cap, used, ",") : 0) | register_json_string(out, cap, used, tag, len);
    }
    return bad | raw(out, cap, used, "]");
}

static int body_meta(const struct register_query *q, char *out, size_t cap, size_t *used)
{
    int idx = (int)q->meta_at, arity = 0;
    char key[REGISTER_META_KEY_MAX + 1], value[REGISTER_META_VALUE_MAX + 1];
    size_t klen = 0, vlen = 0;
    int bad = raw(out, cap, used, ",\"Meta\":{");
    bad |= ei_decode_map_header(q->buf, &idx, &arity);
    for (int i = 0; i < arity && !bad; i++) {
        bad |= binary_at(q->buf, &idx, key, REGISTER_META_KEY_MAX, &klen);
        bad |= binary_at(q->buf, &idx, value, REGISTER_META_VALUE_MAX, &vlen);
        bad |= i > 0 ? raw(out, cap, used, ",") : 0;
        bad |= register_json_string(out, cap, used, key, klen) | raw(out, cap, used, ":");
        bad |= register_json_string(out, cap, used, value, vlen);
    }
    return bad | raw(out, cap, used, "}");
}

/* Consul API docs, "Check Definition" (agent checks): a TCP check needs
 * TCP "host:port" and an Interval; a TTL check needs TTL. */
static int body_check(const struct register_query *q, char *out, size_t cap, size_t *used)
{
    if (q->check == REGISTER_CHECK_NONE)
        return 0;
    int bad = raw(out, cap, used, ",\"Check\":{");
    if (q->check == REGISTER_CHECK_TCP) {
        char target[sizeof q->address + 16];
        snprintf(target, sizeof target, strchr(q->address, ':') ? "[%s]:%lld" : "%s:%lld",
                 q->address, q->port);
        bad |= member(out, cap, used, "\"TCP\":", target);
        bad |= member(out, cap, used, ",\"Interval\":", q->interval[0] ? q->interval : "10s");
        if (q->check_timeout[0])
            bad |= member(out, cap, used, ",\"Timeout\":", q->check_timeout);
    } else {
        bad |= member(out, cap, used, "\"TTL\":", q->ttl);
    }
    if (q->deregister_after[0])
        bad |= member(out, cap, used, ",\"DeregisterCriticalServiceAfter\":", q->deregister_after);
    return bad | raw(out, cap, used, "}");
}

int register_build(const struct register_query *q, struct http_request *r, char *body, size_t cap)
{
    memset(r, 0, sizeof *r);
    snprintf(r->base, sizeof r->base, "%s", q->url);
    size_t bl = strlen(r->base);
    while (bl > 0 && r->base[bl - 1] == '/' && strncmp(r->base, "unix://", 7) != 0)
        r->base[--bl] = '\0';
    int bad = 0;
    size_t used = 0;
    body[0] = '\0';
    if (q->op == REGISTER_OP_DEREGISTER) {
        snprintf(r->path, sizeof r->path, "/v1/agent/service/deregister/");
        bad |= url_escape_append(r->path, sizeof r->path, q->id);
    } else if (q->op == REGISTER_OP_CHECK_PASS) {
        char check_id[sizeof q->id + 8];
        snprintf(check_id, sizeof check_id, "service:%s", q->id);
        snprintf(r->path, sizeof r->path, "/v1/agent/check/pass/");
        bad |= url_escape_append(r->path, sizeof r->path, check_id);
    } else {
        /* replace-existing-checks: a registration made again (after an agent
         * reset, or with another check) leaves no stale check behind. */
        snprintf(r->path, sizeof r->path, "/v1/agent/service/register?replace-existing-checks=true");
        char port[24];
        snprintf(port, sizeof port, ",\"Port\":%lld", q->port);
        bad |= member(body, cap, &used, "{\"ID\":", q->id);
        bad |= member(body, cap, &used, ",\"Name\":", q->name);
        bad |= member(body, cap, &used, ",\"Address\":", q->address);
        bad |= raw(body, cap, &used, port);
        if (q->has_tags)
            bad |= body_tags(q, body, cap, &used);
        if (q->has_meta)
            bad |= body_meta(q, body, cap, &used);
        bad |= body_check(q, body, cap, &used);
        bad |= raw(body, cap, &used, "}");
    }
    r->put = true;
    r->body = body;
    r->body_len = used;
    if (q->token[0])
        snprintf(r->token_header, sizeof r->token_header, "X-Consul-Token: %s", q->token);
    snprintf(r->ca_file, sizeof r->ca_file, "%s", q->ca_file);
    snprintf(r->cert_file, sizeof r->cert_file, "%s", q->cert_file);
    snprintf(r->key_file, sizeof r->key_file, "%s", q->key_file);
    r->timeout_ms = (long)q->timeout_ms;
    r->connect_timeout_ms = (long)(q->timeout_ms < 3000 ? q->timeout_ms : 3000);
    r->max_bytes = 64 * 1024; /* the agent answers "" or an error line */
    r->proxy_mode = q->proxy_mode;
    snprintf(r->proxy, sizeof r->proxy, "%s", q->proxy);
    return bad ? -1 : 0;
}
