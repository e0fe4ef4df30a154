/*
 * replier.h - the one way the program answers. A replier owns the sink
 * (where replies go), the buffer they are encoded in, and the counters of
 * what was answered; every reply, ok or error, of every operation and
 * backend goes through it:
 *
 *   ei_x_buff *x = replier_ok_begin(r, id);     starts {Id, ok, Result}
 *   bool bad = x == NULL || encode_result(x);   exactly one Result term
 *   replier_ok_end(r, bad);                      sends it
 *
 * IMPORTANT: a failed encode (ei_x_* out of memory) is that one caller's
 * {Id, error, {no_memory, Detail}}, encoded without allocating, and the
 * program goes on. Only a failed sink (stdout closed: the VM is gone) ends
 * it: r->failed, after which nothing more is sent.
 */
#ifndef CARAVAN_REPLIER_H
#define CARAVAN_REPLIER_H

#include <ei.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply.h"

/* The largest reply (its term, without the 4-byte length) the owner reads:
 * caravan_port.erl's max_reply_bytes, passed in the environment variable
 * below when the owner starts the program; this default is the owner's. A
 * longer reply made the owner kill the program, failing every request in
 * flight with it: such an answer is replaced by that one request's
 * {error, {too_large, _}} instead. */
#define REPLIER_MAX_REPLY_DEFAULT (64u * 1024u * 1024u)
#define REPLIER_MAX_REPLY_ENV "CARAVAN_MAX_REPLY_BYTES"

struct replier_counters {
    uint64_t requests;  /* packets whose id could be read */
    uint64_t ok;        /* replies {Id, ok, _} */
    uint64_t errors;    /* replies {Id, error, _} */
    uint64_t dropped;   /* packets dropped without a reply (no id, empty, oversize) */
    uint64_t entries_skipped; /* unusable entries dropped from Consul/Nomad answers */
    uint64_t cancelled;       /* requests a cancel ended (they get no reply) */
    uint64_t cancel_noops;    /* cancels of a finished or unknown id */
};

struct replier {
    struct reply_sink sink;
    ei_x_buff x;
    struct replier_counters counters;
    size_t max_reply; /* REPLIER_MAX_REPLY_DEFAULT unless the owner said otherwise */
    uint64_t id;      /* the id of the ok reply being built in x */
    bool failed;      /* a reply could not be delivered: the VM is gone */
};

/* An ok reply longer than this is handed to the sink's send_owned, buffer
 * and all: the writer's FRAME_SMALL_PACKET, past which a reply always
 * waits for the VM (in chunks) and would otherwise be copied. */
#define REPLIER_HANDOVER_BYTES (64u * 1024u)

/* The Detail of the no_memory reply a failed encode gets. */
#define REPLIER_NO_MEMORY "out of memory encoding the reply"

/* Reads REPLIER_MAX_REPLY_ENV. Returns 0, or -1 when the buffer cannot be had. */
int replier_init(struct replier *r, struct reply_sink sink);
void replier_free(struct replier *r);

/* Counts an ok reply (so that info sees itself) and starts it in r->x.
 * Returns r->x, or NULL when even the start could not be encoded: pass
 * bad = true to replier_ok_end then. */
ei_x_buff *replier_ok_begin(struct replier *r, uint64_t id);

/* Sends the ok reply begun; with encode_failed, or over max_reply, that
 * caller gets no_memory or too_large instead. Returns 0, or -1 when the
 * sink failed. */
int replier_ok_end(struct replier *r, bool encode_failed);

/* {Id, ok, Atom} and {Id, ok, Integer}: begin, encode, end in one. */
int replier_ok_atom(struct replier *r, uint64_t id, const char *atom);
int replier_ok_ulong(struct replier *r, uint64_t id, unsigned long long value);

/* Counts and sends {Id, error, {Reason, Detail}}. Returns 0, or -1 when
 * the sink failed. */
int replier_error(struct replier *r, uint64_t id, const char *reason, const char *detail);

/* Sends a reply encoded elsewhere (the answer worker's, answer_worker.h),
 * taking over x's buffer; ok says which counter it goes to. */
int replier_send_built(struct replier *r, ei_x_buff *x, bool ok);

#endif
