/* dns.c - c-ares channels, lookups and their poll() integration; see dns.h.
 *
 * IMPORTANT: c-ares may call a query's callback from inside ares_query()
 * (bad name, no memory) and from inside ares_process_fd(). A lookup is
 * therefore held (pending + 1) while code that issues queries for it runs,
 * and freed only when its last query has called back. */
#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */

#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"

/* EDNS payload advertised over UDP: large enough for the SRV sets caravan
 * expects; a larger answer comes back truncated and c-ares retries on TCP. */
#define EDNS_PAYLOAD 4096
/* Follow-up A/AAAA queries one SRV lookup may issue (one per distinct
 * target without an address). */
#define MAX_FOLLOWUPS 512

struct sock {
    ares_socket_t fd;
    bool readable, writable;
};

struct channel {
    ares_channel ares;
    char key[DNS_SERVERS_MAX + 320];
    struct sock socks[DNS_MAX_SOCKS_PER_CHANNEL];
    size_t nsocks;
    size_t queries; /* c-ares queries outstanding on this channel */
    size_t refs;    /* lookups that may still issue queries on it */
    int64_t last_used;
};

struct lookup {
    struct dns *d;
    struct dns_query q;          /* as asked: fail-over derives its channels from it */
    struct channel *ch;
    struct channel *followup_ch; /* same servers over UDP: small answers */
    uint64_t id;
    int64_t deadline_ms;
    enum dns_kind kind;
    int families;
    size_t pending;     /* c-ares queries outstanding, plus holds */
    bool answered;      /* done already called (deadline passed) */
    int status;         /* first failure of the primary query(ies), ARES_SUCCESS if none */
    bool any_success;   /* at least one primary query answered */
    const char *parse_error;
    struct dns_answer answer;
    struct lookup *prev, *next;
};

/* One c-ares query: the primary question, or a follow-up for a target. */
struct query {
    struct lookup *lookup;
    struct channel *ch;
    bool followup;
    int type;
    char target[DNS_NAME_TEXT_MAX];
};

struct dns {
    dns_done_fn done;
    void *ctx;
    struct channel *channels[DNS_MAX_CHANNELS];
    struct lookup *lookups; /* doubly linked, in flight */
    size_t inflight;
    bool closing;
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

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct channel *ch = data;
    for (size_t i = 0; i < ch->nsocks; i++) {
        if (ch->socks[i].fd != fd)
            continue;
        if (!readable && !writable) {
            ch->socks[i] = ch->socks[--ch->nsocks];
        } else {
            ch->socks[i].readable = readable;
            ch->socks[i].writable = writable;
        }
        return;
    }
    if ((readable || writable) && ch->nsocks < DNS_MAX_SOCKS_PER_CHANNEL)
        ch->socks[ch->nsocks++] = (struct sock){fd, readable, writable};
    else if (readable || writable)
        fprintf(stderr, "caravan_port: dns: more than %d sockets on one channel\n",
                DNS_MAX_SOCKS_PER_CHANNEL);
}

static void channel_free(struct channel *ch)
{
    ares_destroy(ch->ares);
    free(ch);
}

static struct channel *channel_new(const struct dns_query *q, const char *key, const char **reason,
                                   char *detail, size_t dlen)
{
    struct channel *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot allocate a DNS channel");
        return NULL;
    }
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    /* STAYOPEN (TCP): a discovery loop asks the same server again and again;
     * keeping the connection saves a handshake per lookup (measured: TCP went
     * from 0.78x to about parity with inet_res over UDP, see bench/).
     * NOCHECKRESP: without it c-ares turns REFUSED and SERVFAIL into "could not
     * contact DNS servers", and an operator could not tell an ACL from an outage.
     * It also stops c-ares from trying the next server after such an answer;
     * fail_over() does that instead. */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP |
              (q->transport == DNS_TCP ? ARES_FLAG_USEVC | ARES_FLAG_STAYOPEN : ARES_FLAG_EDNS);
    /* c-ares' timeout is per try; spread the lookup's budget over its tries. */
    o.timeout = q->timeout_ms / q->tries > 0 ? q->timeout_ms / q->tries : 1;
    o.tries = q->tries;
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = ch;
    if (q->transport == DNS_UDP) {
        mask |= ARES_OPT_EDNSPSZ;
        o.ednspsz = EDNS_PAYLOAD;
    }
    if (q->servers[0] == '\0' && q->resolv_conf[0] != '\0') {
        mask |= ARES_OPT_RESOLVCONF;
        o.resolvconf_path = (char *)q->resolv_conf;
    }
    int rc = ares_init_options(&ch->ares, &o, mask);
    if (rc != ARES_SUCCESS) {
        *reason = dns_status_atom(rc);
        snprintf(detail, dlen, "cannot set up a DNS channel: %s", ares_strerror(rc));
        free(ch);
        return NULL;
    }
    if (q->servers[0] != '\0') {
        rc = ares_set_servers_ports_csv(ch->ares, q->servers);
        if (rc != ARES_SUCCESS) {
            *reason = "bad_args";
            snprintf(detail, dlen, "servers: not a list of IP:PORT (%s)", ares_strerror(rc));
            channel_free(ch);
            return NULL;
        }
    }
    snprintf(ch->key, sizeof ch->key, "%s", key);
    return ch;
}

/* The channel for q's settings: an existing one, a new one, or (all slots
 * busy) NULL with overload. Idle channels are evicted least recently used;
 * a channel a lookup holds is not idle even without queries (a TCP SRV
 * lookup's follow-up channel waits for the SRV answer). */
static struct channel *channel_for(struct dns *d, const struct dns_query *q, const char **reason,
                                   char *detail, size_t dlen)
{
    char key[sizeof ((struct channel *)0)->key];
    snprintf(key, sizeof key, "%s|%s|%d|%d|%d", q->servers, q->resolv_conf, q->timeout_ms,
             q->tries, q->transport);

    int free_slot = -1, idle = -1;
    for (int i = 0; i < DNS_MAX_CHANNELS; i++) {
        struct channel *ch = d->channels[i];
        if (ch == NULL) {
            if (free_slot < 0)
                free_slot = i;
        } else if (strcmp(ch->key, key) == 0) {
            return ch;
        } else if (ch->queries == 0 && ch->refs == 0 &&
                   (idle < 0 || ch->last_used < d->channels[idle]->last_used)) {
            idle = i;
        }
    }
    if (free_slot < 0) {
        if (idle < 0) {
            *reason = "overload";
            snprintf(detail, dlen, "all %d DNS channels are busy with other server sets",
                     DNS_MAX_CHANNELS);
            return NULL;
        }
        channel_free(d->channels[idle]);
        d->channels[idle] = NULL;
        free_slot = idle;
    }
    d->channels[free_slot] = channel_new(q, key, reason, detail, dlen);
    return d->channels[free_slot];
}

/* A lookup's channels for q: the one its questions go to and the one for
 * follow-up address queries, each with a reference taken (see refs). Small
 * answers come back faster over UDP (with TCP after TC): no TCP round trip
 * each, and the server answers them in parallel. */
static int hold_channels(struct dns *d, const struct dns_query *q, struct channel **ch,
                         struct channel **followup_ch, const char **reason, char *detail,
                         size_t dlen)
{
    *ch = channel_for(d, q, reason, detail, dlen);
    if (*ch == NULL)
        return -1;
    (*ch)->refs++; /* before making room for the follow-up channel */
    *followup_ch = *ch;
    if (q->kind == DNS_LOOKUP_SRV && q->transport == DNS_TCP) {
        struct dns_query fq = *q;
        fq.transport = DNS_UDP;
        *followup_ch = channel_for(d, &fq, reason, detail, dlen);
        if (*followup_ch == NULL) {
            (*ch)->refs--;
            return -1;
        }
    }
    (*followup_ch)->refs++;
    return 0;
}

/*** lookups ***/

static void lookup_unlink(struct lookup *l)
{
    struct dns *d = l->d;
    if (l->prev)
        l->prev->next = l->next;
    else
        d->lookups = l->next;
    if (l->next)
        l->next->prev = l->prev;
    d->inflight--;
}

static void answer(struct lookup *l, const char *reason, const char *detail)
{
    struct dns_result r = {.kind = l->kind, .reason = reason, .answer = &l->answer};
    if (reason)
        snprintf(r.detail, sizeof r.detail, "%s", detail);
    l->answered = true;
    l->d->done(l->d->ctx, l->id, &r);
}

/* Drops one hold or query; the last one answers (unless the deadline did)
 * and frees the lookup. */
static void release(struct lookup *l)
{
    if (--l->pending > 0)
        return;
    if (!l->answered && !l->d->closing) {
        char detail[256];
        if (l->parse_error) {
            snprintf(detail, sizeof detail, "malformed DNS answer: %s", l->parse_error);
            answer(l, "bad_answer", detail);
        } else if (l->any_success || l->status == ARES_ENOTFOUND || l->status == ARES_ENODATA) {
            answer(l, NULL, NULL); /* no such name is an empty answer */
        } else {
            snprintf(detail, sizeof detail, "DNS lookup failed: %s", ares_strerror(l->status));
            answer(l, dns_status_atom(l->status), detail);
        }
    }
    l->ch->refs--;
    l->followup_ch->refs--;
    lookup_unlink(l);
    dns_answer_free(&l->answer);
    free(l);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void issue(struct lookup *l, const char *name, int type, bool followup)
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
    l->pending++;
    q->ch->queries++;
    q->ch->last_used = clock_now_ms();
    ares_query(q->ch->ares, name, ns_c_in, type, on_answer, q);
}

/* Targets without addresses: Consul's .addr. names carry theirs; the others
 * get one query per distinct target: A if IPv4 is wanted (then AAAA only if
 * that finds nothing and IPv6 is wanted too, see on_answer), else AAAA.
 * Asking both at once would double the queries of a large service for the
 * rare IPv6-only target. */
static void resolve_targets(struct lookup *l)
{
    size_t issued = 0;
    for (size_t i = 0; i < l->answer.nsrv; i++) {
        struct dns_srv *s = &l->answer.srv[i];
        struct dns_addr a;
        if (s->naddrs > 0)
            continue;
        if (dns_addr_from_target(s->target, &a)) {
            s->addrs[s->naddrs++] = a;
            continue;
        }
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = dns_name_equal(l->answer.srv[j].target, s->target);
        if (seen || issued >= MAX_FOLLOWUPS)
            continue;
        issue(l, s->target, l->families & DNS_FAMILY_INET ? ns_t_a : ns_t_aaaa, true);
        issued++;
    }
}

/* Gives target's addresses to every SRV record naming it; returns how many
 * records gained one. */
static size_t attach_followup(struct lookup *l, const char *target, const struct dns_answer *a)
{
    size_t gained = 0;
    for (size_t i = 0; i < l->answer.nsrv; i++) {
        struct dns_srv *s = &l->answer.srv[i];
        if (!dns_name_equal(s->target, target))
            continue;
        for (size_t k = 0; k < a->naddrs && s->naddrs < DNS_MAX_ADDRS; k++)
            s->addrs[s->naddrs++] = a->addrs[k];
        gained += a->naddrs > 0;
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
 * when no server is left (or no channel free): the answer then stands. */
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
    l->ch->refs--;
    l->followup_ch->refs--;
    l->ch = ch;
    l->followup_ch = followup_ch;
    l->q = next;
    issue(l, q->target, q->type, false);
    return true;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    struct lookup *l = q->lookup;
    q->ch->queries--;

    if (status == ARES_SUCCESS && abuf != NULL && alen > 0 && !l->d->closing) {
        struct dns_answer parsed;
        const char *err = NULL;
        dns_answer_init(&parsed);
        int rc = dns_msg_parse(abuf, (size_t)alen, &parsed, &err);
        if (q->followup) {
            /* A bad follow-up costs that target its address, not the lookup. */
            size_t gained = rc == 0 ? attach_followup(l, q->target, &parsed) : 0;
            dns_answer_free(&parsed);
            /* This query is not released yet, so the lookup stays alive even
             * if the AAAA query completes at once. */
            if (gained == 0 && q->type == ns_t_a && (l->families & DNS_FAMILY_INET6))
                issue(l, q->target, ns_t_aaaa, true);
        } else if (rc != 0) {
            l->parse_error = err;
            dns_answer_free(&parsed);
        } else if (l->kind == DNS_LOOKUP_SRV) {
            dns_answer_free(&l->answer);
            l->answer = parsed;
            l->any_success = true;
            l->pending++; /* hold: follow-ups may complete synchronously */
            resolve_targets(l);
            l->pending--;
        } else {
            for (size_t k = 0; k < parsed.naddrs && l->answer.naddrs < DNS_MAX_ADDRS; k++)
                l->answer.addrs[l->answer.naddrs++] = parsed.addrs[k];
            l->any_success = true;
            dns_answer_free(&parsed);
        }
    } else if (q->followup) {
        if (q->type == ns_t_a && (l->families & DNS_FAMILY_INET6) && !l->d->closing &&
            status != ARES_ECANCELLED && status != ARES_EDESTRUCTION)
            issue(l, q->target, ns_t_aaaa, true); /* no A record: maybe IPv6 only */
    } else if ((status == ARES_EREFUSED || status == ARES_ESERVFAIL) && !l->answered &&
               !l->d->closing && fail_over(l, q)) {
        /* asked again: this query's failure is not the lookup's */
    } else if (l->status == ARES_SUCCESS || l->status == ARES_ENODATA) {
        l->status = status;
    }
    free(q);
    release(l);
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
    /* ares_destroy calls back every outstanding query with EDESTRUCTION;
     * release() then frees each lookup without answering. */
    for (int i = 0; i < DNS_MAX_CHANNELS; i++)
        if (d->channels[i])
            channel_free(d->channels[i]);
    free(d);
}

int dns_start(struct dns *d, uint64_t id, const struct dns_query *q, const char **reason,
              char *detail, size_t dlen)
{
    if (d->inflight >= DNS_MAX_INFLIGHT) {
        *reason = "overload";
        snprintf(detail, dlen, "%d DNS lookups already in flight", DNS_MAX_INFLIGHT);
        return -1;
    }
    struct channel *ch, *followup_ch;
    if (hold_channels(d, q, &ch, &followup_ch, reason, detail, dlen) != 0)
        return -1;
    struct lookup *l = calloc(1, sizeof *l);
    if (l == NULL) {
        ch->refs--;
        followup_ch->refs--;
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
    l->deadline_ms = clock_now_ms() + q->timeout_ms;
    l->status = ARES_SUCCESS;
    dns_answer_init(&l->answer);
    l->next = d->lookups;
    if (d->lookups)
        d->lookups->prev = l;
    d->lookups = l;
    d->inflight++;

    l->pending = 1; /* hold while issuing */
    if (q->kind == DNS_LOOKUP_SRV) {
        issue(l, q->name, ns_t_srv, false);
    } else {
        if (q->families & DNS_FAMILY_INET)
            issue(l, q->name, ns_t_a, false);
        if (q->families & DNS_FAMILY_INET6)
            issue(l, q->name, ns_t_aaaa, false);
    }
    release(l);
    return 0;
}

size_t dns_poll_fds(struct dns *d, struct pollfd *fds, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < DNS_MAX_CHANNELS; i++) {
        struct channel *ch = d->channels[i];
        for (size_t k = 0; ch && k < ch->nsocks && n < cap; k++) {
            fds[n].fd = ch->socks[k].fd;
            fds[n].events = (short)((ch->socks[k].readable ? POLLIN : 0) |
                                    (ch->socks[k].writable ? POLLOUT : 0));
            fds[n].revents = 0;
            d->polled[n] = ch;
            n++;
        }
    }
    d->npolled = n;
    return n;
}

int dns_timeout(struct dns *d, int cap)
{
    int64_t best = cap, now = clock_now_ms();
    for (int i = 0; i < DNS_MAX_CHANNELS; i++) {
        struct channel *ch = d->channels[i];
        if (ch == NULL || ch->queries == 0)
            continue;
        struct timeval max = {.tv_sec = cap / 1000, .tv_usec = (cap % 1000) * 1000}, tv;
        struct timeval *t = ares_timeout(ch->ares, &max, &tv);
        int64_t ms = (int64_t)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
        if (ms < best)
            best = ms;
    }
    for (struct lookup *l = d->lookups; l; l = l->next)
        if (!l->answered && l->deadline_ms - now < best)
            best = l->deadline_ms - now;
    return best < 0 ? 0 : (int)best;
}

void dns_process(struct dns *d, const struct pollfd *fds, size_t n)
{
    for (size_t i = 0; i < n && i < d->npolled; i++) {
        if (fds[i].revents == 0)
            continue;
        ares_socket_t rfd = fds[i].revents & (POLLIN | POLLHUP | POLLERR) ? fds[i].fd
                                                                          : ARES_SOCKET_BAD;
        ares_socket_t wfd = fds[i].revents & POLLOUT ? fds[i].fd : ARES_SOCKET_BAD;
        ares_process_fd(d->polled[i]->ares, rfd, wfd);
    }
    /* Let c-ares retry or time out queries whose sockets stayed quiet. */
    for (int i = 0; i < DNS_MAX_CHANNELS; i++)
        if (d->channels[i] && d->channels[i]->queries > 0)
            ares_process_fd(d->channels[i]->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);

    int64_t now = clock_now_ms();
    for (struct lookup *l = d->lookups; l; l = l->next)
        if (!l->answered && now >= l->deadline_ms)
            answer(l, "timeout", "no complete DNS answer within the lookup's timeout");
}

size_t dns_inflight(const struct dns *d)
{
    return d->inflight;
}
