/*
 * dns_internal.h - what the files of the DNS lookups share, and nothing
 * outside dns/ sees: the channel, lookup and query structures and the
 * functions each file offers the others. The public interface is dns.h.
 *
 *   dns.c           the public functions, the poll() integration, status atoms
 *   dns_channels.c  the channel pool: one c-ares channel per server set and
 *                   transport, LRU eviction, and the reaper (the ownership rule)
 *   dns_window.c    the per-channel wait window of queries handed to c-ares
 *   dns_lookup.c    the lookup machine: questions, follow-ups, fail-over,
 *                   resends, and the answer
 */
#ifndef CARAVAN_DNS_INTERNAL_H
#define CARAVAN_DNS_INTERNAL_H

#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */
#include <ares.h>
#include <stdbool.h>
#include <stdint.h>

#include "ares_socks.h"
#include "dns.h"

/* EDNS payload advertised over UDP: large enough for the SRV sets caravan
 * expects; a larger answer comes back truncated and c-ares retries on TCP. */
#define EDNS_PAYLOAD 4096
/* Follow-up A/AAAA queries one SRV lookup may issue (one per distinct
 * target without an address). */
#define MAX_FOLLOWUPS 512
/* Queries one channel has out at once; more wait their turn, oldest first.
 * 50 SRV lookups of 40 targets each sent 2,000 follow-ups in one burst:
 * the server's socket buffer (208 KiB by default on Linux, a few hundred
 * queries) overflowed, the lost ones were re-sent a second later, and 1.5%
 * of the lookups ran out of time. A window of this size keeps a server
 * busy (one BIND thread answers about 20,000 a second) without a burst
 * larger than its buffer. */
#define DNS_CHANNEL_WINDOW 64

struct channel {
    struct dns *d;
    ares_channel ares;
    char key[DNS_SERVERS_MAX + 320];
    struct ares_socks socks; /* every socket c-ares has open; it refuses more */
    size_t queries; /* c-ares queries outstanding on this channel */
    size_t orphans; /* of which detached: their lookup is gone */
    /* Queries past the window (DNS_CHANNEL_WINDOW), not yet handed to
     * c-ares, oldest first. Each belongs to a lookup holding the channel. */
    struct query *wait_head, *wait_tail;
    size_t waiting;
    bool pumping;   /* inside pump(): a nested call leaves the work to it */
    size_t holds;   /* lookups that may still issue queries on it */
    bool listed;    /* in the poll table handed out last */
    bool dead;      /* evicted: takes no new lookups, freed by reap() */
    bool tcp;       /* USEVC: questions queue on a connection (cancel_orphans) */
    bool search;    /* the host's resolv.conf: its search list and ndots apply */
    int64_t last_used;
    struct channel *next;
};

struct query;

struct lookup {
    struct dns *d;
    struct dns_query q;          /* as asked: fail-over derives its channels from it */
    struct channel *ch;
    struct channel *followup_ch; /* same servers over UDP: small answers */
    uint64_t id;
    int64_t deadline_ms;
    int64_t resend_ms;  /* when to ask the question(s) again (dns.h); 0: never */
    /* Follow-ups resend too (dns.h): the earliest resend_ms of its
     * outstanding follow-ups, 0 if none; copying marks the copies' own 0. */
    int64_t followup_resend_ms;
    bool followup_resends; /* timeout_ms under DNS_CHANNEL_TRIES tries */
    bool copying;
    bool followups_copied; /* follow-ups may have twins (dns_on_answer) */
    enum dns_kind kind;
    int families;
    int tries_left;     /* re-asks of a timed-out question (see DNS_TRY_TIMEOUT_MS) */
    size_t pending;     /* c-ares queries outstanding, plus holds */
    int status;         /* first failure of the primary query(ies), ARES_SUCCESS if none */
    bool any_success;   /* at least one primary query answered */
    bool truncated;     /* a primary answer had TC set after TCP: records missing */
    const char *parse_error;
    struct dns_answer answer;
    struct query *queries; /* outstanding, doubly linked */
    struct lookup *prev, *next;
};

/* One c-ares query: the primary question, or a follow-up for a target.
 * lookup is NULL once the lookup was answered and freed. */
struct query {
    struct lookup *lookup;
    struct channel *ch;
    bool followup;
    bool waiting;                 /* in ch's wait list, not sent yet */
    struct query *wprev, *wnext;  /* in ch's wait list */
    int type;
    struct query *prev, *next;
    char target[DNS_NAME_TEXT_MAX];
    size_t group; /* follow-up: the first SRV record naming target */
    int64_t resend_ms; /* follow-up: when to send a copy if unanswered; 0: never */
};

struct dns {
    dns_done_fn done;
    void *ctx;
    struct channel *channels; /* live and dead, singly linked */
    size_t nlive;
    struct lookup *lookups;   /* doubly linked, in flight */
    size_t inflight;
    bool closing;
    int depth; /* > 0 while inside a c-ares call: reap() waits */
    /* Which channel each fd handed to poll() belongs to, in order. */
    struct channel *polled[DNS_MAX_CHANNELS * DNS_MAX_SOCKS_PER_CHANNEL];
    size_t npolled;
};

/* Offered across the files above; each is described where it is defined. */
void dns_lookup_answer(struct lookup *l, const char *reason, const char *detail);
struct channel *dns_channel_for(struct dns *d, const struct dns_query *q, const char **reason,
                                   char *detail, size_t dlen);
void dns_channel_free(struct dns *d, struct channel *ch);
const char *dns_status_atom(int status);
bool dns_fail_over(struct lookup *l, const struct query *q);
int dns_hold_channels(struct dns *d, const struct dns_query *q, struct channel **ch,
                         struct channel **followup_ch, const char **reason, char *detail,
                         size_t dlen);
void dns_issue(struct lookup *l, const char *name, int type, bool followup, size_t group);
void dns_lookup_free(struct lookup *l);
void dns_pump(struct channel *ch);
void dns_reap(struct dns *d);
void dns_release(struct lookup *l);
void dns_resend(struct lookup *l);
void dns_resend_followups(struct lookup *l, int64_t now);
void dns_send_query(struct query *q);
void dns_unhold_channels(struct lookup *l);
void dns_wait_append(struct query *q);
void dns_wait_remove(struct query *q);

/* c-ares's callback for every query (dns_window.c hands queries over). */
void dns_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

#endif
