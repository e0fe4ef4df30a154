/* catalog.c - Consul health and Nomad service answers; see catalog.h. */
#include "catalog.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void members_init(struct members *ms)
{
    memset(ms, 0, sizeof *ms);
}

void members_free(struct members *ms)
{
    free(ms->m);
    memset(ms, 0, sizeof *ms);
}

struct member *members_add(struct members *ms)
{
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? 2 * ms->cap : 16;
        struct member *grown = realloc(ms->m, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        ms->m = grown;
        ms->cap = cap;
    }
    struct member *m = &ms->m[ms->n++];
    memset(m, 0, sizeof *m);
    return m;
}

/* Copies string member `key` of obj into out; absent or null leaves "".
 * Returns -1 when present but not a decodable string. */
static int get_text(const struct json *j, int obj, const char *key, bool loose, char *out,
                    size_t cap)
{
    int v = json_get(j, obj, key, loose);
    out[0] = '\0';
    if (v < 0 || (json_is(j, v, JSMN_PRIMITIVE) && j->js[j->tok[v].start] == 'n'))
        return 0;
    return json_string(j, v, out, cap) < 0 ? -1 : 0;
}

static int get_port(const struct json *j, int obj, const char *key, bool loose, long *port)
{
    long long v;
    int t = json_get(j, obj, key, loose);
    if (t < 0 || json_int(j, t, 0, 65535, &v) != 0)
        return -1;
    *port = (long)v;
    return 0;
}

static int top_array(struct json *j, const char *body, size_t len, const char **err)
{
    if (json_parse(j, body, len, err) != 0)
        return -1;
    if (!json_is(j, 0, JSMN_ARRAY)) {
        json_free(j);
        *err = "expected a JSON array of instances";
        return -1;
    }
    return 0;
}

/* Applies a tagged address: the service's {address, port} first, then the
 * node's plain string. Leaves m untouched when neither has that name. */
static int apply_tagged(const struct json *j, int node, int svc, const char *tagged,
                        struct member *m)
{
    int st = json_get(j, json_get(j, svc, "TaggedAddresses", true), tagged, true);
    if (json_is(j, st, JSMN_OBJECT)) {
        char addr[CATALOG_TEXT_MAX];
        if (get_text(j, st, "Address", true, addr, sizeof addr) != 0)
            return -1;
        if (addr[0] != '\0') {
            memcpy(m->address, addr, sizeof addr);
            if (json_get(j, st, "Port", true) >= 0 && get_port(j, st, "Port", true, &m->port) != 0)
                return -1;
            return 0;
        }
    }
    int nt = json_get(j, node, "TaggedAddresses", true);
    char addr[CATALOG_TEXT_MAX];
    if (get_text(j, nt, tagged, true, addr, sizeof addr) != 0)
        return -1;
    if (addr[0] != '\0')
        memcpy(m->address, addr, sizeof addr);
    return 0;
}

int consul_health_parse(const char *body, size_t len, const char *tagged, struct members *out,
                        const char **err)
{
    struct json j;
    if (top_array(&j, body, len, err) != 0)
        return -1;
    int rc = -1;
    for (int e = json_array_next(&j, 0, -1); e >= 0; e = json_array_next(&j, 0, e)) {
        int node = json_get(&j, e, "Node", false);
        int svc = json_get(&j, e, "Service", false);
        if (!json_is(&j, node, JSMN_OBJECT) || !json_is(&j, svc, JSMN_OBJECT)) {
            *err = "an entry lacks its Node or Service object";
            goto done;
        }
        struct member *m = members_add(out);
        if (m == NULL) {
            *err = "out of memory";
            goto done;
        }
        char node_addr[CATALOG_TEXT_MAX];
        if (get_text(&j, svc, "Address", false, m->address, sizeof m->address) != 0 ||
            get_text(&j, node, "Address", false, node_addr, sizeof node_addr) != 0 ||
            get_text(&j, node, "Node", false, m->node, sizeof m->node) != 0 ||
            get_text(&j, svc, "ID", false, m->id, sizeof m->id) != 0) {
            *err = "an address, node or ID is not a valid string";
            goto done;
        }
        if (get_port(&j, svc, "Port", false, &m->port) != 0) {
            *err = "Service.Port is missing or not a port number";
            goto done;
        }
        if (m->address[0] == '\0')
            memcpy(m->address, node_addr, sizeof node_addr);
        if (tagged[0] != '\0' && apply_tagged(&j, node, svc, tagged, m) != 0) {
            *err = "a tagged address is malformed";
            goto done;
        }
        if (m->address[0] == '\0') {
            *err = "an entry has neither Service.Address nor Node.Address";
            goto done;
        }
    }
    rc = 0;
done:
    json_free(&j);
    return rc;
}

int nomad_services_parse(const char *body, size_t len, struct members *out, const char **err)
{
    struct json j;
    if (top_array(&j, body, len, err) != 0)
        return -1;
    int rc = -1;
    for (int e = json_array_next(&j, 0, -1); e >= 0; e = json_array_next(&j, 0, e)) {
        if (!json_is(&j, e, JSMN_OBJECT)) {
            *err = "a registration is not an object";
            goto done;
        }
        struct member *m = members_add(out);
        if (m == NULL) {
            *err = "out of memory";
            goto done;
        }
        if (get_text(&j, e, "Address", false, m->address, sizeof m->address) != 0 ||
            get_text(&j, e, "NodeID", false, m->node, sizeof m->node) != 0 ||
            get_text(&j, e, "ID", false, m->id, sizeof m->id) != 0) {
            *err = "an address, node or ID is not a valid string";
            goto done;
        }
        if (m->address[0] == '\0') {
            *err = "a registration has no Address";
            goto done;
        }
        if (get_port(&j, e, "Port", false, &m->port) != 0) {
            *err = "Port is missing or not a port number";
            goto done;
        }
    }
    rc = 0;
done:
    json_free(&j);
    return rc;
}
