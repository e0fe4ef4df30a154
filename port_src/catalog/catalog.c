/* catalog.c - Consul health and Nomad service answers; see catalog.h. */
#include "catalog.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "json.h"

/* Strings are packed into chunks of this size; a member's three strings
 * (each under CATALOG_ID_MAX) always fit in a fresh one. */
#define CHUNK_BYTES (64 * 1024)

struct members_chunk {
    struct members_chunk *next;
    size_t used;
    char data[CHUNK_BYTES];
};

void members_init(struct members *ms)
{
    memset(ms, 0, sizeof *ms);
}

void members_free(struct members *ms)
{
    while (ms->chunks) {
        struct members_chunk *c = ms->chunks;
        ms->chunks = c->next;
        free(c);
    }
    free(ms->m);
    memset(ms, 0, sizeof *ms);
}

static const char *store(struct members *ms, const char *s)
{
    size_t n = strlen(s) + 1;
    struct members_chunk *c = ms->chunks;
    if (c == NULL || CHUNK_BYTES - c->used < n) {
        c = malloc(sizeof *c);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->next = ms->chunks;
        ms->chunks = c;
    }
    char *out = c->data + c->used;
    memcpy(out, s, n);
    c->used += n;
    return out;
}

int members_add(struct members *ms, const char *address, long port, const char *node,
                const char *id)
{
    struct member *grown = grow_array(ms->m, &ms->cap, ms->n + 1, sizeof *grown, 16);
    if (grown == NULL)
        return -1;
    ms->m = grown;
    struct member *m = &ms->m[ms->n];
    m->port = port;
    if ((m->address = store(ms, address)) == NULL || (m->node = store(ms, node)) == NULL ||
        (m->id = store(ms, id)) == NULL)
        return -1;
    ms->n++;
    return 0;
}

/* One entry being read: decoded into fixed buffers, copied into the list
 * only once it is whole. */
struct entry {
    char address[CATALOG_TEXT_MAX], node[CATALOG_ID_MAX], id[CATALOG_ID_MAX];
    long port;
};

/* Copies string member `key` of obj into out; absent or null leaves "".
 * Returns -1 when present but not a string that fits. */
static int get_text(const struct json *j, long obj, const char *key, bool loose, char *out,
                    size_t cap)
{
    long v = json_get(j, obj, key, loose);
    out[0] = '\0';
    if (v < 0 || json_is_null(j, v))
        return 0;
    return json_string(j, v, out, cap) < 0 ? -1 : 0;
}

static int get_port(const struct json *j, long obj, const char *key, bool loose, long *port)
{
    long long v;
    long t = json_get(j, obj, key, loose);
    if (t < 0 || json_int(j, t, 0, 65535, &v) != 0)
        return -1;
    *port = (long)v;
    return 0;
}

/* Applies a tagged address: the service's {address, port} first, then the
 * node's plain string. Leaves e untouched when neither has that name. */
static int apply_tagged(const struct json *j, long node, long svc, const char *tagged,
                        struct entry *e)
{
    long st = json_get(j, json_get(j, svc, "TaggedAddresses", true), tagged, true);
    char addr[CATALOG_TEXT_MAX];
    if (json_is(j, st, JSON_OBJECT)) {
        if (get_text(j, st, "Address", true, addr, sizeof addr) != 0)
            return -1;
        if (addr[0] != '\0') {
            memcpy(e->address, addr, sizeof addr);
            if (json_get(j, st, "Port", true) >= 0 && get_port(j, st, "Port", true, &e->port) != 0)
                return -1;
            return 0;
        }
    }
    long nt = json_get(j, node, "TaggedAddresses", true);
    if (get_text(j, nt, tagged, true, addr, sizeof addr) != 0)
        return -1;
    if (addr[0] != '\0')
        memcpy(e->address, addr, sizeof addr);
    return 0;
}

/* Reads one Consul entry; returns NULL, or why it is unusable. */
static const char *consul_entry(const struct json *j, long el, const char *tagged,
                                struct entry *e)
{
    long node = json_get(j, el, "Node", false);
    long svc = json_get(j, el, "Service", false);
    if (!json_is(j, node, JSON_OBJECT) || !json_is(j, svc, JSON_OBJECT))
        return "an entry lacks its Node or Service object";
    char node_addr[CATALOG_TEXT_MAX];
    if (get_text(j, svc, "Address", false, e->address, sizeof e->address) != 0 ||
        get_text(j, node, "Address", false, node_addr, sizeof node_addr) != 0 ||
        get_text(j, node, "Node", false, e->node, sizeof e->node) != 0 ||
        get_text(j, svc, "ID", false, e->id, sizeof e->id) != 0)
        return "an address (255 bytes at most), node or ID (1023) is not a string that fits";
    if (get_port(j, svc, "Port", false, &e->port) != 0)
        return "Service.Port is missing or not a port number";
    if (e->address[0] == '\0')
        memcpy(e->address, node_addr, sizeof node_addr);
    if (tagged[0] != '\0' && apply_tagged(j, node, svc, tagged, e) != 0)
        return "a tagged address is malformed";
    if (e->address[0] == '\0')
        return "an entry has neither Service.Address nor Node.Address";
    return NULL;
}

static const char *nomad_entry(const struct json *j, long el, const char *tagged,
                               struct entry *e)
{
    (void)tagged;
    if (!json_is(j, el, JSON_OBJECT))
        return "a registration is not an object";
    if (get_text(j, el, "Address", false, e->address, sizeof e->address) != 0 ||
        get_text(j, el, "NodeID", false, e->node, sizeof e->node) != 0 ||
        get_text(j, el, "ID", false, e->id, sizeof e->id) != 0)
        return "an address (255 bytes at most), node or ID (1023) is not a string that fits";
    if (e->address[0] == '\0')
        return "a registration has no Address";
    if (get_port(j, el, "Port", false, &e->port) != 0)
        return "Port is missing or not a port number";
    return NULL;
}

typedef const char *(*entry_fn)(const struct json *, long, const char *, struct entry *);

/* One element of the answer, whole: validated strictly, then read into a
 * member or counted as dropped. */
static int on_element(void *ctx, const char *el, size_t len, const char **err)
{
    struct catalog_stream *s = ctx;
    struct json j;
    if (json_parse_within(&j, el, len, 1, err) != 0)
        return -1;
    entry_fn read = s->api == API_CONSUL ? consul_entry : nomad_entry;
    struct entry e;
    s->seen++;
    const char *why = read(&j, j.root, s->tagged, &e);
    if (why != NULL) {
        if (s->first_bad == NULL)
            s->first_bad = why;
        s->out->skipped++;
        if (s->out->skip_reason == NULL)
            s->out->skip_reason = why;
        return 0;
    }
    if (members_add(s->out, e.address, e.port, e.node, e.id) != 0) {
        *err = "out of memory";
        return -1;
    }
    s->kept++;
    return 0;
}

void catalog_stream_init(struct catalog_stream *s, enum catalog_api api, const char *tagged,
                         struct members *out)
{
    memset(s, 0, sizeof *s);
    json_split_init(&s->split, on_element, s);
    s->api = api;
    snprintf(s->tagged, sizeof s->tagged, "%s", tagged);
    s->out = out;
}

int catalog_stream_feed(struct catalog_stream *s, const char *data, size_t len, const char **err)
{
    return json_split_feed(&s->split, data, len, err);
}

int catalog_stream_end(struct catalog_stream *s, const char **err)
{
    if (json_split_end(&s->split, err) != 0)
        return -1;
    /* Nothing usable at all is not an answer but a server speaking another
     * format: say so rather than report an empty service. */
    if (s->seen > 0 && s->kept == 0) {
        *err = s->first_bad;
        return -1;
    }
    return 0;
}

void catalog_stream_free(struct catalog_stream *s)
{
    json_split_free(&s->split);
}

static int parse_whole(enum catalog_api api, const char *body, size_t len, const char *tagged,
                       struct members *out, const char **err)
{
    struct catalog_stream s;
    catalog_stream_init(&s, api, tagged, out);
    int rc = catalog_stream_feed(&s, body, len, err) == 0 && catalog_stream_end(&s, err) == 0
                 ? 0
                 : -1;
    catalog_stream_free(&s);
    return rc;
}

int consul_health_parse(const char *body, size_t len, const char *tagged, struct members *out,
                        const char **err)
{
    return parse_whole(API_CONSUL, body, len, tagged, out, err);
}

int nomad_services_parse(const char *body, size_t len, struct members *out, const char **err)
{
    return parse_whole(API_NOMAD, body, len, "", out, err);
}
