/* dns_lookup.c - the lookup machine: a lookup's questions, follow-up A/AAAA
 * queries for SRV targets, fail-over, resends, and its one answer; see
 * dns_internal.h. */
#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */

#include "dns_internal.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ares_socks.h"
#include "clock.h"
#include "fds.h"

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

/* Unlinks l, detaches its outstanding queries, drops its channel holds and
 * frees it. Its queries finish on their channels with no lookup. */
void dns_lookup_free(struct lookup *l)
{
    struct dns *d = l->d;
    for (struct query *q = l->queries, *next; q; q = next) {
        next = q->next;
        if (q->waiting) { /* never sent: nothing of it is in c-ares */
            dns_wait_remove(q);
            free(q);
            continue;
        }
        q->lookup = NULL;
        q->prev = q->next = NULL;
        q->ch->orphans++;
    }
    dns_unhold_channels(l);
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

void dns_lookup_answer(struct lookup *l, const char *reason, const char *detail)
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
void dns_release(struct lookup *l)
{
    if (--l->pending > 0)
        return;
    if (!l->d->closing) {
        char detail[256];
        if (l->parse_error) {
            snprintf(detail, sizeof detail, "malformed DNS answer: %s", l->parse_error);
            dns_lookup_answer(l, "bad_answer", detail);
        } else if (l->kind == DNS_LOOKUP_ADDR && l->answer.naddrs == 0 &&
                   l->answer.ncname > 0) {
            /* Not an empty listing: a server without recursion stops at a
             * CNAME that leaves its zones (Kubernetes' ExternalName). */
            snprintf(detail, sizeof detail,
                     "CNAME chain not followed: it ends at %.100s, which the server gave "
                     "no address for (ask a resolver that recurses, or query that name)",
                     l->answer.cname);
            dns_lookup_answer(l, "bad_answer", detail);
        } else if (l->kind == DNS_LOOKUP_ADDR && !l->any_success &&
                   l->status == ARES_ENOTFOUND) {
            /* A name that stopped existing is no listing of zero nodes
             * (docs/protocol.md, addr): the caller keeps its last one. */
            snprintf(detail, sizeof detail, "DNS lookup failed: %s", ares_strerror(l->status));
            dns_lookup_answer(l, "nxdomain", detail);
        } else if (l->truncated) {
            /* TC over TCP: the server could not fit the records in one
             * message and sent none or some. Read as a listing, the
             * missing nodes would be pruned. */
            snprintf(detail, sizeof detail,
                     "DNS answer truncated (TC set over TCP): more records than one DNS "
                     "message holds; the listing would be incomplete");
            dns_lookup_answer(l, "too_large", detail);
        } else if (l->any_success && l->status != ARES_SUCCESS && l->status != ARES_ENODATA &&
                   l->status != ARES_ENOTFOUND) {
            /* One question of an A+AAAA lookup failed (SERVFAIL, timeout):
             * the other family's addresses alone would prune its nodes. */
            snprintf(detail, sizeof detail, "DNS lookup failed for one of its questions: %s",
                     ares_strerror(l->status));
            dns_lookup_answer(l, dns_status_atom(l->status), detail);
        } else if (l->any_success || l->status == ARES_ENOTFOUND || l->status == ARES_ENODATA) {
            dns_lookup_answer(l, NULL, NULL); /* no such name is an empty answer */
        } else {
            snprintf(detail, sizeof detail, "DNS lookup failed: %s", ares_strerror(l->status));
            dns_lookup_answer(l, dns_status_atom(l->status), detail);
        }
    }
    dns_lookup_free(l);
}

void dns_issue(struct lookup *l, const char *name, int type, bool followup, size_t group)
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
    if (followup && l->followup_resends && !l->copying) {
        int64_t now = clock_now_ms();
        q->resend_ms = now + (l->deadline_ms - now) / 2;
        if (l->followup_resend_ms == 0 || q->resend_ms < l->followup_resend_ms)
            l->followup_resend_ms = q->resend_ms;
    }
    q->next = l->queries;
    if (l->queries)
        l->queries->prev = q;
    l->queries = q;
    l->pending++;
    if (q->ch->queries >= DNS_CHANNEL_WINDOW || q->ch->waiting > 0)
        dns_wait_append(q);
    else
        dns_send_query(q);
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
 * dns_on_answer), else AAAA. Asking both at once would double the queries of a
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
        dns_issue(l, s->target, l->families & DNS_FAMILY_INET ? ns_t_a : ns_t_aaaa, true, i);
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
 * Runs inside a c-ares callback: dns_channel_for() may only mark a channel
 * dead, never free one (dns_reap() does that later). */
bool dns_fail_over(struct lookup *l, const struct query *q)
{
    struct dns_query next = l->q;
    if (servers_after_first(q->ch, next.servers, sizeof next.servers) == 0)
        return false;
    const char *reason;
    char detail[160];
    struct channel *ch, *followup_ch;
    if (dns_hold_channels(l->d, &next, &ch, &followup_ch, &reason, detail, sizeof detail) != 0)
        return false;
    dns_unhold_channels(l);
    l->ch = ch;
    l->followup_ch = followup_ch;
    l->q = next;
    dns_issue(l, q->target, q->type, false, q->group);
    return true;
}

/* The other copy of question q (resent, dns.h), or NULL. */
static struct query *twin_of(const struct query *q)
{
    for (struct query *t = q->lookup->queries; t != NULL; t = t->next)
        if (t != q && t->followup == q->followup && t->type == q->type &&
            (!q->followup || t->group == q->group) && strcmp(t->target, q->target) == 0)
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
        dns_wait_remove(t);
        free(t);
        return;
    }
    t->lookup = NULL;
    t->ch->orphans++;
}

/* Asks l's unanswered primary question(s) again (dns.h). */
void dns_resend(struct lookup *l)
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
        dns_issue(l, again[i].target, again[i].type, false, again[i].group);
    dns_release(l);
}

void dns_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    struct lookup *l = q->lookup;
    struct channel *ch = q->ch;
    if (l == NULL) { /* its lookup was answered (deadline) or cancelled */
        ch->queries--;
        ch->orphans--;
        free(q);
        dns_pump(ch);
        return;
    }
    /* A follow-up has a twin only once copies were sent: the walk is not
     * paid for every follow-up of a large answer otherwise. */
    struct query *twin = q->followup && !l->followups_copied ? NULL : twin_of(q);
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
            dns_release(l); /* the twin still counts: l lives on */
            dns_pump(ch);
            return;
        }
        drop_twin(twin); /* this answer counts; the other's is not waited for */
    }

    /* TC (header byte 2, bit 1) on a primary answer: c-ares asks a truncated
     * UDP answer again over TCP by itself, so this one has records missing,
     * whether it came with some (SUCCESS) or none (ENODATA). */
    if (!q->followup && abuf != NULL && alen > 2 && (abuf[2] & 0x02) != 0)
        l->truncated = true;
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
                dns_issue(l, q->target, ns_t_aaaa, true, q->group);
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
            dns_issue(l, q->target, ns_t_aaaa, true, q->group); /* no A record: maybe IPv6 only */
    } else if ((status == ARES_EREFUSED || status == ARES_ESERVFAIL) && !l->d->closing &&
               dns_fail_over(l, q)) {
        /* asked again: this query's failure is not the lookup's */
    } else if (status == ARES_ETIMEOUT && l->tries_left > 0 && !l->d->closing &&
               clock_now_ms() < l->deadline_ms) {
        l->tries_left--;
        dns_issue(l, q->target, q->type, false, q->group); /* see DNS_TRY_TIMEOUT_MS */
    } else if (l->status == ARES_SUCCESS || l->status == ARES_ENODATA) {
        l->status = status;
    }
    /* Only now: until here q kept its channel busy, so nothing evicted it. */
    ch->queries--;
    query_unlink(q);
    free(q);
    dns_release(l);
    dns_pump(ch); /* dns_reap() runs outside c-ares only: ch is still allocated */
}

