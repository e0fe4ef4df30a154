/*
 * reply.h - encoding replies. Every reply is {Id, ok, Result} or
 * {Id, error, {Reason, Detail}} with Reason an atom and Detail a binary
 * sentence for humans; see docs/protocol.md.
 *
 * The sink decouples operations from stdout: the program sends to fd 1, tests
 * and fuzzers collect replies in memory.
 */
#ifndef CARAVAN_REPLY_H
#define CARAVAN_REPLY_H

#include <ei.h>
#include <stdint.h>

struct reply_sink {
    /* Delivers one encoded term; returns 0, or -1 when the peer is gone. */
    int (*send)(void *ctx, const char *buf, size_t len);
    /* Optional: the same, taking over buf (malloc'd) so that a big reply
     * waiting for the peer is not copied. */
    int (*send_owned)(void *ctx, char *buf, size_t len);
    void *ctx;
};

/* Starts {Id, ok, ...}: the caller encodes exactly one Result term next. */
int reply_ok_begin(ei_x_buff *x, uint64_t id);

/* Encodes a complete {Id, error, {Reason, Detail}}. */
int reply_error(ei_x_buff *x, uint64_t id, const char *reason, const char *detail);

/* Makes room for `more' bytes past x->index at once. ei's encoders grow
 * the buffer by about 200 bytes whenever it is full: one realloc per
 * record or two, each a copy of everything so far wherever realloc cannot
 * grow the block in place (ASan's allocator never does), an mremap(2) each
 * once glibc has mmap'd the block. A 6 MB member list took minutes under
 * ASan; a 400 KB SRV answer held the loop 8 ms. Callers bound their
 * result's size and reserve it before encoding. Returns 0, or -1 out of
 * memory; a size ei cannot hold (over INT_MAX) is left for ei to refuse. */
int reply_reserve(ei_x_buff *x, size_t more);

/* Sends what x holds and resets it for the next reply. */
int reply_send(const struct reply_sink *sink, ei_x_buff *x);

/* Sends what x holds, handing x's buffer over to the sink where it can
 * take it: x is then empty (buff NULL) and only fit for ei_x_free. */
int reply_send_owned(const struct reply_sink *sink, ei_x_buff *x);

#endif
