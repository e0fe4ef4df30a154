/* reply.c - reply encoding; see reply.h. */
#include "reply.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int begin(ei_x_buff *x, uint64_t id, const char *status)
{
    x->index = 0;
    if (ei_x_encode_version(x) || ei_x_encode_tuple_header(x, 3) ||
        ei_x_encode_ulonglong(x, id) || ei_x_encode_atom(x, status))
        return -1;
    return 0;
}

int reply_ok_begin(ei_x_buff *x, uint64_t id)
{
    return begin(x, id, "ok");
}

int reply_error(ei_x_buff *x, uint64_t id, const char *reason, const char *detail)
{
    if (begin(x, id, "error") || ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, reason) ||
        ei_x_encode_binary(x, detail, (int)strlen(detail)))
        return -1;
    return 0;
}

#define REPLY_RESERVE_SLACK 128u

int reply_reserve(ei_x_buff *x, size_t more)
{
    if (x->index < 0 || more > (size_t)INT_MAX - REPLY_RESERVE_SLACK - (size_t)x->index)
        return 0; /* ei's sizes are ints: let it fail as it would have */
    /* ei grows the buffer when fewer than 100 bytes would be left after
     * an encode: room for that too, or the last one reallocates it all. */
    size_t need = (size_t)x->index + more + REPLY_RESERVE_SLACK;
    if (need <= (size_t)x->buffsz)
        return 0;
    char *grown = realloc(x->buff, need);
    if (grown == NULL)
        return -1;
    x->buff = grown;
    x->buffsz = (int)need;
    return 0;
}

int reply_send(const struct reply_sink *sink, ei_x_buff *x)
{
    int rc = sink->send(sink->ctx, x->buff, (size_t)x->index);
    x->index = 0;
    return rc;
}

int reply_send_owned(const struct reply_sink *sink, ei_x_buff *x)
{
    if (sink->send_owned == NULL)
        return reply_send(sink, x);
    char *buf = x->buff;
    size_t len = (size_t)x->index;
    x->buff = NULL;
    x->buffsz = 0;
    x->index = 0;
    return sink->send_owned(sink->ctx, buf, len);
}
