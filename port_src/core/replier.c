/* replier.c - the one way the program answers; see replier.h. */
#include "replier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A no_memory reply must go out when the heap cannot grow: it is encoded
 * into this much stack (the id, two atoms and a sentence). */
#define FALLBACK_MAX 512

int replier_init(struct replier *r, struct reply_sink sink)
{
    memset(r, 0, sizeof *r);
    r->sink = sink;
    r->max_reply = REPLIER_MAX_REPLY_DEFAULT;
    const char *limit = getenv(REPLIER_MAX_REPLY_ENV);
    if (limit != NULL && *limit != '\0') {
        char *end;
        unsigned long long v = strtoull(limit, &end, 10);
        /* A nonsense value keeps the default: a reply cap of 0 would
         * refuse every answer. */
        if (*end == '\0' && v >= 1024 && v <= (unsigned long long)SIZE_MAX)
            r->max_reply = (size_t)v;
        else
            fprintf(stderr, "caravan_port: %s=%s ignored (want bytes >= 1024)\n",
                    REPLIER_MAX_REPLY_ENV, limit);
    }
    return ei_x_new(&r->x) == 0 ? 0 : -1;
}

void replier_free(struct replier *r)
{
    r->failed = true; /* nobody is listening from now on */
    ei_x_free(&r->x);
}

static int deliver(struct replier *r, const char *buf, size_t len)
{
    if (r->sink.send(r->sink.ctx, buf, len) != 0) {
        r->failed = true;
        return -1;
    }
    return 0;
}

/* {Id, error, {Reason, Detail}} without the heap; Detail is cut to fit. */
static int error_fallback(struct replier *r, uint64_t id, const char *reason, const char *detail)
{
    char buf[FALLBACK_MAX];
    size_t room = FALLBACK_MAX - 64 - strlen(reason);
    size_t dlen = strlen(detail) < room ? strlen(detail) : room;
    int i = 0;
    if (ei_encode_version(buf, &i) || ei_encode_tuple_header(buf, &i, 3) ||
        ei_encode_ulonglong(buf, &i, id) || ei_encode_atom(buf, &i, "error") ||
        ei_encode_tuple_header(buf, &i, 2) || ei_encode_atom(buf, &i, reason) ||
        ei_encode_binary(buf, &i, detail, (long)dlen))
        return -1;
    return deliver(r, buf, (size_t)i);
}

int replier_error(struct replier *r, uint64_t id, const char *reason, const char *detail)
{
    if (r->failed)
        return -1;
    r->counters.errors++;
    r->x.index = 0;
    if (r->x.buff != NULL && reply_error(&r->x, id, reason, detail) == 0) {
        int rc = deliver(r, r->x.buff, (size_t)r->x.index);
        r->x.index = 0;
        return rc;
    }
    r->x.index = 0;
    return error_fallback(r, id, reason, detail);
}

ei_x_buff *replier_ok_begin(struct replier *r, uint64_t id)
{
    r->counters.ok++;
    r->id = id;
    if (r->x.buff == NULL && ei_x_new(&r->x) != 0)
        return NULL;
    return reply_ok_begin(&r->x, id) == 0 ? &r->x : NULL;
}

int replier_ok_end(struct replier *r, bool encode_failed)
{
    if (r->failed)
        return -1;
    if (encode_failed) {
        r->counters.ok--;
        return replier_error(r, r->id, "no_memory", REPLIER_NO_MEMORY);
    }
    if ((size_t)r->x.index > r->max_reply) {
        /* An owner reading less than this reply would end the program and
         * every request in flight with it: this one fails alone. */
        char detail[160];
        snprintf(detail, sizeof detail, "the answer encodes to %d bytes, over the %zu a reply "
                                        "may have", r->x.index, r->max_reply);
        r->counters.ok--;
        return replier_error(r, r->id, "too_large", detail);
    }
    if ((size_t)r->x.index > REPLIER_HANDOVER_BYTES && r->sink.send_owned != NULL) {
        /* A reply this big waits for the VM in the writer: it takes this
         * buffer rather than a copy (400 KB per crafted SRV answer, in
         * fresh pages on a new program), the next reply starts a new one,
         * and r->x does not keep the largest reply's size for good. */
        if (reply_send_owned(&r->sink, &r->x) != 0) {
            r->failed = true;
            return -1;
        }
        /* A buffer for the next reply (an error's detail would be cut to
         * the stack fallback's size without one); none to be had, the
         * next reply makes it or falls back as on any failed encode. */
        (void)ei_x_new(&r->x);
        return 0;
    }
    int rc = deliver(r, r->x.buff, (size_t)r->x.index);
    r->x.index = 0;
    return rc;
}

int replier_ok_atom(struct replier *r, uint64_t id, const char *atom)
{
    ei_x_buff *x = replier_ok_begin(r, id);
    return replier_ok_end(r, x == NULL || ei_x_encode_atom(x, atom) != 0);
}

int replier_ok_ulong(struct replier *r, uint64_t id, unsigned long long value)
{
    ei_x_buff *x = replier_ok_begin(r, id);
    return replier_ok_end(r, x == NULL || ei_x_encode_ulonglong(x, value) != 0);
}

int replier_send_built(struct replier *r, ei_x_buff *x, bool ok)
{
    if (r->failed)
        return -1;
    if (ok)
        r->counters.ok++;
    else
        r->counters.errors++;
    if (reply_send_owned(&r->sink, x) != 0) {
        r->failed = true;
        return -1;
    }
    return 0;
}
