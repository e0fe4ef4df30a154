/* dns.c - c-ares channels, lookups and their poll() integration; see dns.h.
 *
 * IMPORTANT: c-ares may call a query's callback from inside ares_query()
 * (bad name, no memory), from inside ares_process_fd() and from inside
 * ares_destroy(). Hence the ownership rule of dns.h:
 * - a channel is only ever freed by reap(), which runs at the safe points
 *   (dns_poll_fds, the end of dns_process, dns_free) and never while c-ares
 *   is running (d->depth), while a lookup holds the channel, while a query
 *   is pending on it, or while the poll table lists it;
 * - a lookup is held (pending + 1) while code that issues queries for it
 *   runs; once answered it detaches its queries (query->lookup = NULL) and
 *   is freed, so a late callback touches only its query and channel. */
#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */

#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ares_socks.h"
#include "clock.h"
#include "fds.h"

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
    enum dns_kind kind;
    int families;
    int tries_left;     /* re-asks of a timed-out question (see DNS_TRY_TIMEOUT_MS) */
    size_t pending;     /* c-ares queries outstanding, plus holds */
    int status;         /* first failure of the primary query(ies), ARES_SUCCESS if none */
    bool any_success;   /* at least one primary query answered */
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

const char *dns_status_atom(int status)
{
    switch (status) {
    case ARES_SUCCESS: return "ok";
    case ARES_ENODATA:
    case ARES_ENOTFOUND: return "nxdomain";
    case ARES_ESERVFAIL: return "servfail";
    case ARES_EREFUSED: return "refused";
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ECONNREFUSED: return "connection_refused";
    case ARES_EFORMERR:
    case ARES_EBADRESP: return "bad_answer";
    case ARES_ENOTIMP: return "not_implemented";
    case ARES_EBADNAME:
    case ARES_EBADSTR:
    case ARES_EBADQUERY: return "bad_args";
    case ARES_ENOMEM: return "no_memory";
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return "cancelled";
    default: return "dns_error";
    }
}

/*** channels ***/

/* Frees ch; only reap() and dns_free() call this (see the ownership rule).
 * Queries still pending are called back by ares_destroy; they no longer
 * have a lookup, and touch only this channel, still allocated then. */
static void channel_free(struct dns *d, struct channel *ch)
{
    d->depth++;
    ares_destroy(ch->ares);
    d->depth--;
    free(ch);
}

/* The safe point: frees dead channels nothing refers to any more. */
static void reap(struct dns *d)
{
    if (d->depth > 0)
        return;
    for (struct channel **p = &d->channels; *p;) {
        struct channel *ch = *p;
        /* Orphaned queries do not keep a dead channel: nobody waits for
         * them, and ares_destroy frees them (see cancel_orphans). */
        if (ch->dead && ch->queries == ch->orphans && ch->waiting == 0 && ch->holds == 0 &&
            !ch->listed) {
            *p = ch->next;
            channel_free(d, ch);
        } else {
            p = &ch->next;
        }
    }
}

static struct channel *channel_new(struct dns *d, const struct dns_query *q, const char *key,
                                   const char **reason, char *detail, size_t dlen)
{
    struct channel *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot allocate a DNS channel");
        return NULL;
    }
    ch->d = d;
    ch->tcp = q->transport == DNS_TCP;
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    /* STAYOPEN (TCP): a discovery loop asks the same server again and again;
     * keeping the connection saves a handshake per lookup (measured: TCP went
     * from 0.78x to about parity with inet_res over UDP, see bench/).
     * NOCHECKRESP: without it c-ares turns REFUSED and SERVFAIL into "could not
     * contact DNS servers", and an operator could not tell an ACL from an outage.
     * It also stops c-ares from trying the next server after such an answer;
     * fail_over() does that instead. */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP |
              (q->transport == DNS_TCP ? ARES_FLAG_USEVC | ARES_FLAG_STAYOPEN : ARES_FLAG_EDNS);
    /* Fixed, as the channel is shared (see dns.h): c-ares re-sends a lost
     * UDP query (a burst of follow-ups can lose some); a lookup with more
     * tries re-asks a timed-out question itself, within its deadline. */
    o.timeout = DNS_TRY_TIMEOUT_MS;
    o.tries = DNS_CHANNEL_TRIES;
    ares_socks_options(&ch->socks, &o, &mask);
    if (q->transport == DNS_UDP) {
        mask |= ARES_OPT_EDNSPSZ;
        o.ednspsz = EDNS_PAYLOAD;
    }
    if (q->servers[0] == '\0' && q->resolv_conf[0] != '\0') {
        /* c-ares would fall back to 127.0.0.1:53 without a word, and the
         * lookup end in connection_refused as if a server were down. */
        if (access(q->resolv_conf, R_OK) != 0) {
            *reason = "connection_refused";
            /* The end of a long path names the file best. */
            size_t plen = strlen(q->resolv_conf);
            snprintf(detail, dlen, "resolv_conf %s%s: %s; no DNS server to ask",
                     plen > 150 ? "..." : "", q->resolv_conf + (plen > 150 ? plen - 150 : 0),
                     strerror(errno));
            free(ch);
            return NULL;
        }
        mask |= ARES_OPT_RESOLVCONF;
        o.resolvconf_path = (char *)q->resolv_conf;
    }
    int rc = ares_init_options(&ch->ares, &o, mask);
    if (rc != ARES_SUCCESS) {
        /* Out of descriptors, c-ares cannot read resolv.conf: "Error
         * reading file" would send an operator to the wrong file. */
        const char *fds = fds_exhausted();
        *reason = dns_status_atom(rc);
        snprintf(detail, dlen, "%s%scannot set up a DNS channel: %s", fds ? fds : "",
                 fds ? ": " : "", ares_strerror(rc));
        free(ch);
        return NULL;
    }
    ares_socks_guard(&ch->socks, ch->ares);
    if (q->servers[0] != '\0') {
        rc = ares_set_servers_ports_csv(ch->ares, q->servers);
        if (rc != ARES_SUCCESS) {
            *reason = "bad_args";
            snprintf(detail, dlen, "servers: not a list of IP:PORT (%s)", ares_strerror(rc));
            channel_free(d, ch);
            return NULL;
        }
    }
    snprintf(ch->key, sizeof ch->key, "%s", key);
    ch->next = d->channels;
    d->channels = ch;
    d->nlive++;
    return ch;
}

/* The channel for q's servers and transport: an existing one, a new one,
 * or (DNS_MAX_CHANNELS server sets busy) NULL with overload. Per-request
 * options are not part of the key: lookups to one server set share. The
 * least recently used idle channel (no queries, no lookup holding it: a
 * TCP SRV lookup holds its follow-up channel while it waits) is evicted to
 * make room: marked dead, and freed by reap() at the next safe point. */
static struct channel *channel_for(struct dns *d, const struct dns_query *q, const char **reason,
                                   char *detail, size_t dlen)
{
    char key[sizeof ((struct channel *)0)->key];
    snprintf(key, sizeof key, "%s|%s|%d", q->servers, q->resolv_conf, q->transport);

    struct channel *idle = NULL;
    for (struct channel *ch = d->channels; ch; ch = ch->next) {
        if (ch->dead)
            continue;
        if (strcmp(ch->key, key) == 0)
            return ch;
        if (ch->queries == 0 && ch->waiting == 0 && ch->holds == 0 &&
            (idle == NULL || ch->last_used < idle->last_used))
            idle = ch;
    }
    if (d->nlive >= DNS_MAX_CHANNELS) {
        if (idle == NULL) {
            *reason = "overload";
            snprintf(detail, dlen, "all %d DNS channels are busy with other server sets",
                     DNS_MAX_CHANNELS);
            return NULL;
        }
        idle->dead = true;
        d->nlive--;
    }
    return channel_new(d, q, key, reason, detail, dlen);
}

/* A lookup's channels for q: the one its questions go to and the one for
 * follow-up address queries, each with a hold taken. Small answers come
 * back faster over UDP (with TCP after TC): no TCP round trip each, and the
 * server answers them in parallel. */
static int hold_channels(struct dns *d, const struct dns_query *q, struct channel **ch,
                         struct channel **followup_ch, const char **reason, char *detail,
                         size_t dlen)
{
    *ch = channel_for(d, q, reason, detail, dlen);
    if (*ch == NULL)
        return -1;
    (*ch)->holds++; /* before making room for the follow-up channel */
    *followup_ch = *ch;
    if (q->kind == DNS_LOOKUP_SRV && q->transport == DNS_TCP) {
        struct dns_query fq = *q;
        fq.transport = DNS_UDP;
        *followup_ch = channel_for(d, &fq, reason, detail, dlen);
        if (*followup_ch == NULL) {
            (*ch)->holds--;
            return -1;
        }
    }
    (*followup_ch)->holds++;
    return 0;
}

static void unhold_channels(struct lookup *l)
{
    l->ch->holds--;
    l->followup_ch->holds--;
}

/*** lookups ***/

static void query_unlink(struct query *q)
{
    struct lookup *l = q->lookup;
    if (q->prev)
        q->prev->next = q->next;
    else
        l->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void wait_remove(struct query *q)
{
    struct channel *ch = q->ch;
    if (q->wprev)
        q->wprev->wnext = q->wnext;
    else
        ch->wait_head = q->wnext;
    if (q->wnext)
        q->wnext->wprev = q->wprev;
    else
        ch->wait_tail = q->wprev;
    q->wprev = q->wnext = NULL;
    q->waiting = false;
    ch->waiting--;
}

static void wait_append(struct query *q)
{
    struct channel *ch = q->ch;
    q->waiting = true;
    q->wnext = NULL;
    q->wprev = ch->wait_tail;
    if (ch->wait_tail)
        ch->wait_tail->wnext = q;
    else
        ch->wait_head = q;
    ch->wait_tail = q;
    ch->waiting++;
}

/* Unlinks l, detaches its outstanding queries, drops its channel holds and
 * frees it. Its queries finish on their channels with no lookup. */
static void lookup_free(struct lookup *l)
{
    struct dns *d = l->d;
    for (struct query *q = l->queries, *next; q; q = next) {
        next = q->next;
        if (q->waiting) { /* never sent: nothing of it is in c-ares */
            wait_remove(q);
            free(q);
            continue;
        }
        q->lookup = NULL;
        q->prev = q->next = NULL;
        q->ch->orphans++;
    }
    unhold_channels(l);
    if (l->prev)
        l->prev->next = l->next;
    else
        d->lookups = l->next;
    if (l->next)
        l->next->prev = l->prev;
    d->inflight--;
    dns_answer_free(&l->answer);
    free(l);
}

static void answer(struct lookup *l, const char *reason, const char *detail)
{
    struct dns_result r = {.kind = l->kind, .reason = reason, .answer = &l->answer};
    const char *fds = NULL;
    /* c-ares words a socket it could not open as a server it could not
     * reach (fds.h). */
    if (reason != NULL && strcmp(reason, "bad_answer") != 0 && strcmp(reason, "refused") != 0 &&
        strcmp(reason, "servfail") != 0)
        fds = fds_exhausted();
    if (fds != NULL)
        snprintf(r.detail, sizeof r.detail, "%.60s: %.190s", fds, detail);
    else if (reason)
        snprintf(r.detail, sizeof r.detail, "%s", detail);
    l->d->done(l->d->ctx, l->id, &r);
}

/* Drops one hold or query; the last one answers and frees the lookup. */
static void release(struct lookup *l)
{
    if (--l->pending > 0)
        return;
    if (!l->d->closing) {
        char detail[256];
        if (l->parse_error) {
            snprintf(detail, sizeof detail, "malformed DNS answer: %s", l->parse_error);
            answer(l, "bad_answer", detail);
        } else if (l->kind == DNS_LOOKUP_ADDR && l->answer.naddrs == 0 &&
                   l->answer.ncname > 0) {
            /* Not an empty listing: a server without recursion stops at a
             * CNAME that leaves its zones (Kubernetes' ExternalName). */
            snprintf(detail, sizeof detail,
                     "CNAME chain not followed: it ends at %.100s, which the server gave "
                     "no address for (ask a resolver that recurses, or query that name)",
                     l->answer.cname);
            answer(l, "bad_answer", detail);
        } else if (l->kind == DNS_LOOKUP_ADDR && !l->any_success &&
                   l->status == ARES_ENOTFOUND) {
            /* A name that stopped existing is no listing of zero nodes
             * (docs/protocol.md, addr): the caller keeps its last one. */
            snprintf(detail, sizeof detail, "DNS lookup failed: %s", ares_strerror(l->status));
            answer(l, "nxdomain", detail);
        } else if (l->any_success || l->status == ARES_ENOTFOUND || l->status == ARES_ENODATA) {
            answer(l, NULL, NULL); /* no such name is an empty answer */
        } else {
            snprintf(detail, sizeof detail, "DNS lookup failed: %s", ares_strerror(l->status));
            answer(l, dns_status_atom(l->status), detail);
        }
    }
    lookup_free(l);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void send_query(struct query *q)
{
    struct dns *d = q->ch->d;
    q->ch->queries++;
    q->ch->last_used = clock_now_ms();
    d->depth++;
    ares_query(q->ch->ares, q->target, ns_c_in, q->type, on_answer, q);
    d->depth--;
}

/* Sends waiting queries while ch's window has room. Runs inside c-ares
 * callbacks (on_answer), where a send may answer at once and re-enter:
 * the outer call keeps going instead. */
static void pump(struct channel *ch)
{
    if (ch->pumping)
        return;
    ch->pumping = true;
    while (ch->wait_head != NULL && ch->queries < DNS_CHANNEL_WINDOW && !ch->d->closing) {
        struct query *q = ch->wait_head;
        wait_remove(q);
        send_query(q);
    }
    ch->pumping = false;
}

static void issue(struct lookup *l, const char *name, int type, bool followup, size_t group)
{
    struct query *q = calloc(1, sizeof *q);
    if (q == NULL) {
        if (!followup && l->status == ARES_SUCCESS)
            l->status = ARES_ENOMEM;
        return;
    }
    q->lookup = l;
    q->ch = followup ? l->followup_ch : l->ch;
    q->followup = followup;
    q->type = type;
    snprintf(q->target, sizeof q->target, "%s", name);
    q->group = group;
    q->next = l->queries;
    if (l->queries)
        l->queries->prev = q;
    l->queries = q;
    l->pending++;
    if (q->ch->queries >= DNS_CHANNEL_WINDOW || q->ch->waiting > 0)
        wait_append(q);
    else
        send_query(q);
}

static bool family_wanted(const struct lookup *l, int family)
{
    return (family == AF_INET && (l->families & DNS_FAMILY_INET)) ||
           (family == AF_INET6 && (l->families & DNS_FAMILY_INET6));
}

/* Keeps only the addresses of the families asked for, from whichever
 * section they came (answer, ADDITIONAL). */
static void keep_families(struct lookup *l, struct dns_addr *addrs, size_t *n)
{
    size_t kept = 0;
    for (size_t k = 0; k < *n; k++)
        if (family_wanted(l, addrs[k].family))
            addrs[kept++] = addrs[k];
    *n = kept;
}

/* RFC 2782: a target of "." means the service is decidedly not available
 * there; and port 0 names no service a node could be dialled on (it became
 * app-0@host, retried forever). Such records are dropped, never queried, as
 * the Consul and Nomad paths drop port 0. */
static void drop_unusable_records(struct dns_answer *a)
{
    size_t kept = 0;
    for (size_t i = 0; i < a->nsrv; i++)
        if (a->srv[i].target[0] != '\0' && a->srv[i].port != 0) {
            if (kept != i)
                a->srv[kept] = a->srv[i];
            kept++;
        }
    a->nsrv = kept;
}

/* Targets without addresses of a wanted family: Consul's .addr. names
 * carry theirs; the others get one query per distinct target: A if IPv4 is
 * wanted (then AAAA only if that finds nothing and IPv6 is wanted too, see
 * on_answer), else AAAA. Asking both at once would double the queries of a
 * large service for the rare IPv6-only target. */
static void resolve_targets(struct lookup *l)
{
    size_t issued = 0;
    for (size_t i = 0; i < l->answer.nsrv; i++) {
        struct dns_srv *s = &l->answer.srv[i];
        keep_families(l, s->addrs, &s->naddrs);
        if (s->naddrs > 0)
            continue;
        struct dns_addr a;
        if (dns_addr_from_target(s->target, &a) && family_wanted(l, a.family)) {
            s->addrs[s->naddrs++] = a;
            continue;
        }
        /* Asked once per target, for its first record (dns_answer_group). */
        if (s->first_same != i || issued >= MAX_FOLLOWUPS)
            continue;
        issue(l, s->target, l->families & DNS_FAMILY_INET ? ns_t_a : ns_t_aaaa, true, i);
        issued++;
    }
}

/* Gives the target's addresses (of the wanted families) to every SRV
 * record naming it: the records of q's group, walked along next_same, not
 * every record of the answer for every follow-up. Returns how many records
 * gained one. */
static size_t attach_followup(struct lookup *l, const struct query *q, const struct dns_answer *a)
{
    size_t gained = 0;
    size_t first = q->group;
    bool grouped = first < l->answer.nsrv && l->answer.srv[first].first_same == first &&
                   dns_name_equal(l->answer.srv[first].target, q->target);
    /* Not grouped: the answer changed since the follow-up left (a re-ask
     * answered later); match by name then, as a rare fallback. */
    for (size_t i = grouped ? first : 0; i != DNS_SRV_NONE && i < l->answer.nsrv;
         i = grouped ? l->answer.srv[i].next_same : i + 1) {
        struct dns_srv *s = &l->answer.srv[i];
        if (!grouped && !dns_name_equal(s->target, q->target))
            continue;
        size_t before = s->naddrs;
        for (size_t k = 0; k < a->naddrs && s->naddrs < DNS_MAX_ADDRS; k++)
            if (family_wanted(l, a->addrs[k].family))
                s->addrs[s->naddrs++] = a->addrs[k];
        gained += s->naddrs > before;
    }
    return gained;
}

/* Writes ch's servers after its first as "ip:port,[ip6]:port" into buf;
 * returns how many. */
static size_t servers_after_first(struct channel *ch, char *buf, size_t len)
{
    struct ares_addr_port_node *list = NULL;
    buf[0] = '\0';
    if (ares_get_servers_ports(ch->ares, &list) != ARES_SUCCESS)
        return 0;
    size_t n = 0, used = 0;
    for (struct ares_addr_port_node *s = list ? list->next : NULL; s; s = s->next) {
        char ip[INET6_ADDRSTRLEN];
        if (inet_ntop(s->family, &s->addr, ip, sizeof ip) == NULL)
            continue;
        int port = s->udp_port > 0 ? s->udp_port : 53;
        int w = snprintf(buf + used, len - used, s->family == AF_INET6 ? "%s[%s]:%d" : "%s%s:%d",
                         n > 0 ? "," : "", ip, port);
        if (w < 0 || (size_t)w >= len - used) {
            buf[used] = '\0'; /* the servers that fit */
            break;
        }
        used += (size_t)w;
        n++;
    }
    ares_free_data(list);
    return n;
}

/* REFUSED or SERVFAIL from a server: with NOCHECKRESP (see channel_new)
 * c-ares ends the query there, so the lookup asks the same question of the
 * servers after the first of the query's channel, on channels of their own.
 * When the first server had timed out and the second answered, the second
 * is asked again; each step drops one server, so this ends. Returns false
 * when no server is left (or no channel free): the answer then stands.
 * Runs inside a c-ares callback: channel_for() may only mark a channel
 * dead, never free one (reap() does that later). */
static bool fail_over(struct lookup *l, const struct query *q)
{
    struct dns_query next = l->q;
    if (servers_after_first(q->ch, next.servers, sizeof next.servers) == 0)
        return false;
    const char *reason;
    char detail[160];
    struct channel *ch, *followup_ch;
    if (hold_channels(l->d, &next, &ch, &followup_ch, &reason, detail, sizeof detail) != 0)
        return false;
    unhold_channels(l);
    l->ch = ch;
    l->followup_ch = followup_ch;
    l->q = next;
    issue(l, q->target, q->type, false, q->group);
    return true;
}

/* The other copy of primary question q (resent, dns.h), or NULL. */
static struct query *twin_of(const struct query *q)
{
    for (struct query *t = q->lookup->queries; t != NULL; t = t->next)
        if (t != q && !t->followup && t->type == q->type && strcmp(t->target, q->target) == 0)
            return t;
    return NULL;
}

/* Lets go of t, a copy whose twin was answered: a waiting one is freed, a
 * sent one detached (its answer frees only itself). Its lookup stays held
 * by the twin, still counted in pending. */
static void drop_twin(struct query *t)
{
    struct lookup *l = t->lookup;
    query_unlink(t);
    l->pending--;
    if (t->waiting) {
        wait_remove(t);
        free(t);
        return;
    }
    t->lookup = NULL;
    t->ch->orphans++;
}

/* Asks l's unanswered primary question(s) again (dns.h). */
static void resend(struct lookup *l)
{
    struct { int type; size_t group; char target[DNS_NAME_TEXT_MAX]; } again[4];
    size_t n = 0;
    for (struct query *q = l->queries; q != NULL && n < 4; q = q->next) {
        if (q->followup)
            continue;
        again[n].type = q->type;
        again[n].group = q->group;
        memcpy(again[n].target, q->target, sizeof again[n].target);
        n++;
    }
    l->pending++; /* hold while issuing: a copy may fail inside ares_query */
    for (size_t i = 0; i < n; i++)
        issue(l, again[i].target, again[i].type, false, again[i].group);
    release(l);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    struct lookup *l = q->lookup;
    struct channel *ch = q->ch;
    if (l == NULL) { /* its lookup was answered (deadline) or cancelled */
        ch->queries--;
        ch->orphans--;
        free(q);
        pump(ch);
        return;
    }
    struct query *twin = q->followup ? NULL : twin_of(q);
    if (twin != NULL) {
        /* NODATA and NXDOMAIN are answers (an empty listing), not a lost
         * copy: the copy that brings them decides as a success does. */
        bool answered = status == ARES_SUCCESS || status == ARES_ENODATA ||
                        status == ARES_ENOTFOUND;
        if (!answered || abuf == NULL || alen <= 0 || l->d->closing) {
            /* This copy failed; the other may still be answered and decides. */
            ch->queries--;
            query_unlink(q);
            free(q);
            release(l); /* the twin still counts: l lives on */
            pump(ch);
            return;
        }
        drop_twin(twin); /* this answer counts; the other's is not waited for */
    }

    if (status == ARES_SUCCESS && abuf != NULL && alen > 0 && !l->d->closing) {
        struct dns_answer parsed;
        const char *err = NULL;
        dns_answer_init(&parsed);
        int rc = dns_msg_parse(abuf, (size_t)alen, &parsed, &err);
        if (q->followup) {
            /* A bad follow-up costs that target its address, not the lookup. */
            size_t gained = rc == 0 ? attach_followup(l, q, &parsed) : 0;
            dns_answer_free(&parsed);
            /* This query is not released yet, so the lookup stays alive even
             * if the AAAA query completes at once. */
            if (gained == 0 && q->type == ns_t_a && (l->families & DNS_FAMILY_INET6))
                issue(l, q->target, ns_t_aaaa, true, q->group);
        } else if (rc != 0) {
            l->parse_error = err;
            dns_answer_free(&parsed);
        } else if (l->kind == DNS_LOOKUP_SRV) {
            dns_answer_free(&l->answer);
            l->answer = parsed;
            drop_unusable_records(&l->answer);
            /* Indices moved: group again (out of memory, every record is
             * alone in its group and its target asked about on its own). */
            (void)dns_answer_group(&l->answer);
            l->any_success = true;
            resolve_targets(l); /* q still counts in pending: l stays alive */
        } else {
            for (size_t k = 0; k < parsed.naddrs; k++)
                if (dns_answer_add_addr(&l->answer, &parsed.addrs[k]) != 0 &&
                    l->status == ARES_SUCCESS)
                    l->status = ARES_ENOMEM;
            dns_answer_sort_addrs(&l->answer); /* the A and AAAA answers merged */
            if (parsed.ncname > 0) {
                l->answer.ncname += parsed.ncname;
                memcpy(l->answer.cname, parsed.cname, sizeof l->answer.cname);
            }
            l->any_success = true;
            dns_answer_free(&parsed);
        }
    } else if (q->followup) {
        if (q->type == ns_t_a && (l->families & DNS_FAMILY_INET6) && !l->d->closing &&
            status != ARES_ECANCELLED && status != ARES_EDESTRUCTION)
            issue(l, q->target, ns_t_aaaa, true, q->group); /* no A record: maybe IPv6 only */
    } else if ((status == ARES_EREFUSED || status == ARES_ESERVFAIL) && !l->d->closing &&
               fail_over(l, q)) {
        /* asked again: this query's failure is not the lookup's */
    } else if (status == ARES_ETIMEOUT && l->tries_left > 0 && !l->d->closing &&
               clock_now_ms() < l->deadline_ms) {
        l->tries_left--;
        issue(l, q->target, q->type, false, q->group); /* see DNS_TRY_TIMEOUT_MS */
    } else if (l->status == ARES_SUCCESS || l->status == ARES_ENODATA) {
        l->status = status;
    }
    /* Only now: until here q kept its channel busy, so nothing evicted it. */
    ch->queries--;
    query_unlink(q);
    free(q);
    release(l);
    pump(ch); /* reap() runs outside c-ares only: ch is still allocated */
}

/*** public ***/

struct dns *dns_new(dns_done_fn done, void *ctx)
{
    static bool library_ready = false;
    if (!library_ready) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
            return NULL;
        library_ready = true;
    }
    struct dns *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->done = done;
    d->ctx = ctx;
    return d;
}

void dns_free(struct dns *d)
{
    if (d == NULL)
        return;
    d->closing = true;
    /* Lookups first: their queries are detached, so the callbacks that
     * ares_destroy makes (EDESTRUCTION) touch only their own channel, which
     * stays allocated until its ares_destroy returns. Any order is safe. */
    while (d->lookups)
        lookup_free(d->lookups);
    while (d->channels) {
        struct channel *ch = d->channels;
        d->channels = ch->next;
        channel_free(d, ch);
    }
    free(d);
}

/* Number of servers in a "a,b,c" list. */
static size_t count_servers(const char *servers)
{
    if (servers[0] == '\0')
        return 0;
    size_t n = 1;
    for (const char *p = servers; *p; p++)
        n += *p == ',';
    return n;
}

int dns_start(struct dns *d, uint64_t id, const struct dns_query *q, const char **reason,
              char *detail, size_t dlen)
{
    if (d->inflight >= DNS_MAX_INFLIGHT) {
        *reason = "overload";
        snprintf(detail, dlen, "%d DNS lookups already in flight", DNS_MAX_INFLIGHT);
        return -1;
    }
    if (count_servers(q->servers) > DNS_MAX_SERVERS) {
        *reason = "bad_args";
        snprintf(detail, dlen, "servers: at most %d", DNS_MAX_SERVERS);
        return -1;
    }
    struct channel *ch, *followup_ch;
    if (hold_channels(d, q, &ch, &followup_ch, reason, detail, dlen) != 0)
        return -1;
    struct lookup *l = calloc(1, sizeof *l);
    if (l == NULL) {
        ch->holds--;
        followup_ch->holds--;
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot allocate a DNS lookup");
        return -1;
    }
    l->d = d;
    l->q = *q;
    l->ch = ch;
    l->followup_ch = followup_ch;
    l->id = id;
    l->kind = q->kind;
    l->families = q->families;
    l->tries_left = q->tries > DNS_CHANNEL_TRIES ? q->tries - DNS_CHANNEL_TRIES : 0;
    l->deadline_ms = clock_now_ms() + q->timeout_ms;
    if (q->transport == DNS_UDP && q->timeout_ms < DNS_CHANNEL_TRIES * DNS_TRY_TIMEOUT_MS)
        l->resend_ms = clock_now_ms() + q->timeout_ms / 2;
    l->status = ARES_SUCCESS;
    dns_answer_init(&l->answer);
    l->next = d->lookups;
    if (d->lookups)
        d->lookups->prev = l;
    d->lookups = l;
    d->inflight++;

    l->pending = 1; /* hold while issuing */
    if (q->kind == DNS_LOOKUP_SRV) {
        issue(l, q->name, ns_t_srv, false, 0);
    } else {
        if (q->families & DNS_FAMILY_INET)
            issue(l, q->name, ns_t_a, false, 0);
        if (q->families & DNS_FAMILY_INET6)
            issue(l, q->name, ns_t_aaaa, false, 0);
    }
    release(l);
    return 0;
}

/* Forgets the poll table handed out last: its channels may be reaped. */
static void unlist(struct dns *d)
{
    for (size_t i = 0; i < d->npolled; i++)
        d->polled[i]->listed = false;
    d->npolled = 0;
}

size_t dns_poll_fds(struct dns *d, struct pollfd *fds, size_t cap)
{
    unlist(d);
    reap(d);
    size_t n = 0;
    /* Dead channels have no queries (only idle ones are evicted, and a dead
     * one takes no new ones): nothing to poll for. Live ones number at most
     * DNS_MAX_CHANNELS, each with at most DNS_MAX_SOCKS_PER_CHANNEL sockets
     * (ares_socks refuses more): a table of that size lists them all. */
    for (struct channel *ch = d->channels; ch; ch = ch->next) {
        if (ch->dead)
            continue;
        for (size_t k = 0; k < ch->socks.n && n < cap && n < sizeof d->polled / sizeof d->polled[0];
             k++) {
            fds[n] = ares_socks_pollfd(&ch->socks, k);
            d->polled[n] = ch;
            ch->listed = true;
            n++;
        }
    }
    d->npolled = n;
    return n;
}

/* c-ares' own ares_timeout() walks every outstanding query of a channel
 * (c-ares 1.18), which with thousands of follow-ups in flight was the
 * program's largest user of CPU (perf, bench/dns_bench.escript). Its tries
 * last DNS_TRY_TIMEOUT_MS, so waking every DNS_TICK_MS while queries are
 * out retries them at most that late, for no walk at all. */
#define DNS_TICK_MS 25

int dns_timeout(struct dns *d, int cap)
{
    int64_t best = cap, now = clock_now_ms();
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        if (ch->queries > 0 && DNS_TICK_MS < best)
            best = DNS_TICK_MS;
    for (struct lookup *l = d->lookups; l; l = l->next) {
        if (l->deadline_ms - now < best)
            best = l->deadline_ms - now;
        if (l->resend_ms > 0 && l->resend_ms - now < best)
            best = l->resend_ms - now;
    }
    return best < 0 ? 0 : (int)best;
}

/* A channel whose queries are all detached (a lookup that failed over may
 * still have live ones on a channel it no longer holds, a lookup answered at
 * its deadline or cancelled leaves its own): end them rather than let
 * c-ares keep re-sending questions nobody waits for. Their callbacks
 * (ECANCELLED, EDESTRUCTION) only free the query. Not from inside c-ares.
 * IMPORTANT: a TCP channel is retired, not ares_cancel'ed. c-ares 1.18.1's
 * ares_cancel frees each query without taking it off its server's TCP send
 * queue, so a question not yet written (a connection still being made) is
 * later written from freed memory: a heap-use-after-free, and freed heap
 * bytes sent to the server. A retired channel takes no new lookups (dead)
 * and reap() destroys it once nothing holds it: ares_destroy frees the send
 * queues with the queries. UDP questions are sent at once, never queued. */
static void cancel_orphans(struct dns *d, struct channel *ch)
{
    if (ch->queries == 0 || ch->orphans != ch->queries || d->depth > 0)
        return;
    if (ch->tcp) {
        ch->dead = true;
        return;
    }
    d->depth++;
    ares_cancel(ch->ares);
    d->depth--;
}

void dns_process(struct dns *d, const struct pollfd *fds, size_t n)
{
    /* polled[i] stays allocated: it is listed, and reap() spares listed
     * channels until unlist() below. */
    d->depth++;
    for (size_t i = 0; i < n && i < d->npolled; i++) {
        if (fds[i].revents == 0)
            continue;
        ares_socket_t rfd = fds[i].revents & (POLLIN | POLLHUP | POLLERR) ? fds[i].fd
                                                                          : ARES_SOCKET_BAD;
        ares_socket_t wfd = fds[i].revents & POLLOUT ? fds[i].fd : ARES_SOCKET_BAD;
        ares_process_fd(d->polled[i]->ares, rfd, wfd);
    }
    /* Let c-ares retry or time out queries whose sockets stayed quiet. */
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        if (ch->queries > 0)
            ares_process_fd(ch->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    d->depth--;

    /* A lookup past its deadline is answered and let go of at once: no more
     * follow-ups, its channels free for others. */
    int64_t now = clock_now_ms();
    for (struct lookup *l = d->lookups, *next; l; l = next) {
        next = l->next;
        if (now >= l->deadline_ms) {
            answer(l, "timeout", "no complete DNS answer within the lookup's timeout");
            lookup_free(l);
        }
    }
    /* Resends, one at a time from the head: issuing may answer (and free)
     * any lookup, as pump() sends other lookups' waiting queries. Each
     * lookup resends once (resend_ms cleared first), so this ends. */
    for (struct lookup *l = d->lookups; l;) {
        if (l->resend_ms > 0 && now >= l->resend_ms) {
            l->resend_ms = 0;
            resend(l);
            l = d->lookups;
        } else {
            l = l->next;
        }
    }
    /* Only after that walk: a cancelled query makes room in its channel's
     * window, pump() sends a waiting one, and c-ares may fail it inside
     * ares_query (a name it cannot encode), which answers and frees that
     * query's lookup, the walk's next one among them. Every channel, as a
     * lookup that failed over left queries on channels it no longer holds. */
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        cancel_orphans(d, ch);
    unlist(d);
    reap(d);
}

int dns_cancel(struct dns *d, uint64_t id)
{
    struct lookup *l = d->lookups;
    while (l != NULL && l->id != id)
        l = l->next;
    if (l == NULL || d->depth > 0)
        return 0;
    lookup_free(l);
    /* As at the end of dns_process: ares_cancel's callbacks free detached
     * queries and pump() may send waiting ones, which may answer (and
     * free) other lookups; nothing here is walked afterwards. */
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        cancel_orphans(d, ch);
    return 1;
}

size_t dns_inflight(const struct dns *d)
{
    return d->inflight;
}
