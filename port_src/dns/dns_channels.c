/* dns_channels.c - the channel pool of the DNS lookups: a c-ares channel
 * per server set and transport (DNS_MAX_CHANNELS), least recently used
 * evicted, and reap(), the only place a channel is freed; see dns.c for the
 * ownership rule and dns_internal.h. */
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

/*** channels ***/

/* Frees ch; only dns_reap() and dns_free() call this (see the ownership rule).
 * Queries still pending are called back by ares_destroy; they no longer
 * have a lookup, and touch only this channel, still allocated then. */
void dns_channel_free(struct dns *d, struct channel *ch)
{
    d->depth++;
    ares_destroy(ch->ares);
    d->depth--;
    free(ch);
}

/* The safe point: frees dead channels nothing refers to any more. */
void dns_reap(struct dns *d)
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
            dns_channel_free(d, ch);
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
     * dns_fail_over() does that instead. */
    /* The host's own resolver configuration (servers => []) brings its
     * search list and ndots, as getaddrinfo() and inet_res apply them:
     * myapp in a Kubernetes pod is asked as myapp.NS.svc.cluster.local
     * first. Servers named in the request are asked the name as written. */
    ch->search = q->servers[0] == '\0';
    o.flags = (ch->search ? 0 : ARES_FLAG_NOSEARCH) | ARES_FLAG_NOALIASES |
              ARES_FLAG_NOCHECKRESP |
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
            dns_channel_free(d, ch);
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
 * make room: marked dead, and freed by dns_reap() at the next safe point. */
struct channel *dns_channel_for(struct dns *d, const struct dns_query *q, const char **reason,
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
int dns_hold_channels(struct dns *d, const struct dns_query *q, struct channel **ch,
                         struct channel **followup_ch, const char **reason, char *detail,
                         size_t dlen)
{
    *ch = dns_channel_for(d, q, reason, detail, dlen);
    if (*ch == NULL)
        return -1;
    (*ch)->holds++; /* before making room for the follow-up channel */
    *followup_ch = *ch;
    if (q->kind == DNS_LOOKUP_SRV && q->transport == DNS_TCP) {
        struct dns_query fq = *q;
        fq.transport = DNS_UDP;
        *followup_ch = dns_channel_for(d, &fq, reason, detail, dlen);
        if (*followup_ch == NULL) {
            (*ch)->holds--;
            return -1;
        }
    }
    (*followup_ch)->holds++;
    return 0;
}

void dns_unhold_channels(struct lookup *l)
{
    l->ch->holds--;
    l->followup_ch->holds--;
}

